/* dns - asynchronous MX and host lookups: c-ares on a libevent base */
#include "dns/dns.h"
#include "log/log.h"
#include "util/strutil.h"
#include "util/xalloc.h"

#include <ares.h>
#include <arpa/inet.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

/*
 * Every c-ares call of the project is in this file: ares_query() and
 * ares_expand_name() are what 1.18.1 offers; newer c-ares deprecates
 * ares_query() for ares_query_dnsrec(), and only this file changes then.
 */

#define DNS_C_IN	1
#define DNS_T_A		1
#define DNS_T_CNAME	5
#define DNS_T_MX	15
#define DNS_T_AAAA	28

/* A socket c-ares uses, and its event. */
struct dns_sock {
	ares_socket_t fd;
	struct event *ev;
};

struct dns {
	struct event_base *base;
	ares_channel channel;
	struct event *tmo;		/* ares_timeout() */
	struct dns_sock *socks;
	size_t nsocks, capsocks;
	struct dns_req *pending;	/* not yet answered to the caller */
	struct dns_req *zombies;	/* answered, queries still out */
	int lookup_cap_ms;
	unsigned families;
	uint64_t rng;
	bool closing;
};

/* One host being resolved (an MX host, the implicit MX, a route). */
struct dns_host {
	char name[MX_NAME_MAX + 1];
	unsigned pref;
	int pending;		/* queries out (0..2) */
	bool started, done;
	bool temp;		/* a query failed temporarily */
	bool nx;		/* the name does not exist */
	size_t n4, n6;
	unsigned char a4[DNS_HOST_ADDRS][4];
	unsigned char a6[DNS_HOST_ADDRS][16];
};

enum dns_req_state {
	DNS_REQ_RUNNING,	/* queries going on */
	DNS_REQ_READY,		/* result in res, delivery scheduled */
	DNS_REQ_ZOMBIE,		/* delivered or cancelled, queries still out */
};

struct dns_req {
	struct dns *d;
	struct dns_req *prev, *next;	/* in d->pending or d->zombies */
	enum dns_req_state state;
	dns_cb *cb;
	void *arg;
	bool by_host;		/* dns_lookup_host(), not dns_lookup_mx() */
	bool implicit;		/* no MX: the domain's own addresses */
	char name[MX_NAME_MAX + 1];	/* the domain or host */
	char **self_names;
	struct sockaddr_storage *self_addrs;
	struct mx_self self;
	size_t nhosts, next_host;
	int active;		/* hosts started and not done */
	int outstanding;	/* c-ares queries not yet called back */
	struct dns_host hosts[MX_MAX_HOSTS];
	const char *temp_why;	/* the last temporary failure of a host */
	struct event *cap;	/* the lookup's time cap */
	struct event *done;	/* runs the callback from the loop */
	struct dns_result *res;
	bool pumping, repump;
};

/* The context of one c-ares query. */
struct dns_q {
	struct dns_req *r;
	int host;		/* -1: the MX query */
	int qtype;
};

static void dns_rearm(struct dns *d);
static void req_pump(struct dns_req *r);

const char *dns_status_name(enum dns_status st)
{
	switch (st) {
	case DNS_OK:		return "ok";
	case DNS_NULLMX:	return "nullmx";
	case DNS_NXDOMAIN:	return "nxdomain";
	case DNS_NOADDR:	return "noaddr";
	case DNS_TEMP:		return "temp";
	case DNS_LOOP:		return "loop";
	}
	return "unknown";
}

/* dns_rand - xorshift64*: enough to shuffle equal MX preferences */
static uint32_t dns_rand(void *arg)
{
	struct dns *d = arg;

	d->rng ^= d->rng >> 12;
	d->rng ^= d->rng << 25;
	d->rng ^= d->rng >> 27;
	return (uint32_t)((d->rng * 2685821657736338717ULL) >> 32);
}

/* dns_name_eq - equal DNS names: ASCII case and one final dot ignored */
static bool dns_name_eq(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);

	if (la > 0 && a[la - 1] == '.')
		la--;
	if (lb > 0 && b[lb - 1] == '.')
		lb--;
	if (la != lb)
		return false;
	while (la-- > 0) {
		if (ascii_tolower(*a++) != ascii_tolower(*b++))
			return false;
	}
	return true;
}

/* dns_ares_why - a short reason for a failed c-ares query */
static const char *dns_ares_why(int status)
{
	switch (status) {
	case ARES_ESERVFAIL:	return "servfail";
	case ARES_EREFUSED:	return "refused";
	case ARES_ETIMEOUT:	return "timeout";
	case ARES_ECONNREFUSED:	return "connection refused";
	case ARES_EFORMERR:	return "formerr";
	case ARES_ENOTIMP:	return "notimp";
	case ARES_EBADRESP:	return "malformed answer";
	case ARES_EBADNAME:	return "bad name";
	case ARES_ECANCELLED:	return "cancelled";
	case ARES_EDESTRUCTION:	return "resolver shut down";
	default:		return ares_strerror(status);
	}
}

/*
 * The answer section of a reply, one record at a time.  Names go through
 * ares_expand_name(), which bounds their length and rejects compression
 * pointer loops; every length is checked against the packet.
 */
struct dns_iter {
	const unsigned char *abuf;
	int alen;
	int pos;
	unsigned left;
};

struct dns_rr {
	char *owner;		/* from c-ares: ares_free_string() */
	int type, class;
	const unsigned char *rdata;
	int rdlen;
};

/* dns_iter_init - skip the header and questions; -1 if malformed */
static int dns_iter_init(struct dns_iter *it, const unsigned char *abuf,
    int alen)
{
	unsigned qd, i;

	if (abuf == NULL || alen < 12)
		return -1;
	it->abuf = abuf;
	it->alen = alen;
	it->pos = 12;
	qd = (unsigned)abuf[4] << 8 | abuf[5];
	it->left = (unsigned)abuf[6] << 8 | abuf[7];
	for (i = 0; i < qd; i++) {
		char *s;
		long enclen;

		if (it->pos >= alen || ares_expand_name(abuf + it->pos, abuf,
		    alen, &s, &enclen) != ARES_SUCCESS)
			return -1;
		ares_free_string(s);
		if (enclen <= 0 || enclen + 4 > alen - it->pos)
			return -1;
		it->pos += (int)enclen + 4;
	}
	return 0;
}

/* dns_iter_next - 1: *rr filled (free rr->owner), 0: done, -1: malformed */
static int dns_iter_next(struct dns_iter *it, struct dns_rr *rr)
{
	const unsigned char *p;
	long enclen;

	rr->owner = NULL;
	if (it->left == 0)
		return 0;
	it->left--;
	if (it->pos >= it->alen || ares_expand_name(it->abuf + it->pos,
	    it->abuf, it->alen, &rr->owner, &enclen) != ARES_SUCCESS)
		return -1;
	if (enclen <= 0 || enclen + 10 > it->alen - it->pos)
		goto bad;
	p = it->abuf + it->pos + enclen;
	rr->type = p[0] << 8 | p[1];
	rr->class = p[2] << 8 | p[3];
	rr->rdlen = p[8] << 8 | p[9];
	it->pos += (int)enclen + 10;
	if (rr->rdlen > it->alen - it->pos)
		goto bad;
	rr->rdata = it->abuf + it->pos;
	it->pos += rr->rdlen;
	return 1;
bad:
	ares_free_string(rr->owner);
	rr->owner = NULL;
	return -1;
}

/* dns_rdata_ok - the record's data has the size of its type */
static bool dns_rdata_ok(const struct dns_rr *rr)
{
	switch (rr->type) {
	case DNS_T_A:		return rr->rdlen == 4;
	case DNS_T_AAAA:	return rr->rdlen == 16;
	case DNS_T_MX:		return rr->rdlen >= 3;
	default:		return true;
	}
}

/*
 * dns_check - classify a reply to (qname, qtype); on DNS_ANS_DATA *end
 * (if not NULL) gets the name that owns the records, at the end of the
 * CNAME chain (the caller frees it).
 */
static enum dns_answer dns_check(int status, const unsigned char *abuf,
    int alen, const char *qname, int qtype, char **end, const char **why)
{
	char *cn_owner[2 * DNS_CNAME_MAX], *cn_target[2 * DNS_CNAME_MAX];
	const char *visited[DNS_CNAME_MAX + 1];
	enum dns_answer ans = DNS_ANS_TEMP;
	const char *cur = qname;
	struct dns_iter it;
	struct dns_rr rr;
	size_t ncn = 0, nvisited = 0, ndata = 0, i;
	bool aa, ra;
	int rc;

	if (end != NULL)
		*end = NULL;
	*why = NULL;
	if (status != ARES_SUCCESS && status != ARES_ENODATA &&
	    status != ARES_ENOTFOUND) {
		*why = dns_ares_why(status);
		return DNS_ANS_TEMP;
	}
	if (dns_iter_init(&it, abuf, alen) < 0) {
		*why = "malformed answer";
		return DNS_ANS_TEMP;
	}
	aa = (abuf[2] & 0x04) != 0;
	ra = (abuf[3] & 0x80) != 0;

	/* Pass 1: the CNAME records. */
	while ((rc = dns_iter_next(&it, &rr)) == 1) {
		char *t;
		long len;

		if (rr.type != DNS_T_CNAME || rr.class != DNS_C_IN) {
			ares_free_string(rr.owner);
			continue;
		}
		if (ncn == 2 * DNS_CNAME_MAX) {
			ares_free_string(rr.owner);
			*why = "too many cname records";
			goto out;
		}
		if (rr.rdlen < 1 || ares_expand_name(rr.rdata, abuf, alen, &t,
		    &len) != ARES_SUCCESS) {
			ares_free_string(rr.owner);
			*why = "malformed answer";
			goto out;
		}
		cn_owner[ncn] = rr.owner;
		cn_target[ncn] = t;
		ncn++;
	}
	if (rc < 0) {
		*why = "malformed answer";
		goto out;
	}

	/* Follow the chain from qname; a name seen twice is a loop. */
	visited[nvisited++] = qname;
	for (;;) {
		for (i = 0; i < ncn; i++)
			if (dns_name_eq(cn_owner[i], cur))
				break;
		if (i == ncn)
			break;
		cur = cn_target[i];
		for (size_t k = 0; k < nvisited; k++) {
			if (dns_name_eq(visited[k], cur)) {
				*why = "cname loop";
				goto out;
			}
		}
		if (nvisited == DNS_CNAME_MAX + 1) {
			*why = "cname chain too long";
			goto out;
		}
		visited[nvisited++] = cur;
	}

	/* Pass 2: records of qtype owned by the end of the chain. */
	dns_iter_init(&it, abuf, alen);
	while ((rc = dns_iter_next(&it, &rr)) == 1) {
		if (rr.type == qtype && rr.class == DNS_C_IN &&
		    dns_name_eq(rr.owner, cur)) {
			if (!dns_rdata_ok(&rr)) {
				ares_free_string(rr.owner);
				*why = "malformed record";
				goto out;
			}
			ndata++;
		}
		ares_free_string(rr.owner);
	}
	if (rc < 0) {
		*why = "malformed answer";
		goto out;
	}
	if (ndata > 0) {
		*why = "data";
		if (end != NULL)
			*end = xstrdup(cur);
		ans = DNS_ANS_DATA;
		goto out;
	}

	/*
	 * A negative answer counts only from a server that knows: one
	 * authoritative for the name or one that recursed for us.  NSD
	 * answers a query below a delegation with a referral (NOERROR, no
	 * answer, NS in the authority section, neither AA nor RA), which
	 * c-ares reports as ARES_ENODATA: taking that for "no MX" would
	 * bounce mail for a domain that merely could not be resolved.
	 */
	if (!aa && !ra) {
		*why = "referral or non-authoritative answer";
		goto out;
	}
	if (status == ARES_ENOTFOUND) {
		ans = DNS_ANS_NXDOMAIN;
		*why = "nxdomain";
		goto out;
	}
	/*
	 * A CNAME whose target has no data: a recursive server followed the
	 * chain, so the target has none; an authoritative-only server may
	 * just not serve the target's zone.
	 */
	if (nvisited > 1 && !ra) {
		*why = "cname target not resolved";
		goto out;
	}
	ans = DNS_ANS_NODATA;
	*why = "nodata";
out:
	for (i = 0; i < ncn; i++) {
		ares_free_string(cn_owner[i]);
		ares_free_string(cn_target[i]);
	}
	return ans;
}

enum dns_answer dns_answer_check(int ares_status, const unsigned char *abuf,
    int alen, const char *qname, int qtype, const char **why)
{
	return dns_check(ares_status, abuf, alen, qname, qtype, NULL, why);
}

/* --- sockets and timer: c-ares on the event loop --- */

/* dns_rearm - the timer at c-ares' next timeout, or off */
static void dns_rearm(struct dns *d)
{
	struct timeval tv, *tvp;

	if (d->channel == NULL)
		return;
	tvp = ares_timeout(d->channel, NULL, &tv);
	if (tvp != NULL)
		evtimer_add(d->tmo, tvp);
	else
		evtimer_del(d->tmo);
}

/* dns_sock_cb - a c-ares socket is ready */
static void dns_sock_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dns *d = arg;

	ares_process_fd(d->channel,
	    (what & EV_READ) ? (ares_socket_t)fd : ARES_SOCKET_BAD,
	    (what & EV_WRITE) ? (ares_socket_t)fd : ARES_SOCKET_BAD);
	dns_rearm(d);
}

/* dns_tmo_cb - c-ares' timeout: let it retry or fail queries */
static void dns_tmo_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dns *d = arg;

	ares_process_fd(d->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	dns_rearm(d);
}

/*
 * dns_sock_state - c-ares opened, changed or closed a socket.  The event
 * is replaced, never modified: this may run inside the socket's own
 * callback (ares_process_fd closing it), where freeing it is safe but
 * re-assigning it is not.
 */
static void dns_sock_state(void *data, ares_socket_t fd, int readable,
    int writable)
{
	struct dns *d = data;
	struct event *ev;
	size_t i;

	for (i = 0; i < d->nsocks; i++) {
		if (d->socks[i].fd == fd) {
			event_free(d->socks[i].ev);
			d->socks[i] = d->socks[--d->nsocks];
			break;
		}
	}
	if (!readable && !writable)
		return;
	ev = event_new(d->base, fd, (short)((readable ? EV_READ : 0) |
	    (writable ? EV_WRITE : 0) | EV_PERSIST), dns_sock_cb, d);
	if (ev == NULL || event_add(ev, NULL) < 0)
		log_fatal("event=dns_error error=\"cannot add socket event\"");
	if (d->nsocks == d->capsocks) {
		d->capsocks = d->capsocks ? 2 * d->capsocks : 8;
		d->socks = xrealloc(d->socks, d->capsocks * sizeof(*d->socks));
	}
	d->socks[d->nsocks].fd = fd;
	d->socks[d->nsocks].ev = ev;
	d->nsocks++;
}

/* --- requests --- */

/* req_link - put r at the head of a list */
static void req_link(struct dns_req **head, struct dns_req *r)
{
	r->prev = NULL;
	r->next = *head;
	if (*head != NULL)
		(*head)->prev = r;
	*head = r;
}

/* req_unlink - take r out of the list at head */
static void req_unlink(struct dns_req **head, struct dns_req *r)
{
	if (r->prev != NULL)
		r->prev->next = r->next;
	else
		*head = r->next;
	if (r->next != NULL)
		r->next->prev = r->prev;
	r->prev = r->next = NULL;
}

/* req_release - free what only a live request needs */
static void req_release(struct dns_req *r)
{
	size_t i;

	if (r->cap != NULL)
		event_free(r->cap);
	if (r->done != NULL)
		event_free(r->done);
	r->cap = r->done = NULL;
	for (i = 0; i < r->self.nnames; i++)
		free(r->self_names[i]);
	free(r->self_names);
	free(r->self_addrs);
	r->self_names = NULL;
	r->self_addrs = NULL;
	memset(&r->self, 0, sizeof(r->self));
	free(r->res);
	r->res = NULL;
}

/*
 * req_retire - r is answered (or cancelled): off the pending list, and
 * freed now or, while c-ares still holds queries of it, when the last
 * one calls back.
 */
static void req_retire(struct dns_req *r)
{
	struct dns *d = r->d;

	req_unlink(&d->pending, r);
	req_release(r);
	r->cb = NULL;
	if (r->outstanding == 0) {
		free(r);
		return;
	}
	r->state = DNS_REQ_ZOMBIE;
	req_link(&d->zombies, r);
}

/* req_deliver_cb - run the callback from the loop, then forget r */
static void req_deliver_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dns_req *r = arg;
	struct dns_result *res = r->res;
	dns_cb *cb = r->cb;
	void *cbarg = r->arg;

	/* nothing of r or d is touched after the callback: it may free d */
	r->res = NULL;
	req_retire(r);
	cb(cbarg, res);
	free(res);
}

/* req_finish - the result is known; deliver it from the loop */
static void req_finish(struct dns_req *r, enum dns_status st, const char *why)
{
	if (r->state != DNS_REQ_RUNNING)
		return;
	r->state = DNS_REQ_READY;
	if (r->res == NULL)
		r->res = xcalloc(1, sizeof(*r->res));
	r->res->status = st;
	r->res->implicit_mx = r->implicit;
	if (st != DNS_OK) {
		r->res->ntargets = 0;
		r->res->naddrs = 0;
	}
	snprintf(r->res->detail, sizeof(r->res->detail), "%s",
	    why != NULL ? why : dns_status_name(st));
	if (r->cap != NULL)
		evtimer_del(r->cap);
	event_active(r->done, EV_TIMEOUT, 1);
	log_debug("event=dns_result name=%s status=%s detail=%s targets=%zu "
	    "addrs=%zu", r->name, dns_status_name(st),
	    log_value(r->res->detail, strlen(r->res->detail)),
	    r->res->ntargets, r->res->naddrs);
}

/* req_cap_cb - the lookup took too long */
static void req_cap_cb(evutil_socket_t fd, short what, void *arg)
{
	req_finish(arg, DNS_TEMP, "lookup time limit");
}

/* req_new - a request with a copy of self, on the pending list */
static struct dns_req *req_new(struct dns *d, const struct mx_self *self,
    dns_cb *cb, void *arg)
{
	struct dns_req *r = xcalloc(1, sizeof(*r));
	struct timeval cap;
	size_t i;

	r->d = d;
	r->cb = cb;
	r->arg = arg;
	r->state = DNS_REQ_RUNNING;
	if (self != NULL && self->nnames > 0) {
		r->self_names = xcalloc(self->nnames, sizeof(char *));
		for (i = 0; i < self->nnames; i++)
			r->self_names[i] = xstrdup(self->names[i] != NULL ?
			    self->names[i] : "");
		r->self.names = (const char *const *)r->self_names;
		r->self.nnames = self->nnames;
	}
	if (self != NULL && self->naddrs > 0) {
		r->self_addrs = xcalloc(self->naddrs, sizeof(*r->self_addrs));
		memcpy(r->self_addrs, self->addrs,
		    self->naddrs * sizeof(*r->self_addrs));
		r->self.addrs = r->self_addrs;
		r->self.naddrs = self->naddrs;
	}
	r->done = event_new(d->base, -1, 0, req_deliver_cb, r);
	r->cap = evtimer_new(d->base, req_cap_cb, r);
	if (r->done == NULL || r->cap == NULL)
		log_fatal("event=dns_error error=\"cannot create event\"");
	cap.tv_sec = d->lookup_cap_ms / 1000;
	cap.tv_usec = (d->lookup_cap_ms % 1000) * 1000;
	evtimer_add(r->cap, &cap);
	req_link(&d->pending, r);
	return r;
}

/*
 * req_query_returned - bookkeeping when a c-ares query calls back.
 * False when the answer is not wanted any more (r answered, cancelled or
 * shutting down); r may be freed then.
 */
static bool req_query_returned(struct dns_req *r, int status)
{
	r->outstanding--;
	if (r->state == DNS_REQ_ZOMBIE) {
		if (r->outstanding == 0) {
			req_unlink(&r->d->zombies, r);
			free(r);
		}
		return false;
	}
	return r->state == DNS_REQ_RUNNING && !r->d->closing &&
	    status != ARES_EDESTRUCTION;
}

static void dns_addr_cb(void *arg, int status, int timeouts,
    unsigned char *abuf, int alen);

/* req_query - start one query of r */
static void req_query(struct dns_req *r, int host, const char *name,
    int qtype, ares_callback fn)
{
	struct dns_q *q = xmalloc(sizeof(*q));

	q->r = r;
	q->host = host;
	q->qtype = qtype;
	r->outstanding++;
	/* may call fn at once (a bad name, no memory) */
	ares_query(r->d->channel, name, DNS_C_IN, qtype, fn, q);
}

/* host_start - query the addresses of host i */
static void host_start(struct dns_req *r, size_t i)
{
	struct dns_host *h = &r->hosts[i];
	unsigned fam = r->d->families;

	h->started = true;
	r->active++;
	h->pending = ((fam & DNS_INET6) != 0) + ((fam & DNS_INET4) != 0);
	if (fam & DNS_INET6)
		req_query(r, (int)i, h->name, DNS_T_AAAA, dns_addr_cb);
	if (fam & DNS_INET4)
		req_query(r, (int)i, h->name, DNS_T_A, dns_addr_cb);
}

/* host_addrs - host i's addresses into a[], IPv6 and IPv4 interleaved */
static size_t host_addrs(const struct dns_req *r, size_t i, struct mx_addr *a)
{
	const struct dns_host *h = &r->hosts[i];
	size_t k = 0, i4 = 0, i6 = 0;

	/*
	 * Alternate the families (RFC 8305 section 4), IPv6 first: a host
	 * whose IPv6 is unreachable then costs one address of the
	 * MX_MAX_ADDRS budget, not all of them.
	 */
	while (i4 < h->n4 || i6 < h->n6) {
		if (i6 < h->n6) {
			struct sockaddr_in6 *s6 = (void *)&a[k].sa;

			memset(&a[k], 0, sizeof(a[k]));
			s6->sin6_family = AF_INET6;
			memcpy(&s6->sin6_addr, h->a6[i6++], 16);
			a[k].pref = h->pref;
			a[k].host = (unsigned)i;
			k++;
		}
		if (i4 < h->n4) {
			struct sockaddr_in *s4 = (void *)&a[k].sa;

			memset(&a[k], 0, sizeof(a[k]));
			s4->sin_family = AF_INET;
			memcpy(&s4->sin_addr, h->a4[i4++], 4);
			a[k].pref = h->pref;
			a[k].host = (unsigned)i;
			k++;
		}
	}
	return k;
}

/* req_prefix - addresses of the hosts resolved so far, in order */
static size_t req_prefix(const struct dns_req *r, struct mx_addr *a,
    size_t *nhosts)
{
	size_t i, n = 0;

	for (i = 0; i < r->nhosts && r->hosts[i].done; i++)
		n += host_addrs(r, i, a + n);
	*nhosts = i;
	return n;
}

/*
 * req_enough - nothing the hosts still unresolved could change: all are
 * done, or an address of ours was seen (everything after it is dropped
 * anyway), or MX_MAX_ADDRS addresses are known and the next host has a
 * worse preference (an equal one might still turn out to be ours).
 */
static bool req_enough(const struct dns_req *r)
{
	struct mx_addr a[MX_MAX_HOSTS * DNS_HOST_ADDRS * 2];
	size_t n, k;
	bool self_seen;

	n = req_prefix(r, a, &k);
	if (k == r->nhosts)
		return true;
	if (k == 0)
		return false;
	mx_filter_addrs(a, &n, &r->self, &self_seen);
	if (self_seen)
		return true;
	return n == MX_MAX_ADDRS && r->hosts[k].pref > r->hosts[k - 1].pref;
}

/* req_conclude - turn the resolved hosts into the result */
static void req_conclude(struct dns_req *r)
{
	struct mx_addr a[MX_MAX_HOSTS * DNS_HOST_ADDRS * 2];
	struct dns_result *res;
	enum mx_status st;
	size_t n, k, i;
	bool any_temp = false, all_nx = true;

	n = req_prefix(r, a, &k);
	for (i = 0; i < k; i++) {
		any_temp |= r->hosts[i].temp;
		all_nx &= r->hosts[i].nx;
	}
	st = mx_filter_addrs(a, &n, &r->self, NULL);
	if (st == MX_LOOP) {
		req_finish(r, DNS_LOOP, "an address of the next hop is ours");
		return;
	}
	if (st == MX_NONE) {
		if (any_temp)
			req_finish(r, DNS_TEMP, r->temp_why);
		else if (r->by_host && all_nx)
			req_finish(r, DNS_NXDOMAIN, "host not found");
		else if (r->by_host || r->implicit)
			req_finish(r, DNS_NOADDR, "no address record");
		else
			req_finish(r, DNS_NOADDR, "no mx host has an address");
		return;
	}
	res = r->res = xcalloc(1, sizeof(*r->res));
	for (i = 0; i < n; i++) {
		struct dns_target *t;

		if (res->ntargets == 0 ||
		    strcmp(res->targets[res->ntargets - 1].name,
		    r->hosts[a[i].host].name) != 0) {
			t = &res->targets[res->ntargets++];
			memcpy(t->name, r->hosts[a[i].host].name,
			    sizeof(t->name));
			t->pref = r->hosts[a[i].host].pref;
		}
		t = &res->targets[res->ntargets - 1];
		t->addrs[t->naddrs++] = a[i].sa;
		res->naddrs++;
	}
	req_finish(r, DNS_OK, any_temp ? r->temp_why : NULL);
}

/*
 * req_pump - start hosts while fewer than DNS_PARALLEL run, conclude once
 * enough is known.  Queries may call back inside ares_query(), which
 * calls req_pump() again: that nested call only asks for another round.
 */
static void req_pump(struct dns_req *r)
{
	if (r->pumping) {
		r->repump = true;
		return;
	}
	r->pumping = true;
	do {
		r->repump = false;
		if (r->state != DNS_REQ_RUNNING)
			break;
		if (req_enough(r)) {
			req_conclude(r);
			break;
		}
		while (r->state == DNS_REQ_RUNNING &&
		    r->active < DNS_PARALLEL && r->next_host < r->nhosts)
			host_start(r, r->next_host++);
	} while (r->repump);
	r->pumping = false;
}

/* dns_addr_cb - an A or AAAA answer for one host */
static void dns_addr_cb(void *arg, int status, int timeouts,
    unsigned char *abuf, int alen)
{
	struct dns_q *q = arg;
	struct dns_req *r = q->r;
	struct dns_host *h;
	struct dns_iter it;
	struct dns_rr rr;
	const char *why;
	char *end = NULL;
	int qtype = q->qtype;

	h = &r->hosts[q->host];
	free(q);
	if (!req_query_returned(r, status))
		return;
	switch (dns_check(status, abuf, alen, h->name, qtype, &end, &why)) {
	case DNS_ANS_DATA:
		dns_iter_init(&it, abuf, alen);
		while (dns_iter_next(&it, &rr) == 1) {
			if (rr.type == qtype && rr.class == DNS_C_IN &&
			    dns_name_eq(rr.owner, end)) {
				if (qtype == DNS_T_A && h->n4 < DNS_HOST_ADDRS)
					memcpy(h->a4[h->n4++], rr.rdata, 4);
				if (qtype == DNS_T_AAAA &&
				    h->n6 < DNS_HOST_ADDRS)
					memcpy(h->a6[h->n6++], rr.rdata, 16);
			}
			ares_free_string(rr.owner);
		}
		free(end);
		break;
	case DNS_ANS_NODATA:
		break;
	case DNS_ANS_NXDOMAIN:
		h->nx = true;
		break;
	case DNS_ANS_TEMP:
		h->temp = true;
		r->temp_why = why;
		break;
	}
	if (--h->pending > 0)
		return;
	/* the host exists if either family said so */
	if (h->n4 + h->n6 > 0)
		h->nx = false;
	h->done = true;
	r->active--;
	req_pump(r);
}

/* dns_mx_cb - the MX answer for a domain */
static void dns_mx_cb(void *arg, int status, int timeouts,
    unsigned char *abuf, int alen)
{
	struct dns_q *q = arg;
	struct dns_req *r = q->r;
	struct mx_rr *rrs = NULL;
	struct mx_list list;
	struct dns_iter it;
	struct dns_rr rr;
	const char *why;
	char *end = NULL;
	size_t n = 0, i;
	enum mx_status st;

	free(q);
	if (!req_query_returned(r, status))
		return;
	switch (dns_check(status, abuf, alen, r->name, DNS_T_MX, &end,
	    &why)) {
	case DNS_ANS_TEMP:
		req_finish(r, DNS_TEMP, why);
		return;
	case DNS_ANS_NXDOMAIN:
		req_finish(r, DNS_NXDOMAIN, "domain not found");
		return;
	case DNS_ANS_NODATA: {
		/* RFC 5321 5.1: no MX, the domain is its own MX at 0 */
		struct mx_rr self_rr = { r->name, 0 };

		r->implicit = true;
		st = mx_order(&self_rr, 1, &r->self, NULL, NULL, &list);
		break;
	}
	case DNS_ANS_DATA:
	default:
		/* at most one MX per answer record: abuf is >= 12 here */
		rrs = xcalloc((size_t)(abuf[6] << 8 | abuf[7]) + 1,
		    sizeof(*rrs));
		dns_iter_init(&it, abuf, alen);
		while (dns_iter_next(&it, &rr) == 1) {
			char *host;
			long len;

			if (rr.type == DNS_T_MX && rr.class == DNS_C_IN &&
			    dns_name_eq(rr.owner, end) &&
			    ares_expand_name(rr.rdata + 2, abuf, alen, &host,
			    &len) == ARES_SUCCESS) {
				rrs[n].pref = (unsigned)rr.rdata[0] << 8 |
				    rr.rdata[1];
				rrs[n].name = host;
				n++;
			}
			ares_free_string(rr.owner);
		}
		free(end);
		st = mx_order(rrs, n, &r->self, dns_rand, r->d, &list);
		for (i = 0; i < n; i++)
			ares_free_string((char *)rrs[i].name);
		free(rrs);
		break;
	}
	switch (st) {
	case MX_NULL:
		req_finish(r, DNS_NULLMX, "null mx");
		return;
	case MX_LOOP:
		req_finish(r, DNS_LOOP, r->implicit ?
		    "the domain is ours" : "we are the best mx");
		return;
	case MX_NONE:
		/* the records were there, but no name was a host name */
		req_finish(r, DNS_TEMP, "no valid mx host name");
		return;
	case MX_OK:
		break;
	}
	for (i = 0; i < list.n; i++) {
		memcpy(r->hosts[i].name, list.host[i].name,
		    sizeof(r->hosts[i].name));
		r->hosts[i].pref = list.host[i].pref;
	}
	r->nhosts = list.n;
	req_pump(r);
}

/* --- the public API --- */

struct dns *dns_new(struct event_base *base, const char *server,
    struct buf *err)
{
	struct dns_opts o;

	memset(&o, 0, sizeof(o));
	o.server = server;
	return dns_new_opts(base, &o, err);
}

struct dns *dns_new_opts(struct event_base *base, const struct dns_opts *o,
    struct buf *err)
{
	struct ares_options ao;
	struct dns *d;
	int mask, rc;

	rc = ares_library_init(ARES_LIB_INIT_ALL);
	if (rc != ARES_SUCCESS) {
		if (err != NULL)
			buf_printf(err, "c-ares init: %s", ares_strerror(rc));
		return NULL;
	}
	d = xcalloc(1, sizeof(*d));
	d->base = base;
	d->lookup_cap_ms = o->lookup_cap_ms > 0 ? o->lookup_cap_ms :
	    DNS_LOOKUP_CAP_MS;
	d->families = (o->families & DNS_INET_ANY) ? (o->families &
	    DNS_INET_ANY) : DNS_INET_ANY;
	if (getrandom(&d->rng, sizeof(d->rng), GRND_NONBLOCK) !=
	    (ssize_t)sizeof(d->rng))
		d->rng = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	d->rng |= 1;	/* xorshift state must not be 0 */
	d->tmo = evtimer_new(base, dns_tmo_cb, d);
	if (d->tmo == NULL)
		log_fatal("event=dns_error error=\"cannot create event\"");

	/*
	 * No search domains, ever (a mail domain is absolute), whether the
	 * servers come from resolv.conf or from the configuration.
	 */
	memset(&ao, 0, sizeof(ao));
	mask = ARES_OPT_FLAGS | ARES_OPT_DOMAINS | ARES_OPT_SOCK_STATE_CB;
	ao.flags = ARES_FLAG_NOSEARCH;
	ao.domains = NULL;
	ao.ndomains = 0;
	ao.sock_state_cb = dns_sock_state;
	ao.sock_state_cb_data = d;
	if (o->timeout_ms > 0) {
		mask |= ARES_OPT_TIMEOUTMS;
		ao.timeout = o->timeout_ms;
	}
	if (o->tries > 0) {
		mask |= ARES_OPT_TRIES;
		ao.tries = o->tries;
	}
	rc = ares_init_options(&d->channel, &ao, mask);
	if (rc != ARES_SUCCESS) {
		if (err != NULL)
			buf_printf(err, "c-ares init: %s", ares_strerror(rc));
		d->channel = NULL;
		goto fail;
	}
	if (o->server != NULL && o->server[0] != '\0') {
		rc = ares_set_servers_ports_csv(d->channel, o->server);
		if (rc != ARES_SUCCESS) {
			if (err != NULL)
				buf_printf(err, "dns server \"%s\": %s (want "
				    "an IP address, optionally with :port)",
				    o->server, ares_strerror(rc));
			goto fail;
		}
	}
	return d;
fail:
	dns_free(d);
	return NULL;
}

void dns_free(struct dns *d)
{
	struct dns_req *r;
	size_t i;

	if (d == NULL)
		return;
	d->closing = true;
	/* calls back every query (ARES_EDESTRUCTION), closes the sockets */
	if (d->channel != NULL)
		ares_destroy(d->channel);
	d->channel = NULL;
	/*
	 * Answer everything not yet answered, ready or not, with DNS_TEMP.
	 * A callback may start a new lookup: it lands on the pending list
	 * and is answered by this same loop.
	 */
	while ((r = d->pending) != NULL) {
		struct dns_result *res = r->res != NULL ? r->res :
		    xcalloc(1, sizeof(*res));
		dns_cb *cb = r->cb;
		void *cbarg = r->arg;

		memset(res, 0, sizeof(*res));
		res->status = DNS_TEMP;
		snprintf(res->detail, sizeof(res->detail), "resolver shut down");
		r->res = NULL;
		r->outstanding = 0;
		req_retire(r);
		cb(cbarg, res);
		free(res);
	}
	while ((r = d->zombies) != NULL) {
		req_unlink(&d->zombies, r);
		free(r);
	}
	for (i = 0; i < d->nsocks; i++)
		event_free(d->socks[i].ev);
	free(d->socks);
	if (d->tmo != NULL)
		event_free(d->tmo);
	free(d);
	ares_library_cleanup();
}

/*
 * dns_literal - host is an address literal ("1.2.3.4", "[1.2.3.4]",
 * "::1", "[IPv6:::1]"): 1 with *ss filled, 0 if not a literal, -1 if it
 * is bracketed but not a valid address.
 */
static int dns_literal(const char *host, struct sockaddr_storage *ss)
{
	char tmp[INET6_ADDRSTRLEN + 8];
	struct sockaddr_in *s4 = (void *)ss;
	struct sockaddr_in6 *s6 = (void *)ss;
	size_t len = strlen(host);
	bool bracket = len >= 2 && host[0] == '[' && host[len - 1] == ']';
	const char *p = host;

	memset(ss, 0, sizeof(*ss));
	if (bracket) {
		p = host + 1;
		len -= 2;
		if (str_caseprefix(p, len, "IPv6:")) {
			p += 5;
			len -= 5;
		}
	}
	if (len >= sizeof(tmp))
		return bracket ? -1 : 0;
	memcpy(tmp, p, len);
	tmp[len] = '\0';
	if (inet_pton(AF_INET, tmp, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		return 1;
	}
	if (inet_pton(AF_INET6, tmp, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		return 1;
	}
	return bracket ? -1 : 0;
}

/* req_literal - answer r with one address, without DNS */
static void req_literal(struct dns_req *r, const struct sockaddr_storage *ss)
{
	struct mx_addr a;
	size_t n = 1;
	struct dns_target *t;
	bool v6 = ss->ss_family == AF_INET6;

	if ((v6 && !(r->d->families & DNS_INET6)) ||
	    (!v6 && !(r->d->families & DNS_INET4))) {
		req_finish(r, DNS_NOADDR, "address family not enabled");
		return;
	}
	memset(&a, 0, sizeof(a));
	a.sa = *ss;
	if (mx_filter_addrs(&a, &n, &r->self, NULL) == MX_LOOP) {
		req_finish(r, DNS_LOOP, "the address is ours");
		return;
	}
	r->res = xcalloc(1, sizeof(*r->res));
	t = &r->res->targets[0];
	snprintf(t->name, sizeof(t->name), "%s", r->name);
	t->naddrs = 1;
	t->addrs[0] = *ss;
	r->res->ntargets = 1;
	r->res->naddrs = 1;
	req_finish(r, DNS_OK, "address literal");
}

/* req_start_host - resolve r->name as the single host of preference 0 */
static void req_start_host(struct dns_req *r)
{
	struct mx_rr one = { r->name, 0 };
	struct mx_list list;

	if (mx_order(&one, 1, &r->self, NULL, NULL, &list) == MX_LOOP) {
		req_finish(r, DNS_LOOP, "the host is ours");
		return;
	}
	memcpy(r->hosts[0].name, list.host[0].name, sizeof(r->hosts[0].name));
	r->nhosts = 1;
	req_pump(r);
}

/*
 * dns_begin - the common start of both lookups: literal, bad name,
 * shutting down, or a name in r->name to resolve (true).
 */
static bool dns_begin(struct dns_req *r, const char *name)
{
	struct sockaddr_storage ss;
	int lit;

	snprintf(r->name, sizeof(r->name), "%s", name != NULL ? name : "");
	lit = dns_literal(r->name, &ss);
	if (lit > 0) {
		r->by_host = true;
		req_literal(r, &ss);
		return false;
	}
	if (lit < 0) {
		req_finish(r, DNS_NOADDR, "bad address literal");
		return false;
	}
	if (name == NULL || strlen(name) > MX_NAME_MAX + 1 ||
	    !mx_name_normalize(name, strlen(name), r->name)) {
		snprintf(r->name, sizeof(r->name), "-");
		req_finish(r, DNS_NXDOMAIN, "not a valid domain name");
		return false;
	}
	if (r->d->closing) {
		req_finish(r, DNS_TEMP, "resolver shut down");
		return false;
	}
	return true;
}

struct dns_req *dns_lookup_mx(struct dns *d, const char *domain,
    const struct mx_self *self, dns_cb *cb, void *arg)
{
	struct dns_req *r = req_new(d, self, cb, arg);

	if (dns_begin(r, domain)) {
		req_query(r, -1, r->name, DNS_T_MX, dns_mx_cb);
		dns_rearm(d);
	}
	return r;
}

struct dns_req *dns_lookup_host(struct dns *d, const char *host,
    const struct mx_self *self, dns_cb *cb, void *arg)
{
	struct dns_req *r = req_new(d, self, cb, arg);

	r->by_host = true;
	if (dns_begin(r, host)) {
		req_start_host(r);
		dns_rearm(d);
	}
	return r;
}

void dns_cancel(struct dns_req *r)
{
	if (r == NULL || r->state == DNS_REQ_ZOMBIE)
		return;
	req_retire(r);
}
