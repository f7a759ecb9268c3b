/* odmr_glue - the ODMR service (RFC 2645) on libevent */
#include "odmr/odmr_glue.h"
#include "odmr/odmr_session.h"
#include "auth/sasl.h"
#include "config/config.h"
#include "log/log.h"
#include "metrics/metrics.h"
#include "net/listener.h"
#include "net/srvconn.h"
#include "queue/queue.h"
#include "sched/sched.h"
#include "smtpc/smtpc_conn.h"
#include "smtpc/smtpc_deliver.h"
#include "tls/tls.h"
#include "util/qclock.h"
#include "util/ratelimit.h"
#include "util/xalloc.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ODMR_LINE_MAX (SASL_LINE_MAX + 2)
#define ODMR_FAIL_WINDOW 600		/* seconds */
#define ODMR_FAILS_PER_ADDR 10		/* failed AUTHs per address per window */
#define ODMR_FAILS_PER_ACCOUNT 20	/* per account per window: locked */
#define ODMR_BATCH 100

struct odmr_server {
	struct event_base *base;
	struct config *cfg;
	struct users *users;
	struct queue *q;
	struct sched *s;
	SSL_CTX *tls;
	struct ratelimit *addr_fails;
	struct ratelimit *account_fails;
	struct odmr_conn *conns;
	uint64_t seq;
	bool stopping;
	void (*stop_done)(void *);
	void *stop_arg;
};

struct odmr_conn {
	struct odmr_conn *prev, *next;
	struct odmr_server *srv;
	struct srvconn sc;	/* the socket, replies, STARTTLS, the end */
	struct odmr_session *sess;
	struct event *delay;	/* a refused AUTH's reply waits on it */
	char sid[17];
	char addr[64];
	unsigned char bytes[16];
	int family;
	bool busy;		/* waiting for the store or a delay */
	bool dead;
	bool in_process;
	bool reversed;

	/* the reversed session */
	struct smtp_atrn atrn;
	size_t dom_i;		/* the domain being delivered */
	struct queue_batch *batch;
	struct smtpc_result **res;
	bool *attempted;
	size_t next_item;
	uint64_t after_id;
	bool recording;
	bool fetching;
	bool finished;		/* every domain done: QUIT */
	struct smtpc_conn *cc;
	unsigned delivered;
};

static void odmr_process(struct odmr_conn *c);
static void odmr_feed_fetch(struct odmr_conn *c);

static void odmr_free(struct odmr_conn *c)
{
	struct odmr_server *srv = c->srv;

	if (c->prev)
		c->prev->next = c->next;
	else
		srv->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	srvconn_free(&c->sc);
	event_free(c->delay);
	odmr_session_free(c->sess);
	free(c);
	if (srv->stopping && srv->conns == NULL && srv->stop_done) {
		void (*done)(void *) = srv->stop_done;

		srv->stop_done = NULL;
		done(srv->stop_arg);
	}
}

static void odmr_gone(struct odmr_conn *c)
{
	if (c->busy || c->in_process) {
		srvconn_drop(&c->sc);
		c->dead = true;
		return;
	}
	odmr_free(c);
}

static void odmr_flush(struct odmr_conn *c)
{
	srvconn_flush(&c->sc);
}

static void odmr_close(struct odmr_conn *c)
{
	srvconn_close(&c->sc);
}

/* the connection's callbacks (net/srvconn.h) */

static void odmr_sc_connected(void *arg, const char *version)
{
	struct odmr_conn *c = arg;

	log_info("event=starttls sid=%s service=odmr version=%s", c->sid,
	    version);
	odmr_session_tls_started(c->sess);
}

static bool odmr_sc_timeout(void *arg)
{
	struct odmr_conn *c = arg;

	if (c->busy)
		return false;
	log_info("event=disconnect sid=%s service=odmr reason=timeout", c->sid);
	buf_printf(&c->sc.out, "421 4.4.2 %s Error: timeout exceeded\r\n",
	    c->srv->cfg->hostname);
	odmr_close(c);
	return true;
}

static void odmr_sc_lost(void *arg, bool eof)
{
	struct odmr_conn *c = arg;

	log_info("event=disconnect sid=%s service=odmr reason=%s", c->sid,
	    eof ? "client_closed" : "error");
}

static void odmr_sc_gone(void *arg)
{
	odmr_gone(arg);
}

static void odmr_sc_read(void *arg)
{
	odmr_process(arg);
}

static const struct srvconn_ops odmr_sc_ops = {
	odmr_sc_read, odmr_sc_timeout, odmr_sc_lost, odmr_sc_connected,
	odmr_sc_gone,
};

/* --- authentication limits (the session's env) --- */

static bool odmr_auth_allowed(void *arg)
{
	struct odmr_conn *c = arg;

	return ratelimit_get(c->srv->addr_fails, c->bytes,
	    c->family == AF_INET ? 4 : 16, qclock_now()) < ODMR_FAILS_PER_ADDR;
}

static bool odmr_auth_done(void *arg, const char *user, bool ok)
{
	struct odmr_conn *c = arg;
	time_t now = qclock_now();
	size_t ulen = user ? strlen(user) : 0;

	if (ok)
		return ratelimit_get(c->srv->account_fails, user, ulen, now) <
		    ODMR_FAILS_PER_ACCOUNT;
	ratelimit_add(c->srv->addr_fails, c->bytes,
	    c->family == AF_INET ? 4 : 16, now);
	if (ulen > 0 && ulen <= USERS_NAME_MAX)
		ratelimit_add(c->srv->account_fails, user, ulen, now);
	return false;
}

static void odmr_delay_cb(evutil_socket_t fd, short what, void *arg)
{
	struct odmr_conn *c = arg;

	c->busy = false;
	if (c->dead) {
		odmr_free(c);
		return;
	}
	odmr_flush(c);
	srvconn_reading(&c->sc, true);
	odmr_process(c);
}

/* odmr_auth_delay - a refusal waits 1, 2, 4 seconds: guessing gets slow */
static void odmr_auth_delay(struct odmr_conn *c)
{
	unsigned n = ratelimit_get(c->srv->addr_fails, c->bytes,
	    c->family == AF_INET ? 4 : 16, qclock_now());
	struct timeval tv = { n >= 3 ? 4 : n >= 2 ? 2 : 1, 0 };

	c->busy = true;
	srvconn_reading(&c->sc, false);
	evtimer_add(c->delay, &tv);
}

/* --- the reversed session: a feeder for smtpc_conn --- */

static void odmr_unclaim_all(struct odmr_conn *c)
{
	size_t i;

	for (i = 0; i < c->atrn.n; i++)
		sched_unclaim(c->srv->s, c->atrn.domain[i]);
}

static void odmr_results_free(struct odmr_conn *c)
{
	if (c->batch) {
		smtpc_deliver_results_free(c->res, c->batch->n);
		queue_batch_free(c->batch);
	}
	free(c->attempted);
	c->batch = NULL;
	c->res = NULL;
	c->attempted = NULL;
}

static void odmr_recorded_cb(void *arg, enum queue_status st)
{
	struct odmr_conn *c = arg;

	c->recording = false;
	if (st != QUEUE_OK)
		log_err("event=store_error op=record_outcomes sid=%s", c->sid);
	if (c->cc == NULL) {
		/* the connection is over; this was its last batch */
		odmr_unclaim_all(c);
		odmr_free(c);
		return;
	}
	odmr_feed_fetch(c);
}

/*
 * odmr_record - the batch's outcomes to the store; the items never tried
 * (the connection ended first) are left exactly as they were
 */
static void odmr_record(struct odmr_conn *c)
{
	struct queue_batch *b = c->batch, *done;
	struct smtpc_result **res;
	size_t i, n = 0;

	/* the next fetch starts after this batch, tried or not: a recipient
	 * held again must not be offered twice in one session */
	if (b->n > 0)
		c->after_id = b->items[b->n - 1].id;
	done = xcalloc(1, sizeof(*done));
	done->items = xcalloc(b->n + 1, sizeof(*done->items));
	res = xcalloc(b->n + 1, sizeof(*res));
	for (i = 0; i < b->n; i++) {
		if (!c->attempted[i])
			continue;
		done->items[n] = b->items[i];
		res[n++] = c->res[i];
		memset(&b->items[i], 0, sizeof(b->items[i]));
		c->res[i] = NULL;
	}
	done->n = n;
	odmr_results_free(c);
	c->recording = true;
	sched_record(c->srv->s, c->atrn.domain[c->dom_i], done, res,
	    odmr_recorded_cb, c);
}

static void odmr_fetched_cb(void *arg, enum queue_status st,
    struct queue_batch *b)
{
	struct odmr_conn *c = arg;
	size_t i;

	c->fetching = false;
	if (st != QUEUE_OK || b == NULL || b->n == 0 || c->cc == NULL) {
		queue_batch_free(b);
		if (c->cc == NULL) {
			odmr_unclaim_all(c);
			odmr_free(c);
			return;
		}
		/* this domain is done: the next, or QUIT */
		c->dom_i++;
		c->after_id = 0;
		if (c->dom_i >= c->atrn.n)
			c->finished = true;
		else
			odmr_feed_fetch(c);
		if (c->finished)
			smtpc_conn_resume(c->cc);
		return;
	}
	c->batch = b;
	c->res = xcalloc(b->n + 1, sizeof(*c->res));
	c->attempted = xcalloc(b->n + 1, sizeof(*c->attempted));
	for (i = 0; i < b->n; i++)
		c->res[i] = xcalloc(b->items[i].nrcpt + 1, sizeof(**c->res));
	c->next_item = 0;
	smtpc_conn_resume(c->cc);
}

static void odmr_feed_fetch(struct odmr_conn *c)
{
	struct queue_sel sel;

	memset(&sel, 0, sizeof(sel));
	sel.domain = c->atrn.domain[c->dom_i];
	sel.after_id = c->after_id;
	sel.limit = ODMR_BATCH;
	sel.bodies = true;
	c->fetching = true;
	queue_fetch(c->srv->q, &sel, odmr_fetched_cb, c);
}

static struct queue_item *odmr_next(void *arg)
{
	struct odmr_conn *c = arg;

	if (c->finished)
		return NULL;
	if (c->batch) {
		while (c->next_item < c->batch->n) {
			struct queue_item *it = &c->batch->items[c->next_item++];

			if (it->body_error == 0)
				return it;
		}
		odmr_record(c);	/* then the next batch */
	}
	return SMTPC_NEXT_LATER;
}

static void odmr_msg_done(void *arg, struct queue_item *it,
    const struct smtpc_result *res)
{
	struct odmr_conn *c = arg;
	size_t i = (size_t)(it - c->batch->items), k;

	memcpy(c->res[i], res, it->nrcpt * sizeof(*res));
	c->attempted[i] = true;
	for (k = 0; k < it->nrcpt; k++)
		c->delivered += res[k].code / 100 == 2;
}

static void odmr_end(void *arg, struct smtpc_conn *cc,
    const struct smtpc_result *fail, bool greeted)
{
	struct odmr_conn *c = arg;

	log_info("event=atrn_end sid=%s user=%s delivered=%u%s%s", c->sid,
	    log_value(odmr_session_user(c->sess),
	    strlen(odmr_session_user(c->sess))), c->delivered,
	    fail ? " reason=" : "", fail ? log_value(fail->text,
	    strlen(fail->text)) : "");
	c->cc = NULL;		/* it freed the bufferevent */
	if (c->recording || c->fetching)
		return;		/* their callbacks finish the job */
	if (c->batch) {
		odmr_record(c);
		return;
	}
	odmr_unclaim_all(c);
	odmr_free(c);
}

/* odmr_reverse - 250 sent: the customer is now the server */
static void odmr_reverse(struct odmr_conn *c)
{
	static const struct smtpc_conn_cbs cbs = {
		odmr_next, odmr_msg_done, odmr_end
	};
	struct smtpc_params p;
	struct evbuffer *in = bufferevent_get_input(c->sc.bev);

	/* bytes pipelined after ATRN would be taken for the customer's
	 * replies (SECURITY.md E10): they are dropped */
	evbuffer_drain(in, evbuffer_get_length(in));
	odmr_flush(c);
	memset(&p, 0, sizeof(p));
	p.helo = c->srv->cfg->hostname;
	p.tls = CONFIG_TLS_NONE;	/* no second TLS inside this one */
	p.tls_active = c->sc.tls;
	c->reversed = true;
	c->dom_i = 0;
	c->after_id = 0;
	c->cc = smtpc_conn_start(c->srv->base, srvconn_release(&c->sc), false,
	    NULL, odmr_session_user(c->sess), &p, &cbs, c);
	odmr_feed_fetch(c);
}

/* odmr_note - the status page's "last ATRN" for each domain asked */
static void odmr_note(struct odmr_conn *c, int code)
{
	size_t i;

	for (i = 0; i < c->atrn.n; i++)
		metrics_note_request("ATRN", c->atrn.domain[i], code, c->addr);
}

static void odmr_counted_cb(void *arg, enum queue_status st, uint64_t msgs,
    uint64_t rcpts, const struct buf *domains)
{
	struct odmr_conn *c = arg;
	const char *user = odmr_session_user(c->sess);

	c->busy = false;
	if (c->dead) {
		odmr_unclaim_all(c);
		odmr_free(c);
		return;
	}
	odmr_note(c, st != QUEUE_OK ? 451 : msgs == 0 ? 453 : 250);
	if (st != QUEUE_OK || msgs == 0) {
		metrics_atrn(st != QUEUE_OK ? 451 : 453);
		odmr_unclaim_all(c);
		buf_puts(&c->sc.out, st != QUEUE_OK ?
		    "451 4.3.0 Unable to process ATRN request now\r\n" :
		    "453 4.7.0 You have no mail\r\n");
		log_info("event=atrn sid=%s user=%s reply=%s", c->sid,
		    log_value(user, strlen(user)), st != QUEUE_OK ? "451" :
		    "453");
		odmr_flush(c);
		srvconn_reading(&c->sc, true);
		odmr_process(c);
		return;
	}
	log_info("event=atrn sid=%s user=%s reply=250 messages=%llu"
	    " recipients=%llu", c->sid, log_value(user, strlen(user)),
	    (unsigned long long)msgs, (unsigned long long)rcpts);
	metrics_atrn(250);
	buf_puts(&c->sc.out, "250 2.0.0 OK now reversing the connection\r\n");
	odmr_reverse(c);
}

/* odmr_atrn - claim every domain (451 if one is busy), then count */
static void odmr_atrn(struct odmr_conn *c)
{
	const struct smtp_atrn *a = odmr_session_atrn(c->sess);
	const char *doms[SMTP_ATRN_MAX];
	size_t i;

	c->atrn = *a;
	for (i = 0; i < c->atrn.n; i++) {
		if (!sched_claim(c->srv->s, c->atrn.domain[i])) {
			odmr_note(c, 451);
			while (i-- > 0)
				sched_unclaim(c->srv->s, c->atrn.domain[i]);
			c->atrn.n = 0;
			metrics_atrn(451);
			log_info("event=atrn sid=%s reply=451 reason=busy", c->sid);
			buf_puts(&c->sc.out, "451 4.3.0 Unable to process ATRN"
			    " request now: its mail is being delivered\r\n");
			return;
		}
		doms[i] = c->atrn.domain[i];
	}
	c->busy = true;
	srvconn_reading(&c->sc, false);
	queue_count(c->srv->q, doms, c->atrn.n, false, odmr_counted_cb, c);
}

static void odmr_starttls(struct odmr_conn *c)
{
	if (!srvconn_starttls(&c->sc, c->srv->tls))
		odmr_gone(c);
}

static void odmr_act(struct odmr_conn *c, enum odmr_action act)
{
	switch (act) {
	case ODMR_ACT_CLOSE:
		odmr_close(c);
		break;
	case ODMR_ACT_STARTTLS:
		odmr_starttls(c);
		break;
	case ODMR_ACT_ATRN:
		odmr_atrn(c);
		break;
	case ODMR_ACT_AUTH_FAILED:
		odmr_auth_delay(c);
		break;
	default:
		break;
	}
}

static void odmr_process(struct odmr_conn *c)
{
	struct evbuffer *in;
	unsigned handled = 0;

	if (c->sc.bev == NULL || c->sc.closing || c->busy || c->reversed ||
	    c->in_process)
		return;
	in = bufferevent_get_input(c->sc.bev);
	c->in_process = true;
	while (!c->sc.closing && !c->busy && !c->reversed && c->sc.bev != NULL &&
	    handled++ < 100) {
		struct evbuffer_ptr eol = evbuffer_search(in, "\n", 1, NULL);
		char *line;
		size_t len;

		if (eol.pos < 0) {
			if (evbuffer_get_length(in) > ODMR_LINE_MAX) {
				evbuffer_drain(in, evbuffer_get_length(in));
				odmr_act(c, odmr_session_line_error(c->sess,
				    &c->sc.out));
			}
			break;
		}
		len = (size_t)eol.pos;
		if (len + 1 > ODMR_LINE_MAX || len == 0) {
			evbuffer_drain(in, len + 1);
			odmr_act(c, odmr_session_line_error(c->sess, &c->sc.out));
			continue;
		}
		line = xmalloc(len + 1);
		evbuffer_remove(in, line, len + 1);
		if (line[len - 1] != '\r') {
			free(line);
			odmr_act(c, odmr_session_line_error(c->sess, &c->sc.out));
			continue;
		}
		line[len - 1] = '\0';
		odmr_act(c, odmr_session_line(c->sess, line, len - 1, &c->sc.out));
		OPENSSL_cleanse(line, len);	/* it may have held a password */
		free(line);
	}
	c->in_process = false;
	if (c->dead && !c->busy) {
		odmr_free(c);
		return;
	}
	if (c->sc.bev != NULL && !c->busy && !c->reversed)
		odmr_flush(c);
}

void odmr_server_accept(void *arg, int fd, const struct sockaddr *sa,
    socklen_t salen, struct net_slot *slot)
{
	struct odmr_server *srv = arg;
	struct odmr_conn *c = xcalloc(1, sizeof(*c));
	struct odmr_env env;
	unsigned port;

	net_sockaddr_parts(sa, c->addr, sizeof(c->addr), &c->family, c->bytes,
	    &port);
	snprintf(c->sid, sizeof(c->sid), "%08llXA%07llX",
	    (unsigned long long)(time(NULL) & 0xffffffff),
	    (unsigned long long)(++srv->seq & 0xfffffff));
	c->srv = srv;
	memset(&env, 0, sizeof(env));
	env.auth_allowed = odmr_auth_allowed;
	env.auth_done = odmr_auth_done;
	env.arg = c;
	env.tls_available = srv->tls != NULL;
	env.sid = c->sid;
	c->sess = odmr_session_new(srv->cfg, srv->users, &env);
	c->delay = evtimer_new(srv->base, odmr_delay_cb, c);
	c->next = srv->conns;
	if (srv->conns)
		srv->conns->prev = c;
	srv->conns = c;
	if (!srvconn_open(&c->sc, srv->base, fd, slot, srv->cfg->idle_timeout,
	    &odmr_sc_ops, c, c->sid, " service=odmr")) {
		odmr_free(c);
		return;
	}
	metrics_inc(MET_ODMR_SESSIONS);
	log_info("event=connect sid=%s service=odmr client=%s port=%u", c->sid,
	    c->addr, port);
	odmr_session_greet(c->sess, &c->sc.out);
	odmr_flush(c);
	srvconn_start(&c->sc);
}

struct odmr_server *odmr_server_new(struct event_base *base,
    struct config *cfg, struct users *users, struct queue *q,
    struct sched *s, SSL_CTX *tls)
{
	struct odmr_server *srv = xcalloc(1, sizeof(*srv));

	srv->base = base;
	srv->cfg = config_ref(cfg);
	srv->users = users ? users_ref(users) : NULL;
	srv->q = q;
	srv->s = s;
	srv->tls = tls;
	srv->addr_fails = ratelimit_new(ODMR_FAIL_WINDOW, 100000);
	srv->account_fails = ratelimit_new(ODMR_FAIL_WINDOW, 100000);
	return srv;
}

void odmr_server_stop(struct odmr_server *srv, void (*done)(void *),
    void *arg)
{
	struct odmr_conn *c, *next;

	srv->stopping = true;
	srv->stop_done = done;
	srv->stop_arg = arg;
	if (srv->conns == NULL) {
		srv->stop_done = NULL;
		done(arg);
		return;
	}
	for (c = srv->conns; c != NULL; c = next) {
		next = c->next;
		if (c->cc)
			smtpc_conn_abort(c->cc);	/* end() comes later */
		else if (!c->reversed)
			odmr_gone(c);	/* frees now, or when its wait ends */
	}
}

void odmr_server_reload(struct odmr_server *srv, struct config *cfg,
    struct users *users, SSL_CTX *tls)
{
	struct config *old = srv->cfg;
	struct users *oldu = srv->users;

	srv->cfg = config_ref(cfg);
	srv->users = users ? users_ref(users) : NULL;
	srv->tls = tls;
	config_unref(old);
	users_free(oldu);
}

void odmr_server_free(struct odmr_server *srv)
{
	if (srv == NULL)
		return;
	srv->stop_done = NULL;
	while (srv->conns) {
		struct odmr_conn *c = srv->conns;

		c->busy = false;
		odmr_free(c);
	}
	ratelimit_free(srv->addr_fails);
	ratelimit_free(srv->account_fails);
	users_free(srv->users);
	config_unref(srv->cfg);
	free(srv);
}
