/* smtpc_deliver - deliver a batch of one domain's messages */
#include "smtpc/smtpc_deliver.h"
#include "dns/dns.h"
#include "log/log.h"
#include "smtpc/smtpc_conn.h"
#include "tls/tls.h"
#include "util/xalloc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/bufferevent.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DELIVER_SESSION_LIMIT 2		/* addresses that greeted, per batch */
#define DELIVER_PARALLEL 4		/* connections to one address at once */
#define DELIVER_PER_CONN 16		/* ...one per this many messages */

struct smtpc_deliver {
	struct event_base *base;
	struct config *cfg;
	struct dns *dns;
	SSL_CTX *tls;
	const char *names[1];
	struct sockaddr_storage *addrs;	/* ours: never a next hop */
	size_t naddrs;
	struct mx_self self;
	struct djob *jobs;		/* in progress */
	bool stopping;
};

struct djob {
	struct djob *prev, *next;
	struct smtpc_deliver *d;
	struct config *cfg;	/* referenced for the job's life */
	struct smtpc_conn *conn[DELIVER_PARALLEL];
	unsigned nconn;			/* connections still open */
	bool greeted;			/* some connection to this address did */
	const struct config_domain *dom;	/* its settings */
	char domain[256];		/* the recipients' domain: where to go */
	struct queue_batch *b;
	struct smtpc_result **res;
	bool *done;
	size_t cursor;
	struct dns_req *dreq;
	struct dns_result dres;
	size_t naddr;
	struct sockaddr_storage addr[MX_MAX_ADDRS];
	const char *addr_host[MX_MAX_ADDRS];
	size_t addr_i;
	unsigned port;
	unsigned sessions;
	struct smtpc_result last;
	smtpc_deliver_cb *cb;
	void *arg;
};

static void djob_set(struct smtpc_result *r, int code, const char *enh,
    const char *fmt, const char *arg)
{
	r->code = code;
	snprintf(r->enh, sizeof(r->enh), "%s", enh);
	snprintf(r->text, sizeof(r->text), fmt, arg);
}

/* djob_finish - every message without a result gets the last failure */
static void djob_finish(struct djob *j)
{
	size_t i, k;

	for (i = 0; i < j->b->n; i++) {
		if (j->done[i])
			continue;
		for (k = 0; k < j->b->items[i].nrcpt; k++)
			j->res[i][k] = j->last;
	}
	if (j->prev)
		j->prev->next = j->next;
	else
		j->d->jobs = j->next;
	if (j->next)
		j->next->prev = j->prev;
	j->cb(j->arg, j->b, j->res);
	config_unref(j->cfg);
	free(j->done);
	free(j);
}

static struct queue_item *djob_next(void *arg)
{
	struct djob *j = arg;

	while (j->cursor < j->b->n) {
		size_t i = j->cursor++;

		if (!j->done[i] && j->b->items[i].body_error == 0)
			return &j->b->items[i];
	}
	return NULL;
}

static void djob_msg_done(void *arg, struct queue_item *it,
    const struct smtpc_result *res)
{
	struct djob *j = arg;
	size_t i = (size_t)(it - j->b->items);

	memcpy(j->res[i], res, it->nrcpt * sizeof(*res));
	j->done[i] = true;
}

static void djob_try(struct djob *j);

static void djob_end(void *arg, struct smtpc_conn *cc,
    const struct smtpc_result *fail, bool greeted)
{
	struct djob *j = arg;
	size_t i;

	for (i = 0; i < DELIVER_PARALLEL; i++)
		if (j->conn[i] == cc)
			j->conn[i] = NULL;
	j->nconn--;
	if (greeted)
		j->greeted = true;
	if (fail)
		j->last = *fail;
	if (j->nconn > 0)
		return;		/* the others are still at work */
	if (j->greeted)
		j->sessions++;
	j->greeted = false;
	for (i = 0; i < j->b->n; i++)
		if (!j->done[i] && j->b->items[i].body_error == 0)
			break;
	if (i == j->b->n) {
		djob_finish(j);
		return;
	}
	j->addr_i++;
	j->cursor = 0;
	djob_try(j);
}

static socklen_t djob_salen(const struct sockaddr_storage *ss)
{
	return ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) :
	    sizeof(struct sockaddr_in);
}

static void djob_setport(struct sockaddr_storage *ss, unsigned port)
{
	if (ss->ss_family == AF_INET6)
		((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
	else
		((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
}

/*
 * djob_more_conns - a large batch is shared by up to DELIVER_PARALLEL
 * connections to the same address (one per DELIVER_PER_CONN messages):
 * each takes the next message nobody has taken, so the batch empties as
 * fast as the peer accepts in parallel.
 */
static void djob_more_conns(struct djob *j, const struct sockaddr_storage *sa,
    const struct smtpc_params *p)
{
	static const struct smtpc_conn_cbs cbs = {
		djob_next, djob_msg_done, djob_end
	};
	size_t want = (j->b->n + DELIVER_PER_CONN - 1) / DELIVER_PER_CONN;

	while (j->nconn < DELIVER_PARALLEL && j->nconn < want) {
		struct bufferevent *bev = bufferevent_socket_new(j->d->base, -1,
		    BEV_OPT_CLOSE_ON_FREE);

		if (bev == NULL || bufferevent_socket_connect(bev,
		    (struct sockaddr *)sa, (int)djob_salen(sa)) != 0) {
			if (bev)
				bufferevent_free(bev);
			return;
		}
		j->conn[j->nconn++] = smtpc_conn_start(j->d->base, bev, true,
		    j->d->tls, j->addr_host[j->addr_i], p, &cbs, j);
	}
}

/* djob_try - the next address, within the bounds of one attempt */
static void djob_try(struct djob *j)
{
	static const struct smtpc_conn_cbs cbs = {
		djob_next, djob_msg_done, djob_end
	};
	struct smtpc_params p;
	struct bufferevent *bev;
	char where[INET6_ADDRSTRLEN + 8];
	void *a;

	while (j->addr_i < j->naddr && j->sessions < DELIVER_SESSION_LIMIT &&
	    !j->d->stopping) {
		struct sockaddr_storage *sa = &j->addr[j->addr_i];

		a = sa->ss_family == AF_INET6 ?
		    (void *)&((struct sockaddr_in6 *)sa)->sin6_addr :
		    (void *)&((struct sockaddr_in *)sa)->sin_addr;
		inet_ntop(sa->ss_family, a, where, sizeof(where));
		bev = bufferevent_socket_new(j->d->base, -1,
		    BEV_OPT_CLOSE_ON_FREE);
		if (bev != NULL && bufferevent_socket_connect(bev,
		    (struct sockaddr *)sa, (int)djob_salen(sa)) == 0) {
			log_info("event=connecting domain=%s host=%s addr=%s"
			    " port=%u", j->domain, j->addr_host[j->addr_i],
			    where, j->port);
			memset(&p, 0, sizeof(p));
			p.helo = j->cfg->hostname;
			p.tls = j->dom->tls;
			j->conn[0] = smtpc_conn_start(j->d->base, bev, true,
			    j->d->tls, j->addr_host[j->addr_i], &p, &cbs, j);
			j->nconn = 1;
			djob_more_conns(j, sa, &p);
			return;
		}
		if (bev)
			bufferevent_free(bev);
		djob_set(&j->last, 451, "4.4.1", "cannot connect to %s", where);
		j->addr_i++;
	}
	djob_finish(j);
}

/* djob_is_self - an address and port we listen on ourselves */
static bool djob_is_self(const struct smtpc_deliver *d,
    const struct sockaddr_storage *sa, unsigned port)
{
	size_t i;

	for (i = 0; i < d->cfg->nlisten; i++) {
		struct sockaddr_storage l;
		struct sockaddr_in *l4 = (void *)&l;
		struct sockaddr_in6 *l6 = (void *)&l;

		if (d->cfg->listen[i].port != port)
			continue;
		memset(&l, 0, sizeof(l));
		if (inet_pton(AF_INET, d->cfg->listen[i].host, &l4->sin_addr) == 1 &&
		    sa->ss_family == AF_INET) {
			if (l4->sin_addr.s_addr == INADDR_ANY ||
			    l4->sin_addr.s_addr ==
			    ((const struct sockaddr_in *)sa)->sin_addr.s_addr)
				return true;
		} else if (inet_pton(AF_INET6, d->cfg->listen[i].host,
		    &l6->sin6_addr) == 1 && sa->ss_family == AF_INET6) {
			if (IN6_IS_ADDR_UNSPECIFIED(&l6->sin6_addr) ||
			    IN6_ARE_ADDR_EQUAL(&l6->sin6_addr,
			    &((const struct sockaddr_in6 *)sa)->sin6_addr))
				return true;
		}
	}
	return false;
}

static void djob_dns_cb(void *arg, const struct dns_result *res)
{
	struct djob *j = arg;
	size_t t, k;

	j->dreq = NULL;
	j->dres = *res;
	switch (res->status) {
	case DNS_OK:
		break;
	case DNS_NULLMX:
		djob_set(&j->last, 556, "5.1.10", "%s accepts no mail"
		    " (null MX)", j->domain);
		djob_finish(j);
		return;
	case DNS_NXDOMAIN:
		djob_set(&j->last, 550, "5.1.2", "domain %s does not exist",
		    j->domain);
		djob_finish(j);
		return;
	case DNS_NOADDR:
		djob_set(&j->last, 550, "5.4.4", "no address for %s",
		    j->domain);
		djob_finish(j);
		return;
	case DNS_LOOP:
		djob_set(&j->last, 451, "4.4.6", "mail for %s loops back to"
		    " myself", j->domain);
		djob_finish(j);
		return;
	default:
		djob_set(&j->last, 451, "4.4.3", "DNS lookup failed: %s",
		    j->dres.detail);
		djob_finish(j);
		return;
	}
	for (t = 0; t < j->dres.ntargets; t++) {
		for (k = 0; k < j->dres.targets[t].naddrs &&
		    j->naddr < MX_MAX_ADDRS; k++) {
			struct sockaddr_storage *sa = &j->addr[j->naddr];

			*sa = j->dres.targets[t].addrs[k];
			djob_setport(sa, j->port);
			if (djob_is_self(j->d, sa, j->port))
				continue;
			j->addr_host[j->naddr++] = j->dres.targets[t].name;
		}
	}
	djob_set(&j->last, 451, "4.4.6", "the next hop for %s is this"
	    " relay itself", j->domain);
	djob_try(j);
}

void smtpc_deliver_run(struct smtpc_deliver *d, const char *domain,
    const struct config_domain *dom, struct queue_batch *b,
    smtpc_deliver_cb *cb, void *arg)
{
	struct djob *j = xcalloc(1, sizeof(*j));
	size_t i;

	j->d = d;
	j->cfg = config_ref(d->cfg);
	j->next = d->jobs;
	if (d->jobs)
		d->jobs->prev = j;
	d->jobs = j;
	j->dom = dom;
	snprintf(j->domain, sizeof(j->domain), "%s", domain);
	j->b = b;
	j->cb = cb;
	j->arg = arg;
	j->res = xcalloc(b->n + 1, sizeof(*j->res));
	j->done = xcalloc(b->n + 1, sizeof(*j->done));
	for (i = 0; i < b->n; i++) {
		j->res[i] = xcalloc(b->items[i].nrcpt + 1, sizeof(**j->res));
		if (b->items[i].body_error != 0) {
			/* unreadable: never sent; a damaged or missing record
			 * is quarantined (sched_record), others retried */
			int e = b->items[i].body_error;
			size_t k;

			for (k = 0; k < b->items[i].nrcpt; k++)
				djob_set(&j->res[i][k], 451, "4.3.0",
				    queue_body_damaged(e) ? "queue file damaged: %s" :
				    "cannot read the queue file: %s", strerror(e));
			j->done[i] = true;
		}
	}
	djob_set(&j->last, 451, "4.4.1", "no reachable next hop for %s",
	    domain);
	switch (dom->route) {
	case CONFIG_ROUTE_STATIC:
		j->port = dom->route_port;
		j->dreq = dns_lookup_host(d->dns, dom->route_host, NULL,
		    djob_dns_cb, j);
		break;
	case CONFIG_ROUTE_MX:
		j->port = d->cfg->mx_port;
		j->dreq = dns_lookup_mx(d->dns, domain, &d->self, djob_dns_cb,
		    j);
		break;
	default:
		djob_set(&j->last, 451, "4.4.0", "mail for %s is collected"
		    " with ATRN", domain);
		djob_finish(j);
		break;
	}
}

void smtpc_deliver_reload(struct smtpc_deliver *d, struct config *cfg)
{
	struct config *old = d->cfg;

	d->cfg = config_ref(cfg);
	d->names[0] = d->cfg->hostname;
	config_unref(old);
}

void smtpc_deliver_stop(struct smtpc_deliver *d)
{
	struct djob *j, *next;

	d->stopping = true;
	for (j = d->jobs; j != NULL; j = next) {
		next = j->next;
		if (j->nconn > 0) {
			unsigned k;

			/* their end() come from the loop and finish the job */
			for (k = 0; k < DELIVER_PARALLEL; k++)
				if (j->conn[k])
					smtpc_conn_abort(j->conn[k]);
		} else if (j->dreq) {
			dns_cancel(j->dreq);
			j->dreq = NULL;
			djob_set(&j->last, 451, "4.3.2", "%s", "delivery stopped");
			djob_finish(j);
		}
	}
}

void smtpc_deliver_results_free(struct smtpc_result **results, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(results[i]);
	free(results);
}

/* deliver_self_addrs - our listening addresses on the MX port; a wildcard
 * listener means every address of this host */
static void deliver_self_addrs(struct smtpc_deliver *d)
{
	struct ifaddrs *ifa = NULL, *p;
	size_t i, cap = 0;
	bool wild = false;

	for (i = 0; i < d->cfg->nlisten; i++) {
		struct sockaddr_storage ss;
		struct sockaddr_in *s4 = (void *)&ss;
		struct sockaddr_in6 *s6 = (void *)&ss;

		if (d->cfg->listen[i].port != d->cfg->mx_port)
			continue;
		memset(&ss, 0, sizeof(ss));
		if (inet_pton(AF_INET, d->cfg->listen[i].host, &s4->sin_addr) == 1)
			ss.ss_family = AF_INET;
		else if (inet_pton(AF_INET6, d->cfg->listen[i].host,
		    &s6->sin6_addr) == 1)
			ss.ss_family = AF_INET6;
		else
			continue;
		if ((ss.ss_family == AF_INET && s4->sin_addr.s_addr == INADDR_ANY) ||
		    (ss.ss_family == AF_INET6 &&
		    IN6_IS_ADDR_UNSPECIFIED(&s6->sin6_addr))) {
			wild = true;
			continue;
		}
		if (d->naddrs == cap) {
			cap = cap ? cap * 2 : 8;
			d->addrs = xrealloc(d->addrs, cap * sizeof(*d->addrs));
		}
		d->addrs[d->naddrs++] = ss;
	}
	if (wild && getifaddrs(&ifa) == 0) {
		for (p = ifa; p != NULL; p = p->ifa_next) {
			if (p->ifa_addr == NULL || (p->ifa_addr->sa_family !=
			    AF_INET && p->ifa_addr->sa_family != AF_INET6))
				continue;
			if (d->naddrs == cap) {
				cap = cap ? cap * 2 : 8;
				d->addrs = xrealloc(d->addrs,
				    cap * sizeof(*d->addrs));
			}
			memset(&d->addrs[d->naddrs], 0, sizeof(*d->addrs));
			memcpy(&d->addrs[d->naddrs], p->ifa_addr,
			    p->ifa_addr->sa_family == AF_INET ?
			    sizeof(struct sockaddr_in) :
			    sizeof(struct sockaddr_in6));
			d->naddrs++;
		}
		freeifaddrs(ifa);
	}
}

struct smtpc_deliver *smtpc_deliver_new(struct event_base *base,
    struct config *cfg, struct buf *err)
{
	struct smtpc_deliver *d = xcalloc(1, sizeof(*d));

	d->base = base;
	d->cfg = config_ref(cfg);
	d->dns = dns_new(base, cfg->dns_server, err);
	if (d->dns == NULL) {
		config_unref(d->cfg);
		free(d);
		return NULL;
	}
	d->tls = tls_client_ctx_new(err);
	if (d->tls == NULL) {
		dns_free(d->dns);
		config_unref(d->cfg);
		free(d);
		return NULL;
	}
	d->names[0] = cfg->hostname;
	deliver_self_addrs(d);
	d->self.names = d->names;
	d->self.nnames = 1;
	d->self.addrs = d->addrs;
	d->self.naddrs = d->naddrs;
	return d;
}

void smtpc_deliver_free(struct smtpc_deliver *d)
{
	if (d == NULL)
		return;
	dns_free(d->dns);
	tls_ctx_free(d->tls);
	free(d->addrs);
	config_unref(d->cfg);
	free(d);
}
