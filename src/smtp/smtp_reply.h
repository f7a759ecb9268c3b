/*
 * SUMMARY
 *	smtp_reply - the delivery client's strict, bounded reply parser
 * DESCRIPTION
 *	Pure: no I/O, no logging.  The remote server is not trusted
 *	(SECURITY.md Y5; OpenSMTPD CVE-2020-8794 read out of bounds on a
 *	multi-line reply).  Feed one reply line at a time, without its CRLF;
 *	the parser collects the lines of one reply and says when it is
 *	complete or malformed.  It is safe for any bytes and any length,
 *	although the line reader in the I/O glue already refuses long lines
 *	and bare LF.
 *
 *	A line is a three-digit code (first digit 2-5, second 0-5, third
 *	0-9), then "-" (more lines follow), " " (the last line) or the end of
 *	the line (a bare "250" is a last line), then text.  Refused, as
 *	SMTP_REPLY_BAD:
 *	  - fewer than three digits, a non-digit, a digit out of range;
 *	  - anything but "-", " " or the end after the code ("250x");
 *	  - a code that differs from the first line's;
 *	  - in the text, NUL, CR, LF, DEL or another control byte than TAB
 *	    (bytes over 0x7f are kept: some servers greet in UTF-8 or
 *	    Latin-1; smtp_reply_format_log() escapes them);
 *	  - a line longer than SMTP_REPLY_LINE_MAX octets with its CRLF
 *	    (RFC 5321 4.5.3.1.5), checked before any byte is looked at;
 *	  - more than SMTP_REPLY_MAX_LINES lines in one reply;
 *	  - more than SMTP_REPLY_MAX_TEXT bytes of collected text (the
 *	    joining newlines count).
 *	A malformed reply means the peer is broken or hostile: the caller
 *	defers (4xx) and closes the connection.  BAD and DONE are sticky:
 *	every later smtp_reply_feed() returns SMTP_REPLY_BAD until
 *	smtp_reply_reset().
 * OWNERSHIP
 *	The caller owns struct smtp_reply and frees it with smtp_reply_free().
 *	The text buffer belongs to the struct; its contents stay valid until
 *	the next smtp_reply_reset() or smtp_reply_feed().
 */
#ifndef ETRND_SMTP_REPLY_H
#define ETRND_SMTP_REPLY_H

#include <stdbool.h>
#include <stddef.h>

#include "util/buf.h"

#define SMTP_REPLY_LINE_MAX	512	/* one line with its CRLF (RFC 5321 4.5.3.1.5) */
#define SMTP_REPLY_MAX_LINES	100
#define SMTP_REPLY_MAX_TEXT	4096
#define SMTP_REPLY_LOG_MAX	512	/* smtp_reply_format_log() output */
#define SMTP_EHLO_AUTH_MAX	127	/* smtp_ehlo_caps.auth_mechs, without NUL */

enum smtp_reply_status {
	SMTP_REPLY_MORE,	/* a "-" line: feed the next line */
	SMTP_REPLY_DONE,	/* the last line: code, nlines and text are final */
	SMTP_REPLY_BAD,		/* malformed: defer and close */
};

struct smtp_reply {
	int code;			/* 200..559; 0 before the first good line */
	unsigned nlines;		/* lines accepted so far */
	struct buf text;		/* each line's text after the code and
					 * separator, joined with '\n' */
	enum smtp_reply_status status;	/* the result of the last feed */
	const char *error;		/* static reason once BAD, else NULL */
};

/* smtp_reply_init - an empty parser, ready for the first line */
void smtp_reply_init(struct smtp_reply *r);

/*
 * smtp_reply_feed - consume one line, line[0..len), without CRLF.  line may
 * be NULL only when len is 0.  Returns the new status (also in
 * r->status); on SMTP_REPLY_BAD, r->error says why and the line is not
 * added to the text.
 */
enum smtp_reply_status smtp_reply_feed(struct smtp_reply *r, const char *line,
    size_t len);

/* smtp_reply_reset - empty again for the next reply, keeping storage */
void smtp_reply_reset(struct smtp_reply *r);

/* smtp_reply_free - release the storage; the struct is left initialised */
void smtp_reply_free(struct smtp_reply *r);

/*
 * smtp_reply_enhanced - the RFC 3463 enhanced status code at the start of
 * the first line's text ("550 5.1.1 No such user" gives "5.1.1"), copied
 * into out; returns out, or NULL when there is none.  The code must be
 * class "." subject "." detail with 1-3 digits for subject and detail,
 * followed by a space or the end of the text, and its class must equal
 * the first digit of a 2xx, 4xx or 5xx basic code (RFC 3463 2, RFC 2034).
 */
const char *smtp_reply_enhanced(const struct smtp_reply *r, char out[16]);

/* What a 250 reply to EHLO offers (RFC 5321 4.1.1.1). */
struct smtp_ehlo_caps {
	bool pipelining;		/* RFC 2920 */
	bool starttls;			/* RFC 3207 */
	bool eightbitmime;		/* RFC 6152 */
	bool dsn;			/* RFC 3461 */
	bool enhancedstatuscodes;	/* RFC 2034 */
	bool smtputf8;			/* RFC 6531 */
	bool chunking;			/* RFC 3030 */
	bool has_size;			/* RFC 1870 */
	unsigned long long size;	/* 0: no fixed limit */
	bool auth;			/* RFC 4954: AUTH (or AUTH=) seen */
	char auth_mechs[SMTP_EHLO_AUTH_MAX + 1];	/* "PLAIN LOGIN" */
};

/*
 * smtp_ehlo_caps - fill caps from a complete 250 reply (anything else
 * gives all false).  The first line is the server's name and greeting;
 * lines 2..n are "keyword [params]": the keyword (letters, digits and
 * "-") is matched case-insensitively and must be followed by a space or
 * the end ("STARTTLSX" is nothing).  SIZE takes an optional decimal
 * limit (a bad or over-large number: has_size stays false).  AUTH also
 * accepts the obsolete "AUTH=" form; its mechanisms (1-20 of A-Z, 0-9,
 * "-", "_") are upper-cased, de-duplicated and stored space-separated;
 * invalid ones, and those that no longer fit, are dropped whole.
 */
void smtp_ehlo_caps(const struct smtp_reply *r, struct smtp_ehlo_caps *caps);

/*
 * smtp_reply_format_log - append "250 first line; second line; ..." with
 * every byte outside printable ASCII, and the backslash, written as \xHH
 * (str_escape()).  This is the text kept as a recipient's last reply and
 * shown in logs and DSNs: it never holds CR, LF or NUL, and at most
 * SMTP_REPLY_LOG_MAX bytes are appended; a longer one is cut between
 * escapes and ends in "...".  Nothing is appended before the first line.
 */
void smtp_reply_format_log(const struct smtp_reply *r, struct buf *out);

#endif
