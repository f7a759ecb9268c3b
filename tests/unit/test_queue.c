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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log/log.h"
#include "queue/queue.h"
#include "queue/segment.h"
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
	struct queue *q = queue_open(dir, base, &err);
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
	q = queue_open(dir, base, &err);
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

static void test_segment_verifies(void **state)
{
	char *dir = tmpdir();
	struct segment_writer sw;
	struct buf out = BUF_INIT, p = BUF_INIT;
	uint32_t seg, crc;
	uint64_t off, off2;
	uint32_t seg2, crc2;
	int fd;

	assert_int_equal(segment_writer_init(&sw, dir, 1), 0);
	assert_int_equal(segment_append(&sw, 42, "hello\r\n", 7, -1, 0, &seg,
	    &off, &crc), 0);
	assert_int_equal(segment_append(&sw, 43, "world\r\n", 7, -1, 0, &seg2,
	    &off2, &crc2), 0);
	assert_int_equal(segment_sync(&sw), 0);
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

static void test_recovery_drops_unreferenced_segments(void **state)
{
	struct event_base *base = event_base_new();
	struct waiter w = { .base = base };
	struct buf err = BUF_INIT, p = BUF_INIT;
	char *dir = tmpdir();
	struct queue *q = queue_open(dir, base, &err);
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
	assert_int_equal(write(fd, "ETQ1garbage", 11), 11);
	close(fd);
	q = queue_open(dir, base, &err);
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_put_list_restart),
		cmocka_unit_test(test_segment_verifies),
		cmocka_unit_test(test_recovery_drops_unreferenced_segments),
	};

	log_init("test", LOG_LVL_WARN, 0);
	evthread_use_pthreads();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
