/* test_smtp_data - DATA phase: end of data, unstuffing, findings (S1-S8) */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "smtp/smtp_data.h"
#include "util/buf.h"

#define L(s) s, sizeof(s) - 1

struct run {
	struct buf out;
	unsigned flags;
	unsigned received;
	uint64_t out_bytes;
	size_t consumed;
	bool done;
};

/*
 * feed_split - feed in[0..n) in pieces of `step` bytes (0: one call),
 * stopping when the machine says done, as the session would.
 */
static void feed_split(struct run *r, const char *in, size_t n, size_t step,
    bool discard)
{
	struct smtp_data d;
	size_t off = 0;

	memset(r, 0, sizeof(*r));
	smtp_data_init(&d);
	do {
		size_t chunk = step == 0 || n - off < step ? n - off : step;
		size_t used;

		used = smtp_data_feed(&d, in + off, chunk,
		    discard ? NULL : &r->out, &r->done);
		assert_true(used <= chunk);
		if (!r->done)
			assert_int_equal(used, chunk);
		off += used;
	} while (!r->done && off < n);
	r->consumed = off;
	r->flags = d.flags;
	r->received = d.received;
	r->out_bytes = d.out_bytes;
	if (!discard)
		assert_int_equal(r->out_bytes, r->out.len);
}

/* run_free - release a run */
static void run_free(struct run *r)
{
	buf_free(&r->out);
}

/* same_run - two runs of the same input are indistinguishable (S8) */
static void same_run(const struct run *a, const struct run *b)
{
	assert_int_equal(a->out.len, b->out.len);
	if (a->out.len)
		assert_memory_equal(a->out.p, b->out.p, a->out.len);
	assert_int_equal(a->flags, b->flags);
	assert_int_equal(a->received, b->received);
	assert_int_equal(a->out_bytes, b->out_bytes);
	assert_int_equal(a->consumed, b->consumed);
	assert_int_equal(a->done, b->done);
}

/*
 * check_all_splits - whole, byte by byte, every two-way split, and with
 * the output discarded: all give the same result as the whole feed.
 */
static void check_all_splits(const char *in, size_t n)
{
	struct run whole, other;
	struct smtp_data d;
	size_t k;

	feed_split(&whole, in, n, 0, false);

	feed_split(&other, in, n, 1, false);
	same_run(&whole, &other);
	run_free(&other);

	feed_split(&other, in, n, 0, true);
	assert_int_equal(other.out_bytes, whole.out_bytes);
	assert_int_equal(other.flags, whole.flags);
	assert_int_equal(other.received, whole.received);
	assert_int_equal(other.consumed, whole.consumed);
	assert_int_equal(other.done, whole.done);

	for (k = 0; k <= n; k++) {
		struct buf out = BUF_INIT;
		size_t c1, c2 = 0;
		bool done = false;

		smtp_data_init(&d);
		c1 = smtp_data_feed(&d, in, k, &out, &done);
		if (!done)
			c2 = smtp_data_feed(&d, in + k, n - k, &out, &done);
		assert_int_equal(c1 + c2, whole.consumed);
		assert_int_equal(done, whole.done);
		assert_int_equal(out.len, whole.out.len);
		if (out.len)
			assert_memory_equal(out.p, whole.out.p, out.len);
		assert_int_equal(d.flags, whole.flags);
		assert_int_equal(d.received, whole.received);
		buf_free(&out);
	}
	run_free(&whole);
}

struct data_case {
	const char *in;
	size_t len;
	const char *out;	/* stored message */
	size_t outlen;
	size_t tail;		/* bytes left unconsumed */
	bool done;
	unsigned flags;
};

#define C(in, out, tail, done, flags) \
	{ L(in), L(out), tail, done, flags }

#define BLF SMTP_DATA_BARE_LF
#define BCR SMTP_DATA_BARE_CR
#define NUL SMTP_DATA_NUL

static const struct data_case cases[] = {
	/* the plain cases */
	C("Subject: x\r\n\r\nbody\r\n.\r\n", "Subject: x\r\n\r\nbody\r\n",
	    0, true, 0),
	C(".\r\n", "", 0, true, 0),				/* empty */
	C("Subject: x\r\n.\r\n", "Subject: x\r\n", 0, true, 0),
	C("\r\n.\r\n", "\r\n", 0, true, 0),
	C("a\r\n", "a\r\n", 0, false, 0),
	C("", "", 0, false, 0),
	/* S6: dot-stuffing */
	C("..foo\r\n.\r\n", ".foo\r\n", 0, true, 0),
	C("..\r\n.\r\n", ".\r\n", 0, true, 0),
	C("...\r\n.\r\n", "..\r\n", 0, true, 0),
	C("x\r\n..\r\n.\r\n", "x\r\n.\r\n", 0, true, 0),
	C(". \r\n.\r\n", " \r\n", 0, true, 0),
	C(".x\r\n.\r\n", "x\r\n", 0, true, 0),
	C("abc.\r\n.\r\n", "abc.\r\n", 0, true, 0),
	C("a.\r\n.b\r\n.\r\n", "a.\r\nb\r\n", 0, true, 0),
	C(". \r\n", " \r\n", 0, false, 0),
	C(".", "", 0, false, 0),
	C(".\r", "", 0, false, 0),
	/* pipelined commands after the end are left alone */
	C("a\r\n.\r\nQUIT\r\n", "a\r\n", 6, true, 0),
	C(".\r\nMAIL FROM:<a@b>\r\n", "", 17, true, 0),
	C("a\r\n.\r\n.\r\n", "a\r\n", 3, true, 0),
	/* S1: "\n.\n" is content, then the real end */
	C("a\n.\nMAIL FROM:<ceo@bank>\r\nRCPT TO:<victim@ourdomain>\r\n"
	    "DATA\r\nevil\r\n.\r\nQUIT\r\n",
	    "a\n.\nMAIL FROM:<ceo@bank>\r\nRCPT TO:<victim@ourdomain>\r\n"
	    "DATA\r\nevil\r\n", 6, true, BLF),
	/* findings */
	C("a\rb\r\n.\r\n", "a\rb\r\n", 0, true, BCR),
	C("a\nb\r\n.\r\n", "a\nb\r\n", 0, true, BLF),
	C("a\0b\r\n.\r\n", "a\0b\r\n", 0, true, NUL),
	C("a\r\r\n.\r\n", "a\r\r\n", 0, true, BCR),
	C("\r\r\n.\r\n", "\r\r\n", 0, true, BCR),
	C("\n\r\n.\r\n", "\n\r\n", 0, true, BLF),
	C(".\n.\r\n", "\n.\r\n", 0, false, BLF),
	C(".\r.\r\n.\r\n", "\r.\r\n", 0, true, BCR),
	C(".\0\r\n.\r\n", "\0\r\n", 0, true, NUL),
	C("\0.\r\n.\r\n", "\0.\r\n", 0, true, NUL),
};

/* test_table - output, consumed length, done and flags per case */
static void test_table(void **state)
{
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct data_case *c = &cases[i];
		struct run r;

		feed_split(&r, c->in, c->len, 0, false);
		if (r.consumed != c->len - c->tail || r.done != c->done ||
		    r.flags != c->flags || r.out.len != c->outlen)
			print_error("row %zu: consumed %zu done %d flags %u "
			    "outlen %zu\n", i, r.consumed, (int)r.done,
			    r.flags, r.out.len);
		assert_int_equal(r.consumed, c->len - c->tail);
		assert_int_equal(r.done, c->done);
		assert_int_equal(r.flags, c->flags);
		assert_int_equal(r.out.len, c->outlen);
		if (c->outlen)
			assert_memory_equal(r.out.p, c->out, c->outlen);
		run_free(&r);
		check_all_splits(c->in, c->len);
	}
}

/*
 * Every smuggling end-of-data look-alike (S2), raw and with a NUL put in;
 * each must be content, however it is split.
 */
static const struct {
	const char *s;
	size_t len;
} smug[] = {
	{ L("\n.\n") }, { L("\n.\r\n") }, { L("\r\n.\n") }, { L("\r.\r") },
	{ L("\r\n.\r") }, { L("\n.\r\r\n") }, { L("\r\r\n.\r\r\n") },
	{ L("\r.\r\n") }, { L("\r\n.\r\r\n") }, { L("\r\n\n.\r\n") },
	{ L("\n\n.\n\n") }, { L("\r\r.\r\r") }, { L("\r\n.\r\r") },
	{ L("\r\n.\n\r\n") }, { L("\r\n .\r\n") }, { L("\r\n.\t\r\n") },
	{ L("\r\n\0.\r\n") }, { L("\r\n.\0\r\n") }, { L("\r\n.\r\0\n") },
	{ L("\r\0\n.\r\n") }, { L("\n.\0\n") },
	{ L("\r\n\x80.\r\n") }, { L("\r\n..\r\n") },
};

/* test_smuggling - S1/S2: nothing but CR LF "." CR LF ends the data */
static void test_smuggling(void **state)
{
	static const char inject[] = "MAIL FROM:<ceo@bank.example>\r\n"
	    "RCPT TO:<victim@served.example>\r\nDATA\r\nforged\r\n";
	static const char real_end[] = "\r\n.\r\n";
	static const char after[] = "QUIT\r\n";
	size_t i;

	for (i = 0; i < sizeof(smug) / sizeof(smug[0]); i++) {
		struct buf in = BUF_INIT;
		struct run r;
		size_t upto;

		buf_puts(&in, "Subject: hi\r\n\r\nbody");
		buf_append(&in, smug[i].s, smug[i].len);
		buf_puts(&in, inject);
		upto = in.len;

		/* without the real end, never done */
		feed_split(&r, in.p, in.len, 0, false);
		if (r.done)
			print_error("variant %zu ended data\n", i);
		assert_false(r.done);
		assert_int_equal(r.consumed, in.len);
		run_free(&r);

		/* with it, done exactly there: QUIT stays unconsumed */
		buf_puts(&in, real_end + 2);
		upto = in.len;
		buf_puts(&in, after);
		feed_split(&r, in.p, in.len, 0, false);
		assert_true(r.done);
		assert_int_equal(r.consumed, upto);
		/* the forged commands are stored as content */
		assert_true(r.out.len >= sizeof(inject) - 1);
		assert_memory_equal(r.out.p + r.out.len - (sizeof(inject) - 1),
		    inject, sizeof(inject) - 1);
		run_free(&r);
		check_all_splits(in.p, in.len);
		buf_free(&in);
	}

	/* control: a NUL before a real end does not hide it */
	{
		struct run r;

		feed_split(&r, L("x\0\r\n.\r\n\x7f"), 0, false);
		assert_true(r.done);
		assert_int_equal(r.consumed, 7);
		assert_int_equal(r.flags, NUL);
		run_free(&r);
	}
}

/* test_smuggling_flags - each look-alike still leaves a finding */
static void test_smuggling_flags(void **state)
{
	static const struct {
		const char *s;
		size_t len;
		unsigned flags;
	} f[] = {
		{ L("a\n.\nb\r\n.\r\n"), BLF },
		{ L("a\r.\rb\r\n.\r\n"), BCR },
		{ L("a\r\n.\nb\r\n.\r\n"), BLF },
		{ L("a\r\n.\rb\r\n.\r\n"), BCR },
		{ L("a\n.\r\nb\r\n.\r\n"), BLF },
		{ L("a\r\n.\0\r\nb\r\n.\r\n"), NUL },
		{ L("a\r\n\0.\r\nb\r\n.\r\n"), NUL },
		{ L("a\r\n.\r\0\nb\r\n.\r\n"), NUL | BCR | BLF },
	};
	size_t i;

	for (i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
		struct run r;

		feed_split(&r, f[i].s, f[i].len, 0, false);
		assert_true(r.done);
		assert_int_equal(r.consumed, f[i].len);
		assert_int_equal(r.flags, f[i].flags);
		run_free(&r);
	}
}

/* test_long_lines - 998 octets is fine, 999 is long (S7) */
static void test_long_lines(void **state)
{
	static const size_t sizes[] = { 997, 998, 999, 1000, 1 << 20 };
	size_t i;

	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		struct buf in = BUF_INIT;
		struct run r, r1;
		size_t n = sizes[i];

		buf_reserve(&in, n + 16);
		memset(in.p, 'x', n);
		in.len = n;
		buf_puts(&in, "\r\n.\r\n");
		feed_split(&r, in.p, in.len, 0, false);
		assert_true(r.done);
		assert_int_equal(r.out.len, n + 2);
		assert_int_equal(r.flags,
		    n > SMTP_DATA_LINE_MAX ? SMTP_DATA_LONG_LINE : 0u);
		/* S7: split in odd chunks, same answer */
		feed_split(&r1, in.p, in.len, 4093, false);
		same_run(&r, &r1);
		run_free(&r1);
		run_free(&r);
		buf_free(&in);
	}

	/* the stuffing dot is not part of the stored line */
	{
		struct buf in = BUF_INIT;
		struct run r;

		buf_putc(&in, '.');
		while (in.len < 999)
			buf_putc(&in, 'y');
		buf_puts(&in, "\r\n.\r\n");
		feed_split(&r, in.p, in.len, 0, false);
		assert_int_equal(r.flags, 0);
		assert_int_equal(r.out.len, 998 + 2);
		run_free(&r);
		buf_free(&in);
	}

	/* short lines after a long one do not clear the finding */
	{
		struct buf in = BUF_INIT;
		struct run r;

		while (in.len < 1200)
			buf_putc(&in, 'z');
		buf_puts(&in, "\r\nshort\r\n.\r\n");
		feed_split(&r, in.p, in.len, 0, false);
		assert_int_equal(r.flags, SMTP_DATA_LONG_LINE);
		run_free(&r);
		buf_free(&in);
	}
}

/* test_buffer_edges - S7: splits between CR and LF, CR LF and the dot */
static void test_buffer_edges(void **state)
{
	struct buf in = BUF_INIT;
	size_t i;
	struct run whole;

	for (i = 0; i < 20000; i++)
		buf_puts(&in, i % 7 == 0 ? "..dot line\r\n" : "line\r\n");
	buf_puts(&in, ".\r\n");
	feed_split(&whole, in.p, in.len, 0, false);
	assert_true(whole.done);
	assert_int_equal(whole.consumed, in.len);
	assert_int_equal(whole.flags, 0);

	/* chunk sizes chosen to land on every position in a line */
	for (i = 1; i < 40; i++) {
		struct run r;

		feed_split(&r, in.p, in.len, i, false);
		same_run(&whole, &r);
		run_free(&r);
	}
	run_free(&whole);
	buf_free(&in);
}

/* lcg - a fixed pseudo-random sequence, so failures repeat */
static uint32_t lcg(uint32_t *s)
{
	*s = *s * 1664525u + 1013904223u;
	return *s >> 8;
}

/* test_random_splits - S8: random inputs, random multi-way splits */
static void test_random_splits(void **state)
{
	static const char alphabet[] = "\r\n.\0aR:e ";
	uint32_t seed = 12345;
	int iter;

	for (iter = 0; iter < 3000; iter++) {
		char in[256];
		size_t n = lcg(&seed) % sizeof(in), k, off = 0;
		struct run whole;
		struct smtp_data d;
		struct buf out = BUF_INIT;
		bool done = false;

		for (k = 0; k < n; k++)
			in[k] = alphabet[lcg(&seed) % (sizeof(alphabet) - 1)];
		feed_split(&whole, in, n, 0, false);

		smtp_data_init(&d);
		while (off < n && !done) {
			size_t chunk = lcg(&seed) % 9;

			if (chunk > n - off)
				chunk = n - off;
			off += smtp_data_feed(&d, in + off, chunk, &out, &done);
		}
		assert_int_equal(off, whole.consumed);
		assert_int_equal(done, whole.done);
		assert_int_equal(d.flags, whole.flags);
		assert_int_equal(d.received, whole.received);
		assert_int_equal(out.len, whole.out.len);
		if (out.len)
			assert_memory_equal(out.p, whole.out.p, out.len);
		buf_free(&out);
		run_free(&whole);
	}
}

/* received_msg - n "Received:" fields, other headers, a body */
static void received_msg(struct buf *b, int n)
{
	int i;

	buf_reset(b);
	for (i = 0; i < n; i++)
		buf_printf(b, "Received: from h%d.example by mx.example;\r\n"
		    "\tTue, 1 Jan 2030 00:00:%02d +0000\r\n", i, i % 60);
	buf_puts(b, "From: a@b.example\r\nSubject: loop\r\n\r\nbody\r\n.\r\n");
}

/* test_received_count - hop counting at 49, 50, 51, 101 */
static void test_received_count(void **state)
{
	static const int counts[] = { 0, 1, 49, 50, 51, 101 };
	struct buf b = BUF_INIT;
	size_t i;

	for (i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
		struct run r, r1;

		received_msg(&b, counts[i]);
		feed_split(&r, b.p, b.len, 0, false);
		assert_true(r.done);
		assert_int_equal(r.received, counts[i]);
		feed_split(&r1, b.p, b.len, 1, false);
		same_run(&r, &r1);
		run_free(&r1);
		run_free(&r);
	}
	buf_free(&b);
}

struct recv_case {
	const char *in;
	size_t len;
	unsigned received;
};

static const struct recv_case recv_cases[] = {
	{ L("Received: a\r\n\r\n.\r\n"), 1 },
	{ L("RECEIVED: a\r\nreceived:b\r\nReCeIvEd:\r\n.\r\n"), 3 },
	/* continuation lines, other fields and near misses */
	{ L("Subject: x\r\n Received: a\r\n\tReceived: b\r\n.\r\n"), 0 },
	{ L("X-Received: a\r\nReceived : b\r\nReceived\r\n.\r\n"), 0 },
	{ L("Receive: a\r\nReceivedX: b\r\n.\r\n"), 0 },
	/* only the header section counts */
	{ L("Received: a\r\n\r\nReceived: b\r\nReceived: c\r\n.\r\n"), 1 },
	{ L("\r\nReceived: a\r\n.\r\n"), 0 },
	/* a line start is after CR LF only, not after a bare LF or CR */
	{ L("Subject: a\nReceived: b\r\n.\r\n"), 0 },
	{ L("Subject: a\rReceived: b\r\n.\r\n"), 0 },
	/* a stuffed dot is removed before matching */
	{ L(".Received: a\r\n.\r\n"), 1 },
	{ L("..Received: a\r\n.\r\n"), 0 },
	/* a blank-looking line with a bare CR is not the empty line */
	{ L("\r\r\nReceived: a\r\n.\r\n"), 1 },
	{ L("Received:"), 1 },
	{ L("Received"), 0 },
	/* an empty line made by unstuffing a lone ".." is not empty */
	{ L("..\r\nReceived: a\r\n.\r\n"), 1 },
};

/* test_received_rules - what counts as a Received: field */
static void test_received_rules(void **state)
{
	size_t i;

	for (i = 0; i < sizeof(recv_cases) / sizeof(recv_cases[0]); i++) {
		struct run r;

		feed_split(&r, recv_cases[i].in, recv_cases[i].len, 0, false);
		if (r.received != recv_cases[i].received)
			print_error("row %zu: %u\n", i, r.received);
		assert_int_equal(r.received, recv_cases[i].received);
		run_free(&r);
		check_all_splits(recv_cases[i].in, recv_cases[i].len);
	}
}

/* test_discard - out NULL: same counting, findings and end detection */
static void test_discard(void **state)
{
	static const char msg[] = "Received: x\r\n\r\n..a\nb\rc\0\r\n.\r\nQUIT";
	struct smtp_data d;
	bool done;
	size_t used;

	smtp_data_init(&d);
	used = smtp_data_feed(&d, msg, sizeof(msg) - 1, NULL, &done);
	assert_true(done);
	assert_int_equal(used, sizeof(msg) - 1 - 4);
	assert_int_equal(d.out_bytes, 13 + 2 + 9);
	assert_int_equal(d.received, 1);
	assert_int_equal(d.flags, BLF | BCR | NUL);

	/* switching to discard midway keeps counting from where it was */
	{
		struct buf out = BUF_INIT;

		smtp_data_init(&d);
		used = smtp_data_feed(&d, msg, 10, &out, &done);
		assert_int_equal(used, 10);
		assert_false(done);
		used = smtp_data_feed(&d, msg + 10, sizeof(msg) - 11, NULL,
		    &done);
		assert_true(done);
		assert_int_equal(out.len, 10);
		assert_int_equal(d.out_bytes, 13 + 2 + 9);
		buf_free(&out);
	}
}

/* test_after_done - a finished machine consumes nothing more */
static void test_after_done(void **state)
{
	struct smtp_data d;
	struct buf out = BUF_INIT;
	bool done = false;

	smtp_data_init(&d);
	assert_int_equal(smtp_data_feed(&d, L("a\r\n.\r\n"), &out, &done), 6);
	assert_true(done);
	done = false;
	assert_int_equal(smtp_data_feed(&d, L("b\r\n.\r\n"), &out, &done), 0);
	assert_true(done);
	assert_int_equal(out.len, 3);
	assert_string_equal(buf_cstr(&out), "a\r\n");

	/* init resets for the next transaction; output is appended */
	smtp_data_init(&d);
	assert_int_equal(d.out_bytes, 0);
	assert_int_equal(smtp_data_feed(&d, L("b\r\n.\r\n"), &out, &done), 6);
	assert_string_equal(buf_cstr(&out), "a\r\nb\r\n");
	assert_int_equal(d.out_bytes, 3);

	/* zero-length feeds are harmless anywhere */
	smtp_data_init(&d);
	assert_int_equal(smtp_data_feed(&d, "", 0, &out, &done), 0);
	assert_false(done);
	assert_int_equal(smtp_data_feed(&d, L("\r\n."), &out, &done), 3);
	assert_int_equal(smtp_data_feed(&d, "", 0, &out, &done), 0);
	assert_int_equal(smtp_data_feed(&d, L("\r\n"), &out, &done), 2);
	assert_true(done);
	buf_free(&out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_smuggling),
		cmocka_unit_test(test_smuggling_flags),
		cmocka_unit_test(test_long_lines),
		cmocka_unit_test(test_buffer_edges),
		cmocka_unit_test(test_random_splits),
		cmocka_unit_test(test_received_count),
		cmocka_unit_test(test_received_rules),
		cmocka_unit_test(test_discard),
		cmocka_unit_test(test_after_done),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
