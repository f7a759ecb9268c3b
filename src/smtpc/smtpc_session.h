/*
 * SUMMARY
 *	smtpc_session - the SMTP client as a state machine
 * DESCRIPTION
 *	No sockets: the glue feeds whole replies (parsed by smtp_reply) in,
 *	and sends what the machine writes to the output buffer.  The same
 *	machine runs over a new TCP connection (retries, ETRN) and over an
 *	already connected transport whose roles were reversed (ATRN).
 *
 *	After the greeting: EHLO (HELO when EHLO is refused), STARTTLS per
 *	the domain's policy (must: never a byte of mail in clear), then
 *	messages one after the other over the same connection.  With
 *	PIPELINING, MAIL, every RCPT and DATA leave in one write and their
 *	replies are matched in order (RFC 2920); without it, one command per
 *	reply.  Each recipient ends with its own result: the RCPT reply when
 *	that refused it, else the reply to the final dot.  A message counts
 *	as delivered to a recipient only on a 2xx to the final dot.
 * OWNERSHIP
 *	The machine borrows the queue_item given to smtpc_message() until it
 *	reports SMTPC_ACT_MSG_DONE (or fails); results live in the machine
 *	until the next message starts.
 */
#ifndef ETRND_SMTPC_SESSION_H
#define ETRND_SMTPC_SESSION_H

#include <stdbool.h>
#include <stddef.h>

#include "config/config.h"
#include "queue/queue.h"
#include "smtp/smtp_reply.h"
#include "util/buf.h"

#define SMTPC_TEXT_MAX 512

enum smtpc_phase {
	SMTPC_PH_GREETING,	/* for timeouts: RFC 5321 4.5.3.2 */
	SMTPC_PH_EHLO,
	SMTPC_PH_STARTTLS,
	SMTPC_PH_MAIL,
	SMTPC_PH_RCPT,
	SMTPC_PH_DATA,		/* waiting for 354 */
	SMTPC_PH_DOT,		/* waiting for the reply to the final dot */
	SMTPC_PH_RSET,		/* RSET before the next message */
	SMTPC_PH_IDLE,		/* between messages */
	SMTPC_PH_QUIT,
	SMTPC_PH_DEAD,
};

enum smtpc_action {
	SMTPC_ACT_WAIT,		/* send the output, wait for the next reply */
	SMTPC_ACT_STARTTLS,	/* start TLS, then call smtpc_tls_started() */
	SMTPC_ACT_READY,	/* idle: give a message or call smtpc_quit() */
	SMTPC_ACT_MSG_DONE,	/* the message ended: read smtpc_results() */
	SMTPC_ACT_FAIL,		/* the session failed: see smtpc_failure() */
	SMTPC_ACT_CLOSE,	/* QUIT answered: close */
};

struct smtpc_params {
	const char *helo;	/* our host name */
	enum config_tls tls;	/* the destination's policy */
	bool tls_possible;	/* we have a client TLS context */
	bool tls_active;	/* the transport is already encrypted */
};

/* A result: a reply's code, enhanced code and escaped text. */
struct smtpc_result {
	int code;		/* 2xx delivered, 4xx defer, 5xx fail */
	char enh[16];		/* "5.1.1", or "" */
	char text[SMTPC_TEXT_MAX + 1];
};

struct smtpc;

struct smtpc *smtpc_new(const struct smtpc_params *p);
void smtpc_free(struct smtpc *c);

enum smtpc_action smtpc_reply(struct smtpc *c, const struct smtp_reply *r,
    struct buf *out);
enum smtpc_action smtpc_tls_started(struct smtpc *c, struct buf *out);
/* smtpc_message - start sending it (only after SMTPC_ACT_READY or _MSG_DONE) */
enum smtpc_action smtpc_message(struct smtpc *c, const struct queue_item *it,
    struct buf *out);
void smtpc_quit(struct smtpc *c, struct buf *out);

/* smtpc_results - one result per recipient of the message just ended */
const struct smtpc_result *smtpc_results(const struct smtpc *c);
/* smtpc_failure - why the session failed (a 4xx or 5xx result) */
const struct smtpc_result *smtpc_failure(const struct smtpc *c);
/* smtpc_lost - the connection ended or timed out: the result for whatever
 * was in flight (always a temporary failure: it may have been delivered) */
void smtpc_lost(struct smtpc *c, const char *why);
enum smtpc_phase smtpc_phase(const struct smtpc *c);
bool smtpc_in_message(const struct smtpc *c);
bool smtpc_tls(const struct smtpc *c);

/* smtpc_dot_stuff - body to the wire form: every line that starts with
 * '.' gets another, the last line ends in CRLF, then CRLF "." CRLF */
void smtpc_dot_stuff(const char *body, size_t len, struct buf *out);

#endif
