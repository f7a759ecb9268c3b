/* sched - when mail leaves: retries, flushes, concurrency */
#include "sched/sched.h"
#include "bounce/bounce.h"
#include "config/config.h"
#include "log/log.h"
#include "metrics/metrics.h"
#include "queue/queue.h"
#include "smtpc/smtpc_deliver.h"
#include "util/buf.h"
#include "util/idgen.h"
#include "util/qclock.h"
#include "util/strutil.h"
#include "util/xalloc.h"

#include <event2/event.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SCHED_MAX_RUNS 20		/* domains delivering at once */
#define SCHED_BATCH 100			/* messages per fetch */
#define SCHED_TICK_MAX 60		/* seconds between looks for due mail */
#define SCHED_CLOCK_STEP 30		/* a wall-clock change worth a word */
#define SCHED_BUCKETS 1024
#define SCHED_SWEEP_EVERY 600		/* seconds between lifetime sweeps */

struct srun {
	struct srun *next;
	struct sched *s;
	char *domain;
	bool running;
	bool claimed;		/* an ATRN session delivers it itself */
	bool flush;		/* this run takes every pending recipient */
	bool again_flush;	/* a flush was asked for during the run */
	bool again_due;		/* new due mail arrived during the run */
	bool joined;		/* a flush joined this flush: look once more */
	bool more;		/* the last fetch hit its limit */
	/*
	 * A run is a pipeline: while one batch is being delivered, the next
	 * is fetched and the one before is being recorded.
	 */
	struct queue_batch *ready;	/* fetched, waiting for the delivery */
	bool fetching;
	bool delivering;
	unsigned recording;		/* batches whose outcomes are committing */
	uint64_t after_id;
	struct config *cfg;	/* the configuration the run started with */
};

struct sched {
	struct event_base *base;
	struct config *cfg;
	struct queue *q;
	struct smtpc_deliver *d;
	struct event *timer;
	bool stopping;
	unsigned running;
	void (*stop_done)(void *);
	void *stop_arg;
	struct config_domain fallback;	/* for domains we do not serve (DSNs) */
	struct event *sweep_timer;
	struct sched_sweep *sweep;	/* a lifetime sweep in progress */
	struct srun *buckets[SCHED_BUCKETS];
	int64_t skew;			/* qclock_skew() when last looked */
};

/*
 * A lifetime sweep: mail held for a site that never asks (or deferred
 * for good) is returned to its sender when its domain's lifetime is over,
 * with a 4.4.7 DSN, even though no delivery attempt would notice.
 */
struct sched_sweep {
	char **domains;
	size_t n, i;
	uint64_t after_id;
	time_t now;
};

static void sched_fetch(struct srun *r);
static void sched_sweep_next(struct sched *s);
static void sched_arm(struct sched *s, long seconds);

static unsigned sched_hash(const char *d)
{
	uint32_t h = 2166136261u;

	for (; *d; d++)
		h = (h ^ (unsigned char)*d) * 16777619u;
	return h % SCHED_BUCKETS;
}

static struct srun *sched_find(const struct sched *s, const char *domain)
{
	struct srun *r;

	for (r = s->buckets[sched_hash(domain)]; r; r = r->next)
		if (strcmp(r->domain, domain) == 0)
			return r;
	return NULL;
}

static struct srun *sched_get(struct sched *s, const char *domain)
{
	struct srun *r = sched_find(s, domain);
	unsigned h;

	if (r)
		return r;
	h = sched_hash(domain);
	r = xcalloc(1, sizeof(*r));
	r->s = s;
	r->domain = xstrdup(domain);
	r->next = s->buckets[h];
	s->buckets[h] = r;
	return r;
}

static void sched_forget(struct sched *s, struct srun *r)
{
	struct srun **pp;

	for (pp = &s->buckets[sched_hash(r->domain)]; *pp; pp = &(*pp)->next) {
		if (*pp == r) {
			*pp = r->next;
			free(r->domain);
			free(r);
			return;
		}
	}
}

static const struct config_domain *sched_domain(const struct sched *s,
    const char *domain)
{
	const struct config_domain *d = config_find_domain(s->cfg, domain);

	return d ? d : &s->fallback;
}

static void sched_start_run(struct sched *s, struct srun *r, bool flush)
{
	r->running = true;
	r->cfg = config_ref(s->cfg);
	r->flush = flush;
	r->again_flush = r->again_due = r->joined = false;
	r->after_id = 0;
	r->more = false;
	s->running++;
	log_info("event=run_start domain=%s kind=%s", r->domain,
	    flush ? "flush" : "retry");
	sched_fetch(r);
}

static void sched_end_run(struct sched *s, struct srun *r)
{
	r->running = false;
	config_unref(r->cfg);
	r->cfg = NULL;
	s->running--;
	if (!s->stopping && (r->again_flush || r->again_due)) {
		sched_start_run(s, r, r->again_flush);
		return;
	}
	sched_forget(s, r);
	if (s->stopping && s->running == 0 && s->sweep == NULL &&
	    s->stop_done)
		s->stop_done(s->stop_arg);
	else if (!s->stopping)
		sched_arm(s, 1);	/* a slot is free: look for due work */
}

/* sched_backoff - seconds until the next try after n attempts: retry_min,
 * doubling up to retry_max */
static long long sched_backoff(const struct config *cfg, int attempts)
{
	long long t = cfg->retry_min;

	while (--attempts > 0 && t < cfg->retry_max)
		t *= 2;
	return t < cfg->retry_max ? t : cfg->retry_max;
}

static void sched_delivered_cb(void *arg, struct queue_batch *b,
    struct smtpc_result **res);

/*
 * sched_step - move a run's pipeline on: deliver the batch that is ready,
 * fetch the next one meanwhile, and end the run when nothing is fetched,
 * delivered or recorded any more.
 */
static void sched_step(struct srun *r)
{
	struct sched *s = r->s;

	if (s->stopping && r->ready) {
		queue_batch_free(r->ready);
		r->ready = NULL;
	}
	if (!r->delivering && r->ready) {
		/* the domain's settings from the run's own configuration: a
		 * reload meanwhile cannot free them under the delivery */
		const struct config_domain *dom =
		    config_find_domain(r->cfg, r->domain);
		struct queue_batch *b = r->ready;

		r->ready = NULL;
		r->delivering = true;
		smtpc_deliver_run(s->d, r->domain, dom ? dom : &s->fallback, b,
		    sched_delivered_cb, r);
	}
	if (!r->fetching && r->ready == NULL && !s->stopping &&
	    (r->more || r->joined))
		sched_fetch(r);
	if (!r->delivering && !r->fetching && r->ready == NULL &&
	    r->recording == 0)
		sched_end_run(s, r);
}

static void sched_updated_cb(void *arg, enum queue_status st)
{
	struct srun *r = arg;

	if (st != QUEUE_OK)
		log_err("event=store_error op=record_outcomes domain=%s"
		    " detail=\"outcomes not recorded; the recipients stay"
		    " queued and will be tried again\"", r->domain);
	r->recording--;
	sched_step(r);
}

static const char *sched_verdict(int state)
{
	switch (state) {
	case QUEUE_R_DELIVERED:
		return "delivered";
	case QUEUE_R_FAILED:
		return "bounced";
	case QUEUE_R_HELD:
		return "held";
	case QUEUE_R_CORRUPT:
		return "quarantined";
	default:
		return "deferred";
	}
}

/*
 * sched_reply - what is stored and logged as a recipient's last reply: a
 * server's reply as it came ("451 4.3.0 ..."), or for a result made here
 * (DNS, TLS policy, a lost connection) its code and enhanced code before
 * the text, so the operator sees "451 4.7.4 TLS is required ..." too.
 */
static char *sched_reply(const struct smtpc_result *x)
{
	struct buf b = BUF_INIT;
	char code[4];
	char *out;

	snprintf(code, sizeof(code), "%03u", (unsigned)x->code % 1000u);
	if (strncmp(x->text, code, 3) == 0 &&
	    (x->text[3] == ' ' || x->text[3] == '-' || x->text[3] == '\0'))
		return xstrdup(x->text);
	buf_printf(&b, "%s%s%s%s%s", code, x->enh[0] ? " " : "", x->enh,
	    x->text[0] ? " " : "", x->text);
	out = xstrdup(buf_cstr(&b));
	buf_free(&b);
	return out;
}

/*
 * sched_delivered_cb - results to outcomes: 2xx delivered; 5xx failed;
 * 4xx deferred with backoff (held again in a hold domain), or failed with
 * 4.4.7 once the domain's lifetime is over.  Failures bring their DSN
 * into the same commit.
 */
void sched_record(struct sched *s, const char *domain, struct queue_batch *b,
    struct smtpc_result **res, queue_put_cb *cb, void *arg)
{
	const struct config_domain *dom = sched_domain(s, domain);
	bool hold = dom->mode == CONFIG_MODE_HOLD ||
	    dom->route == CONFIG_ROUTE_ODMR;
	struct queue_outcome *o;
	struct queue_msg_in **dsns;
	size_t i, k, n = 0, ndsn = 0, total = 0;
	time_t now = qclock_now();

	for (i = 0; i < b->n; i++)
		total += b->items[i].nrcpt;
	o = xcalloc(total + 1, sizeof(*o));
	dsns = xcalloc(b->n + 1, sizeof(*dsns));
	for (i = 0; i < b->n; i++) {
		struct queue_item *it = &b->items[i];
		enum bounce_kind *kinds = xcalloc(it->nrcpt + 1, sizeof(*kinds));
		char qid[IDGEN_HEX_LEN + 1];
		struct queue_msg_in *dsn;

		idgen_format(it->id, qid);
		for (k = 0; k < it->nrcpt; k++) {
			struct smtpc_result *x = &res[i][k];
			struct queue_outcome *oc = &o[n++];

			oc->rid = it->rcpts[k].rid;
			oc->msg = it->id;
			oc->count_attempt = true;
			if (queue_body_damaged(it->body_error)) {
				/* never sent: set aside for the operator */
				oc->state = QUEUE_R_CORRUPT;
				oc->count_attempt = false;
			} else if (x->code / 100 == 2) {
				oc->state = QUEUE_R_DELIVERED;
			} else if (x->code / 100 == 5) {
				oc->state = QUEUE_R_FAILED;
				kinds[k] = BOUNCE_FAILED;
			} else if (now - it->arrival > dom->lifetime) {
				oc->state = QUEUE_R_FAILED;
				kinds[k] = BOUNCE_FAILED;
				snprintf(x->enh, sizeof(x->enh), "4.4.7");
			} else {
				if (hold) {
					oc->state = QUEUE_R_HELD;
				} else {
					oc->state = QUEUE_R_DEFERRED;
					oc->next_try = now + sched_backoff(
					    s->cfg, it->rcpts[k].attempts + 1);
				}
				/* one delay warning, when it is due (RFC 3461) */
				if (s->cfg->delay_warning_time > 0 &&
				    !it->rcpts[k].warned &&
				    now - it->arrival >=
				    s->cfg->delay_warning_time) {
					kinds[k] = BOUNCE_DELAYED;
					oc->warned = true;
				}
			}
			oc->reply = sched_reply(x);
			if (oc->state == QUEUE_R_CORRUPT) {
				log_err("event=quarantined qid=%s to=%s"
				    " domain=%s reason=%s", qid,
				    log_value(it->rcpts[k].addr,
				    strlen(it->rcpts[k].addr)), domain,
				    log_value(strerror(it->body_error),
				    strlen(strerror(it->body_error))));
				continue;
			}
			metrics_inc(oc->state == QUEUE_R_DELIVERED ?
			    MET_DELIVERED : oc->state == QUEUE_R_FAILED ?
			    MET_BOUNCED : MET_DEFERRED);
			log_info("event=%s qid=%s to=%s domain=%s reply=%s",
			    sched_verdict(oc->state), qid,
			    log_value(it->rcpts[k].addr,
			    strlen(it->rcpts[k].addr)), domain,
			    log_value(oc->reply, strlen(oc->reply)));
		}
		dsn = bounce_make(s->cfg, it, kinds, res[i], NULL, now);
		if (dsn) {
			char dq[IDGEN_HEX_LEN + 1];

			idgen_format(dsn->id, dq);
			metrics_inc(MET_DSN);
			log_info("event=dsn qid=%s dsn_qid=%s to=%s", qid, dq,
			    log_value(dsn->rcpts[0].addr,
			    strlen(dsn->rcpts[0].addr)));
			dsns[ndsn++] = dsn;
		}
		free(kinds);
	}
	smtpc_deliver_results_free(res, b->n);
	queue_batch_free(b);
	queue_update(s->q, o, n, dsns, ndsn, cb, arg);
}

static void sched_delivered_cb(void *arg, struct queue_batch *b,
    struct smtpc_result **res)
{
	struct srun *r = arg;

	r->delivering = false;
	r->recording++;
	sched_record(r->s, r->domain, b, res, sched_updated_cb, r);
	sched_step(r);
}

static void sched_fetched_cb(void *arg, enum queue_status st,
    struct queue_batch *b)
{
	struct srun *r = arg;

	r->fetching = false;
	if (st != QUEUE_OK || b == NULL || b->n == 0) {
		if (st != QUEUE_OK) {
			log_err("event=store_error op=fetch domain=%s",
			    r->domain);
			r->joined = false;	/* do not spin on a broken store */
		}
		queue_batch_free(b);
		r->more = false;
	} else {
		r->after_id = b->items[b->n - 1].id;
		r->more = b->more;
		r->ready = b;
	}
	sched_step(r);
}

static void sched_fetch(struct srun *r)
{
	struct queue_sel sel;

	r->joined = false;	/* this fetch sees what was committed so far */
	r->fetching = true;
	memset(&sel, 0, sizeof(sel));
	sel.domain = r->domain;
	sel.due_only = !r->flush;
	sel.now = qclock_now();
	sel.after_id = r->after_id;
	sel.limit = SCHED_BATCH;
	sel.bodies = true;
	queue_fetch(r->s->q, &sel, sched_fetched_cb, r);
}

static void sched_due_cb(void *arg, enum queue_status st,
    const struct buf *rows)
{
	struct sched *s = arg;
	long wait = SCHED_TICK_MAX;
	size_t nrows = 0;
	const char *p, *end;
	time_t now = qclock_now();

	if (st != QUEUE_OK || s->stopping) {
		if (!s->stopping)
			sched_arm(s, SCHED_TICK_MAX);
		return;
	}
	for (p = rows->p, end = p ? p + rows->len : NULL; p && p < end;) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *tab = memchr(p, '\t', (size_t)((nl ? nl : end) - p));
		char dom[256];

		if (nl == NULL || tab == NULL || (size_t)(tab - p) >= sizeof(dom))
			break;
		memcpy(dom, p, (size_t)(tab - p));
		dom[tab - p] = '\0';
		if (strcmp(dom, "next") == 0) {
			long long t = atoll(tab + 1);

			if (t > 0 && t - now < wait)
				wait = (long)(t - now);
		} else {
			struct srun *r = sched_get(s, dom);

			nrows++;
			if (!r->running && !r->claimed &&
			    s->running < SCHED_MAX_RUNS &&
			    sched_domain(s, dom)->mode == CONFIG_MODE_RETRY &&
			    sched_domain(s, dom)->route != CONFIG_ROUTE_ODMR)
				sched_start_run(s, r, false);
			else if (!r->running && !r->claimed)
				sched_forget(s, r);
		}
		p = nl + 1;
	}
	if (nrows >= SCHED_MAX_RUNS)
		wait = 1;	/* more than one round of work */
	sched_arm(s, wait < 1 ? 1 : wait);
}

/* sched_clock_check - say so when the system clock was stepped: the
 * queue's times are not moved by it (util/qclock.h) */
static void sched_clock_check(struct sched *s)
{
	int64_t skew = qclock_skew();

	if (skew - s->skew > SCHED_CLOCK_STEP ||
	    s->skew - skew > SCHED_CLOCK_STEP) {
		log_warn("event=clock_step seconds=%+lld since_start=%+lld"
		    " detail=\"queue times follow the monotonic clock until"
		    " restart\"", (long long)(skew - s->skew), (long long)skew);
		s->skew = skew;
	}
}

static void sched_tick(evutil_socket_t fd, short what, void *arg)
{
	struct sched *s = arg;

	sched_clock_check(s);
	if (!s->stopping)
		queue_due(s->q, qclock_now(), SCHED_MAX_RUNS * 2, sched_due_cb, s);
}

static void sched_arm(struct sched *s, long seconds)
{
	struct timeval tv = { seconds, 0 };

	if (s->stopping)
		return;
	/* an earlier wake-up wins over a later one */
	if (evtimer_pending(s->timer, NULL)) {
		struct timeval cur;

		evtimer_pending(s->timer, &cur);
		if (cur.tv_sec > 0) {
			struct timeval now;

			event_base_gettimeofday_cached(s->base, &now);
			if (cur.tv_sec - now.tv_sec <= seconds)
				return;
		}
	}
	evtimer_add(s->timer, &tv);
}

static void sched_sweep_end(struct sched *s)
{
	struct sched_sweep *w = s->sweep;
	struct timeval tv = { SCHED_SWEEP_EVERY, 0 };
	size_t i;

	for (i = 0; i < w->n; i++)
		free(w->domains[i]);
	free(w->domains);
	free(w);
	s->sweep = NULL;
	if (!s->stopping)
		evtimer_add(s->sweep_timer, &tv);
	else if (s->running == 0 && s->stop_done)
		s->stop_done(s->stop_arg);
}

static void sched_swept_cb(void *arg, enum queue_status st)
{
	sched_sweep_next(arg);
}

static void sched_expired_cb(void *arg, enum queue_status st,
    struct queue_batch *b)
{
	struct sched *s = arg;
	struct sched_sweep *w = s->sweep;
	struct smtpc_result **res;
	const char *dom;
	size_t i, k;

	if (st != QUEUE_OK || b == NULL || b->n == 0 || s->stopping) {
		queue_batch_free(b);
		w->i++;
		w->after_id = 0;
		sched_sweep_next(s);
		return;
	}
	res = xcalloc(b->n + 1, sizeof(*res));
	for (i = 0; i < b->n; i++) {
		res[i] = xcalloc(b->items[i].nrcpt + 1, sizeof(**res));
		for (k = 0; k < b->items[i].nrcpt; k++) {
			res[i][k].code = 451;
			snprintf(res[i][k].enh, sizeof(res[i][k].enh), "4.4.7");
			snprintf(res[i][k].text, sizeof(res[i][k].text),
			    "delivery time expired: the message waited longer"
			    " than its domain's lifetime");
		}
	}
	dom = w->domains[w->i];
	w->after_id = b->items[b->n - 1].id;
	if (!b->more) {
		w->i++;
		w->after_id = 0;
	}
	/* 4xx past the lifetime: failed, with a DSN in the same commit */
	sched_record(s, dom, b, res, sched_swept_cb, s);
}

/* sched_sweep_next - the next batch of expired mail, domain by domain */
static void sched_sweep_next(struct sched *s)
{
	struct sched_sweep *w = s->sweep;

	while (w->i < w->n && !s->stopping) {
		const char *dom = w->domains[w->i];
		const struct config_domain *d = sched_domain(s, dom);
		struct queue_sel sel;

		if (sched_busy(s, dom)) {
			w->i++;		/* being delivered: next round */
			continue;
		}
		memset(&sel, 0, sizeof(sel));
		sel.domain = dom;
		sel.after_id = w->after_id;
		sel.before_id = (uint64_t)(w->now - d->lifetime) * 1000000u;
		sel.limit = SCHED_BATCH;
		sel.bodies = true;
		queue_fetch(s->q, &sel, sched_expired_cb, s);
		return;
	}
	sched_sweep_end(s);
}

static void sched_old_cb(void *arg, enum queue_status st,
    const struct buf *rows)
{
	struct sched *s = arg;
	struct sched_sweep *w = s->sweep;
	const char *p, *end, *ln;
	size_t n;

	for (p = rows->p, end = p ? p + rows->len : NULL;
	    st == QUEUE_OK && (ln = str_next_line(&p, end, &n)) != NULL;) {
		if (n > 0) {
			w->domains = xrealloc(w->domains,
			    (w->n + 1) * sizeof(*w->domains));
			w->domains[w->n++] = xmemdup0(ln, n);
		}
	}
	sched_sweep_next(s);
}

/* sched_sweep_start - the domains with mail older than the shortest
 * lifetime configured; each is then swept with its own lifetime */
static void sched_sweep_start(evutil_socket_t fd, short what, void *arg)
{
	struct sched *s = arg;
	long long shortest = s->fallback.lifetime;
	size_t i;

	if (s->stopping || s->sweep)
		return;
	for (i = 0; i < s->cfg->ndomains; i++)
		if (s->cfg->domains[i].lifetime < shortest)
			shortest = s->cfg->domains[i].lifetime;
	s->sweep = xcalloc(1, sizeof(*s->sweep));
	s->sweep->now = qclock_now();
	queue_old_domains(s->q, (uint64_t)(s->sweep->now - shortest) *
	    1000000u, sched_old_cb, s);
}

void sched_sweep_now(struct sched *s)
{
	sched_sweep_start(-1, 0, s);
}

struct sched *sched_new(struct event_base *base, struct config *cfg,
    struct queue *q, struct smtpc_deliver *d)
{
	struct sched *s = xcalloc(1, sizeof(*s));

	s->base = base;
	s->cfg = config_ref(cfg);
	s->q = q;
	s->d = d;
	s->timer = evtimer_new(base, sched_tick, s);
	s->sweep_timer = evtimer_new(base, sched_sweep_start, s);
	s->fallback.name = (char *)"";
	s->fallback.route = CONFIG_ROUTE_MX;
	s->fallback.mode = CONFIG_MODE_RETRY;
	s->fallback.tls = CONFIG_TLS_MAY;
	s->fallback.lifetime = 5 * 86400;
	return s;
}

void sched_start(struct sched *s)
{
	struct timeval tv = { 60, 0 };

	sched_arm(s, 1);
	evtimer_add(s->sweep_timer, &tv);
}

void sched_kick(void *arg, const char *domain)
{
	struct sched *s = arg;
	struct srun *r;

	if (s->stopping)
		return;
	r = sched_get(s, domain);
	if (r->running || r->claimed)
		r->again_due = true;
	else if (s->running < SCHED_MAX_RUNS)
		sched_start_run(s, r, false);
	else
		sched_forget(s, r);	/* the timer will find it */
}

enum sched_flush sched_flush(struct sched *s, const char *domain)
{
	struct srun *r;

	if (s->stopping)
		return SCHED_FLUSH_BUSY;
	r = sched_find(s, domain);
	if (r && r->running && r->flush) {
		/*
		 * Joined: one flush per domain.  The run fetches once more
		 * past its cursor before it ends, so mail committed before
		 * this request is not missed; what the run already tried is
		 * not tried again (a second run from the start would hit a
		 * failing site again at once).
		 */
		r->joined = true;
		return SCHED_FLUSH_JOINED;
	}
	if (r && (r->running || r->claimed)) {
		/* a retry run takes only due mail: a flush follows it */
		r->again_flush = true;
		return SCHED_FLUSH_JOINED;
	}
	if (s->running >= SCHED_MAX_RUNS)
		return SCHED_FLUSH_BUSY;
	sched_start_run(s, sched_get(s, domain), true);
	return SCHED_FLUSH_STARTED;
}

void sched_runs(const struct sched *s, struct buf *out)
{
	const struct srun *r;
	size_t i;

	for (i = 0; i < SCHED_BUCKETS; i++)
		for (r = s->buckets[i]; r; r = r->next)
			if (r->running || r->claimed)
				buf_printf(out, "%s\t%s\n", r->domain,
				    r->claimed ? "atrn" : r->flush ? "flush" :
				    "retry");
}

bool sched_busy(const struct sched *s, const char *domain)
{
	const struct srun *r = sched_find(s, domain);

	return r && (r->running || r->claimed);
}

bool sched_claim(struct sched *s, const char *domain)
{
	struct srun *r = sched_get(s, domain);

	if (r->running || r->claimed)
		return false;
	r->claimed = true;
	r->again_flush = r->again_due = false;
	return true;
}

void sched_unclaim(struct sched *s, const char *domain)
{
	struct srun *r = sched_find(s, domain);

	if (r == NULL || !r->claimed)
		return;
	r->claimed = false;
	/* a flush asked for during the session: to the normal route, if any */
	if (!s->stopping && r->again_flush &&
	    sched_domain(s, domain)->route != CONFIG_ROUTE_ODMR &&
	    s->running < SCHED_MAX_RUNS) {
		sched_start_run(s, r, true);
		return;
	}
	sched_forget(s, r);
}

void sched_stop(struct sched *s, void (*done)(void *), void *arg)
{
	s->stopping = true;
	s->stop_done = done;
	s->stop_arg = arg;
	evtimer_del(s->timer);
	evtimer_del(s->sweep_timer);
	/* a sweep in progress finishes its commit, then reports */
	if (s->running == 0 && s->sweep == NULL && done)
		done(arg);
}

void sched_reload(struct sched *s, struct config *cfg)
{
	struct config *old = s->cfg;

	s->cfg = config_ref(cfg);
	config_unref(old);
}

void sched_free(struct sched *s)
{
	size_t i;

	for (i = 0; i < SCHED_BUCKETS; i++) {
		while (s->buckets[i]) {
			struct srun *r = s->buckets[i];

			s->buckets[i] = r->next;
			free(r->domain);
			free(r);
		}
	}
	event_free(s->timer);
	event_free(s->sweep_timer);
	config_unref(s->cfg);
	free(s);
}
