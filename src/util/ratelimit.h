/*
 * SUMMARY
 *	ratelimit - events per key in a fixed time window
 * DESCRIPTION
 *	Counts events per key (an address, an account name) in windows of a
 *	fixed length; a key's count starts again when its window is over (or
 *	the clock went back).  The table holds at most max_keys keys: past
 *	that, expired entries are dropped, and if none is, the oldest window
 *	goes, so memory stays bounded whatever a client sends.
 * OWNERSHIP
 *	Keys are copied.
 */
#ifndef ETRND_UTIL_RATELIMIT_H
#define ETRND_UTIL_RATELIMIT_H

#include <stddef.h>
#include <time.h>

struct ratelimit;

struct ratelimit *ratelimit_new(unsigned window, size_t max_keys);
void ratelimit_free(struct ratelimit *r);
/* ratelimit_add - count one event; the count in the key's window */
unsigned ratelimit_add(struct ratelimit *r, const void *key, size_t len,
    time_t now);
/* ratelimit_get - the count in the key's window, adding nothing */
unsigned ratelimit_get(struct ratelimit *r, const void *key, size_t len,
    time_t now);

#endif
