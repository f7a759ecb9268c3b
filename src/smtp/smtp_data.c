/* smtp_data - the DATA phase as a byte-driven state machine */
#include "smtp/smtp_data.h"

#include <limits.h>
#include <string.h>

#include "util/strutil.h"

/*
 * Every byte that might still turn out to be part of the terminator is
 * held back as state, never as buffered bytes: ST_CR holds a CR,
 * ST_DOT a line-initial dot, ST_DOT_CR both.  So the outcome is a function
 * of the byte stream alone, however it was cut into calls (S8).
 */
enum data_state {
	ST_BOL,			/* at the start of a line (after CR LF) */
	ST_TEXT,		/* inside a line */
	ST_CR,			/* inside a line, after a CR */
	ST_DOT,			/* after a line-initial dot */
	ST_DOT_CR,		/* after a line-initial dot and a CR */
	ST_DONE,		/* CR LF "." CR LF seen */
};

#define RECEIVED_NAME "Received:"
#define RECEIVED_LEN (sizeof(RECEIVED_NAME) - 1)

/* where content goes: w is NULL when the caller discards it */
struct sink {
	char *w;
};

/* content - one stored byte of the current line */
static void content(struct smtp_data *d, struct sink *sk, char c)
{
	if (sk->w != NULL)
		*sk->w++ = c;
	d->out_bytes++;
	/* Saturate: we only need to know that the limit was passed. */
	if (d->line_len <= SMTP_DATA_LINE_MAX && ++d->line_len >
	    SMTP_DATA_LINE_MAX)
		d->flags |= SMTP_DATA_LONG_LINE;
	if (d->in_header && d->hdr_len < RECEIVED_LEN) {
		d->hdr[d->hdr_len++] = c;
		if (d->hdr_len == RECEIVED_LEN &&
		    str_caseeq_n(d->hdr, RECEIVED_LEN, RECEIVED_NAME) &&
		    d->received < UINT_MAX)
			d->received++;
	}
}

/* end_line - a CR LF: store it and start a new line */
static void end_line(struct smtp_data *d, struct sink *sk)
{
	if (sk->w != NULL) {
		*sk->w++ = '\r';
		*sk->w++ = '\n';
	}
	d->out_bytes += 2;
	/* The first empty line ends the header section for good. */
	if (d->line_len == 0)
		d->in_header = false;
	d->line_len = 0;
	d->hdr_len = 0;
	d->state = ST_BOL;
}

/* smtp_data_init - ready for the first byte after the 354 reply */
void smtp_data_init(struct smtp_data *d)
{
	memset(d, 0, sizeof(*d));
	d->state = ST_BOL;
	d->in_header = true;
}

/* smtp_data_feed - run the machine over in[0..len) */
size_t smtp_data_feed(struct smtp_data *d, const char *in, size_t len,
    struct buf *out, bool *done)
{
	struct sink sk = { NULL };
	size_t i;

	if (d->state == ST_DONE) {
		if (done != NULL)
			*done = true;
		return 0;
	}
	if (out != NULL) {
		/* Each byte stores at most one, plus a CR held from before. */
		buf_reserve(out, len + 1);
		sk.w = out->p + out->len;
	}

	for (i = 0; i < len && d->state != ST_DONE; i++) {
		char c = in[i];

		/*
		 * The common case, inside a line past the bytes the Received
		 * check looks at: copy the run up to the next CR, LF or NUL
		 * at once instead of byte by byte.
		 */
		if (d->state == ST_TEXT && c != '\r' && c != '\n' && c != '\0' &&
		    (!d->in_header || d->hdr_len >= RECEIVED_LEN)) {
			size_t j = i + 1, run;

			while (j < len && in[j] != '\r' && in[j] != '\n' &&
			    in[j] != '\0')
				j++;
			run = j - i;
			if (sk.w != NULL) {
				memcpy(sk.w, in + i, run);
				sk.w += run;
			}
			d->out_bytes += run;
			if (d->line_len <= SMTP_DATA_LINE_MAX) {
				d->line_len = run > SMTP_DATA_LINE_MAX - d->line_len ?
				    SMTP_DATA_LINE_MAX + 1 : d->line_len + run;
				if (d->line_len > SMTP_DATA_LINE_MAX)
					d->flags |= SMTP_DATA_LONG_LINE;
			}
			i = j - 1;
			continue;
		}

		if (c == '\0')
			d->flags |= SMTP_DATA_NUL;

		switch ((enum data_state)d->state) {
		case ST_BOL:
			if (c == '.') {
				d->state = ST_DOT;
				continue;
			}
			break;
		case ST_DOT:
			if (c == '\r') {
				d->state = ST_DOT_CR;
				continue;
			}
			/* The line goes on: the dot was stuffing; drop it. */
			break;
		case ST_DOT_CR:
			if (c == '\n') {
				d->state = ST_DONE;
				continue;
			}
			/* ".", CR, not LF: stuffing dot, then a bare CR. */
			d->flags |= SMTP_DATA_BARE_CR;
			content(d, &sk, '\r');
			break;
		case ST_CR:
			if (c == '\n') {
				end_line(d, &sk);
				continue;
			}
			d->flags |= SMTP_DATA_BARE_CR;
			content(d, &sk, '\r');
			break;
		case ST_TEXT:
		case ST_DONE:
			break;
		}

		/* c is now an ordinary byte inside a line. */
		d->state = ST_TEXT;
		if (c == '\r') {
			d->state = ST_CR;
			continue;
		}
		/*
		 * A bare LF is content, not a line end: "\n.\n" must not end
		 * the data here when a later hop would read it as CR LF (S1).
		 */
		if (c == '\n')
			d->flags |= SMTP_DATA_BARE_LF;
		content(d, &sk, c);
	}

	if (out != NULL) {
		out->len = (size_t)(sk.w - out->p);
		out->p[out->len] = '\0';
	}
	if (done != NULL)
		*done = d->state == ST_DONE;
	return i;
}
