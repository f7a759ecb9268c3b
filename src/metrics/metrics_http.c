/* metrics_http - /metrics and the status page, on metrics_listen */
#include "metrics/metrics_http.h"
#include "config/config.h"
#include "metrics/metrics.h"
#include "queue/queue.h"
#include "sched/sched.h"
#include "util/qclock.h"
#include "util/strutil.h"
#include "util/xalloc.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define METRICS_REFRESH 5	/* seconds between store summaries */
#define METRICS_PAGE_ROWS 200	/* domains on the status page */

struct mdom {
	char name[256];
	unsigned long long msgs, rcpts;
	long long oldest;
};

struct metrics_http {
	struct event_base *base;
	struct evhttp *http;
	struct queue *q;
	struct sched *s;
	char *hostname;
	struct event *refresh;
	bool refreshing;
	struct mdom *doms;	/* sorted by messages, largest first */
	size_t ndoms;
	time_t as_of;
};

static int mdom_cmp(const void *a, const void *b)
{
	const struct mdom *x = a, *y = b;

	if (x->msgs != y->msgs)
		return x->msgs < y->msgs ? 1 : -1;
	return strcmp(x->name, y->name);
}

/* summary rows: domain, messages, recipients, oldest arrival */
static void metrics_summary_cb(void *arg, enum queue_status st,
    const struct buf *rows)
{
	struct metrics_http *m = arg;
	const char *p, *end;
	size_t cap = 0;

	m->refreshing = false;
	if (st != QUEUE_OK)
		return;
	free(m->doms);
	m->doms = NULL;
	m->ndoms = 0;
	for (p = rows->p, end = p ? p + rows->len : NULL; p && p < end;) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		struct mdom d;

		memset(&d, 0, sizeof(d));
		if (sscanf(p, "%255[^\t]\t%llu\t%llu\t%lld", d.name, &d.msgs,
		    &d.rcpts, &d.oldest) == 4) {
			if (m->ndoms == cap) {
				cap = cap ? cap * 2 : 64;
				m->doms = xrealloc(m->doms, cap * sizeof(*m->doms));
			}
			m->doms[m->ndoms++] = d;
		}
		p = nl ? nl + 1 : end;
	}
	if (m->ndoms > 1)	/* qsort(NULL, 0, ...) is undefined */
		qsort(m->doms, m->ndoms, sizeof(*m->doms), mdom_cmp);
	m->as_of = qclock_now();
}

static void metrics_refresh_cb(evutil_socket_t fd, short what, void *arg)
{
	struct metrics_http *m = arg;
	struct timeval tv = { METRICS_REFRESH, 0 };

	if (!m->refreshing) {
		m->refreshing = true;
		queue_summary(m->q, metrics_summary_cb, m);
	}
	evtimer_add(m->refresh, &tv);
}

static void metrics_send(struct evhttp_request *req, const char *type,
    const struct buf *body)
{
	struct evbuffer *out = evbuffer_new();

	evbuffer_add(out, body->p ? body->p : "", body->len);
	evhttp_add_header(evhttp_request_get_output_headers(req),
	    "Content-Type", type);
	evhttp_add_header(evhttp_request_get_output_headers(req),
	    "Cache-Control", "no-store");
	evhttp_send_reply(req, 200, "OK", out);
	evbuffer_free(out);
}

static void metrics_page_metrics(struct metrics_http *m,
    struct evhttp_request *req)
{
	struct buf b = BUF_INIT;
	unsigned long long omsgs = 0, orcpts = 0, tmsgs = 0, trcpts = 0;
	long long ooldest = 0;
	time_t now = qclock_now();
	size_t i;

	metrics_render(&b);
	buf_puts(&b, "# HELP etrnd_queue_messages messages with pending"
	    " recipients, per domain (the largest; the rest under"
	    " domain=\"_other\")\n# TYPE etrnd_queue_messages gauge\n");
	for (i = 0; i < m->ndoms; i++) {
		tmsgs += m->doms[i].msgs;
		trcpts += m->doms[i].rcpts;
		if (i < METRICS_DOMAINS) {
			buf_printf(&b, "etrnd_queue_messages{domain=\"%s\"} %llu\n",
			    m->doms[i].name, m->doms[i].msgs);
		} else {
			omsgs += m->doms[i].msgs;
			orcpts += m->doms[i].rcpts;
			if (ooldest == 0 || m->doms[i].oldest < ooldest)
				ooldest = m->doms[i].oldest;
		}
	}
	if (m->ndoms > METRICS_DOMAINS)
		buf_printf(&b, "etrnd_queue_messages{domain=\"_other\"} %llu\n",
		    omsgs);
	buf_puts(&b, "# HELP etrnd_queue_recipients pending recipients, per"
	    " domain\n# TYPE etrnd_queue_recipients gauge\n");
	for (i = 0; i < m->ndoms && i < METRICS_DOMAINS; i++)
		buf_printf(&b, "etrnd_queue_recipients{domain=\"%s\"} %llu\n",
		    m->doms[i].name, m->doms[i].rcpts);
	if (m->ndoms > METRICS_DOMAINS)
		buf_printf(&b, "etrnd_queue_recipients{domain=\"_other\"} %llu\n",
		    orcpts);
	buf_puts(&b, "# HELP etrnd_queue_oldest_seconds age of the oldest"
	    " pending message, per domain\n# TYPE etrnd_queue_oldest_seconds"
	    " gauge\n");
	for (i = 0; i < m->ndoms && i < METRICS_DOMAINS; i++)
		buf_printf(&b, "etrnd_queue_oldest_seconds{domain=\"%s\"} %lld\n",
		    m->doms[i].name, (long long)now - m->doms[i].oldest);
	if (m->ndoms > METRICS_DOMAINS)
		buf_printf(&b, "etrnd_queue_oldest_seconds{domain=\"_other\"}"
		    " %lld\n", (long long)now - ooldest);
	buf_printf(&b, "# HELP etrnd_queue_messages_total messages with pending"
	    " recipients (a message counts once per domain)\n"
	    "# TYPE etrnd_queue_messages_total gauge\n"
	    "etrnd_queue_messages_total %llu\n"
	    "# HELP etrnd_queue_recipients_total pending recipients\n"
	    "# TYPE etrnd_queue_recipients_total gauge\n"
	    "etrnd_queue_recipients_total %llu\n", tmsgs, trcpts);
	metrics_send(req, "text/plain; version=0.0.4; charset=utf-8", &b);
	buf_free(&b);
}

static void html_text(struct buf *b, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '<':
			buf_puts(b, "&lt;");
			break;
		case '>':
			buf_puts(b, "&gt;");
			break;
		case '&':
			buf_puts(b, "&amp;");
			break;
		case '"':
			buf_puts(b, "&quot;");
			break;
		default:
			buf_putc(b, *s);
		}
	}
}

static void html_age(struct buf *b, long long secs)
{
	if (secs < 120)
		buf_printf(b, "%llds", secs);
	else if (secs < 7200)
		buf_printf(b, "%lldm", secs / 60);
	else if (secs < 172800)
		buf_printf(b, "%lldh", secs / 3600);
	else
		buf_printf(b, "%lldd", secs / 86400);
}

/* html_last - the last ETRN/ATRN for a domain, from the recent table */
static void html_last(struct buf *b, const struct buf *recent,
    const char *dom, time_t now)
{
	const char *p = recent->p, *end = p ? p + recent->len : NULL;
	char node[260], kind[8], client[64];
	long long when, best = 0;
	int code, bcode = 0;
	char bkind[8] = "", bclient[64] = "";

	for (; p && p < end;) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));

		client[0] = '\0';
		if (sscanf(p, "%259[^\t]\t%7[^\t]\t%lld\t%d\t%63[^\n]", node,
		    kind, &when, &code, client) >= 4 &&
		    (strcmp(node, dom) == 0 || (node[0] == '@' &&
		    domain_within(dom, node + 1))) && when > best) {
			best = when;
			bcode = code;
			snprintf(bkind, sizeof(bkind), "%s", kind);
			snprintf(bclient, sizeof(bclient), "%s", client);
		}
		p = nl ? nl + 1 : end;
	}
	if (best == 0) {
		buf_puts(b, "<td>-</td>");
		return;
	}
	buf_printf(b, "<td>%s %d, ", bkind, bcode);
	html_age(b, (long long)now - best);
	buf_puts(b, " ago from ");
	html_text(b, bclient);
	buf_puts(b, "</td>");
}

static void metrics_page_status(struct metrics_http *m,
    struct evhttp_request *req)
{
	struct buf b = BUF_INIT, recent = BUF_INIT, runs = BUF_INIT;
	time_t now = qclock_now();
	size_t i;

	metrics_recent(&recent);
	sched_runs(m->s, &runs);
	buf_puts(&b, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
	    "<title>etrnd status</title><style>body{font-family:sans-serif}"
	    "table{border-collapse:collapse}td,th{border:1px solid #999;"
	    "padding:2px 8px;text-align:left}</style></head><body>\n<h1>etrnd on ");
	html_text(&b, m->hostname);
	buf_puts(&b, "</h1>\n<p id=\"asof\">Queue as of ");
	html_age(&b, m->as_of ? (long long)(now - m->as_of) : 0);
	buf_puts(&b, " ago.</p>\n<h2>Queued mail</h2>\n<table id=\"domains\">"
	    "<tr><th>Domain</th><th>Messages</th><th>Recipients</th>"
	    "<th>Oldest</th><th>Last ETRN/ATRN</th><th>Delivering now</th></tr>\n");
	for (i = 0; i < m->ndoms && i < METRICS_PAGE_ROWS; i++) {
		const struct mdom *d = &m->doms[i];
		char pat[270];

		buf_puts(&b, "<tr><td>");
		html_text(&b, d->name);
		buf_printf(&b, "</td><td>%llu</td><td>%llu</td><td>", d->msgs,
		    d->rcpts);
		html_age(&b, (long long)now - d->oldest);
		buf_puts(&b, "</td>");
		html_last(&b, &recent, d->name, now);
		snprintf(pat, sizeof(pat), "%s\t", d->name);
		buf_printf(&b, "<td>%s</td></tr>\n", runs.p && strstr(runs.p,
		    pat) ? "yes" : "");
	}
	if (m->ndoms == 0)
		buf_puts(&b, "<tr><td colspan=\"6\">No mail waiting.</td></tr>\n");
	buf_puts(&b, "</table>\n<h2>Deliveries running</h2>\n<ul id=\"runs\">\n");
	for (const char *p = runs.p, *end = p ? p + runs.len : NULL;
	    p && p < end;) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		char line[300];

		snprintf(line, sizeof(line), "%.*s", (int)((nl ? nl : end) - p), p);
		for (char *t = strchr(line, '\t'); t; t = NULL)
			*t = ' ';
		buf_puts(&b, "<li>");
		html_text(&b, line);
		buf_puts(&b, "</li>\n");
		p = nl ? nl + 1 : end;
	}
	buf_puts(&b, "</ul>\n<p><a href=\"/metrics\">/metrics</a></p>\n"
	    "</body></html>\n");
	metrics_send(req, "text/html; charset=utf-8", &b);
	buf_free(&b);
	buf_free(&recent);
	buf_free(&runs);
}

static void metrics_request_cb(struct evhttp_request *req, void *arg)
{
	struct metrics_http *m = arg;
	const char *path = evhttp_request_get_uri(req);

	if (evhttp_request_get_command(req) != EVHTTP_REQ_GET &&
	    evhttp_request_get_command(req) != EVHTTP_REQ_HEAD) {
		/* not evhttp_send_error(): it drops our headers (Allow) */
		struct evbuffer *out = evbuffer_new();
		struct evkeyvalq *h = evhttp_request_get_output_headers(req);

		evbuffer_add_printf(out, "405 Method Not Allowed\n");
		evhttp_add_header(h, "Content-Type", "text/plain; charset=utf-8");
		evhttp_add_header(h, "Allow", "GET, HEAD");
		evhttp_add_header(h, "Connection", "close");
		evhttp_send_reply(req, 405, "Method Not Allowed", out);
		evbuffer_free(out);
		return;
	}
	if (strcmp(path, "/metrics") == 0)
		metrics_page_metrics(m, req);
	else if (strcmp(path, "/") == 0)
		metrics_page_status(m, req);
	else
		evhttp_send_error(req, 404, "Not Found");
}

struct metrics_http *metrics_http_new(struct event_base *base,
    const struct config_listen *l, const char *hostname, struct queue *q,
    struct sched *s, struct buf *err)
{
	struct metrics_http *m = xcalloc(1, sizeof(*m));

	m->base = base;
	m->q = q;
	m->s = s;
	m->hostname = xstrdup(hostname);
	m->http = evhttp_new(base);
	if (m->http == NULL || evhttp_bind_socket(m->http, l->host,
	    (ev_uint16_t)l->port) != 0) {
		buf_printf(err, "cannot listen on %s port %u for metrics",
		    l->host, l->port);
		metrics_http_free(m);
		return NULL;
	}
	/*
	 * Every method reaches metrics_request_cb, which answers 405 (with
	 * Allow) to all but GET and HEAD: libevent's own filter would say
	 * 501, and a body past the limit gets 413 before the callback.
	 */
	evhttp_set_allowed_methods(m->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD |
	    EVHTTP_REQ_POST | EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
	    EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE | EVHTTP_REQ_PATCH);
	evhttp_set_max_headers_size(m->http, 8192);
	evhttp_set_max_body_size(m->http, 4096);
	evhttp_set_timeout(m->http, 10);
	evhttp_set_gencb(m->http, metrics_request_cb, m);
	m->refresh = evtimer_new(base, metrics_refresh_cb, m);
	metrics_refresh_cb(-1, 0, m);
	return m;
}

void metrics_http_free(struct metrics_http *m)
{
	if (m == NULL)
		return;
	if (m->refresh)
		event_free(m->refresh);
	if (m->http)
		evhttp_free(m->http);
	free(m->doms);
	free(m->hostname);
	free(m);
}
