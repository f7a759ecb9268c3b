/*
 * test_util - the mail-agnostic helpers the rest stands on: checksums
 * (hardware and software agree), reversed-label keys and label-boundary
 * matching (what ETRN @domain relies on), escaping, ids, rate limits.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "util/buf.h"
#include "util/crc32c.h"
#include "util/idgen.h"
#include "util/qclock.h"
#include "util/ratelimit.h"
#include "util/strutil.h"

static void test_crc32c(void **state)
{
	unsigned char b[2048];
	size_t n, off;

	/* the check value of CRC-32C (RFC 3720, appendix B.4) */
	assert_int_equal(crc32c(0, "123456789", 9), 0xe3069283u);
	assert_int_equal(crc32c_sw(0, "123456789", 9), 0xe3069283u);
	for (n = 0; n < sizeof(b); n++)
		b[n] = (unsigned char)(n * 131 + 7);
	for (n = 0; n < 600; n += 7)
		for (off = 0; off < 9; off++)
			assert_int_equal(crc32c(0, b + off, n),
			    crc32c_sw(0, b + off, n));
	/* a checksum continues over split input */
	assert_int_equal(crc32c(crc32c(0, b, 100), b + 100, 900),
	    crc32c(0, b, 1000));
}

static void test_domain_keys(void **state)
{
	struct buf k = BUF_INIT;

	domain_rkey(&k, "mail.example.org", 16);
	assert_string_equal(k.p, "org.example.mail.");
	buf_reset(&k);
	domain_rkey(&k, "org", 3);
	assert_string_equal(k.p, "org.");
	buf_free(&k);
	assert_true(domain_within("example.org", "example.org"));
	assert_true(domain_within("a.b.Example.ORG", "example.org"));
	assert_false(domain_within("badexample.org", "example.org"));
	assert_false(domain_within("example.org.au", "example.org"));
	assert_false(domain_within("org", "example.org"));
	assert_false(domain_within("example.org", ""));
}

static void test_escape_and_numbers(void **state)
{
	struct buf b = BUF_INIT;
	unsigned long long v;

	str_escape(&b, "a\r\n\\\x01\xff b", 8);
	assert_string_equal(b.p, "a\\x0d\\x0a\\x5c\\x01\\xff b");
	buf_free(&b);
	assert_true(str_parse_u64("18446744073709551615", 20, &v));
	assert_true(v == 18446744073709551615ULL);
	assert_false(str_parse_u64("18446744073709551616", 20, &v));
	assert_false(str_parse_u64("", 0, &v));
	assert_false(str_parse_u64("1x", 2, &v));
	assert_true(str_caseeq_n("EHLO", 4, "ehlo"));
	assert_false(str_caseeq_n("EHLOX", 5, "ehlo"));
}

static void test_ids(void **state)
{
	uint64_t a, b, c;
	char hex[IDGEN_HEX_LEN + 1];

	idgen_floor(UINT64_C(0x7000000000000000));
	a = idgen_next();
	b = idgen_next();
	assert_true(a > UINT64_C(0x7000000000000000));
	assert_true(b > a);	/* a clock behind the floor still counts up */
	idgen_format(b, hex);
	assert_int_equal(strlen(hex), 16);
	assert_true(idgen_parse(hex, &c));
	assert_true(c == b);
	assert_false(idgen_parse("", &c));
	assert_false(idgen_parse("12345678901234567", &c));
	assert_false(idgen_parse("zz", &c));
}

/* the queue's clock: the wall clock at its anchor, then monotonic */
static void test_qclock(void **state)
{
	struct timespec wall;
	uint64_t a, b;

	qclock_init();
	clock_gettime(CLOCK_REALTIME, &wall);
	a = qclock_now_us();
	b = qclock_now_us();
	assert_true(b >= a);
	assert_true(qclock_now() - wall.tv_sec <= 1 &&
	    wall.tv_sec - qclock_now() <= 1);
	assert_true(qclock_skew() == 0);	/* no step in a microsecond */
}

/* rows of a query: lines ended by LF or by the end, empty ones kept */
static void test_lines(void **state)
{
	const char rows[] = "a.test\n\nb.test";
	const char *p = rows, *end = rows + sizeof(rows) - 1, *ln;
	char out[8];
	size_t n;

	ln = str_next_line(&p, end, &n);
	assert_true(ln == rows && n == 6);
	assert_true(str_copy_line(out, sizeof(out), ln, n));
	assert_string_equal(out, "a.test");
	ln = str_next_line(&p, end, &n);
	assert_non_null(ln);
	assert_int_equal(n, 0);
	assert_false(str_copy_line(out, sizeof(out), ln, n));	/* empty */
	ln = str_next_line(&p, end, &n);
	assert_true(ln != NULL && n == 6 && memcmp(ln, "b.test", 6) == 0);
	assert_null(str_next_line(&p, end, &n));
	assert_false(str_copy_line(out, 6, "b.test", 6));	/* no room */
	p = NULL;
	assert_null(str_next_line(&p, NULL, &n));
}

static void test_ratelimit(void **state)
{
	struct ratelimit *r = ratelimit_new(60, 3);
	unsigned i;

	for (i = 1; i <= 5; i++)
		assert_int_equal(ratelimit_add(r, "a", 1, 1000), i);
	assert_int_equal(ratelimit_get(r, "a", 1, 1030), 5);
	assert_int_equal(ratelimit_get(r, "a", 1, 1060), 0);	/* new window */
	assert_int_equal(ratelimit_get(r, "b", 1, 1000), 0);
	/* at most max_keys keys: a flood of keys cannot grow the table */
	for (i = 0; i < 100; i++) {
		char k[8];

		memcpy(k, &i, sizeof(i));
		assert_int_equal(ratelimit_add(r, k, sizeof(i), 2000), 1);
	}
	ratelimit_free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crc32c),
		cmocka_unit_test(test_domain_keys),
		cmocka_unit_test(test_escape_and_numbers),
		cmocka_unit_test(test_ids),
		cmocka_unit_test(test_qclock),
		cmocka_unit_test(test_lines),
		cmocka_unit_test(test_ratelimit),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
