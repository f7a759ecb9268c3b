/*
 * SUMMARY
 *	smtp_dsn - build a delivery status notification (RFC 3464, RFC 3461)
 * DESCRIPTION
 *	Pure: no I/O, no logging, no clock (the caller passes the time).
 *	smtp_dsn_build() writes the text of a new message, a
 *	multipart/report (RFC 6522) of report-type delivery-status:
 *	  - header fields: From "Mail Delivery System" <MAILER-DAEMON@host>,
 *	    To <original sender>, Subject, Date (RFC 5322, in UTC),
 *	    Message-ID <qid.kind.time@host>, Auto-Submitted: auto-replied
 *	    (RFC 3834), MIME-Version, Content-Type with the boundary;
 *	  - part 1, text/plain: what happened, one entry per recipient;
 *	  - part 2, message/delivery-status: Reporting-MTA, Original-Envelope-
 *	    Id (with ENVID), X-Etrnd-Queue-Id, Arrival-Date; per recipient
 *	    Original-Recipient (with ORCPT), Final-Recipient, Action, Status,
 *	    Remote-MTA, Diagnostic-Code, Last-Attempt-Date and, for delays,
 *	    Will-Retry-Until;
 *	  - part 3, the original: message/rfc822 with the whole message, or
 *	    text/rfc822-headers with its header section, or nothing.
 *
 *	What is returned (part 3), decided in this order:
 *	  - the whole message only in a failure DSN, when RET is FULL or not
 *	    given, and the message is at most full_max bytes (RET governs
 *	    failure DSNs, RFC 3461 4.3; delay and success reports carry the
 *	    headers only: the sender's message is not lost);
 *	  - otherwise the header section (up to, not including, the first
 *	    empty line), when it is not empty and at most full_max bytes;
 *	  - a candidate is included byte-exact or not at all: it is refused,
 *	    and the next smaller one tried, when it holds a NUL, a bare CR or
 *	    bare LF, a line over 998 octets (RFC 5322 2.1.1; we do not fold
 *	    or re-encode someone else's message), or a line that begins with
 *	    "--" and the boundary (it would end our MIME part early).  So a
 *	    body with one over-long line comes back as headers only.
 *	info->returned says which; info->eightbit tells the caller to queue
 *	the DSN as BODY=8BITMIME (the original holds bytes over 0x7f, and
 *	Content-Transfer-Encoding: 8bit is then declared).
 *
 *	Output rules: every line ends in CRLF and holds at most 998 octets.
 *	Every value that came from the network (addresses, ENVID, ORCPT,
 *	remote MTA, diagnostic text, the sender) and every configured name
 *	is written with bytes outside printable ASCII as \xHH, so no CR, LF
 *	or NUL can reach the output (SECURITY.md design rule 6).  Structured
 *	values are cut at SMTP_DSN_VALUE_MAX bytes with "..." (a valid
 *	address, ENVID or ORCPT never is); the diagnostic text is folded at
 *	spaces near 78 columns, hard-broken after SMTP_DSN_FOLD_HARD bytes
 *	without a space, and cut at SMTP_DSN_DIAG_MAX bytes.  Only our own
 *	fixed text begins a line in parts 1 and 2; data always follows a
 *	field name or indentation, so it can never forge a boundary.
 *
 *	No DSN is ever sent for a message with the null sender (RFC 5321
 *	4.5.5; SECURITY.md Y7: no bounce of a bounce): the caller does not
 *	ask, and smtp_dsn_build() refuses an empty sender.  The caller sends
 *	the DSN itself with the null sender.
 * OWNERSHIP
 *	All inputs are borrowed for the call; the output is appended to the
 *	caller's buffer.
 */
#ifndef ETRND_SMTP_DSN_H
#define ETRND_SMTP_DSN_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "smtp/smtp_addr.h"
#include "util/buf.h"

#define SMTP_DSN_FULL_MAX	(256u * 1024)	/* default full_max */
#define SMTP_DSN_LINE_MAX	998	/* octets per line, without CRLF */
#define SMTP_DSN_VALUE_MAX	600	/* escaped structured value */
#define SMTP_DSN_DIAG_MAX	2048	/* escaped diagnostic text */
#define SMTP_DSN_FOLD_HARD	900	/* break a long word here */
#define SMTP_DSN_BOUNDARY_MAX	70	/* RFC 2046 5.1.1 */

enum smtp_dsn_kind {
	SMTP_DSN_FAILURE,	/* "Undelivered Mail Returned to Sender" */
	SMTP_DSN_DELAY,		/* "Delayed Mail (still being retried)" */
	SMTP_DSN_SUCCESS,	/* NOTIFY=SUCCESS: "Successful Mail Delivery Report" */
};

enum smtp_dsn_action {
	SMTP_DSN_FAILED,
	SMTP_DSN_DELAYED,
	SMTP_DSN_DELIVERED,
	SMTP_DSN_RELAYED,	/* handed to a peer without DSN support */
};

enum smtp_dsn_returned {
	SMTP_DSN_RETURNED_NONE,
	SMTP_DSN_RETURNED_HEADERS,	/* text/rfc822-headers */
	SMTP_DSN_RETURNED_FULL,		/* message/rfc822 */
};

struct smtp_dsn_rcpt {
	const char *addr;		/* the final recipient, local@domain */
	const char *orcpt;		/* decoded "type;addr" from ORCPT=, or NULL */
	enum smtp_dsn_action action;
	const char *status;		/* "5.1.1"; NULL or malformed: x.0.0 by action */
	const char *remote_mta;		/* host name of the peer, or NULL */
	const char *diagnostic;		/* smtp_reply_format_log() text, or NULL */
	time_t last_attempt;		/* 0: not given */
	time_t retry_until;		/* DELAYED only; 0: not given */
};

struct smtp_dsn {
	enum smtp_dsn_kind kind;
	const char *reporting_mta;	/* our host name */
	const char *sender;		/* the original reverse-path, no brackets */
	const char *envid;		/* ENVID=, decoded, or NULL */
	enum smtp_ret ret;		/* RET=, or SMTP_RET_NONE */
	time_t arrival;			/* 0: not given */
	const char *qid;		/* the original's queue id, text */
	const char *body;		/* the stored original, header section first */
	size_t body_len;
	size_t full_max;		/* 0: SMTP_DSN_FULL_MAX */
	const struct smtp_dsn_rcpt *rcpts;
	size_t nrcpt;			/* at least 1 */
	time_t now;			/* Date: */
	const char *boundary;		/* 1..70 of RFC 2046 bcharsnospace */
};

struct smtp_dsn_info {
	enum smtp_dsn_returned returned;
	bool eightbit;		/* queue with BODY=8BITMIME */
	const char *error;	/* static reason when smtp_dsn_build() fails */
};

/*
 * smtp_dsn_build - append the DSN message described by d to out.  Returns
 * false, appending nothing, when the sender is NULL or empty (never a DSN
 * to the null sender), reporting_mta is NULL or empty, there is no
 * recipient, or the boundary is not 1..70 of RFC 2046 bcharsnospace.  info
 * may be NULL.
 */
bool smtp_dsn_build(const struct smtp_dsn *d, struct buf *out,
    struct smtp_dsn_info *info);

/*
 * smtp_dsn_wanted - whether a recipient with these NOTIFY bits (the
 * SMTP_NOTIFY_* of smtp_addr.h, 0 when NOTIFY was not given) gets a
 * failure DSN (failure true) or a delay warning (failure false), per
 * RFC 3461 4.1: NEVER gets none; an explicit list gets what it names;
 * without NOTIFY, failure yes, and a delay warning is allowed, so true:
 * whether delay warnings are sent at all is the caller's policy.  The
 * caller must still never send one for a null sender.
 */
bool smtp_dsn_wanted(unsigned notify, bool failure);

/* smtp_dsn_success_wanted - NOTIFY named SUCCESS (never by default) */
bool smtp_dsn_success_wanted(unsigned notify);

/* smtp_dsn_date - append t as an RFC 5322 date-time in UTC:
 * "Tue, 01 Jul 2025 12:00:00 +0000" (the epoch when t cannot be shown) */
void smtp_dsn_date(struct buf *out, time_t t);

#endif
