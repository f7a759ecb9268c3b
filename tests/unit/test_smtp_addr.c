/* test_smtp_addr - paths and ESMTP parameters (SECURITY.md P3-P8, R2-R7) */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "smtp/smtp_addr.h"
#include "util/buf.h"

#define L(s) s, sizeof(s) - 1

#define M SMTP_ADDR_MAIL
#define R SMTP_ADDR_RCPT

/* path flags in the table */
#define F_NULL	1u
#define F_LIT	2u
#define F_QUOT	4u
#define F_ROUTE	8u

struct path_case {
	const char *arg;
	size_t len;
	enum smtp_addr_kind kind;
	enum smtp_addr_status status;
	const char *addr;	/* on OK: the stored address */
	const char *domain;	/* on OK: the stored domain */
	unsigned flags;		/* on OK: F_* */
};

static const struct path_case path_cases[] = {
	/* P5: the edge set */
	{ L("<>"), M, SMTP_ADDR_OK, "", "", F_NULL },
	{ L("<>"), R, SMTP_ADDR_NULL_NOT_ALLOWED, NULL, NULL, 0 },
	{ L("<> SIZE=10"), M, SMTP_ADDR_OK, "", "", F_NULL },
	{ L("<@>"), M, SMTP_ADDR_SYNTAX, NULL, NULL, 0 },
	{ L("<@>"), R, SMTP_ADDR_SYNTAX, NULL, NULL, 0 },
	{ L("<a>"), M, SMTP_ADDR_SYNTAX, NULL, NULL, 0 },
	{ L("<a>"), R, SMTP_ADDR_SYNTAX, NULL, NULL, 0 },
	{ L("<a@>"), R, SMTP_ADDR_SYNTAX, NULL, NULL, 0 },
	{ L("<@a>"), R, SMTP_ADDR_SYNTAX, NULL, NULL, 0 },
	{ L("< @a>"), R, SMTP_ADDR_SYNTAX, NULL, NULL, 0 },
	{ L("<a@ >"), R, SMTP_ADDR_SYNTAX, NULL, NULL, 0 },
	{ L("< a@b>"), R, SMTP_ADDR_SYNTAX, NULL, NULL, 0 },
	{ L("<a@b >"), R, SMTP_ADDR_SYNTAX, NULL, NULL, 0 },
	{ L("<whatever:a@a>"), R, SMTP_ADDR_SYNTAX, NULL, NULL, 0 },
	{ L("<a:@a>"), R, SMTP_ADDR_SYNTAX, NULL, NULL, 0 },
	{ L("a@b.example"), R, SMTP_ADDR_SYNTAX, NULL, NULL, 0 },
	{ L("a@b.example"), M, SMTP_ADDR_SYNTAX, NULL, NULL, 0 },
	{ L("<a@b.example"), R, SMTP_ADDR_SYNTAX, NULL, NULL, 0 },
	{ L("a@b.example>"), R, SMTP_ADDR_SYNTAX, NULL, NULL, 0 },
	{ L("<"), M, SMTP_ADDR_SYNTAX, NULL, NULL, 0 },
	{ L(""), M, SMTP_ADDR_SYNTAX, NULL, NULL, 0 },
	{ L(" <a@b.example>"), M, SMTP_ADDR_SYNTAX, NULL, NULL, 0 },
	{ L("<<a@b.example>>"), M, SMTP_ADDR_SYNTAX, NULL, NULL, 0 },
	{ L("<\"a@b.example>"), R, SMTP_ADDR_SYNTAX, NULL, NULL, 0 },
	{ L("<\"a\"b@c.example>"), R, SMTP_ADDR_SYNTAX, NULL, NULL, 0 },
	{ L("<a\"b\"@c.example>"), R, SMTP_ADDR_SYNTAX, NULL, NULL, 0 },
	{ L("<\"a\\\">"), R, SMTP_ADDR_SYNTAX, NULL, NULL, 0 },
	{ L("<a@b.example>x"), R, SMTP_ADDR_SYNTAX, NULL, NULL, 0 },
	{ L("<a@b.example>>"), R, SMTP_ADDR_SYNTAX, NULL, NULL, 0 },
	{ L("<a@b.example>\tSIZE=1"), M, SMTP_ADDR_SYNTAX, NULL, NULL, 0 },
	{ L("<a@b.example> x"), R, SMTP_ADDR_PARAM_UNKNOWN, NULL, NULL, 0 },
	{ L("<a@b.example> "), R, SMTP_ADDR_OK, "a@b.example", "b.example", 0 },
	{ L("<a@b.example>   "), R, SMTP_ADDR_OK, "a@b.example", "b.example",
	  0 },
	{ L("<>x"), M, SMTP_ADDR_SYNTAX, NULL, NULL, 0 },
	{ L("<postmaster>"), R, SMTP_ADDR_SYNTAX, NULL, NULL, 0 },
	{ L("<Postmaster>"), M, SMTP_ADDR_SYNTAX, NULL, NULL, 0 },
	{ L("<a@b.example>"), R, SMTP_ADDR_OK, "a@b.example", "b.example", 0 },
	{ L("<a@b.example>"), M, SMTP_ADDR_OK, "a@b.example", "b.example", 0 },
	{ L("<first.last+tag@b.example>"), R, SMTP_ADDR_OK,
	  "first.last+tag@b.example", "b.example", 0 },
	{ L("<!#$&'*+-/=?^_`{|}~@b.example>"), R, SMTP_ADDR_OK,
	  "!#$&'*+-/=?^_`{|}~@b.example", "b.example", F_ROUTE },
	{ L("<a..b@c.example>"), R, SMTP_ADDR_SYNTAX, NULL, NULL, 0 },
	{ L("<.a@c.example>"), R, SMTP_ADDR_SYNTAX, NULL, NULL, 0 },
	{ L("<a.@c.example>"), R, SMTP_ADDR_SYNTAX, NULL, NULL, 0 },
	{ L("<a b@c.example>"), R, SMTP_ADDR_SYNTAX, NULL, NULL, 0 },
	{ L("<a(b)@c.example>"), R, SMTP_ADDR_SYNTAX, NULL, NULL, 0 },
	{ L("<a\\b@c.example>"), R, SMTP_ADDR_SYNTAX, NULL, NULL, 0 },
	/* source routes: checked, then dropped (R4) */
	{ L("<@a.example:user@b.example>"), R, SMTP_ADDR_OK,
	  "user@b.example", "b.example", 0 },
	{ L("<@a.example,@b.example:user@c.example>"), R, SMTP_ADDR_OK,
	  "user@c.example", "c.example", 0 },
	{ L("<@a,@b:user@x>"), R, SMTP_ADDR_OK, "user@x", "x", 0 },
	{ L("<@served.example:user@external.example>"), R, SMTP_ADDR_OK,
	  "user@external.example", "external.example", 0 },
	{ L("<@a.example,b.example:u@c.example>"), R, SMTP_ADDR_SYNTAX,
	  NULL, NULL, 0 },
	{ L("<@a.example,:u@c.example>"), R, SMTP_ADDR_SYNTAX, NULL, NULL, 0 },
	{ L("<@a.example,@:u@c.example>"), R, SMTP_ADDR_SYNTAX, NULL, NULL,
	  0 },
	{ L("<@a.example;u@c.example>"), R, SMTP_ADDR_SYNTAX, NULL, NULL, 0 },
	{ L("<@a_b:u@c.example>"), R, SMTP_ADDR_SYNTAX, NULL, NULL, 0 },
	{ L("<@a.:u@c.example>"), R, SMTP_ADDR_SYNTAX, NULL, NULL, 0 },
	{ L("<@1.2.3.4:u@c.example>"), R, SMTP_ADDR_SYNTAX, NULL, NULL, 0 },
	{ L("<@[1.2.3.4]:u@c.example>"), R, SMTP_ADDR_SYNTAX, NULL, NULL, 0 },
	{ L("<@a.example:>"), R, SMTP_ADDR_SYNTAX, NULL, NULL, 0 },
	{ L("<@a.example:<>>"), M, SMTP_ADDR_SYNTAX, NULL, NULL, 0 },
	{ L("<@a.example:@b.example:u@c.example>"), R, SMTP_ADDR_SYNTAX,
	  NULL, NULL, 0 },
	/* quoted local parts: kept as received */
	{ L("<\"a b\"@c.example>"), R, SMTP_ADDR_OK, "\"a b\"@c.example",
	  "c.example", F_QUOT },
	{ L("<\"a\\\"b\"@c.example>"), R, SMTP_ADDR_OK,
	  "\"a\\\"b\"@c.example", "c.example", F_QUOT },
	{ L("<\"a>b\"@c.example>"), R, SMTP_ADDR_OK, "\"a>b\"@c.example",
	  "c.example", F_QUOT },
	{ L("<\"\"@c.example>"), R, SMTP_ADDR_SYNTAX, NULL, NULL, 0 },
	{ L("<\"a\tb\"@c.example>"), R, SMTP_ADDR_SYNTAX, NULL, NULL, 0 },
	{ L("<\"a\\\x01\"@c.example>"), R, SMTP_ADDR_SYNTAX, NULL, NULL, 0 },
	{ L("<\"a\\"), R, SMTP_ADDR_SYNTAX, NULL, NULL, 0 },
	/* P3: NUL and 8-bit bytes; never truncated at the NUL */
	{ L("<a\0b@x.example>"), M, SMTP_ADDR_SYNTAX, NULL, NULL, 0 },
	{ L("<\xff@x.example>"), R, SMTP_ADDR_SYNTAX, NULL, NULL, 0 },
	{ L("<a@x.example\0>"), R, SMTP_ADDR_SYNTAX, NULL, NULL, 0 },
	{ L("<a@x.example>\0"), R, SMTP_ADDR_SYNTAX, NULL, NULL, 0 },
	{ L("<\"a\0b\"@x.example>"), R, SMTP_ADDR_SYNTAX, NULL, NULL, 0 },
	{ L("<\"\xc3\xa9\"@x.example>"), R, SMTP_ADDR_SYNTAX, NULL, NULL, 0 },
	{ L("<a@b\xc3\xa9.example>"), R, SMTP_ADDR_SYNTAX, NULL, NULL, 0 },
	{ L("<a\r\n@x.example>"), R, SMTP_ADDR_SYNTAX, NULL, NULL, 0 },
	{ L("<a@x.example> SIZE=1\0"), M, SMTP_ADDR_PARAM_BAD, NULL, NULL, 0 },
	/* P4: metacharacters are atext; stored as received, never special */
	{ L("<`id`@x.example>"), R, SMTP_ADDR_OK, "`id`@x.example",
	  "x.example", 0 },
	{ L("<$(reboot)@x.example>"), R, SMTP_ADDR_SYNTAX, NULL, NULL, 0 },
	{ L("<%n%s@x.example>"), R, SMTP_ADDR_OK, "%n%s@x.example",
	  "x.example", F_ROUTE },
	{ L("<;sleep 9;@x.example>"), R, SMTP_ADDR_SYNTAX, NULL, NULL, 0 },
	{ L("<\"'; DROP TABLE q;--\"@x.example>"), R, SMTP_ADDR_OK,
	  "\"'; DROP TABLE q;--\"@x.example", "x.example", F_QUOT },
	/* R2: percent hack, flagged for the policy */
	{ L("<user%external.example@served.example>"), R, SMTP_ADDR_OK,
	  "user%external.example@served.example", "served.example", F_ROUTE },
	{ L("<user%external.example@[192.0.2.1]>"), R, SMTP_ADDR_OK,
	  "user%external.example@[192.0.2.1]", "[192.0.2.1]",
	  F_ROUTE | F_LIT },
	{ L("<user%external.example@localhost>"), R, SMTP_ADDR_OK,
	  "user%external.example@localhost", "localhost", F_ROUTE },
	/* R3: bang paths */
	{ L("<external.example!user@served.example>"), R, SMTP_ADDR_OK,
	  "external.example!user@served.example", "served.example", F_ROUTE },
	{ L("<external.example!user>"), R, SMTP_ADDR_SYNTAX, NULL, NULL, 0 },
	{ L("<a!b!c@served.example>"), R, SMTP_ADDR_OK,
	  "a!b!c@served.example", "served.example", F_ROUTE },
	/* R5: quoted local parts and double '@' */
	{ L("<\"user@external.example\"@served.example>"), R, SMTP_ADDR_OK,
	  "\"user@external.example\"@served.example", "served.example",
	  F_QUOT | F_ROUTE },
	{ L("<\"user%external.example\"@served.example>"), R, SMTP_ADDR_OK,
	  "\"user%external.example\"@served.example", "served.example",
	  F_QUOT | F_ROUTE },
	{ L("<\"user\\@external.example\"@served.example>"), R, SMTP_ADDR_OK,
	  "\"user\\@external.example\"@served.example", "served.example",
	  F_QUOT | F_ROUTE },
	{ L("<user@external.example@served.example>"), R, SMTP_ADDR_SYNTAX,
	  NULL, NULL, 0 },
	{ L("<\"user@external.example\">"), R, SMTP_ADDR_SYNTAX, NULL, NULL,
	  0 },
	/* R6: address literals and bare IPs */
	{ L("<u@[1.2.3.4]>"), R, SMTP_ADDR_OK, "u@[1.2.3.4]", "[1.2.3.4]",
	  F_LIT },
	{ L("<u@[0.0.0.0]>"), R, SMTP_ADDR_OK, "u@[0.0.0.0]", "[0.0.0.0]",
	  F_LIT },
	{ L("<u@[255.255.255.255]>"), R, SMTP_ADDR_OK,
	  "u@[255.255.255.255]", "[255.255.255.255]", F_LIT },
	{ L("<u@[IPv6:2001:db8::1]>"), R, SMTP_ADDR_OK,
	  "u@[ipv6:2001:db8::1]", "[ipv6:2001:db8::1]", F_LIT },
	{ L("<u@[ipv6:2001:DB8::1]>"), R, SMTP_ADDR_OK,
	  "u@[ipv6:2001:db8::1]", "[ipv6:2001:db8::1]", F_LIT },
	{ L("<u@[IPv6:::ffff:192.0.2.1]>"), R, SMTP_ADDR_OK,
	  "u@[ipv6:::ffff:192.0.2.1]", "[ipv6:::ffff:192.0.2.1]", F_LIT },
	{ L("<u@1.2.3.4>"), R, SMTP_ADDR_SYNTAX, NULL, NULL, 0 },
	{ L("<u@[1.2.3.256]>"), R, SMTP_ADDR_SYNTAX, NULL, NULL, 0 },
	{ L("<u@[1.2.3]>"), R, SMTP_ADDR_SYNTAX, NULL, NULL, 0 },
	{ L("<u@[1.2.3.4.5]>"), R, SMTP_ADDR_SYNTAX, NULL, NULL, 0 },
	{ L("<u@[1.2.3.]>"), R, SMTP_ADDR_SYNTAX, NULL, NULL, 0 },
	{ L("<u@[1..3.4]>"), R, SMTP_ADDR_SYNTAX, NULL, NULL, 0 },
	{ L("<u@[1234.1.1.1]>"), R, SMTP_ADDR_SYNTAX, NULL, NULL, 0 },
	{ L("<u@[ 1.2.3.4]>"), R, SMTP_ADDR_SYNTAX, NULL, NULL, 0 },
	{ L("<u@[IPv6:zz::1]>"), R, SMTP_ADDR_SYNTAX, NULL, NULL, 0 },
	{ L("<u@[IPv6:]>"), R, SMTP_ADDR_SYNTAX, NULL, NULL, 0 },
	{ L("<u@[IPv6:1]>"), R, SMTP_ADDR_SYNTAX, NULL, NULL, 0 },
	{ L("<u@[IPv4:1.2.3.4]>"), R, SMTP_ADDR_SYNTAX, NULL, NULL, 0 },
	{ L("<u@[example.org]>"), R, SMTP_ADDR_SYNTAX, NULL, NULL, 0 },
	{ L("<u@[1.2.3.4>"), R, SMTP_ADDR_SYNTAX, NULL, NULL, 0 },
	{ L("<u@[1.2.3.4]"), R, SMTP_ADDR_SYNTAX, NULL, NULL, 0 },
	{ L("<u@[1.2.3.4]x>"), R, SMTP_ADDR_SYNTAX, NULL, NULL, 0 },
	{ L("<u@[]>"), R, SMTP_ADDR_SYNTAX, NULL, NULL, 0 },
	{ L("<u@[>"), R, SMTP_ADDR_SYNTAX, NULL, NULL, 0 },
	/* R7: domain-match tricks; the domain comes back lower case */
	{ L("<u@SERVED.example.>"), R, SMTP_ADDR_SYNTAX, NULL, NULL, 0 },
	{ L("<u@served.example..>"), R, SMTP_ADDR_SYNTAX, NULL, NULL, 0 },
	{ L("<u@.served.example>"), R, SMTP_ADDR_SYNTAX, NULL, NULL, 0 },
	{ L("<u@served..example>"), R, SMTP_ADDR_SYNTAX, NULL, NULL, 0 },
	{ L("<u@evil-served.example>"), R, SMTP_ADDR_OK,
	  "u@evil-served.example", "evil-served.example", 0 },
	{ L("<u@served.example.evil.com>"), R, SMTP_ADDR_OK,
	  "u@served.example.evil.com", "served.example.evil.com", 0 },
	{ L("<u@xn--bcher-kva.example>"), R, SMTP_ADDR_OK,
	  "u@xn--bcher-kva.example", "xn--bcher-kva.example", 0 },
	{ L("<u@served.example\0.evil.com>"), R, SMTP_ADDR_SYNTAX, NULL, NULL,
	  0 },
	{ L("<U.Ser@SERVED.Example>"), R, SMTP_ADDR_OK,
	  "U.Ser@served.example", "served.example", 0 },
	/* labels */
	{ L("<u@-a.example>"), R, SMTP_ADDR_SYNTAX, NULL, NULL, 0 },
	{ L("<u@a-.example>"), R, SMTP_ADDR_SYNTAX, NULL, NULL, 0 },
	{ L("<u@a.example->"), R, SMTP_ADDR_SYNTAX, NULL, NULL, 0 },
	{ L("<u@a_b.example>"), R, SMTP_ADDR_SYNTAX, NULL, NULL, 0 },
	{ L("<u@a.123>"), R, SMTP_ADDR_SYNTAX, NULL, NULL, 0 },
	{ L("<u@123>"), R, SMTP_ADDR_SYNTAX, NULL, NULL, 0 },
	{ L("<u@123.example>"), R, SMTP_ADDR_OK, "u@123.example",
	  "123.example", 0 },
	{ L("<u@a.b2>"), R, SMTP_ADDR_OK, "u@a.b2", "a.b2", 0 },
	{ L("<u@localhost>"), R, SMTP_ADDR_OK, "u@localhost", "localhost", 0 },
	{ L("<u@a>"), R, SMTP_ADDR_OK, "u@a", "a", 0 },
};

/* check_path_case - one row of path_cases */
static void check_path_case(size_t i, const struct path_case *c)
{
	struct smtp_path p;
	struct smtp_params pr;
	const char *err = "unset";
	enum smtp_addr_status st;

	memset(&p, 0x5a, sizeof(p));
	st = smtp_addr_parse(c->arg, c->len, c->kind, &p, &pr, &err);
	if (st != c->status)
		print_error("row %zu: \"%s\" (%s): got %d want %d (%s)\n", i,
		    c->arg, c->kind == M ? "MAIL" : "RCPT", (int)st,
		    (int)c->status, err ? err : "-");
	assert_int_equal(st, c->status);
	if (st != SMTP_ADDR_OK) {
		assert_non_null(err);
		return;
	}
	assert_null(err);
	assert_string_equal(p.addr, c->addr);
	assert_string_equal(p.domain, c->domain);
	assert_int_equal(p.null, (c->flags & F_NULL) != 0);
	assert_int_equal(p.domain_literal, (c->flags & F_LIT) != 0);
	assert_int_equal(p.quoted_local, (c->flags & F_QUOT) != 0);
	assert_int_equal(p.local_has_route_chars, (c->flags & F_ROUTE) != 0);
	if (!p.null) {
		char both[SMTP_PATH_MAX * 2];

		snprintf(both, sizeof(both), "%s@%s", p.local, p.domain);
		assert_string_equal(both, p.addr);
	} else {
		assert_string_equal(p.local, "");
	}
}

/* test_path_table - P3, P4, P5, R2-R7 outcomes */
static void test_path_table(void **state)
{
	size_t i;

	for (i = 0; i < sizeof(path_cases) / sizeof(path_cases[0]); i++)
		check_path_case(i, &path_cases[i]);
}

/* test_errtext_optional - a NULL errtext pointer is fine */
static void test_errtext_optional(void **state)
{
	struct smtp_path p;
	struct smtp_params pr;

	assert_int_equal(smtp_addr_parse(L("<a>"), R, &p, &pr, NULL),
	    SMTP_ADDR_SYNTAX);
	assert_int_equal(smtp_addr_parse(L("<a@b.c>"), R, &p, &pr, NULL),
	    SMTP_ADDR_OK);
}

/* make_domain - a valid domain of exactly n octets, labels of <= 63 */
static void make_domain(char *d, size_t n)
{
	size_t pos = 0, rem = n, lab, k;

	while (rem > 63) {
		lab = rem >= 65 ? 63 : rem - 2;
		for (k = 0; k < lab; k++)
			d[pos++] = (char)('a' + k % 26);
		d[pos++] = '.';
		rem -= lab + 1;
	}
	for (k = 0; k < rem; k++)
		d[pos++] = 'z';
	d[pos] = '\0';
	assert_int_equal(strlen(d), n);
}

/* parse_str - smtp_addr_parse on a C string */
static enum smtp_addr_status parse_str(const char *s,
    enum smtp_addr_kind kind, struct smtp_path *p, struct smtp_params *pr,
    const char **err)
{
	return smtp_addr_parse(s, strlen(s), kind, p, pr, err);
}

/* path_with - "<" local "@" domain ">" with generated parts */
static char *path_with(size_t llen, size_t dlen)
{
	char *s = malloc(llen + dlen + 4);
	char dom[8192];

	assert_non_null(s);
	make_domain(dom, dlen);
	s[0] = '<';
	memset(s + 1, 'l', llen);
	s[1 + llen] = '@';
	memcpy(s + 2 + llen, dom, dlen);
	s[2 + llen + dlen] = '>';
	s[3 + llen + dlen] = '\0';
	return s;
}

/* expect_len - parse path_with(llen, dlen) and check status and text */
static void expect_len(size_t llen, size_t dlen,
    enum smtp_addr_status want, const char *text)
{
	struct smtp_path p;
	struct smtp_params pr;
	const char *err;
	char *s = path_with(llen, dlen);
	enum smtp_addr_status st = parse_str(s, R, &p, &pr, &err);

	free(s);
	if (st != want)
		print_error("local %zu domain %zu: got %d (%s)\n", llen, dlen,
		    (int)st, err ? err : "-");
	assert_int_equal(st, want);
	if (text != NULL)
		assert_string_equal(err, text);
	if (st == SMTP_ADDR_OK) {
		assert_int_equal(strlen(p.local), llen);
		assert_int_equal(strlen(p.domain), dlen);
		assert_int_equal(strlen(p.addr), llen + 1 + dlen);
	}
}

/* test_local_limits - P6: local part 63/64 ok, 65/4096 too long */
static void test_local_limits(void **state)
{
	struct smtp_path p;
	struct smtp_params pr;
	const char *err;
	char s[200];

	expect_len(1, 9, SMTP_ADDR_OK, NULL);
	expect_len(63, 9, SMTP_ADDR_OK, NULL);
	expect_len(64, 9, SMTP_ADDR_OK, NULL);
	expect_len(65, 9, SMTP_ADDR_TOO_LONG, "local part too long");
	expect_len(4096, 9, SMTP_ADDR_TOO_LONG, "local part too long");

	/* a quoted local part counts its quotes */
	snprintf(s, sizeof(s), "<\"%062d\"@b.example>", 0);
	assert_int_equal(parse_str(s, R, &p, &pr, &err), SMTP_ADDR_OK);
	assert_int_equal(strlen(p.local), 64);
	snprintf(s, sizeof(s), "<\"%063d\"@b.example>", 0);
	assert_int_equal(parse_str(s, R, &p, &pr, &err), SMTP_ADDR_TOO_LONG);
}

/* test_domain_limits - P6: domain 254/255 ok, 256/4096 too long */
static void test_domain_limits(void **state)
{
	char d[8192];
	const char *err;
	static const size_t ok[] = { 1, 63, 64, 65, 128, 253, 254, 255 };
	static const size_t bad[] = { 256, 257, 4096 };
	size_t i;

	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		make_domain(d, ok[i]);
		assert_int_equal(smtp_domain_check(d, ok[i], &err),
		    SMTP_ADDR_OK);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		make_domain(d, bad[i]);
		assert_int_equal(smtp_domain_check(d, bad[i], &err),
		    SMTP_ADDR_TOO_LONG);
		assert_string_equal(err, "domain too long");
	}

	/*
	 * In a path the 256-octet path limit bites first ("<a@" + 253 +
	 * ">" is 257), so the domain limit shows only in the reply text.
	 */
	expect_len(1, 252, SMTP_ADDR_OK, NULL);
	expect_len(1, 253, SMTP_ADDR_TOO_LONG, "path too long");
	expect_len(1, 254, SMTP_ADDR_TOO_LONG, "path too long");
	expect_len(1, 255, SMTP_ADDR_TOO_LONG, "path too long");
	expect_len(1, 256, SMTP_ADDR_TOO_LONG, "domain too long");
	expect_len(1, 4096, SMTP_ADDR_TOO_LONG, "domain too long");
}

/* test_label_limits - P6: label 63 ok, 64 too long */
static void test_label_limits(void **state)
{
	struct smtp_path p;
	struct smtp_params pr;
	const char *err;
	char s[300];

	snprintf(s, sizeof(s), "<u@%s.example>",
	    "abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabc");
	assert_int_equal(parse_str(s, R, &p, &pr, &err), SMTP_ADDR_OK);
	snprintf(s, sizeof(s), "<u@%s.example>",
	    "abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcd");
	assert_int_equal(parse_str(s, R, &p, &pr, &err), SMTP_ADDR_TOO_LONG);
	assert_string_equal(err, "domain label too long");
	/* the last label too */
	snprintf(s, sizeof(s), "<u@example.%s>",
	    "abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcd");
	assert_int_equal(parse_str(s, R, &p, &pr, &err), SMTP_ADDR_TOO_LONG);
	assert_int_equal(smtp_domain_check(L("a-b.c-d"), &err), SMTP_ADDR_OK);
	assert_int_equal(smtp_domain_check(L("a.b."), &err),
	    SMTP_ADDR_SYNTAX);
	assert_int_equal(smtp_domain_check(L(""), &err), SMTP_ADDR_SYNTAX);
	assert_int_equal(smtp_domain_check(L("[1.2.3.4]"), &err),
	    SMTP_ADDR_SYNTAX);
}

/* test_path_limits - P6: the whole path, 256 ok and 257 too long */
static void test_path_limits(void **state)
{
	struct smtp_path p;
	struct smtp_params pr;
	const char *err;
	char s[600], dom[300];

	/* "<" 64 "@" 189 ">" = 256 */
	expect_len(64, 189, SMTP_ADDR_OK, NULL);
	expect_len(64, 190, SMTP_ADDR_TOO_LONG, "path too long");
	expect_len(63, 190, SMTP_ADDR_OK, NULL);
	expect_len(63, 191, SMTP_ADDR_TOO_LONG, "path too long");

	/* the longest path gives the longest stored address: 254 */
	{
		char *t = path_with(64, 189);

		assert_int_equal(parse_str(t, R, &p, &pr, &err), SMTP_ADDR_OK);
		assert_int_equal(strlen(p.addr), SMTP_PATH_MAX - 2);
		free(t);
	}

	/* a source route counts: "<@" D ":a@b.example>" = D + 15 */
	make_domain(dom, 241);
	snprintf(s, sizeof(s), "<@%s:a@b.example>", dom);
	assert_int_equal(strlen(s), 256);
	assert_int_equal(parse_str(s, R, &p, &pr, &err), SMTP_ADDR_OK);
	assert_string_equal(p.addr, "a@b.example");
	make_domain(dom, 242);
	snprintf(s, sizeof(s), "<@%s:a@b.example>", dom);
	assert_int_equal(parse_str(s, R, &p, &pr, &err), SMTP_ADDR_TOO_LONG);
	assert_string_equal(err, "path too long");

	/* parameters do not count toward the path */
	{
		char *t = path_with(64, 189);
		char big[600];

		snprintf(big, sizeof(big), "%s SIZE=1 BODY=8BITMIME", t);
		assert_int_equal(parse_str(big, M, &p, &pr, &err),
		    SMTP_ADDR_OK);
		free(t);
	}
}

struct param_case {
	const char *arg;
	size_t len;
	enum smtp_addr_kind kind;
	enum smtp_addr_status status;
};

static const struct param_case param_cases[] = {
	/* P7 */
	{ L("<a@b.example> FOO=bar"), M, SMTP_ADDR_PARAM_UNKNOWN },
	{ L("<a@b.example> SIZE=1 SIZE=2"), M, SMTP_ADDR_PARAM_DUP },
	{ L("<a@b.example> size=1 SIZE=1"), M, SMTP_ADDR_PARAM_DUP },
	{ L("<a@b.example> BODY=9BIT"), M, SMTP_ADDR_PARAM_BAD },
	{ L("<a@b.example> BODY=BINARYMIME"), M, SMTP_ADDR_PARAM_BAD },
	{ L("<a@b.example> RET=FULL RET=HDRS"), M, SMTP_ADDR_PARAM_DUP },
	{ L("<a@b.example> RET=SOME"), M, SMTP_ADDR_PARAM_BAD },
	{ L("<a@b.example> ENVID=+0D+0A"), M, SMTP_ADDR_PARAM_BAD },
	{ L("<a@b.example> ENVID=a\rb"), M, SMTP_ADDR_PARAM_BAD },
	{ L("<a@b.example> ENVID=a\nb"), M, SMTP_ADDR_PARAM_BAD },
	{ L("<a@b.example> ENVID=a=b"), M, SMTP_ADDR_PARAM_BAD },
	{ L("<a@b.example> ENVID=="), M, SMTP_ADDR_PARAM_BAD },
	{ L("<a@b.example> ENVID=+00"), M, SMTP_ADDR_PARAM_BAD },
	{ L("<a@b.example> ENVID=+7F"), M, SMTP_ADDR_PARAM_BAD },
	{ L("<a@b.example> ENVID=+FF"), M, SMTP_ADDR_PARAM_BAD },
	{ L("<a@b.example> ENVID=+0a"), M, SMTP_ADDR_PARAM_BAD },
	{ L("<a@b.example> ENVID=+4a"), M, SMTP_ADDR_PARAM_BAD },
	{ L("<a@b.example> ENVID=abc+"), M, SMTP_ADDR_PARAM_BAD },
	{ L("<a@b.example> ENVID=abc+4"), M, SMTP_ADDR_PARAM_BAD },
	{ L("<a@b.example> ENVID=+G0"), M, SMTP_ADDR_PARAM_BAD },
	{ L("<a@b.example> ENVID=\x80"), M, SMTP_ADDR_PARAM_BAD },
	{ L("<a@b.example> ENVID="), M, SMTP_ADDR_PARAM_BAD },
	{ L("<a@b.example> ENVID=a ENVID=b"), M, SMTP_ADDR_PARAM_DUP },
	{ L("<a@b.example> AUTH=<>"), M, SMTP_ADDR_OK },
	{ L("<a@b.example> AUTH=u+40b.example"), M, SMTP_ADDR_OK },
	{ L("<a@b.example> AUTH=<>\n"), M, SMTP_ADDR_PARAM_BAD },
	{ L("<a@b.example> AUTH=foo+0Abar"), M, SMTP_ADDR_PARAM_BAD },
	{ L("<a@b.example> AUTH=foo+0D+0ARCPT"), M, SMTP_ADDR_PARAM_BAD },
	{ L("<a@b.example> AUTH="), M, SMTP_ADDR_PARAM_BAD },
	{ L("<a@b.example> AUTH=a=b"), M, SMTP_ADDR_PARAM_BAD },
	{ L("<a@b.example> SMTPUTF8"), M, SMTP_ADDR_PARAM_UNKNOWN },
	{ L("<a@b.example> SIZE"), M, SMTP_ADDR_PARAM_UNKNOWN },
	{ L("<a@b.example> =x"), M, SMTP_ADDR_PARAM_UNKNOWN },
	{ L("<a@b.example> SIZE==1"), M, SMTP_ADDR_PARAM_BAD },
	{ L("<a@b.example> SIZE=1="), M, SMTP_ADDR_PARAM_BAD },
	{ L("<a@b.example> \"=\""), M, SMTP_ADDR_PARAM_UNKNOWN },
	{ L("<a@b.example> SIZE=1\r"), M, SMTP_ADDR_PARAM_BAD },
	/* a parameter for the other command is unknown here */
	{ L("<a@b.example> SIZE=1"), R, SMTP_ADDR_PARAM_UNKNOWN },
	{ L("<a@b.example> BODY=7BIT"), R, SMTP_ADDR_PARAM_UNKNOWN },
	{ L("<a@b.example> RET=FULL"), R, SMTP_ADDR_PARAM_UNKNOWN },
	{ L("<a@b.example> ENVID=x"), R, SMTP_ADDR_PARAM_UNKNOWN },
	{ L("<a@b.example> AUTH=<>"), R, SMTP_ADDR_PARAM_UNKNOWN },
	{ L("<a@b.example> NOTIFY=NEVER"), M, SMTP_ADDR_PARAM_UNKNOWN },
	{ L("<a@b.example> ORCPT=rfc822;a+40b"), M, SMTP_ADDR_PARAM_UNKNOWN },
	/* the first fault found is reported */
	{ L("<a@b.example> FOO=1 SIZE=x"), M, SMTP_ADDR_PARAM_UNKNOWN },
	{ L("<a@b.example> SIZE=x FOO=1"), M, SMTP_ADDR_PARAM_BAD },
	{ L("<a@b.example> SIZE=1 FOO=1 SIZE=2"), M, SMTP_ADDR_PARAM_UNKNOWN },
	{ L("<a> FOO=1"), M, SMTP_ADDR_SYNTAX },
	/* NOTIFY */
	{ L("<a@b.example> NOTIFY=NEVER,SUCCESS"), R, SMTP_ADDR_PARAM_BAD },
	{ L("<a@b.example> NOTIFY=DELAY,NEVER"), R, SMTP_ADDR_PARAM_BAD },
	{ L("<a@b.example> NOTIFY="), R, SMTP_ADDR_PARAM_BAD },
	{ L("<a@b.example> NOTIFY=SUCCESS,"), R, SMTP_ADDR_PARAM_BAD },
	{ L("<a@b.example> NOTIFY=,SUCCESS"), R, SMTP_ADDR_PARAM_BAD },
	{ L("<a@b.example> NOTIFY=SUCCESS,,DELAY"), R, SMTP_ADDR_PARAM_BAD },
	{ L("<a@b.example> NOTIFY=SOMETIMES"), R, SMTP_ADDR_PARAM_BAD },
	{ L("<a@b.example> NOTIFY=NEVER NOTIFY=NEVER"), R,
	  SMTP_ADDR_PARAM_DUP },
	/* ORCPT */
	{ L("<a@b.example> ORCPT=rfc822;"), R, SMTP_ADDR_PARAM_BAD },
	{ L("<a@b.example> ORCPT=;a+40b"), R, SMTP_ADDR_PARAM_BAD },
	{ L("<a@b.example> ORCPT=rfc822"), R, SMTP_ADDR_PARAM_BAD },
	{ L("<a@b.example> ORCPT=rfc822;a+0Db"), R, SMTP_ADDR_PARAM_BAD },
	{ L("<a@b.example> ORCPT=rfc822;a+0"), R, SMTP_ADDR_PARAM_BAD },
	{ L("<a@b.example> ORCPT=rf(c;a"), R, SMTP_ADDR_PARAM_BAD },
	{ L("<a@b.example> ORCPT=rfc822;a ORCPT=rfc822;b"), R,
	  SMTP_ADDR_PARAM_DUP },
	/* P8: SIZE */
	{ L("<a@b.example> SIZE=18446744073709551615"), M, SMTP_ADDR_OK },
	{ L("<a@b.example> SIZE=18446744073709551616"), M,
	  SMTP_ADDR_SIZE_OVERFLOW },
	{ L("<a@b.example> SIZE=99999999999999999999"), M,
	  SMTP_ADDR_SIZE_OVERFLOW },
	{ L("<a@b.example> SIZE=184467440737095516150"), M,
	  SMTP_ADDR_SIZE_OVERFLOW },
	{ L("<a@b.example> SIZE=-1"), M, SMTP_ADDR_PARAM_BAD },
	{ L("<a@b.example> SIZE=+1"), M, SMTP_ADDR_PARAM_BAD },
	{ L("<a@b.example> SIZE=0x10"), M, SMTP_ADDR_PARAM_BAD },
	{ L("<a@b.example> SIZE=1e3"), M, SMTP_ADDR_PARAM_BAD },
	{ L("<a@b.example> SIZE="), M, SMTP_ADDR_PARAM_BAD },
	{ L("<a@b.example> SIZE= 1"), M, SMTP_ADDR_PARAM_BAD },
	{ L("<a@b.example> SIZE=0"), M, SMTP_ADDR_OK },
	{ L("<> SIZE=99999999999999999999"), M, SMTP_ADDR_SIZE_OVERFLOW },
};

/* test_param_table - P7, P8 outcomes */
static void test_param_table(void **state)
{
	size_t i;

	for (i = 0; i < sizeof(param_cases) / sizeof(param_cases[0]); i++) {
		const struct param_case *c = &param_cases[i];
		struct smtp_path p;
		struct smtp_params pr;
		const char *err = NULL;
		enum smtp_addr_status st;

		st = smtp_addr_parse(c->arg, c->len, c->kind, &p, &pr, &err);
		if (st != c->status)
			print_error("row %zu: \"%s\": got %d want %d (%s)\n",
			    i, c->arg, (int)st, (int)c->status,
			    err ? err : "-");
		assert_int_equal(st, c->status);
		if (st != SMTP_ADDR_OK)
			assert_non_null(err);
	}
}

/* test_param_values - what a good parameter set stores */
static void test_param_values(void **state)
{
	struct smtp_path p;
	struct smtp_params pr;
	const char *err;

	assert_int_equal(parse_str("<a@b.example>", M, &p, &pr, &err),
	    SMTP_ADDR_OK);
	assert_false(pr.has_size);
	assert_int_equal(pr.body, SMTP_BODY_NONE);
	assert_int_equal(pr.ret, SMTP_RET_NONE);
	assert_false(pr.has_envid);
	assert_int_equal(pr.notify, 0);
	assert_false(pr.has_orcpt);
	assert_false(pr.has_auth);

	assert_int_equal(parse_str("<a@b.example>  size=10   BODY=8bitmime "
	    " ret=hdrs envid=Q+2BQ+3D+20x auth=<> ", M, &p, &pr, &err),
	    SMTP_ADDR_OK);
	assert_true(pr.has_size);
	assert_int_equal(pr.size, 10);
	assert_int_equal(pr.body, SMTP_BODY_8BITMIME);
	assert_int_equal(pr.ret, SMTP_RET_HDRS);
	assert_true(pr.has_envid);
	assert_string_equal(pr.envid, "Q+Q= x");
	assert_true(pr.has_auth);

	assert_int_equal(parse_str("<> BODY=7BIT RET=FULL ENVID=\"x\"", M, &p,
	    &pr, &err), SMTP_ADDR_OK);
	assert_int_equal(pr.body, SMTP_BODY_7BIT);
	assert_int_equal(pr.ret, SMTP_RET_FULL);
	assert_string_equal(pr.envid, "\"x\"");

	assert_int_equal(parse_str("<a@b.example> SIZE=18446744073709551615",
	    M, &p, &pr, &err), SMTP_ADDR_OK);
	assert_true(pr.size == 18446744073709551615ULL);
	assert_int_equal(parse_str("<a@b.example> SIZE=0000000000000000000000"
	    "000000000007", M, &p, &pr, &err), SMTP_ADDR_OK);
	assert_int_equal(pr.size, 7);

	assert_int_equal(parse_str("<a@b.example> SIZE=18446744073709551616",
	    M, &p, &pr, &err), SMTP_ADDR_SIZE_OVERFLOW);
	assert_string_equal(err, "SIZE too large");
	assert_int_equal(parse_str("<a@b.example> SIZE=-1", M, &p, &pr, &err),
	    SMTP_ADDR_PARAM_BAD);
	assert_string_equal(err, "SIZE must be digits");

	assert_int_equal(parse_str("<a@b.example> NOTIFY=success,Failure,DELAY"
	    " ORCPT=rfc822;user+40example.org", R, &p, &pr, &err),
	    SMTP_ADDR_OK);
	assert_int_equal(pr.notify, SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_FAILURE |
	    SMTP_NOTIFY_DELAY);
	assert_true(pr.has_orcpt);
	assert_string_equal(pr.orcpt, "rfc822;user@example.org");

	assert_int_equal(parse_str("<a@b.example> NOTIFY=never", R, &p, &pr,
	    &err), SMTP_ADDR_OK);
	assert_int_equal(pr.notify, SMTP_NOTIFY_NEVER);
	assert_int_equal(parse_str("<a@b.example> NOTIFY=DELAY,DELAY", R, &p,
	    &pr, &err), SMTP_ADDR_OK);
	assert_int_equal(pr.notify, SMTP_NOTIFY_DELAY);
}

/* repeat_param - "<a@b.example>" and n copies of " p" into a new string */
static char *repeat_param(const char *p, int n)
{
	struct buf b = BUF_INIT;
	int i;

	buf_puts(&b, "<a@b.example>");
	for (i = 0; i < n; i++) {
		buf_putc(&b, ' ');
		buf_puts(&b, p);
	}
	return buf_steal(&b);
}

/* test_param_count - P7: more than 16 parameters is a bad request */
static void test_param_count(void **state)
{
	struct smtp_path p;
	struct smtp_params pr;
	const char *err;
	char *s;

	s = repeat_param("FOO=1", 16);
	assert_int_equal(parse_str(s, M, &p, &pr, &err),
	    SMTP_ADDR_PARAM_UNKNOWN);
	free(s);
	s = repeat_param("FOO=1", 17);
	assert_int_equal(parse_str(s, M, &p, &pr, &err), SMTP_ADDR_PARAM_BAD);
	assert_string_equal(err, "too many parameters");
	free(s);
	s = repeat_param("SIZE=1", 500);
	assert_int_equal(parse_str(s, M, &p, &pr, &err), SMTP_ADDR_PARAM_BAD);
	free(s);
	/* runs of spaces do not make empty parameters */
	s = repeat_param(" ", 100);
	assert_int_equal(parse_str(s, M, &p, &pr, &err), SMTP_ADDR_OK);
	free(s);
}

/* test_xtext_lengths - ENVID 100 / ORCPT 500 decoded, and no further */
static void test_xtext_lengths(void **state)
{
	struct smtp_path p;
	struct smtp_params pr;
	const char *err;
	struct buf b = BUF_INIT;
	int i;

	buf_puts(&b, "<> ENVID=");
	for (i = 0; i < 99; i++)
		buf_putc(&b, 'e');
	buf_puts(&b, "+2B");		/* the 100th byte, encoded */
	assert_int_equal(parse_str(buf_cstr(&b), M, &p, &pr, &err),
	    SMTP_ADDR_OK);
	assert_int_equal(strlen(pr.envid), 100);
	assert_int_equal(pr.envid[99], '+');
	buf_putc(&b, 'e');
	assert_int_equal(parse_str(buf_cstr(&b), M, &p, &pr, &err),
	    SMTP_ADDR_PARAM_BAD);
	assert_string_equal(err, "ENVID too long");

	buf_reset(&b);
	buf_puts(&b, "<a@b.example> ORCPT=rfc822;");
	for (i = 0; i < 500 - 7; i++)
		buf_puts(&b, "+41");
	assert_int_equal(parse_str(buf_cstr(&b), R, &p, &pr, &err),
	    SMTP_ADDR_OK);
	assert_int_equal(strlen(pr.orcpt), SMTP_ORCPT_MAX);
	assert_memory_equal(pr.orcpt, "rfc822;AAA", 10);
	buf_puts(&b, "+41");
	assert_int_equal(parse_str(buf_cstr(&b), R, &p, &pr, &err),
	    SMTP_ADDR_PARAM_BAD);
	assert_string_equal(err, "ORCPT too long");

	/* an addr-type that alone fills the limit */
	buf_reset(&b);
	buf_puts(&b, "<a@b.example> ORCPT=");
	for (i = 0; i < 600; i++)
		buf_putc(&b, 't');
	buf_puts(&b, ";x");
	assert_int_equal(parse_str(buf_cstr(&b), R, &p, &pr, &err),
	    SMTP_ADDR_PARAM_BAD);
	buf_free(&b);
}

/* test_xtext_encode - the writer matches the strict reader */
static void test_xtext_encode(void **state)
{
	char out[64];
	struct smtp_path p;
	struct smtp_params pr;
	const char *err;
	char arg[128];
	static const char *const samples[] = {
		"abc", "a+b=c d", "user@example.org", "<>", "\"q\"", "~!",
		"+++", "===", "x y z",
	};
	size_t i;

	assert_true(smtp_xtext_encode("abc", out, sizeof(out)));
	assert_string_equal(out, "abc");
	assert_true(smtp_xtext_encode("a+b=c d", out, sizeof(out)));
	assert_string_equal(out, "a+2Bb+3Dc+20d");
	assert_true(smtp_xtext_encode("\r\n\t\x7f\x80\xff", out, sizeof(out)));
	assert_string_equal(out, "+0D+0A+09+7F+80+FF");
	assert_true(smtp_xtext_encode("", out, sizeof(out)));
	assert_string_equal(out, "");

	/* exact fit, counting the NUL */
	assert_true(smtp_xtext_encode("abc", out, 4));
	assert_false(smtp_xtext_encode("abc", out, 3));
	assert_string_equal(out, "");
	assert_true(smtp_xtext_encode("+", out, 4));
	assert_string_equal(out, "+2B");
	assert_false(smtp_xtext_encode("+", out, 3));
	assert_true(smtp_xtext_encode("a+", out, 5));
	assert_false(smtp_xtext_encode("a+", out, 4));
	assert_false(smtp_xtext_encode("", out, 0));

	for (i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
		assert_true(smtp_xtext_encode(samples[i], out, sizeof(out)));
		snprintf(arg, sizeof(arg), "<> ENVID=%s", out);
		assert_int_equal(parse_str(arg, M, &p, &pr, &err),
		    SMTP_ADDR_OK);
		assert_string_equal(pr.envid, samples[i]);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_path_table),
		cmocka_unit_test(test_errtext_optional),
		cmocka_unit_test(test_local_limits),
		cmocka_unit_test(test_domain_limits),
		cmocka_unit_test(test_label_limits),
		cmocka_unit_test(test_path_limits),
		cmocka_unit_test(test_param_table),
		cmocka_unit_test(test_param_values),
		cmocka_unit_test(test_param_count),
		cmocka_unit_test(test_xtext_lengths),
		cmocka_unit_test(test_xtext_encode),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
