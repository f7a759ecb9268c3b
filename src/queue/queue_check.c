/* queue_check - detect a damaged queue database, quarantine and salvage it */
#include "queue/queue_check.h"
#include "queue/queue.h"
#include "queue/segment.h"
#include "log/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static long long file_size(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

static bool has_segments(const char *dir)
{
	struct buf p = BUF_INIT;
	struct dirent *de;
	bool found = false;
	DIR *d;

	buf_printf(&p, "%s/seg", dir);
	d = opendir(p.p);
	buf_free(&p);
	if (d == NULL)
		return false;
	while (!found && (de = readdir(d)) != NULL) {
		size_t n = strlen(de->d_name);

		found = n > 4 && strcmp(de->d_name + n - 4, ".seg") == 0;
	}
	closedir(d);
	return found;
}

static uint32_t be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
}

/* header_size - the database size its valid header declares, or 0 */
static unsigned long long header_size(const unsigned char *h)
{
	unsigned long long psize = (unsigned long long)h[16] << 8 | h[17];

	if (memcmp(h, "SQLite format 3", 16) != 0 || be32(h + 24) != be32(h + 92))
		return 0;
	return (psize == 1 ? 65536 : psize) * be32(h + 28);
}

bool queue_check_cut(const char *dir, const char *dbname, struct buf *why)
{
	struct buf path = BUF_INIT, wal = BUF_INIT;
	unsigned char h[100];
	long long size, wsize;
	bool cut = false;
	int fd;

	buf_printf(&path, "%s/%s", dir, dbname);
	buf_printf(&wal, "%s-wal", path.p);
	size = file_size(path.p);
	wsize = file_size(wal.p);
	if (size < (long long)sizeof(h)) {
		if (wsize <= 0 && has_segments(dir)) {
			buf_printf(why, size < 0 ? "the database is missing" :
			    "the database is empty (%lld bytes)", size);
			cut = true;
		}
		goto out;
	}
	fd = open(path.p, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || pread(fd, h, sizeof(h), 0) != (ssize_t)sizeof(h)) {
		if (fd >= 0)
			close(fd);
		goto out;	/* SQLite will say what is wrong */
	}
	close(fd);
	if (memcmp(h, "SQLite format 3", 16) != 0) {
		buf_puts(why, "not an SQLite database");
		cut = true;
	} else if ((unsigned long long)size < header_size(h)) {
		buf_printf(why, "the database is cut short: %lld of %llu bytes",
		    size, header_size(h));
		cut = true;
	}
out:
	buf_free(&path);
	buf_free(&wal);
	return cut;
}

/* copy_file - from to to, whole; false when from cannot be read */
static bool copy_file(const char *from, const char *to)
{
	char b[65536];
	ssize_t r = 0;
	int in, out;

	if ((in = open(from, O_RDONLY | O_CLOEXEC)) < 0)
		return false;
	out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	while (out >= 0 && (r = read(in, b, sizeof(b))) > 0)
		if (write(out, b, (size_t)r) != r) {
			r = -1;
			break;
		}
	close(in);
	if (out >= 0)
		close(out);
	return out >= 0 && r == 0;
}

/*
 * salvage_copy - a working copy of the damaged database (and its log):
 * the quarantined files stay as they were found.  A copy cut short is
 * extended with zeros to the size its header declares, so that SQLite
 * reads its schema and every row before the cut (the zeroed pages end a
 * scan as damage).
 */
static bool salvage_copy(const char *qdir, const char *dbname, struct buf *copy)
{
	struct buf from = BUF_INIT, to = BUF_INIT;
	unsigned char h[100];
	bool ok;
	int fd;

	buf_printf(&from, "%s/%s", qdir, dbname);
	buf_printf(copy, "%s/salvage-copy.db", qdir);
	ok = copy_file(from.p, copy->p);
	buf_puts(&from, "-wal");
	buf_printf(&to, "%s-wal", copy->p);
	if (ok)
		copy_file(from.p, to.p);
	if (ok && (fd = open(copy->p, O_RDWR | O_CLOEXEC)) >= 0) {
		struct stat st;

		if (pread(fd, h, sizeof(h), 0) == (ssize_t)sizeof(h) &&
		    fstat(fd, &st) == 0 &&
		    (unsigned long long)st.st_size < header_size(h) &&
		    ftruncate(fd, (off_t)header_size(h)) != 0)
			ok = false;
		close(fd);
	}
	buf_free(&from);
	buf_free(&to);
	return ok;
}

/* salvage_drop_copy - the working copy and what SQLite made beside it */
static void salvage_drop_copy(const struct buf *copy)
{
	static const char *const sfx[] = { "", "-wal", "-shm", "-journal" };
	struct buf p = BUF_INIT;
	size_t i;

	for (i = 0; i < sizeof(sfx) / sizeof(sfx[0]); i++) {
		buf_reset(&p);
		buf_printf(&p, "%s%s", copy->p, sfx[i]);
		unlink(p.p);
	}
	buf_free(&p);
}

/* salvage_table - copy every row the old table yields, in id order one
 * way; a damaged page ends the scan, a value on one skips its row (the
 * values are read as they are copied): neither is an error */
static int salvage_table(sqlite3 *from, sqlite3 *db, const char *table,
    bool backwards, unsigned long long *copied)
{
	struct buf sql = BUF_INIT;
	sqlite3_stmt *sel = NULL, *ins = NULL;
	int rc, i, n;

	buf_printf(&sql, "SELECT * FROM %s ORDER BY id%s", table,
	    backwards ? " DESC" : "");
	if (sqlite3_prepare_v2(from, sql.p, -1, &sel, NULL) != SQLITE_OK) {
		rc = SQLITE_OK;		/* unreadable: nothing to copy */
		goto out;
	}
	n = sqlite3_column_count(sel);
	buf_reset(&sql);
	buf_printf(&sql, "INSERT OR IGNORE INTO %s(", table);
	for (i = 0; i < n; i++) {
		const char *col = sqlite3_column_name(sel, i);

		/* the names come from a damaged file: only plain ones are
		 * spliced into the statement */
		if (col == NULL || col[0] == '\0' ||
		    strspn(col, "abcdefghijklmnopqrstuvwxyz0123456789_") !=
		    strlen(col)) {
			log_err("event=salvage_unreadable table=%s"
			    " error=\"odd column name\"", table);
			rc = SQLITE_OK;
			goto out;
		}
		buf_printf(&sql, "%s%s", i ? "," : "", col);
	}
	buf_puts(&sql, ") VALUES(");
	for (i = 0; i < n; i++)
		buf_printf(&sql, "%s?%d", i ? "," : "", i + 1);
	buf_puts(&sql, ")");
	rc = sqlite3_prepare_v2(db, sql.p, -1, &ins, NULL);
	if (rc != SQLITE_OK)
		goto out;
	while (sqlite3_step(sel) == SQLITE_ROW) {
		for (i = 0; i < n; i++)
			sqlite3_bind_value(ins, i + 1, sqlite3_column_value(sel, i));
		rc = sqlite3_step(ins);
		sqlite3_reset(ins);
		if ((rc & 0xff) == SQLITE_CORRUPT)
			continue;	/* a value on a damaged page: skipped */
		if (rc != SQLITE_DONE)
			goto out;	/* the new database: a real error */
		*copied += (unsigned long long)sqlite3_changes(db);
	}
	rc = SQLITE_OK;
out:
	sqlite3_finalize(sel);
	sqlite3_finalize(ins);
	buf_free(&sql);
	return rc;
}

/* salvage_orphans - messages that kept no recipient: logged, dropped */
static int salvage_orphans(sqlite3 *db, unsigned long long *lost)
{
	sqlite3_stmt *s;
	int rc;

	rc = sqlite3_prepare_v2(db, "SELECT printf('%016X', id) FROM msg"
	    " WHERE id NOT IN (SELECT msg FROM rcpt)", -1, &s, NULL);
	if (rc != SQLITE_OK)
		return rc;
	while (sqlite3_step(s) == SQLITE_ROW) {
		log_err("event=salvage_lost qid=%s detail=\"its recipients"
		    " were in the damaged part; its body stays in its segment"
		    " file\"", sqlite3_column_text(s, 0));
		(*lost)++;
	}
	sqlite3_finalize(s);
	return sqlite3_exec(db, "DELETE FROM msg WHERE id NOT IN"
	    " (SELECT msg FROM rcpt);"
	    "DELETE FROM rcpt WHERE msg NOT IN (SELECT id FROM msg);"
	    "INSERT INTO seg(id, live) SELECT seg, count(*) FROM msg"
	    " GROUP BY seg;", NULL, NULL, NULL);
}

/* salvage_quarantine - a fresh directory under <dir>/quarantine; the
 * damaged database's files are moved into it */
static int salvage_quarantine(const char *dir, const char *dbname,
    struct buf *qdir, struct buf *err)
{
	static const char *const sfx[] = { "", "-wal", "-shm" };
	struct buf from = BUF_INIT, to = BUF_INIT;
	char stamp[32];
	struct tm tm;
	time_t now = time(NULL);
	size_t i;
	int n, rc = 0;

	gmtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
	buf_printf(&from, "%s/quarantine", dir);
	if (mkdir(from.p, 0700) != 0 && errno != EEXIST) {
		buf_printf(err, "cannot create %s: %s", from.p, strerror(errno));
		rc = -1;
		goto out;
	}
	for (n = 0;; n++) {
		buf_reset(qdir);
		buf_printf(qdir, "%s/%s", from.p, stamp);
		if (n > 0)
			buf_printf(qdir, "-%d", n);
		if (mkdir(qdir->p, 0700) == 0)
			break;
		if (errno != EEXIST || n > 100) {
			buf_printf(err, "cannot create %s: %s", qdir->p,
			    strerror(errno));
			rc = -1;
			goto out;
		}
	}
	for (i = 0; i < sizeof(sfx) / sizeof(sfx[0]); i++) {
		buf_reset(&from);
		buf_reset(&to);
		buf_printf(&from, "%s/%s%s", dir, dbname, sfx[i]);
		buf_printf(&to, "%s/%s%s", qdir->p, dbname, sfx[i]);
		if (rename(from.p, to.p) != 0 && errno != ENOENT) {
			buf_printf(err, "cannot move %s: %s", from.p,
			    strerror(errno));
			rc = -1;
			goto out;
		}
	}
out:
	buf_free(&from);
	buf_free(&to);
	return rc;
}

int queue_salvage(const char *dir, const char *dbname, const char *schema,
    struct buf *qdir, struct buf *err)
{
	struct buf path = BUF_INIT, old = BUF_INIT;
	unsigned long long msgs = 0, rcpts = 0, lost = 0;
	sqlite3_stmt *cnt = NULL;
	sqlite3 *db = NULL, *from = NULL;
	int rc = -1, src;

	if (salvage_quarantine(dir, dbname, qdir, err) != 0)
		goto out;
	buf_printf(&path, "%s/%s", dir, dbname);
	if (!salvage_copy(qdir->p, dbname, &old))
		buf_reset(&old);	/* nothing to read (gone or empty) */
	if (sqlite3_open_v2(path.p, &db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_CREATE, NULL) != SQLITE_OK ||
	    sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;",
	    NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_exec(db, schema, NULL, NULL, NULL) != SQLITE_OK) {
		buf_printf(err, "cannot create %s: %s", path.p,
		    db ? sqlite3_errmsg(db) : "out of memory");
		goto out;
	}
	/*
	 * The damaged copy has a connection of its own: SQLite forgets every
	 * schema of a connection that met damage, which would break the
	 * writes into the new database if it were attached.
	 */
	if (old.len > 0 && file_size(old.p) > 0) {
		if (sqlite3_open_v2(old.p, &from, SQLITE_OPEN_READWRITE, NULL) !=
		    SQLITE_OK) {
			log_err("event=salvage_unreadable file=%s error=%s",
			    log_value(old.p, old.len), from ?
			    sqlite3_errmsg(from) : "out of memory");
		} else if ((src = sqlite3_exec(db, "BEGIN", NULL, NULL, NULL)) ||
		    (src = salvage_table(from, db, "msg", false, &msgs)) ||
		    (src = salvage_table(from, db, "msg", true, &msgs)) ||
		    (src = salvage_table(from, db, "rcpt", false, &rcpts)) ||
		    (src = salvage_table(from, db, "rcpt", true, &rcpts)) ||
		    (src = salvage_orphans(db, &lost)) ||
		    (src = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL))) {
			buf_printf(err, "cannot salvage into %s: %s (%s)",
			    path.p, sqlite3_errstr(src), sqlite3_errmsg(db));
			goto out;
		}
	}
	if (sqlite3_prepare_v2(db, "SELECT (SELECT count(*) FROM msg),"
	    " (SELECT count(*) FROM rcpt)", -1, &cnt, NULL) == SQLITE_OK &&
	    sqlite3_step(cnt) == SQLITE_ROW) {
		msgs = (unsigned long long)sqlite3_column_int64(cnt, 0);
		rcpts = (unsigned long long)sqlite3_column_int64(cnt, 1);
	}
	sqlite3_finalize(cnt);
	log_err("event=store_salvaged messages=%llu recipients=%llu"
	    " messages_without_recipients=%llu quarantine=%s", msgs, rcpts,
	    lost, log_value(qdir->p, qdir->len));
	rc = 0;
out:
	if (from)
		sqlite3_close(from);
	if (db)
		sqlite3_close(db);
	if (old.len > 0)
		salvage_drop_copy(&old);
	buf_free(&path);
	buf_free(&old);
	return rc;
}

/* check_db - PRAGMA quick_check: damage found is listed and marked */
static int check_db(sqlite3 *db, const char *dir, struct buf *out)
{
	sqlite3_stmt *s;
	bool ok = true;
	int rc;

	rc = sqlite3_prepare_v2(db, "PRAGMA quick_check(20)", -1, &s, NULL);
	if (rc != SQLITE_OK)
		return rc;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const char *t = (const char *)sqlite3_column_text(s, 0);

		if (t == NULL || strcmp(t, "ok") == 0)
			continue;
		ok = false;
		buf_printf(out, "db\t%s\n", t);
	}
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE) {
		ok = false;
		buf_printf(out, "db\t%s\n", sqlite3_errstr(rc));
	}
	if (!ok) {
		struct buf p = BUF_INIT;
		int fd;

		buf_printf(&p, "%s/%s", dir, QUEUE_CHECK_MARKER);
		fd = open(p.p, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
		if (fd >= 0) {
			fsync(fd);
			close(fd);
		}
		buf_free(&p);
	}
	return SQLITE_OK;
}

int queue_check_chunk(sqlite3 *db, const char *dir, const char *segdir,
    uint64_t after, struct buf *out)
{
	sqlite3_stmt *m = NULL, *r = NULL;
	struct segment_cursor cur;
	uint64_t last = after;
	unsigned n = 0;
	int rc;

	if (after == 0 && (rc = check_db(db, dir, out)) != SQLITE_OK)
		return rc;
	rc = sqlite3_prepare_v2(db, "SELECT id, seg, off, size, crc FROM msg"
	    " WHERE id > ?1 ORDER BY id LIMIT ?2", -1, &m, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(db, "SELECT id FROM rcpt WHERE msg = ?1"
		    " AND state IN (0, 1, 2)", -1, &r, NULL);
	if (rc != SQLITE_OK)
		goto out;
	segment_cursor_init(&cur, segdir);
	sqlite3_bind_int64(m, 1, (sqlite3_int64)after);
	sqlite3_bind_int(m, 2, QUEUE_CHECK_CHUNK);
	while ((rc = sqlite3_step(m)) == SQLITE_ROW) {
		uint64_t id = (uint64_t)sqlite3_column_int64(m, 0);
		int e = segment_check(&cur, (uint32_t)sqlite3_column_int64(m, 1),
		    (uint64_t)sqlite3_column_int64(m, 2), id,
		    (uint64_t)sqlite3_column_int64(m, 3),
		    (uint32_t)sqlite3_column_int64(m, 4));

		last = id;
		n++;
		if (!queue_body_damaged(e))
			continue;
		sqlite3_reset(r);
		sqlite3_bind_int64(r, 1, (sqlite3_int64)id);
		while (sqlite3_step(r) == SQLITE_ROW)
			buf_printf(out, "bad\t%llu\t%lld\t%d\n",
			    (unsigned long long)id,
			    (long long)sqlite3_column_int64(r, 0), e);
	}
	segment_cursor_close(&cur);
	if (rc == SQLITE_DONE) {
		rc = SQLITE_OK;
		buf_printf(out, "end\t%llu\t%u\n", (unsigned long long)last, n);
	}
out:
	sqlite3_finalize(m);
	sqlite3_finalize(r);
	return rc;
}
