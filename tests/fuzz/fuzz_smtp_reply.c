/* fuzz_smtp_reply - libFuzzer target for the client's reply parser (Y5) */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/smtp_reply.h"
#include "util/buf.h"

static volatile size_t sink;

/*
 * A second, independent statement of the rules: what the parser must
 * answer for one line, given the state before it.
 */
struct model {
	int code;
	unsigned nlines;
	size_t textlen;
	bool over;		/* DONE or BAD seen: everything is BAD */
};

/* model_feed - the expected status for line[0..len) */
static enum smtp_reply_status model_feed(struct model *m, const char *line,
    size_t len)
{
	size_t i, add;
	int code;

	if (m->over)
		return SMTP_REPLY_BAD;
	m->over = true;
	if (len > 510 || len < 3)
		return SMTP_REPLY_BAD;
	if (!(line[0] >= '2' && line[0] <= '5') ||
	    !(line[1] >= '0' && line[1] <= '5') ||
	    !(line[2] >= '0' && line[2] <= '9'))
		return SMTP_REPLY_BAD;
	code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + line[2] - '0';
	if (m->nlines > 0 && code != m->code)
		return SMTP_REPLY_BAD;
	if (len > 3 && line[3] != ' ' && line[3] != '-')
		return SMTP_REPLY_BAD;
	if (m->nlines == SMTP_REPLY_MAX_LINES)
		return SMTP_REPLY_BAD;
	for (i = 4; i < len; i++) {
		unsigned char c = (unsigned char)line[i];

		if (c == 0x7f || (c < 0x20 && c != '\t'))
			return SMTP_REPLY_BAD;
	}
	add = (len > 4 ? len - 4 : 0) + (m->nlines > 0);
	if (m->textlen + add > SMTP_REPLY_MAX_TEXT)
		return SMTP_REPLY_BAD;
	m->textlen += add;
	m->code = code;
	m->nlines++;
	if (len == 3 || line[3] == ' ')
		return SMTP_REPLY_DONE;
	m->over = false;
	return SMTP_REPLY_MORE;
}

/* check_state - the bounds hold after every feed */
static void check_state(const struct smtp_reply *r, const struct model *m)
{
	size_t i, nl = 0;

	if (r->text.len > SMTP_REPLY_MAX_TEXT ||
	    r->nlines > SMTP_REPLY_MAX_LINES)
		abort();
	if (r->nlines != m->nlines || r->text.len != m->textlen)
		abort();
	if (r->nlines > 0 && (r->code < 200 || r->code > 559 ||
	    r->code != m->code))
		abort();
	for (i = 0; i < r->text.len; i++) {
		unsigned char c = (unsigned char)r->text.p[i];

		if (c == '\n')
			nl++;
		else if (c == 0x7f || (c < 0x20 && c != '\t'))
			abort();
	}
	if (r->nlines > 0 && nl != r->nlines - 1)
		abort();
	if ((r->status == SMTP_REPLY_BAD) != (r->error != NULL))
		abort();
}

/* check_log - format_log appends printable ASCII only, bounded */
static void check_log(const struct smtp_reply *r)
{
	struct buf out = BUF_INIT;
	size_t i;

	buf_puts(&out, "x");
	smtp_reply_format_log(r, &out);
	if (out.len - 1 > SMTP_REPLY_LOG_MAX)
		abort();
	if (r->nlines > 0 && out.len < 4)
		abort();
	for (i = 1; i < out.len; i++) {
		unsigned char c = (unsigned char)out.p[i];

		if (c < 0x20 || c > 0x7e)
			abort();
	}
	sink += out.len;
	buf_free(&out);
}

/* check_done - the helpers on a complete reply */
static void check_done(const struct smtp_reply *r)
{
	struct smtp_ehlo_caps caps;
	char enh[16];
	const char *e, *p;

	smtp_ehlo_caps(r, &caps);
	if (strlen(caps.auth_mechs) > SMTP_EHLO_AUTH_MAX)
		abort();
	for (p = caps.auth_mechs; *p != '\0'; p++) {
		if (!((*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		    *p == '-' || *p == '_' || *p == ' '))
			abort();
	}
	if (caps.auth_mechs[0] != '\0' && !caps.auth)
		abort();
	if (r->code != 250 && (caps.pipelining || caps.starttls ||
	    caps.has_size || caps.auth))
		abort();
	e = smtp_reply_enhanced(r, enh);
	if (e != NULL && (e != enh || strlen(e) < 5 || strlen(e) > 9 ||
	    e[0] != '0' + r->code / 100))
		abort();
	sink += caps.size + (size_t)caps.pipelining;
}

/* LLVMFuzzerTestOneInput - lines split at LF; a leading 'c' keeps CRs */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data, *end = in + size;
	struct smtp_reply r;
	struct model m;
	bool keep_cr = size > 0 && data[0] == 'c';

	if (keep_cr) {
		in++;
	}
	smtp_reply_init(&r);
	memset(&m, 0, sizeof(m));
	while (in < end) {
		const char *nl = memchr(in, '\n', (size_t)(end - in));
		size_t len = nl ? (size_t)(nl - in) : (size_t)(end - in);
		enum smtp_reply_status st, want;

		if (!keep_cr && len > 0 && in[len - 1] == '\r')
			len--;
		want = model_feed(&m, in, len);
		st = smtp_reply_feed(&r, in, len);
		if (st != want || st != r.status)
			abort();
		check_state(&r, &m);
		if (st != SMTP_REPLY_MORE) {
			if (st == SMTP_REPLY_DONE)
				check_done(&r);
			check_log(&r);
			/* sticky: the next line is refused until a reset */
			if (smtp_reply_feed(&r, in, len) != SMTP_REPLY_BAD ||
			    r.nlines != m.nlines || r.text.len != m.textlen)
				abort();
			smtp_reply_reset(&r);
			memset(&m, 0, sizeof(m));
		}
		in = nl ? nl + 1 : end;
	}
	check_log(&r);
	smtp_reply_free(&r);
	return 0;
}
