/*
 * SUMMARY
 *	dns - asynchronous MX and host lookups (c-ares on a libevent base)
 * DESCRIPTION
 *	dns_new() puts a c-ares channel on the daemon's event_base: c-ares
 *	tells us which sockets it uses (ARES_OPT_SOCK_STATE_CB) and we give
 *	each one a libevent event, plus one timer driven by ares_timeout().
 *	Nothing here blocks the loop.  With a server ("host:port",
 *	"[v6]:port" or "host") only that server is asked; otherwise the
 *	system's resolver configuration is used.  Search domains are never
 *	applied: a mail domain is always absolute.
 *
 *	dns_lookup_mx() finds where mail for a domain goes: the MX records
 *	ordered by mx_order() (our own names and everything not better than
 *	them dropped), the A/AAAA of each host in that order (at most
 *	DNS_PARALLEL hosts at a time, stopping once MX_MAX_ADDRS addresses
 *	are known), then mx_filter_addrs() (our own addresses dropped).  No
 *	MX at all means the implicit MX: the domain's own addresses at
 *	preference 0 (RFC 5321 5.1).  dns_lookup_host() resolves one host
 *	name, or an address literal, for a static route.
 *
 *	Hostile or doubtful answers never lead to a bounce: a CNAME loop, a
 *	referral (an answer that is neither authoritative nor recursive), a
 *	malformed packet, SERVFAIL, REFUSED, a timeout, or a lookup running
 *	longer than the time cap all give DNS_TEMP.  Names are expanded by
 *	c-ares (which rejects compression loops and overlong names) and every
 *	MX name must be a host name.
 *
 *	The callback always runs from the event loop, never from inside the
 *	dns_lookup_*() call that started it, and exactly once per lookup
 *	(unless dns_cancel() is called first).  dns_free() calls the callback
 *	of every lookup not yet answered with DNS_TEMP, then never again.
 * OWNERSHIP
 *	struct dns is the caller's; dns_free() it after the event_base is
 *	no longer dispatching it (it may be called from a dns callback).
 *	The struct dns_result passed to a callback is borrowed for the
 *	duration of the call.  The struct dns_req handle returned by a
 *	lookup is borrowed until its callback runs or dns_cancel() is
 *	called; it may be ignored.  Strings and the mx_self passed to a
 *	lookup are copied.
 */
#ifndef ETRND_DNS_H
#define ETRND_DNS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "dns/mx.h"
#include "util/buf.h"

struct event_base;
struct dns;
struct dns_req;

#define DNS_PARALLEL	3	/* MX hosts resolved at the same time */
#define DNS_HOST_ADDRS	8	/* addresses read per host and family */
#define DNS_CNAME_MAX	8	/* CNAME records followed in one answer */
#define DNS_LOOKUP_CAP_MS 30000	/* default time cap of one lookup */

enum dns_status {
	DNS_OK,		/* targets[] holds 1..MX_MAX_ADDRS addresses */
	DNS_NULLMX,	/* null MX (RFC 7505): bounce 5.1.10 */
	DNS_NXDOMAIN,	/* the domain does not exist: bounce */
	DNS_NOADDR,	/* the domain (or every MX host) has no address */
	DNS_TEMP,	/* anything doubtful: defer, never bounce */
	DNS_LOOP,	/* every usable MX is us or worse: defer or 5.4.6 */
};

/* One host to connect to, with its addresses (port 0) in the order to try. */
struct dns_target {
	char name[MX_NAME_MAX + 1];
	unsigned pref;
	size_t naddrs;
	struct sockaddr_storage addrs[MX_MAX_ADDRS];
};

struct dns_result {
	enum dns_status status;
	bool implicit_mx;	/* no MX: the domain's own addresses */
	size_t ntargets;
	struct dns_target targets[MX_MAX_HOSTS];
	size_t naddrs;		/* over all targets, at most MX_MAX_ADDRS */
	char detail[160];	/* why, for logs ("servfail", "cname loop") */
};

/* dns_cb - a lookup's answer; res is borrowed for the call */
typedef void dns_cb(void *arg, const struct dns_result *res);

enum dns_family {
	DNS_INET4 = 1,
	DNS_INET6 = 2,
	DNS_INET_ANY = 3,
};

struct dns_opts {
	const char *server;	/* "host:port" or NULL for the system's */
	int timeout_ms;		/* c-ares per-try timeout, 0: default */
	int tries;		/* c-ares tries per server, 0: default */
	int lookup_cap_ms;	/* time cap of a lookup, 0: DNS_LOOKUP_CAP_MS */
	unsigned families;	/* enum dns_family bits, 0: both */
};

/*
 * dns_new - a resolver on base; server may be NULL.  NULL with a reason
 * in err (if not NULL) when the server string or c-ares init fails.
 */
struct dns *dns_new(struct event_base *base, const char *server,
    struct buf *err);
/* dns_new_opts - dns_new with every tunable */
struct dns *dns_new_opts(struct event_base *base, const struct dns_opts *o,
    struct buf *err);
/* dns_free - answer pending lookups with DNS_TEMP, then free; NULL is ok */
void dns_free(struct dns *d);

/*
 * dns_lookup_mx - where mail for domain goes (see DESCRIPTION).  self may
 * be NULL.  Results: DNS_OK, DNS_NULLMX, DNS_NXDOMAIN, DNS_NOADDR,
 * DNS_TEMP, DNS_LOOP.
 */
struct dns_req *dns_lookup_mx(struct dns *d, const char *domain,
    const struct mx_self *self, dns_cb *cb, void *arg);

/*
 * dns_lookup_host - the addresses of one host: a name, or an IPv4/IPv6
 * literal (with or without [], "IPv6:" allowed), answered as one target
 * of preference 0.  With self, an address of ours gives DNS_LOOP.
 */
struct dns_req *dns_lookup_host(struct dns *d, const char *host,
    const struct mx_self *self, dns_cb *cb, void *arg);

/* dns_cancel - the callback of req will not run; req is gone */
void dns_cancel(struct dns_req *req);

/* dns_status_name - "ok", "nullmx", "nxdomain", "noaddr", "temp", "loop" */
const char *dns_status_name(enum dns_status st);

/*
 * The classification of one raw answer, exposed for the tests: what a
 * reply to (qname, qtype) says, given the c-ares status of the query.
 */
enum dns_answer {
	DNS_ANS_DATA,		/* records of qtype for qname (maybe via CNAME) */
	DNS_ANS_NODATA,		/* the name exists, no records of qtype */
	DNS_ANS_NXDOMAIN,	/* the name does not exist */
	DNS_ANS_TEMP,		/* anything else: see why */
};

/*
 * dns_answer_check - classify (status, abuf, alen) for qname and qtype
 * (1 = A, 28 = AAAA, 15 = MX); *why gets a static reason string.  A
 * negative answer only counts when the server is authoritative (AA) or
 * recursive (RA): a bare referral is DNS_ANS_TEMP.
 */
enum dns_answer dns_answer_check(int ares_status, const unsigned char *abuf,
    int alen, const char *qname, int qtype, const char **why);

#endif
