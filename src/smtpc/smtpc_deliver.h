/*
 * SUMMARY
 *	smtpc_deliver - deliver a batch of one domain's messages
 * DESCRIPTION
 *	Finds the domain's next hops (a static route, or its MX hosts through
 *	the dns module: RFC 5321 5.1, ourselves and worse dropped), connects to
 *	them in order and runs smtpc_conn over each connection until every
 *	message of the batch has a result per recipient.  Work is bounded as
 *	Postfix bounds it: at most MX_MAX_ADDRS addresses and two sessions
 *	that reached a greeting per batch.  A DNS answer that is in doubt, or
 *	a destination that loops back to us, defers; a null MX, a domain that
 *	does not exist or has no address fails.
 * OWNERSHIP
 *	The batch is borrowed until the callback, which gets one array of
 *	results per item (results[i][k] for item i, recipient k), freed by
 *	smtpc_deliver_results_free().
 */
#ifndef ETRND_SMTPC_DELIVER_H
#define ETRND_SMTPC_DELIVER_H

#include "config/config.h"
#include "queue/queue.h"
#include "smtpc/smtpc_session.h"

struct event_base;
struct smtpc_deliver;

typedef void smtpc_deliver_cb(void *arg, struct queue_batch *b,
    struct smtpc_result **results);

struct smtpc_deliver *smtpc_deliver_new(struct event_base *base,
    struct config *cfg, struct buf *err);
void smtpc_deliver_free(struct smtpc_deliver *d);

/*
 * smtpc_deliver_run - deliver batch b, whose recipients are all in domain
 * (the MX lookup is for it: a subdomain of a served domain, or a sender's
 * domain for a DSN, has MX hosts of its own), following the settings dom
 * (route, TLS policy) of the [domain] that serves it or a default.
 */
void smtpc_deliver_run(struct smtpc_deliver *d, const char *domain,
    const struct config_domain *dom, struct queue_batch *b,
    smtpc_deliver_cb *cb, void *arg);
void smtpc_deliver_results_free(struct smtpc_result **results, size_t n);
/* smtpc_deliver_stop - start nothing new; end every delivery in progress
 * now (what was in flight gets a temporary failure) */
void smtpc_deliver_stop(struct smtpc_deliver *d);
/* smtpc_deliver_reload - new jobs use cfg (the DNS server, mx_port and
 * the listeners are fixed until a restart) */
void smtpc_deliver_reload(struct smtpc_deliver *d, struct config *cfg);

#endif
