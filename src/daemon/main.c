/*
 * etrnd - store-and-forward SMTP relay for sites that are not always online
 *
 * Start-up order (each step fatal on failure): configuration; TLS context
 * and listening sockets while still root; the queue directory created and
 * handed to the run-time user; privileges dropped (and checked); the queue
 * opened and recovered; the control socket; then the loop.
 * SIGTERM/SIGINT stop accepting, finish every commit in flight and exit.
 */
#include "config/config.h"
#include "ctl/ctl_server.h"
#include "auth/users.h"
#include "etrn/etrn.h"
#include "log/log.h"
#include "metrics/metrics_http.h"
#include "net/listener.h"
#include "odmr/odmr_glue.h"
#include "queue/queue.h"
#include "sched/sched.h"
#include "smtpc/smtpc_deliver.h"
#include "smtpd/smtpd_glue.h"
#include "tls/tls.h"
#include "util/fault.h"
#include "util/idgen.h"
#include "util/qclock.h"

#include <errno.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct daemon {
	const char *cfgpath;
	struct event_base *base;
	struct config *cfg;
	struct net_listener *smtp;
	struct net_listener *smtp_plain;	/* ETRN answers a plain 250 */
	struct etrn *etrn;
	struct net_listener *odmr_l;
	struct odmr_server *odmr;
	struct users *users;
	struct metrics_http *metrics;
	int stopping_parts;
	struct event *grace;
	time_t grace_end;
	struct smtpd_server *smtpd;
	struct queue *q;
	struct ctl_server *ctl;
	struct smtpc_deliver *deliver;
	struct sched *sched;
	SSL_CTX *tls;
};

static void usage(void)
{
	fprintf(stderr,
	    "usage: etrnd [-n] [-v] -c FILE\n"
	    "  -c FILE  configuration file (etrnd.conf(5))\n"
	    "  -n       check the configuration, print every error, exit\n"
	    "  -v       verbose (debug) logging\n");
	exit(2);
}

static void print_errors(const struct config_errors *errs)
{
	size_t i;

	for (i = 0; i < errs->n; i++)
		fprintf(stderr, "etrnd: %s\n", errs->v[i].msg);
}

/* drop_privileges - become user for good, and prove it cannot be undone */
static void drop_privileges(const char *user, const char *queue_dir)
{
	struct passwd *pw = getpwnam(user);

	if (pw == NULL)
		log_fatal("event=fatal reason=unknown_user user=%s", user);
	if (mkdir(queue_dir, 0700) != 0 && errno != EEXIST)
		log_fatal("event=fatal reason=mkdir path=%s error=%s",
		    queue_dir, strerror(errno));
	if (chown(queue_dir, pw->pw_uid, pw->pw_gid) != 0)
		log_fatal("event=fatal reason=chown path=%s error=%s",
		    queue_dir, strerror(errno));
	if (setgroups(1, &pw->pw_gid) != 0 ||
	    setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) != 0 ||
	    setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) != 0)
		log_fatal("event=fatal reason=drop_privileges error=%s",
		    strerror(errno));
	if (pw->pw_uid != 0 && (setuid(0) == 0 || seteuid(0) == 0))
		log_fatal("event=fatal reason=root_regained");
	log_info("event=privileges_dropped user=%s uid=%d", user,
	    (int)pw->pw_uid);
}

/*
 * conn_limit - the connections each listener may hold: max_connections,
 * unless the descriptor limit cannot take that many beside what the
 * queue, DNS and deliveries need.  The soft limit is raised to the hard
 * one first.  Past the limit accept() would fail and clients would hang
 * in the backlog; below it they get a clear 421 at connect.
 */
static unsigned conn_limit(const struct config *cfg)
{
	unsigned nl = 1 + (cfg->netrn_plain_listen > 0) +
	    (cfg->nodmr_listen > 0);
	unsigned long long want, have, reserve, cap;
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return cfg->max_connections;
	if (rl.rlim_cur != rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
			getrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur == RLIM_INFINITY)
		return cfg->max_connections;
	have = rl.rlim_cur;
	/* the queue's files and databases, DNS, deliveries, control */
	reserve = have >= 2048 ? 256 : have / 4 > 40 ? have / 4 : 40;
	want = (unsigned long long)cfg->max_connections * nl + reserve;
	if (have >= want)
		return cfg->max_connections;
	cap = have > reserve + nl ? (have - reserve) / nl : 1;
	log_warn("event=limit_clamped max_connections=%u to=%llu nofile=%llu"
	    " detail=\"raise the descriptor limit (ulimit -n, LimitNOFILE)\"",
	    cfg->max_connections, cap, have);
	return (unsigned)cap;
}

/* on_grace - every second of the shutdown grace: done when no session is
 * left or the grace is over */
static void on_grace(evutil_socket_t fd, short what, void *arg)
{
	struct daemon *d = arg;
	struct timeval one = { 1, 0 };

	if (smtpd_server_sessions(d->smtpd) == 0 ||
	    time(NULL) >= d->grace_end) {
		if (smtpd_server_sessions(d->smtpd) > 0)
			log_warn("event=stopping detail=\"grace over\""
			    " sessions=%u", smtpd_server_sessions(d->smtpd));
		event_base_loopexit(d->base, NULL);
		return;
	}
	evtimer_add(d->grace, &one);
}

/* on_part_stopped - the scheduler and the ODMR service report here; when
 * both are done, the SMTP sessions get their grace */
static void on_part_stopped(void *arg)
{
	struct daemon *d = arg;

	if (--d->stopping_parts == 0)
		on_grace(-1, 0, d);
}

/*
 * on_stop - stop accepting; end deliveries in progress (their results are
 * recorded first: what was delivered stays delivered), then leave the
 * loop; main() then finishes every commit in flight.
 */
static void on_stop(evutil_socket_t sig, short what, void *arg)
{
	struct daemon *d = arg;

	log_info("event=stopping signal=%d sessions=%u", (int)sig,
	    smtpd_server_sessions(d->smtpd));
	net_listener_stop(d->smtp);
	if (d->smtp_plain)
		net_listener_stop(d->smtp_plain);
	if (d->odmr_l)
		net_listener_stop(d->odmr_l);
	if (d->stopping_parts > 0)
		return;		/* a second signal: already stopping */
	d->stopping_parts = d->odmr ? 2 : 1;
	d->grace_end = time(NULL) + d->cfg->shutdown_grace;
	smtpd_server_drain(d->smtpd);
	smtpc_deliver_stop(d->deliver);
	if (d->odmr)
		odmr_server_stop(d->odmr, on_part_stopped, d);
	sched_stop(d->sched, on_part_stopped, d);
}

/*
 * on_hup - reload: a new configuration, users file and TLS certificate,
 * checked first and swapped in together, or none of them (the old ones
 * stay and the reason is logged).  Sessions keep what they started with.
 */
static void on_hup(evutil_socket_t sig, short what, void *arg)
{
	struct daemon *d = arg;
	struct config_errors errs = { 0 };
	struct buf err = BUF_INIT, fixed = BUF_INIT;
	struct config *nc;
	struct users *nu = NULL;
	SSL_CTX *nt = NULL, *ot;
	unsigned conn_cap;
	size_t i;

	if (d->sched == NULL || d->stopping_parts > 0)
		return;		/* still starting, or stopping */
	nc = config_load(d->cfgpath, &errs);
	if (nc == NULL) {
		for (i = 0; i < errs.n; i++)
			log_err("event=reload_failed error=%s",
			    log_value(errs.v[i].msg, strlen(errs.v[i].msg)));
		config_errors_free(&errs);
		log_err("event=reload_failed detail=\"configuration not"
		    " changed\"");
		return;
	}
	if (config_fixed_changes(d->cfg, nc, &fixed) > 0) {
		log_err("event=reload_failed keys=%s detail=\"these need a"
		    " restart; configuration not changed\"",
		    log_value(fixed.p, fixed.len));
		goto fail;
	}
	if (nc->nodmr_listen > 0 &&
	    (nu = users_load(nc->users_file, &err)) == NULL) {
		log_err("event=reload_failed reason=users_file error=%s",
		    log_value(err.p, err.len));
		goto fail;
	}
	if (nc->tls_cert &&
	    (nt = tls_server_ctx_new(nc->tls_cert, nc->tls_key, &err)) == NULL) {
		log_err("event=reload_failed reason=tls error=%s",
		    log_value(err.p, err.len));
		goto fail;
	}
	smtpd_server_reload(d->smtpd, nc, nt);
	sched_reload(d->sched, nc);
	smtpc_deliver_reload(d->deliver, nc);
	etrn_reload(d->etrn, nc);
	if (d->odmr)
		odmr_server_reload(d->odmr, nc, nu, nt);
	conn_cap = conn_limit(nc);
	net_listener_set_limits(d->smtp, conn_cap,
	    nc->max_connections_per_client);
	if (d->smtp_plain)
		net_listener_set_limits(d->smtp_plain, conn_cap,
		    nc->max_connections_per_client);
	if (d->odmr_l)
		net_listener_set_limits(d->odmr_l, conn_cap,
		    nc->max_connections_per_client);
	/* sessions hold their own references: these may go now */
	ot = d->tls;
	d->tls = nt;
	tls_ctx_free(ot);
	users_free(d->users);
	d->users = nu;
	config_unref(d->cfg);
	d->cfg = nc;
	log_info("event=reloaded domains=%zu tls=%s odmr_accounts=%zu",
	    nc->ndomains, nt ? "yes" : "no", nu ? users_count(nu) : 0);
	buf_free(&fixed);
	buf_free(&err);
	return;
fail:
	users_free(nu);
	tls_ctx_free(nt);
	config_unref(nc);
	buf_free(&fixed);
	buf_free(&err);
}

int main(int argc, char **argv)
{
	const char *cfgpath = NULL;
	struct config_errors errs = { 0 };
	struct buf err = BUF_INIT;
	struct daemon d;
	struct event *ev_term, *ev_int, *ev_hup;
	int opt, check = 0, verbose = 0;
	unsigned conn_cap;

	while ((opt = getopt(argc, argv, "c:nvh")) != -1) {
		switch (opt) {
		case 'c':
			cfgpath = optarg;
			break;
		case 'n':
			check = 1;
			break;
		case 'v':
			verbose = 1;
			break;
		default:
			usage();
		}
	}
	if (cfgpath == NULL || optind != argc)
		usage();
	memset(&d, 0, sizeof(d));
	d.cfgpath = cfgpath;
	d.cfg = config_load(cfgpath, &errs);
	if (d.cfg == NULL) {
		print_errors(&errs);
		config_errors_free(&errs);
		return 1;
	}
	if (check) {
		printf("etrnd: %s: configuration OK\n", cfgpath);
		config_unref(d.cfg);
		return 0;
	}
	log_init("etrnd", verbose ? LOG_LVL_DEBUG : LOG_LVL_INFO,
	    d.cfg->log_syslog);
	signal(SIGPIPE, SIG_IGN);
	evthread_use_pthreads();
	d.base = event_base_new();
	if (d.base == NULL)
		log_fatal("event=fatal reason=event_base");
	/*
	 * Signals first: once the listeners and the control socket exist,
	 * a supervisor may consider us up and send SIGTERM at once; it must
	 * find the handler (delivered from the loop, after everything below
	 * is set up), not the default action.
	 */
	ev_term = evsignal_new(d.base, SIGTERM, on_stop, &d);
	ev_int = evsignal_new(d.base, SIGINT, on_stop, &d);
	ev_hup = evsignal_new(d.base, SIGHUP, on_hup, &d);
	d.grace = evtimer_new(d.base, on_grace, &d);
	evsignal_add(ev_term, NULL);
	evsignal_add(ev_int, NULL);
	evsignal_add(ev_hup, NULL);

	conn_cap = conn_limit(d.cfg);
	if (d.cfg->tls_cert) {
		d.tls = tls_server_ctx_new(d.cfg->tls_cert, d.cfg->tls_key, &err);
		if (d.tls == NULL)
			log_fatal("event=fatal reason=tls error=%s",
			    log_value(err.p, err.len));
	}
	/* sockets are bound now, as root; nothing is accepted before the loop */
	d.smtpd = smtpd_server_new(d.base, d.cfg, d.tls);
	d.smtp = net_listener_new(d.base, d.cfg->listen, d.cfg->nlisten,
	    d.cfg->hostname, smtpd_server_accept, d.smtpd, &err);
	if (d.smtp == NULL)
		log_fatal("event=fatal reason=listen error=%s",
		    log_value(err.p, err.len));
	net_listener_set_limits(d.smtp, conn_cap,
	    d.cfg->max_connections_per_client);
	if (d.cfg->netrn_plain_listen > 0) {
		d.smtp_plain = net_listener_new(d.base, d.cfg->etrn_plain_listen,
		    d.cfg->netrn_plain_listen, d.cfg->hostname,
		    smtpd_server_accept_plain250, d.smtpd, &err);
		if (d.smtp_plain == NULL)
			log_fatal("event=fatal reason=listen error=%s",
			    log_value(err.p, err.len));
		net_listener_set_limits(d.smtp_plain, conn_cap,
		    d.cfg->max_connections_per_client);
	}
	if (d.cfg->nodmr_listen > 0) {
		if (d.cfg->users_file == NULL)
			log_fatal("event=fatal reason=config detail=\"odmr_listen"
			    " needs users_file\"");
		/* read as root, like the TLS key: the file may be root's */
		d.users = users_load(d.cfg->users_file, &err);
		while (err.len > 0 && err.p[err.len - 1] == '\n')
			err.len--;	/* one message per line: the last needs none */
		if (d.users == NULL)
			log_fatal("event=fatal reason=users_file error=%s",
			    log_value(err.p, err.len));
		d.odmr_l = net_listener_new(d.base, d.cfg->odmr_listen,
		    d.cfg->nodmr_listen, d.cfg->hostname, odmr_server_accept,
		    NULL, &err);
		if (d.odmr_l == NULL)
			log_fatal("event=fatal reason=listen error=%s",
			    log_value(err.p, err.len));
		net_listener_set_limits(d.odmr_l, conn_cap,
		    d.cfg->max_connections_per_client);
	}
	if (d.cfg->user && getuid() == 0)
		drop_privileges(d.cfg->user, d.cfg->queue_dir);

	fault_init();
	qclock_init();
	d.q = queue_open(d.cfg->queue_dir, d.cfg->queue_min_free, d.base, &err);
	if (d.q == NULL)
		log_fatal("event=fatal reason=queue error=%s",
		    log_value(err.p, err.len));
	idgen_floor(queue_max_id(d.q));
	d.deliver = smtpc_deliver_new(d.base, d.cfg, &err);
	if (d.deliver == NULL)
		log_fatal("event=fatal reason=delivery error=%s",
		    log_value(err.p, err.len));
	d.sched = sched_new(d.base, d.cfg, d.q, d.deliver);
	queue_set_commit_hook(d.q, sched_kick, d.sched);
	sched_start(d.sched);
	d.etrn = etrn_new(d.cfg, d.q, d.sched);
	smtpd_server_attach(d.smtpd, d.q, d.etrn);
	if (d.cfg->nmetrics_listen > 0) {
		d.metrics = metrics_http_new(d.base, &d.cfg->metrics_listen[0],
		    d.cfg->hostname, d.q, d.sched, &err);
		if (d.metrics == NULL)
			log_fatal("event=fatal reason=listen error=%s",
			    log_value(err.p, err.len));
	}
	if (d.odmr_l) {
		d.odmr = odmr_server_new(d.base, d.cfg, d.users, d.q, d.sched,
		    d.tls);
		net_listener_set_arg(d.odmr_l, d.odmr);
	}
	d.ctl = ctl_server_new(d.base, d.cfg->control, d.q, d.sched, &err);
	if (d.ctl == NULL)
		log_fatal("event=fatal reason=control error=%s",
		    log_value(err.p, err.len));

	log_info("event=started listen=%s:%u queue_dir=%s", d.cfg->listen[0].host,
	    d.cfg->listen[0].port, d.cfg->queue_dir);

	event_base_dispatch(d.base);

	odmr_server_free(d.odmr);
	metrics_http_free(d.metrics);
	queue_close(d.q);
	etrn_free(d.etrn);
	sched_free(d.sched);
	smtpc_deliver_free(d.deliver);
	smtpd_server_free(d.smtpd);
	net_listener_free(d.smtp);
	net_listener_free(d.smtp_plain);
	net_listener_free(d.odmr_l);
	users_free(d.users);
	ctl_server_free(d.ctl);
	event_free(ev_term);
	event_free(ev_int);
	event_free(ev_hup);
	event_free(d.grace);
	tls_ctx_free(d.tls);
	event_base_free(d.base);
	config_unref(d.cfg);
	buf_free(&err);
	log_info("event=stopped");
	return 0;
}
