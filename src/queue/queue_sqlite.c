/*
 * queue_sqlite - the default queue store: segment files for bodies, SQLite
 * for envelopes, recipients and the per-domain index.
 *
 * Threads: the writer owns the segment writer and one SQLite connection and
 * runs group commits; the reader owns a second connection (WAL lets it read
 * while the writer commits) and answers queries.  Finished jobs go back to
 * the loop through a list and one libevent event made active from the
 * worker thread (the base is created after evthread_use_pthreads()).
 */
#include "queue/queue.h"
#include "queue/envelope.h"
#include "queue/queue_check.h"
#include "queue/segment.h"
#include "log/log.h"
#include "metrics/metrics.h"
#include "util/fault.h"
#include "util/idgen.h"
#include "util/strutil.h"
#include "util/xalloc.h"

#include <dirent.h>
#include <errno.h>
#include <event2/event.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/resource.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#define QUEUE_BATCH_MAX 256		/* messages per commit at most */
#define QUEUE_BATCH_BYTES (16u << 20)	/* body bytes per commit at most */

enum qjob_kind {
	QJOB_PUT,		/* writer: new messages and/or outcomes */
	QJOB_ADMIN,		/* writer: an operator's change */
	QJOB_SUMMARY,		/* reader: the rest */
	QJOB_LIST,
	QJOB_SHOW,
	QJOB_FETCH,
	QJOB_COUNT,
	QJOB_DUE,
	QJOB_OLD,
	QJOB_SHAPE,
	QJOB_CHECK,		/* a step of the check after start-up (its own
				 * thread, so no reader waits behind it) */
};

struct qjob {
	struct qjob *next;
	enum qjob_kind kind;
	enum queue_status st;
	/* QJOB_PUT: messages to insert, outcomes to record */
	struct queue_msg_in **msgs;
	size_t nmsg;
	struct queue_outcome *out;
	size_t nout;
	queue_put_cb *put_cb;
	/* queries */
	queue_text_cb *text_cb;
	queue_batch_cb *batch_cb;
	queue_count_cb *count_cb;
	void *arg;
	char *domain;
	char **domains;		/* QJOB_COUNT */
	size_t ndomains;
	uint64_t id;
	struct queue_sel sel;
	enum queue_admin_op admin;
	struct queue_batch *batch;
	struct timespec enq;	/* when a write job was handed over */
	uint64_t wait_seq;	/* queries: run once this batch is committed */
	sqlite3 *db;		/* the connection of the reader running it */
	uint64_t count_msgs, count_rcpts;
	time_t now;
	struct buf rows;
};

struct qlist {
	struct qjob *head, **tail;
	size_t n;
};

/* where one message's body went in the segment files */
struct qloc {
	uint32_t seg;
	uint64_t off;
	uint32_t crc;
};

struct queue;

struct qreader {
	struct queue *q;
	pthread_t th;
	sqlite3 *db;
	pthread_cond_t cond;
	struct qlist jobs;
};

struct queue {
	char *dir;
	char *segdir;
	sqlite3 *wdb;
	struct qreader rd[2];	/* [0] bulk: fetches, listings; [1] quick:
				 * counts for ETRN/ATRN, due times, never
				 * stuck behind a fetch of bodies */
	struct segment_writer seg;
	pthread_t writer;
	pthread_mutex_t mu;
	pthread_cond_t wcond;
	struct qlist puts, done;
	bool stopping;
	struct event *done_ev;
	atomic_ullong free_bytes;
	uint64_t min_free;	/* refuse mail below this much free space */
	uint64_t max_id;
	queue_hook_fn *hook;
	void *hook_arg;
	sqlite3_stmt *ins_msg, *ins_rcpt, *upd_seg, *set_mark;
	sqlite3_stmt *upd_rcpt, *msg_pending, *msg_seg, *del_rcpts, *del_msg,
	    *seg_release, *seg_live, *seg_del;
	struct buf env;			/* the writer's envelope bytes */
	/*
	 * Batches acknowledged before their rows are committed (queue.h):
	 * queries wait until committed_seq reaches the acked_seq they saw
	 * when they were asked, so that they count every message that got
	 * its 250.  stalled: those rows could not be committed; they are in
	 * backlog and retried, and queries stop waiting for them.
	 */
	uint64_t acked_seq, committed_seq;
	bool stalled;
	pthread_cond_t ccond;
	struct qbacklog {
		struct qjob **jobs;
		size_t n, nmsg;
		struct qloc *locs;
	} backlog;
	bool sync_full;			/* the writer's synchronous setting */
	uint64_t checked, quarantined;	/* by the check after start-up */
	pthread_t checker;
	sqlite3 *cdb;			/* the checker's connection */
	bool checking;			/* the checker was started */
};

static const char queue_schema[] =
    "CREATE TABLE IF NOT EXISTS msg("
    " id INTEGER PRIMARY KEY,"
    " sender TEXT NOT NULL, envid TEXT, ret INTEGER NOT NULL,"
    " body8 INTEGER NOT NULL, arrival INTEGER NOT NULL,"
    " size INTEGER NOT NULL, client TEXT, helo TEXT,"
    " seg INTEGER NOT NULL, off INTEGER NOT NULL, crc INTEGER NOT NULL,"
    " live INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS rcpt("
    " id INTEGER PRIMARY KEY, msg INTEGER NOT NULL,"
    " addr TEXT NOT NULL, domain TEXT NOT NULL, rkey TEXT NOT NULL,"
    " state INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,"
    " next_try INTEGER NOT NULL DEFAULT 0, notify INTEGER NOT NULL,"
    " orcpt TEXT, last_reply TEXT, warned INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX IF NOT EXISTS rcpt_rkey ON rcpt(rkey, msg);"
    "CREATE INDEX IF NOT EXISTS rcpt_msg ON rcpt(msg);"
    "CREATE INDEX IF NOT EXISTS rcpt_due ON rcpt(state, next_try);"
    "CREATE TABLE IF NOT EXISTS seg(id INTEGER PRIMARY KEY,"
    " live INTEGER NOT NULL);"
    /* the watermark: every record before (seg, off) has its rows here */
    "CREATE TABLE IF NOT EXISTS mark(k INTEGER PRIMARY KEY CHECK (k = 0),"
    " seg INTEGER NOT NULL, off INTEGER NOT NULL);"
    "PRAGMA user_version = 3;";

static void qlist_init(struct qlist *l)
{
	l->head = NULL;
	l->tail = &l->head;
	l->n = 0;
}

static void qlist_push(struct qlist *l, struct qjob *j)
{
	j->next = NULL;
	*l->tail = j;
	l->tail = &j->next;
	l->n++;
}

static struct qjob *qlist_pop(struct qlist *l)
{
	struct qjob *j = l->head;

	if (j == NULL)
		return NULL;
	l->head = j->next;
	if (l->head == NULL)
		l->tail = &l->head;
	l->n--;
	return j;
}

static void qjob_free(struct qjob *j)
{
	size_t i;

	for (i = 0; i < j->nmsg; i++)
		queue_msg_free(j->msgs[i]);
	free(j->msgs);
	for (i = 0; i < j->nout; i++)
		free(j->out[i].reply);
	free(j->out);
	free(j->domain);
	for (i = 0; i < j->ndomains; i++)
		free(j->domains[i]);
	free(j->domains);
	queue_batch_free(j->batch);
	buf_free(&j->rows);
	free(j);
}

/* queue_finish - hand a job back to the loop thread */
static void queue_finish(struct queue *q, struct qjob *j)
{
	pthread_mutex_lock(&q->mu);
	qlist_push(&q->done, j);
	pthread_mutex_unlock(&q->mu);
	event_active(q->done_ev, EV_READ, 0);
}

/* queue_hook_domains - on the writer: the domains a stored job's
 * messages have recipients due at once for (state QUEUED), once each,
 * for the scheduler's cue (queue_set_commit_hook) */
static void queue_hook_domains(struct qjob *j)
{
	size_t i, k, p;

	for (i = 0; i < j->nmsg; i++) {
		const struct queue_msg_in *m = j->msgs[i];

		for (k = 0; k < m->nrcpt; k++) {
			const char *d = m->rcpts[k].domain;

			if (m->rcpts[k].state != QUEUE_R_QUEUED)
				continue;
			for (p = 0; p < j->ndomains; p++)
				if (strcmp(j->domains[p], d) == 0)
					break;
			if (p < j->ndomains)
				continue;
			j->domains = xrealloc(j->domains,
			    (j->ndomains + 1) * sizeof(*j->domains));
			j->domains[j->ndomains++] = xstrdup(d);
		}
	}
}

void queue_set_commit_hook(struct queue *q, queue_hook_fn *fn, void *arg)
{
	q->hook = fn;
	q->hook_arg = arg;
}

/* queue_done_cb - on the loop: run the callbacks of finished jobs */
static void queue_done_cb(evutil_socket_t fd, short what, void *arg)
{
	struct queue *q = arg;
	struct qlist l;
	struct qjob *j;
	size_t i;

	pthread_mutex_lock(&q->mu);
	l = q->done;
	qlist_init(&q->done);
	pthread_mutex_unlock(&q->mu);
	if (l.head == NULL)
		return;
	l.tail = NULL;
	while ((j = l.head) != NULL) {
		l.head = j->next;
		switch (j->kind) {
		case QJOB_PUT:
			if (j->put_cb)
				j->put_cb(j->arg, j->st);
			for (i = 0; j->st == QUEUE_OK && q->hook &&
			    i < j->ndomains; i++)
				q->hook(q->hook_arg, j->domains[i]);
			break;
		case QJOB_FETCH:
			j->batch_cb(j->arg, j->st, j->batch);
			j->batch = NULL;	/* the callback owns it */
			break;
		case QJOB_ADMIN:
		case QJOB_COUNT:
			j->count_cb(j->arg, j->st, j->count_msgs,
			    j->count_rcpts, &j->rows);
			break;
		default:
			j->text_cb(j->arg, j->st, &j->rows);
			break;
		}
		qjob_free(j);
	}
}

static void queue_refresh_space(struct queue *q)
{
	struct statvfs sv;

	if (statvfs(q->dir, &sv) == 0)
		atomic_store(&q->free_bytes,
		    (unsigned long long)sv.f_bavail * sv.f_frsize);
}

bool queue_space_ok(struct queue *q, uint64_t size)
{
	unsigned long long f = atomic_load(&q->free_bytes);

	if (f < q->min_free)
		return false;
	return size <= f - q->min_free;
}

uint64_t queue_max_id(struct queue *q)
{
	return q->max_id;
}

static enum queue_status queue_sql_status(int rc)
{
	return rc == SQLITE_FULL || rc == SQLITE_IOERR_WRITE ?
	    QUEUE_ENOSPC : QUEUE_ETEMP;
}

static int queue_step_done(sqlite3_stmt *s)
{
	int rc = sqlite3_step(s);

	return rc == SQLITE_DONE || rc == SQLITE_ROW ? SQLITE_OK : rc;
}

/* queue_insert_msg - the rows of one stored message */
static int queue_insert_msg(struct queue *q, const struct queue_msg_in *m,
    const struct qloc *loc, struct buf *rkey)
{
	sqlite3_stmt *s = q->ins_msg;
	size_t k;
	int rc;

	sqlite3_reset(s);
	sqlite3_bind_int64(s, 1, (sqlite3_int64)m->id);
	sqlite3_bind_text(s, 2, m->sender, -1, SQLITE_STATIC);
	if (m->envid)
		sqlite3_bind_text(s, 3, m->envid, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(s, 3);
	sqlite3_bind_int(s, 4, m->ret);
	sqlite3_bind_int(s, 5, m->body8);
	sqlite3_bind_int64(s, 6, (sqlite3_int64)m->arrival);
	sqlite3_bind_int64(s, 7, (sqlite3_int64)(m->body.len + m->body_fd_len));
	sqlite3_bind_text(s, 8, m->client ? m->client : "", -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 9, m->helo ? m->helo : "", -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 10, loc->seg);
	sqlite3_bind_int64(s, 11, (sqlite3_int64)loc->off);
	sqlite3_bind_int64(s, 12, loc->crc);
	sqlite3_bind_int64(s, 13, (sqlite3_int64)m->nrcpt);
	if ((rc = queue_step_done(s)) != SQLITE_OK)
		return rc;
	for (k = 0; k < m->nrcpt; k++) {
		const struct queue_rcpt_in *r = &m->rcpts[k];

		s = q->ins_rcpt;
		buf_reset(rkey);
		domain_rkey(rkey, r->domain, strlen(r->domain));
		sqlite3_reset(s);
		sqlite3_bind_int64(s, 1, (sqlite3_int64)m->id);
		sqlite3_bind_text(s, 2, r->addr, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 3, r->domain, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 4, buf_cstr(rkey), -1, SQLITE_TRANSIENT);
		sqlite3_bind_int(s, 5, r->state);
		sqlite3_bind_int(s, 6, (int)r->notify);
		if (r->orcpt)
			sqlite3_bind_text(s, 7, r->orcpt, -1, SQLITE_STATIC);
		else
			sqlite3_bind_null(s, 7);
		if ((rc = queue_step_done(s)) != SQLITE_OK)
			return rc;
	}
	s = q->upd_seg;
	sqlite3_reset(s);
	sqlite3_bind_int64(s, 1, loc->seg);
	return queue_step_done(s);
}

/*
 * queue_retire_msg - a message none of whose recipients is pending any
 * more: remove its rows and release its body.  A segment that no message
 * uses is removed in the same transaction and its file unlinked after the
 * commit (never the file the writer appends to).
 */
static int queue_retire_msg(struct queue *q, uint64_t id, uint32_t *freed,
    size_t *nfreed)
{
	sqlite3_stmt *s;
	int64_t seg, live;
	int rc;

	s = q->msg_pending;
	sqlite3_reset(s);
	sqlite3_bind_int64(s, 1, (sqlite3_int64)id);
	if (sqlite3_step(s) != SQLITE_ROW) {
		sqlite3_reset(s);
		return SQLITE_ERROR;
	}
	live = sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	if (live > 0)
		return SQLITE_OK;	/* still has work */
	s = q->msg_seg;
	sqlite3_reset(s);
	sqlite3_bind_int64(s, 1, (sqlite3_int64)id);
	if (sqlite3_step(s) != SQLITE_ROW) {
		sqlite3_reset(s);
		return SQLITE_OK;	/* retired already */
	}
	seg = sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	s = q->del_rcpts;
	sqlite3_reset(s);
	sqlite3_bind_int64(s, 1, (sqlite3_int64)id);
	if ((rc = queue_step_done(s)) != SQLITE_OK)
		return rc;
	s = q->del_msg;
	sqlite3_reset(s);
	sqlite3_bind_int64(s, 1, (sqlite3_int64)id);
	if ((rc = queue_step_done(s)) != SQLITE_OK)
		return rc;
	s = q->seg_release;
	sqlite3_reset(s);
	sqlite3_bind_int64(s, 1, seg);
	if ((rc = queue_step_done(s)) != SQLITE_OK)
		return rc;
	s = q->seg_live;
	sqlite3_reset(s);
	sqlite3_bind_int64(s, 1, seg);
	live = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 1;
	sqlite3_reset(s);
	if (live <= 0 && (uint32_t)seg != q->seg.id) {
		s = q->seg_del;
		sqlite3_reset(s);
		sqlite3_bind_int64(s, 1, seg);
		if ((rc = queue_step_done(s)) != SQLITE_OK)
			return rc;
		freed[(*nfreed)++] = (uint32_t)seg;
	}
	return SQLITE_OK;
}

static int queue_apply_outcome(struct queue *q, const struct queue_outcome *o)
{
	sqlite3_stmt *s = q->upd_rcpt;

	sqlite3_reset(s);
	sqlite3_bind_int64(s, 1, o->rid);
	sqlite3_bind_int(s, 2, o->state);
	sqlite3_bind_int64(s, 3, (sqlite3_int64)o->next_try);
	if (o->reply)
		sqlite3_bind_text(s, 4, o->reply, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(s, 4);
	sqlite3_bind_int(s, 5, o->count_attempt ? 1 : 0);
	sqlite3_bind_int(s, 6, o->warned ? 1 : 0);
	return queue_step_done(s);
}

static int queue_rows(sqlite3_stmt *s, struct buf *out);

/* queue_admin_sql - the statement of an operator's change */
static const char *queue_admin_sql(enum queue_admin_op op, bool by_domain)
{
	switch (op) {
	case QUEUE_ADMIN_HOLD:
		return by_domain ?
		    "UPDATE rcpt SET state = 1 WHERE rkey = ?1 AND state IN (0, 2)" :
		    "UPDATE rcpt SET state = 1 WHERE msg = ?1 AND state IN (0, 2)";
	case QUEUE_ADMIN_RELEASE:
		return by_domain ?
		    "UPDATE rcpt SET state = 0, next_try = 0 WHERE rkey = ?1"
		    " AND state = 1" :
		    "UPDATE rcpt SET state = 0, next_try = 0 WHERE msg = ?1"
		    " AND state = 1";
	case QUEUE_ADMIN_REQUEUE:
		return by_domain ?
		    "UPDATE rcpt SET state = 0, next_try = 0 WHERE rkey = ?1"
		    " AND state IN (0, 2)" :
		    "UPDATE rcpt SET state = 0, next_try = 0 WHERE msg = ?1"
		    " AND state IN (0, 2, 5)";	/* a message: corrupt too */
	default:
		return "UPDATE rcpt SET state = 4,"
		    " last_reply = 'deleted by the operator'"
		    " WHERE msg = ?1 AND state IN (0, 1, 2, 5)";
	}
}

/* queue_apply_admin - one operator's change, inside the batch's txn */
static int queue_apply_admin(struct queue *q, struct qjob *j, uint32_t *freed,
    size_t *nfreed)
{
	struct buf key = BUF_INIT;
	sqlite3_stmt *s;
	bool by_domain = j->domain != NULL;
	int rc;

	rc = sqlite3_prepare_v2(q->wdb, queue_admin_sql(j->admin, by_domain),
	    -1, &s, NULL);
	if (rc != SQLITE_OK)
		return rc;
	if (by_domain) {
		domain_rkey(&key, j->domain, strlen(j->domain));
		sqlite3_bind_text(s, 1, key.p, (int)key.len, SQLITE_TRANSIENT);
	} else {
		sqlite3_bind_int64(s, 1, (sqlite3_int64)j->id);
	}
	rc = queue_step_done(s);
	j->count_rcpts = (uint64_t)sqlite3_changes(q->wdb);
	sqlite3_finalize(s);
	buf_free(&key);
	if (rc != SQLITE_OK)
		return rc;
	if (j->admin == QUEUE_ADMIN_DELETE)
		return queue_retire_msg(q, j->id, freed, nfreed);
	if (j->admin == QUEUE_ADMIN_HOLD || j->count_rcpts == 0)
		return SQLITE_OK;
	if (by_domain) {
		buf_printf(&j->rows, "%s\n", j->domain);
		return SQLITE_OK;
	}
	rc = sqlite3_prepare_v2(q->wdb, "SELECT DISTINCT domain FROM rcpt"
	    " WHERE msg = ?1 AND state = 0", -1, &s, NULL);
	if (rc != SQLITE_OK)
		return rc;
	sqlite3_bind_int64(s, 1, (sqlite3_int64)j->id);
	rc = queue_rows(s, &j->rows);
	sqlite3_finalize(s);
	return rc;
}

/* queue_fault_points - pass the crash points of the tests (util/fault.h):
 * put for a batch with new messages, mark for one with outcomes */
static void queue_fault_points(struct qjob **jobs, size_t n, const char *put,
    const char *mark)
{
	bool msgs = false, outs = false;
	size_t i;

	for (i = 0; i < n; i++) {
		msgs |= jobs[i]->nmsg > 0;
		outs |= jobs[i]->nout > 0;
	}
	if (msgs)
		fault_point(put);
	if (outs)
		fault_point(mark);
}

/* queue_set_mark - the watermark: where the writer appends next */
static int queue_set_mark(struct queue *q)
{
	uint32_t seg;
	uint64_t off;

	segment_next_pos(&q->seg, &seg, &off);
	sqlite3_reset(q->set_mark);
	sqlite3_bind_int64(q->set_mark, 1, seg);
	sqlite3_bind_int64(q->set_mark, 2, (sqlite3_int64)off);
	return queue_step_done(q->set_mark);
}

/* queue_sync_level - the writer's synchronous setting for its next
 * transaction: FULL syncs the WAL at the commit, NORMAL leaves it to the
 * next FULL commit or checkpoint */
static int queue_sync_level(struct queue *q, bool full)
{
	int rc;

	if (q->sync_full == full)
		return SQLITE_OK;
	rc = sqlite3_exec(q->wdb, full ? "PRAGMA synchronous=FULL" :
	    "PRAGMA synchronous=NORMAL", NULL, NULL, NULL);
	if (rc == SQLITE_OK)
		q->sync_full = full;
	return rc;
}

/*
 * queue_rows_write - BEGIN, then every row of a batch, and the watermark
 * when it stores messages (nmsg).  full: the transaction will commit with
 * synchronous=FULL, else NORMAL.  On error it is rolled back.
 */
static int queue_rows_write(struct queue *q, struct qjob **jobs, size_t n,
    const struct qloc *locs, size_t nmsg, bool full, uint32_t *freed,
    size_t *nfreed)
{
	struct buf rkey = BUF_INIT;
	size_t i, k, li = 0;
	int rc;

	*nfreed = 0;
	if ((rc = queue_sync_level(q, full)) == SQLITE_OK)
		rc = sqlite3_exec(q->wdb, "BEGIN IMMEDIATE", NULL, NULL, NULL);
	for (i = 0; i < n && rc == SQLITE_OK; i++) {
		struct qjob *j = jobs[i];

		for (k = 0; k < j->nmsg && rc == SQLITE_OK; k++)
			rc = queue_insert_msg(q, j->msgs[k], &locs[li++], &rkey);
		for (k = 0; k < j->nout && rc == SQLITE_OK; k++)
			rc = queue_apply_outcome(q, &j->out[k]);
		for (k = 0; k < j->nout && rc == SQLITE_OK; k++) {
			if (k > 0 && j->out[k].msg == j->out[k - 1].msg)
				continue;
			rc = queue_retire_msg(q, j->out[k].msg, freed, nfreed);
		}
		if (j->kind == QJOB_ADMIN && rc == SQLITE_OK)
			rc = queue_apply_admin(q, j, freed, nfreed);
	}
	buf_free(&rkey);
	if (rc == SQLITE_OK && nmsg > 0)
		rc = queue_set_mark(q);
	if (rc != SQLITE_OK) {
		sqlite3_exec(q->wdb, "ROLLBACK", NULL, NULL, NULL);
		*nfreed = 0;
	}
	return rc;
}

/* queue_rows_commit - COMMIT what queue_rows_write wrote, with the
 * fault points of the batch's kind (early: acknowledged already); on
 * error it is rolled back */
static int queue_rows_commit(struct queue *q, struct qjob **jobs, size_t n,
    bool early)
{
	int rc = SQLITE_OK;

	if (early) {
		fault_delay("slow_rows", 1000);
		fault_point_after("after_ack", 500);
		if (fault_error("rows_error"))	/* as a failed commit */
			rc = SQLITE_IOERR;
	} else {
		queue_fault_points(jobs, n, "before_commit", "during_mark");
	}
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(q->wdb, "COMMIT", NULL, NULL, NULL);
	if (rc == SQLITE_OK)
		queue_fault_points(jobs, n, "after_commit", "after_mark");
	else
		sqlite3_exec(q->wdb, "ROLLBACK", NULL, NULL, NULL);
	return rc;
}

/*
 * queue_batch_rows - every row of a batch, in one transaction committed
 * with synchronous=FULL.  With nmsg new records, they are synced after the
 * inserts (their writing started before them) and before the commit; a
 * sync error goes to *seg_err.
 */
static int queue_batch_rows(struct queue *q, struct qjob **jobs, size_t n,
    const struct qloc *locs, size_t nmsg, int *seg_err, uint32_t *freed,
    size_t *nfreed)
{
	bool flush;
	int rc;

	rc = queue_rows_write(q, jobs, n, locs, nmsg, true, freed, nfreed);
	if (rc != SQLITE_OK)
		return rc;
	/* when flush comes back set, the COMMIT below is that flush */
	if (nmsg > 0 && (*seg_err = segment_sync(&q->seg, true, &flush)) != 0) {
		sqlite3_exec(q->wdb, "ROLLBACK", NULL, NULL, NULL);
		*nfreed = 0;
		return SQLITE_IOERR;
	}
	rc = queue_rows_commit(q, jobs, n, false);
	if (rc != SQLITE_OK)
		*nfreed = 0;
	return rc;
}

/* queue_batch_early - a batch of new messages only (no outcome, no
 * operator's change): acknowledged as soon as its records are durable */
static bool queue_batch_early(struct qjob **jobs, size_t n, size_t nmsg)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (jobs[i]->kind != QJOB_PUT || jobs[i]->nout > 0)
			return false;
	return nmsg > 0;
}

/* queue_done_ok - a job stored: its scheduler cue, the commit metric */
static void queue_done_ok(struct qjob *j)
{
	struct timespec now;

	queue_hook_domains(j);
	if (j->nmsg == 0)
		return;
	clock_gettime(CLOCK_MONOTONIC, &now);
	metrics_commit((double)(now.tv_sec - j->enq.tv_sec) +
	    (double)(now.tv_nsec - j->enq.tv_nsec) / 1e9);
}

/* queue_ack - report a job QUEUE_OK to the loop now, while the writer
 * keeps its messages to insert their rows */
static void queue_ack(struct queue *q, struct qjob *j)
{
	struct qjob *a = xcalloc(1, sizeof(*a));

	a->kind = QJOB_PUT;
	a->st = QUEUE_OK;
	a->put_cb = j->put_cb;
	a->arg = j->arg;
	a->domains = j->domains;
	a->ndomains = j->ndomains;
	j->domains = NULL;
	j->ndomains = 0;
	j->put_cb = NULL;
	queue_finish(q, a);
}

/* queue_set_committed - the acknowledged batches' rows are committed
 * (or, stalled, cannot be for now): waiting queries go on */
static void queue_set_committed(struct queue *q, bool stalled)
{
	pthread_mutex_lock(&q->mu);
	if (!stalled)
		q->committed_seq = q->acked_seq;
	q->stalled = stalled;
	pthread_cond_broadcast(&q->ccond);
	pthread_mutex_unlock(&q->mu);
}

/*
 * queue_retry_backlog - the rows of acknowledged messages that a commit
 * failed to store, again (FULL).  true once they are committed.  Their
 * records are durable and past the watermark, so a restart would replay
 * them too.
 */
static bool queue_retry_backlog(struct queue *q)
{
	struct qbacklog *b = &q->backlog;
	uint32_t freed;
	size_t i, nfreed;
	int e = 0, rc;

	if (b->n == 0)
		return true;
	rc = queue_batch_rows(q, b->jobs, b->n, b->locs, b->nmsg, &e, &freed,
	    &nfreed);
	if (rc != SQLITE_OK)
		return false;
	log_info("event=store_recovered messages=%zu", b->nmsg);
	for (i = 0; i < b->n; i++)
		qjob_free(b->jobs[i]);
	free(b->jobs);
	free(b->locs);
	memset(b, 0, sizeof(*b));
	queue_set_committed(q, false);
	return true;
}

/* queue_store_error - log an error of a batch and map it to a status */
static enum queue_status queue_store_error(struct queue *q, int e, int rc)
{
	if (e != 0) {
		log_err("event=store_error op=%s errno=%d error=%s",
		    rc == SQLITE_IOERR ? "fdatasync" : "append", e,
		    log_value(strerror(e), strlen(strerror(e))));
		return e == ENOSPC || e == EDQUOT || e == EFBIG ?
		    QUEUE_ENOSPC : QUEUE_ETEMP;
	}
	log_err("event=store_error op=commit sqlite=%d error=%s", rc,
	    log_value(sqlite3_errmsg(q->wdb), strlen(sqlite3_errmsg(q->wdb))));
	return queue_sql_status(rc);
}

/*
 * queue_commit_early - a batch of new messages whose records are durable
 * and whose rows are written, not committed: acknowledge every job, then
 * commit (NORMAL).  Rows that fail to commit go to the backlog, retried
 * before the next batch.
 */
static void queue_commit_early(struct queue *q, struct qjob **jobs, size_t n,
    struct qloc *locs, size_t nmsg)
{
	size_t i;
	int rc;

	fault_point("before_commit");	/* durable, not acknowledged */
	queue_refresh_space(q);	/* before the 250s: the next MAIL sees it */
	pthread_mutex_lock(&q->mu);
	q->acked_seq++;
	pthread_mutex_unlock(&q->mu);
	for (i = 0; i < n; i++) {
		queue_done_ok(jobs[i]);
		queue_ack(q, jobs[i]);
	}
	rc = queue_rows_commit(q, jobs, n, true);
	if (rc != SQLITE_OK) {
		(void)queue_store_error(q, 0, rc);
		q->backlog.jobs = xmalloc(n * sizeof(*jobs));
		memcpy(q->backlog.jobs, jobs, n * sizeof(*jobs));
		q->backlog.n = n;
		q->backlog.nmsg = nmsg;
		q->backlog.locs = locs;
		queue_set_committed(q, true);
		return;
	}
	queue_set_committed(q, false);
	for (i = 0; i < n; i++)
		qjob_free(jobs[i]);
	free(locs);
}

/*
 * queue_commit_batch - store a batch.  Every new message is appended to
 * the segment as one record (body and envelope), and their writing out
 * starts.  Meanwhile the rows are written in a transaction.  A batch of
 * new messages only is acknowledged once its records are synced, and its
 * transaction committed after, with synchronous=NORMAL
 * (queue_commit_early).  Any other batch (outcomes, bounces, an
 * operator's change) waits for its records' sync (segment_sync) and
 * commits with synchronous=FULL; only then are its jobs reported
 * QUEUE_OK.  When that sync leaves the flush to the commit (segment.h),
 * the commit provides it: SQLite syncs the WAL at every commit that
 * wrote, which flushes the device's cache after the records' writes have
 * completed.  After a failure, the watermark moves past the batch's
 * records, so that no restart replays messages that got 451 or 452.
 */
static void queue_commit_batch(struct queue *q, struct qjob **jobs, size_t n)
{
	enum queue_status fail = QUEUE_OK;
	struct qloc *locs;
	uint32_t *freed;
	size_t i, k, nmsg = 0, nout = 0, li = 0, nfreed = 0;
	bool early, flush;
	int e = 0, rc = SQLITE_OK;

	for (i = 0; i < n; i++) {
		nmsg += jobs[i]->nmsg;
		nout += jobs[i]->nout + (jobs[i]->kind == QJOB_ADMIN);
	}
	early = queue_batch_early(jobs, n, nmsg);
	if (!queue_retry_backlog(q)) {
		/* acknowledged rows still cannot be stored: no new work */
		for (i = 0; i < n; i++) {
			jobs[i]->st = QUEUE_ETEMP;
			queue_finish(q, jobs[i]);
		}
		return;
	}
	locs = xcalloc(nmsg + 1, sizeof(*locs));
	freed = xcalloc(nout + 1, sizeof(*freed));
	for (i = 0; i < n && e == 0; i++) {
		for (k = 0; k < jobs[i]->nmsg && e == 0; k++, li++) {
			struct queue_msg_in *m = jobs[i]->msgs[k];

			buf_reset(&q->env);
			envelope_encode(&q->env, m);
			e = segment_append(&q->seg, m->id, m->body.p,
			    m->body.len, m->body_fd, m->body_fd_len, q->env.p,
			    q->env.len, &locs[li].seg, &locs[li].off,
			    &locs[li].crc);
		}
	}
	if (e == 0 && nmsg > 0)
		e = segment_write_out(&q->seg);
	if (e == 0 && early) {
		/* the rows are written while the records are written out */
		rc = queue_rows_write(q, jobs, n, locs, nmsg, false, freed,
		    &nfreed);
		e = segment_sync(&q->seg, false, &flush);
		if (e == 0 && rc == SQLITE_OK) {
			free(freed);
			queue_commit_early(q, jobs, n, locs, nmsg);
			return;
		}
		if (e != 0 && rc == SQLITE_OK)
			sqlite3_exec(q->wdb, "ROLLBACK", NULL, NULL, NULL);
		if (e != 0)
			rc = SQLITE_IOERR;
	} else if (e == 0) {
		rc = queue_batch_rows(q, jobs, n, locs, nmsg, &e, freed,
		    &nfreed);
	}
	if (e != 0 || rc != SQLITE_OK)
		fail = queue_store_error(q, e, rc);
	/* records of messages that got 451/452 are never replayed */
	if (fail != QUEUE_OK && nmsg > 0 &&
	    queue_sync_level(q, true) == SQLITE_OK &&
	    queue_set_mark(q) != SQLITE_OK)
		log_err("event=store_error op=watermark error=%s",
		    log_value(sqlite3_errmsg(q->wdb),
		    strlen(sqlite3_errmsg(q->wdb))));
	for (i = 0; i < nfreed; i++) {
		if (segment_retire(&q->seg, freed[i]) != 0)
			log_warn("event=segment_unlink_error segment=%08X",
			    (unsigned)freed[i]);
	}
	free(locs);
	free(freed);
	queue_refresh_space(q);
	for (i = 0; i < n; i++) {
		jobs[i]->st = fail;
		if (fail == QUEUE_OK)
			queue_done_ok(jobs[i]);
		queue_finish(q, jobs[i]);
	}
}

static void *queue_writer_main(void *arg)
{
	struct queue *q = arg;
	struct qjob *jobs[QUEUE_BATCH_MAX];

	pthread_mutex_lock(&q->mu);
	for (;;) {
		size_t n = 0, bytes = 0, k;
		struct timespec ts;

		while (q->puts.n == 0 && !q->stopping) {
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += 5;
			if (pthread_cond_timedwait(&q->wcond, &q->mu, &ts) ==
			    ETIMEDOUT) {
				pthread_mutex_unlock(&q->mu);
				queue_refresh_space(q);
				(void)queue_retry_backlog(q);
				pthread_mutex_lock(&q->mu);
			}
		}
		if (q->puts.n == 0 && q->stopping)
			break;
		/* everything that arrived during the previous commit */
		while (n < QUEUE_BATCH_MAX && q->puts.head != NULL &&
		    (n == 0 || bytes < QUEUE_BATCH_BYTES)) {
			jobs[n] = qlist_pop(&q->puts);
			for (k = 0; k < jobs[n]->nmsg; k++)
				bytes += jobs[n]->msgs[k]->body.len +
				    jobs[n]->msgs[k]->body_fd_len;
			n++;
		}
		pthread_mutex_unlock(&q->mu);
		queue_commit_batch(q, jobs, n);
		segment_prepare(&q->seg);	/* after the batch's replies */
		pthread_mutex_lock(&q->mu);
	}
	pthread_mutex_unlock(&q->mu);
	log_thread_end();
	return NULL;
}

static void queue_write_job(struct queue *q, struct qjob *j)
{
	if (j->kind != QJOB_ADMIN)
		j->kind = QJOB_PUT;
	clock_gettime(CLOCK_MONOTONIC, &j->enq);
	pthread_mutex_lock(&q->mu);
	qlist_push(&q->puts, j);
	pthread_cond_signal(&q->wcond);
	pthread_mutex_unlock(&q->mu);
}

static void queue_write_job(struct queue *q, struct qjob *j);

void queue_admin(struct queue *q, enum queue_admin_op op, const char *domain,
    uint64_t id, queue_count_cb *cb, void *arg)
{
	struct qjob *j = xcalloc(1, sizeof(*j));

	j->kind = QJOB_ADMIN;
	j->admin = op;
	j->domain = domain ? xstrdup(domain) : NULL;
	j->id = id;
	j->count_cb = cb;
	j->arg = arg;
	queue_write_job(q, j);
}

static int queue_outcome_cmp(const void *a, const void *b)
{
	const struct queue_outcome *x = a, *y = b;

	return x->msg < y->msg ? -1 : x->msg > y->msg;
}

void queue_update(struct queue *q, struct queue_outcome *o, size_t n,
    struct queue_msg_in **dsns, size_t ndsn, queue_put_cb *cb, void *arg)
{
	struct qjob *j = xcalloc(1, sizeof(*j));

	/* grouped by message, so each message is checked for retirement once */
	if (n > 1)
		qsort(o, n, sizeof(*o), queue_outcome_cmp);
	j->out = o;
	j->nout = n;
	j->msgs = dsns;
	j->nmsg = ndsn;
	j->put_cb = cb;
	j->arg = arg;
	queue_write_job(q, j);
}

void queue_put(struct queue *q, struct queue_msg_in *m, queue_put_cb *cb,
    void *arg)
{
	struct qjob *j = xcalloc(1, sizeof(*j));

	j->msgs = xmalloc(sizeof(*j->msgs));
	j->msgs[0] = m;
	j->nmsg = 1;
	j->put_cb = cb;
	j->arg = arg;
	queue_write_job(q, j);
}

/* --- queries, on the reader thread --- */

/* queue_rkey_range - [lo, hi) of the keys of a domain and its subdomains */
static void queue_rkey_range(const char *domain, struct buf *lo, struct buf *hi)
{
	domain_rkey(lo, domain, strlen(domain));
	/* every key that starts with "org.example." sorts below "org.example/" */
	buf_append(hi, lo->p, lo->len - 1);
	buf_putc(hi, '.' + 1);
}

static char *queue_col_dup(sqlite3_stmt *s, int col)
{
	const unsigned char *t = sqlite3_column_text(s, col);

	return t ? xstrdup((const char *)t) : NULL;
}


static void queue_row_text(struct buf *out, sqlite3_stmt *s, int col)
{
	const unsigned char *t = sqlite3_column_text(s, col);

	if (t != NULL)
		str_escape(out, (const char *)t, strlen((const char *)t));
}

/* queue_rows - every result row of s as tab-separated escaped fields */
static int queue_rows(sqlite3_stmt *s, struct buf *out)
{
	int rc, i, n = sqlite3_column_count(s);

	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		for (i = 0; i < n; i++) {
			if (i)
				buf_putc(out, '\t');
			queue_row_text(out, s, i);
		}
		buf_putc(out, '\n');
	}
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/*
 * queue_sql_rows - run sql with its first nargs parameters bound to a1, a2
 * (bound, never spliced), appending every row to out as queue_rows does
 */
static int queue_sql_rows(sqlite3 *db, const char *sql, int nargs,
    sqlite3_int64 a1, sqlite3_int64 a2, struct buf *out)
{
	sqlite3_stmt *s;
	int rc;

	rc = sqlite3_prepare_v2(db, sql, -1, &s, NULL);
	if (rc != SQLITE_OK)
		return rc;
	if (nargs >= 1)
		sqlite3_bind_int64(s, 1, a1);
	if (nargs >= 2)
		sqlite3_bind_int64(s, 2, a2);
	rc = queue_rows(s, out);
	sqlite3_finalize(s);
	return rc;
}

static int queue_q_summary(struct queue *q, struct qjob *j)
{
	static const char sql[] =
	    "SELECT r.domain, count(DISTINCT r.msg), count(*), min(m.arrival)"
	    " FROM rcpt r JOIN msg m ON m.id = r.msg"
	    " WHERE r.state IN (0, 1, 2) GROUP BY r.domain ORDER BY r.domain";

	return queue_sql_rows(j->db, sql, 0, 0, 0, &j->rows);
}

static int queue_q_list(struct queue *q, struct qjob *j)
{
	static const char sql_all[] =
	    "SELECT printf('%016X', m.id), m.arrival, m.size, m.sender,"
	    " r.addr, r.state, r.attempts, r.next_try, r.domain"
	    " FROM rcpt r JOIN msg m ON m.id = r.msg"
	    " WHERE r.state IN (0, 1, 2, 5) ORDER BY m.id, r.id";
	/* the domain and its subdomains: an index range on the reversed key */
	static const char sql_dom[] =
	    "SELECT printf('%016X', m.id), m.arrival, m.size, m.sender,"
	    " r.addr, r.state, r.attempts, r.next_try, r.domain"
	    " FROM rcpt r JOIN msg m ON m.id = r.msg"
	    " WHERE r.rkey >= ?1 AND r.rkey < ?2 AND r.state IN (0, 1, 2, 5)"
	    " ORDER BY m.id, r.id";
	struct buf lo = BUF_INIT, hi = BUF_INIT;
	sqlite3_stmt *s;
	int rc;

	if (j->domain == NULL || j->domain[0] == '\0') {
		rc = sqlite3_prepare_v2(j->db, sql_all, -1, &s, NULL);
	} else {
		queue_rkey_range(j->domain, &lo, &hi);
		rc = sqlite3_prepare_v2(j->db, sql_dom, -1, &s, NULL);
		if (rc == SQLITE_OK) {
			sqlite3_bind_text(s, 1, lo.p, (int)lo.len,
			    SQLITE_TRANSIENT);
			sqlite3_bind_text(s, 2, hi.p, (int)hi.len,
			    SQLITE_TRANSIENT);
		}
	}
	buf_free(&lo);
	buf_free(&hi);
	if (rc != SQLITE_OK)
		return rc;
	rc = queue_rows(s, &j->rows);
	sqlite3_finalize(s);
	return rc;
}

#define QUEUE_SHOW_HEADERS_MAX (64u * 1024)

/* queue_show_headers - "header<TAB>line" rows of the stored header section
 * (escaped, at most 64 KiB), or one "header<TAB>(damaged)" row */
static int queue_show_headers(struct queue *q, struct qjob *j)
{
	struct buf body = BUF_INIT;
	sqlite3_stmt *s;
	const char *p, *end;
	int rc, e;

	rc = sqlite3_prepare_v2(j->db, "SELECT seg, off, size, crc FROM msg"
	    " WHERE id = ?1", -1, &s, NULL);
	if (rc != SQLITE_OK)
		return rc;
	sqlite3_bind_int64(s, 1, (sqlite3_int64)j->id);
	if (sqlite3_step(s) != SQLITE_ROW) {
		sqlite3_finalize(s);
		return SQLITE_OK;
	}
	e = segment_read(q->segdir, (uint32_t)sqlite3_column_int64(s, 0),
	    (uint64_t)sqlite3_column_int64(s, 1), j->id,
	    (uint64_t)sqlite3_column_int64(s, 2),
	    (uint32_t)sqlite3_column_int64(s, 3), &body);
	sqlite3_finalize(s);
	if (e != 0) {
		buf_puts(&j->rows, "header\t(the stored message is damaged)\n");
		return SQLITE_OK;
	}
	for (p = body.p, end = p + (body.len < QUEUE_SHOW_HEADERS_MAX ?
	    body.len : QUEUE_SHOW_HEADERS_MAX); p && p < end;) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = (size_t)((nl ? nl : end) - p);

		if (n > 0 && p[n - 1] == '\r')
			n--;
		if (n == 0)
			break;		/* the end of the header section */
		buf_puts(&j->rows, "header\t");
		str_escape(&j->rows, p, n);
		buf_putc(&j->rows, '\n');
		p = nl ? nl + 1 : end;
	}
	buf_free(&body);
	return SQLITE_OK;
}

static int queue_q_show(struct queue *q, struct qjob *j)
{
	static const char sql_msg[] =
	    "SELECT 'qid', printf('%016X', id) FROM msg WHERE id = ?1"
	    " UNION ALL SELECT 'sender', sender FROM msg WHERE id = ?1"
	    " UNION ALL SELECT 'arrival', arrival FROM msg WHERE id = ?1"
	    " UNION ALL SELECT 'size', size FROM msg WHERE id = ?1"
	    " UNION ALL SELECT 'client', client FROM msg WHERE id = ?1"
	    " UNION ALL SELECT 'helo', helo FROM msg WHERE id = ?1"
	    " UNION ALL SELECT 'envid', envid FROM msg WHERE id = ?1"
	    " UNION ALL SELECT 'ret', ret FROM msg WHERE id = ?1"
	    " UNION ALL SELECT 'body', body8 FROM msg WHERE id = ?1";
	static const char sql_rcpt[] =
	    "SELECT 'rcpt', addr, state, attempts, next_try, notify, orcpt,"
	    " last_reply FROM rcpt WHERE msg = ?1 ORDER BY id";
	int rc;

	rc = queue_sql_rows(j->db, sql_msg, 1, (sqlite3_int64)j->id, 0,
	    &j->rows);
	if (rc != SQLITE_OK)
		return rc;
	if (j->rows.len == 0) {
		j->st = QUEUE_ENOENT;
		return SQLITE_OK;
	}
	rc = queue_sql_rows(j->db, sql_rcpt, 1, (sqlite3_int64)j->id, 0,
	    &j->rows);
	if (rc == SQLITE_OK)
		rc = queue_show_headers(q, j);
	return rc;
}

/*
 * queue_q_fetch - the selected recipients, message by message.  The first
 * statement walks the index on (rkey, msg) from after_id: its cost follows
 * the domain's own rows, never the queue's size.
 */
static int queue_q_fetch(struct queue *q, struct qjob *j)
{
	static const char ids_exact[] =
	    "SELECT DISTINCT msg FROM rcpt WHERE rkey = ?1 AND msg > ?3"
	    " AND msg < ?7 AND (CASE WHEN ?4 THEN state IN (0, 2) AND"
	    " next_try <= ?5 ELSE state IN (0, 1, 2) END)"
	    " ORDER BY msg LIMIT ?6";
	static const char ids_tree[] =
	    "SELECT DISTINCT msg FROM rcpt WHERE rkey >= ?1 AND rkey < ?2"
	    " AND msg > ?3 AND msg < ?7 AND (CASE WHEN ?4 THEN state IN"
	    " (0, 2) AND next_try <= ?5 ELSE state IN (0, 1, 2) END)"
	    " ORDER BY msg LIMIT ?6";
	static const char rcpts_sql[] =
	    "SELECT id, addr, domain, notify, orcpt, state, attempts, warned"
	    " FROM rcpt"
	    " WHERE msg = ?7 AND rkey >= ?1 AND rkey < ?2 AND (CASE WHEN ?4"
	    " THEN state IN (0, 2) AND next_try <= ?5"
	    " ELSE state IN (0, 1, 2) END) ORDER BY id";
	static const char msg_sql[] =
	    "SELECT sender, envid, ret, body8, arrival, size, seg, off, crc"
	    " FROM msg WHERE id = ?1";
	const struct queue_sel *sel = &j->sel;
	struct buf lo = BUF_INIT, hi = BUF_INIT, exact_hi = BUF_INIT;
	sqlite3_stmt *ids = NULL, *rs = NULL, *ms = NULL;
	struct queue_batch *b = xcalloc(1, sizeof(*b));
	size_t cap = 0;
	int rc;

	j->batch = b;
	queue_rkey_range(sel->domain, &lo, &hi);
	/* the exact domain: keys equal to lo, i.e. [lo, lo + "\0") */
	buf_append(&exact_hi, lo.p, lo.len);
	buf_putc(&exact_hi, '\x01');
	rc = sqlite3_prepare_v2(j->db, sel->subtree ? ids_tree : ids_exact, -1,
	    &ids, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(j->db, rcpts_sql, -1, &rs, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(j->db, msg_sql, -1, &ms, NULL);
	if (rc != SQLITE_OK)
		goto out;
	sqlite3_bind_text(ids, 1, lo.p, (int)lo.len, SQLITE_STATIC);
	if (sel->subtree)
		sqlite3_bind_text(ids, 2, hi.p, (int)hi.len, SQLITE_STATIC);
	sqlite3_bind_int64(ids, 3, (sqlite3_int64)sel->after_id);
	sqlite3_bind_int(ids, 4, sel->due_only);
	sqlite3_bind_int64(ids, 5, (sqlite3_int64)sel->now);
	sqlite3_bind_int64(ids, 6, (sqlite3_int64)sel->limit);
	sqlite3_bind_int64(ids, 7, sel->before_id ?
	    (sqlite3_int64)sel->before_id : INT64_MAX);
	sqlite3_bind_text(rs, 1, lo.p, (int)lo.len, SQLITE_STATIC);
	if (sel->subtree)
		sqlite3_bind_text(rs, 2, hi.p, (int)hi.len, SQLITE_STATIC);
	else
		sqlite3_bind_text(rs, 2, exact_hi.p, (int)exact_hi.len,
		    SQLITE_STATIC);
	sqlite3_bind_int(rs, 4, sel->due_only);
	sqlite3_bind_int64(rs, 5, (sqlite3_int64)sel->now);
	while ((rc = sqlite3_step(ids)) == SQLITE_ROW) {
		struct queue_item *it;
		uint64_t id = (uint64_t)sqlite3_column_int64(ids, 0);
		size_t rcap = 0;

		sqlite3_reset(ms);
		sqlite3_bind_int64(ms, 1, (sqlite3_int64)id);
		if (sqlite3_step(ms) != SQLITE_ROW)
			continue;
		if (b->n == cap) {
			cap = cap ? cap * 2 : 16;
			b->items = xrealloc(b->items, cap * sizeof(*b->items));
		}
		it = &b->items[b->n++];
		memset(it, 0, sizeof(*it));
		it->id = id;
		it->sender = queue_col_dup(ms, 0);
		it->envid = queue_col_dup(ms, 1);
		it->ret = sqlite3_column_int(ms, 2);
		it->body8 = sqlite3_column_int(ms, 3);
		it->arrival = (time_t)sqlite3_column_int64(ms, 4);
		it->size = (uint64_t)sqlite3_column_int64(ms, 5);
		if (sel->bodies)
			it->body_error = segment_read(q->segdir,
			    (uint32_t)sqlite3_column_int64(ms, 6),
			    (uint64_t)sqlite3_column_int64(ms, 7), id, it->size,
			    (uint32_t)sqlite3_column_int64(ms, 8), &it->body);
		sqlite3_reset(rs);
		sqlite3_bind_int64(rs, 7, (sqlite3_int64)id);
		while (sqlite3_step(rs) == SQLITE_ROW) {
			struct queue_rcpt *r;

			if (it->nrcpt == rcap) {
				rcap = rcap ? rcap * 2 : 4;
				it->rcpts = xrealloc(it->rcpts,
				    rcap * sizeof(*it->rcpts));
			}
			r = &it->rcpts[it->nrcpt++];
			r->rid = sqlite3_column_int64(rs, 0);
			r->addr = queue_col_dup(rs, 1);
			r->domain = queue_col_dup(rs, 2);
			r->notify = (unsigned)sqlite3_column_int(rs, 3);
			r->orcpt = queue_col_dup(rs, 4);
			r->state = sqlite3_column_int(rs, 5);
			r->attempts = sqlite3_column_int(rs, 6);
			r->warned = sqlite3_column_int(rs, 7) != 0;
		}
	}
	rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
	b->more = b->n == sel->limit;
out:
	sqlite3_finalize(ids);
	sqlite3_finalize(rs);
	sqlite3_finalize(ms);
	buf_free(&lo);
	buf_free(&hi);
	buf_free(&exact_hi);
	return rc;
}

/*
 * queue_q_count - the pending messages and recipients of a set of domains
 * (keys bound one by one in an IN list) or of a subtree (a key range),
 * and which domains they are for.
 */
static int queue_q_count(struct queue *q, struct qjob *j)
{
	struct buf where = BUF_INIT, sql = BUF_INIT, lo = BUF_INIT,
	    hi = BUF_INIT;
	struct buf *keys = xcalloc(j->ndomains + 1, sizeof(*keys));
	sqlite3_stmt *s = NULL;
	size_t i;
	int rc, pass;

	if (j->sel.subtree) {
		queue_rkey_range(j->domains[0], &lo, &hi);
		buf_puts(&where, "rkey >= ?1 AND rkey < ?2");
	} else {
		buf_puts(&where, "rkey IN (");
		for (i = 0; i < j->ndomains; i++) {
			domain_rkey(&keys[i], j->domains[i],
			    strlen(j->domains[i]));
			buf_printf(&where, "%s?%zu", i ? "," : "", i + 1);
		}
		buf_puts(&where, ")");
	}
	rc = SQLITE_OK;
	for (pass = 0; pass < 2 && rc == SQLITE_OK; pass++) {
		buf_reset(&sql);
		if (pass == 0)
			buf_printf(&sql, "SELECT count(DISTINCT msg), count(*)"
			    " FROM rcpt WHERE %s AND state IN (0, 1, 2)",
			    where.p);
		else
			buf_printf(&sql, "SELECT DISTINCT domain FROM rcpt"
			    " WHERE %s AND state IN (0, 1, 2) ORDER BY domain",
			    where.p);
		rc = sqlite3_prepare_v2(j->db, sql.p, -1, &s, NULL);
		if (rc != SQLITE_OK)
			break;
		if (j->sel.subtree) {
			sqlite3_bind_text(s, 1, lo.p, (int)lo.len, SQLITE_STATIC);
			sqlite3_bind_text(s, 2, hi.p, (int)hi.len, SQLITE_STATIC);
		} else {
			for (i = 0; i < j->ndomains; i++)
				sqlite3_bind_text(s, (int)i + 1, keys[i].p,
				    (int)keys[i].len, SQLITE_STATIC);
		}
		if (pass == 0) {
			rc = sqlite3_step(s);
			if (rc == SQLITE_ROW) {
				j->count_msgs =
				    (uint64_t)sqlite3_column_int64(s, 0);
				j->count_rcpts =
				    (uint64_t)sqlite3_column_int64(s, 1);
				rc = SQLITE_OK;
			}
		} else {
			rc = queue_rows(s, &j->rows);
		}
		sqlite3_finalize(s);
	}
	for (i = 0; i < j->ndomains; i++)
		buf_free(&keys[i]);
	free(keys);
	buf_free(&where);
	buf_free(&sql);
	buf_free(&lo);
	buf_free(&hi);
	return rc;
}

static int queue_q_shape(struct queue *q, struct qjob *j)
{
	/* minutes of age to bucket: 0-5, 5-10, 10-20 ... doubling, 1280+ */
	static const char sql[] =
	    "SELECT domain, count(*),"
	    " sum(a < 5), sum(a >= 5 AND a < 10), sum(a >= 10 AND a < 20),"
	    " sum(a >= 20 AND a < 40), sum(a >= 40 AND a < 80),"
	    " sum(a >= 80 AND a < 160), sum(a >= 160 AND a < 320),"
	    " sum(a >= 320 AND a < 640), sum(a >= 640 AND a < 1280),"
	    " sum(a >= 1280)"
	    " FROM (SELECT DISTINCT r.domain AS domain, r.msg,"
	    " (?1 - m.arrival) / 60 AS a FROM rcpt r JOIN msg m ON m.id = r.msg"
	    " WHERE r.state IN (0, 1, 2))"
	    " GROUP BY domain ORDER BY count(*) DESC, domain";

	return queue_sql_rows(j->db, sql, 1, (sqlite3_int64)j->now, 0, &j->rows);
}

static int queue_q_old(struct queue *q, struct qjob *j)
{
	return queue_sql_rows(j->db, "SELECT DISTINCT domain FROM rcpt"
	    " WHERE msg < ?1 AND state IN (0, 1, 2) ORDER BY domain", 1,
	    (sqlite3_int64)j->id, 0, &j->rows);
}

static int queue_q_due(struct queue *q, struct qjob *j)
{
	static const char due[] =
	    "SELECT domain, min(next_try) FROM rcpt"
	    " WHERE state IN (0, 2) AND next_try <= ?1"
	    " GROUP BY domain LIMIT ?2";
	static const char next[] =
	    "SELECT 'next', min(next_try) FROM rcpt"
	    " WHERE state = 2 AND next_try > ?1";
	int rc;

	rc = queue_sql_rows(j->db, due, 2, (sqlite3_int64)j->now,
	    (sqlite3_int64)j->sel.limit, &j->rows);
	if (rc != SQLITE_OK)
		return rc;
	return queue_sql_rows(j->db, next, 1, (sqlite3_int64)j->now, 0,
	    &j->rows);
}

/* what the reader threads run, per kind of job */
static int (*const queue_readers[])(struct queue *, struct qjob *) = {
	[QJOB_SUMMARY] = queue_q_summary,
	[QJOB_LIST] = queue_q_list,
	[QJOB_SHOW] = queue_q_show,
	[QJOB_FETCH] = queue_q_fetch,
	[QJOB_COUNT] = queue_q_count,
	[QJOB_DUE] = queue_q_due,
	[QJOB_OLD] = queue_q_old,
	[QJOB_SHAPE] = queue_q_shape,
};
#define QUEUE_NREADERS (sizeof(queue_readers) / sizeof(queue_readers[0]))

static void *queue_reader_main(void *arg)
{
	struct qreader *rd = arg;
	struct queue *q = rd->q;
	struct qjob *j;
	int rc;

	pthread_mutex_lock(&q->mu);
	for (;;) {
		while (rd->jobs.n == 0 && !q->stopping)
			pthread_cond_wait(&rd->cond, &q->mu);
		if (rd->jobs.n == 0)
			break;
		j = qlist_pop(&rd->jobs);
		/* every message acknowledged before the query was asked */
		while (q->committed_seq < j->wait_seq && !q->stalled &&
		    !q->stopping)
			pthread_cond_wait(&q->ccond, &q->mu);
		pthread_mutex_unlock(&q->mu);
		j->st = QUEUE_OK;
		j->db = rd->db;
		rc = (size_t)j->kind < QUEUE_NREADERS && queue_readers[j->kind] ?
		    queue_readers[j->kind](q, j) : SQLITE_MISUSE;
		if (rc != SQLITE_OK) {
			log_err("event=store_error op=query sqlite=%d", rc);
			j->st = QUEUE_ETEMP;
			buf_reset(&j->rows);
		}
		queue_finish(q, j);
		pthread_mutex_lock(&q->mu);
	}
	pthread_mutex_unlock(&q->mu);
	log_thread_end();
	return NULL;
}

static struct qjob *queue_job_new(enum qjob_kind kind, void *arg);
static void queue_read_push(struct queue *q, struct qjob *j);

static void queue_read_job(struct queue *q, enum qjob_kind kind,
    const char *domain, uint64_t id, queue_text_cb *cb, void *arg)
{
	struct qjob *j = queue_job_new(kind, arg);

	j->text_cb = cb;
	j->domain = domain ? xstrdup(domain) : NULL;
	j->id = id;
	queue_read_push(q, j);
}

static struct qjob *queue_job_new(enum qjob_kind kind, void *arg)
{
	struct qjob *j = xcalloc(1, sizeof(*j));

	j->kind = kind;
	j->arg = arg;
	return j;
}

static void queue_read_push(struct queue *q, struct qjob *j)
{
	struct qreader *rd = &q->rd[j->kind == QJOB_COUNT ||
	    j->kind == QJOB_DUE ? 1 : 0];

	pthread_mutex_lock(&q->mu);
	j->wait_seq = q->acked_seq;
	qlist_push(&rd->jobs, j);
	pthread_cond_signal(&rd->cond);
	pthread_mutex_unlock(&q->mu);
}

void queue_fetch(struct queue *q, const struct queue_sel *sel,
    queue_batch_cb *cb, void *arg)
{
	struct qjob *j = queue_job_new(QJOB_FETCH, arg);

	j->batch_cb = cb;
	j->sel = *sel;
	j->domain = xstrdup(sel->domain);
	j->sel.domain = j->domain;
	if (j->sel.limit == 0)
		j->sel.limit = 100;
	queue_read_push(q, j);
}

void queue_count(struct queue *q, const char *const *domains, size_t n,
    bool subtree, queue_count_cb *cb, void *arg)
{
	struct qjob *j = queue_job_new(QJOB_COUNT, arg);
	size_t i;

	j->count_cb = cb;
	j->domains = xcalloc(n + 1, sizeof(*j->domains));
	for (i = 0; i < n; i++)
		j->domains[i] = xstrdup(domains[i]);
	j->ndomains = n;
	j->sel.subtree = subtree && n == 1;
	queue_read_push(q, j);
}

void queue_due(struct queue *q, time_t now, size_t limit, queue_text_cb *cb,
    void *arg)
{
	struct qjob *j = queue_job_new(QJOB_DUE, arg);

	j->text_cb = cb;
	j->now = now;
	j->sel.limit = limit;
	queue_read_push(q, j);
}

void queue_old_domains(struct queue *q, uint64_t before_id, queue_text_cb *cb,
    void *arg)
{
	struct qjob *j = queue_job_new(QJOB_OLD, arg);

	j->text_cb = cb;
	j->id = before_id;
	queue_read_push(q, j);
}

void queue_shape(struct queue *q, time_t now, queue_text_cb *cb, void *arg)
{
	struct qjob *j = queue_job_new(QJOB_SHAPE, arg);

	j->text_cb = cb;
	j->now = now;
	queue_read_push(q, j);
}

void queue_summary(struct queue *q, queue_text_cb *cb, void *arg)
{
	queue_read_job(q, QJOB_SUMMARY, NULL, 0, cb, arg);
}

void queue_list(struct queue *q, const char *domain, queue_text_cb *cb,
    void *arg)
{
	queue_read_job(q, QJOB_LIST, domain, 0, cb, arg);
}

void queue_show(struct queue *q, uint64_t id, queue_text_cb *cb, void *arg)
{
	queue_read_job(q, QJOB_SHOW, NULL, id, cb, arg);
}

/* --- the check after start-up (queue_check.h) --- */

static void queue_check_cb(void *arg, enum queue_status st,
    const struct buf *rows);

/*
 * queue_checker_main - the check after start-up, on a thread and a
 * connection of its own: a 1,000,000-message queue takes seconds to
 * check, and an ETRN's fetch must not wait behind it.  Each step's rows
 * go to the loop (queue_check_cb), which quarantines what they name.
 */
static void *queue_checker_main(void *arg)
{
	struct queue *q = arg;
	uint64_t after = 0;

	/* only what is left over: the lowest CPU and disk priority, for this
	 * thread alone (Linux) */
	if (setpriority(PRIO_PROCESS, (id_t)gettid(), 19) != 0 ||
	    syscall(SYS_ioprio_set, 1 /* IOPRIO_WHO_PROCESS */, gettid(),
	    3 << 13 /* IOPRIO_CLASS_IDLE */) != 0)
		log_debug("event=check_priority errno=%d", errno);

	for (;;) {
		struct qjob *j = queue_job_new(QJOB_CHECK, q);
		unsigned long long last = 0;
		unsigned n = 0;
		const char *end;

		j->text_cb = queue_check_cb;
		if (queue_check_chunk(q->cdb, q->dir, q->segdir, after,
		    &j->rows) != SQLITE_OK) {
			log_err("event=store_error op=check sqlite=%d",
			    sqlite3_errcode(q->cdb));
			j->st = QUEUE_ETEMP;
			buf_reset(&j->rows);
		}
		/* the last row says where this step ended */
		end = j->rows.len > 1 ? memrchr(j->rows.p, '\n',
		    j->rows.len - 1) : NULL;
		end = end ? end + 1 : j->rows.p;
		if (end && strncmp(end, "end\t", 4) == 0)
			sscanf(end, "end\t%llu\t%u", &last, &n);
		queue_finish(q, j);
		pthread_mutex_lock(&q->mu);
		if (q->stopping || n < QUEUE_CHECK_CHUNK) {
			pthread_mutex_unlock(&q->mu);
			break;
		}
		pthread_mutex_unlock(&q->mu);
		after = last;
	}
	log_thread_end();
	return NULL;
}

/* queue_check_bad - a "bad" row: the recipient is quarantined */
static bool queue_check_bad(struct queue_outcome *o, const char *row)
{
	unsigned long long msg;
	long long rid;
	int e;
	char qid[IDGEN_HEX_LEN + 1];
	struct buf r = BUF_INIT;

	if (sscanf(row, "bad\t%llu\t%lld\t%d", &msg, &rid, &e) != 3)
		return false;
	memset(o, 0, sizeof(*o));
	o->rid = rid;
	o->msg = msg;
	o->state = QUEUE_R_CORRUPT;
	buf_printf(&r, "451 4.3.0 queue file damaged: %s", strerror(e));
	o->reply = buf_steal(&r);
	idgen_format(msg, qid);
	log_err("event=quarantined qid=%s rcpt_row=%lld reason=%s found=check",
	    qid, rid, log_value(strerror(e), strlen(strerror(e))));
	return true;
}

static void queue_check_cb(void *arg, enum queue_status st,
    const struct buf *rows)
{
	struct queue *q = arg;
	struct queue_outcome *o;
	const char *p, *end, *ln;
	unsigned long long last = 0;
	unsigned n = 0;
	size_t nout = 0, cap = 0, len;

	if (q->stopping)
		return;
	if (st != QUEUE_OK) {
		log_err("event=store_check_failed");
		return;		/* the checker has stopped */
	}
	for (p = rows->p, end = p ? p + rows->len : NULL; p && p < end; p++)
		cap += *p == '\n';
	o = xcalloc(cap + 1, sizeof(*o));
	for (p = rows->p; (ln = str_next_line(&p, end, &len)) != NULL;) {
		char row[600];

		snprintf(row, sizeof(row), "%.*s", (int)len, ln);
		if (strncmp(row, "db\t", 3) == 0)
			log_err("event=store_damaged file=queue.db reason=%s"
			    " action=salvage_at_next_start",
			    log_value(row + 3, strlen(row + 3)));
		else if (strncmp(row, "bad\t", 4) == 0)
			nout += queue_check_bad(&o[nout], row);
		else
			sscanf(row, "end\t%llu\t%u", &last, &n);
	}
	q->checked += n;
	q->quarantined += nout;
	if (nout > 0)
		queue_update(q, o, nout, NULL, 0, NULL, NULL);
	else
		free(o);
	if (n < QUEUE_CHECK_CHUNK)
		log_info("event=store_checked messages=%llu quarantined=%llu",
		    (unsigned long long)q->checked,
		    (unsigned long long)q->quarantined);
}

/* --- open, recover, close --- */

static int64_t queue_scalar(sqlite3 *db, const char *sql);

static int queue_db_open(const char *path, sqlite3 **db, bool writer,
    struct buf *err)
{
	int rc, flags = writer ? SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE :
	    SQLITE_OPEN_READONLY;

	rc = sqlite3_open_v2(path, db, flags | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		buf_printf(err, "cannot open %s: %s", path,
		    *db ? sqlite3_errmsg(*db) : sqlite3_errstr(rc));
		return rc;
	}
	sqlite3_busy_timeout(*db, 10000);
	if (writer) {
		char *msg = NULL;

		rc = sqlite3_exec(*db, "PRAGMA journal_mode=WAL;"
		    "PRAGMA synchronous=FULL;", NULL, NULL, &msg);
		/* version 1 queues lack the delay-warning mark */
		if (rc == SQLITE_OK && queue_scalar(*db, "PRAGMA user_version") == 1)
			rc = sqlite3_exec(*db, "ALTER TABLE rcpt ADD COLUMN warned"
			    " INTEGER NOT NULL DEFAULT 0", NULL, NULL, &msg);
		if (rc == SQLITE_OK)
			rc = sqlite3_exec(*db, queue_schema, NULL, NULL, &msg);
		if (rc != SQLITE_OK) {
			buf_printf(err, "cannot set up %s: %s", path,
			    msg ? msg : sqlite3_errstr(rc));
			sqlite3_free(msg);
			return rc;
		}
	}
	return SQLITE_OK;
}

static int64_t queue_scalar(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *s;
	int64_t v = 0;

	if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_step(s) == SQLITE_ROW)
		v = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return v;
}

/*
 * queue_recover_segments - remove segment files that no committed row
 * points at (bytes synced before a crash but never acknowledged), and
 * return the number to use for the next new segment.  A new run never
 * appends to an old file.  After a salvage (qdir set) they may hold
 * acknowledged mail whose rows were lost: they are moved into the
 * quarantine directory instead.
 */
static uint32_t queue_recover_segments(struct queue *q, const char *qdir)
{
	sqlite3_stmt *s = NULL;
	uint32_t next = (uint32_t)queue_scalar(q->wdb,
	    "SELECT coalesce(max(id), 0) + 1 FROM seg");
	DIR *d = opendir(q->segdir);
	struct dirent *de;

	if (d == NULL)
		return next;
	sqlite3_prepare_v2(q->wdb,
	    "SELECT live FROM seg WHERE id = ?1", -1, &s, NULL);
	while ((de = readdir(d)) != NULL) {
		unsigned long id;
		char *end;
		bool keep = false;

		if (strlen(de->d_name) != 12 ||
		    strcmp(de->d_name + 8, ".seg") != 0)
			continue;
		id = strtoul(de->d_name, &end, 16);
		if (end != de->d_name + 8)
			continue;
		if (id >= next)
			next = (uint32_t)id + 1;
		sqlite3_reset(s);
		sqlite3_bind_int64(s, 1, (sqlite3_int64)id);
		if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_int64(s, 0) > 0)
			keep = true;
		if (!keep) {
			struct buf p = BUF_INIT, to = BUF_INIT;

			segment_path(&p, q->segdir, (uint32_t)id);
			if (qdir != NULL) {
				segment_path(&to, qdir, (uint32_t)id);
				if (rename(p.p, to.p) == 0)
					log_err("event=recover_segment"
					    " action=quarantined segment=%08lX",
					    id);
			} else if (unlink(p.p) == 0) {
				log_info("event=recover_segment action=removed"
				    " segment=%08lX", id);
			}
			buf_free(&p);
			buf_free(&to);
		}
	}
	sqlite3_finalize(s);
	closedir(d);
	return next;
}

/* one record past the watermark: its rows, unless they are there */
struct qreplay {
	struct queue *q;
	sqlite3_stmt *exists;
	struct buf rkey;
	uint64_t n, bad;
	int sqlrc;		/* an insert failed with this */
};

static int queue_replay_rec(void *arg, const struct segment_rec *r)
{
	struct qreplay *rp = arg;
	struct queue_msg_in *m = xcalloc(1, sizeof(*m));
	struct qloc loc = { r->seg, r->off, r->crc };
	int rc = SQLITE_OK;

	if (envelope_decode(r->env, r->envlen, m) != 0) {
		rp->bad++;
		log_err("event=queue_replay segment=%08X off=%llu"
		    " error=\"bad envelope\"", (unsigned)r->seg,
		    (unsigned long long)r->off);
		queue_msg_free(m);
		return 0;
	}
	m->id = r->id;
	m->body_fd_len = r->len;	/* the stored size */
	sqlite3_reset(rp->exists);
	sqlite3_bind_int64(rp->exists, 1, (sqlite3_int64)r->id);
	if (sqlite3_step(rp->exists) != SQLITE_ROW) {
		rc = queue_insert_msg(rp->q, m, &loc, &rp->rkey);
		rp->n += rc == SQLITE_OK;
	}
	queue_msg_free(m);
	if (rc == SQLITE_OK)
		return 0;
	rp->sqlrc = rc;
	return -1;	/* segment_scan's own errors are errno values */
}

/*
 * queue_replay - the rows of every record appended after the watermark
 * (queue_open).  A reply of 250 needs the record durable, not the rows
 * (queue.h); the rows of the last batches may be lost with the process
 * or a power failure, and come back from the records here.  Records of
 * messages whose rows are there are skipped.  No watermark (a queue
 * written by an older version): nothing to replay.
 */
static int queue_replay(struct queue *q, struct buf *err)
{
	struct qreplay rp = { .q = q };
	sqlite3_stmt *s = NULL;
	uint32_t seg;
	uint64_t off;
	int rc, e;

	if (sqlite3_prepare_v2(q->wdb, "SELECT seg, off FROM mark WHERE k = 0",
	    -1, &s, NULL) != SQLITE_OK)
		goto sqlfail;
	rc = sqlite3_step(s);
	seg = (uint32_t)sqlite3_column_int64(s, 0);
	off = (uint64_t)sqlite3_column_int64(s, 1);
	sqlite3_finalize(s);
	if (rc != SQLITE_ROW)
		return 0;
	if (sqlite3_prepare_v2(q->wdb, "SELECT 1 FROM msg WHERE id = ?1", -1,
	    &rp.exists, NULL) != SQLITE_OK ||
	    sqlite3_exec(q->wdb, "BEGIN IMMEDIATE", NULL, NULL, NULL) !=
	    SQLITE_OK)
		goto sqlfail;
	e = segment_scan(q->segdir, seg, off, queue_replay_rec, &rp);
	rc = e == 0 ? sqlite3_exec(q->wdb, "COMMIT", NULL, NULL, NULL) :
	    rp.sqlrc;
	if (rc != SQLITE_OK || e != 0)
		buf_printf(err, "cannot replay the segments after %08X:%llu:"
		    " %s", (unsigned)seg, (unsigned long long)off,
		    e > 0 ? strerror(e) : e == 0 ? sqlite3_errmsg(q->wdb) :
		    sqlite3_errstr(rc));
	if (e != 0)
		sqlite3_exec(q->wdb, "ROLLBACK", NULL, NULL, NULL);
	sqlite3_finalize(rp.exists);
	buf_free(&rp.rkey);
	if (rc != SQLITE_OK || e != 0)
		return -1;
	if (rp.n > 0 || rp.bad > 0)
		log_info("event=queue_replay from=%08X:%llu messages=%llu"
		    " bad=%llu", (unsigned)seg, (unsigned long long)off,
		    (unsigned long long)rp.n, (unsigned long long)rp.bad);
	return 0;
sqlfail:
	sqlite3_finalize(rp.exists);
	buf_printf(err, "cannot read the watermark: %s", sqlite3_errmsg(q->wdb));
	return -1;
}

static int queue_prepare(struct queue *q, struct buf *err)
{
	static const char ins_msg[] =
	    "INSERT INTO msg(id, sender, envid, ret, body8, arrival, size,"
	    " client, helo, seg, off, crc, live)"
	    " VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13)";
	static const char ins_rcpt[] =
	    "INSERT INTO rcpt(msg, addr, domain, rkey, state, notify, orcpt)"
	    " VALUES(?1,?2,?3,?4,?5,?6,?7)";
	static const char upd_seg[] =
	    "INSERT INTO seg(id, live) VALUES(?1, 1)"
	    " ON CONFLICT(id) DO UPDATE SET live = live + 1";

	static const char upd_rcpt[] =
	    "UPDATE rcpt SET state = ?2, next_try = ?3,"
	    " last_reply = coalesce(?4, last_reply), attempts = attempts + ?5,"
	    " warned = max(warned, ?6)"
	    " WHERE id = ?1";
	static const char msg_pending[] =
	    "SELECT count(*) FROM rcpt WHERE msg = ?1 AND state IN (0, 1, 2, 5)";

	if (sqlite3_prepare_v2(q->wdb, ins_msg, -1, &q->ins_msg, NULL) ||
	    sqlite3_prepare_v2(q->wdb, ins_rcpt, -1, &q->ins_rcpt, NULL) ||
	    sqlite3_prepare_v2(q->wdb, upd_seg, -1, &q->upd_seg, NULL) ||
	    sqlite3_prepare_v2(q->wdb, upd_rcpt, -1, &q->upd_rcpt, NULL) ||
	    sqlite3_prepare_v2(q->wdb, msg_pending, -1, &q->msg_pending, NULL) ||
	    sqlite3_prepare_v2(q->wdb, "SELECT seg FROM msg WHERE id = ?1", -1,
	    &q->msg_seg, NULL) ||
	    sqlite3_prepare_v2(q->wdb, "DELETE FROM rcpt WHERE msg = ?1", -1,
	    &q->del_rcpts, NULL) ||
	    sqlite3_prepare_v2(q->wdb, "DELETE FROM msg WHERE id = ?1", -1,
	    &q->del_msg, NULL) ||
	    sqlite3_prepare_v2(q->wdb,
	    "UPDATE seg SET live = live - 1 WHERE id = ?1", -1,
	    &q->seg_release, NULL) ||
	    sqlite3_prepare_v2(q->wdb, "SELECT live FROM seg WHERE id = ?1", -1,
	    &q->seg_live, NULL) ||
	    sqlite3_prepare_v2(q->wdb, "DELETE FROM seg WHERE id = ?1", -1,
	    &q->seg_del, NULL) ||
	    sqlite3_prepare_v2(q->wdb, "INSERT OR REPLACE INTO mark(k, seg, off)"
	    " VALUES(0, ?1, ?2)", -1, &q->set_mark, NULL)) {
		buf_printf(err, "cannot prepare statements: %s",
		    sqlite3_errmsg(q->wdb));
		return -1;
	}
	return 0;
}

/* queue_close_dbs - the three connections, for a retry or at the end */
static void queue_close_dbs(struct queue *q)
{
	int i;

	if (q->wdb)
		sqlite3_close(q->wdb);
	q->wdb = NULL;
	for (i = 0; i < 2; i++) {
		if (q->rd[i].db)
			sqlite3_close(q->rd[i].db);
		q->rd[i].db = NULL;
	}
}

/* queue_damaged - an SQLite result that means the file is damaged */
static bool queue_damaged(int rc)
{
	rc &= 0xff;
	return rc == SQLITE_CORRUPT || rc == SQLITE_NOTADB;
}

/*
 * queue_open_db - open the database (the writer's connection and the
 * readers'), and learn the largest message id.  A damaged database (cut
 * short, unreadable, or marked by a failed check of an earlier run) is
 * quarantined and salvaged first (queue_check.h); qdir then names the
 * quarantine directory.
 */
static int queue_open_db(struct queue *q, const char *dir, const char *path,
    struct buf *qdir, struct buf *err)
{
	struct buf why = BUF_INIT, marker = BUF_INIT;
	bool salvage;
	int rc = 0, tries;

	buf_printf(&marker, "%s/%s", dir, QUEUE_CHECK_MARKER);
	salvage = access(marker.p, F_OK) == 0;
	if (salvage)
		buf_puts(&why, "a check of the last run found damage");
	else
		salvage = queue_check_cut(dir, "queue.db", &why);
	for (tries = 0; tries < 2; tries++) {
		if (salvage) {
			log_err("event=store_damaged file=%s reason=%s"
			    " action=quarantine", log_value(path, strlen(path)),
			    log_value(why.p, why.len));
			queue_close_dbs(q);
			if ((rc = queue_salvage(dir, "queue.db", queue_schema,
			    qdir, err)) != 0)
				break;
			unlink(marker.p);
		}
		buf_reset(err);
		if ((rc = queue_db_open(path, &q->wdb, true, err)) == SQLITE_OK &&
		    (rc = queue_db_open(path, &q->rd[0].db, false, err)) ==
		    SQLITE_OK &&
		    (rc = queue_db_open(path, &q->rd[1].db, false, err)) ==
		    SQLITE_OK) {
			int64_t max = queue_scalar(q->wdb,
			    "SELECT coalesce(max(id), 0) FROM msg");

			if (max >= 0) {
				q->max_id = (uint64_t)max;
				break;
			}
			rc = sqlite3_errcode(q->wdb);
			buf_printf(err, "cannot read %s: %s", path,
			    sqlite3_errmsg(q->wdb));
		}
		if (salvage || !queue_damaged(rc))
			break;
		buf_reset(&why);
		buf_append(&why, err->p, err->len);
		salvage = true;
	}
	buf_free(&why);
	buf_free(&marker);
	return rc;
}

/* queue_same_device - the database's directory and the segments' are on
 * one device, so a flush of one covers the other (not across a mount or
 * a symbolic link to another disk) */
static bool queue_same_device(const char *dir, const char *segdir)
{
	struct stat a, b;

	return stat(dir, &a) == 0 && stat(segdir, &b) == 0 &&
	    a.st_dev == b.st_dev;
}

struct queue *queue_open(const char *dir, uint64_t min_free,
    struct event_base *base, struct buf *err)
{
	struct queue *q = xcalloc(1, sizeof(*q));
	struct buf path = BUF_INIT, qdir = BUF_INIT;
	uint32_t next_seg;
	int e, i;

	q->dir = xstrdup(dir);
	q->min_free = min_free;
	buf_printf(&path, "%s/seg", dir);
	q->segdir = buf_steal(&path);
	if ((mkdir(dir, 0700) != 0 && errno != EEXIST) ||
	    (mkdir(q->segdir, 0700) != 0 && errno != EEXIST)) {
		buf_printf(err, "cannot create %s: %s", q->segdir,
		    strerror(errno));
		goto fail;
	}
	buf_printf(&path, "%s/queue.db", dir);
	if (queue_open_db(q, dir, path.p, &qdir, err) != 0 ||
	    queue_prepare(q, err) != 0 ||
	    (qdir.len == 0 && queue_replay(q, err) != 0))
		goto fail;
	next_seg = queue_recover_segments(q, qdir.len ? qdir.p : NULL);
	q->max_id = (uint64_t)queue_scalar(q->wdb,
	    "SELECT coalesce(max(id), 0) FROM msg");
	if ((e = segment_writer_init(&q->seg, q->segdir, next_seg,
	    queue_same_device(dir, q->segdir))) != 0) {
		buf_printf(err, "cannot open %s: %s", q->segdir, strerror(e));
		goto fail;
	}
	/* this run appends from the start of a new file */
	if (queue_set_mark(q) != SQLITE_OK) {
		buf_printf(err, "cannot write the watermark: %s",
		    sqlite3_errmsg(q->wdb));
		goto fail;
	}
	queue_refresh_space(q);
	q->sync_full = true;		/* as queue_db_open set it */
	pthread_mutex_init(&q->mu, NULL);
	pthread_cond_init(&q->wcond, NULL);
	pthread_cond_init(&q->ccond, NULL);
	for (i = 0; i < 2; i++) {
		q->rd[i].q = q;
		pthread_cond_init(&q->rd[i].cond, NULL);
		qlist_init(&q->rd[i].jobs);
	}
	qlist_init(&q->puts);
	qlist_init(&q->done);
	q->done_ev = event_new(base, -1, 0, queue_done_cb, q);
	if (pthread_create(&q->writer, NULL, queue_writer_main, q) != 0 ||
	    pthread_create(&q->rd[0].th, NULL, queue_reader_main, &q->rd[0]) ||
	    pthread_create(&q->rd[1].th, NULL, queue_reader_main, &q->rd[1])) {
		buf_printf(err, "cannot start queue threads");
		goto fail;	/* start-up only: the process exits */
	}
	if (queue_db_open(path.p, &q->cdb, false, err) != SQLITE_OK ||
	    pthread_create(&q->checker, NULL, queue_checker_main, q) != 0) {
		/* the check is a help, not a need: run without it */
		log_err("event=store_check_failed detail=\"cannot start the"
		    " check after start-up\"");
		if (q->cdb)
			sqlite3_close(q->cdb);
		q->cdb = NULL;
	} else {
		q->checking = true;
	}
	buf_free(&path);
	buf_free(&qdir);
	return q;
fail:
	buf_free(&path);
	buf_free(&qdir);
	queue_close_dbs(q);
	free(q->segdir);
	free(q->dir);
	free(q);
	return NULL;
}

void queue_close(struct queue *q)
{
	size_t i;

	if (q == NULL)
		return;
	pthread_mutex_lock(&q->mu);
	q->stopping = true;
	pthread_cond_broadcast(&q->wcond);
	pthread_cond_broadcast(&q->rd[0].cond);
	pthread_cond_broadcast(&q->rd[1].cond);
	pthread_cond_broadcast(&q->ccond);
	pthread_mutex_unlock(&q->mu);
	if (q->checking)
		pthread_join(q->checker, NULL);
	pthread_join(q->writer, NULL);
	pthread_join(q->rd[0].th, NULL);
	pthread_join(q->rd[1].th, NULL);
	queue_done_cb(-1, 0, q);
	/* rows never stored: their records are replayed at the next start */
	for (i = 0; i < q->backlog.n; i++)
		qjob_free(q->backlog.jobs[i]);
	free(q->backlog.jobs);
	free(q->backlog.locs);
	event_free(q->done_ev);
	sqlite3_finalize(q->ins_msg);
	sqlite3_finalize(q->ins_rcpt);
	sqlite3_finalize(q->upd_seg);
	sqlite3_finalize(q->upd_rcpt);
	sqlite3_finalize(q->msg_pending);
	sqlite3_finalize(q->msg_seg);
	sqlite3_finalize(q->del_rcpts);
	sqlite3_finalize(q->del_msg);
	sqlite3_finalize(q->seg_release);
	sqlite3_finalize(q->seg_live);
	sqlite3_finalize(q->seg_del);
	sqlite3_finalize(q->set_mark);
	buf_free(&q->env);
	sqlite3_close(q->rd[0].db);
	sqlite3_close(q->rd[1].db);
	if (q->cdb)
		sqlite3_close(q->cdb);
	sqlite3_close(q->wdb);
	segment_writer_close(&q->seg);
	pthread_mutex_destroy(&q->mu);
	pthread_cond_destroy(&q->wcond);
	pthread_cond_destroy(&q->ccond);
	pthread_cond_destroy(&q->rd[0].cond);
	pthread_cond_destroy(&q->rd[1].cond);
	free(q->segdir);
	free(q->dir);
	free(q);
}
