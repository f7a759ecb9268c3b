/* test_base64 - strict RFC 4648 base64 (SECURITY.md P15) */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "util/base64.h"

/* L - a literal with its exact length, embedded NULs included */
#define L(s) s, sizeof(s) - 1

struct vec {
	const char *plain;
	size_t plen;
	const char *b64;
};

/* RFC 4648 section 10 */
static const struct vec rfc4648[] = {
	{ L(""), "" },
	{ L("f"), "Zg==" },
	{ L("fo"), "Zm8=" },
	{ L("foo"), "Zm9v" },
	{ L("foob"), "Zm9vYg==" },
	{ L("fooba"), "Zm9vYmE=" },
	{ L("foobar"), "Zm9vYmFy" },
	/* and a few with every kind of byte */
	{ L("\0"), "AA==" },
	{ L("\0\0\0"), "AAAA" },
	{ L("\xff\xfe\xfd"), "//79" },
	{ L("\xfb\xef\xbe"), "++++" },
	{ L("\0tim\0tanstaaftanstaaf"), "AHRpbQB0YW5zdGFhZnRhbnN0YWFm" },
};

/* rng - a small deterministic generator for test data */
static uint32_t rng_state = 2463534242u;

static uint32_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 17;
	rng_state ^= rng_state << 5;
	return rng_state;
}

/* decode_ok - decode s, expecting success; returns the buffer */
static struct buf decode_ok(const char *s, size_t len)
{
	struct buf b = BUF_INIT;

	assert_true(base64_decode(s, len, &b));
	return b;
}

/* decode_bad - s must be refused and leave a prefilled buffer alone */
static void decode_bad(const char *s, size_t len)
{
	struct buf b = BUF_INIT;

	buf_puts(&b, "keep");
	if (base64_decode(s, len, &b))
		fail_msg("accepted \"%.*s\" (%zu bytes)", (int)len, s, len);
	assert_int_equal(b.len, 4);
	assert_memory_equal(b.p, "keep", 5);
	buf_free(&b);
}

static void test_rfc4648_vectors(void **state)
{
	size_t i;

	for (i = 0; i < sizeof(rfc4648) / sizeof(rfc4648[0]); i++) {
		const struct vec *v = &rfc4648[i];
		struct buf e = BUF_INIT, d;

		base64_encode(v->plain, v->plen, &e);
		assert_int_equal(e.len, strlen(v->b64));
		assert_int_equal(e.len, BASE64_ENCODED_LEN(v->plen));
		assert_string_equal(buf_cstr(&e), v->b64);
		d = decode_ok(v->b64, strlen(v->b64));
		assert_int_equal(d.len, v->plen);
		if (v->plen)
			assert_memory_equal(d.p, v->plain, v->plen);
		buf_free(&e);
		buf_free(&d);
	}
}

static void test_empty(void **state)
{
	struct buf b = BUF_INIT;

	assert_true(base64_decode("", 0, &b));
	assert_int_equal(b.len, 0);
	assert_null(b.p);		/* nothing was even allocated */
	base64_encode("", 0, &b);
	assert_int_equal(b.len, 0);
	/* an empty response appended to something leaves it */
	buf_puts(&b, "x");
	assert_true(base64_decode("", 0, &b));
	assert_string_equal(buf_cstr(&b), "x");
	buf_free(&b);
}

static void test_appends(void **state)
{
	struct buf b = BUF_INIT;

	buf_puts(&b, "ab");
	assert_true(base64_decode(L("Zm9v"), &b));
	assert_int_equal(b.len, 5);
	assert_string_equal(b.p, "abfoo");
	base64_encode("f", 1, &b);
	assert_string_equal(b.p, "abfooZg==");
	buf_free(&b);
}

static void test_bad_lengths(void **state)
{
	/* 4n+1, 4n+2, 4n+3: padding is required */
	decode_bad(L("Z"));
	decode_bad(L("Zg"));
	decode_bad(L("Zm8"));
	decode_bad(L("Zm9vY"));
	decode_bad(L("Zm9vYg"));
	decode_bad(L("Zm9vYmE"));
	decode_bad(L("Zm9vYg="));
	decode_bad(L("="));
	decode_bad(L("=="));
	decode_bad(L("==="));
	decode_bad(L("Zm9v="));
}

static void test_padding_rules(void **state)
{
	/* '=' in the middle or at the start */
	decode_bad(L("Zg==Zm9v"));
	decode_bad(L("Zm=v"));
	decode_bad(L("=Zm9"));
	decode_bad(L("Z=9v"));
	decode_bad(L("Zg=a"));
	decode_bad(L("Zm8=Zm8="));
	/* three or four pads */
	decode_bad(L("Z==="));
	decode_bad(L("===="));
	decode_bad(L("Zm9v===="));
	/* non-zero bits under the padding (RFC 4648 3.5) */
	decode_bad(L("Zh=="));
	decode_bad(L("Zm9="));
	decode_bad(L("//=="));
	decode_bad(L("AB=="));
	decode_bad(L("AAB="));
	/* the canonical forms of those are fine */
	{
		struct buf b = decode_ok(L("AA=="));

		assert_int_equal(b.len, 1);
		buf_free(&b);
		b = decode_ok(L("AAA="));
		assert_int_equal(b.len, 2);
		buf_free(&b);
	}
}

static void test_invalid_chars(void **state)
{
	char s[8];
	int c;

	/* every byte outside the alphabet at every position ("=" too:
	 * "Zm9vYmF=" would leave non-zero bits under the pad) */
	for (c = 0; c < 256; c++) {
		int pos;

		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (c >= '0' && c <= '9') || c == '+' || c == '/')
			continue;
		for (pos = 0; pos < 8; pos++) {
			memcpy(s, "Zm9vYmFy", 8);
			s[pos] = (char)c;
			decode_bad(s, 8);
		}
	}
	/* white space and line breaks, URL-safe alphabet, the SASL cancel */
	decode_bad(L("Zm9v\r\n"));
	decode_bad(L("Zm9v\n"));
	decode_bad(L(" Zm9v"));
	decode_bad(L("Zm9v "));
	decode_bad(L("Zm 9v"));
	decode_bad(L("Zm9v\tYmFy"));
	decode_bad(L("-_-_"));
	decode_bad(L("*"));
	decode_bad(L("Zm9\0"));
	decode_bad(L("\0\0\0\0"));
	decode_bad(L("Zm9v\xc3\xa9Zm"));
}

static void test_blob_64k(void **state)
{
	size_t n = 48 * 1024, i;
	unsigned char *raw = malloc(n);
	struct buf e = BUF_INIT, d = BUF_INIT;
	char *big;

	assert_non_null(raw);
	for (i = 0; i < n; i++)
		raw[i] = (unsigned char)rng();
	base64_encode(raw, n, &e);
	assert_int_equal(e.len, 64 * 1024);
	assert_true(base64_decode(e.p, e.len, &d));
	assert_int_equal(d.len, n);
	assert_memory_equal(d.p, raw, n);
	/* the decoder writes exactly what it reserved room for */
	assert_true(d.cap >= d.len + 1);

	/* 64 kB of one letter, and a 64 kB blob with one byte too many */
	big = malloc(65 * 1024 + 1);
	assert_non_null(big);
	memset(big, 'A', 65 * 1024);
	buf_reset(&d);
	assert_true(base64_decode(big, 64 * 1024, &d));
	assert_int_equal(d.len, 48 * 1024);
	for (i = 0; i < d.len; i++)
		assert_int_equal(d.p[i], 0);
	decode_bad(big, 64 * 1024 + 1);
	/* and a bad byte at the very end of a long input */
	big[65 * 1024 - 1] = '.';
	decode_bad(big, 65 * 1024);
	free(big);
	free(raw);
	buf_free(&e);
	buf_free(&d);
}

static void test_roundtrip_all_lengths(void **state)
{
	unsigned char raw[300];
	size_t len, i;

	for (len = 0; len <= sizeof(raw); len++) {
		struct buf e = BUF_INIT, d = BUF_INIT, e2 = BUF_INIT;

		for (i = 0; i < len; i++)
			raw[i] = (unsigned char)rng();
		base64_encode(raw, len, &e);
		assert_int_equal(e.len, BASE64_ENCODED_LEN(len));
		assert_int_equal(e.len % 4, 0);
		assert_true(base64_decode(e.p ? e.p : "", e.len, &d));
		assert_int_equal(d.len, len);
		assert_true(d.len <= BASE64_DECODED_MAX(e.len));
		if (len)
			assert_memory_equal(d.p, raw, len);
		/* one encoding per byte string: encoding it again agrees */
		base64_encode(d.p, d.len, &e2);
		assert_int_equal(e2.len, e.len);
		if (len)
			assert_memory_equal(e2.p, e.p, e.len);
		buf_free(&e);
		buf_free(&d);
		buf_free(&e2);
	}
}

static void test_every_byte(void **state)
{
	unsigned char raw[256];
	struct buf e = BUF_INIT, d = BUF_INIT;
	int i;

	for (i = 0; i < 256; i++)
		raw[i] = (unsigned char)i;
	base64_encode(raw, sizeof(raw), &e);
	assert_true(base64_decode(e.p, e.len, &d));
	assert_int_equal(d.len, 256);
	assert_memory_equal(d.p, raw, 256);
	buf_free(&e);
	buf_free(&d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc4648_vectors),
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_appends),
		cmocka_unit_test(test_bad_lengths),
		cmocka_unit_test(test_padding_rules),
		cmocka_unit_test(test_invalid_chars),
		cmocka_unit_test(test_blob_64k),
		cmocka_unit_test(test_roundtrip_all_lengths),
		cmocka_unit_test(test_every_byte),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
