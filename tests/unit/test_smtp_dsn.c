/* test_smtp_dsn - delivery status notifications (Y7, design rule 6) */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "smtp/smtp_dsn.h"
#include "smtp/smtp_reply.h"
#include "util/buf.h"

#define BOUNDARY "=_etrnd_0000abcd_1"
#define DELIM "\r\n--" BOUNDARY "\r\n"
#define CLOSE "\r\n--" BOUNDARY "--\r\n"

static const char body_std[] =
	"Received: from client.example.org\r\n"
	"From: Alice <alice@example.org>\r\n"
	"To: bob@example.com\r\n"
	"Subject: lunch\r\n"
	"Message-ID: <1@example.org>\r\n"
	"\r\n"
	"Shall we?\r\n"
	".dot line\r\n";

static const char hdrs_std[] =
	"Received: from client.example.org\r\n"
	"From: Alice <alice@example.org>\r\n"
	"To: bob@example.com\r\n"
	"Subject: lunch\r\n"
	"Message-ID: <1@example.org>\r\n";

struct fixture {
	struct smtp_dsn d;
	struct smtp_dsn_rcpt rc[3];
	struct buf out;
	struct smtp_dsn_info info;
};

/* fx_init - a failure DSN for two recipients of body_std */
static void fx_init(struct fixture *f)
{
	memset(f, 0, sizeof(*f));
	f->rc[0].addr = "bob@example.com";
	f->rc[0].orcpt = "rfc822;Bob@Example.COM";
	f->rc[0].action = SMTP_DSN_FAILED;
	f->rc[0].status = "5.1.1";
	f->rc[0].remote_mta = "mx.example.com";
	f->rc[0].diagnostic = "550 5.1.1 <bob@example.com>: no such user";
	f->rc[0].last_attempt = 1700000100;
	f->rc[1].addr = "carol@example.net";
	f->rc[1].action = SMTP_DSN_FAILED;
	f->rc[1].status = "5.4.6";
	f->d.kind = SMTP_DSN_FAILURE;
	f->d.reporting_mta = "relay.example.org";
	f->d.sender = "alice@example.org";
	f->d.envid = "QQ314159";
	f->d.ret = SMTP_RET_NONE;
	f->d.arrival = 1700000000;
	f->d.qid = "0000abcd";
	f->d.body = body_std;
	f->d.body_len = sizeof(body_std) - 1;
	f->d.rcpts = f->rc;
	f->d.nrcpt = 2;
	f->d.now = 1700000200;
	f->d.boundary = BOUNDARY;
}

/* count - occurrences of needle in b */
static size_t count(const struct buf *b, const char *needle)
{
	size_t n = 0, nl = strlen(needle);
	const char *p = b->p, *end = b->p + b->len;

	while (p != NULL && (size_t)(end - p) >= nl) {
		p = memmem(p, (size_t)(end - p), needle, nl);
		if (p != NULL) {
			n++;
			p++;
		}
	}
	return n;
}

/* has_line - b holds the whole line s (between CRLFs) */
static bool has_line(const struct buf *b, const char *s)
{
	struct buf want = BUF_INIT;
	bool ok;

	buf_printf(&want, "\r\n%s\r\n", s);
	ok = count(b, want.p) > 0;
	buf_free(&want);
	return ok;
}

/* line_starts - some line of b starts with s */
static bool line_starts(const struct buf *b, const char *s)
{
	struct buf want = BUF_INIT;
	bool ok;

	buf_printf(&want, "\r\n%s", s);
	ok = count(b, want.p) > 0 ||
	    (b->len >= strlen(s) && memcmp(b->p, s, strlen(s)) == 0);
	buf_free(&want);
	return ok;
}

/* check_lines - CRLF only, each line at most 998 octets, no NUL */
static void check_lines(const struct buf *b)
{
	size_t i, ls = 0;

	assert_true(b->len >= 2);
	assert_memory_equal(b->p + b->len - 2, "\r\n", 2);
	for (i = 0; i < b->len; i++) {
		char c = b->p[i];

		assert_int_not_equal(c, '\0');
		if (c == '\n')
			assert_true(i > 0 && b->p[i - 1] == '\r');
		if (c == '\r') {
			assert_true(i + 1 < b->len && b->p[i + 1] == '\n');
			if (i - ls > SMTP_DSN_LINE_MAX)
				fail_msg("line at %zu is %zu long", ls, i - ls);
			ls = i + 2;
		}
	}
}

/* part - the bytes of MIME part n (1-based) of b, after its part headers */
static const char *part(const struct buf *b, int n, size_t *len)
{
	const char *p = b->p, *end = b->p + b->len, *q, *stop;
	int i;

	for (i = 0; i < n; i++) {
		p = memmem(p, (size_t)(end - p), DELIM, strlen(DELIM));
		assert_non_null(p);
		p += strlen(DELIM);
	}
	q = memmem(p, (size_t)(end - p), "\r\n\r\n", 4);
	assert_non_null(q);
	q += 4;
	stop = memmem(q, (size_t)(end - q), "\r\n--" BOUNDARY,
	    strlen("\r\n--" BOUNDARY));
	assert_non_null(stop);
	*len = (size_t)(stop - q);
	return q;
}

/* part_headers - the part headers of part n, as a C string in h */
static void part_headers(const struct buf *b, int n, struct buf *h)
{
	const char *p = b->p, *end = b->p + b->len, *q;
	int i;

	for (i = 0; i < n; i++) {
		p = memmem(p, (size_t)(end - p), DELIM, strlen(DELIM));
		assert_non_null(p);
		p += strlen(DELIM);
	}
	q = memmem(p, (size_t)(end - p), "\r\n\r\n", 4);
	assert_non_null(q);
	buf_reset(h);
	buf_append(h, p, (size_t)(q - p) + 2);
}

static void test_structure(void **state)
{
	struct fixture f;
	struct buf h = BUF_INIT;
	const char *p;
	size_t n;

	fx_init(&f);
	assert_true(smtp_dsn_build(&f.d, &f.out, &f.info));
	assert_null(f.info.error);
	assert_int_equal(f.info.returned, SMTP_DSN_RETURNED_FULL);
	assert_false(f.info.eightbit);
	check_lines(&f.out);

	/* top-level header section */
	assert_true(line_starts(&f.out,
	    "From: \"Mail Delivery System\" <MAILER-DAEMON@relay.example.org>\r\n"));
	assert_true(has_line(&f.out, "To: <alice@example.org>"));
	assert_true(has_line(&f.out,
	    "Subject: Undelivered Mail Returned to Sender"));
	assert_true(has_line(&f.out, "Date: Tue, 14 Nov 2023 22:16:40 +0000"));
	assert_true(has_line(&f.out,
	    "Message-ID: <0000abcd.bounce.1700000200@relay.example.org>"));
	assert_true(has_line(&f.out, "Auto-Submitted: auto-replied"));
	assert_true(has_line(&f.out, "MIME-Version: 1.0"));
	assert_true(has_line(&f.out, "Content-Type: multipart/report; "
	    "report-type=delivery-status;\r\n\tboundary=\"" BOUNDARY "\""));
	/* the header section ends before the first delimiter */
	p = memmem(f.out.p, f.out.len, "\r\n\r\n", 4);
	assert_non_null(p);
	assert_true(p < (const char *)memmem(f.out.p, f.out.len, DELIM,
	    strlen(DELIM)));

	/* three parts, one closing delimiter at the very end */
	assert_int_equal(count(&f.out, DELIM), 3);
	assert_int_equal(count(&f.out, CLOSE), 1);
	assert_memory_equal(f.out.p + f.out.len - strlen(CLOSE), CLOSE,
	    strlen(CLOSE));
	assert_int_equal(count(&f.out, "--" BOUNDARY), 4);
	part_headers(&f.out, 1, &h);
	assert_non_null(strstr(h.p, "Content-Type: text/plain; charset=us-ascii\r\n"));
	part_headers(&f.out, 2, &h);
	assert_non_null(strstr(h.p, "Content-Type: message/delivery-status\r\n"));
	part_headers(&f.out, 3, &h);
	assert_non_null(strstr(h.p, "Content-Type: message/rfc822\r\n"));

	/* the original, byte-exact */
	p = part(&f.out, 3, &n);
	assert_int_equal(n, sizeof(body_std) - 1);
	assert_memory_equal(p, body_std, n);

	/* the human part names both recipients and the reasons */
	p = part(&f.out, 1, &n);
	assert_non_null(memmem(p, n, "<bob@example.com>: delivery failed (5.1.1)",
	    strlen("<bob@example.com>: delivery failed (5.1.1)")));
	assert_non_null(memmem(p, n, "no such user", strlen("no such user")));
	assert_non_null(memmem(p, n, "<carol@example.net>", 19));
	assert_non_null(memmem(p, n, "The message is attached.", 24));
	buf_free(&h);
	buf_free(&f.out);
}

static void test_fields(void **state)
{
	struct fixture f;
	struct buf ds = BUF_INIT;
	const char *p;
	size_t n;

	fx_init(&f);
	assert_true(smtp_dsn_build(&f.d, &f.out, NULL));
	p = part(&f.out, 2, &n);
	buf_puts(&ds, "\r\n");
	buf_append(&ds, p, n);
	buf_puts(&ds, "\r\n");

	assert_true(has_line(&ds, "Reporting-MTA: dns; relay.example.org"));
	assert_true(has_line(&ds, "Original-Envelope-Id: QQ314159"));
	assert_true(has_line(&ds, "X-Etrnd-Queue-Id: 0000abcd"));
	assert_true(has_line(&ds, "Arrival-Date: Tue, 14 Nov 2023 22:13:20 +0000"));
	/* per-recipient groups, each after an empty line */
	assert_non_null(strstr(ds.p,
	    "\r\n\r\nOriginal-Recipient: rfc822;Bob@Example.COM\r\n"
	    "Final-Recipient: rfc822;bob@example.com\r\n"
	    "Action: failed\r\n"
	    "Status: 5.1.1\r\n"
	    "Remote-MTA: dns; mx.example.com\r\n"
	    "Diagnostic-Code: smtp; 550 5.1.1 <bob@example.com>: no such user\r\n"
	    "Last-Attempt-Date: Tue, 14 Nov 2023 22:15:00 +0000\r\n"));
	assert_non_null(strstr(ds.p,
	    "\r\n\r\nFinal-Recipient: rfc822;carol@example.net\r\n"
	    "Action: failed\r\n"
	    "Status: 5.4.6\r\n"));
	assert_int_equal(count(&ds, "Original-Recipient:"), 1);
	assert_int_equal(count(&ds, "Final-Recipient:"), 2);
	assert_int_equal(count(&ds, "Will-Retry-Until:"), 0);
	buf_free(&ds);
	buf_free(&f.out);

	/* no ENVID, ORCPT without a type, no arrival */
	fx_init(&f);
	f.d.envid = NULL;
	f.d.arrival = 0;
	f.rc[0].orcpt = "Bob@Example.COM";
	assert_true(smtp_dsn_build(&f.d, &f.out, NULL));
	check_lines(&f.out);
	assert_int_equal(count(&f.out, "Original-Envelope-Id"), 0);
	assert_int_equal(count(&f.out, "Arrival-Date"), 0);
	assert_true(has_line(&f.out, "Original-Recipient: rfc822;Bob@Example.COM"));
	buf_free(&f.out);
}

static void test_ret_hdrs(void **state)
{
	struct fixture f;
	struct buf h = BUF_INIT;
	const char *p;
	size_t n;

	fx_init(&f);
	f.d.ret = SMTP_RET_HDRS;
	assert_true(smtp_dsn_build(&f.d, &f.out, &f.info));
	check_lines(&f.out);
	assert_int_equal(f.info.returned, SMTP_DSN_RETURNED_HEADERS);
	part_headers(&f.out, 3, &h);
	assert_non_null(strstr(h.p, "Content-Type: text/rfc822-headers\r\n"));
	assert_int_equal(count(&f.out, "message/rfc822"), 0);
	p = part(&f.out, 3, &n);
	assert_int_equal(n, sizeof(hdrs_std) - 1);
	assert_memory_equal(p, hdrs_std, n);
	assert_int_equal(count(&f.out, "Shall we?"), 0);
	assert_int_equal(count(&f.out, DELIM), 3);
	assert_memory_equal(f.out.p + f.out.len - strlen(CLOSE), CLOSE,
	    strlen(CLOSE));
	assert_non_null(strstr(f.out.p,
	    "The header section of the message is attached."));
	buf_free(&f.out);

	/* RET=FULL is the same as none for a failure */
	fx_init(&f);
	f.d.ret = SMTP_RET_FULL;
	assert_true(smtp_dsn_build(&f.d, &f.out, &f.info));
	assert_int_equal(f.info.returned, SMTP_DSN_RETURNED_FULL);
	buf_free(&f.out);
	buf_free(&h);
}

struct body_case {
	const char *body;
	size_t len;
	enum smtp_ret ret;
	size_t full_max;
	enum smtp_dsn_returned want;
	size_t want_len;	/* bytes of the part */
};

#define B(s) s, sizeof(s) - 1

static void test_original_choice(void **state)
{
	static char longbody[1300], longhdr[1300], exact[1100];
	const struct body_case cases[] = {
		/* over the cap: headers only */
		{ B("Subject: x\r\n\r\nbody\r\n"), SMTP_RET_NONE, 16,
		  SMTP_DSN_RETURNED_HEADERS, 12 },
		/* header section over the cap too: nothing */
		{ B("Subject: xxxxxxxx\r\n\r\nbody\r\n"), SMTP_RET_NONE, 16,
		  SMTP_DSN_RETURNED_NONE, 0 },
		/* a line over 998 in the body: headers only */
		{ longbody, sizeof(longbody), SMTP_RET_FULL, 0,
		  SMTP_DSN_RETURNED_HEADERS, 12 },
		/* ... and in the header section: nothing */
		{ longhdr, sizeof(longhdr), SMTP_RET_FULL, 0,
		  SMTP_DSN_RETURNED_NONE, 0 },
		/* exactly 998 is fine */
		{ exact, sizeof(exact), SMTP_RET_FULL, 0,
		  SMTP_DSN_RETURNED_FULL, sizeof(exact) },
		/* bare LF, bare CR, NUL in the body */
		{ B("Subject: x\r\n\r\na\nb\r\n"), SMTP_RET_NONE, 0,
		  SMTP_DSN_RETURNED_HEADERS, 12 },
		{ B("Subject: x\r\n\r\na\rb\r\n"), SMTP_RET_NONE, 0,
		  SMTP_DSN_RETURNED_HEADERS, 12 },
		{ B("Subject: x\r\n\r\na\0b\r\n"), SMTP_RET_NONE, 0,
		  SMTP_DSN_RETURNED_HEADERS, 12 },
		{ B("Subject: x\0\r\n\r\nab\r\n"), SMTP_RET_NONE, 0,
		  SMTP_DSN_RETURNED_NONE, 0 },
		{ B("Subject: x\n\r\nab\r\n"), SMTP_RET_NONE, 0,
		  SMTP_DSN_RETURNED_NONE, 0 },
		/* our boundary inside the original */
		{ B("Subject: x\r\n\r\n--" BOUNDARY "--\r\n"), SMTP_RET_NONE, 0,
		  SMTP_DSN_RETURNED_HEADERS, 12 },
		{ B("--" BOUNDARY "x: y\r\n\r\nb\r\n"), SMTP_RET_NONE, 0,
		  SMTP_DSN_RETURNED_NONE, 0 },
		/* a near miss is content */
		{ B("Subject: x\r\n\r\n --" BOUNDARY "\r\n-" BOUNDARY "\r\n"),
		  SMTP_RET_NONE, 0, SMTP_DSN_RETURNED_FULL, 0 },
		/* no header section / no body / empty */
		{ B("\r\nbody only\r\n"), SMTP_RET_NONE, 0,
		  SMTP_DSN_RETURNED_FULL, 0 },
		{ B("\r\nbody only\r\n"), SMTP_RET_HDRS, 0,
		  SMTP_DSN_RETURNED_NONE, 0 },
		{ B("Subject: only headers\r\n"), SMTP_RET_HDRS, 0,
		  SMTP_DSN_RETURNED_HEADERS, 23 },
		{ B("Subject: no crlf at the end"), SMTP_RET_HDRS, 0,
		  SMTP_DSN_RETURNED_HEADERS, 27 },
		{ B("Subject: x\r\n\r\nno crlf at the end"), SMTP_RET_NONE, 0,
		  SMTP_DSN_RETURNED_FULL, 0 },
		{ "", 0, SMTP_RET_NONE, 0, SMTP_DSN_RETURNED_NONE, 0 },
		/* a final bare CR would become a bare CR before the delimiter */
		{ B("Subject: x\r\n\r\nab\r"), SMTP_RET_NONE, 0,
		  SMTP_DSN_RETURNED_HEADERS, 12 },
	};
	size_t i;

	memcpy(longbody, "Subject: x\r\n\r\n", 14);
	memset(longbody + 14, 'a', sizeof(longbody) - 16);
	memcpy(longbody + sizeof(longbody) - 2, "\r\n", 2);
	memcpy(longhdr, "Subject: ", 9);
	memset(longhdr + 9, 'h', sizeof(longhdr) - 9 - 10);
	memcpy(longhdr + sizeof(longhdr) - 10, "\r\n\r\nbody\r\n", 10);
	memset(exact, 'e', sizeof(exact));
	memcpy(exact, "Subject: x\r\n\r\n", 14);
	memcpy(exact + 14 + 998, "\r\n", 2);
	memcpy(exact + sizeof(exact) - 2, "\r\n", 2);

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct fixture f;
		const char *p;
		size_t n, want_len;

		fx_init(&f);
		f.d.body = cases[i].body;
		f.d.body_len = cases[i].len;
		f.d.ret = cases[i].ret;
		f.d.full_max = cases[i].full_max;
		assert_true(smtp_dsn_build(&f.d, &f.out, &f.info));
		check_lines(&f.out);
		if (f.info.returned != cases[i].want)
			fail_msg("case %zu: returned %d", i, f.info.returned);
		assert_int_equal(count(&f.out, CLOSE), 1);
		if (cases[i].want == SMTP_DSN_RETURNED_NONE) {
			assert_int_equal(count(&f.out, DELIM), 2);
			assert_non_null(strstr(f.out.p,
			    "The message is not attached."));
		} else {
			want_len = cases[i].want_len ? cases[i].want_len :
			    cases[i].len;
			assert_int_equal(count(&f.out, DELIM), 3);
			p = part(&f.out, 3, &n);
			assert_int_equal(n, want_len);
			assert_memory_equal(p, cases[i].body, n);
		}
		buf_free(&f.out);
	}
}

static void test_delay(void **state)
{
	struct fixture f;
	struct buf h = BUF_INIT;

	fx_init(&f);
	f.d.kind = SMTP_DSN_DELAY;
	f.d.ret = SMTP_RET_FULL;
	f.rc[0].action = SMTP_DSN_DELAYED;
	f.rc[0].status = "4.4.1";
	f.rc[0].diagnostic = "421 4.4.2 timeout";
	f.rc[0].retry_until = 1700432000;
	f.d.nrcpt = 1;
	assert_true(smtp_dsn_build(&f.d, &f.out, &f.info));
	check_lines(&f.out);
	assert_true(has_line(&f.out,
	    "Subject: Delayed Mail (still being retried)"));
	assert_true(has_line(&f.out, "Action: delayed"));
	assert_true(has_line(&f.out, "Status: 4.4.1"));
	assert_true(has_line(&f.out,
	    "Will-Retry-Until: Sun, 19 Nov 2023 22:13:20 +0000"));
	assert_true(has_line(&f.out,
	    "Message-ID: <0000abcd.delay.1700000200@relay.example.org>"));
	/* a warning carries the headers only, whatever RET says */
	assert_int_equal(f.info.returned, SMTP_DSN_RETURNED_HEADERS);
	part_headers(&f.out, 3, &h);
	assert_non_null(strstr(h.p, "text/rfc822-headers"));
	assert_int_equal(count(&f.out, "carol"), 0);
	buf_free(&h);
	buf_free(&f.out);
}

static void test_success(void **state)
{
	struct fixture f;

	fx_init(&f);
	f.d.kind = SMTP_DSN_SUCCESS;
	f.rc[0].action = SMTP_DSN_DELIVERED;
	f.rc[0].status = "2.0.0";
	f.rc[0].diagnostic = "250 2.0.0 Ok: queued as 12345";
	f.rc[1].action = SMTP_DSN_RELAYED;
	f.rc[1].status = NULL;
	assert_true(smtp_dsn_build(&f.d, &f.out, &f.info));
	check_lines(&f.out);
	assert_true(has_line(&f.out, "Subject: Successful Mail Delivery Report"));
	assert_true(has_line(&f.out, "Action: delivered"));
	assert_true(has_line(&f.out, "Action: relayed"));
	assert_true(has_line(&f.out, "Status: 2.0.0"));
	assert_int_equal(f.info.returned, SMTP_DSN_RETURNED_HEADERS);
	buf_free(&f.out);
}

static void test_bad_status_and_action(void **state)
{
	static const char *const bad[] = {
		"5.1", "5.1.1.1", "6.1.1", "5.1.1\r\nX-Injected: 1", "5.1.1 ",
		"5.1234.1", "", "x", "5..1",
	};
	struct fixture f;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		fx_init(&f);
		f.rc[0].status = bad[i];
		f.d.nrcpt = 1;
		assert_true(smtp_dsn_build(&f.d, &f.out, NULL));
		check_lines(&f.out);
		assert_true(has_line(&f.out, "Status: 5.0.0"));
		assert_int_equal(count(&f.out, "X-Injected"), 0);
		buf_free(&f.out);
	}
	fx_init(&f);
	f.rc[0].action = (enum smtp_dsn_action)77;
	f.rc[0].status = NULL;
	f.d.kind = (enum smtp_dsn_kind)9;
	f.d.nrcpt = 1;
	assert_true(smtp_dsn_build(&f.d, &f.out, NULL));
	check_lines(&f.out);
	assert_true(has_line(&f.out, "Action: failed"));
	assert_true(has_line(&f.out, "Status: 5.0.0"));
	assert_true(has_line(&f.out, "Subject: Undelivered Mail Returned to Sender"));
	buf_free(&f.out);
}

/* no_bad_line - no line of b starts with s: an injected header or part */
static void no_bad_line(const struct buf *b, const char *s)
{
	if (line_starts(b, s))
		fail_msg("a line starts with \"%s\"", s);
}

static void test_injection(void **state)
{
	struct fixture f;
	struct buf diag = BUF_INIT;
	struct smtp_reply r;

	/* what a hostile server can get through the reply parser */
	smtp_reply_init(&r);
	assert_int_equal(smtp_reply_feed(&r, "550-5.1.1 x\x80\tBcc: y",
	    strlen("550-5.1.1 x\x80\tBcc: y")), SMTP_REPLY_MORE);
	assert_int_equal(smtp_reply_feed(&r, "550 --" BOUNDARY "\\x0d\\x0a",
	    strlen("550 --" BOUNDARY "\\x0d\\x0a")), SMTP_REPLY_DONE);
	smtp_reply_format_log(&r, &diag);
	smtp_reply_free(&r);

	fx_init(&f);
	f.d.sender = "alice@example.org>\r\nBcc: victim@example.net";
	f.d.envid = "E1\r\nSubject: envid";
	f.d.reporting_mta = "relay\r\nX-Host: evil";
	f.d.qid = "12\r\nX-Qid: 1";
	f.rc[0].addr = "bob@example.com\r\nX-Addr: 1\r\n\r\n--" BOUNDARY;
	f.rc[0].orcpt = "rfc822;bob\r\nX-Orcpt: 1";
	f.rc[0].remote_mta = "mx\r\nX-Mta: 1";
	f.rc[0].diagnostic = "550 evil\r\nContent-Type: text/html\r\n\r\n"
	    "--" BOUNDARY "\r\n<script>\n\rX-Diag: 1\x01\x7f";
	f.rc[1].diagnostic = diag.p;
	assert_true(smtp_dsn_build(&f.d, &f.out, &f.info));
	check_lines(&f.out);
	no_bad_line(&f.out, "Bcc:");
	no_bad_line(&f.out, "Subject: envid");
	no_bad_line(&f.out, "X-Host");
	no_bad_line(&f.out, "X-Qid");
	no_bad_line(&f.out, "X-Addr");
	no_bad_line(&f.out, "X-Orcpt");
	no_bad_line(&f.out, "X-Mta");
	no_bad_line(&f.out, "X-Diag");
	no_bad_line(&f.out, "Content-Type: text/html");
	no_bad_line(&f.out, "<script>");
	/* the structure is intact: still exactly three parts */
	assert_int_equal(count(&f.out, DELIM), 3);
	assert_int_equal(count(&f.out, CLOSE), 1);
	assert_int_equal(count(&f.out, "\r\n--" BOUNDARY), 4);
	/* the bytes are visible, escaped */
	assert_non_null(strstr(f.out.p,
	    "To: <alice@example.org>\\x0d\\x0aBcc: victim@example.net>\r\n"));
	assert_non_null(strstr(f.out.p,
	    "Original-Envelope-Id: E1\\x0d\\x0aSubject: envid\r\n"));
	assert_non_null(strstr(f.out.p,
	    "Original-Recipient: rfc822;bob\\x0d\\x0aX-Orcpt: 1\r\n"));
	assert_non_null(strstr(f.out.p, "\\x01\\x7f"));
	/* the From and Message-ID host is reduced to host characters */
	assert_non_null(strstr(f.out.p, "<MAILER-DAEMON@relay__X-Host:_evil>"));
	assert_non_null(strstr(f.out.p, "Message-ID: <12__X_Qid__1.bounce."));
	/* the reply's own escapes pass through unchanged */
	assert_non_null(strstr(f.out.p, "x\\x80\\x09Bcc: y"));
	buf_free(&diag);
	buf_free(&f.out);
}

static void test_long_values(void **state)
{
	struct fixture f;
	char *words, *solid, *addr;
	size_t i, n = 5000;
	struct buf ds = BUF_INIT;

	words = malloc(n + 1);
	solid = malloc(n + 1);
	addr = malloc(n + 1);
	assert_non_null(words);
	assert_non_null(solid);
	assert_non_null(addr);
	for (i = 0; i < n; i++) {
		words[i] = i % 7 == 6 ? ' ' : 'w';
		solid[i] = 's';
		addr[i] = i % 50 == 0 ? '\n' : 'a';
	}
	words[n] = solid[n] = addr[n] = '\0';

	fx_init(&f);
	f.rc[0].diagnostic = words;
	f.rc[1].diagnostic = solid;
	f.rc[1].addr = addr;
	f.rc[1].orcpt = addr;
	f.d.sender = addr;
	f.d.envid = addr;
	f.rc[0].remote_mta = addr;
	assert_true(smtp_dsn_build(&f.d, &f.out, NULL));
	check_lines(&f.out);
	assert_int_equal(count(&f.out, DELIM), 3);
	/* folded: continuation lines of the diagnostic start with a space */
	assert_non_null(strstr(f.out.p, "\r\n wwwwww wwwwww"));
	/* cut: the text is bounded and says so */
	assert_true(count(&f.out, "...") >= 4);
	assert_true(f.out.len < 40000);
	buf_free(&ds);
	buf_free(&f.out);
	free(words);
	free(solid);
	free(addr);
}

static void test_refusals(void **state)
{
	static const char *const bad_boundaries[] = {
		"", "a b", "a\"b", "a\r\nb", "a;b", "a<b",
		"12345678901234567890123456789012345678901234567890123456789012345678901",
	};
	struct fixture f;
	size_t i;

	/* Y7: never a DSN to the null sender */
	fx_init(&f);
	f.d.sender = "";
	buf_puts(&f.out, "untouched");
	assert_false(smtp_dsn_build(&f.d, &f.out, &f.info));
	assert_string_equal(buf_cstr(&f.out), "untouched");
	assert_non_null(f.info.error);
	assert_non_null(strstr(f.info.error, "null sender"));
	f.d.sender = NULL;
	assert_false(smtp_dsn_build(&f.d, &f.out, NULL));
	assert_string_equal(buf_cstr(&f.out), "untouched");
	buf_free(&f.out);

	fx_init(&f);
	f.d.nrcpt = 0;
	assert_false(smtp_dsn_build(&f.d, &f.out, &f.info));
	assert_int_equal(f.out.len, 0);
	fx_init(&f);
	f.d.rcpts = NULL;
	assert_false(smtp_dsn_build(&f.d, &f.out, &f.info));
	fx_init(&f);
	f.d.reporting_mta = "";
	assert_false(smtp_dsn_build(&f.d, &f.out, &f.info));
	fx_init(&f);
	f.d.reporting_mta = NULL;
	assert_false(smtp_dsn_build(&f.d, &f.out, &f.info));
	fx_init(&f);
	f.d.boundary = NULL;
	assert_false(smtp_dsn_build(&f.d, &f.out, &f.info));
	for (i = 0; i < sizeof(bad_boundaries) / sizeof(bad_boundaries[0]); i++) {
		fx_init(&f);
		f.d.boundary = bad_boundaries[i];
		assert_false(smtp_dsn_build(&f.d, &f.out, &f.info));
		assert_int_equal(f.out.len, 0);
		assert_non_null(f.info.error);
	}
	/* the longest boundary and every special character are fine */
	fx_init(&f);
	f.d.boundary =
	    "'()+_,-./:=?ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz01234";
	assert_true(smtp_dsn_build(&f.d, &f.out, &f.info));
	check_lines(&f.out);
	buf_free(&f.out);
}

struct notify_case {
	unsigned notify;
	bool failure;
	bool delay;
	bool success;
};

static void test_notify_table(void **state)
{
	static const struct notify_case cases[] = {
		{ 0, true, true, false },
		{ SMTP_NOTIFY_NEVER, false, false, false },
		{ SMTP_NOTIFY_FAILURE, true, false, false },
		{ SMTP_NOTIFY_DELAY, false, true, false },
		{ SMTP_NOTIFY_SUCCESS, false, false, true },
		{ SMTP_NOTIFY_FAILURE | SMTP_NOTIFY_DELAY, true, true, false },
		{ SMTP_NOTIFY_FAILURE | SMTP_NOTIFY_SUCCESS, true, false, true },
		{ SMTP_NOTIFY_DELAY | SMTP_NOTIFY_SUCCESS, false, true, true },
		{ SMTP_NOTIFY_FAILURE | SMTP_NOTIFY_DELAY | SMTP_NOTIFY_SUCCESS,
		  true, true, true },
		/* the parser never combines NEVER; if it did, NEVER wins */
		{ SMTP_NOTIFY_NEVER | SMTP_NOTIFY_FAILURE | SMTP_NOTIFY_SUCCESS,
		  false, false, false },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(smtp_dsn_wanted(cases[i].notify, true),
		    cases[i].failure);
		assert_int_equal(smtp_dsn_wanted(cases[i].notify, false),
		    cases[i].delay);
		assert_int_equal(smtp_dsn_success_wanted(cases[i].notify),
		    cases[i].success);
	}
}

static void test_date(void **state)
{
	struct buf b = BUF_INIT;

	smtp_dsn_date(&b, 0);
	assert_string_equal(buf_cstr(&b), "Thu, 01 Jan 1970 00:00:00 +0000");
	buf_reset(&b);
	smtp_dsn_date(&b, 1700000000);
	assert_string_equal(buf_cstr(&b), "Tue, 14 Nov 2023 22:13:20 +0000");
	buf_reset(&b);
	smtp_dsn_date(&b, 951782400);	/* leap day */
	assert_string_equal(buf_cstr(&b), "Tue, 29 Feb 2000 00:00:00 +0000");
	buf_reset(&b);
	smtp_dsn_date(&b, -1);
	assert_string_equal(buf_cstr(&b), "Wed, 31 Dec 1969 23:59:59 +0000");
	/* beyond four-digit years: the epoch, never a malformed date */
	buf_reset(&b);
	smtp_dsn_date(&b, (time_t)1 << 62);
	assert_string_equal(buf_cstr(&b), "Thu, 01 Jan 1970 00:00:00 +0000");
	buf_reset(&b);
	smtp_dsn_date(&b, -((time_t)1 << 62));
	assert_string_equal(buf_cstr(&b), "Thu, 01 Jan 1970 00:00:00 +0000");
	buf_free(&b);
}

static void test_eightbit(void **state)
{
	static const char body[] =
	    "Subject: caf\xc3\xa9\r\n\r\nna\xc3\xafve\r\n";
	struct fixture f;
	struct buf h = BUF_INIT;

	fx_init(&f);
	f.d.body = body;
	f.d.body_len = sizeof(body) - 1;
	assert_true(smtp_dsn_build(&f.d, &f.out, &f.info));
	check_lines(&f.out);
	assert_true(f.info.eightbit);
	assert_int_equal(f.info.returned, SMTP_DSN_RETURNED_FULL);
	part_headers(&f.out, 3, &h);
	assert_non_null(strstr(h.p, "Content-Transfer-Encoding: 8bit\r\n"));
	assert_int_equal(count(&f.out, "Content-Transfer-Encoding: 8bit"), 2);
	buf_free(&f.out);

	/* the 8-bit body is dropped (RET=HDRS), but the header is 8-bit */
	fx_init(&f);
	f.d.body = body;
	f.d.body_len = sizeof(body) - 1;
	f.d.ret = SMTP_RET_HDRS;
	assert_true(smtp_dsn_build(&f.d, &f.out, &f.info));
	assert_true(f.info.eightbit);
	buf_free(&f.out);

	/* 7-bit everywhere otherwise: the parts we write never hold 8-bit */
	fx_init(&f);
	f.rc[0].diagnostic = "550 \xff\xfe";
	f.rc[0].addr = "\xc3\xa9@example.com";
	assert_true(smtp_dsn_build(&f.d, &f.out, &f.info));
	assert_false(f.info.eightbit);
	{
		size_t i;

		for (i = 0; i < f.out.len; i++)
			assert_true((unsigned char)f.out.p[i] < 0x80);
	}
	assert_int_equal(count(&f.out, "Content-Transfer-Encoding: 8bit"), 0);
	buf_free(&f.out);
	buf_free(&h);
}

static void test_deterministic(void **state)
{
	struct fixture a, b;

	fx_init(&a);
	fx_init(&b);
	assert_true(smtp_dsn_build(&a.d, &a.out, NULL));
	assert_true(smtp_dsn_build(&b.d, &b.out, NULL));
	assert_int_equal(a.out.len, b.out.len);
	assert_memory_equal(a.out.p, b.out.p, a.out.len);
	/* appends: what was there stays */
	buf_reset(&b.out);
	buf_puts(&b.out, "X");
	assert_true(smtp_dsn_build(&b.d, &b.out, NULL));
	assert_int_equal(b.out.len, a.out.len + 1);
	assert_memory_equal(b.out.p + 1, a.out.p, a.out.len);
	buf_free(&a.out);
	buf_free(&b.out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_structure),
		cmocka_unit_test(test_fields),
		cmocka_unit_test(test_ret_hdrs),
		cmocka_unit_test(test_original_choice),
		cmocka_unit_test(test_delay),
		cmocka_unit_test(test_success),
		cmocka_unit_test(test_bad_status_and_action),
		cmocka_unit_test(test_injection),
		cmocka_unit_test(test_long_values),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_notify_table),
		cmocka_unit_test(test_date),
		cmocka_unit_test(test_eightbit),
		cmocka_unit_test(test_deterministic),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
