/* smtpd_glue - SMTP sessions on libevent bufferevents */
#include "smtpd/smtpd_glue.h"
#include "smtpd/smtpd_session.h"
#include "config/config.h"
#include "etrn/etrn.h"
#include "log/log.h"
#include "metrics/metrics.h"
#include "net/listener.h"
#include "net/srvconn.h"
#include "queue/queue.h"
#include "smtp/smtp_cmd.h"
#include "tls/tls.h"
#include "util/strutil.h"
#include "util/xalloc.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SMTPD_LINES_PER_EVENT 100	/* then yield to other clients */

struct smtpd_conn {
	struct smtpd_conn *prev, *next;
	struct smtpd_server *srv;
	struct srvconn sc;	/* the socket, replies, STARTTLS, the end */
	struct smtpd_session *sess;
	struct event *resume;
	bool data_mode;
	bool storing;		/* a commit is in flight: reading paused */
	bool dead;		/* the socket is gone; free when the commit answers */
	bool skip_line;		/* discarding an over-long line up to its LF */
	bool data_partial;	/* the DATA bytes so far end inside a line */
	int64_t line_start;	/* smtpd_mono_ms() a pending line began, or 0 */
	bool line_clocked;	/* the timeouts armed are what it has left */
	char long_head[6];	/* the first bytes of that line */
	bool in_etrn_call;	/* etrn_request() may answer before it returns */
	bool in_process;	/* inside smtpd_conn_process(): free at its end */
	bool tarpit;		/* replies held back after repeated errors */
	struct event *tarpit_ev;
	struct event *greet_ev;	/* greeting_delay: the 220 waits on it */
	bool greet_pending;	/* the 220 is not sent yet */
	struct smtpd_client cl;
	int spill_fd;
	uint64_t spill_len;
	int spill_err;		/* a spill of this message failed: refuse it */
	char sid[17];
};

struct smtpd_server {
	struct event_base *base;
	struct config *cfg;
	struct queue *q;
	struct etrn *etrn;
	SSL_CTX *tls;
	struct smtpd_conn *conns;
	unsigned nconns;
	bool draining;
	uint64_t sid_seq;
};

static void smtpd_conn_process(struct smtpd_conn *c);

static void smtpd_conn_timeouts(struct smtpd_conn *c, long long seconds)
{
	srvconn_timeouts(&c->sc, seconds * 1000);
	c->line_clocked = false;
}

/* smtpd_mono_ms - the monotonic clock in milliseconds (never 0) */
static int64_t smtpd_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + 1;
}

/* smtpd_conn_line_done - a line ended: the next one has its full time */
static void smtpd_conn_line_done(struct smtpd_conn *c)
{
	c->line_start = 0;
}

static bool smtpd_space_ok(void *arg, uint64_t size)
{
	return queue_space_ok(arg, size);
}

static void smtpd_conn_free(struct smtpd_conn *c)
{
	struct smtpd_server *srv = c->srv;

	if (c->prev)
		c->prev->next = c->next;
	else
		srv->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	srv->nconns--;
	srvconn_free(&c->sc);
	if (c->spill_fd >= 0)
		close(c->spill_fd);
	event_free(c->resume);
	event_free(c->tarpit_ev);
	event_free(c->greet_ev);
	smtpd_session_free(c->sess);
	free(c);
}

/* smtpd_conn_gone - the peer is gone or we are done: free now or later */
static void smtpd_conn_gone(struct smtpd_conn *c)
{
	if (c->storing || c->in_process) {
		/* the commit callback still holds c: free it there */
		srvconn_drop(&c->sc);
		c->dead = true;
		return;
	}
	smtpd_conn_free(c);
}

static void smtpd_conn_flush(struct smtpd_conn *c)
{
	srvconn_flush(&c->sc);
}

static void smtpd_conn_close(struct smtpd_conn *c)
{
	srvconn_close(&c->sc);
}

/* the connection's callbacks (net/srvconn.h) */

static void smtpd_sc_connected(void *arg, const char *version)
{
	struct smtpd_conn *c = arg;

	log_info("event=starttls sid=%s version=%s", c->sid, version);
	smtpd_session_tls_started(c->sess, version);
}

static bool smtpd_sc_timeout(void *arg)
{
	struct smtpd_conn *c = arg;

	if (c->storing)
		return false;
	smtpd_session_timeout(c->sess, &c->sc.out);
	smtpd_conn_close(c);
	return true;
}

static void smtpd_sc_lost(void *arg, bool eof)
{
	struct smtpd_conn *c = arg;

	log_info("event=disconnect sid=%s reason=%s%s", c->sid,
	    eof ? "client_closed" : "error",
	    smtpd_session_in_data(c->sess) ? " in=data" : "");
}

static void smtpd_sc_gone(void *arg)
{
	smtpd_conn_gone(arg);
}

static void smtpd_sc_read(void *arg)
{
	smtpd_conn_process(arg);
}

static const struct srvconn_ops smtpd_sc_ops = {
	smtpd_sc_read, smtpd_sc_timeout, smtpd_sc_lost, smtpd_sc_connected,
	smtpd_sc_gone,
};

static void smtpd_resume_cb(evutil_socket_t fd, short what, void *arg)
{
	smtpd_conn_process(arg);
}

/* smtpd_spill - move the in-memory body to an unlinked temporary file */
static int smtpd_spill(struct smtpd_conn *c, struct buf *body)
{
	const char *p = body->p;
	size_t n = body->len;

	if (c->spill_fd < 0) {
		c->spill_fd = open(c->srv->cfg->queue_dir,
		    O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
		if (c->spill_fd < 0)
			return errno;
		c->spill_len = 0;
	}
	while (n > 0) {
		ssize_t w = write(c->spill_fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? errno : EIO;
		p += w;
		n -= (size_t)w;
		c->spill_len += (uint64_t)w;
	}
	buf_reset(body);
	return 0;
}

/* smtpd_spill_reset - forget the temporary file of the current message */
static void smtpd_spill_reset(struct smtpd_conn *c)
{
	if (c->spill_fd >= 0)
		close(c->spill_fd);
	c->spill_fd = -1;
	c->spill_len = 0;
	c->spill_err = 0;
}

/* smtpd_conn_bye - the 421 of a shutdown, then close */
static void smtpd_conn_bye(struct smtpd_conn *c)
{
	buf_printf(&c->sc.out, "421 4.3.2 %s Service shutting down\r\n",
	    c->srv->cfg->hostname);
	smtpd_conn_close(c);
}

static void smtpd_stored_cb(void *arg, enum queue_status st)
{
	struct smtpd_conn *c = arg;

	c->storing = false;
	if (c->dead) {
		if (st == QUEUE_OK)
			log_info("event=queued_after_disconnect sid=%s qid=%s",
			    c->sid, smtpd_session_qid(c->sess));
		smtpd_conn_free(c);
		return;
	}
	smtpd_session_queued(c->sess, st, &c->sc.out);
	if (c->srv->draining) {
		smtpd_conn_bye(c);	/* after its 250: the transaction is done */
		return;
	}
	smtpd_conn_flush(c);
	/* commands pipelined after the final dot are waiting */
	smtpd_conn_process(c);
}

static void smtpd_conn_store(struct smtpd_conn *c)
{
	struct queue_msg_in *m;
	struct buf *body = smtpd_session_body(c->sess);
	int e = 0;

	/* a body with a hole where a spill failed is never stored */
	if (c->spill_err != 0)
		e = c->spill_err;
	else if (c->spill_fd >= 0)
		e = smtpd_spill(c, body);
	m = smtpd_session_take_msg(c->sess);
	m->body_fd = c->spill_fd;
	m->body_fd_len = c->spill_len;
	c->spill_fd = -1;
	c->spill_len = 0;
	c->spill_err = 0;
	if (e != 0) {
		queue_msg_free(m);
		smtpd_session_queued(c->sess, e == ENOSPC ? QUEUE_ENOSPC :
		    QUEUE_ETEMP, &c->sc.out);
		return;
	}
	/*
	 * Reading goes on (bounded by the read watermark) but nothing is
	 * processed until the commit answers: no epoll_ctl pair per message.
	 */
	c->storing = true;
	queue_put(c->srv->q, m, smtpd_stored_cb, c);
}

static void smtpd_conn_starttls(struct smtpd_conn *c)
{
	if (!srvconn_starttls(&c->sc, c->srv->tls)) {
		log_err("event=starttls_error sid=%s", c->sid);
		smtpd_conn_gone(c);
	}
}

/* smtpd_conn_data - feed buffered DATA bytes; false when nothing is left */
static bool smtpd_conn_data(struct smtpd_conn *c, struct evbuffer *in)
{
	struct evbuffer_iovec v;
	enum smtpd_action act;
	struct buf *body;
	size_t used;

	if (evbuffer_peek(in, -1, NULL, &v, 1) < 1 || v.iov_len == 0)
		return false;
	used = smtpd_session_data(c->sess, v.iov_base, v.iov_len, &act,
	    &c->sc.out);
	if (used > 0) {
		c->data_partial = ((const char *)v.iov_base)[used - 1] != '\n';
		if (memchr(v.iov_base, '\n', used) != NULL)
			smtpd_conn_line_done(c);
	}
	evbuffer_drain(in, used);
	body = smtpd_session_body(c->sess);
	if (body->len > c->srv->cfg->body_memory_limit) {
		int e = c->spill_err ? c->spill_err : smtpd_spill(c, body);

		if (e != 0) {
			/* refused at its end: keep memory bounded meanwhile */
			if (c->spill_err == 0)
				log_warn("event=spill_error sid=%s errno=%d",
				    c->sid, e);
			c->spill_err = e;
			buf_reset(body);
		}
	}
	if (act != SMTPD_ACT_DATA)
		smtpd_conn_timeouts(c, c->srv->cfg->idle_timeout);
	if (act == SMTPD_ACT_QUEUE) {
		c->data_mode = false;
		smtpd_conn_store(c);
	} else if (act == SMTPD_ACT_NONE) {
		c->data_mode = false;
		smtpd_spill_reset(c);
	}
	return true;
}

static void smtpd_etrn_reply_cb(void *arg, const char *reply)
{
	struct smtpd_conn *c = arg;

	c->storing = false;
	if (c->dead) {
		smtpd_conn_free(c);
		return;
	}
	buf_puts(&c->sc.out, reply);
	if (c->in_etrn_call)
		return;		/* answered at once: the caller carries on */
	smtpd_conn_flush(c);
	srvconn_reading(&c->sc, true);
	smtpd_conn_process(c);
}

static void smtpd_conn_etrn(struct smtpd_conn *c)
{
	struct etrn_client cl = { c->cl.family, c->cl.bytes, c->cl.addr,
		c->sid };

	c->storing = true;
	srvconn_reading(&c->sc, false);
	c->in_etrn_call = true;
	etrn_request(c->srv->etrn, &cl, smtpd_session_etrn(c->sess),
	    smtpd_session_etrn_plain250(c->sess), smtpd_etrn_reply_cb, c);
	c->in_etrn_call = false;
	if (!c->storing)
		srvconn_reading(&c->sc, true);
}

static void smtpd_conn_act(struct smtpd_conn *c, enum smtpd_action act)
{
	switch (act) {
	case SMTPD_ACT_ETRN:
		smtpd_conn_etrn(c);
		break;
	case SMTPD_ACT_CLOSE:
		smtpd_conn_close(c);
		break;
	case SMTPD_ACT_STARTTLS:
		smtpd_conn_starttls(c);
		break;
	case SMTPD_ACT_DATA:
		c->data_mode = true;
		smtpd_conn_timeouts(c, c->srv->cfg->data_timeout);
		break;
	default:
		break;
	}
}

/*
 * smtpd_conn_process - handle what is buffered: lines in command mode,
 * bytes in DATA mode, until input runs out, the session waits for the
 * store, or the per-wakeup cap is reached.  Replies of one pipelined
 * group leave together.
 */
/* smtpd_conn_long_head - keep the start of a line about to be dropped */
static void smtpd_conn_long_head(struct smtpd_conn *c, struct evbuffer *in)
{
	memset(c->long_head, 0, sizeof(c->long_head));
	evbuffer_copyout(in, c->long_head, sizeof(c->long_head) - 1);
}

static void smtpd_tarpit_cb(evutil_socket_t fd, short what, void *arg)
{
	struct smtpd_conn *c = arg;

	c->tarpit = false;
	if (c->dead || c->sc.bev == NULL)
		return;
	smtpd_conn_flush(c);
	srvconn_reading(&c->sc, true);
	smtpd_conn_process(c);
}

/*
 * smtpd_conn_line_clock - the timeouts count from the start of a line,
 * not from the last byte: a client that trickles a byte now and then
 * (slowloris) still has idle_timeout for a command and data_timeout for
 * a line of the body.  Called when the input ran out; false when the
 * pending line is out of time (the session was told and is closing).
 */
static bool smtpd_conn_line_clock(struct smtpd_conn *c, struct evbuffer *in)
{
	long long limit = c->data_mode ? c->srv->cfg->data_timeout :
	    c->srv->cfg->idle_timeout;
	bool partial = c->data_mode ? c->data_partial :
	    evbuffer_get_length(in) > 0 || c->skip_line;
	int64_t now, spent;

	if (!partial) {
		c->line_start = 0;
		if (c->line_clocked) {
			c->line_clocked = false;
			smtpd_conn_timeouts(c, limit);
		}
		return true;
	}
	now = smtpd_mono_ms();
	if (c->line_start == 0) {
		c->line_start = now;
		if (c->line_clocked) {
			c->line_clocked = false;
			smtpd_conn_timeouts(c, limit);
		}
		return true;
	}
	spent = now - c->line_start;
	if (spent >= limit * 1000) {
		smtpd_session_timeout(c->sess, &c->sc.out);
		smtpd_conn_close(c);
		return false;
	}
	srvconn_timeouts(&c->sc, limit * 1000 - spent);
	c->line_clocked = true;
	return true;
}

/* smtpd_greet_cb - greeting_delay is over and the client kept quiet */
static void smtpd_greet_cb(evutil_socket_t fd, short what, void *arg)
{
	struct smtpd_conn *c = arg;

	c->greet_pending = false;
	smtpd_conn_flush(c);
}

/*
 * smtpd_early_talker - the client sent before the greeting: it does not
 * wait for replies (RFC 5321 4.3.1 and 3.1), which is what spam engines
 * and smuggling attempts do (SECURITY.md S5).  Nothing it sent is read.
 */
static void smtpd_early_talker(struct smtpd_conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->sc.bev);

	evtimer_del(c->greet_ev);
	c->greet_pending = false;
	log_info("event=early_talker sid=%s bytes=%zu", c->sid,
	    evbuffer_get_length(in));
	metrics_inc(MET_EARLY_TALKERS);
	evbuffer_drain(in, evbuffer_get_length(in));
	buf_reset(&c->sc.out);
	buf_printf(&c->sc.out, "554 5.5.0 %s Error: talked before the"
	    " greeting\r\n", c->srv->cfg->hostname);
	smtpd_conn_close(c);
}

static void smtpd_conn_process(struct smtpd_conn *c)
{
	struct evbuffer *in;
	unsigned handled = 0, errors;

	if (c->sc.bev == NULL || c->sc.closing || c->storing || c->tarpit ||
	    c->in_process)
		return;
	in = bufferevent_get_input(c->sc.bev);
	if (c->greet_pending) {
		if (evbuffer_get_length(in) > 0)
			smtpd_early_talker(c);
		return;
	}
	errors = smtpd_session_errors(c->sess);
	c->in_process = true;
	while (!c->sc.closing && !c->storing && c->sc.bev != NULL) {
		struct evbuffer_ptr eol;
		char line[SMTP_CMD_LINE_MAX + 1];
		size_t n, len;
		enum smtpd_action act;

		if (++handled > SMTPD_LINES_PER_EVENT) {
			event_active(c->resume, EV_READ, 0);
			break;
		}
		if (c->data_mode) {
			if (!smtpd_conn_data(c, in)) {
				smtpd_conn_line_clock(c, in);
				break;
			}
			continue;
		}
		eol = evbuffer_search(in, "\n", 1, NULL);
		if (eol.pos < 0) {
			n = evbuffer_get_length(in);
			if (n > SMTP_CMD_LINE_MAX) {
				/* discard what we have; the rest up to LF too */
				if (!c->skip_line)
					smtpd_conn_long_head(c, in);
				evbuffer_drain(in, n);
				c->skip_line = true;
			}
			smtpd_conn_line_clock(c, in);
			break;
		}
		len = (size_t)eol.pos;
		if (c->skip_line || len + 1 > SMTP_CMD_LINE_MAX) {
			if (!c->skip_line)
				smtpd_conn_long_head(c, in);
			evbuffer_drain(in, len + 1);
			c->skip_line = false;
			smtpd_conn_line_done(c);
			/* an over-long ETRN argument is a bad parameter (501) */
			act = smtpd_session_line_error(c->sess,
			    str_caseprefix(c->long_head, 5, "ETRN ") ?
			    SMTPD_LINE_TOO_LONG_ARG : SMTPD_LINE_TOO_LONG, &c->sc.out);
			smtpd_conn_act(c, act);
			continue;
		}
		evbuffer_remove(in, line, len + 1);
		smtpd_conn_line_done(c);
		if (len == 0 || line[len - 1] != '\r') {
			act = smtpd_session_line_error(c->sess,
			    SMTPD_LINE_BARE_LF, &c->sc.out);
			smtpd_conn_act(c, act);
			continue;
		}
		len--;
		line[len] = '\0';
		if (c->srv->draining && smtpd_session_idle(c->sess)) {
			smtpd_conn_bye(c);
			break;
		}
		act = smtpd_session_line(c->sess, line, len,
		    evbuffer_get_length(in) > 0, &c->sc.out);
		smtpd_conn_act(c, act);
		/*
		 * Past a few errors every refusal costs the client a second
		 * (Postfix's error sleep): junk and guessing get slow.
		 */
		if (smtpd_session_errors(c->sess) > errors &&
		    smtpd_session_errors(c->sess) >=
		    c->srv->cfg->soft_error_limit &&
		    c->srv->cfg->error_delay > 0 &&
		    !c->sc.closing && !c->storing && c->sc.bev != NULL) {
			struct timeval d = { (time_t)c->srv->cfg->error_delay, 0 };

			c->tarpit = true;
			srvconn_reading(&c->sc, false);
			evtimer_add(c->tarpit_ev, &d);
			break;
		}
	}
	c->in_process = false;
	if (c->dead && !c->storing) {
		smtpd_conn_free(c);
		return;
	}
	if (c->sc.bev != NULL && !c->tarpit)
		smtpd_conn_flush(c);
}

static void smtpd_accept(struct smtpd_server *srv, int fd,
    const struct sockaddr *sa, struct net_slot *slot, bool plain250)
{
	struct smtpd_conn *c = xcalloc(1, sizeof(*c));
	struct smtpd_client cl;
	struct smtpd_env env;

	memset(&cl, 0, sizeof(cl));
	net_sockaddr_parts(sa, cl.addr, sizeof(cl.addr), &cl.family,
	    cl.bytes, &cl.port);
	snprintf(c->sid, sizeof(c->sid), "%08llX%08llX",
	    (unsigned long long)(time(NULL) & 0xffffffff),
	    (unsigned long long)(++srv->sid_seq & 0xffffffff));
	memcpy(cl.sid, c->sid, sizeof(cl.sid));
	env.space_ok = smtpd_space_ok;
	env.arg = srv->q;
	env.tls_available = srv->tls != NULL;
	env.etrn_plain250 = plain250;
	c->cl = cl;
	c->srv = srv;
	c->spill_fd = -1;
	c->sess = smtpd_session_new(srv->cfg, &cl, &env);
	c->resume = event_new(srv->base, -1, 0, smtpd_resume_cb, c);
	c->tarpit_ev = evtimer_new(srv->base, smtpd_tarpit_cb, c);
	c->greet_ev = evtimer_new(srv->base, smtpd_greet_cb, c);
	c->next = srv->conns;
	if (srv->conns)
		srv->conns->prev = c;
	srv->conns = c;
	srv->nconns++;
	if (!srvconn_open(&c->sc, srv->base, fd, slot, srv->cfg->idle_timeout,
	    &smtpd_sc_ops, c, c->sid, "")) {
		smtpd_conn_free(c);
		return;
	}
	metrics_inc(MET_SESSIONS);
	log_info("event=connect sid=%s client=%s port=%u", c->sid, cl.addr,
	    cl.port);
	/* a read high-water mark bounds what one client can make us buffer */
	srvconn_read_limit(&c->sc, 256 * 1024);
	smtpd_session_greet(c->sess, &c->sc.out);
	if (srv->cfg->greeting_delay > 0) {
		struct timeval d = { (time_t)srv->cfg->greeting_delay, 0 };

		c->greet_pending = true;
		evtimer_add(c->greet_ev, &d);
	} else {
		smtpd_conn_flush(c);
	}
	srvconn_start(&c->sc);
}

void smtpd_server_accept(void *arg, int fd, const struct sockaddr *sa,
    socklen_t salen, struct net_slot *slot)
{
	smtpd_accept(arg, fd, sa, slot, false);
}

void smtpd_server_accept_plain250(void *arg, int fd,
    const struct sockaddr *sa, socklen_t salen, struct net_slot *slot)
{
	smtpd_accept(arg, fd, sa, slot, true);
}

struct smtpd_server *smtpd_server_new(struct event_base *base,
    struct config *cfg, SSL_CTX *tls)
{
	struct smtpd_server *srv = xcalloc(1, sizeof(*srv));

	srv->base = base;
	srv->cfg = config_ref(cfg);
	srv->tls = tls;
	return srv;
}

void smtpd_server_attach(struct smtpd_server *srv, struct queue *q,
    struct etrn *etrn)
{
	srv->q = q;
	srv->etrn = etrn;
}

void smtpd_server_drain(struct smtpd_server *srv)
{
	struct smtpd_conn *c, *next;

	srv->draining = true;
	for (c = srv->conns; c != NULL; c = next) {
		next = c->next;
		if (!c->sc.closing && !c->dead && !c->storing && c->sc.bev &&
		    smtpd_session_idle(c->sess))
			smtpd_conn_bye(c);
	}
}

void smtpd_server_reload(struct smtpd_server *srv, struct config *cfg,
    SSL_CTX *tls)
{
	struct config *old = srv->cfg;

	srv->cfg = config_ref(cfg);
	srv->tls = tls;
	config_unref(old);
}

unsigned smtpd_server_sessions(const struct smtpd_server *srv)
{
	return srv->nconns;
}

void smtpd_server_free(struct smtpd_server *srv)
{
	while (srv->conns != NULL) {
		srv->conns->storing = false;
		smtpd_conn_free(srv->conns);
	}
	config_unref(srv->cfg);
	free(srv);
}
