/*
 * test_queue - the SQLite + segment store through its public interface,
 * with a real event loop and the store's real threads: what was put is
 * there after a restart, byte-exact; queries follow the per-domain key on
 * label boundaries; damaged records are detected; segment bytes that no
 * row points at are removed at recovery.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "log/log.h"
#include "queue/queue.h"
#include "queue/queue_check.h"
#include "queue/segment.h"
#include "util/crc32c.h"
#include "util/idgen.h"
#include "util/xalloc.h"

struct waiter {
	struct event_base *base;
	int pending;
	int ok;
	enum queue_status last;
	struct buf rows;
};

static void put_cb(void *arg, enum queue_status st)
{
	struct waiter *w = arg;

	w->ok += st == QUEUE_OK;
	w->last = st;
	if (--w->pending == 0)
		event_base_loopbreak(w->base);
}

static void text_cb(void *arg, enum queue_status st, const struct buf *rows)
{
	struct waiter *w = arg;

	w->last = st;
	buf_reset(&w->rows);
	buf_append(&w->rows, rows->p, rows->len);
	if (--w->pending == 0)
		event_base_loopbreak(w->base);
}

static void wait_all(struct waiter *w)
{
	while (w->pending > 0)
		event_base_dispatch(w->base);
}

static struct queue_msg_in *msg(const char *rcpt, const char *dom,
    const char *body)
{
	struct queue_msg_in *m = xcalloc(1, sizeof(*m));

	m->id = idgen_next();
	m->sender = xstrdup("s@client.test");
	m->arrival = 1700000000;
	m->nrcpt = 1;
	m->rcpts = xcalloc(1, sizeof(*m->rcpts));
	m->rcpts[0].addr = xstrdup(rcpt);
	m->rcpts[0].domain = xstrdup(dom);
	m->rcpts[0].state = QUEUE_R_HELD;
	buf_puts(&m->body, body);
	m->body_fd = -1;
	return m;
}

static char *tmpdir(void)
{
	char tmpl[] = "/tmp/etrnd-test-queue-XXXXXX";

	assert_non_null(mkdtemp(tmpl));
	return xstrdup(tmpl);
}

static size_t count_lines(const struct buf *b)
{
	size_t n = 0, i;

	for (i = 0; i < b->len; i++)
		n += b->p[i] == '\n';
	return n;
}

static void test_put_list_restart(void **state)
{
	struct event_base *base = event_base_new();
	struct waiter w = { .base = base };
	char *dir = tmpdir();
	struct buf err = BUF_INIT, body = BUF_INIT;
	struct queue *q = queue_open(dir, 0, base, &err);
	static const char *const doms[] = { "example.org", "a.example.org",
		"badexample.org", "example.org.au", "b.a.example.org" };
	int i;

	assert_non_null(q);
	for (i = 0; i < 50; i++) {
		char rcpt[64];
		const char *d = doms[i % 5];

		snprintf(rcpt, sizeof(rcpt), "u%d@%s", i, d);
		w.pending++;
		queue_put(q, msg(rcpt, d, "Subject: x\r\n\r\nbody\r\n"), put_cb, &w);
	}
	/* a body spooled to a file is stored the same way */
	{
		struct queue_msg_in *m = msg("file@example.org", "example.org", "");
		char path[] = "/tmp/etrnd-spool-XXXXXX";
		int fd = mkstemp(path);

		unlink(path);
		assert_int_equal(write(fd, "spooled body\r\n", 14), 14);
		m->body_fd = fd;
		m->body_fd_len = 14;
		w.pending++;
		queue_put(q, m, put_cb, &w);
	}
	wait_all(&w);
	assert_int_equal(w.ok, 51);

	/* example.org and its subdomains: never badexample.org or example.org.au */
	w.pending = 1;
	queue_list(q, "example.org", text_cb, &w);
	wait_all(&w);
	assert_int_equal(w.last, QUEUE_OK);
	assert_int_equal(count_lines(&w.rows), 31);
	assert_null(strstr(w.rows.p, "badexample.org"));
	assert_null(strstr(w.rows.p, "example.org.au"));
	w.pending = 1;
	queue_list(q, "a.example.org", text_cb, &w);
	wait_all(&w);
	assert_int_equal(count_lines(&w.rows), 20);
	w.pending = 1;
	queue_summary(q, text_cb, &w);
	wait_all(&w);
	assert_int_equal(count_lines(&w.rows), 5);
	assert_non_null(strstr(w.rows.p, "example.org\t11\t11\t1700000000\n"));
	queue_close(q);

	/* after a restart everything is there, and ids keep growing */
	q = queue_open(dir, 0, base, &err);
	assert_non_null(q);
	assert_true(queue_max_id(q) > 0);
	w.pending = 1;
	queue_list(q, "", text_cb, &w);
	wait_all(&w);
	assert_int_equal(count_lines(&w.rows), 51);
	w.pending = 1;
	queue_show(q, 12345, text_cb, &w);
	wait_all(&w);
	assert_int_equal(w.last, QUEUE_ENOENT);
	queue_close(q);
	buf_free(&body);
	buf_free(&err);
	buf_free(&w.rows);
	event_base_free(base);
	free(dir);
}

/* two_records - a segment with messages 42 ("hello") and 43 ("world") */
static void two_records(struct segment_writer *sw, const char *dir,
    uint32_t *seg, uint64_t *off, uint32_t *crc, uint32_t *seg2,
    uint64_t *off2, uint32_t *crc2)
{
	bool flush;

	assert_int_equal(segment_writer_init(sw, dir, 1, false), 0);
	assert_int_equal(segment_append(sw, 42, "hello\r\n", 7, -1, 0, "", 0, seg,
	    off, crc), 0);
	assert_int_equal(segment_append(sw, 43, "world\r\n", 7, -1, 0, "", 0, seg2,
	    off2, crc2), 0);
	assert_int_equal(segment_sync(sw, true, &flush), 0);
	assert_false(flush);
}

/* overwrite_fs_dir - a new directory on ext4 or XFS, where prepared
 * space is used: /tmp, else the working directory */
static char *overwrite_fs_dir(void)
{
	char *dirs[2];
	struct statfs sf;
	int i;

	dirs[0] = tmpdir();
	dirs[1] = xstrdup("etrnd-test-queue-XXXXXX");
	assert_non_null(mkdtemp(dirs[1]));
	for (i = 0; i < 2; i++) {
		assert_int_equal(statfs(dirs[i], &sf), 0);
		if ((unsigned long)sf.f_type == 0xEF53u ||
		    (unsigned long)sf.f_type == 0x58465342u) {
			rmdir(dirs[1 - i]);
			free(dirs[1 - i]);
			return dirs[i];
		}
	}
	fail_msg("neither /tmp nor . is on ext4 or XFS");
	return NULL;
}

static off_t file_size(const char *dir, uint32_t seg)
{
	struct buf p = BUF_INIT;
	struct stat st;

	segment_path(&p, dir, seg);
	assert_int_equal(stat(p.p, &st), 0);
	buf_free(&p);
	return st.st_size;
}

/*
 * Prepared space: after segment_prepare, records in zeroed, synced space
 * are only written out (the commit's flush covers them); a new file, a
 * record past that space, or a writer without shared flushes gets its
 * own fdatasync.  A retired file becomes the spare, and the next file
 * reuses its blocks.
 */
static void test_segment_prepared(void **state)
{
	char *dir = overwrite_fs_dir();
	struct segment_writer sw;
	struct buf out = BUF_INIT, sp = BUF_INIT;
	char *big = xcalloc(1, SEGMENT_PREP_BYTES);
	uint32_t seg, crc, seg2, crc2;
	uint64_t off, off2;
	bool flush;

	assert_int_equal(segment_writer_init(&sw, dir, 1, true), 0);
	assert_int_equal(segment_append(&sw, 1, "one\r\n", 5, -1, 0, "", 0, &seg,
	    &off, &crc), 0);
	assert_int_equal(segment_sync(&sw, true, &flush), 0);
	assert_false(flush);			/* a new name: fdatasync */
	segment_prepare(&sw);
	assert_int_equal(sw.ready, sw.off + SEGMENT_PREP_BYTES);
	assert_int_equal(file_size(dir, seg), (off_t)sw.ready);
	assert_int_equal(segment_append(&sw, 2, "two\r\n", 5, -1, 0, "", 0, &seg2,
	    &off2, &crc2), 0);
	assert_int_equal(segment_sync(&sw, true, &flush), 0);
	assert_true(flush);			/* inside: written out only */
	assert_int_equal(segment_sync(&sw, true, &flush), 0);
	assert_false(flush);			/* nothing new */
	assert_int_equal(segment_read(dir, seg2, off2, 2, 5, crc2, &out), 0);
	assert_string_equal(out.p, "two\r\n");
	/* more than is left of the prepared space: fdatasync, and the file
	 * grows past it */
	assert_int_equal(segment_append(&sw, 3, big, SEGMENT_PREP_BYTES, -1, 0, "", 0,
	    &seg2, &off2, &crc2), 0);
	assert_int_equal(segment_sync(&sw, true, &flush), 0);
	assert_false(flush);
	assert_true(file_size(dir, seg) > (off_t)sw.ready);
	segment_prepare(&sw);			/* zeroes from the end on */
	assert_int_equal(sw.ready, sw.off + SEGMENT_PREP_BYTES);
	segment_writer_close(&sw);

	/* retired: the file becomes the spare; a second one is removed */
	assert_int_equal(segment_writer_init(&sw, dir, 2, true), 0);
	assert_int_equal(segment_retire(&sw, seg), 0);
	segment_spare_path(&sp, dir);
	assert_int_equal(access(sp.p, F_OK), 0);
	/* the next file takes the spare's blocks: prepared from the start */
	assert_int_equal(segment_append(&sw, 4, "four\r\n", 6, -1, 0, "", 0, &seg2,
	    &off2, &crc2), 0);
	assert_int_equal(seg2, 2);
	assert_int_not_equal(access(sp.p, F_OK), 0);
	assert_true(sw.ready >= 2 * (uint64_t)SEGMENT_PREP_BYTES);
	assert_int_equal(segment_sync(&sw, true, &flush), 0);
	assert_false(flush);			/* a renamed file: dir sync */
	assert_int_equal(segment_append(&sw, 5, "five\r\n", 6, -1, 0, "", 0, &seg2,
	    &off2, &crc2), 0);
	assert_int_equal(segment_sync(&sw, true, &flush), 0);
	assert_true(flush);
	buf_reset(&out);
	assert_int_equal(segment_read(dir, seg2, off2, 5, 6, crc2, &out), 0);
	assert_string_equal(out.p, "five\r\n");
	segment_writer_close(&sw);

	/* a spare left from before goes when shared flushes are off */
	assert_int_equal(segment_writer_init(&sw, dir, 3, true), 0);
	assert_int_equal(segment_retire(&sw, 2), 0);
	buf_reset(&sp);
	segment_spare_path(&sp, dir);
	assert_int_equal(access(sp.p, F_OK), 0);
	segment_writer_close(&sw);
	assert_int_equal(segment_writer_init(&sw, dir, 9, false), 0);
	assert_int_not_equal(access(sp.p, F_OK), 0);

	/* without shared flushes: never prepared, always fdatasync */
	assert_int_equal(segment_append(&sw, 6, "six\r\n", 5, -1, 0, "", 0, &seg,
	    &off, &crc), 0);
	assert_int_equal(segment_sync(&sw, true, &flush), 0);
	segment_prepare(&sw);
	assert_int_equal(sw.ready, 0);
	assert_int_equal(file_size(dir, seg), (off_t)sw.off);
	assert_int_equal(segment_append(&sw, 7, "seven\r\n", 7, -1, 0, "", 0, &seg,
	    &off, &crc), 0);
	assert_int_equal(segment_sync(&sw, true, &flush), 0);
	assert_false(flush);
	/* a retired file is removed, not kept */
	assert_int_equal(segment_append(&sw, 8, "eight\r\n", 7, -1, 0, "", 0, &seg,
	    &off, &crc), 0);
	segment_writer_close(&sw);
	assert_int_equal(segment_writer_init(&sw, dir, 10, false), 0);
	assert_int_equal(segment_retire(&sw, 9), 0);
	buf_reset(&sp);
	segment_path(&sp, dir, 9);
	assert_int_not_equal(access(sp.p, F_OK), 0);
	buf_reset(&sp);
	segment_spare_path(&sp, dir);
	assert_int_not_equal(access(sp.p, F_OK), 0);
	segment_writer_close(&sw);
	free(big);
	buf_free(&out);
	buf_free(&sp);
	free(dir);
}

static void test_segment_verifies(void **state)
{
	char *dir = tmpdir();
	struct segment_writer sw;
	struct buf out = BUF_INIT, p = BUF_INIT;
	uint32_t seg, crc;
	uint64_t off, off2;
	uint32_t seg2, crc2;
	int fd;

	two_records(&sw, dir, &seg, &off, &crc, &seg2, &off2, &crc2);
	assert_int_equal(segment_read(dir, seg, off, 42, 7, crc, &out), 0);
	assert_string_equal(out.p, "hello\r\n");
	buf_reset(&out);
	/* the wrong id, length or checksum never reads as valid */
	assert_int_equal(segment_read(dir, seg, off, 43, 7, crc, &out), EBADMSG);
	assert_int_equal(segment_read(dir, seg, off, 42, 6, crc, &out), EBADMSG);
	assert_int_equal(segment_read(dir, seg, off2, 42, 7, crc, &out), EBADMSG);
	/* a flipped byte in the body is detected */
	segment_path(&p, dir, seg);
	fd = open(p.p, O_RDWR);
	assert_int_equal(pwrite(fd, "J", 1, (off_t)off + SEGMENT_HDR_LEN), 1);
	close(fd);
	assert_int_equal(segment_read(dir, seg, off, 42, 7, crc, &out), EBADMSG);
	assert_int_equal(out.len, 0);
	assert_int_equal(segment_read(dir, seg2, off2, 43, 7, crc2, &out), 0);
	segment_writer_close(&sw);
	buf_free(&out);
	buf_free(&p);
	free(dir);
}

/* what segment_scan found: "seg:off:id:envelope" per record */
static int scan_cb(void *arg, const struct segment_rec *r)
{
	struct buf *out = arg;

	buf_printf(out, "%X:%llu:%llu:%.*s;", (unsigned)r->seg,
	    (unsigned long long)r->off, (unsigned long long)r->id,
	    (int)r->envlen, (const char *)r->env);
	return r->id == 99 ? 7 : 0;	/* 99: stop here */
}

/*
 * segment_scan, the replay's reader: every verified record from a
 * position on, across files, with its envelope; it stops in a file at a
 * torn record, at a damaged one, and at a recycled file's old records
 * (their file number differs).
 */
static void test_segment_scan(void **state)
{
	char *dir = tmpdir();
	struct segment_writer sw;
	struct buf out = BUF_INIT, p = BUF_INIT, p2 = BUF_INIT;
	uint32_t seg, crc;
	uint64_t off[4];
	bool flush;
	char *b3;
	int fd;

	assert_int_equal(segment_writer_init(&sw, dir, 5, false), 0);
	assert_int_equal(segment_append(&sw, 1, "a\r\n", 3, -1, 0, "E1", 2,
	    &seg, &off[0], &crc), 0);
	assert_int_equal(segment_append(&sw, 2, "bb\r\n", 4, -1, 0, "E2", 2,
	    &seg, &off[1], &crc), 0);
	/* an envelope the scan would refuse is never written; the records
	 * gathered before it are, at once: their memory is the caller's
	 * again (an ASan build sees a use after free otherwise) */
	b3 = xmemdup0("ccc\r\n", 5);
	assert_int_equal(segment_append(&sw, 3, b3, 5, -1, 0, "E3", 2,
	    &seg, &off[2], &crc), 0);
	assert_int_equal(segment_append(&sw, 4, "d\r\n", 3, -1, 0, "E4",
	    (size_t)SEGMENT_ENV_MAX + 1, &seg, &off[3], &crc), EFBIG);
	assert_false(sw.broken);
	free(b3);
	assert_int_equal(segment_sync(&sw, true, &flush), 0);
	segment_writer_close(&sw);
	assert_int_equal(segment_scan(dir, 5, 0, scan_cb, &out), 0);
	buf_reset(&p);
	buf_printf(&p, "5:0:1:E1;5:%llu:2:E2;5:%llu:3:E3;",
	    (unsigned long long)off[1], (unsigned long long)off[2]);
	assert_string_equal(out.p, p.p);
	/* from the middle; files before from_seg are not read */
	buf_reset(&out);
	assert_int_equal(segment_scan(dir, 5, off[2], scan_cb, &out), 0);
	buf_reset(&p);
	buf_printf(&p, "5:%llu:3:E3;", (unsigned long long)off[2]);
	assert_string_equal(out.p, p.p);
	buf_reset(&out);
	assert_int_equal(segment_scan(dir, 6, 0, scan_cb, &out), 0);
	assert_int_equal(out.len, 0);
	/* the file renamed to another number: its records are old content */
	buf_reset(&p);
	segment_path(&p, dir, 5);
	segment_path(&p2, dir, 6);
	assert_int_equal(rename(p.p, p2.p), 0);
	assert_int_equal(segment_scan(dir, 5, 0, scan_cb, &out), 0);
	assert_int_equal(out.len, 0);
	assert_int_equal(rename(p2.p, p.p), 0);
	/* a damaged envelope ends the file's records there */
	fd = open(p.p, O_RDWR);
	assert_int_equal(pwrite(fd, "X", 1, (off_t)off[1] + SEGMENT_HDR_LEN + 4 +
	    1), 1);
	close(fd);
	assert_int_equal(segment_scan(dir, 5, 0, scan_cb, &out), 0);
	assert_string_equal(out.p, "5:0:1:E1;");
	/* a torn record (cut short) likewise, and a later file goes on */
	assert_int_equal(truncate(p.p, (off_t)off[1] + 10), 0);
	assert_int_equal(segment_writer_init(&sw, dir, 7, false), 0);
	assert_int_equal(segment_append(&sw, 99, "z\r\n", 3, -1, 0, "E9", 2,
	    &seg, &off[3], &crc), 0);
	assert_int_equal(segment_append(&sw, 100, "y\r\n", 3, -1, 0, "EA", 2,
	    &seg, &off[3], &crc), 0);
	assert_int_equal(segment_sync(&sw, true, &flush), 0);
	segment_writer_close(&sw);
	buf_reset(&out);
	/* the callback's non-zero return stops the scan and is returned */
	assert_int_equal(segment_scan(dir, 5, 0, scan_cb, &out), 7);
	assert_string_equal(out.p, "5:0:1:E1;7:0:99:E9;");
	buf_free(&out);
	buf_free(&p);
	buf_free(&p2);
	free(dir);
}

static void put32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
	p[2] = (unsigned char)(v >> 16);
	p[3] = (unsigned char)(v >> 24);
}

/*
 * A batch of 150 records goes to the file in gathered writes (64 records
 * to a pwritev): each one is read back whole, bodies and envelopes, the
 * envelope copied at its append (the caller reuses its buffer).  Ids
 * from 1000: scan_cb stops at 99.
 */
static void test_segment_gathers_a_batch(void **state)
{
	char *dir = tmpdir();
	struct segment_writer sw;
	struct buf out = BUF_INIT, want = BUF_INIT, env = BUF_INIT;
	struct buf body[150];
	uint32_t seg, crc[150];
	uint64_t off[150];
	bool flush;
	int i;

	assert_int_equal(segment_writer_init(&sw, dir, 1, false), 0);
	for (i = 0; i < 150; i++) {
		memset(&body[i], 0, sizeof(body[i]));
		buf_printf(&body[i], "body %d\r\n", i);
		buf_reset(&env);
		buf_printf(&env, "E%d", i);
		assert_int_equal(segment_append(&sw, (uint64_t)i + 1000,
		    body[i].p, body[i].len, -1, 0, env.p, env.len, &seg,
		    &off[i], &crc[i]), 0);
		buf_printf(&want, "1:%llu:%d:E%d;", (unsigned long long)off[i],
		    i + 1000, i);
	}
	assert_int_equal(segment_sync(&sw, true, &flush), 0);
	segment_writer_close(&sw);
	for (i = 0; i < 150; i++) {
		buf_reset(&out);
		assert_int_equal(segment_read(dir, 1, off[i], (uint64_t)i + 1000,
		    body[i].len, crc[i], &out), 0);
		assert_memory_equal(out.p, body[i].p, body[i].len);
		buf_free(&body[i]);
	}
	buf_reset(&out);
	assert_int_equal(segment_scan(dir, 1, 0, scan_cb, &out), 0);
	assert_string_equal(out.p, want.p);
	buf_free(&out);
	buf_free(&want);
	buf_free(&env);
	free(dir);
}

/*
 * A queue written before the envelope joined the record keeps its
 * records of the first format ("ETQ1", 24-byte header): they are still
 * read and checked, and never taken for replay (they hold no envelope).
 */
static void test_segment_reads_first_format(void **state)
{
	char *dir = tmpdir();
	struct buf p = BUF_INIT, out = BUF_INIT;
	struct segment_cursor cur;
	unsigned char h[24];
	const char body[] = "old body\r\n";
	uint32_t crc = crc32c(0, body, sizeof(body) - 1);
	uint64_t id = 0x0102030405060708ull;
	int fd;

	memcpy(h, "ETQ1", 4);
	put32(h + 4, sizeof(body) - 1);
	put32(h + 8, (uint32_t)id);
	put32(h + 12, (uint32_t)(id >> 32));
	put32(h + 16, crc);
	put32(h + 20, crc32c(0, h, 20));
	segment_path(&p, dir, 3);
	fd = open(p.p, O_WRONLY | O_CREAT, 0600);
	assert_int_equal(pwrite(fd, "pad", 3, 0), 3);
	assert_int_equal(pwrite(fd, h, 24, 3), 24);
	assert_int_equal(pwrite(fd, body, sizeof(body) - 1, 27),
	    (ssize_t)sizeof(body) - 1);
	close(fd);
	assert_int_equal(segment_read(dir, 3, 3, id, sizeof(body) - 1, crc,
	    &out), 0);
	assert_string_equal(out.p, body);
	segment_cursor_init(&cur, dir);
	assert_int_equal(segment_check(&cur, 3, 3, id, sizeof(body) - 1, crc),
	    0);
	assert_int_equal(segment_check(&cur, 3, 3, id + 1, sizeof(body) - 1,
	    crc), EBADMSG);
	segment_cursor_close(&cur);
	buf_reset(&out);
	assert_int_equal(segment_read(dir, 3, 3, id, sizeof(body), crc, &out),
	    EBADMSG);
	assert_int_equal(segment_scan(dir, 3, 3, scan_cb, &out), 0);
	assert_int_equal(out.len, 0);
	buf_free(&p);
	buf_free(&out);
	free(dir);
}

/* segment_check: the cheap check of the start-up scrub (header, length) */
static void test_segment_check(void **state)
{
	char *dir = tmpdir();
	struct segment_writer sw;
	struct segment_cursor cur;
	struct buf p = BUF_INIT;
	uint32_t seg, crc, seg2, crc2;
	uint64_t off, off2;
	int fd;

	two_records(&sw, dir, &seg, &off, &crc, &seg2, &off2, &crc2);
	segment_cursor_init(&cur, dir);
	assert_int_equal(segment_check(&cur, seg, off, 42, 7, crc), 0);
	assert_int_equal(segment_check(&cur, seg2, off2, 43, 7, crc2), 0);
	/* wrong id, length past the end, another segment that is not there */
	assert_int_equal(segment_check(&cur, seg, off, 43, 7, crc), EBADMSG);
	assert_int_equal(segment_check(&cur, seg2, off2, 43, 8, crc2), EBADMSG);
	assert_int_equal(segment_check(&cur, seg + 7, 0, 42, 7, crc), ENOENT);
	/* a flipped header byte; the body is not read by this check */
	segment_path(&p, dir, seg);
	fd = open(p.p, O_RDWR);
	assert_int_equal(pwrite(fd, "X", 1, (off_t)off + 1), 1);
	assert_int_equal(pwrite(fd, "J", 1, (off_t)off2 + SEGMENT_HDR_LEN), 1);
	close(fd);
	segment_cursor_close(&cur);
	assert_int_equal(segment_check(&cur, seg, off, 42, 7, crc), EBADMSG);
	assert_int_equal(segment_check(&cur, seg2, off2, 43, 7, crc2), 0);
	/* a file cut short */
	assert_int_equal(truncate(p.p, (off_t)off2 + 10), 0);
	segment_cursor_close(&cur);
	assert_int_equal(segment_check(&cur, seg2, off2, 43, 7, crc2), EBADMSG);
	segment_cursor_close(&cur);
	assert_true(queue_body_damaged(EBADMSG) && queue_body_damaged(ENOENT));
	assert_false(queue_body_damaged(EMFILE) || queue_body_damaged(0));
	segment_writer_close(&sw);
	buf_free(&p);
	free(dir);
}

/* queue_check_cut: a database shorter than its header says, or gone
 * while segment files remain */
static void test_check_cut(void **state)
{
	char *dir = tmpdir();
	struct buf path = BUF_INIT, why = BUF_INIT, seg = BUF_INIT;
	struct stat st;
	sqlite3 *db;
	int fd;

	buf_printf(&path, "%s/queue.db", dir);
	/* nothing there and no segments: a new queue */
	assert_false(queue_check_cut(dir, "queue.db", &why));
	assert_int_equal(sqlite3_open(path.p, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "CREATE TABLE t(x);"
	    "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c"
	    " WHERE i < 2000) INSERT INTO t SELECT randomblob(100) FROM c;",
	    NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	assert_false(queue_check_cut(dir, "queue.db", &why));
	assert_int_equal(stat(path.p, &st), 0);
	assert_int_equal(truncate(path.p, st.st_size / 2), 0);
	assert_true(queue_check_cut(dir, "queue.db", &why));
	assert_non_null(strstr(why.p, "cut short"));
	/* emptied, with a segment file beside it */
	buf_reset(&why);
	assert_int_equal(truncate(path.p, 0), 0);
	assert_false(queue_check_cut(dir, "queue.db", &why));
	buf_printf(&seg, "%s/seg", dir);
	assert_int_equal(mkdir(seg.p, 0700), 0);
	buf_puts(&seg, "/00000001.seg");
	fd = open(seg.p, O_WRONLY | O_CREAT, 0600);
	assert_true(fd >= 0);
	close(fd);
	assert_true(queue_check_cut(dir, "queue.db", &why));
	assert_non_null(strstr(why.p, "empty"));
	/* not a database at all */
	buf_reset(&why);
	fd = open(path.p, O_WRONLY | O_TRUNC);
	for (int i = 0; i < 10; i++)
		assert_int_equal(write(fd, "not sqlite, just text\n", 23), 23);
	close(fd);
	assert_true(queue_check_cut(dir, "queue.db", &why));
	buf_free(&path);
	buf_free(&why);
	buf_free(&seg);
	free(dir);
}

static void test_recovery_drops_unreferenced_segments(void **state)
{
	struct event_base *base = event_base_new();
	struct waiter w = { .base = base };
	struct buf err = BUF_INIT, p = BUF_INIT;
	char *dir = tmpdir();
	struct queue *q = queue_open(dir, 0, base, &err);
	struct stat st;
	int fd;

	assert_non_null(q);
	w.pending = 1;
	queue_put(q, msg("u@example.org", "example.org", "kept\r\n"), put_cb, &w);
	wait_all(&w);
	queue_close(q);
	/* bytes synced before a crash but never committed: no row points here */
	buf_printf(&p, "%s/seg/%08X.seg", dir, 0x77u);
	fd = open(p.p, O_WRONLY | O_CREAT, 0600);
	assert_int_equal(write(fd, "ETQ2garbage", 11), 11);
	close(fd);
	q = queue_open(dir, 0, base, &err);
	assert_non_null(q);
	assert_int_equal(stat(p.p, &st), -1);
	w.pending = 1;
	queue_list(q, "", text_cb, &w);
	wait_all(&w);
	assert_int_equal(count_lines(&w.rows), 1);
	queue_close(q);
	buf_free(&err);
	buf_free(&p);
	buf_free(&w.rows);
	event_base_free(base);
	free(dir);
}

struct fetch_waiter {
	struct event_base *base;
	struct queue_batch *b;
	uint64_t msgs, rcpts;
	struct buf domains;
	int pending;
};

static void fetch_cb(void *arg, enum queue_status st, struct queue_batch *b)
{
	struct fetch_waiter *w = arg;

	assert_int_equal(st, QUEUE_OK);
	w->b = b;
	if (--w->pending == 0)
		event_base_loopbreak(w->base);
}

static void count_cb(void *arg, enum queue_status st, uint64_t msgs,
    uint64_t rcpts, const struct buf *domains)
{
	struct fetch_waiter *w = arg;

	assert_int_equal(st, QUEUE_OK);
	w->msgs = msgs;
	w->rcpts = rcpts;
	buf_reset(&w->domains);
	buf_append(&w->domains, domains->p, domains->len);
	if (--w->pending == 0)
		event_base_loopbreak(w->base);
}

static struct queue_batch *fetch(struct queue *q, struct fetch_waiter *w,
    const char *dom, bool subtree, uint64_t after, size_t limit)
{
	struct queue_sel sel = { .domain = dom, .subtree = subtree,
		.after_id = after, .limit = limit, .bodies = true };

	w->pending = 1;
	queue_fetch(q, &sel, fetch_cb, w);
	while (w->pending)
		event_base_dispatch(w->base);
	return w->b;
}

static void count(struct queue *q, struct fetch_waiter *w, const char *dom,
    bool subtree)
{
	w->pending = 1;
	queue_count(q, &dom, 1, subtree, count_cb, w);
	while (w->pending)
		event_base_dispatch(w->base);
}

static void add_rcpt(struct queue_msg_in *m, const char *addr, const char *dom)
{
	m->rcpts = xrealloc(m->rcpts, (m->nrcpt + 1) * sizeof(*m->rcpts));
	memset(&m->rcpts[m->nrcpt], 0, sizeof(*m->rcpts));
	m->rcpts[m->nrcpt].addr = xstrdup(addr);
	m->rcpts[m->nrcpt].domain = xstrdup(dom);
	m->rcpts[m->nrcpt].state = QUEUE_R_QUEUED;
	m->nrcpt++;
}

static void test_fetch_update_retire(void **state)
{
	struct event_base *base = event_base_new();
	struct waiter w = { .base = base };
	struct fetch_waiter fw = { .base = base };
	struct buf err = BUF_INIT;
	char *dir = tmpdir();
	struct queue *q = queue_open(dir, 0, base, &err);
	struct queue_msg_in *m1, *m2, **dsn;
	struct queue_outcome *o;
	struct queue_batch *b;
	uint64_t id1, id2, rid_a, rid_b, rid_c, rid_d;

	assert_non_null(q);
	m1 = msg("a@example.org", "example.org", "first\r\n");
	add_rcpt(m1, "b@sub.example.org", "sub.example.org");
	add_rcpt(m1, "c@other.test", "other.test");
	m2 = msg("d@example.org", "example.org", "second\r\n");
	id1 = m1->id;
	id2 = m2->id;
	w.pending = 2;
	queue_put(q, m1, put_cb, &w);
	queue_put(q, m2, put_cb, &w);
	wait_all(&w);
	assert_int_equal(w.ok, 2);

	/* counts follow labels: the exact domain, or with its subdomains */
	count(q, &fw, "example.org", false);
	assert_int_equal(fw.msgs, 2);
	assert_int_equal(fw.rcpts, 2);
	count(q, &fw, "example.org", true);
	assert_int_equal(fw.msgs, 2);
	assert_int_equal(fw.rcpts, 3);
	count(q, &fw, "org", true);
	assert_int_equal(fw.rcpts, 3);
	count(q, &fw, "le.org", true);
	assert_int_equal(fw.rcpts, 0);
	count(q, &fw, "example.org", true);
	assert_string_equal(fw.domains.p, "example.org\nsub.example.org\n");
	{
		/* a set of domains: each message counted once */
		const char *set[] = { "example.org", "other.test", "none.test" };

		fw.pending = 1;
		queue_count(q, set, 3, false, count_cb, &fw);
		while (fw.pending)
			event_base_dispatch(base);
		assert_int_equal(fw.msgs, 2);
		assert_int_equal(fw.rcpts, 3);
		assert_string_equal(fw.domains.p, "example.org\nother.test\n");
	}

	/* fetch one message at a time, only that domain's recipients */
	b = fetch(q, &fw, "example.org", false, 0, 1);
	assert_int_equal(b->n, 1);
	assert_true(b->more);
	assert_int_equal(b->items[0].id, id1);
	assert_int_equal(b->items[0].nrcpt, 1);
	assert_string_equal(b->items[0].rcpts[0].addr, "a@example.org");
	assert_int_equal(b->items[0].body_error, 0);
	assert_string_equal(b->items[0].body.p, "first\r\n");
	rid_a = b->items[0].rcpts[0].rid;
	queue_batch_free(b);
	b = fetch(q, &fw, "example.org", false, id1, 1);
	assert_int_equal(b->n, 1);
	assert_int_equal(b->items[0].id, id2);
	rid_d = b->items[0].rcpts[0].rid;
	queue_batch_free(b);
	b = fetch(q, &fw, "example.org", true, 0, 10);
	assert_int_equal(b->n, 2);
	assert_false(b->more);
	assert_int_equal(b->items[0].nrcpt, 2);	/* a and b, not c */
	rid_b = b->items[0].rcpts[1].rid;
	queue_batch_free(b);
	b = fetch(q, &fw, "other.test", false, 0, 10);
	rid_c = b->items[0].rcpts[0].rid;
	queue_batch_free(b);

	/* a delivered; d failed, with its bounce committed alongside */
	o = xcalloc(2, sizeof(*o));
	o[0] = (struct queue_outcome){ rid_d, id2, QUEUE_R_FAILED, 0,
		xstrdup("550 5.1.1 no such user"), true , false };
	o[1] = (struct queue_outcome){ rid_a, id1, QUEUE_R_DELIVERED, 0, NULL,
		true , false };
	dsn = xcalloc(1, sizeof(*dsn));
	dsn[0] = msg("s@client.test", "client.test", "bounce\r\n");
	dsn[0]->rcpts[0].state = QUEUE_R_QUEUED;	/* bounces are due at once */
	w.pending = 1;
	w.ok = 0;
	queue_update(q, o, 2, dsn, 1, put_cb, &w);
	wait_all(&w);
	assert_int_equal(w.ok, 1);
	count(q, &fw, "example.org", true);
	assert_int_equal(fw.msgs, 1);
	assert_int_equal(fw.rcpts, 1);		/* only b is left */
	count(q, &fw, "client.test", false);
	assert_int_equal(fw.msgs, 1);
	w.pending = 1;
	queue_show(q, id2, text_cb, &w);	/* all done: retired */
	wait_all(&w);
	assert_int_equal(w.last, QUEUE_ENOENT);

	/* b delivered, c deferred: not due now, due later */
	o = xcalloc(2, sizeof(*o));
	o[0] = (struct queue_outcome){ rid_b, id1, QUEUE_R_DELIVERED, 0, NULL, true , false };
	o[1] = (struct queue_outcome){ rid_c, id1, QUEUE_R_DEFERRED, 5000,
		xstrdup("451 4.3.0 try later"), true , false };
	w.pending = 1;
	queue_update(q, o, 2, NULL, 0, put_cb, &w);
	wait_all(&w);
	w.pending = 1;
	queue_due(q, 4000, 10, text_cb, &w);
	wait_all(&w);
	assert_null(strstr(w.rows.p, "other.test"));
	assert_non_null(strstr(w.rows.p, "client.test\t0\n"));
	assert_non_null(strstr(w.rows.p, "next\t5000\n"));
	w.pending = 1;
	queue_due(q, 6000, 10, text_cb, &w);
	wait_all(&w);
	assert_non_null(strstr(w.rows.p, "other.test\t5000\n"));
	w.pending = 1;
	queue_show(q, id1, text_cb, &w);
	wait_all(&w);
	assert_non_null(strstr(w.rows.p, "451 4.3.0 try later"));

	/* c delivered: message 1 retired too */
	o = xcalloc(1, sizeof(*o));
	o[0] = (struct queue_outcome){ rid_c, id1, QUEUE_R_DELIVERED, 0, NULL, true , false };
	w.pending = 1;
	queue_update(q, o, 1, NULL, 0, put_cb, &w);
	wait_all(&w);
	w.pending = 1;
	queue_show(q, id1, text_cb, &w);
	wait_all(&w);
	assert_int_equal(w.last, QUEUE_ENOENT);
	queue_close(q);
	buf_free(&err);
	buf_free(&w.rows);
	buf_free(&fw.domains);
	event_base_free(base);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_put_list_restart),
		cmocka_unit_test(test_segment_verifies),
		cmocka_unit_test(test_segment_prepared),
		cmocka_unit_test(test_segment_check),
		cmocka_unit_test(test_segment_scan),
		cmocka_unit_test(test_segment_gathers_a_batch),
		cmocka_unit_test(test_segment_reads_first_format),
		cmocka_unit_test(test_check_cut),
		cmocka_unit_test(test_recovery_drops_unreferenced_segments),
		cmocka_unit_test(test_fetch_update_retire),
	};

	log_init("test", LOG_LVL_WARN, 0);
	evthread_use_pthreads();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
