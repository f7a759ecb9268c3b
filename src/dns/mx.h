/*
 * SUMMARY
 *	mx - which MX hosts and addresses to try, per RFC 5321 section 5.1
 * DESCRIPTION
 *	Pure functions, no I/O: the resolver (dns.c) feeds them what DNS
 *	said, and they decide.
 *
 *	mx_order() takes a domain's MX records and returns the host names
 *	to try: sorted by preference, equal preferences in random order
 *	(the caller supplies the random function, so tests are
 *	deterministic), names normalised to lower case without the final
 *	dot, duplicates and names that are not host names dropped.  When one
 *	of the names is ours, that record and every record of an equal or
 *	worse preference are dropped (we must only pass mail to a better
 *	MX); if nothing remains the result is MX_LOOP.  A lone MX with an
 *	empty name ("" or ".") is the null MX of RFC 7505 (MX_NULL).  At
 *	most MX_MAX_HOSTS names are returned.
 *
 *	mx_filter_addrs() does the same for the resolved addresses: an
 *	address that is ours drops every address of an equal or worse
 *	preference (including the rest of that host's), duplicates go, and
 *	at most MX_MAX_ADDRS addresses are kept (Postfix's
 *	smtp_mx_address_limit).  IPv4 and IPv4-mapped IPv6 compare equal;
 *	ports are ignored.
 * OWNERSHIP
 *	Inputs are borrowed for the call.  Results are written into the
 *	caller's fixed-size structs; nothing is retained.
 */
#ifndef ETRND_DNS_MX_H
#define ETRND_DNS_MX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define MX_MAX_HOSTS	10	/* MX host names tried per domain */
#define MX_MAX_ADDRS	5	/* addresses tried per delivery attempt */
#define MX_NAME_MAX	253	/* a host name, without the final dot */

enum mx_status {
	MX_OK,		/* at least one host (address) to try */
	MX_NULL,	/* null MX: the domain accepts no mail (RFC 7505) */
	MX_LOOP,	/* we are among the best MX: nothing better remains */
	MX_NONE,	/* nothing usable: no records, or only bad names */
};

/* One MX record as DNS gave it (borrowed). */
struct mx_rr {
	const char *name;	/* exchange, any case, "" or "." for the root */
	unsigned pref;
};

/* Who we are: names and addresses that mean "this relay". */
struct mx_self {
	const char *const *names;	/* lower case, no final dot */
	size_t nnames;
	const struct sockaddr_storage *addrs;	/* AF_INET/AF_INET6, port ignored */
	size_t naddrs;
};

struct mx_host {
	char name[MX_NAME_MAX + 1];	/* lower case, no final dot */
	unsigned pref;
};

struct mx_list {
	size_t n;
	struct mx_host host[MX_MAX_HOSTS];
	size_t nbad;		/* records dropped for a malformed name */
	bool self_seen;		/* one of the names was ours */
	unsigned self_pref;	/* if so, the best preference it had */
};

/* mx_rand_fn - a random 32-bit number; arg is the caller's state */
typedef uint32_t mx_rand_fn(void *arg);

/*
 * mx_order - the hosts to try for the n records rr, best first.
 * MX_OK: out->n is 1..MX_MAX_HOSTS.  MX_NULL, MX_LOOP, MX_NONE: out->n
 * is 0.  self may be NULL; rnd may be NULL (ties then keep DNS order).
 */
enum mx_status mx_order(const struct mx_rr *rr, size_t n,
    const struct mx_self *self, mx_rand_fn *rnd, void *rnd_arg,
    struct mx_list *out);

/* One resolved address of the host list, in the order it would be tried. */
struct mx_addr {
	struct sockaddr_storage sa;
	unsigned pref;		/* the preference of its host */
	unsigned host;		/* the caller's index of its host */
};

/*
 * mx_filter_addrs - filter a[0..*n) in place, keeping the order: drop our
 * own addresses and everything of an equal or worse preference, drop
 * duplicates and unusable families, keep at most MX_MAX_ADDRS.  MX_OK:
 * *n is 1..MX_MAX_ADDRS.  MX_LOOP: one address was ours and nothing
 * better remained.  MX_NONE: no address at all.  *self_seen (may be NULL)
 * tells whether an address was ours, whatever the result.
 */
enum mx_status mx_filter_addrs(struct mx_addr *a, size_t *n,
    const struct mx_self *self, bool *self_seen);

/* mx_addr_equal - same IP address (IPv4-mapped IPv6 equals IPv4), any port */
bool mx_addr_equal(const struct sockaddr_storage *x,
    const struct sockaddr_storage *y);

/*
 * mx_name_normalize - copy a host name (len bytes) to out, lower case and
 * without one final dot; false if it is not a host name (LDH labels and
 * '_', 1..63 bytes each, at most MX_NAME_MAX in all).  An empty name (the
 * root) normalises to "" and returns false.
 */
bool mx_name_normalize(const char *name, size_t len,
    char out[MX_NAME_MAX + 1]);

#endif
