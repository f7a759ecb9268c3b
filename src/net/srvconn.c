/* srvconn - one client connection of a server: output, STARTTLS, end */
#include "net/srvconn.h"
#include "net/listener.h"
#include "log/log.h"
#include "tls/tls.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>

static void srvconn_close_check(struct srvconn *sc);
static void srvconn_event_cb(struct bufferevent *bev, short what, void *arg);
static void srvconn_rd_stop(struct srvconn *sc);

static void srvconn_close_cb(evutil_socket_t fd, short what, void *arg)
{
	srvconn_close_check(arg);
}

static void srvconn_handshake_cb(evutil_socket_t fd, short what, void *arg)
{
	struct srvconn *sc = arg;

	log_info("event=disconnect sid=%s%s reason=tls_handshake_timeout",
	    sc->sid, sc->service);
	sc->ops->gone(sc->arg);
}

static void srvconn_read_cb(struct bufferevent *bev, void *arg)
{
	struct srvconn *sc = arg;

	if (sc->lingering) {
		struct evbuffer *in = bufferevent_get_input(bev);

		evbuffer_drain(in, evbuffer_get_length(in));
		return;
	}
	sc->ops->read(sc->arg);
}

/* srvconn_rd_want - should the plain socket be polled for input now */
static bool srvconn_rd_want(const struct srvconn *sc)
{
	return sc->want_read && sc->bev != NULL &&
	    (sc->rd_high == 0 ||
	    evbuffer_get_length(bufferevent_get_input(sc->bev)) < sc->rd_high);
}

static void srvconn_rd_update(struct srvconn *sc)
{
	struct timeval tv = { (time_t)(sc->rd_ms / 1000),
		(suseconds_t)(sc->rd_ms % 1000 * 1000) };
	bool want = srvconn_rd_want(sc);

	if (sc->rd_ev == NULL || want == sc->rd_added)
		return;
	if (want)
		event_add(sc->rd_ev, sc->rd_ms > 0 ? &tv : NULL);
	else
		event_del(sc->rd_ev);
	sc->rd_added = want;
}

/* the input shrank (the owner used it): maybe read again */
static void srvconn_input_cb(struct evbuffer *buf,
    const struct evbuffer_cb_info *info, void *arg)
{
	if (info->n_deleted > 0)
		srvconn_rd_update(arg);
}

/* srvconn_rd_end - the input ended (what: EOF, error, timeout): the
 * owner hears it as from the bufferevent */
static void srvconn_rd_end(struct srvconn *sc, short what)
{
	srvconn_rd_stop(sc);
	srvconn_event_cb(sc->bev, BEV_EVENT_READING | what, sc);
}

/*
 * srvconn_rd_cb - plain TCP input: one readv of what there is room for
 * (libevent 2.1's own read asks FIONREAD first and takes 4 KB at most:
 * see srvconn.h)
 */
static void srvconn_rd_cb(evutil_socket_t fd, short what, void *arg)
{
	struct srvconn *sc = arg;
	struct evbuffer *in = bufferevent_get_input(sc->bev);
	struct evbuffer_iovec v[2];
	struct iovec iov[2];
	size_t len = evbuffer_get_length(in), room = SRVCONN_READ_MAX;
	ssize_t r, left;
	int n, i;

	if (what & EV_TIMEOUT) {
		srvconn_rd_end(sc, BEV_EVENT_TIMEOUT);
		return;
	}
	if (sc->rd_high > 0)
		room = len >= sc->rd_high ? 0 :
		    sc->rd_high - len < room ? sc->rd_high - len : room;
	if (room == 0) {
		srvconn_rd_update(sc);
		return;
	}
	/* the bufferevent keeps the end of its input frozen but for reads */
	evbuffer_unfreeze(in, 0);
	n = evbuffer_reserve_space(in, (ev_ssize_t)room, v, 2);
	if (n <= 0) {
		evbuffer_freeze(in, 0);
		srvconn_rd_end(sc, BEV_EVENT_ERROR);
		return;
	}
	for (i = 0; i < n; i++) {
		iov[i].iov_base = v[i].iov_base;
		iov[i].iov_len = v[i].iov_len;
	}
	r = readv(fd, iov, n);
	if (r <= 0) {
		evbuffer_freeze(in, 0);
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK ||
		    errno == EINTR))
			return;
		srvconn_rd_end(sc, r == 0 ? BEV_EVENT_EOF : BEV_EVENT_ERROR);
		return;
	}
	for (i = 0, left = r; i < n; i++) {
		if ((size_t)left < v[i].iov_len)
			v[i].iov_len = (size_t)left;
		left -= (ssize_t)v[i].iov_len;
	}
	evbuffer_commit_space(in, v, n);
	evbuffer_freeze(in, 0);
	srvconn_rd_update(sc);
	srvconn_read_cb(sc->bev, sc);
}

static void srvconn_write_cb(struct bufferevent *bev, void *arg)
{
	struct srvconn *sc = arg;

	if (sc->closing)
		srvconn_close_check(sc);
}

static void srvconn_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct srvconn *sc = arg;

	if (what & BEV_EVENT_CONNECTED) {
		evtimer_del(sc->hs_ev);
		sc->ops->connected(sc->arg, tls_version(bev));
		return;
	}
	if ((what & BEV_EVENT_TIMEOUT) && evtimer_pending(sc->hs_ev, NULL)) {
		srvconn_handshake_cb(-1, 0, sc);	/* silent in the handshake */
		return;
	}
	if ((what & BEV_EVENT_TIMEOUT) && !sc->closing &&
	    sc->ops->timeout(sc->arg))
		return;
	if (!sc->closing)
		sc->ops->lost(sc->arg, (what & BEV_EVENT_EOF) != 0);
	sc->ops->gone(sc->arg);
}

bool srvconn_open(struct srvconn *sc, struct event_base *base, int fd,
    struct net_slot *slot, long long timeout, const struct srvconn_ops *ops,
    void *arg, const char *sid, const char *service)
{
	memset(sc, 0, sizeof(*sc));
	sc->slot = slot;
	sc->timeout = timeout;
	sc->ops = ops;
	sc->arg = arg;
	sc->sid = sid;
	sc->service = service;
	sc->close_ev = evtimer_new(base, srvconn_close_cb, sc);
	sc->hs_ev = evtimer_new(base, srvconn_handshake_cb, sc);
	sc->bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (sc->bev == NULL) {
		evutil_closesocket(fd);
		return false;
	}
	bufferevent_setcb(sc->bev, srvconn_read_cb, srvconn_write_cb,
	    srvconn_event_cb, sc);
	sc->rd_ev = event_new(base, fd, EV_READ | EV_PERSIST, srvconn_rd_cb,
	    sc);
	sc->rd_cb = evbuffer_add_cb(bufferevent_get_input(sc->bev),
	    srvconn_input_cb, sc);
	if (sc->rd_ev == NULL || sc->rd_cb == NULL)
		return false;
	srvconn_timeouts(sc, timeout * 1000);
	return true;
}

/* srvconn_rd_stop - no more reading of our own (TLS, handing over, end) */
static void srvconn_rd_stop(struct srvconn *sc)
{
	if (sc->rd_ev != NULL) {
		event_free(sc->rd_ev);
		sc->rd_ev = NULL;
	}
	if (sc->rd_cb != NULL && sc->bev != NULL)
		evbuffer_remove_cb_entry(bufferevent_get_input(sc->bev),
		    sc->rd_cb);
	sc->rd_cb = NULL;
	sc->rd_added = false;
}

void srvconn_start(struct srvconn *sc)
{
	bufferevent_enable(sc->bev, EV_WRITE);
	srvconn_reading(sc, true);
}

void srvconn_reading(struct srvconn *sc, bool on)
{
	sc->want_read = on;
	if (sc->bev == NULL)
		return;
	if (sc->rd_ev == NULL) {
		if (on)
			bufferevent_enable(sc->bev, EV_READ);
		else
			bufferevent_disable(sc->bev, EV_READ);
		return;
	}
	srvconn_rd_update(sc);
}

void srvconn_read_limit(struct srvconn *sc, size_t bytes)
{
	sc->rd_high = bytes;
	if (sc->bev == NULL)
		return;
	if (sc->rd_ev == NULL)
		bufferevent_setwatermark(sc->bev, EV_READ, 0, bytes);
	else
		srvconn_rd_update(sc);
}

void srvconn_drop(struct srvconn *sc)
{
	srvconn_rd_stop(sc);
	if (sc->bev)
		bufferevent_free(sc->bev);
	sc->bev = NULL;
	if (sc->close_ev)
		evtimer_del(sc->close_ev);
	if (sc->hs_ev)
		evtimer_del(sc->hs_ev);
}

struct bufferevent *srvconn_release(struct srvconn *sc)
{
	struct bufferevent *bev = sc->bev;

	srvconn_rd_stop(sc);
	sc->bev = NULL;
	srvconn_drop(sc);
	return bev;
}

void srvconn_free(struct srvconn *sc)
{
	srvconn_drop(sc);
	if (sc->close_ev)
		event_free(sc->close_ev);
	if (sc->hs_ev)
		event_free(sc->hs_ev);
	sc->close_ev = sc->hs_ev = NULL;
	buf_free(&sc->out);
	net_release(sc->slot);
	sc->slot = NULL;
}

void srvconn_timeouts(struct srvconn *sc, long long ms)
{
	struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)(ms % 1000 * 1000) };

	sc->rd_ms = ms;
	if (sc->bev)
		bufferevent_set_timeouts(sc->bev, &tv, &tv);
	if (sc->rd_added)	/* a pending event takes the new timeout */
		event_add(sc->rd_ev, ms > 0 ? &tv : NULL);
}

void srvconn_flush(struct srvconn *sc)
{
	size_t done = 0;

	if (sc->out.len == 0 || sc->bev == NULL)
		return;
	if (!sc->tls &&
	    evbuffer_get_length(bufferevent_get_output(sc->bev)) == 0) {
		ssize_t w = send(bufferevent_getfd(sc->bev), sc->out.p,
		    sc->out.len, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (w > 0)
			done = (size_t)w;
	}
	if (done < sc->out.len)
		bufferevent_write(sc->bev, sc->out.p + done, sc->out.len - done);
	buf_reset(&sc->out);
}

static bool srvconn_output_empty(struct srvconn *sc)
{
	return evbuffer_get_length(bufferevent_get_output(sc->bev)) == 0 &&
	    (!sc->tls || tls_output_pending(sc->bev) == 0);
}

/* srvconn_close_check - end a closing connection once its output left */
static void srvconn_close_check(struct srvconn *sc)
{
	struct timeval tick = { 0, 20000 }, linger = { SRVCONN_LINGER, 0 };

	if (sc->bev == NULL || sc->lingering ||
	    time(NULL) >= sc->close_deadline) {
		sc->ops->gone(sc->arg);
		return;
	}
	if (srvconn_output_empty(sc)) {
		struct evbuffer *in = bufferevent_get_input(sc->bev);
		int unread = 0;

		/* nothing unread (a client that sent QUIT and waits): a plain
		 * close sends no reset; else linger */
		if (sc->tls || (evbuffer_get_length(in) == 0 &&
		    ioctl(bufferevent_getfd(sc->bev), FIONREAD, &unread) == 0 &&
		    unread == 0) ||
		    shutdown(bufferevent_getfd(sc->bev), SHUT_WR) != 0) {
			sc->ops->gone(sc->arg);
			return;
		}
		sc->lingering = true;
		net_release(sc->slot);	/* the session is over */
		sc->slot = NULL;
		evbuffer_drain(in, evbuffer_get_length(in));
		srvconn_read_limit(sc, 0);
		srvconn_reading(sc, true);
		evtimer_add(sc->close_ev, &linger);
		return;
	}
	/* the filter's own output drains with a write callback; a client
	 * that stops reading meets the deadline */
	if (evbuffer_get_length(bufferevent_get_output(sc->bev)) == 0) {
		evtimer_add(sc->close_ev, &tick);
	} else {
		struct timeval left = { sc->close_deadline - time(NULL), 0 };

		evtimer_add(sc->close_ev, &left);
	}
}

void srvconn_close(struct srvconn *sc)
{
	if (sc->closing)
		return;
	srvconn_flush(sc);
	sc->closing = true;
	sc->close_deadline = time(NULL) + sc->timeout;
	srvconn_reading(sc, false);
	srvconn_close_check(sc);
}

bool srvconn_starttls(struct srvconn *sc, SSL_CTX *ctx)
{
	struct evbuffer *in = bufferevent_get_input(sc->bev);
	struct timeval hs = { (time_t)sc->timeout, 0 };
	struct bufferevent *tb;

	srvconn_flush(sc);
	/* nothing the client sent in clear after STARTTLS is ever read */
	evbuffer_drain(in, evbuffer_get_length(in));
	srvconn_rd_stop(sc);	/* the TLS filter reads the socket now */
	tb = tls_server_upgrade(bufferevent_get_base(sc->bev), sc->bev, ctx);
	if (tb == NULL)
		return false;
	sc->bev = tb;
	sc->tls = true;
	bufferevent_setcb(tb, srvconn_read_cb, srvconn_write_cb,
	    srvconn_event_cb, sc);
	srvconn_timeouts(sc, sc->timeout * 1000);
	if (sc->rd_high > 0)
		bufferevent_setwatermark(tb, EV_READ, 0, sc->rd_high);
	sc->want_read = true;
	bufferevent_enable(tb, EV_READ | EV_WRITE);
	evtimer_add(sc->hs_ev, &hs);
	return true;
}
