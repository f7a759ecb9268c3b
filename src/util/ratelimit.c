/* ratelimit - events per key in a fixed time window */
#include "util/ratelimit.h"
#include "util/xalloc.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define RATELIMIT_BUCKETS 1024

struct rl_entry {
	struct rl_entry *next;
	time_t start;
	unsigned count;
	size_t len;
	unsigned char key[];
};

struct ratelimit {
	unsigned window;
	size_t max_keys;
	size_t nkeys;
	struct rl_entry *b[RATELIMIT_BUCKETS];
};

struct ratelimit *ratelimit_new(unsigned window, size_t max_keys)
{
	struct ratelimit *r = xcalloc(1, sizeof(*r));

	r->window = window;
	r->max_keys = max_keys ? max_keys : 1;
	return r;
}

static void rl_drop(struct ratelimit *r, bool all, time_t now)
{
	struct rl_entry **pp, *e;
	size_t i;

	for (i = 0; i < RATELIMIT_BUCKETS; i++) {
		for (pp = &r->b[i]; (e = *pp) != NULL;) {
			if (all || now - e->start >= (time_t)r->window ||
			    now < e->start) {
				*pp = e->next;
				free(e);
				r->nkeys--;
			} else {
				pp = &e->next;
			}
		}
	}
}

void ratelimit_free(struct ratelimit *r)
{
	if (r == NULL)
		return;
	rl_drop(r, true, 0);
	free(r);
}

static struct rl_entry *rl_find(struct ratelimit *r, const void *key,
    size_t len, time_t now, bool create)
{
	const unsigned char *k = key;
	uint32_t h = 2166136261u;
	struct rl_entry *e;
	size_t i;

	for (i = 0; i < len; i++)
		h = (h ^ k[i]) * 16777619u;
	h %= RATELIMIT_BUCKETS;
	for (e = r->b[h]; e; e = e->next)
		if (e->len == len && memcmp(e->key, key, len) == 0)
			break;
	if (e == NULL && create) {
		if (r->nkeys >= r->max_keys) {
			rl_drop(r, false, now);
			if (r->nkeys >= r->max_keys)
				rl_drop(r, true, now);	/* a flood: start over */
		}
		e = xcalloc(1, sizeof(*e) + len);
		e->len = len;
		memcpy(e->key, key, len);
		e->start = now;
		e->next = r->b[h];
		r->b[h] = e;
		r->nkeys++;
	}
	if (e && (now - e->start >= (time_t)r->window || now < e->start)) {
		e->start = now;
		e->count = 0;
	}
	return e;
}

unsigned ratelimit_add(struct ratelimit *r, const void *key, size_t len,
    time_t now)
{
	return ++rl_find(r, key, len, now, true)->count;
}

unsigned ratelimit_get(struct ratelimit *r, const void *key, size_t len,
    time_t now)
{
	struct rl_entry *e = rl_find(r, key, len, now, false);

	return e ? e->count : 0;
}
