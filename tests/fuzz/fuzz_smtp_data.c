/* fuzz_smtp_data - libFuzzer target for the DATA state machine (S8) */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/smtp_data.h"
#include "util/buf.h"

static volatile size_t sink;

struct result {
	struct buf out;
	struct smtp_data d;
	size_t consumed;
	bool done;
};

/*
 * run - feed in[0..n) with cuts at the given offsets (ascending); the
 * caller stops at done, so later pieces are never offered.
 */
static void run(struct result *r, const char *in, size_t n,
    const size_t *cuts, size_t ncuts, bool discard)
{
	size_t off = 0, c;

	memset(r, 0, sizeof(*r));
	smtp_data_init(&r->d);
	for (c = 0; c <= ncuts && !r->done; c++) {
		size_t end = c < ncuts ? cuts[c] : n;
		size_t used;

		if (end < off)
			end = off;
		used = smtp_data_feed(&r->d, in + off, end - off,
		    discard ? NULL : &r->out, &r->done);
		if (used > end - off || (!r->done && used != end - off))
			abort();
		off += used;
	}
	r->consumed = off;
}

/* same - S8: byte-identical output and identical findings */
static void same(const struct result *a, const struct result *b,
    bool cmp_out)
{
	if (a->consumed != b->consumed || a->done != b->done ||
	    a->d.flags != b->d.flags || a->d.received != b->d.received ||
	    a->d.out_bytes != b->d.out_bytes)
		abort();
	if (cmp_out && (a->out.len != b->out.len ||
	    (a->out.len && memcmp(a->out.p, b->out.p, a->out.len) != 0)))
		abort();
}

/* check_end - a done run ended on CR LF "." CR LF or on a leading ".\r\n" */
static void check_end(const struct result *r, const char *in)
{
	if (!r->done)
		return;
	if (r->consumed == 3) {
		if (memcmp(in, ".\r\n", 3) != 0)
			abort();
	} else if (r->consumed < 5 ||
	    memcmp(in + r->consumed - 5, "\r\n.\r\n", 5) != 0) {
		abort();
	}
	if (r->out.len > r->consumed)
		abort();
}

/* LLVMFuzzerTestOneInput - one DATA stream, fed whole and in pieces */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data;
	struct result whole, split, bytes, disc;
	size_t cut = 0, cuts[3];

	if (size >= 2)
		cut = (((size_t)data[0] << 8) | data[size - 1]) % (size + 1);

	run(&whole, in, size, NULL, 0, false);
	if (whole.d.out_bytes != whole.out.len)
		abort();
	if (whole.out.len > whole.consumed + 1)
		abort();
	check_end(&whole, in);

	run(&split, in, size, &cut, 1, false);
	same(&whole, &split, true);

	/* a three-way split, also with an empty piece */
	cuts[0] = cut / 2;
	cuts[1] = cut;
	cuts[2] = cut;
	buf_free(&split.out);
	run(&split, in, size, cuts, 3, false);
	same(&whole, &split, true);

	run(&disc, in, size, &cut, 1, true);
	same(&whole, &disc, false);

	if (size <= 1024) {
		size_t i, one[1024];

		for (i = 0; i < size; i++)
			one[i] = i + 1;
		run(&bytes, in, size, one, size, false);
		same(&whole, &bytes, true);
		buf_free(&bytes.out);
	}

	sink += whole.out.len + whole.d.flags + whole.d.received;
	buf_free(&whole.out);
	buf_free(&split.out);
	return 0;
}
