/*
 * SUMMARY
 *	queue - the durable mail queue, behind one asynchronous interface
 * DESCRIPTION
 *	Messages and their recipients.  Every call is made on the event loop
 *	thread and returns at once; the work runs on the store's own threads
 *	(a writer that group-commits, a reader for queries) and the callback
 *	runs later on the loop thread.  Nothing here blocks the loop.
 *
 *	queue_put(): the message is appended to a segment file as one record
 *	(body and envelope, queue/envelope.h), the segment is fdatasync'ed,
 *	and then the callback reports QUEUE_OK: the record is the message's
 *	commit.  Its rows are committed just after (SQLite WAL,
 *	synchronous=NORMAL) with a watermark past its record; the records
 *	past the watermark are replayed into rows at start-up.  Queries that
 *	count or fetch mail wait for the rows of every message acknowledged
 *	before they were asked.  Every message that arrived while the
 *	previous batch was being stored shares the next one (group commit).
 *	queue_update() and queue_admin() commit with synchronous=FULL before
 *	they report.
 *
 *	Recipients carry their routed domain and its reversed-label key, so
 *	the work for one domain (ETRN, ATRN, etrnctl list) is an index range
 *	scan that follows that domain's mail, never the whole queue.
 *
 *	Backends implement struct queue_ops; queue_sqlite.c is the default.
 * OWNERSHIP
 *	queue_put() takes ownership of the struct queue_msg_in and everything
 *	in it (including body_fd).  Query results passed to callbacks are
 *	borrowed for the duration of the callback.
 */
#ifndef ETRND_QUEUE_H
#define ETRND_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "util/buf.h"

struct event_base;
struct config;

enum queue_status {
	QUEUE_OK = 0,
	QUEUE_ETEMP,		/* store error: 451 4.3.0 */
	QUEUE_ENOSPC,		/* disk full or over the reserve: 452 4.3.1 */
	QUEUE_ENOENT,		/* no such message */
	QUEUE_EINVAL,		/* bad argument */
};

/* Recipient states, as stored. */
enum queue_rstate {
	QUEUE_R_QUEUED = 0,
	QUEUE_R_HELD = 1,
	QUEUE_R_DEFERRED = 2,
	QUEUE_R_DELIVERED = 3,
	QUEUE_R_FAILED = 4,
	QUEUE_R_CORRUPT = 5,	/* its body is damaged or missing: quarantined,
				 * kept for the operator, never sent */
};

struct queue_rcpt_in {
	char *addr;		/* local@domain as received */
	char *domain;		/* routed domain, lower case */
	unsigned notify;	/* SMTP_NOTIFY_* bits, 0 when not given */
	char *orcpt;		/* decoded "type;addr" or NULL */
	int state;		/* QUEUE_R_QUEUED or QUEUE_R_HELD */
};

struct queue_msg_in {
	uint64_t id;		/* idgen_next() */
	char *sender;		/* "" for the null sender */
	char *envid;		/* or NULL */
	int ret;		/* enum smtp_ret */
	int body8;		/* enum smtp_body */
	char *client;		/* client address, for etrnctl show */
	char *helo;
	time_t arrival;
	struct queue_rcpt_in *rcpts;
	size_t nrcpt;
	struct buf body;	/* the first part of the body (or all of it) */
	int body_fd;		/* the rest, from offset 0, or -1 */
	uint64_t body_fd_len;
};

typedef void queue_put_cb(void *arg, enum queue_status st);
/* queue_text_cb - a query's result as tab-separated lines, one per row */
typedef void queue_text_cb(void *arg, enum queue_status st,
    const struct buf *rows);

struct queue;

/*
 * queue_open - open (create) the store under dir, recover, start the
 * threads; mail is refused while the file system has under min_free bytes
 * free.  Runs at start-up, before the loop; may block.  NULL on error
 * with a message in err.
 */
struct queue *queue_open(const char *dir, uint64_t min_free,
    struct event_base *base, struct buf *err);
/* queue_close - finish every pending commit, stop the threads, close. */
void queue_close(struct queue *q);

void queue_msg_free(struct queue_msg_in *m);

void queue_put(struct queue *q, struct queue_msg_in *m, queue_put_cb *cb,
    void *arg);

/*
 * queue_space_ok - whether a message of about size bytes may be accepted:
 * false when the queue's file system is under its free-space reserve
 * (checked by the writer after every batch, not on the loop).
 */
bool queue_space_ok(struct queue *q, uint64_t size);

/*
 * queue_set_commit_hook - fn(arg, domain) runs on the loop, after the
 * callbacks of a commit, once per domain that committed messages have
 * recipients due at once for (state QUEUED): the scheduler's cue.
 */
typedef void queue_hook_fn(void *arg, const char *domain);
void queue_set_commit_hook(struct queue *q, queue_hook_fn *fn, void *arg);

/* queue_max_id - the largest message id in the store (for idgen_floor) */
uint64_t queue_max_id(struct queue *q);

/*
 * Queries for etrnctl, answered as rows of tab-separated fields:
 *   summary: domain, messages, recipients, oldest arrival (unix time)
 *   list:    qid, arrival, size, sender, recipient, state, attempts, next try, domain
 *            (domain "" lists all; otherwise that domain and its subdomains)
 *   show:    one "key\tvalue" row per envelope field, then one
 *            "rcpt\taddr\tstate\tattempts\tnext\tlast reply" row per recipient
 */
void queue_summary(struct queue *q, queue_text_cb *cb, void *arg);
void queue_list(struct queue *q, const char *domain, queue_text_cb *cb,
    void *arg);
void queue_show(struct queue *q, uint64_t id, queue_text_cb *cb, void *arg);
/*
 * queue_shape - rows "domain<TAB>total<TAB>n0<TAB>...<TAB>n9": pending
 * messages per domain by age, in the buckets of Postfix's qshape
 * (minutes): 0-5, 5-10, 10-20, 20-40, 40-80, 80-160, 160-320, 320-640,
 * 640-1280, 1280 and older.  A scan of the pending rows: for the operator.
 */
void queue_shape(struct queue *q, time_t now, queue_text_cb *cb, void *arg);

/* --- delivery: selecting work, recording outcomes --- */

struct queue_rcpt {
	int64_t rid;		/* the recipient's row */
	char *addr;
	char *domain;
	unsigned notify;
	char *orcpt;		/* or NULL */
	int state;
	int attempts;
	bool warned;		/* a delay warning went to the sender */
};

struct queue_item {
	uint64_t id;
	char *sender;
	char *envid;		/* or NULL */
	int ret;
	int body8;
	time_t arrival;
	uint64_t size;
	struct queue_rcpt *rcpts;	/* the selected recipients only */
	size_t nrcpt;
	struct buf body;	/* when selected with bodies */
	int body_error;		/* 0, or errno (EBADMSG: a damaged record) */
};

struct queue_batch {
	struct queue_item *items;
	size_t n;
	bool more;		/* the limit was reached: fetch again after the last id */
};

/*
 * What to fetch: the pending (queued, held, deferred) recipients of one
 * domain, or of a domain and its subdomains, in message-id order after
 * after_id, at most limit messages.  due_only keeps queued and deferred
 * recipients whose next try is at or before now (retry scheduling; held
 * ones never are due); without it every pending recipient is taken
 * (ETRN, ATRN, etrnctl flush).
 */
struct queue_sel {
	const char *domain;
	bool subtree;
	bool due_only;
	time_t now;
	uint64_t after_id;
	uint64_t before_id;	/* 0, or only messages with smaller ids: ids
				 * are arrival times in microseconds, so this
				 * selects what arrived before a moment */
	size_t limit;
	bool bodies;
};

typedef void queue_batch_cb(void *arg, enum queue_status st,
    struct queue_batch *b);
/* queue_count_cb - messages and recipients pending, and the domains they
 * are for, one per line */
typedef void queue_count_cb(void *arg, enum queue_status st, uint64_t msgs,
    uint64_t rcpts, const struct buf *domains);

/* queue_fetch - the callback owns b and frees it with queue_batch_free() */
void queue_fetch(struct queue *q, const struct queue_sel *sel,
    queue_batch_cb *cb, void *arg);
void queue_batch_free(struct queue_batch *b);

/*
 * queue_count - messages and recipients pending for a set of domains (each
 * message counted once), or (subtree, one domain) for a domain and all
 * its subdomains: index lookups on the reversed-label key that follow
 * those domains' own rows, never a scan of the queue.
 */
void queue_count(struct queue *q, const char *const *domains, size_t n,
    bool subtree, queue_count_cb *cb, void *arg);

/* queue_due - rows "domain<TAB>earliest next try" of domains with due
 * recipients (at most limit), and one row "next<TAB>time" with the
 * earliest future try, for the scheduler's timer */
void queue_due(struct queue *q, time_t now, size_t limit, queue_text_cb *cb,
    void *arg);

/* queue_old_domains - domains with pending recipients in messages whose
 * id is below before_id (the lifetime sweep), one per line */
void queue_old_domains(struct queue *q, uint64_t before_id, queue_text_cb *cb,
    void *arg);

struct queue_outcome {
	int64_t rid;
	uint64_t msg;
	int state;		/* DELIVERED, DEFERRED, FAILED, QUEUED or HELD */
	time_t next_try;	/* DEFERRED */
	char *reply;		/* the last reply, escaped; owned; or NULL */
	bool count_attempt;	/* an attempt was made (attempts + 1) */
	bool warned;		/* a delay warning goes with this outcome */
};

/*
 * queue_update - record outcomes, and insert new messages (bounces) in
 * the same transaction, so a failure and its DSN are committed together.
 * A message whose recipients are all delivered or failed is removed, its
 * body's segment released.  Takes ownership of o (replies included) and
 * of each message in dsns.
 */
void queue_update(struct queue *q, struct queue_outcome *o, size_t n,
    struct queue_msg_in **dsns, size_t ndsn, queue_put_cb *cb, void *arg);

/* --- the operator's changes (etrnctl) --- */

enum queue_admin_op {
	QUEUE_ADMIN_HOLD,	/* queued and deferred recipients: held */
	QUEUE_ADMIN_RELEASE,	/* held recipients: queued, due now */
	QUEUE_ADMIN_REQUEUE,	/* queued and deferred recipients: due now */
	QUEUE_ADMIN_DELETE,	/* a message, without a DSN */
};

/*
 * queue_admin - apply op to a domain (domain set, id 0) or to one message
 * (domain NULL).  The callback gets the number of recipients changed (in
 * rcpts) and, for RELEASE and REQUEUE, the domains now due, one per line.
 * A domain means that domain exactly (the unit the scheduler works on).
 */
void queue_admin(struct queue *q, enum queue_admin_op op, const char *domain,
    uint64_t id, queue_count_cb *cb, void *arg);

const char *queue_rstate_name(int st);
/* queue_body_damaged - whether a body_error means the record is damaged
 * or gone (quarantine), rather than a passing failure (retry) */
bool queue_body_damaged(int body_error);
const char *queue_status_text(enum queue_status st);

#endif
