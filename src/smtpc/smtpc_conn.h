/*
 * SUMMARY
 *	smtpc_conn - the SMTP client state machine on a bufferevent
 * DESCRIPTION
 *	Reads reply lines with a strict line reader (CRLF only, 512 octets at
 *	most), parses them with smtp_reply, drives smtpc_session, writes what
 *	it says, applies the RFC 5321 4.5.3.2 timeouts of each phase (ten
 *	minutes for the reply to the final dot), and upgrades to TLS when the
 *	machine asks, discarding whatever the server sent in clear after its
 *	220 (SECURITY.md T5).  Messages come from the owner one at a time
 *	through next(); each one's per-recipient results go back through
 *	msg_done(); end() is called exactly once when the connection is over.
 *	The transport may be a fresh TCP connection still connecting, or an
 *	already connected one (the reversed ODMR session).
 * OWNERSHIP
 *	The connection owns the bufferevent and frees it, and itself, after
 *	end() returns.  Items given by next() are borrowed until msg_done().
 */
#ifndef ETRND_SMTPC_CONN_H
#define ETRND_SMTPC_CONN_H

#include <stdbool.h>
#include <stdint.h>

#include "smtpc/smtpc_session.h"

struct bufferevent;
struct event_base;
typedef struct ssl_ctx_st SSL_CTX;

struct smtpc_conn;

/* what next() returns when a message will come, but not yet: the
 * connection waits (idle, timers running) until smtpc_conn_resume() */
#define SMTPC_NEXT_LATER ((struct queue_item *)(uintptr_t)1)

struct smtpc_conn_cbs {
	/* the next message to send, NULL to finish with QUIT, or
	 * SMTPC_NEXT_LATER */
	struct queue_item *(*next)(void *arg);
	void (*msg_done)(void *arg, struct queue_item *it,
	    const struct smtpc_result *res);
	/* fail is NULL after a clean QUIT; greeted tells whether the server
	 * ever answered (a connection that never did: try another address) */
	void (*end)(void *arg, struct smtpc_conn *cc,
	    const struct smtpc_result *fail, bool greeted);
};

struct smtpc_conn;

struct smtpc_conn *smtpc_conn_start(struct event_base *base,
    struct bufferevent *bev, bool connecting, SSL_CTX *tls,
    const char *peer, const struct smtpc_params *p,
    const struct smtpc_conn_cbs *cbs, void *arg);

/* smtpc_conn_resume - ask next() again after it said SMTPC_NEXT_LATER */
void smtpc_conn_resume(struct smtpc_conn *cc);

/* smtpc_conn_abort - end it now (shutdown): in-flight results defer */
void smtpc_conn_abort(struct smtpc_conn *cc);

#endif
