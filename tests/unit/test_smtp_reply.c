/* test_smtp_reply - the client's reply parser, EHLO capabilities (Y5) */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "smtp/smtp_reply.h"
#include "util/buf.h"

/* L - a literal with its exact length, embedded NULs included */
#define L(s) s, sizeof(s) - 1

/* feed_all - feed NUL-terminated lines until a status other than MORE */
static enum smtp_reply_status feed_all(struct smtp_reply *r,
    const char *const *lines)
{
	enum smtp_reply_status st = SMTP_REPLY_MORE;
	size_t i;

	for (i = 0; lines[i] != NULL; i++) {
		st = smtp_reply_feed(r, lines[i], strlen(lines[i]));
		if (st != SMTP_REPLY_MORE)
			break;
	}
	return st;
}

/* text_is - the collected text equals s */
static void text_is(const struct smtp_reply *r, const char *s)
{
	assert_int_equal(r->text.len, strlen(s));
	assert_memory_equal(buf_cstr(&r->text), s, r->text.len);
}

static void test_single_line(void **state)
{
	struct smtp_reply r;

	smtp_reply_init(&r);
	assert_int_equal(smtp_reply_feed(&r, L("250 OK")), SMTP_REPLY_DONE);
	assert_int_equal(r.code, 250);
	assert_int_equal(r.nlines, 1);
	assert_int_equal(r.status, SMTP_REPLY_DONE);
	assert_null(r.error);
	text_is(&r, "OK");
	smtp_reply_free(&r);
}

static void test_bare_code(void **state)
{
	struct smtp_reply r;

	smtp_reply_init(&r);
	assert_int_equal(smtp_reply_feed(&r, L("354")), SMTP_REPLY_DONE);
	assert_int_equal(r.code, 354);
	text_is(&r, "");

	/* a bare code also ends a multi-line reply; "250-" is an empty line */
	smtp_reply_reset(&r);
	assert_int_equal(smtp_reply_feed(&r, L("250-")), SMTP_REPLY_MORE);
	assert_int_equal(smtp_reply_feed(&r, L("250-x")), SMTP_REPLY_MORE);
	assert_int_equal(smtp_reply_feed(&r, L("250")), SMTP_REPLY_DONE);
	assert_int_equal(r.nlines, 3);
	text_is(&r, "\nx\n");
	/* a space and nothing else: a last line with empty text */
	smtp_reply_reset(&r);
	assert_int_equal(smtp_reply_feed(&r, L("220 ")), SMTP_REPLY_DONE);
	text_is(&r, "");
	smtp_reply_free(&r);
}

static void test_every_code(void **state)
{
	struct smtp_reply r;
	char line[8];
	int a, b, c;

	smtp_reply_init(&r);
	for (a = 0; a < 10; a++) {
		for (b = 0; b < 10; b++) {
			for (c = 0; c < 10; c++) {
				bool ok = a >= 2 && a <= 5 && b <= 5;

				snprintf(line, sizeof(line), "%d%d%d x", a, b, c);
				smtp_reply_reset(&r);
				assert_int_equal(smtp_reply_feed(&r, line, 5),
				    ok ? SMTP_REPLY_DONE : SMTP_REPLY_BAD);
				if (ok)
					assert_int_equal(r.code,
					    a * 100 + b * 10 + c);
				else
					assert_int_equal(r.code, 0);
			}
		}
	}
	smtp_reply_free(&r);
}

struct bad_case {
	const char *line;
	size_t len;
};

/* Y5: every one of these is refused as the first line of a reply. */
static const struct bad_case bad_cases[] = {
	{ L("") },
	{ L("2") },
	{ L("25") },
	{ L("2x0") },
	{ L("2x0 OK") },
	{ L("25 OK") },
	{ L("25a OK") },
	{ L("a50 OK") },
	{ L("-250 OK") },
	{ L(" 250 OK") },
	{ L("250x") },
	{ L("250xOK") },
	{ L("250\tOK") },
	{ L("250=OK") },
	{ L("250_OK") },
	{ L("150 OK") },
	{ L("650 OK") },
	{ L("050 OK") },
	{ L("260 OK") },
	{ L("290 OK") },
	{ L("2500 OK") },
	{ L("250 a\0b") },
	{ L("250\0") },
	{ L("\0\0\0") },
	{ L("250 a\rb") },
	{ L("250 a\nb") },
	{ L("250 OK\r") },
	{ L("250-OK\n250 x") },
	{ L("250 a\x01") },
	{ L("250 \x1b[31mred") },
	{ L("250 a\x7f") },
	{ L("250-a\0") },
	{ L("\xff\xfe\xfd") },
	{ L("\xff\xfe\xfd OK") },
};

static void test_hostile_lines(void **state)
{
	struct smtp_reply r;
	size_t i;

	smtp_reply_init(&r);
	for (i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		smtp_reply_reset(&r);
		if (smtp_reply_feed(&r, bad_cases[i].line, bad_cases[i].len) !=
		    SMTP_REPLY_BAD)
			fail_msg("case %zu accepted", i);
		assert_int_equal(r.status, SMTP_REPLY_BAD);
		assert_non_null(r.error);
		assert_int_equal(r.nlines, 0);
		assert_int_equal(r.text.len, 0);
	}
	/* the same lines after a good continuation line */
	for (i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		smtp_reply_reset(&r);
		assert_int_equal(smtp_reply_feed(&r, L("250-first")),
		    SMTP_REPLY_MORE);
		if (smtp_reply_feed(&r, bad_cases[i].line, bad_cases[i].len) !=
		    SMTP_REPLY_BAD)
			fail_msg("case %zu accepted as a second line", i);
		assert_int_equal(r.nlines, 1);
		text_is(&r, "first");
	}
	/* NULL with no length is just a short line */
	smtp_reply_reset(&r);
	assert_int_equal(smtp_reply_feed(&r, NULL, 0), SMTP_REPLY_BAD);
	smtp_reply_free(&r);
}

static void test_good_text_bytes(void **state)
{
	struct smtp_reply r;

	smtp_reply_init(&r);
	assert_int_equal(smtp_reply_feed(&r, L("250 a\tb")), SMTP_REPLY_DONE);
	text_is(&r, "a\tb");
	smtp_reply_reset(&r);
	/* 8-bit text is kept (escaped in logs), not refused */
	assert_int_equal(smtp_reply_feed(&r, L("220 caf\xc3\xa9 \xe9t\xe9")),
	    SMTP_REPLY_DONE);
	text_is(&r, "caf\xc3\xa9 \xe9t\xe9");
	smtp_reply_reset(&r);
	assert_int_equal(smtp_reply_feed(&r, L("550  5.1.1  two  spaces ")),
	    SMTP_REPLY_DONE);
	text_is(&r, " 5.1.1  two  spaces ");
	smtp_reply_free(&r);
}

static void test_mixed_codes(void **state)
{
	struct smtp_reply r;
	static const char *const mixed[] = { "250-a", "250-b", "550 c", NULL };
	static const char *const near[] = { "250-a", "251 b", NULL };
	static const char *const cls[] = { "450-a", "550 b", NULL };

	smtp_reply_init(&r);
	assert_int_equal(feed_all(&r, mixed), SMTP_REPLY_BAD);
	assert_int_equal(r.nlines, 2);
	assert_int_equal(r.code, 250);
	assert_non_null(strstr(r.error, "code"));
	smtp_reply_reset(&r);
	assert_int_equal(feed_all(&r, near), SMTP_REPLY_BAD);
	smtp_reply_reset(&r);
	assert_int_equal(feed_all(&r, cls), SMTP_REPLY_BAD);
	smtp_reply_free(&r);
}

static void test_line_limit(void **state)
{
	struct smtp_reply r;
	size_t big = 1024 * 1024;
	char *line = malloc(big);

	assert_non_null(line);
	memset(line, 'a', big);
	memcpy(line, "250 ", 4);
	smtp_reply_init(&r);
	/* 510 octets + CRLF = 512: the longest legal line */
	assert_int_equal(smtp_reply_feed(&r, line, SMTP_REPLY_LINE_MAX - 2),
	    SMTP_REPLY_DONE);
	assert_int_equal(r.text.len, SMTP_REPLY_LINE_MAX - 6);
	smtp_reply_reset(&r);
	assert_int_equal(smtp_reply_feed(&r, line, SMTP_REPLY_LINE_MAX - 1),
	    SMTP_REPLY_BAD);
	assert_int_equal(r.text.len, 0);
	/* a 1 MB line, also as a continuation */
	smtp_reply_reset(&r);
	assert_int_equal(smtp_reply_feed(&r, line, big), SMTP_REPLY_BAD);
	assert_int_equal(r.text.len, 0);
	line[3] = '-';
	smtp_reply_reset(&r);
	assert_int_equal(smtp_reply_feed(&r, line, 100), SMTP_REPLY_MORE);
	assert_int_equal(smtp_reply_feed(&r, line, big), SMTP_REPLY_BAD);
	assert_int_equal(r.text.len, 96);
	/* the length is checked before the bytes: a 1 MB line of NULs */
	memset(line, 0, big);
	smtp_reply_reset(&r);
	assert_int_equal(smtp_reply_feed(&r, line, big), SMTP_REPLY_BAD);
	assert_non_null(strstr(r.error, "long"));
	free(line);
	smtp_reply_free(&r);
}

static void test_endless_continuation(void **state)
{
	struct smtp_reply r;
	unsigned long i;
	enum smtp_reply_status st = SMTP_REPLY_MORE;

	smtp_reply_init(&r);
	for (i = 1; i <= 1000000 && st == SMTP_REPLY_MORE; i++)
		st = smtp_reply_feed(&r, L("250-x"));
	assert_int_equal(st, SMTP_REPLY_BAD);
	assert_int_equal(i - 1, SMTP_REPLY_MAX_LINES + 1);
	assert_int_equal(r.nlines, SMTP_REPLY_MAX_LINES);
	assert_true(r.text.len <= SMTP_REPLY_MAX_TEXT);
	/* sticky: a final line does not revive it */
	assert_int_equal(smtp_reply_feed(&r, L("250 end")), SMTP_REPLY_BAD);
	assert_int_equal(r.nlines, SMTP_REPLY_MAX_LINES);

	/* exactly SMTP_REPLY_MAX_LINES lines is fine */
	smtp_reply_reset(&r);
	for (i = 1; i < SMTP_REPLY_MAX_LINES; i++)
		assert_int_equal(smtp_reply_feed(&r, L("250-x")),
		    SMTP_REPLY_MORE);
	assert_int_equal(smtp_reply_feed(&r, L("250 x")), SMTP_REPLY_DONE);
	assert_int_equal(r.nlines, SMTP_REPLY_MAX_LINES);
	assert_int_equal(r.text.len, SMTP_REPLY_MAX_LINES * 2 - 1);
	smtp_reply_free(&r);
}

static void test_text_limit(void **state)
{
	struct smtp_reply r;
	char line[SMTP_REPLY_LINE_MAX];
	size_t i, n;

	/* 8 lines of 500 text bytes: 4007 with the newlines */
	memset(line, 'b', sizeof(line));
	memcpy(line, "250-", 4);
	smtp_reply_init(&r);
	for (i = 0; i < 8; i++)
		assert_int_equal(smtp_reply_feed(&r, line, 504),
		    SMTP_REPLY_MORE);
	assert_int_equal(r.text.len, 8 * 500 + 7);
	/* 4007 + 1 + 88 = 4096 exactly is accepted ... */
	n = SMTP_REPLY_MAX_TEXT - r.text.len - 1;
	assert_int_equal(smtp_reply_feed(&r, line, n + 4), SMTP_REPLY_MORE);
	assert_int_equal(r.text.len, SMTP_REPLY_MAX_TEXT);
	/* ... and then even an empty line is one byte too many */
	assert_int_equal(smtp_reply_feed(&r, L("250")), SMTP_REPLY_BAD);
	assert_non_null(strstr(r.error, "text"));
	assert_int_equal(r.text.len, SMTP_REPLY_MAX_TEXT);

	smtp_reply_reset(&r);
	for (i = 0; i < 8; i++)
		assert_int_equal(smtp_reply_feed(&r, line, 504),
		    SMTP_REPLY_MORE);
	line[3] = ' ';
	assert_int_equal(smtp_reply_feed(&r, line, n + 5), SMTP_REPLY_BAD);
	smtp_reply_free(&r);
}

static void test_sticky_and_reset(void **state)
{
	struct smtp_reply r;
	const char *p;

	smtp_reply_init(&r);
	assert_int_equal(smtp_reply_feed(&r, L("220-hello")), SMTP_REPLY_MORE);
	assert_int_equal(smtp_reply_feed(&r, L("220 there")), SMTP_REPLY_DONE);
	p = r.text.p;
	/* a line after DONE is a caller error, not the start of a reply */
	assert_int_equal(smtp_reply_feed(&r, L("250 OK")), SMTP_REPLY_BAD);
	assert_int_equal(r.code, 220);
	text_is(&r, "hello\nthere");
	smtp_reply_reset(&r);
	assert_int_equal(r.code, 0);
	assert_int_equal(r.nlines, 0);
	assert_null(r.error);
	assert_int_equal(r.status, SMTP_REPLY_MORE);
	assert_int_equal(smtp_reply_feed(&r, L("250 OK")), SMTP_REPLY_DONE);
	assert_ptr_equal(r.text.p, p);	/* storage kept */
	text_is(&r, "OK");
	smtp_reply_free(&r);
	assert_null(r.text.p);
	assert_int_equal(r.status, SMTP_REPLY_MORE);
	/* freed twice is harmless: free leaves it initialised */
	smtp_reply_free(&r);
}

static const char *const ehlo_full[] = {
	"250-mx.example.com Hello relay.example.org [192.0.2.1]",
	"250-PIPELINING",
	"250-SIZE 35882577",
	"250-8BITMIME",
	"250-STARTTLS",
	"250-ENHANCEDSTATUSCODES",
	"250-AUTH PLAIN LOGIN",
	"250-DSN",
	"250-SMTPUTF8",
	"250 CHUNKING",
	NULL
};

static void test_ehlo_caps(void **state)
{
	struct smtp_reply r;
	struct smtp_ehlo_caps caps;

	smtp_reply_init(&r);
	assert_int_equal(feed_all(&r, ehlo_full), SMTP_REPLY_DONE);
	assert_int_equal(r.nlines, 10);
	smtp_ehlo_caps(&r, &caps);
	assert_true(caps.pipelining);
	assert_true(caps.starttls);
	assert_true(caps.eightbitmime);
	assert_true(caps.dsn);
	assert_true(caps.enhancedstatuscodes);
	assert_true(caps.smtputf8);
	assert_true(caps.chunking);
	assert_true(caps.has_size);
	assert_int_equal(caps.size, 35882577);
	assert_true(caps.auth);
	assert_string_equal(caps.auth_mechs, "PLAIN LOGIN");
	smtp_reply_free(&r);
}

static void test_ehlo_caps_variants(void **state)
{
	static const char *const minimal[] = {
		"250-PIPELINING STARTTLS",	/* greeting line: no keywords */
		"250-starttls",
		"250-Size",
		"250-STARTTLSX",
		"250-PIPELINING2",
		"250-8BITMIMEx",
		"250-X-EXPS GSSAPI NTLM",
		"250-AUTH=LOGIN PLAIN",
		"250-auth plain cram-md5 PL@IN digest-md5 THIS-NAME-IS-FAR-TOO-LONG",
		"250-AUTH\tx",
		"250-=DSN",
		"250- DSN",
		"250 ",
		NULL
	};
	static const char *const badsize[] = {
		"250-x", "250 SIZE 12ab", NULL
	};
	static const char *const bigsize[] = {
		"250-x", "250 SIZE 99999999999999999999999", NULL
	};
	static const char *const negsize[] = {
		"250-x", "250 SIZE -1", NULL
	};
	static const char *const zerosize[] = {
		"250-x", "250 SIZE 0", NULL
	};
	static const char *const notehlo[] = {
		"550-x", "550 PIPELINING", NULL
	};
	static const char *const partial[] = {
		"250-x", "250-PIPELINING", NULL
	};
	struct smtp_reply r;
	struct smtp_ehlo_caps caps;

	smtp_reply_init(&r);
	assert_int_equal(feed_all(&r, minimal), SMTP_REPLY_DONE);
	smtp_ehlo_caps(&r, &caps);
	assert_false(caps.pipelining);
	assert_true(caps.starttls);
	assert_false(caps.eightbitmime);
	assert_false(caps.dsn);
	assert_true(caps.has_size);
	assert_int_equal(caps.size, 0);
	assert_true(caps.auth);
	assert_string_equal(caps.auth_mechs, "LOGIN PLAIN CRAM-MD5 DIGEST-MD5");

	smtp_reply_reset(&r);
	assert_int_equal(feed_all(&r, badsize), SMTP_REPLY_DONE);
	smtp_ehlo_caps(&r, &caps);
	assert_false(caps.has_size);
	smtp_reply_reset(&r);
	assert_int_equal(feed_all(&r, bigsize), SMTP_REPLY_DONE);
	smtp_ehlo_caps(&r, &caps);
	assert_false(caps.has_size);
	smtp_reply_reset(&r);
	assert_int_equal(feed_all(&r, negsize), SMTP_REPLY_DONE);
	smtp_ehlo_caps(&r, &caps);
	assert_false(caps.has_size);
	smtp_reply_reset(&r);
	assert_int_equal(feed_all(&r, zerosize), SMTP_REPLY_DONE);
	smtp_ehlo_caps(&r, &caps);
	assert_true(caps.has_size);
	assert_int_equal(caps.size, 0);

	/* not a 250, or not complete: nothing is offered */
	smtp_reply_reset(&r);
	assert_int_equal(feed_all(&r, notehlo), SMTP_REPLY_DONE);
	smtp_ehlo_caps(&r, &caps);
	assert_false(caps.pipelining);
	smtp_reply_reset(&r);
	assert_int_equal(feed_all(&r, partial), SMTP_REPLY_MORE);
	smtp_ehlo_caps(&r, &caps);
	assert_false(caps.pipelining);
	/* a single-line 250 offers nothing */
	smtp_reply_reset(&r);
	assert_int_equal(smtp_reply_feed(&r, L("250 PIPELINING")),
	    SMTP_REPLY_DONE);
	smtp_ehlo_caps(&r, &caps);
	assert_false(caps.pipelining);
	smtp_reply_free(&r);
}

static void test_ehlo_auth_bounded(void **state)
{
	struct smtp_reply r;
	struct smtp_ehlo_caps caps;
	struct buf line = BUF_INIT;
	size_t i;
	const char *p;

	smtp_reply_init(&r);
	assert_int_equal(smtp_reply_feed(&r, L("250-x")), SMTP_REPLY_MORE);
	buf_puts(&line, "250 AUTH");
	for (i = 0; i < 24; i++)
		buf_printf(&line, " MECHANISM-%09zu", i);
	assert_true(line.len <= SMTP_REPLY_LINE_MAX - 2);
	assert_int_equal(smtp_reply_feed(&r, line.p, line.len),
	    SMTP_REPLY_DONE);
	smtp_ehlo_caps(&r, &caps);
	assert_true(caps.auth);
	assert_true(strlen(caps.auth_mechs) <= SMTP_EHLO_AUTH_MAX);
	/* whole names only: every kept one is 19 bytes long */
	for (p = caps.auth_mechs; *p != '\0';) {
		size_t n = strcspn(p, " ");

		assert_int_equal(n, 19);
		assert_memory_equal(p, "MECHANISM-", 10);
		p += n;
		if (*p == ' ')
			p++;
	}
	assert_int_equal(strlen(caps.auth_mechs), 6 * 19 + 5);
	buf_free(&line);
	smtp_reply_free(&r);
}

struct enh_case {
	const char *const lines[3];
	const char *want;	/* NULL: none */
};

static const struct enh_case enh_cases[] = {
	{ { "550 5.1.1 No such user", NULL }, "5.1.1" },
	{ { "250 2.0.0 OK", NULL }, "2.0.0" },
	{ { "421 4.4.2 timeout", NULL }, "4.4.2" },
	{ { "550 5.1.1", NULL }, "5.1.1" },
	{ { "550 5.999.999 x", NULL }, "5.999.999" },
	{ { "550 5.0.000 x", NULL }, "5.0.000" },
	{ { "550-5.7.1 first", "550 5.7.1 second" }, "5.7.1" },
	{ { "550-no code here", "550 5.7.1 second" }, NULL },
	{ { "550 4.1.1 class differs", NULL }, NULL },
	{ { "450 5.1.1 class differs", NULL }, NULL },
	{ { "354 3.0.0 go", NULL }, NULL },
	{ { "550 5.1.1234 x", NULL }, NULL },
	{ { "550 5.1234.1 x", NULL }, NULL },
	{ { "550 5.1 x", NULL }, NULL },
	{ { "550 5..1 x", NULL }, NULL },
	{ { "550 5.1. x", NULL }, NULL },
	{ { "550 5.1.1x", NULL }, NULL },
	{ { "550 5.1.1\tx", NULL }, NULL },
	{ { "550 .5.1.1", NULL }, NULL },
	{ { "550  5.1.1", NULL }, NULL },
	{ { "550 55.1.1", NULL }, NULL },
	{ { "550", NULL }, NULL },
	{ { "550 5", NULL }, NULL },
};

static void test_enhanced(void **state)
{
	struct smtp_reply r;
	char out[16];
	size_t i;

	smtp_reply_init(&r);
	assert_null(smtp_reply_enhanced(&r, out));
	for (i = 0; i < sizeof(enh_cases) / sizeof(enh_cases[0]); i++) {
		const char *got;

		smtp_reply_reset(&r);
		assert_int_equal(feed_all(&r, enh_cases[i].lines),
		    SMTP_REPLY_DONE);
		got = smtp_reply_enhanced(&r, out);
		if (enh_cases[i].want == NULL) {
			if (got != NULL)
				fail_msg("case %zu: got %s", i, got);
		} else {
			assert_ptr_equal(got, out);
			assert_string_equal(got, enh_cases[i].want);
		}
	}
	smtp_reply_free(&r);
}

/* check_log - no CR, LF or NUL, only printable ASCII, bounded, whole escapes */
static void check_log(const struct buf *b, size_t from)
{
	size_t i, n = b->len - from;
	const char *s = b->p + from;

	assert_true(n <= SMTP_REPLY_LOG_MAX);
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		assert_true(c >= 0x20 && c < 0x7f);
		if (c == '\\') {
			assert_true(i + 3 < n);
			assert_int_equal(s[i + 1], 'x');
			assert_non_null(strchr("0123456789abcdef", s[i + 2]));
			assert_non_null(strchr("0123456789abcdef", s[i + 3]));
			i += 3;
		}
	}
}

static void test_format_log(void **state)
{
	static const char *const two[] = { "250-a", "250 b", NULL };
	static const char *const empty_mid[] = { "250-a", "250-", "250 c", NULL };
	struct smtp_reply r;
	struct buf out = BUF_INIT;

	smtp_reply_init(&r);
	smtp_reply_format_log(&r, &out);
	assert_int_equal(out.len, 0);

	assert_int_equal(feed_all(&r, two), SMTP_REPLY_DONE);
	buf_puts(&out, "kept|");
	smtp_reply_format_log(&r, &out);
	assert_string_equal(buf_cstr(&out), "kept|250 a; b");

	buf_reset(&out);
	smtp_reply_reset(&r);
	assert_int_equal(feed_all(&r, empty_mid), SMTP_REPLY_DONE);
	smtp_reply_format_log(&r, &out);
	assert_string_equal(buf_cstr(&out), "250 a; ; c");

	buf_reset(&out);
	smtp_reply_reset(&r);
	assert_int_equal(smtp_reply_feed(&r, L("451")), SMTP_REPLY_DONE);
	smtp_reply_format_log(&r, &out);
	assert_string_equal(buf_cstr(&out), "451");

	buf_reset(&out);
	smtp_reply_reset(&r);
	assert_int_equal(smtp_reply_feed(&r, L("550 caf\xc3\xa9\tx\\y")),
	    SMTP_REPLY_DONE);
	smtp_reply_format_log(&r, &out);
	assert_string_equal(buf_cstr(&out),
	    "550 caf\\xc3\\xa9\\x09x\\x5cy");
	check_log(&out, 0);

	/* a bad reply still logs the lines that were good */
	buf_reset(&out);
	smtp_reply_reset(&r);
	assert_int_equal(smtp_reply_feed(&r, L("250-ok")), SMTP_REPLY_MORE);
	assert_int_equal(smtp_reply_feed(&r, L("250 a\r\nRCPT TO:<x>")),
	    SMTP_REPLY_BAD);
	smtp_reply_format_log(&r, &out);
	assert_string_equal(buf_cstr(&out), "250 ok");
	buf_free(&out);
	smtp_reply_free(&r);
}

static void test_format_log_bounded(void **state)
{
	struct smtp_reply r;
	struct buf out = BUF_INIT, line = BUF_INIT;
	size_t i, shift;

	smtp_reply_init(&r);
	/* plain text: cut to exactly 512 with the dots */
	for (i = 0; i < 99; i++)
		assert_int_equal(smtp_reply_feed(&r,
		    L("250-0123456789012345678901234567890123456789")),
		    SMTP_REPLY_MORE);
	assert_int_equal(smtp_reply_feed(&r, L("250 end")), SMTP_REPLY_DONE);
	smtp_reply_format_log(&r, &out);
	assert_int_equal(out.len, SMTP_REPLY_LOG_MAX);
	assert_memory_equal(out.p + out.len - 3, "...", 3);
	check_log(&out, 0);

	/* escapes at every offset near the cut: never half an escape */
	for (shift = 0; shift < 8; shift++) {
		buf_reset(&line);
		buf_puts(&line, "550 ");
		for (i = 0; i < shift; i++)
			buf_putc(&line, 'a');
		while (line.len < SMTP_REPLY_LINE_MAX - 2)
			buf_putc(&line, '\x80');
		smtp_reply_reset(&r);
		assert_int_equal(smtp_reply_feed(&r, line.p, line.len),
		    SMTP_REPLY_DONE);
		buf_reset(&out);
		smtp_reply_format_log(&r, &out);
		assert_true(out.len <= SMTP_REPLY_LOG_MAX);
		assert_true(out.len >= SMTP_REPLY_LOG_MAX - 6);
		assert_memory_equal(out.p + out.len - 3, "...", 3);
		out.len -= 3;
		check_log(&out, 0);
	}
	buf_free(&line);
	buf_free(&out);
	smtp_reply_free(&r);
}

/* The order a delivery client sees: greeting, EHLO, MAIL, RCPT x2, DATA. */
static void test_transcript(void **state)
{
	static const char *const script[] = {
		"220 mx.example.com ESMTP",
		"250-mx.example.com",
		"250-PIPELINING",
		"250 SIZE 1000",
		"250 2.1.0 Ok",
		"550 5.1.1 <nobody@example.com>: Recipient address rejected",
		"250 2.1.5 Ok",
		"354 End data with <CR><LF>.<CR><LF>",
		NULL
	};
	static const int codes[] = { 220, 250, 250, 550, 250, 354 };
	struct smtp_reply r;
	size_t i, n = 0;

	smtp_reply_init(&r);
	for (i = 0; script[i] != NULL; i++) {
		enum smtp_reply_status st;

		st = smtp_reply_feed(&r, script[i], strlen(script[i]));
		assert_int_not_equal(st, SMTP_REPLY_BAD);
		if (st == SMTP_REPLY_DONE) {
			assert_int_equal(r.code, codes[n]);
			n++;
			smtp_reply_reset(&r);
		}
	}
	assert_int_equal(n, 6);
	smtp_reply_free(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_single_line),
		cmocka_unit_test(test_bare_code),
		cmocka_unit_test(test_every_code),
		cmocka_unit_test(test_hostile_lines),
		cmocka_unit_test(test_good_text_bytes),
		cmocka_unit_test(test_mixed_codes),
		cmocka_unit_test(test_line_limit),
		cmocka_unit_test(test_endless_continuation),
		cmocka_unit_test(test_text_limit),
		cmocka_unit_test(test_sticky_and_reset),
		cmocka_unit_test(test_ehlo_caps),
		cmocka_unit_test(test_ehlo_caps_variants),
		cmocka_unit_test(test_ehlo_auth_bounded),
		cmocka_unit_test(test_enhanced),
		cmocka_unit_test(test_format_log),
		cmocka_unit_test(test_format_log_bounded),
		cmocka_unit_test(test_transcript),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
