/*
 * etrnd-fill - fill a queue directory for the benchmarks, fast
 *
 *	etrnd-fill QUEUE_DIR MESSAGES DOMAINS NODE NODE_MESSAGES SIZE
 *
 * Stores MESSAGES held messages of SIZE bytes, one recipient each: NODE
 * gets NODE_MESSAGES of them, the rest are spread over DOMAINS domains
 * d0.bench.test, d1.bench.test...  It goes through the queue's own
 * interface (segments, group commits), as etrnd would after accepting
 * them, but without SMTP: it fills a million recipients in seconds.  Run
 * it while etrnd is stopped.
 */
#include "queue/queue.h"
#include "util/idgen.h"
#include "util/xalloc.h"

#include <event2/event.h>
#include <event2/thread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FILL_INFLIGHT 4096

static struct event_base *base;
static long inflight, failed;

static void put_cb(void *arg, enum queue_status st)
{
	inflight--;
	failed += st != QUEUE_OK;
	event_base_loopbreak(base);
}

int main(int argc, char **argv)
{
	struct buf err = BUF_INIT, body = BUF_INIT;
	struct queue *q;
	long n, ndom, nnode, size, i;
	time_t now = time(NULL);

	if (argc != 7) {
		fprintf(stderr, "usage: etrnd-fill QUEUE_DIR MESSAGES DOMAINS"
		    " NODE NODE_MESSAGES SIZE\n");
		return 2;
	}
	n = atol(argv[2]);
	ndom = atol(argv[3]);
	nnode = atol(argv[5]);
	size = atol(argv[6]);
	if (n <= 0 || ndom <= 0 || nnode < 0 || nnode > n || size < 64) {
		fprintf(stderr, "etrnd-fill: bad numbers\n");
		return 2;
	}
	evthread_use_pthreads();
	base = event_base_new();
	q = queue_open(argv[1], 0, base, &err);
	if (q == NULL) {
		fprintf(stderr, "etrnd-fill: %s\n", err.p);
		return 1;
	}
	idgen_floor(queue_max_id(q));
	buf_puts(&body, "Subject: bench\r\n\r\n");
	while ((long)body.len < size - 2)
		buf_puts(&body, "0123456789abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJ\r\n");
	for (i = 0; i < n; i++) {
		struct queue_msg_in *m = xcalloc(1, sizeof(*m));
		char dom[300], addr[340];

		if (i < nnode)
			snprintf(dom, sizeof(dom), "%s", argv[4]);
		else
			snprintf(dom, sizeof(dom), "d%ld.bench.test", i % ndom);
		snprintf(addr, sizeof(addr), "u%ld@%s", i, dom);
		m->id = idgen_next();
		m->sender = xstrdup("bench@source.test");
		m->client = xstrdup("127.0.0.1");
		m->helo = xstrdup("fill");
		m->arrival = now;
		m->nrcpt = 1;
		m->rcpts = xcalloc(1, sizeof(*m->rcpts));
		m->rcpts[0].addr = xstrdup(addr);
		m->rcpts[0].domain = xstrdup(dom);
		m->rcpts[0].state = QUEUE_R_HELD;
		buf_append(&m->body, body.p, body.len);
		m->body_fd = -1;
		inflight++;
		queue_put(q, m, put_cb, NULL);
		while (inflight >= FILL_INFLIGHT)
			event_base_loop(base, EVLOOP_ONCE);
	}
	while (inflight > 0)
		event_base_loop(base, EVLOOP_ONCE);
	queue_close(q);
	event_base_free(base);
	buf_free(&body);
	printf("etrnd-fill: %ld messages stored, %ld failed\n", n, failed);
	return failed ? 1 : 0;
}
