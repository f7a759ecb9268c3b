/*
 * SUMMARY
 *	smtp_data - the DATA phase as a byte-driven state machine
 * DESCRIPTION
 *	Pure: no I/O, no logging.  Feed the bytes a client sends after the
 *	354 reply; the machine removes dot-stuffing (RFC 5321 4.5.2), finds the
 *	end of data, and reports what it saw.  Only CR LF "." CR LF ends the
 *	data: a dot framed by a bare LF or a bare CR is content (SMTP
 *	smuggling, SECURITY.md S1-S2).  The result never depends on how the
 *	input was split into calls (S8).
 *
 *	Findings, as flags, for the caller's policy at end of data:
 *	  SMTP_DATA_BARE_LF	an LF not preceded by CR
 *	  SMTP_DATA_BARE_CR	a CR not followed by LF
 *	  SMTP_DATA_LONG_LINE	a line longer than 998 octets before its CRLF
 *	  SMTP_DATA_NUL		a NUL byte
 *	and the number of "Received:" header fields (case-insensitive, at the
 *	start of a line) in the header section, which ends at the first empty
 *	line (hop counting, RFC 5321 6.3).
 *
 *	The output is the message as stored: every line of the content with
 *	its CRLF, a stuffed leading dot removed, the final CRLF "." CRLF not
 *	included (the CRLF before the dot belongs to the last line).  Bare
 *	CR and LF bytes are copied as they came (the caller refuses such a
 *	message).  An empty message gives an empty output.
 *
 *	Lines: only CR LF ends a line.  A byte after a bare CR or bare LF is
 *	not at the start of a line, so it is never taken for a stuffed dot,
 *	an end-of-data dot or a header name.  A line that begins with a dot
 *	and has more on it loses that dot (RFC 5321 4.5.2: "..foo" is stored
 *	as ".foo" and ". x" as " x"); only a line holding just the dot ends
 *	the data.  Line length and header matching are measured on the
 *	stored line, after the stuffed dot is removed.
 * OWNERSHIP
 *	The caller owns the struct and the output buffer.
 */
#ifndef ETRND_SMTP_DATA_H
#define ETRND_SMTP_DATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

#define SMTP_DATA_LINE_MAX 998

#define SMTP_DATA_BARE_LF	1u
#define SMTP_DATA_BARE_CR	2u
#define SMTP_DATA_LONG_LINE	4u
#define SMTP_DATA_NUL		8u

struct smtp_data {
	int state;		/* private */
	size_t line_len;	/* private */
	char hdr[10];		/* private: start of the current header line */
	size_t hdr_len;		/* private */
	bool in_header;		/* private */
	unsigned flags;		/* SMTP_DATA_* seen so far */
	unsigned received;	/* Received: fields in the header section */
	uint64_t out_bytes;	/* content bytes so far, also when out is NULL */
};

/* smtp_data_init - the state right after the 354 reply (also a reset) */
void smtp_data_init(struct smtp_data *d);

/*
 * smtp_data_feed - consume in[0..len), appending content to out.  Returns
 * the number of bytes consumed; stops right after the terminating
 * CR LF "." CR LF and sets *done, so that bytes after it (pipelined
 * commands) are left to the caller.  out may be NULL to discard content
 * (over-size message) while still counting and detecting the end:
 * out_bytes and every flag advance exactly as if out were given, so the
 * caller can keep measuring after it stops storing.  Once done, further
 * calls consume nothing and set *done again.  At most len + 1 bytes are
 * appended per call (a CR held over from the previous call).
 */
size_t smtp_data_feed(struct smtp_data *d, const char *in, size_t len,
    struct buf *out, bool *done);

#endif
