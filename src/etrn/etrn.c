/* etrn - ETRN (RFC 1985): who may ask, what it counts, what it starts */
#include "etrn/etrn.h"
#include "config/config.h"
#include "log/log.h"
#include "metrics/metrics.h"
#include "queue/queue.h"
#include "sched/sched.h"
#include "util/buf.h"
#include "util/qclock.h"
#include "util/ratelimit.h"
#include "util/strutil.h"
#include "util/xalloc.h"

#include <stdarg.h>
#include <stdio.h>
#include <sys/socket.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ETRN_WINDOW 60		/* seconds of the per-client rate */
#define ETRN_TRACK_MAX 100000	/* client entries before a clean-up */

struct etrn {
	struct config *cfg;
	struct queue *q;
	struct sched *s;
	struct ratelimit *rate;	/* ETRN per client address per minute */
};

struct etrn_req {
	struct etrn *e;
	struct smtp_etrn req;
	char shown[SMTP_ETRN_NAME_MAX + 2];	/* as the client wrote it */
	char sid[20];
	char client[64];
	bool plain250;
	etrn_reply_cb *cb;
	void *arg;
};

struct etrn *etrn_new(struct config *cfg, struct queue *q, struct sched *s)
{
	struct etrn *e = xcalloc(1, sizeof(*e));

	e->cfg = config_ref(cfg);
	e->q = q;
	e->s = s;
	e->rate = ratelimit_new(ETRN_WINDOW, ETRN_TRACK_MAX);
	return e;
}

void etrn_reload(struct etrn *e, struct config *cfg)
{
	struct config *old = e->cfg;

	e->cfg = config_ref(cfg);
	config_unref(old);
}

void etrn_free(struct etrn *e)
{
	if (e == NULL)
		return;
	ratelimit_free(e->rate);
	config_unref(e->cfg);
	free(e);
}

/* etrn_rate_ok - one more ETRN from this address within its rate */
static bool etrn_rate_ok(struct etrn *e, const struct etrn_client *cl)
{
	return ratelimit_add(e->rate, cl->addr, cl->family == AF_INET ? 4 : 16,
	    qclock_now()) <= e->cfg->etrn_rate;
}

static bool etrn_client_ok(const struct etrn *e, const struct config_domain *d,
    const struct etrn_client *cl)
{
	const struct config_netlist *l = d->has_etrn_clients ?
	    &d->etrn_clients : &e->cfg->etrn_clients;

	return config_net_match(l, cl->family, cl->addr);
}

static void etrn_answer(struct etrn_req *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* etrn_answer - reply, log, and free the request */
static void etrn_answer(struct etrn_req *r, const char *fmt, ...)
{
	struct buf b = BUF_INIT;
	va_list ap;

	va_start(ap, fmt);
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	metrics_etrn(atoi(b.p));
	metrics_note_request("ETRN", r->shown, atoi(b.p), r->client);
	log_info("event=etrn sid=%s client=%s node=%s reply=%s", r->sid,
	    r->client, r->shown, log_value(b.p, b.len));
	buf_puts(&b, "\r\n");
	r->cb(r->arg, b.p);
	buf_free(&b);
	free(r);
}

static void etrn_refuse(struct etrn_req *r, const char *why)
{
	etrn_answer(r, "459 4.7.1 Node %s not allowed: %s", r->shown, why);
}

static void etrn_counted(void *arg, enum queue_status st, uint64_t msgs,
    uint64_t rcpts, const struct buf *domains)
{
	struct etrn_req *r = arg;
	const char *p, *end, *ln;
	unsigned started = 0, busy = 0;
	size_t n;

	if (st != QUEUE_OK) {
		etrn_answer(r, "458 4.3.0 Unable to queue messages for node %s",
		    r->shown);
		return;
	}
	if (msgs == 0) {
		if (r->plain250)
			etrn_answer(r, "250 2.0.0 OK, queuing for node %s"
			    " started", r->shown);
		else
			etrn_answer(r, "251 2.0.0 OK, no messages waiting for"
			    " node %s", r->shown);
		return;
	}
	/* one flush per domain that has mail; a running one is joined */
	for (p = domains->p, end = p + domains->len;
	    (ln = str_next_line(&p, end, &n)) != NULL;) {
		char dom[256];

		if (!str_copy_line(dom, sizeof(dom), ln, n))
			continue;
		if (sched_flush(r->e->s, dom) == SCHED_FLUSH_BUSY)
			busy++;
		else
			started++;
	}
	if (started == 0 && busy > 0) {
		etrn_answer(r, "458 4.3.0 Unable to queue messages for node %s"
		    " (too many deliveries running, try again later)",
		    r->shown);
		return;
	}
	if (r->plain250)
		etrn_answer(r, "250 2.0.0 OK, queuing for node %s started",
		    r->shown);
	else
		etrn_answer(r, "253 2.0.0 OK, %llu pending messages for node"
		    " %s started", (unsigned long long)msgs, r->shown);
}

/* etrn_node - ETRN x: exactly that domain's mail; a reason to refuse, or
 * NULL with the count under way */
static const char *etrn_node(struct etrn *e, struct etrn_req *r,
    const struct etrn_client *cl)
{
	const struct config_domain *d = config_find_domain(e->cfg, r->req.name);
	const char *one = r->req.name;

	if (d == NULL)
		return ("not a relay domain");
	if (d->route == CONFIG_ROUTE_ODMR)
		return ("its mail is collected with ATRN");
	if (!etrn_client_ok(e, d, cl))
		return ("client not allowed");
	queue_count(e->q, &one, 1, false, etrn_counted, r);
	return NULL;
}

/*
 * etrn_subtree - ETRN @x: x and its subdomains, where x is served with
 * subdomains = yes (or lies under such a domain); never one label, never a
 * suffix nobody configured (RFC 1985 section 8: @com would be a storm).
 */
static const char *etrn_subtree(struct etrn *e, struct etrn_req *r,
    const struct etrn_client *cl)
{
	const struct config_domain *d;
	const char *one = r->req.name;

	if (strchr(r->req.name, '.') == NULL)
		return ("suffix too broad");
	d = config_find_domain(e->cfg, r->req.name);
	if (d == NULL)
		return ("not a relay domain");
	if (!d->subdomains)
		return ("subdomains are not relayed for this"
		    " domain; use ETRN without @");
	if (d->route == CONFIG_ROUTE_ODMR)
		return ("its mail is collected with ATRN");
	if (!etrn_client_ok(e, d, cl))
		return ("client not allowed");
	queue_count(e->q, &one, 1, true, etrn_counted, r);
	return NULL;
}

/* etrn_queue - ETRN #name: the domains of a configured queue */
static const char *etrn_queue(struct etrn *e, struct etrn_req *r,
    const struct etrn_client *cl)
{
	const struct config_queue *qu = config_find_queue(e->cfg, r->req.name);
	size_t i;

	if (qu == NULL)
		return ("no such queue");
	for (i = 0; i < qu->ndomains; i++) {
		const struct config_domain *d =
		    config_find_domain(e->cfg, qu->domains[i]);

		if (d == NULL || d->route == CONFIG_ROUTE_ODMR ||
		    !etrn_client_ok(e, d, cl))
			return ("client not allowed");
	}
	queue_count(e->q, (const char *const *)qu->domains, qu->ndomains,
	    false, etrn_counted, r);
	return NULL;
}

void etrn_request(struct etrn *e, const struct etrn_client *cl,
    const struct smtp_etrn *req, bool plain250, etrn_reply_cb *cb,
    void *arg)
{
	struct etrn_req *r = xcalloc(1, sizeof(*r));
	const char *why;

	r->e = e;
	r->req = *req;
	r->plain250 = plain250;
	r->cb = cb;
	r->arg = arg;
	snprintf(r->shown, sizeof(r->shown), "%s%s",
	    req->kind == SMTP_ETRN_SUBTREE ? "@" :
	    req->kind == SMTP_ETRN_QUEUE ? "#" : "", req->name);
	snprintf(r->sid, sizeof(r->sid), "%s", cl->sid ? cl->sid : "-");
	snprintf(r->client, sizeof(r->client), "%s", cl->text);
	if (!etrn_rate_ok(e, cl)) {
		etrn_answer(r, "458 4.7.0 Unable to queue messages for node %s"
		    " (too many ETRN requests; at most %u a minute)", r->shown,
		    e->cfg->etrn_rate);
		return;
	}
	switch (req->kind) {
	case SMTP_ETRN_NODE:
		why = etrn_node(e, r, cl);
		break;
	case SMTP_ETRN_SUBTREE:
		why = etrn_subtree(e, r, cl);
		break;
	default:
		why = etrn_queue(e, r, cl);
		break;
	}
	/* a refusal is answered at once; otherwise the count answers */
	if (why != NULL)
		etrn_refuse(r, why);
}
