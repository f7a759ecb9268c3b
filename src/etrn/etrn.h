/*
 * SUMMARY
 *	etrn - ETRN (RFC 1985): who may ask, what it counts, what it starts
 * DESCRIPTION
 *	Policy and action for a parsed ETRN argument (smtp_etrn): the node
 *	must be a domain we relay for, not one collected with ATRN; "@domain"
 *	only where the operator allowed subdomains for it, never a single
 *	label; "#name" a configured queue; the client address must be in the
 *	domain's etrn_clients (or the global list), and under the per-client
 *	rate.  Refusals say why, with 459, before anything is counted, so an
 *	unauthorised client learns nothing about the queue.  Otherwise the
 *	store counts the pending messages (an index range: the node's own
 *	rows, never the queue), the reply is 251 or 253 with the real count
 *	(or a plain 250 where the listener asks for it), and the scheduler
 *	flushes every domain concerned on new connections to their routes; a
 *	flush already running for a domain is joined, not repeated.  458 when
 *	the store cannot answer or too many flushes run.
 * OWNERSHIP
 *	etrn_new() takes references to nothing it does not free: the config
 *	is referenced, the queue and scheduler are borrowed.
 */
#ifndef ETRND_ETRN_H
#define ETRND_ETRN_H

#include <stdbool.h>
#include <stdint.h>

#include "smtp/smtp_etrn.h"

struct config;
struct queue;
struct sched;
struct etrn;

/* etrn_reply_cb - the whole reply line, with CRLF */
typedef void etrn_reply_cb(void *arg, const char *reply);

struct etrn_client {
	int family;		/* AF_INET or AF_INET6 */
	const uint8_t *addr;	/* 4 or 16 bytes */
	const char *text;	/* printable, for logs */
	const char *sid;
};

struct etrn *etrn_new(struct config *cfg, struct queue *q, struct sched *s);
void etrn_free(struct etrn *e);
/* etrn_reload - requests from now on follow cfg */
void etrn_reload(struct etrn *e, struct config *cfg);

/* etrn_request - the reply comes through cb, now or after the count */
void etrn_request(struct etrn *e, const struct etrn_client *cl,
    const struct smtp_etrn *req, bool plain250, etrn_reply_cb *cb,
    void *arg);

#endif
