/* ctl_server - the operator's control socket */
#include "ctl/ctl_server.h"
#include "ctl/ctl_proto.h"
#include "log/log.h"
#include "metrics/metrics.h"
#include "queue/queue.h"
#include "sched/sched.h"
#include "util/idgen.h"
#include "util/qclock.h"
#include "util/strutil.h"
#include "util/xalloc.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

struct ctl_server {
	struct event_base *base;
	struct evconnlistener *l;
	struct queue *q;
	struct sched *s;
	char *path;
};

struct ctl_conn {
	struct ctl_server *cs;
	struct bufferevent *bev;
	bool waiting;		/* a query is in flight */
	bool dead;		/* the client left while it was */
	bool answered;		/* the answer is written: free once it is sent */
};

static void ctl_conn_free(struct ctl_conn *c)
{
	if (c->bev)
		bufferevent_free(c->bev);
	free(c);
}

static void ctl_write_cb(struct bufferevent *bev, void *arg)
{
	struct ctl_conn *c = arg;

	if (c->answered)
		ctl_conn_free(c);
}

static void ctl_finish(struct ctl_conn *c, const char *head,
    const struct buf *rows)
{
	c->answered = true;
	bufferevent_write(c->bev, head, strlen(head));
	if (rows && rows->len)
		bufferevent_write(c->bev, rows->p, rows->len);
	bufferevent_disable(c->bev, EV_READ);
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
		ctl_conn_free(c);
}

static void ctl_result_cb(void *arg, enum queue_status st,
    const struct buf *rows)
{
	struct ctl_conn *c = arg;
	struct buf head = BUF_INIT;

	c->waiting = false;
	if (c->dead) {
		ctl_conn_free(c);
		return;
	}
	if (st == QUEUE_OK)
		buf_puts(&head, "ok\n");
	else
		buf_printf(&head, "error\t%s\n", queue_status_text(st));
	ctl_finish(c, buf_cstr(&head), st == QUEUE_OK ? rows : NULL);
	buf_free(&head);
}

/* ctl_admin_cb - an operator's change is committed: say how many
 * recipients it touched, and hurry what it made due */
static void ctl_admin_cb(void *arg, enum queue_status st, uint64_t msgs,
    uint64_t rcpts, const struct buf *domains)
{
	struct ctl_conn *c = arg;
	struct buf row = BUF_INIT;
	const char *p, *end;

	if (st == QUEUE_OK && !c->dead) {
		const char *ln;
		char dom[256];
		size_t n;

		p = domains->p;
		end = p ? p + domains->len : NULL;
		while ((ln = str_next_line(&p, end, &n)) != NULL)
			if (str_copy_line(dom, sizeof(dom), ln, n))
				sched_kick(c->cs->s, dom);
	}
	buf_printf(&row, "%llu\n", (unsigned long long)rcpts);
	ctl_result_cb(c, st, &row);
	buf_free(&row);
}

static void ctl_flush(struct ctl_conn *c, const char *domain)
{
	struct buf row = BUF_INIT;

	switch (sched_flush(c->cs->s, domain)) {
	case SCHED_FLUSH_STARTED:
		buf_puts(&row, "started\n");
		break;
	case SCHED_FLUSH_JOINED:
		buf_puts(&row, "joined\n");
		break;
	default:
		ctl_finish(c, "error\ttoo many deliveries running; try again"
		    " later\n", NULL);
		buf_free(&row);
		return;
	}
	log_info("event=flush domain=%s by=etrnctl", domain);
	ctl_finish(c, "ok\n", &row);
	buf_free(&row);
}

static void ctl_read_cb(struct bufferevent *bev, void *arg)
{
	struct ctl_conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	struct ctl_req req;
	size_t len;
	char qid[IDGEN_HEX_LEN + 1];
	char *line;

	if (c->waiting)
		return;
	line = evbuffer_readln(in, &len, EVBUFFER_EOL_LF);
	if (line == NULL) {
		if (evbuffer_get_length(in) > CTL_LINE_MAX)
			ctl_finish(c, "error\trequest too long\n", NULL);
		return;
	}
	ctl_req_parse(line, len, &req);
	free(line);
	switch (req.cmd) {
	case CTL_CMD_SUMMARY:
		c->waiting = true;
		queue_summary(c->cs->q, ctl_result_cb, c);
		break;
	case CTL_CMD_LIST:
		c->waiting = true;
		queue_list(c->cs->q, req.arg, ctl_result_cb, c);
		break;
	case CTL_CMD_SHOW:
		c->waiting = true;
		queue_show(c->cs->q, req.id, ctl_result_cb, c);
		break;
	case CTL_CMD_FLUSH:
		ctl_flush(c, req.arg);
		break;
	case CTL_CMD_SHAPE:
		c->waiting = true;
		queue_shape(c->cs->q, qclock_now(), ctl_result_cb, c);
		break;
	case CTL_CMD_STATS: {
		struct buf all = BUF_INIT, rows = BUF_INIT;
		const char *p, *end;

		/* the counters of /metrics, as "name<TAB>value" rows */
		metrics_render(&all);
		for (p = all.p, end = p + all.len; p < end;) {
			const char *nl = memchr(p, '\n', (size_t)(end - p));
			const char *sp;
			size_t n = (size_t)((nl ? nl : end) - p);

			sp = memchr(p, ' ', n);
			if (*p != '#' && sp) {
				buf_append(&rows, p, (size_t)(sp - p));
				buf_putc(&rows, '\t');
				buf_append(&rows, sp + 1, n - (size_t)(sp - p) - 1);
				buf_putc(&rows, '\n');
			}
			p = nl ? nl + 1 : end;
		}
		ctl_finish(c, "ok\n", &rows);
		buf_free(&all);
		buf_free(&rows);
		break;
	}
	case CTL_CMD_EXPIRE: {
		struct buf row = BUF_INIT;

		sched_sweep_now(c->cs->s);
		buf_puts(&row, "started\n");
		ctl_finish(c, "ok\n", &row);
		buf_free(&row);
		break;
	}
	case CTL_CMD_HOLD:
	case CTL_CMD_RELEASE:
	case CTL_CMD_REQUEUE:
	case CTL_CMD_DELETE:
		c->waiting = true;
		if (req.arg[0] == '\0')
			idgen_format(req.id, qid);
		log_info("event=admin op=%s %s=%s", req.cmd == CTL_CMD_HOLD ?
		    "hold" : req.cmd == CTL_CMD_RELEASE ? "release" :
		    req.cmd == CTL_CMD_REQUEUE ? "requeue" : "delete",
		    req.arg[0] ? "domain" : "qid", req.arg[0] ? req.arg : qid);
		queue_admin(c->cs->q, req.cmd == CTL_CMD_HOLD ? QUEUE_ADMIN_HOLD :
		    req.cmd == CTL_CMD_RELEASE ? QUEUE_ADMIN_RELEASE :
		    req.cmd == CTL_CMD_REQUEUE ? QUEUE_ADMIN_REQUEUE :
		    QUEUE_ADMIN_DELETE, req.arg[0] ? req.arg : NULL, req.id,
		    ctl_admin_cb, c);
		break;
	default: {
		struct buf e = BUF_INIT;

		buf_printf(&e, "error\t%s\n", req.error);
		ctl_finish(c, e.p, NULL);
		buf_free(&e);
		break;
	}
	}
}

static void ctl_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct ctl_conn *c = arg;

	if (c->waiting) {
		bufferevent_free(c->bev);
		c->bev = NULL;
		c->dead = true;
		return;
	}
	ctl_conn_free(c);
}

static void ctl_accept_cb(struct evconnlistener *l, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct ctl_server *cs = arg;
	struct ctl_conn *c;
	struct ucred cred;
	socklen_t clen = sizeof(cred);
	struct timeval tv = { 30, 0 };

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) != 0 ||
	    (cred.uid != 0 && cred.uid != geteuid())) {
		static const char no[] = "error\tpermission denied\n";

		log_warn("event=ctl_refused uid=%d", clen ? (int)cred.uid : -1);
		if (send(fd, no, sizeof(no) - 1, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
			/* nothing more to tell it */
		}
		close(fd);
		return;
	}
	c = xcalloc(1, sizeof(*c));
	c->cs = cs;
	c->bev = bufferevent_socket_new(cs->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL) {
		close(fd);
		free(c);
		return;
	}
	bufferevent_setcb(c->bev, ctl_read_cb, ctl_write_cb, ctl_event_cb, c);
	bufferevent_set_timeouts(c->bev, &tv, &tv);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

struct ctl_server *ctl_server_new(struct event_base *base, const char *path,
    struct queue *q, struct sched *s, struct buf *err)
{
	struct ctl_server *cs;
	struct sockaddr_un sun;
	mode_t old;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		buf_printf(err, "control socket path too long: %s", path);
		return NULL;
	}
	memcpy(sun.sun_path, path, strlen(path));
	cs = xcalloc(1, sizeof(*cs));
	cs->base = base;
	cs->q = q;
	cs->s = s;
	cs->path = xstrdup(path);
	unlink(path);
	old = umask(077);
	cs->l = evconnlistener_new_bind(base, ctl_accept_cb, cs,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 16,
	    (struct sockaddr *)&sun, (int)sizeof(sun));
	umask(old);
	if (cs->l == NULL) {
		buf_printf(err, "cannot listen on %s: %s", path,
		    strerror(errno));
		free(cs->path);
		free(cs);
		return NULL;
	}
	return cs;
}

void ctl_server_free(struct ctl_server *cs)
{
	if (cs == NULL)
		return;
	evconnlistener_free(cs->l);
	unlink(cs->path);
	free(cs->path);
	free(cs);
}
