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
#include "queue/segment.h"
#include "log/log.h"
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
#include <sys/statvfs.h>
#include <unistd.h>

#define QUEUE_BATCH_MAX 256		/* messages per commit at most */
#define QUEUE_BATCH_BYTES (16u << 20)	/* body bytes per commit at most */
#define QUEUE_RESERVE_BYTES (16u << 20)	/* refuse mail below this much free */

enum qjob_kind { QJOB_PUT, QJOB_SUMMARY, QJOB_LIST, QJOB_SHOW };

struct qjob {
	struct qjob *next;
	enum qjob_kind kind;
	enum queue_status st;
	struct queue_msg_in *msg;
	queue_put_cb *put_cb;
	queue_text_cb *text_cb;
	void *arg;
	char *domain;
	uint64_t id;
	struct buf rows;
};

struct qlist {
	struct qjob *head, **tail;
	size_t n;
};

struct queue {
	char *dir;
	char *segdir;
	sqlite3 *wdb;
	sqlite3 *rdb;
	struct segment_writer seg;
	pthread_t writer, reader;
	pthread_mutex_t mu;
	pthread_cond_t wcond, rcond;
	struct qlist puts, reads, done;
	bool stopping;
	struct event *done_ev;
	atomic_ullong free_bytes;
	uint64_t max_id;
	sqlite3_stmt *ins_msg, *ins_rcpt, *upd_seg;
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
    " orcpt TEXT, last_reply TEXT);"
    "CREATE INDEX IF NOT EXISTS rcpt_rkey ON rcpt(rkey, state, msg);"
    "CREATE INDEX IF NOT EXISTS rcpt_msg ON rcpt(msg);"
    "CREATE INDEX IF NOT EXISTS rcpt_due ON rcpt(state, next_try);"
    "CREATE TABLE IF NOT EXISTS seg(id INTEGER PRIMARY KEY,"
    " live INTEGER NOT NULL);"
    "PRAGMA user_version = 1;";

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

const char *queue_rstate_name(int st)
{
	static const char *const names[] = {
		"queued", "held", "deferred", "delivered", "failed"
	};

	return st >= 0 && st <= QUEUE_R_FAILED ? names[st] : "unknown";
}

const char *queue_status_text(enum queue_status st)
{
	switch (st) {
	case QUEUE_OK:
		return "ok";
	case QUEUE_ETEMP:
		return "store error";
	case QUEUE_ENOSPC:
		return "insufficient storage";
	case QUEUE_ENOENT:
		return "no such message";
	case QUEUE_EINVAL:
		return "invalid argument";
	}
	return "unknown";
}

void queue_msg_free(struct queue_msg_in *m)
{
	size_t i;

	if (m == NULL)
		return;
	for (i = 0; i < m->nrcpt; i++) {
		free(m->rcpts[i].addr);
		free(m->rcpts[i].domain);
		free(m->rcpts[i].orcpt);
	}
	free(m->rcpts);
	free(m->sender);
	free(m->envid);
	free(m->client);
	free(m->helo);
	buf_free(&m->body);
	if (m->body_fd >= 0)
		close(m->body_fd);
	free(m);
}

static void qjob_free(struct qjob *j)
{
	queue_msg_free(j->msg);
	free(j->domain);
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

/* queue_done_cb - on the loop: run the callbacks of finished jobs */
static void queue_done_cb(evutil_socket_t fd, short what, void *arg)
{
	struct queue *q = arg;
	struct qlist l;
	struct qjob *j;

	pthread_mutex_lock(&q->mu);
	l = q->done;
	qlist_init(&q->done);
	pthread_mutex_unlock(&q->mu);
	if (l.head == NULL)
		return;
	l.tail = NULL;
	while ((j = l.head) != NULL) {
		l.head = j->next;
		if (j->kind == QJOB_PUT)
			j->put_cb(j->arg, j->st);
		else
			j->text_cb(j->arg, j->st, &j->rows);
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

	if (f < QUEUE_RESERVE_BYTES)
		return false;
	return size <= f - QUEUE_RESERVE_BYTES;
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

/* queue_batch_rows - insert the rows of every stored job, in one txn */
static int queue_batch_rows(struct queue *q, struct qjob **jobs,
    uint32_t *segs, uint64_t *offs, uint32_t *crcs, size_t n)
{
	struct buf rkey = BUF_INIT;
	size_t i, k;
	int rc;

	rc = sqlite3_exec(q->wdb, "BEGIN IMMEDIATE", NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		return rc;
	for (i = 0; i < n && rc == SQLITE_OK; i++) {
		struct queue_msg_in *m = jobs[i]->msg;
		sqlite3_stmt *s = q->ins_msg;

		if (m == NULL)
			continue;	/* its body could not be stored */
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
		sqlite3_bind_int64(s, 7,
		    (sqlite3_int64)(m->body.len + m->body_fd_len));
		sqlite3_bind_text(s, 8, m->client ? m->client : "", -1,
		    SQLITE_STATIC);
		sqlite3_bind_text(s, 9, m->helo ? m->helo : "", -1,
		    SQLITE_STATIC);
		sqlite3_bind_int64(s, 10, segs[i]);
		sqlite3_bind_int64(s, 11, (sqlite3_int64)offs[i]);
		sqlite3_bind_int64(s, 12, crcs[i]);
		sqlite3_bind_int64(s, 13, (sqlite3_int64)m->nrcpt);
		rc = sqlite3_step(s);
		if (rc != SQLITE_DONE)
			break;
		rc = SQLITE_OK;
		for (k = 0; k < m->nrcpt && rc == SQLITE_OK; k++) {
			struct queue_rcpt_in *r = &m->rcpts[k];

			s = q->ins_rcpt;
			buf_reset(&rkey);
			domain_rkey(&rkey, r->domain, strlen(r->domain));
			sqlite3_reset(s);
			sqlite3_bind_int64(s, 1, (sqlite3_int64)m->id);
			sqlite3_bind_text(s, 2, r->addr, -1, SQLITE_STATIC);
			sqlite3_bind_text(s, 3, r->domain, -1, SQLITE_STATIC);
			sqlite3_bind_text(s, 4, buf_cstr(&rkey), -1,
			    SQLITE_TRANSIENT);
			sqlite3_bind_int(s, 5, r->state);
			sqlite3_bind_int(s, 6, (int)r->notify);
			if (r->orcpt)
				sqlite3_bind_text(s, 7, r->orcpt, -1,
				    SQLITE_STATIC);
			else
				sqlite3_bind_null(s, 7);
			rc = sqlite3_step(s);
			rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
		}
		if (rc != SQLITE_OK)
			break;
		s = q->upd_seg;
		sqlite3_reset(s);
		sqlite3_bind_int64(s, 1, segs[i]);
		rc = sqlite3_step(s);
		rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
	}
	buf_free(&rkey);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(q->wdb, "COMMIT", NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		sqlite3_exec(q->wdb, "ROLLBACK", NULL, NULL, NULL);
	return rc;
}

/*
 * queue_commit_batch - store a batch: append every body, sync the segment
 * once, insert every row in one transaction, commit.  Only a job whose
 * body and rows are both durable is reported QUEUE_OK.
 */
static void queue_commit_batch(struct queue *q, struct qjob **jobs, size_t n)
{
	uint32_t segs[QUEUE_BATCH_MAX], crcs[QUEUE_BATCH_MAX];
	uint64_t offs[QUEUE_BATCH_MAX];
	enum queue_status fail = QUEUE_OK;
	size_t i, stored = 0;
	int e, rc;

	for (i = 0; i < n; i++) {
		struct queue_msg_in *m = jobs[i]->msg;

		jobs[i]->st = QUEUE_OK;
		e = segment_append(&q->seg, m->id, m->body.p, m->body.len,
		    m->body_fd, m->body_fd_len, &segs[i], &offs[i], &crcs[i]);
		if (e != 0) {
			log_err("event=store_error op=append errno=%d error=%s",
			    e, log_value(strerror(e), strlen(strerror(e))));
			fail = e == ENOSPC || e == EDQUOT || e == EFBIG ?
			    QUEUE_ENOSPC : QUEUE_ETEMP;
			break;
		}
		stored++;
	}
	if (fail == QUEUE_OK && (e = segment_sync(&q->seg)) != 0) {
		log_err("event=store_error op=fdatasync errno=%d", e);
		fail = e == ENOSPC || e == EDQUOT ? QUEUE_ENOSPC : QUEUE_ETEMP;
	}
	if (fail != QUEUE_OK) {
		for (i = 0; i < n; i++)
			jobs[i]->st = fail;
		goto out;
	}
	rc = queue_batch_rows(q, jobs, segs, offs, crcs, stored);
	if (rc != SQLITE_OK) {
		log_err("event=store_error op=commit sqlite=%d error=%s", rc,
		    log_value(sqlite3_errmsg(q->wdb),
		    strlen(sqlite3_errmsg(q->wdb))));
		for (i = 0; i < n; i++)
			jobs[i]->st = queue_sql_status(rc);
	}
out:
	queue_refresh_space(q);
	for (i = 0; i < n; i++)
		queue_finish(q, jobs[i]);
}

static void *queue_writer_main(void *arg)
{
	struct queue *q = arg;
	struct qjob *jobs[QUEUE_BATCH_MAX];

	pthread_mutex_lock(&q->mu);
	for (;;) {
		size_t n = 0, bytes = 0;
		struct timespec ts;

		while (q->puts.n == 0 && !q->stopping) {
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += 5;
			if (pthread_cond_timedwait(&q->wcond, &q->mu, &ts) ==
			    ETIMEDOUT) {
				pthread_mutex_unlock(&q->mu);
				queue_refresh_space(q);
				pthread_mutex_lock(&q->mu);
			}
		}
		if (q->puts.n == 0 && q->stopping)
			break;
		/* everything that arrived during the previous commit */
		while (n < QUEUE_BATCH_MAX && q->puts.head != NULL &&
		    (n == 0 || bytes < QUEUE_BATCH_BYTES)) {
			jobs[n] = qlist_pop(&q->puts);
			bytes += jobs[n]->msg->body.len +
			    jobs[n]->msg->body_fd_len;
			n++;
		}
		pthread_mutex_unlock(&q->mu);
		queue_commit_batch(q, jobs, n);
		pthread_mutex_lock(&q->mu);
	}
	pthread_mutex_unlock(&q->mu);
	return NULL;
}

void queue_put(struct queue *q, struct queue_msg_in *m, queue_put_cb *cb,
    void *arg)
{
	struct qjob *j = xcalloc(1, sizeof(*j));

	j->kind = QJOB_PUT;
	j->msg = m;
	j->put_cb = cb;
	j->arg = arg;
	pthread_mutex_lock(&q->mu);
	qlist_push(&q->puts, j);
	pthread_cond_signal(&q->wcond);
	pthread_mutex_unlock(&q->mu);
}

/* --- queries, on the reader thread --- */

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

static int queue_q_summary(struct queue *q, struct qjob *j)
{
	static const char sql[] =
	    "SELECT r.domain, count(DISTINCT r.msg), count(*), min(m.arrival)"
	    " FROM rcpt r JOIN msg m ON m.id = r.msg"
	    " WHERE r.state IN (0, 1, 2) GROUP BY r.domain ORDER BY r.domain";
	sqlite3_stmt *s;
	int rc;

	rc = sqlite3_prepare_v2(q->rdb, sql, -1, &s, NULL);
	if (rc != SQLITE_OK)
		return rc;
	rc = queue_rows(s, &j->rows);
	sqlite3_finalize(s);
	return rc;
}

static int queue_q_list(struct queue *q, struct qjob *j)
{
	static const char sql_all[] =
	    "SELECT printf('%016X', m.id), m.arrival, m.size, m.sender,"
	    " r.addr, r.state, r.attempts, r.next_try, r.domain"
	    " FROM rcpt r JOIN msg m ON m.id = r.msg"
	    " WHERE r.state IN (0, 1, 2) ORDER BY m.id, r.id";
	/* the domain and its subdomains: an index range on the reversed key */
	static const char sql_dom[] =
	    "SELECT printf('%016X', m.id), m.arrival, m.size, m.sender,"
	    " r.addr, r.state, r.attempts, r.next_try, r.domain"
	    " FROM rcpt r JOIN msg m ON m.id = r.msg"
	    " WHERE r.rkey >= ?1 AND r.rkey < ?2 AND r.state IN (0, 1, 2)"
	    " ORDER BY m.id, r.id";
	struct buf lo = BUF_INIT, hi = BUF_INIT;
	sqlite3_stmt *s;
	int rc;

	if (j->domain == NULL || j->domain[0] == '\0') {
		rc = sqlite3_prepare_v2(q->rdb, sql_all, -1, &s, NULL);
	} else {
		domain_rkey(&lo, j->domain, strlen(j->domain));
		/* every key that starts with "org.example." sorts below "org.example/" */
		buf_append(&hi, lo.p, lo.len - 1);
		buf_putc(&hi, '.' + 1);
		rc = sqlite3_prepare_v2(q->rdb, sql_dom, -1, &s, NULL);
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
	sqlite3_stmt *s;
	int rc;

	rc = sqlite3_prepare_v2(q->rdb, sql_msg, -1, &s, NULL);
	if (rc != SQLITE_OK)
		return rc;
	sqlite3_bind_int64(s, 1, (sqlite3_int64)j->id);
	rc = queue_rows(s, &j->rows);
	sqlite3_finalize(s);
	if (rc != SQLITE_OK)
		return rc;
	if (j->rows.len == 0) {
		j->st = QUEUE_ENOENT;
		return SQLITE_OK;
	}
	rc = sqlite3_prepare_v2(q->rdb, sql_rcpt, -1, &s, NULL);
	if (rc != SQLITE_OK)
		return rc;
	sqlite3_bind_int64(s, 1, (sqlite3_int64)j->id);
	rc = queue_rows(s, &j->rows);
	sqlite3_finalize(s);
	return rc;
}

static void *queue_reader_main(void *arg)
{
	struct queue *q = arg;
	struct qjob *j;
	int rc;

	pthread_mutex_lock(&q->mu);
	for (;;) {
		while (q->reads.n == 0 && !q->stopping)
			pthread_cond_wait(&q->rcond, &q->mu);
		if (q->reads.n == 0)
			break;
		j = qlist_pop(&q->reads);
		pthread_mutex_unlock(&q->mu);
		j->st = QUEUE_OK;
		switch (j->kind) {
		case QJOB_SUMMARY:
			rc = queue_q_summary(q, j);
			break;
		case QJOB_LIST:
			rc = queue_q_list(q, j);
			break;
		case QJOB_SHOW:
			rc = queue_q_show(q, j);
			break;
		default:
			rc = SQLITE_MISUSE;
			break;
		}
		if (rc != SQLITE_OK) {
			log_err("event=store_error op=query sqlite=%d", rc);
			j->st = QUEUE_ETEMP;
			buf_reset(&j->rows);
		}
		queue_finish(q, j);
		pthread_mutex_lock(&q->mu);
	}
	pthread_mutex_unlock(&q->mu);
	return NULL;
}

static void queue_read_job(struct queue *q, enum qjob_kind kind,
    const char *domain, uint64_t id, queue_text_cb *cb, void *arg)
{
	struct qjob *j = xcalloc(1, sizeof(*j));

	j->kind = kind;
	j->text_cb = cb;
	j->arg = arg;
	j->domain = domain ? xstrdup(domain) : NULL;
	j->id = id;
	pthread_mutex_lock(&q->mu);
	qlist_push(&q->reads, j);
	pthread_cond_signal(&q->rcond);
	pthread_mutex_unlock(&q->mu);
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

/* --- open, recover, close --- */

static int queue_db_open(const char *path, sqlite3 **db, bool writer,
    struct buf *err)
{
	int rc, flags = writer ? SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE :
	    SQLITE_OPEN_READONLY;

	rc = sqlite3_open_v2(path, db, flags | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		buf_printf(err, "cannot open %s: %s", path,
		    *db ? sqlite3_errmsg(*db) : sqlite3_errstr(rc));
		return -1;
	}
	sqlite3_busy_timeout(*db, 10000);
	if (writer) {
		char *msg = NULL;

		rc = sqlite3_exec(*db, "PRAGMA journal_mode=WAL;"
		    "PRAGMA synchronous=FULL;", NULL, NULL, &msg);
		if (rc == SQLITE_OK)
			rc = sqlite3_exec(*db, queue_schema, NULL, NULL, &msg);
		if (rc != SQLITE_OK) {
			buf_printf(err, "cannot set up %s: %s", path,
			    msg ? msg : sqlite3_errstr(rc));
			sqlite3_free(msg);
			return -1;
		}
	}
	return 0;
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
 * appends to an old file.
 */
static uint32_t queue_recover_segments(struct queue *q)
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
			struct buf p = BUF_INIT;

			segment_path(&p, q->segdir, (uint32_t)id);
			if (unlink(p.p) == 0)
				log_info("event=recover_segment action=removed"
				    " segment=%08lX", id);
			buf_free(&p);
		}
	}
	sqlite3_finalize(s);
	closedir(d);
	return next;
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

	if (sqlite3_prepare_v2(q->wdb, ins_msg, -1, &q->ins_msg, NULL) ||
	    sqlite3_prepare_v2(q->wdb, ins_rcpt, -1, &q->ins_rcpt, NULL) ||
	    sqlite3_prepare_v2(q->wdb, upd_seg, -1, &q->upd_seg, NULL)) {
		buf_printf(err, "cannot prepare statements: %s",
		    sqlite3_errmsg(q->wdb));
		return -1;
	}
	return 0;
}

struct queue *queue_open(const char *dir, struct event_base *base,
    struct buf *err)
{
	struct queue *q = xcalloc(1, sizeof(*q));
	struct buf path = BUF_INIT;
	uint32_t next_seg;
	int e;

	q->dir = xstrdup(dir);
	buf_printf(&path, "%s/seg", dir);
	q->segdir = buf_steal(&path);
	if ((mkdir(dir, 0700) != 0 && errno != EEXIST) ||
	    (mkdir(q->segdir, 0700) != 0 && errno != EEXIST)) {
		buf_printf(err, "cannot create %s: %s", q->segdir,
		    strerror(errno));
		goto fail;
	}
	buf_printf(&path, "%s/queue.db", dir);
	if (queue_db_open(path.p, &q->wdb, true, err) != 0 ||
	    queue_db_open(path.p, &q->rdb, false, err) != 0 ||
	    queue_prepare(q, err) != 0)
		goto fail;
	q->max_id = (uint64_t)queue_scalar(q->wdb,
	    "SELECT coalesce(max(id), 0) FROM msg");
	next_seg = queue_recover_segments(q);
	if ((e = segment_writer_init(&q->seg, q->segdir, next_seg)) != 0) {
		buf_printf(err, "cannot open %s: %s", q->segdir, strerror(e));
		goto fail;
	}
	queue_refresh_space(q);
	pthread_mutex_init(&q->mu, NULL);
	pthread_cond_init(&q->wcond, NULL);
	pthread_cond_init(&q->rcond, NULL);
	qlist_init(&q->puts);
	qlist_init(&q->reads);
	qlist_init(&q->done);
	q->done_ev = event_new(base, -1, 0, queue_done_cb, q);
	if (pthread_create(&q->writer, NULL, queue_writer_main, q) != 0 ||
	    pthread_create(&q->reader, NULL, queue_reader_main, q) != 0) {
		buf_printf(err, "cannot start queue threads");
		goto fail;	/* start-up only: the process exits */
	}
	buf_free(&path);
	return q;
fail:
	buf_free(&path);
	if (q->wdb)
		sqlite3_close(q->wdb);
	if (q->rdb)
		sqlite3_close(q->rdb);
	free(q->segdir);
	free(q->dir);
	free(q);
	return NULL;
}

void queue_close(struct queue *q)
{
	if (q == NULL)
		return;
	pthread_mutex_lock(&q->mu);
	q->stopping = true;
	pthread_cond_broadcast(&q->wcond);
	pthread_cond_broadcast(&q->rcond);
	pthread_mutex_unlock(&q->mu);
	pthread_join(q->writer, NULL);
	pthread_join(q->reader, NULL);
	queue_done_cb(-1, 0, q);
	event_free(q->done_ev);
	sqlite3_finalize(q->ins_msg);
	sqlite3_finalize(q->ins_rcpt);
	sqlite3_finalize(q->upd_seg);
	sqlite3_close(q->rdb);
	sqlite3_close(q->wdb);
	segment_writer_close(&q->seg);
	pthread_mutex_destroy(&q->mu);
	pthread_cond_destroy(&q->wcond);
	pthread_cond_destroy(&q->rcond);
	free(q->segdir);
	free(q->dir);
	free(q);
}
