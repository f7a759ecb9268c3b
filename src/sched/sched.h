/*
 * SUMMARY
 *	sched - when mail leaves: retries, flushes, concurrency
 * DESCRIPTION
 *	The scheduler decides when; the queue stores, smtpc_deliver sends.
 *	Work is per recipient domain: one run at a time per domain (a flush
 *	asked for while one runs joins it), and at most a fixed number of
 *	domains delivering at once.  A run fetches the domain's recipients in
 *	batches in message-id order, hands each batch to the delivery engine,
 *	turns the results into outcomes (delivered; deferred with exponential
 *	backoff, or held again in a hold domain; failed, with a DSN committed
 *	in the same transaction; expired past the domain's lifetime) and
 *	records them before fetching the next batch.  Nothing is ever read
 *	whole into memory.
 *
 *	Retry runs take only recipients that are due; a flush (ETRN, ATRN's
 *	cousin etrnctl flush) takes every pending recipient of the domain,
 *	held or deferred.  New mail for a retry-mode domain starts a run at
 *	once.  After a restart, whatever was in flight is still queued (it was
 *	never marked) and is simply tried again.
 * OWNERSHIP
 *	The scheduler holds a reference on the configuration.
 */
#ifndef ETRND_SCHED_H
#define ETRND_SCHED_H

#include <stdbool.h>

#include "queue/queue.h"

struct config;
struct event_base;
struct queue;
struct smtpc_deliver;
struct smtpc_result;
struct sched;

enum sched_flush {
	SCHED_FLUSH_STARTED,	/* a run began */
	SCHED_FLUSH_JOINED,	/* one was running: it will take everything */
	SCHED_FLUSH_BUSY,	/* too many runs at once: try later (458) */
};

struct sched *sched_new(struct event_base *base, struct config *cfg,
    struct queue *q, struct smtpc_deliver *d);
/* sched_start - begin the retry timer */
void sched_start(struct sched *s);
/* sched_kick - mail due at once was committed for domain (a
 * queue_hook_fn): start a run, or have the running one look again */
void sched_kick(void *s, const char *domain);
/* sched_flush - deliver every pending recipient of domain now */
enum sched_flush sched_flush(struct sched *s, const char *domain);
/* sched_runs - rows "domain<TAB>flush|retry|atrn" of the runs going on */
void sched_runs(const struct sched *s, struct buf *out);

/* sched_busy - a run is going on for domain */
bool sched_busy(const struct sched *s, const char *domain);
/*
 * sched_claim - reserve domain for a session that delivers it itself (an
 * ATRN reversal): false when a run or another claim holds it.  A flush
 * asked for meanwhile joins the claim.  sched_unclaim() gives it back.
 */
bool sched_claim(struct sched *s, const char *domain);
void sched_unclaim(struct sched *s, const char *domain);

/*
 * sched_record - turn delivery results into recorded outcomes, as a run
 * does (delivered; deferred, or held in a hold or ODMR domain; failed or
 * expired with a DSN in the same commit).  Takes b and results; cb(arg)
 * once the outcomes are committed (or not: see the status).
 */
void sched_record(struct sched *s, const char *domain, struct queue_batch *b,
    struct smtpc_result **results, queue_put_cb *cb, void *arg);

/* sched_sweep_now - return expired mail now (also runs by itself every
 * ten minutes): recipients waiting longer than their domain's lifetime
 * fail with 4.4.7 and a DSN */
void sched_sweep_now(struct sched *s);

/* sched_stop - start no more runs; done() once every run has ended */
void sched_stop(struct sched *s, void (*done)(void *), void *arg);
/* sched_reload - new runs use cfg; running ones finish with theirs */
void sched_reload(struct sched *s, struct config *cfg);
void sched_free(struct sched *s);

#endif
