/*
 * test_smtp_etrn - the ETRN and ATRN argument parsers: what a client may
 * ask for, and everything hostile refused with a syntax error.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "smtp/smtp_etrn.h"

struct etrn_case {
	const char *arg;
	enum smtp_etrn_status st;
	enum smtp_etrn_kind kind;
	const char *name;
};

static void test_etrn_table(void **state)
{
	static const struct etrn_case cases[] = {
		{ "example.org", SMTP_ETRN_OK, SMTP_ETRN_NODE, "example.org" },
		{ "Example.ORG", SMTP_ETRN_OK, SMTP_ETRN_NODE, "example.org" },
		{ " example.org", SMTP_ETRN_OK, SMTP_ETRN_NODE, "example.org" },
		{ "@example.org", SMTP_ETRN_OK, SMTP_ETRN_SUBTREE, "example.org" },
		{ "@com", SMTP_ETRN_OK, SMTP_ETRN_SUBTREE, "com" },
		{ "#dialup", SMTP_ETRN_OK, SMTP_ETRN_QUEUE, "dialup" },
		{ "#Dial-Up_2.x", SMTP_ETRN_OK, SMTP_ETRN_QUEUE, "dial-up_2.x" },
		{ "", SMTP_ETRN_EMPTY, 0, NULL },
		{ "   ", SMTP_ETRN_EMPTY, 0, NULL },
		{ "a b", SMTP_ETRN_BAD, 0, NULL },
		{ "@", SMTP_ETRN_BAD, 0, NULL },
		{ "#", SMTP_ETRN_BAD, 0, NULL },
		{ "@@example.org", SMTP_ETRN_BAD, 0, NULL },
		{ "#a/b", SMTP_ETRN_BAD, 0, NULL },
		{ "[192.0.2.7]", SMTP_ETRN_BAD, 0, NULL },
		{ "192.0.2.7", SMTP_ETRN_BAD, 0, NULL },
		{ "example.org.", SMTP_ETRN_BAD, 0, NULL },
		{ ".example.org", SMTP_ETRN_BAD, 0, NULL },
		{ "example..org", SMTP_ETRN_BAD, 0, NULL },
		{ "-bad.example.org", SMTP_ETRN_BAD, 0, NULL },
		{ "x' OR '1'='1", SMTP_ETRN_BAD, 0, NULL },
		{ "../../etc/passwd", SMTP_ETRN_BAD, 0, NULL },
		{ "served.example/../x", SMTP_ETRN_BAD, 0, NULL },
		{ "b\xc3\xbc" "cher.example", SMTP_ETRN_BAD, 0, NULL },
		{ "xn--bcher-kva.example", SMTP_ETRN_OK, SMTP_ETRN_NODE,
		  "xn--bcher-kva.example" },
		{ "a%b.example", SMTP_ETRN_BAD, 0, NULL },
	};
	struct smtp_etrn e;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct etrn_case *c = &cases[i];
		enum smtp_etrn_status st = smtp_etrn_parse(c->arg,
		    strlen(c->arg), &e);

		if (st != c->st)
			fail_msg("\"%s\": status %d, want %d", c->arg, st, c->st);
		if (st == SMTP_ETRN_OK) {
			assert_int_equal(e.kind, c->kind);
			assert_string_equal(e.name, c->name);
		}
	}
}

static void test_etrn_lengths_and_nul(void **state)
{
	char buf[400];
	struct smtp_etrn e;

	/* a 63-octet label is fine, 64 is not */
	memset(buf, 'a', 63);
	memcpy(buf + 63, ".org", 5);
	assert_int_equal(smtp_etrn_parse(buf, strlen(buf), &e), SMTP_ETRN_OK);
	memset(buf, 'a', 64);
	memcpy(buf + 64, ".org", 5);
	assert_int_equal(smtp_etrn_parse(buf, strlen(buf), &e), SMTP_ETRN_BAD);
	/* over 255 in all */
	memset(buf, 0, sizeof(buf));
	for (int i = 0; i < 64; i++)
		memcpy(buf + i * 4, "abc.", 4);
	memcpy(buf + 256, "org", 3);
	assert_int_equal(smtp_etrn_parse(buf, strlen(buf), &e), SMTP_ETRN_BAD);
	/* an embedded NUL never truncates to something valid */
	assert_int_equal(smtp_etrn_parse("example.org\0.evil", 17, &e),
	    SMTP_ETRN_BAD);
	/* a queue name of 65 */
	buf[0] = '#';
	memset(buf + 1, 'q', 65);
	assert_int_equal(smtp_etrn_parse(buf, 66, &e), SMTP_ETRN_BAD);
	assert_int_equal(smtp_etrn_parse(buf, 65, &e), SMTP_ETRN_OK);
}

static void test_atrn(void **state)
{
	struct smtp_atrn a;
	char many[SMTP_ATRN_MAX * 8 + 16];
	size_t i, len = 0;

	assert_int_equal(smtp_atrn_parse("", 0, &a), SMTP_ETRN_OK);
	assert_int_equal(a.n, 0);
	assert_int_equal(smtp_atrn_parse("  ", 2, &a), SMTP_ETRN_OK);
	assert_int_equal(a.n, 0);
	assert_int_equal(smtp_atrn_parse("Example.org", 11, &a), SMTP_ETRN_OK);
	assert_int_equal(a.n, 1);
	assert_string_equal(a.domain[0], "example.org");
	assert_int_equal(smtp_atrn_parse("a.test, b.test ,a.test", 22, &a),
	    SMTP_ETRN_OK);
	assert_int_equal(a.n, 2);
	assert_string_equal(a.domain[1], "b.test");
	assert_int_equal(smtp_atrn_parse("a.test,", 7, &a), SMTP_ETRN_BAD);
	assert_int_equal(smtp_atrn_parse(",a.test", 7, &a), SMTP_ETRN_BAD);
	assert_int_equal(smtp_atrn_parse("a.test,,b.test", 14, &a), SMTP_ETRN_BAD);
	assert_int_equal(smtp_atrn_parse("a.test b.test", 13, &a), SMTP_ETRN_BAD);
	assert_int_equal(smtp_atrn_parse("@a.test", 7, &a), SMTP_ETRN_BAD);
	for (i = 0; i <= SMTP_ATRN_MAX; i++)
		len += (size_t)sprintf(many + len, "%sd%zu.t", i ? "," : "", i);
	assert_int_equal(smtp_atrn_parse(many, len, &a), SMTP_ETRN_BAD);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_etrn_table),
		cmocka_unit_test(test_etrn_lengths_and_nul),
		cmocka_unit_test(test_atrn),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
