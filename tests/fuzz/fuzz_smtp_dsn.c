/* fuzz_smtp_dsn - libFuzzer target for the DSN builder (Y7, design rule 6) */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/smtp_dsn.h"
#include "util/buf.h"

#define FIXED_BOUNDARY "=_b0undary"
#define NFIELD 5		/* per recipient */

static volatile size_t sink;

/*
 * Input: three control bytes, then NUL-separated fields:
 *   flags (kind, RET, own boundary, actions), full_max / 16, times;
 *   sender, envid, qid, reporting MTA, boundary,
 *   then per recipient: addr, orcpt, status, remote MTA, diagnostic;
 *   the rest (NULs included) is the original message.
 * A field that is the single byte 0x01 stands for NULL.
 */
struct input {
	const char *f[5 + 3 * NFIELD];
	size_t nf;
	const char *body;
	size_t body_len;
	char *copy;
};

/* split - cut the input into C strings (a private copy) and the body */
static void split(struct input *in, const uint8_t *data, size_t size,
    size_t want)
{
	size_t i, start = 0;

	in->copy = malloc(size + 1);
	if (in->copy == NULL)
		abort();
	memcpy(in->copy, data, size);
	in->copy[size] = '\0';
	in->nf = 0;
	for (i = 0; i < size && in->nf < want; i++) {
		if (in->copy[i] == '\0') {
			in->f[in->nf++] = in->copy + start;
			start = i + 1;
		}
	}
	in->body = in->copy + start;
	in->body_len = size - start;
	for (i = in->nf; i < want; i++)
		in->f[i] = NULL;
	for (i = 0; i < want; i++) {
		if (in->f[i] != NULL && strcmp(in->f[i], "\x01") == 0)
			in->f[i] = NULL;
	}
}

/* starts_delim - line p[0..n) begins with "--" boundary */
static bool starts_delim(const char *p, size_t n, const char *b)
{
	size_t bl = strlen(b);

	return n >= bl + 2 && p[0] == '-' && p[1] == '-' &&
	    memcmp(p + 2, b, bl) == 0;
}

/*
 * check - every line CRLF-terminated, at most 998 octets, no NUL; the
 * lines that begin with the boundary are exactly our delimiters, the last
 * one closing and final; the returned original is byte-exact.
 */
static void check(const struct buf *o, const struct smtp_dsn *d,
    const struct smtp_dsn_info *info)
{
	size_t i, ls = 0, ndelim = 0, bl = strlen(d->boundary);
	size_t want = info->returned == SMTP_DSN_RETURNED_NONE ? 2 : 3;
	const char *last = NULL, *third = NULL;

	if (o->len < 2 || memcmp(o->p + o->len - 2, "\r\n", 2) != 0)
		abort();
	for (i = 0; i < o->len; i++) {
		unsigned char c = (unsigned char)o->p[i];

		if (c == '\0')
			abort();
		if (c >= 0x80 && !info->eightbit)
			abort();
		if (c == '\n' && (i == 0 || o->p[i - 1] != '\r'))
			abort();
		if (c != '\r')
			continue;
		if (i + 1 >= o->len || o->p[i + 1] != '\n')
			abort();
		if (i - ls > SMTP_DSN_LINE_MAX)
			abort();
		if (starts_delim(o->p + ls, i - ls, d->boundary)) {
			if (last != NULL)
				abort();	/* a line after the closing one */
			if (i - ls == bl + 4 &&
			    memcmp(o->p + ls + bl + 2, "--", 2) == 0)
				last = o->p + ls;
			else if (i - ls == bl + 2 && ++ndelim == 3)
				third = o->p + ls;
			else if (i - ls != bl + 2)
				abort();	/* a forged delimiter */
		}
		ls = i + 2;
		i++;
	}
	if (last == NULL || ndelim != want ||
	    last + bl + 6 != o->p + o->len)
		abort();

	if (info->returned == SMTP_DSN_RETURNED_FULL &&
	    (d->kind != SMTP_DSN_FAILURE || d->ret == SMTP_RET_HDRS))
		abort();
	if (info->returned != SMTP_DSN_RETURNED_NONE) {
		/* part 3: after its part headers, up to the closing CRLF */
		const char *end = last - 2, *p3;
		size_t n;

		p3 = memmem(third, (size_t)(end - third), "\r\n\r\n", 4);
		if (p3 == NULL)
			abort();
		p3 += 4;
		n = (size_t)(end - p3);
		if (n > d->body_len || memcmp(p3, d->body, n) != 0)
			abort();
		if (info->returned == SMTP_DSN_RETURNED_FULL && n != d->body_len)
			abort();
	}
}

/* LLVMFuzzerTestOneInput - one DSN from fuzzed fields and original */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smtp_dsn_rcpt rc[3];
	struct smtp_dsn d;
	struct smtp_dsn_info info;
	struct input in;
	struct buf out = BUF_INIT;
	unsigned flags, nrcpt, i;
	bool ok;

	if (size < 3)
		return 0;
	flags = data[0];
	nrcpt = 1 + (data[2] & 3) % 3;
	split(&in, data + 3, size - 3, 5 + nrcpt * NFIELD);

	memset(&d, 0, sizeof(d));
	memset(rc, 0, sizeof(rc));
	d.kind = (enum smtp_dsn_kind)(flags & 3);
	d.ret = (enum smtp_ret)((flags >> 2) & 3);
	d.full_max = (size_t)data[1] * 16;
	d.arrival = (data[2] & 4) ? 0 : 1700000000;
	d.now = (data[2] & 8) ? (time_t)-1 : (data[2] & 16) ?
	    ((time_t)1 << 60) : 1700000300;
	d.sender = in.f[0];
	d.envid = in.f[1];
	d.qid = in.f[2];
	d.reporting_mta = in.f[3];
	d.boundary = (flags & 16) && in.f[4] ? in.f[4] : FIXED_BOUNDARY;
	d.body = in.body;
	d.body_len = in.body_len;
	d.rcpts = rc;
	d.nrcpt = nrcpt;
	for (i = 0; i < nrcpt; i++) {
		const char *const *f = in.f + 5 + i * NFIELD;

		rc[i].addr = f[0];
		rc[i].orcpt = f[1];
		rc[i].status = f[2];
		rc[i].remote_mta = f[3];
		rc[i].diagnostic = f[4];
		rc[i].action = (enum smtp_dsn_action)((flags >> (5 + i)) & 3);
		rc[i].last_attempt = (data[2] & 32) ? 1700000200 : 0;
		rc[i].retry_until = (data[2] & 64) ? 1700400000 : 0;
	}

	buf_puts(&out, "prefix");
	ok = smtp_dsn_build(&d, &out, &info);
	if (!ok) {
		if (out.len != 6 || info.error == NULL)
			abort();
	} else {
		struct buf o = BUF_INIT;

		if (d.sender == NULL || d.sender[0] == '\0')
			abort();	/* Y7: never for the null sender */
		o.p = out.p + 6;
		o.len = out.len - 6;
		check(&o, &d, &info);
	}
	if ((d.sender == NULL || d.sender[0] == '\0') && ok)
		abort();
	sink += out.len;
	buf_free(&out);
	free(in.copy);
	return 0;
}
