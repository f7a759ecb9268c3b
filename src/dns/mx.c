/* mx - which MX hosts and addresses to try (RFC 5321 5.1, RFC 7505) */
#include "dns/mx.h"
#include "util/strutil.h"
#include "util/xalloc.h"

#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

/* A record that survived the name checks: where it is and its preference. */
struct mx_cand {
	size_t idx;
	unsigned pref;
};

bool mx_name_normalize(const char *name, size_t len,
    char out[MX_NAME_MAX + 1])
{
	size_t i, label = 0;

	out[0] = '\0';
	if (len > 0 && name[len - 1] == '.')
		len--;
	if (len == 0 || len > MX_NAME_MAX)
		return false;
	for (i = 0; i < len; i++) {
		char c = ascii_tolower(name[i]);

		if (c == '.') {
			if (label == 0)
				return false;
			label = 0;
		} else if (ascii_isalnum(c) || c == '-' || c == '_') {
			if (++label > 63)
				return false;
		} else {
			/* NUL, space, '\\' (c-ares escapes), anything else */
			out[0] = '\0';
			return false;
		}
		out[i] = c;
	}
	if (label == 0) {
		out[0] = '\0';
		return false;
	}
	out[len] = '\0';
	return true;
}

/* mx_is_root - the empty name of a null MX: "" or "." */
static bool mx_is_root(const char *name)
{
	return name[0] == '\0' || (name[0] == '.' && name[1] == '\0');
}

/* mx_is_self_name - a normalised name equals one of ours */
static bool mx_is_self_name(const char *name, const struct mx_self *self)
{
	size_t i, len = strlen(name);

	if (self == NULL)
		return false;
	for (i = 0; i < self->nnames; i++) {
		const char *s = self->names[i];
		size_t sl;

		if (s == NULL)
			continue;
		sl = strlen(s);
		if (sl > 0 && s[sl - 1] == '.')
			sl--;
		if (sl > 0 && sl == len && str_caseprefix(s, sl, name))
			return true;
	}
	return false;
}

/* mx_cand_cmp - by preference, then DNS order (qsort is not stable) */
static int mx_cand_cmp(const void *a, const void *b)
{
	const struct mx_cand *x = a, *y = b;

	if (x->pref != y->pref)
		return x->pref < y->pref ? -1 : 1;
	return (x->idx > y->idx) - (x->idx < y->idx);
}

/* mx_shuffle - Fisher-Yates over c[0..n) */
static void mx_shuffle(struct mx_cand *c, size_t n, mx_rand_fn *rnd,
    void *arg)
{
	size_t i;

	if (rnd == NULL)
		return;
	for (i = n; i > 1; i--) {
		size_t j = (size_t)(rnd(arg) % (uint32_t)i);
		struct mx_cand t = c[i - 1];

		c[i - 1] = c[j];
		c[j] = t;
	}
}

/* mx_list_add - append a normalised name unless it is already listed */
static void mx_list_add(struct mx_list *out, const char *name, unsigned pref)
{
	size_t i;

	for (i = 0; i < out->n; i++)
		if (strcmp(out->host[i].name, name) == 0)
			return;
	memcpy(out->host[out->n].name, name, strlen(name) + 1);
	out->host[out->n].pref = pref;
	out->n++;
}

enum mx_status mx_order(const struct mx_rr *rr, size_t n,
    const struct mx_self *self, mx_rand_fn *rnd, void *rnd_arg,
    struct mx_list *out)
{
	char name[MX_NAME_MAX + 1];
	struct mx_cand *cand;
	size_t i, ncand = 0;

	memset(out, 0, sizeof(*out));
	if (n == 0)
		return MX_NONE;
	/*
	 * RFC 7505 defines the null MX as the only MX record, preference 0
	 * and the root name.  A lone root name at another preference means
	 * the same to us: there is no host to deliver to.
	 */
	if (n == 1 && rr[0].name != NULL && mx_is_root(rr[0].name))
		return MX_NULL;

	/* First pass: the valid names, and our best preference. */
	cand = xcalloc(n, sizeof(*cand));
	for (i = 0; i < n; i++) {
		if (rr[i].name == NULL ||
		    !mx_name_normalize(rr[i].name, strlen(rr[i].name), name)) {
			out->nbad++;
			continue;
		}
		if (mx_is_self_name(name, self)) {
			if (!out->self_seen || rr[i].pref < out->self_pref)
				out->self_pref = rr[i].pref;
			out->self_seen = true;
			continue;
		}
		cand[ncand].idx = i;
		cand[ncand].pref = rr[i].pref;
		ncand++;
	}
	/* RFC 5321 5.1: only MX better than our own best one may be used. */
	if (out->self_seen) {
		size_t k = 0;

		for (i = 0; i < ncand; i++)
			if (cand[i].pref < out->self_pref)
				cand[k++] = cand[i];
		ncand = k;
	}
	qsort(cand, ncand, sizeof(*cand), mx_cand_cmp);

	/*
	 * Shuffle each run of equal preferences before taking names from
	 * it, so that when MX_MAX_HOSTS cuts a run, the names kept are a
	 * random choice too.  Runs past the cut are never touched.
	 */
	for (i = 0; i < ncand && out->n < MX_MAX_HOSTS;) {
		size_t end = i + 1, k;

		while (end < ncand && cand[end].pref == cand[i].pref)
			end++;
		mx_shuffle(cand + i, end - i, rnd, rnd_arg);
		for (k = i; k < end && out->n < MX_MAX_HOSTS; k++) {
			const struct mx_rr *r = &rr[cand[k].idx];

			mx_name_normalize(r->name, strlen(r->name), name);
			mx_list_add(out, name, r->pref);
		}
		i = end;
	}
	free(cand);

	if (out->n > 0)
		return MX_OK;
	return out->self_seen ? MX_LOOP : MX_NONE;
}

/* mx_addr_key - the 16-byte IPv6 form of an address (IPv4 mapped) */
static bool mx_addr_key(const struct sockaddr_storage *ss, unsigned char k[16])
{
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const void *)ss;

		memset(k, 0, 10);
		k[10] = k[11] = 0xff;
		memcpy(k + 12, &s4->sin_addr, 4);
		return true;
	}
	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const void *)ss;

		memcpy(k, &s6->sin6_addr, 16);
		return true;
	}
	return false;
}

bool mx_addr_equal(const struct sockaddr_storage *x,
    const struct sockaddr_storage *y)
{
	unsigned char a[16], b[16];

	if (!mx_addr_key(x, a) || !mx_addr_key(y, b))
		return false;
	return memcmp(a, b, 16) == 0;
}

/* mx_is_self_addr - the address is one of ours */
static bool mx_is_self_addr(const struct sockaddr_storage *sa,
    const struct mx_self *self)
{
	size_t i;

	if (self == NULL)
		return false;
	for (i = 0; i < self->naddrs; i++)
		if (mx_addr_equal(sa, &self->addrs[i]))
			return true;
	return false;
}

enum mx_status mx_filter_addrs(struct mx_addr *a, size_t *n,
    const struct mx_self *self, bool *self_seen)
{
	unsigned char key[16];
	bool seen = false;
	unsigned best = 0;
	size_t i, j, k = 0;

	for (i = 0; i < *n; i++) {
		if (mx_is_self_addr(&a[i].sa, self) &&
		    (!seen || a[i].pref < best)) {
			best = a[i].pref;
			seen = true;
		}
	}
	for (i = 0; i < *n && k < MX_MAX_ADDRS; i++) {
		bool dup = false;

		if (!mx_addr_key(&a[i].sa, key))
			continue;
		if (seen && a[i].pref >= best)
			continue;
		for (j = 0; j < k && !dup; j++)
			dup = mx_addr_equal(&a[j].sa, &a[i].sa);
		if (dup)
			continue;
		if (k != i)
			a[k] = a[i];
		k++;
	}
	*n = k;
	if (self_seen != NULL)
		*self_seen = seen;
	if (k > 0)
		return MX_OK;
	return seen ? MX_LOOP : MX_NONE;
}
