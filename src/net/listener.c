/* listener - listening sockets with total and per-client caps */
#include "net/listener.h"
#include "log/log.h"
#include "metrics/metrics.h"
#include "util/xalloc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NET_BUCKETS 4096

/* One entry per client address with open connections. */
struct net_slot {
	struct net_slot *next;
	struct net_listener *l;
	int family;
	unsigned char bytes[16];
	unsigned count;
};

struct net_listener {
	struct event_base *base;
	struct evconnlistener **ls;
	size_t nls;
	struct event *resume;
	char *host;
	net_accept_fn *fn;
	void *arg;
	unsigned max_total, max_per_client;
	unsigned active;
	struct net_slot *buckets[NET_BUCKETS];
};

void net_sockaddr_parts(const struct sockaddr *sa, char *addr, size_t addrsz,
    int *family, unsigned char bytes[16], unsigned *port)
{
	memset(bytes, 0, 16);
	*family = sa->sa_family;
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const void *)sa;

		memcpy(bytes, &s6->sin6_addr, 16);
		*port = ntohs(s6->sin6_port);
		inet_ntop(AF_INET6, &s6->sin6_addr, addr, (socklen_t)addrsz);
		/* an IPv4 client on a dual-stack socket counts as IPv4 */
		if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
			*family = AF_INET;
			memmove(bytes, bytes + 12, 4);
			memset(bytes + 4, 0, 12);
			inet_ntop(AF_INET, bytes, addr, (socklen_t)addrsz);
		}
	} else {
		const struct sockaddr_in *s4 = (const void *)sa;

		memcpy(bytes, &s4->sin_addr, 4);
		*port = ntohs(s4->sin_port);
		inet_ntop(AF_INET, &s4->sin_addr, addr, (socklen_t)addrsz);
	}
}

static unsigned net_hash(int family, const unsigned char *b)
{
	uint32_t h = 2166136261u ^ (uint32_t)family;
	int i;

	for (i = 0; i < 16; i++)
		h = (h ^ b[i]) * 16777619u;
	return h % NET_BUCKETS;
}

static struct net_slot *net_slot_get(struct net_listener *l, int family,
    const unsigned char *b)
{
	unsigned h = net_hash(family, b);
	struct net_slot *s;

	for (s = l->buckets[h]; s != NULL; s = s->next)
		if (s->family == family && memcmp(s->bytes, b, 16) == 0)
			return s;
	s = xcalloc(1, sizeof(*s));
	s->l = l;
	s->family = family;
	memcpy(s->bytes, b, 16);
	s->next = l->buckets[h];
	l->buckets[h] = s;
	return s;
}

void net_release(struct net_slot *slot)
{
	struct net_listener *l;
	struct net_slot **pp;

	if (slot == NULL)
		return;
	l = slot->l;
	l->active--;
	if (--slot->count > 0)
		return;
	for (pp = &l->buckets[net_hash(slot->family, slot->bytes)]; *pp;
	    pp = &(*pp)->next) {
		if (*pp == slot) {
			*pp = slot->next;
			free(slot);
			return;
		}
	}
}

/* net_refuse - best-effort 421 without blocking, then close */
static void net_refuse(struct net_listener *l, int fd, const char *addr,
    const char *why)
{
	char msg[300];
	int n;

	metrics_inc(MET_REFUSED_CONNECTIONS);
	log_info("event=refuse client=%s reason=%s", addr, why);
	n = snprintf(msg, sizeof(msg),
	    "421 4.7.0 %s Error: too many connections%s\r\n", l->host,
	    strcmp(why, "per_client_limit") == 0 ? " from your address" : "");
	if (send(fd, msg, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
		/* the client is gone or not reading: close all the same */
	}
	close(fd);
}

static void net_accept_cb(struct evconnlistener *el, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct net_listener *l = arg;
	struct net_slot *slot;
	char addr[64];
	unsigned char b[16];
	unsigned port;
	int family;

	net_sockaddr_parts(sa, addr, sizeof(addr), &family, b, &port);
	if (l->active >= l->max_total) {
		net_refuse(l, fd, addr, "total_limit");
		return;
	}
	slot = net_slot_get(l, family, b);
	if (slot->count >= l->max_per_client) {
		net_refuse(l, fd, addr, "per_client_limit");
		return;
	}
	slot->count++;
	l->active++;
	l->fn(l->arg, fd, sa, (socklen_t)salen, slot);
}

static void net_resume_cb(evutil_socket_t fd, short what, void *arg)
{
	struct net_listener *l = arg;
	size_t i;

	for (i = 0; i < l->nls; i++)
		evconnlistener_enable(l->ls[i]);
}

static void net_error_cb(struct evconnlistener *el, void *arg)
{
	struct net_listener *l = arg;
	struct timeval one = { 1, 0 };
	int e = EVUTIL_SOCKET_ERROR();
	size_t i;

	log_warn("event=accept_error errno=%d error=%s", e, strerror(e));
	/* out of descriptors or memory: pause instead of spinning */
	for (i = 0; i < l->nls; i++)
		evconnlistener_disable(l->ls[i]);
	evtimer_add(l->resume, &one);
}

static int net_parse_addr(const struct config_listen *a,
    struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_in *s4 = (void *)ss;
	struct sockaddr_in6 *s6 = (void *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, a->host, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)a->port);
		*len = sizeof(*s4);
		return 0;
	}
	if (inet_pton(AF_INET6, a->host, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)a->port);
		*len = sizeof(*s6);
		return 0;
	}
	return -1;
}

struct net_listener *net_listener_new(struct event_base *base,
    const struct config_listen *addrs, size_t n, const char *banner_host,
    net_accept_fn *fn, void *arg, struct buf *err)
{
	struct net_listener *l = xcalloc(1, sizeof(*l));
	size_t i;

	l->base = base;
	l->fn = fn;
	l->arg = arg;
	l->host = xstrdup(banner_host);
	l->max_total = l->max_per_client = ~0u;
	l->ls = xcalloc(n, sizeof(*l->ls));
	l->resume = evtimer_new(base, net_resume_cb, l);
	for (i = 0; i < n; i++) {
		struct sockaddr_storage ss;
		socklen_t len;

		if (net_parse_addr(&addrs[i], &ss, &len) != 0) {
			buf_printf(err, "bad listen address %s", addrs[i].host);
			net_listener_free(l);
			return NULL;
		}
		/* [::] beside 0.0.0.0 on the same port: each its own family */
		l->ls[i] = evconnlistener_new_bind(base, net_accept_cb, l,
		    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE |
		    LEV_OPT_CLOSE_ON_EXEC | (ss.ss_family == AF_INET6 ?
		    LEV_OPT_BIND_IPV6ONLY : 0), 1024, (struct sockaddr *)&ss,
		    (int)len);
		if (l->ls[i] == NULL) {
			buf_printf(err, "cannot listen on %s port %u: %s",
			    addrs[i].host, addrs[i].port, strerror(errno));
			net_listener_free(l);
			return NULL;
		}
		l->nls++;
		evconnlistener_set_error_cb(l->ls[i], net_error_cb);
	}
	return l;
}

void net_listener_set_limits(struct net_listener *l, unsigned max_total,
    unsigned max_per_client)
{
	l->max_total = max_total;
	l->max_per_client = max_per_client;
}

void net_listener_set_arg(struct net_listener *l, void *arg)
{
	l->arg = arg;
}

unsigned net_listener_active(const struct net_listener *l)
{
	return l->active;
}

void net_listener_stop(struct net_listener *l)
{
	size_t i;

	for (i = 0; i < l->nls; i++)
		evconnlistener_free(l->ls[i]);
	l->nls = 0;
	evtimer_del(l->resume);
}

void net_listener_free(struct net_listener *l)
{
	struct net_slot *s, *next;
	size_t i;

	if (l == NULL)
		return;
	net_listener_stop(l);
	for (i = 0; i < NET_BUCKETS; i++) {
		for (s = l->buckets[i]; s != NULL; s = next) {
			next = s->next;
			free(s);
		}
	}
	event_free(l->resume);
	free(l->ls);
	free(l->host);
	free(l);
}
