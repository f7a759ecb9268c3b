/* fuzz_mx - libFuzzer target for mx_order() and mx_filter_addrs() */
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dns/mx.h"

/*
 * Input: a 4-byte rng seed, then entries, each a kind byte (mod 4):
 *   0  MX record:    pref (2 bytes), length (1), name bytes
 *   1  self name:    length (1), name bytes (kept if a valid host name)
 *   2  address:      family bit (1), 4 or 16 bytes, pref (2)
 *   3  self address: family bit (1), 4 or 16 bytes
 * Bytes past the end read as 0.
 */
#define MAX_RR		64
#define MAX_SELF	8
#define MAX_ADDR	64

struct cursor {
	const uint8_t *p;
	size_t left;
};

static uint8_t u8(struct cursor *c)
{
	if (c->left == 0)
		return 0;
	c->left--;
	return *c->p++;
}

static unsigned u16(struct cursor *c)
{
	unsigned hi = u8(c);

	return hi << 8 | u8(c);
}

static void bytes(struct cursor *c, void *out, size_t n)
{
	uint8_t *o = out;

	while (n-- > 0)
		*o++ = u8(c);
}

static uint32_t rng(void *arg)
{
	uint32_t *s = arg;

	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

static void read_addr(struct cursor *c, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (u8(c) & 1) {
		struct sockaddr_in6 *s6 = (void *)ss;

		s6->sin6_family = AF_INET6;
		bytes(c, &s6->sin6_addr, 16);
	} else {
		struct sockaddr_in *s4 = (void *)ss;

		s4->sin_family = AF_INET;
		bytes(c, &s4->sin_addr, 4);
	}
}

/* is_self_name - a normalised name is one of the (normalised) self names */
static int is_self_name(const char *n, char self[][MX_NAME_MAX + 1],
    size_t nself)
{
	size_t i;

	for (i = 0; i < nself; i++)
		if (strcmp(n, self[i]) == 0)
			return 1;
	return 0;
}

static void check_order(const struct mx_rr *rr, size_t nrr,
    const struct mx_self *self, char selfn[][MX_NAME_MAX + 1], size_t nself,
    uint32_t seed)
{
	static char norm[MAX_RR][MX_NAME_MAX + 1];
	static int valid[MAX_RR];
	struct mx_list l, l2;
	enum mx_status st;
	uint32_t s1 = seed, s2 = seed;
	unsigned self_pref = 0;
	int self_seen = 0;
	size_t i, j, eligible = 0, nbad = 0;

	st = mx_order(rr, nrr, self, rng, &s1, &l);
	if (mx_order(rr, nrr, self, rng, &s2, &l2) != st || l.n != l2.n)
		abort();
	for (i = 0; i < l.n; i++)
		if (strcmp(l.host[i].name, l2.host[i].name) != 0 ||
		    l.host[i].pref != l2.host[i].pref)
			abort();

	if (l.n > MX_MAX_HOSTS || (st == MX_OK) != (l.n > 0))
		abort();
	if (st == MX_NULL) {
		if (nrr != 1 || (strcmp(rr[0].name, "") != 0 &&
		    strcmp(rr[0].name, ".") != 0))
			abort();
		return;
	}

	/* recompute what the result must be */
	for (i = 0; i < nrr; i++) {
		valid[i] = mx_name_normalize(rr[i].name, strlen(rr[i].name),
		    norm[i]);
		if (!valid[i]) {
			nbad++;
			continue;
		}
		if (is_self_name(norm[i], selfn, nself) &&
		    (!self_seen || rr[i].pref < self_pref)) {
			self_pref = rr[i].pref;
			self_seen = 1;
		}
	}
	if (nbad != l.nbad || self_seen != (int)l.self_seen ||
	    (self_seen && self_pref != l.self_pref))
		abort();
	if (st == MX_LOOP && !self_seen)
		abort();
	for (i = 0; i < nrr; i++) {
		int first = 1;

		if (!valid[i] || is_self_name(norm[i], selfn, nself) ||
		    (self_seen && rr[i].pref >= self_pref))
			continue;
		for (j = 0; j < i && first; j++)
			if (valid[j] && strcmp(norm[i], norm[j]) == 0 &&
			    !(self_seen && rr[j].pref >= self_pref))
				first = 0;
		eligible += first;
	}
	if (l.n != (eligible < MX_MAX_HOSTS ? eligible : MX_MAX_HOSTS))
		abort();

	for (i = 0; i < l.n; i++) {
		char again[MX_NAME_MAX + 1];
		int found = 0;

		if (i > 0 && l.host[i].pref < l.host[i - 1].pref)
			abort();
		if (!mx_name_normalize(l.host[i].name, strlen(l.host[i].name),
		    again) || strcmp(again, l.host[i].name) != 0)
			abort();
		if (is_self_name(l.host[i].name, selfn, nself))
			abort();
		if (self_seen && l.host[i].pref >= self_pref)
			abort();
		for (j = 0; j < i; j++)
			if (strcmp(l.host[i].name, l.host[j].name) == 0)
				abort();
		for (j = 0; j < nrr && !found; j++)
			found = valid[j] && rr[j].pref == l.host[i].pref &&
			    strcmp(norm[j], l.host[i].name) == 0;
		if (!found)
			abort();
	}
}

static void check_addrs(const struct mx_addr *in, size_t nin,
    const struct mx_self *self)
{
	static struct mx_addr a[MAX_ADDR];
	unsigned best = 0;
	size_t n = nin, i, j, k, eligible = 0;
	int seen = 0;
	bool self_seen;
	enum mx_status st;

	for (i = 0; i < nin; i++)
		for (k = 0; k < self->naddrs; k++)
			if (mx_addr_equal(&in[i].sa, &self->addrs[k]) &&
			    (!seen || in[i].pref < best)) {
				best = in[i].pref;
				seen = 1;
			}
	for (i = 0; i < nin; i++) {
		int first = 1;

		if (seen && in[i].pref >= best)
			continue;
		for (j = 0; j < i && first; j++)
			if (!(seen && in[j].pref >= best) &&
			    mx_addr_equal(&in[i].sa, &in[j].sa))
				first = 0;
		eligible += first;
	}

	memcpy(a, in, nin * sizeof(*a));
	st = mx_filter_addrs(a, &n, self, &self_seen);
	if (n > MX_MAX_ADDRS || (st == MX_OK) != (n > 0) ||
	    self_seen != (seen != 0) || (st == MX_LOOP && !seen) ||
	    (st == MX_NONE && (seen || eligible > 0)))
		abort();
	if (n != (eligible < MX_MAX_ADDRS ? eligible : MX_MAX_ADDRS))
		abort();
	for (i = 0; i < n; i++) {
		/* the order kept: host holds the input index */
		if (i > 0 && a[i].host <= a[i - 1].host)
			abort();
		if (memcmp(&a[i], &in[a[i].host], sizeof(a[i])) != 0)
			abort();
		for (k = 0; k < self->naddrs; k++)
			if (mx_addr_equal(&a[i].sa, &self->addrs[k]))
				abort();
		if (seen && a[i].pref >= best)
			abort();
		for (j = 0; j < i; j++)
			if (mx_addr_equal(&a[i].sa, &a[j].sa))
				abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char names[MAX_RR][300];
	static char selfn[MAX_SELF][MX_NAME_MAX + 1];
	static const char *selfp[MAX_SELF];
	static struct sockaddr_storage selfa[MAX_SELF];
	static struct mx_addr addrs[MAX_ADDR];
	struct mx_rr rr[MAX_RR];
	struct cursor c = { data, size };
	struct mx_self self;
	size_t nrr = 0, nself = 0, nselfa = 0, naddr = 0, len;
	uint32_t seed;

	seed = (uint32_t)u16(&c) << 16 | u16(&c);
	if (seed == 0)
		seed = 1;
	while (c.left > 0) {
		switch (u8(&c) % 4) {
		case 0:
			if (nrr == MAX_RR)
				return 0;
			rr[nrr].pref = u16(&c);
			len = u8(&c) + (size_t)(u8(&c) & 0x1f);
			if (len >= sizeof(names[0]))
				len = sizeof(names[0]) - 1;
			bytes(&c, names[nrr], len);
			names[nrr][len] = '\0';
			rr[nrr].name = names[nrr];
			nrr++;
			break;
		case 1: {
			char raw[256];

			len = u8(&c);
			bytes(&c, raw, len);
			if (nself < MAX_SELF &&
			    mx_name_normalize(raw, len, selfn[nself])) {
				selfp[nself] = selfn[nself];
				nself++;
			}
			break;
		}
		case 2:
			if (naddr == MAX_ADDR)
				return 0;
			memset(&addrs[naddr], 0, sizeof(addrs[naddr]));
			read_addr(&c, &addrs[naddr].sa);
			addrs[naddr].pref = u16(&c);
			addrs[naddr].host = (unsigned)naddr;
			naddr++;
			break;
		default:
			if (nselfa < MAX_SELF)
				read_addr(&c, &selfa[nselfa++]);
			break;
		}
	}
	self.names = selfp;
	self.nnames = nself;
	self.addrs = selfa;
	self.naddrs = nselfa;
	check_order(rr, nrr, &self, selfn, nself, seed);
	check_addrs(addrs, naddr, &self);
	return 0;
}
