/*
 * SUMMARY
 *	metrics_http - /metrics and the status page, on metrics_listen
 * DESCRIPTION
 *	An evhttp server (loopback by default) answering GET /metrics in the
 *	Prometheus text format and GET / with a small HTML status page: the
 *	domains with queued mail, their oldest message, the last ETRN or ATRN
 *	for each and its result, and the deliveries running now.  Per-domain
 *	figures come from a summary the store refreshes every few seconds on
 *	its reader thread, so a scrape never waits for the store; at most
 *	METRICS_DOMAINS domains get their own label (the largest), the rest
 *	are summed, so the number of series is bounded.
 */
#ifndef ETRND_METRICS_HTTP_H
#define ETRND_METRICS_HTTP_H

#include "util/buf.h"

#define METRICS_DOMAINS 50

struct config_listen;
struct event_base;
struct queue;
struct sched;
struct metrics_http;

struct metrics_http *metrics_http_new(struct event_base *base,
    const struct config_listen *l, const char *hostname, struct queue *q,
    struct sched *s, struct buf *err);
void metrics_http_free(struct metrics_http *m);

#endif
