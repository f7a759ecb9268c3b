/* smtpc_conn - the SMTP client state machine on a bufferevent */
#include "smtpc/smtpc_conn.h"
#include "log/log.h"
#include "tls/tls.h"
#include "util/fault.h"
#include "util/xalloc.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

#define SMTPC_CONNECT_TIMEOUT 30

struct smtpc_conn {
	struct event_base *base;
	struct bufferevent *bev;
	SSL_CTX *tls;
	char *peer;
	struct smtpc *c;
	struct smtpc_conn_cbs cbs;
	void *arg;
	struct smtp_reply reply;
	struct buf out;
	struct queue_item *cur;
	bool greeted;
	bool ended;
	bool waiting_next;	/* next() said SMTPC_NEXT_LATER */
	bool tls_on;
	struct event *later;	/* end() runs from the loop, never re-entrantly */
	struct smtpc_result endres;
	bool endfail;
};

/* smtpc_conn_phase_timeout - RFC 5321 4.5.3.2, per awaited reply */
static long smtpc_conn_phase_timeout(enum smtpc_phase ph)
{
	switch (ph) {
	case SMTPC_PH_DATA:
		return 120;
	case SMTPC_PH_DOT:
		return 600;
	default:
		return 300;
	}
}

static void smtpc_conn_timeouts(struct smtpc_conn *cc)
{
	struct timeval rd = { smtpc_conn_phase_timeout(smtpc_phase(cc->c)), 0 };
	struct timeval wr = { 180, 0 };

	bufferevent_set_timeouts(cc->bev, &rd, &wr);
}

static void smtpc_conn_later_cb(evutil_socket_t fd, short what, void *arg)
{
	struct smtpc_conn *cc = arg;

	cc->cbs.end(cc->arg, cc, cc->endfail ? &cc->endres : NULL,
	    cc->greeted);
	if (cc->bev)
		bufferevent_free(cc->bev);
	event_free(cc->later);
	smtpc_free(cc->c);
	smtp_reply_free(&cc->reply);
	buf_free(&cc->out);
	free(cc->peer);
	free(cc);
}

/* smtpc_conn_end - report once (from the loop), then free everything */
static void smtpc_conn_end(struct smtpc_conn *cc, const struct smtpc_result *fail)
{
	if (cc->ended)
		return;
	cc->ended = true;
	if (cc->cur) {
		/* the message in flight gets its (deferral) results now */
		struct queue_item *it = cc->cur;

		cc->cur = NULL;
		cc->cbs.msg_done(cc->arg, it, smtpc_results(cc->c));
	}
	if (fail) {
		cc->endres = *fail;
		cc->endfail = true;
	}
	if (cc->bev)
		bufferevent_disable(cc->bev, EV_READ | EV_WRITE);
	event_active(cc->later, EV_TIMEOUT, 0);
}

static void smtpc_conn_flush(struct smtpc_conn *cc)
{
	if (cc->out.len > 0 && cc->bev) {
		bufferevent_write(cc->bev, cc->out.p, cc->out.len);
		buf_reset(&cc->out);
	}
}

static void smtpc_conn_next(struct smtpc_conn *cc);

static void smtpc_conn_upgrade(struct smtpc_conn *cc)
{
	struct bufferevent *tb;
	struct evbuffer *in = bufferevent_get_input(cc->bev);

	/* nothing the server sent in clear after its 220 is ever read */
	evbuffer_drain(in, evbuffer_get_length(in));
	tb = tls_client_upgrade(cc->base, cc->bev, cc->tls, cc->peer);
	if (tb == NULL) {
		smtpc_lost(cc->c, "TLS setup failed");
		smtpc_conn_end(cc, smtpc_failure(cc->c));
		return;
	}
	cc->bev = tb;
	cc->tls_on = true;
	bufferevent_setcb(tb, NULL, NULL, NULL, cc);
}

static void smtpc_conn_act(struct smtpc_conn *cc, enum smtpc_action act);
static void smtpc_read_cb(struct bufferevent *bev, void *arg);
static void smtpc_event_cb(struct bufferevent *bev, short what, void *arg);

static void smtpc_conn_act(struct smtpc_conn *cc, enum smtpc_action act)
{
	switch (act) {
	case SMTPC_ACT_WAIT:
		smtpc_conn_flush(cc);
		smtpc_conn_timeouts(cc);
		break;
	case SMTPC_ACT_STARTTLS:
		smtpc_conn_upgrade(cc);
		if (!cc->ended) {
			bufferevent_setcb(cc->bev, smtpc_read_cb, NULL,
			    smtpc_event_cb, cc);
			smtpc_conn_timeouts(cc);
			bufferevent_enable(cc->bev, EV_READ | EV_WRITE);
		}
		break;
	case SMTPC_ACT_MSG_DONE: {
		struct queue_item *it = cc->cur;
		const struct smtpc_result *r = smtpc_results(cc->c);
		size_t i;

		for (i = 0; i < it->nrcpt; i++)
			if (r[i].code / 100 == 2) {
				fault_point("after_remote_250");
				break;
			}
		cc->cur = NULL;
		cc->cbs.msg_done(cc->arg, it, smtpc_results(cc->c));
	}
		/* FALLTHROUGH */
	case SMTPC_ACT_READY:
		smtpc_conn_next(cc);
		break;
	case SMTPC_ACT_FAIL:
		smtpc_conn_flush(cc);
		smtpc_conn_end(cc, smtpc_failure(cc->c));
		break;
	case SMTPC_ACT_CLOSE:
		smtpc_conn_end(cc, NULL);
		break;
	}
}

/* smtpc_conn_next - the next message, or QUIT */
static void smtpc_conn_next(struct smtpc_conn *cc)
{
	for (;;) {
		struct queue_item *it = cc->cbs.next(cc->arg);
		enum smtpc_action act;

		if (it == SMTPC_NEXT_LATER) {
			cc->waiting_next = true;
			return;
		}
		if (it == NULL) {
			smtpc_quit(cc->c, &cc->out);
			smtpc_conn_flush(cc);
			smtpc_conn_timeouts(cc);
			return;
		}
		cc->cur = it;
		act = smtpc_message(cc->c, it, &cc->out);
		if (act != SMTPC_ACT_MSG_DONE) {
			smtpc_conn_act(cc, act);
			return;
		}
		/* refused before a byte was sent (SIZE, 8BITMIME): next */
		cc->cur = NULL;
		cc->cbs.msg_done(cc->arg, it, smtpc_results(cc->c));
	}
}

static void smtpc_read_cb(struct bufferevent *bev, void *arg)
{
	struct smtpc_conn *cc = arg;
	struct evbuffer *in = bufferevent_get_input(bev);

	while (!cc->ended) {
		struct evbuffer_ptr eol = evbuffer_search(in, "\n", 1, NULL);
		char line[SMTP_REPLY_LINE_MAX + 1];
		size_t len;
		enum smtp_reply_status st;
		struct smtpc_result bad;

		if (eol.pos < 0) {
			if (evbuffer_get_length(in) >= SMTP_REPLY_LINE_MAX)
				goto protocol;
			return;
		}
		len = (size_t)eol.pos;
		if (len + 1 > SMTP_REPLY_LINE_MAX)
			goto protocol;
		evbuffer_remove(in, line, len + 1);
		if (len == 0 || line[len - 1] != '\r')
			goto protocol;
		len--;
		st = smtp_reply_feed(&cc->reply, line, len);
		if (st == SMTP_REPLY_MORE)
			continue;
		if (st == SMTP_REPLY_BAD)
			goto protocol;
		cc->greeted = true;
		smtpc_conn_act(cc, smtpc_reply(cc->c, &cc->reply, &cc->out));
		smtp_reply_reset(&cc->reply);
		continue;
protocol:
		log_warn("event=protocol_error peer=%s detail=%s",
		    log_value(cc->peer, strlen(cc->peer)),
		    cc->reply.error ? cc->reply.error : "bad reply line");
		smtpc_lost(cc->c, "malformed reply from the server");
		bad = *smtpc_failure(cc->c);
		smtpc_conn_end(cc, &bad);
		return;
	}
}

static void smtpc_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct smtpc_conn *cc = arg;
	struct smtpc_result res;

	if (what & BEV_EVENT_CONNECTED) {
		if (cc->tls_on)	/* the TLS handshake finished */
			smtpc_conn_act(cc, smtpc_tls_started(cc->c, &cc->out));
		else	/* connected: now the greeting's own timeout */
			smtpc_conn_timeouts(cc);
		return;
	}
	if (what & BEV_EVENT_TIMEOUT)
		smtpc_lost(cc->c, cc->greeted ? "timeout waiting for the"
		    " server's reply" : "timeout connecting or waiting for"
		    " the greeting");
	else if (what & BEV_EVENT_EOF)
		smtpc_lost(cc->c, "connection closed by the server");
	else
		smtpc_lost(cc->c, cc->tls_on ? "TLS or connection error" :
		    "connection error");
	res = *smtpc_failure(cc->c);
	smtpc_conn_end(cc, &res);
}

struct smtpc_conn *smtpc_conn_start(struct event_base *base,
    struct bufferevent *bev, bool connecting, SSL_CTX *tls,
    const char *peer, const struct smtpc_params *p,
    const struct smtpc_conn_cbs *cbs, void *arg)
{
	struct smtpc_conn *cc = xcalloc(1, sizeof(*cc));
	struct smtpc_params params = *p;
	struct timeval ct = { SMTPC_CONNECT_TIMEOUT, 0 };

	params.tls_possible = tls != NULL;
	cc->base = base;
	cc->bev = bev;
	cc->tls = tls;
	cc->peer = xstrdup(peer);
	cc->cbs = *cbs;
	cc->arg = arg;
	cc->c = smtpc_new(&params);
	cc->later = event_new(base, -1, 0, smtpc_conn_later_cb, cc);
	smtp_reply_init(&cc->reply);
	bufferevent_setcb(bev, smtpc_read_cb, NULL, smtpc_event_cb, cc);
	if (connecting)
		bufferevent_set_timeouts(bev, &ct, &ct);
	else
		smtpc_conn_timeouts(cc);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
	return cc;
}

void smtpc_conn_resume(struct smtpc_conn *cc)
{
	if (!cc->waiting_next || cc->ended)
		return;
	cc->waiting_next = false;
	smtpc_conn_next(cc);
}

void smtpc_conn_abort(struct smtpc_conn *cc)
{
	struct smtpc_result res;

	smtpc_lost(cc->c, "delivery stopped");
	res = *smtpc_failure(cc->c);
	smtpc_conn_end(cc, &res);
}
