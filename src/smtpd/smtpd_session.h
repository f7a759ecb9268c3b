/*
 * SUMMARY
 *	smtpd_session - the SMTP server session as a state machine
 * DESCRIPTION
 *	No sockets, no libevent, no TLS calls: the glue (smtpd_glue.c) feeds
 *	complete command lines and DATA bytes in, and gets reply text and an
 *	action out (close, start TLS, store the message).  A cmocka test can
 *	replay a whole transcript through it.
 *
 *	Replies carry RFC 3463 enhanced status codes (ENHANCEDSTATUSCODES is
 *	always advertised).  Pipelining (RFC 2920) is supported: the glue
 *	answers a whole group at once; a client that pipelines without having
 *	sent EHLO is dropped (SECURITY.md S5).
 * OWNERSHIP
 *	smtpd_session_new() takes a reference on the config; _free() drops
 *	it.  smtpd_session_take_msg() hands the envelope and body over to the
 *	caller (then to queue_put()).
 */
#ifndef ETRND_SMTPD_SESSION_H
#define ETRND_SMTPD_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"
#include "queue/queue.h"
#include "smtp/smtp_etrn.h"

struct config;

struct smtpd_client {
	char addr[64];		/* printable address */
	int family;		/* AF_INET / AF_INET6 */
	uint8_t bytes[16];	/* 4 or 16 bytes */
	unsigned port;
	char sid[17];		/* session id for logs */
};

struct smtpd_env {
	/* queue_space_ok(), or NULL (always room) */
	bool (*space_ok)(void *arg, uint64_t size);
	void *arg;
	bool tls_available;	/* a certificate is configured */
	bool etrn_plain250;	/* this listener answers ETRN with a plain 250 */
};

enum smtpd_action {
	SMTPD_ACT_NONE,		/* keep reading */
	SMTPD_ACT_CLOSE,	/* send the replies, then close */
	SMTPD_ACT_STARTTLS,	/* send the replies, drop pending input, start TLS */
	SMTPD_ACT_DATA,		/* the next bytes are message content */
	SMTPD_ACT_QUEUE,	/* end of data: take the message, store it */
	SMTPD_ACT_ETRN,		/* ask etrn for the reply to smtpd_session_etrn() */
};

enum smtpd_line_error {
	SMTPD_LINE_TOO_LONG,
	SMTPD_LINE_TOO_LONG_ARG,	/* an over-long argument (ETRN): 501 */
	SMTPD_LINE_BARE_LF,
};

struct smtpd_session;

struct smtpd_session *smtpd_session_new(struct config *cfg,
    const struct smtpd_client *cl, const struct smtpd_env *env);
void smtpd_session_free(struct smtpd_session *s);

void smtpd_session_greet(struct smtpd_session *s, struct buf *out);

/*
 * smtpd_session_line - one command line (without CRLF).  more_pending
 * tells whether more input is already buffered behind it (pipelining).
 */
enum smtpd_action smtpd_session_line(struct smtpd_session *s,
    const char *line, size_t len, bool more_pending, struct buf *out);
enum smtpd_action smtpd_session_line_error(struct smtpd_session *s,
    enum smtpd_line_error e, struct buf *out);

/*
 * smtpd_session_data - message bytes after the 354.  Returns how many were
 * consumed; *act becomes SMTPD_ACT_QUEUE when the end of data was reached
 * and the message may be stored, SMTPD_ACT_NONE with a reply in out when
 * it was refused (then the session is back in command mode), and stays
 * SMTPD_ACT_DATA while more is expected.
 */
size_t smtpd_session_data(struct smtpd_session *s, const char *in,
    size_t len, enum smtpd_action *act, struct buf *out);

/* smtpd_session_body - the body bytes buffered so far (the glue may move
 * them to a spill file and reset the buffer) */
struct buf *smtpd_session_body(struct smtpd_session *s);

/* smtpd_session_take_msg - the envelope and in-memory body of the message
 * that just ended (after SMTPD_ACT_QUEUE); body_fd is left -1 */
struct queue_msg_in *smtpd_session_take_msg(struct smtpd_session *s);

/* smtpd_session_queued - the store's answer: 250, or 451/452 */
void smtpd_session_queued(struct smtpd_session *s, enum queue_status st,
    struct buf *out);

/* smtpd_session_tls_started - forget everything said before TLS (RFC 3207) */
void smtpd_session_tls_started(struct smtpd_session *s, const char *version);

/* smtpd_session_timeout - idle timeout: the 421 reply */
void smtpd_session_timeout(struct smtpd_session *s, struct buf *out);

/* smtpd_session_etrn - the ETRN request just parsed (SMTPD_ACT_ETRN) */
const struct smtp_etrn *smtpd_session_etrn(const struct smtpd_session *s);
bool smtpd_session_etrn_plain250(const struct smtpd_session *s);

/* smtpd_session_errors - refused commands so far (for the tarpit) */
unsigned smtpd_session_errors(const struct smtpd_session *s);

const char *smtpd_session_qid(const struct smtpd_session *s);
bool smtpd_session_in_data(const struct smtpd_session *s);
/* smtpd_session_idle - no mail transaction is open */
bool smtpd_session_idle(const struct smtpd_session *s);

#endif
