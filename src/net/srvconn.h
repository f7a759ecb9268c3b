/*
 * SUMMARY
 *	srvconn - one client connection of a server (SMTP, ODMR): its output,
 *	its STARTTLS and its end
 * DESCRIPTION
 *	What the two servers share about a connection's bufferevent, so that
 *	both behave alike:
 *
 *	srvconn_flush() sends the replies gathered in out.  On plain TCP with
 *	nothing queued they go straight to the socket: a reply nearly always
 *	fits, and the bufferevent would enable and then disable write events
 *	for it (two epoll_ctl calls per reply).  The rest, and errors, go
 *	through the bufferevent.
 *
 *	srvconn_starttls() drops whatever the client sent in clear after
 *	STARTTLS, wraps the socket in TLS, and gives the whole handshake
 *	timeout seconds: a ClientHello trickled a byte at a time does not hold
 *	the connection longer (the connection just ends: nothing can be said
 *	to a client that never finished it).
 *
 *	Input.  On plain TCP the connection reads the socket itself, one
 *	readv of up to SRVCONN_READ_MAX bytes (or what the read limit leaves)
 *	each time it is readable, into the bufferevent's input buffer; the
 *	bufferevent writes only.  libevent 2.1 asks the kernel how much is
 *	there (ioctl FIONREAD) before every read and reads 4 KB at most: for
 *	a 5 KB message with its MAIL, RCPT and DATA, ten system calls where
 *	this makes four (measured with smtp-source).  With TLS the
 *	filter bufferevent reads, and when the socket is handed over
 *	(srvconn_release) the new owner's bufferevent does.  The read limit
 *	and srvconn_reading() apply to both.
 *
 *	srvconn_close() sends what is gathered and ends the connection once it
 *	has left.  On plain TCP, when the client sent more than was read, the
 *	socket is then half-closed and what the client still sends is read
 *	and dropped until it closes too, for at most SRVCONN_LINGER seconds:
 *	closing with unread input makes the kernel reset the connection,
 *	which can throw away the last reply (a 421) before the client has
 *	read it.  A client that sent QUIT and waits is simply closed.  With TLS the filter's output
 *	drains into the socket's, and no callback says when that is empty: it
 *	is looked at again every 20 ms, up to timeout seconds (a client that
 *	stops reading).  The connection's slot (net/listener.h: the caps) is
 *	given back when the lingering starts: the session is over.
 *
 *	The owner's callbacks (ops): read (input to process), timeout (the
 *	idle timeout, outside a close and a handshake: the owner answers 421
 *	and closes, and returns true, or returns false to end at once), lost
 *	(EOF or an error outside a close: the owner logs it), connected (the
 *	TLS handshake is done) and gone (the connection is over: the owner
 *	frees itself, with srvconn_free(), now or when its pending work
 *	returns; srvconn_drop() lets go of the socket meanwhile).
 */
#ifndef ETRND_NET_SRVCONN_H
#define ETRND_NET_SRVCONN_H

#include <stdbool.h>
#include <time.h>

#include <openssl/ssl.h>

#include "util/buf.h"

#define SRVCONN_LINGER 2	/* seconds to read past our close */
#define SRVCONN_READ_MAX 65536	/* bytes taken by one read at most */

struct event_base;
struct bufferevent;
struct event;
struct evbuffer_cb_entry;
struct net_slot;

struct srvconn_ops {
	void (*read)(void *arg);
	bool (*timeout)(void *arg);
	void (*lost)(void *arg, bool eof);
	void (*connected)(void *arg, const char *tls_version);
	void (*gone)(void *arg);
};

struct srvconn {
	struct bufferevent *bev;	/* NULL once dropped */
	struct buf out;			/* replies not yet flushed */
	bool tls;
	bool closing;
	bool lingering;
	long long timeout;		/* idle timeout, handshake, close */
	time_t close_deadline;
	struct event *close_ev;
	struct event *hs_ev;
	struct event *rd_ev;		/* plain TCP input; NULL with TLS */
	struct evbuffer_cb_entry *rd_cb;	/* input shrank: read again */
	bool want_read;			/* the owner wants input */
	bool rd_added;			/* rd_ev is pending */
	size_t rd_high;			/* input buffered at most; 0: any */
	long long rd_ms;		/* its idle timeout */
	const char *sid;		/* for the log */
	const char *service;		/* "" or " service=odmr" */
	const struct srvconn_ops *ops;
	void *arg;
	struct net_slot *slot;		/* released when the session ends */
};

/* srvconn_open - take fd and its slot; false when no bufferevent could be
 * made (the socket is closed then); srvconn_free() is due either way */
bool srvconn_open(struct srvconn *sc, struct event_base *base, int fd,
    struct net_slot *slot, long long timeout, const struct srvconn_ops *ops,
    void *arg, const char *sid, const char *service);
void srvconn_free(struct srvconn *sc);
void srvconn_drop(struct srvconn *sc);
void srvconn_flush(struct srvconn *sc);
void srvconn_close(struct srvconn *sc);
/* srvconn_start - read and write from now on */
void srvconn_start(struct srvconn *sc);
/* srvconn_reading - whether the owner takes input now (off while it
 * waits for something, and once it closes) */
void srvconn_reading(struct srvconn *sc, bool on);
/* srvconn_read_limit - stop reading while this many bytes are buffered
 * (0: no limit) */
void srvconn_read_limit(struct srvconn *sc, size_t bytes);
/* srvconn_timeouts - read and write timeouts, in milliseconds */
void srvconn_timeouts(struct srvconn *sc, long long ms);
/* srvconn_release - hand the bufferevent over (ODMR's role reversal):
 * from now on it belongs to the caller */
struct bufferevent *srvconn_release(struct srvconn *sc);
/* srvconn_starttls - false when the upgrade failed (then the owner ends) */
bool srvconn_starttls(struct srvconn *sc, SSL_CTX *ctx);

#endif
