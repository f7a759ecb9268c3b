/* metrics - process-wide counters and the commit latency histogram */
#include "metrics/metrics.h"

#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static atomic_ullong met_counters[MET__COUNT];

static const struct {
	const char *name;
	const char *help;
} met_names[MET__COUNT] = {
	[MET_SESSIONS] = { "etrnd_smtp_sessions_total", "SMTP sessions accepted" },
	[MET_ODMR_SESSIONS] = { "etrnd_odmr_sessions_total", "ODMR sessions accepted" },
	[MET_REFUSED_CONNECTIONS] = { "etrnd_connections_refused_total",
	    "connections refused at connect (total or per-client cap)" },
	[MET_EARLY_TALKERS] = { "etrnd_early_talkers_total",
	    "clients that sent before the greeting (greeting_delay): 554" },
	[MET_MESSAGES_ACCEPTED] = { "etrnd_messages_accepted_total",
	    "messages answered 250 after DATA (durable)" },
	[MET_MESSAGES_REFUSED] = { "etrnd_messages_refused_total",
	    "messages refused at the end of DATA (size, bare CR/LF, long lines, loops)" },
	[MET_RCPT_REFUSED] = { "etrnd_recipients_refused_total",
	    "RCPT refused by relay policy" },
	[MET_STORE_ERRORS] = { "etrnd_store_errors_total",
	    "messages answered 451/452 because the store failed or was full" },
	[MET_DELIVERED] = { "etrnd_recipients_delivered_total",
	    "recipients delivered (2xx to the final dot)" },
	[MET_DEFERRED] = { "etrnd_recipients_deferred_total",
	    "recipients deferred or held again after a 4xx" },
	[MET_BOUNCED] = { "etrnd_recipients_bounced_total",
	    "recipients failed (5xx or lifetime expired)" },
	[MET_DSN] = { "etrnd_dsn_total", "delivery status notifications queued" },
	[MET_AUTH_OK] = { "etrnd_auth_success_total", "successful AUTH exchanges" },
	[MET_AUTH_FAILED] = { "etrnd_auth_failures_total", "failed AUTH exchanges" },
};

/* the codes counted per reply; anything else lands in "other" */
static const int met_etrn_codes[] = { 250, 251, 253, 458, 459, 500, 501, 503 };
static const int met_atrn_codes[] = { 250, 450, 451, 453, 501, 530 };
#define MET_NETRN (sizeof(met_etrn_codes) / sizeof(met_etrn_codes[0]))
#define MET_NATRN (sizeof(met_atrn_codes) / sizeof(met_atrn_codes[0]))
static atomic_ullong met_etrn[MET_NETRN + 1];
static atomic_ullong met_atrn[MET_NATRN + 1];

/* commit latency buckets, seconds (upper bounds) */
static const double met_bounds[] = {
	0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5
};
#define MET_NBOUNDS (sizeof(met_bounds) / sizeof(met_bounds[0]))
static atomic_ullong met_hist[MET_NBOUNDS + 1];
static atomic_ullong met_hist_sum_us;

void metrics_inc(enum metric m)
{
	atomic_fetch_add(&met_counters[m], 1);
}

void metrics_add(enum metric m, unsigned long long n)
{
	atomic_fetch_add(&met_counters[m], n);
}

static void met_code(atomic_ullong *v, const int *codes, size_t n, int code)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (codes[i] == code)
			break;
	atomic_fetch_add(&v[i], 1);
}

void metrics_etrn(int code)
{
	met_code(met_etrn, met_etrn_codes, MET_NETRN, code);
}

void metrics_atrn(int code)
{
	met_code(met_atrn, met_atrn_codes, MET_NATRN, code);
}

void metrics_commit(double seconds)
{
	size_t i;

	for (i = 0; i < MET_NBOUNDS; i++)
		if (seconds <= met_bounds[i])
			break;
	atomic_fetch_add(&met_hist[i], 1);
	atomic_fetch_add(&met_hist_sum_us,
	    (unsigned long long)(seconds * 1e6));
}

static void met_codes(struct buf *out, const char *name, const char *help,
    atomic_ullong *v, const int *codes, size_t n)
{
	size_t i;

	buf_printf(out, "# HELP %s %s\n# TYPE %s counter\n", name, help, name);
	for (i = 0; i < n; i++)
		buf_printf(out, "%s{code=\"%d\"} %llu\n", name, codes[i],
		    atomic_load(&v[i]));
	buf_printf(out, "%s{code=\"other\"} %llu\n", name,
	    atomic_load(&v[n]));
}

void metrics_render(struct buf *out)
{
	unsigned long long cum = 0;
	size_t i;

	for (i = 0; i < MET__COUNT; i++)
		buf_printf(out, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n",
		    met_names[i].name, met_names[i].help, met_names[i].name,
		    met_names[i].name, atomic_load(&met_counters[i]));
	met_codes(out, "etrnd_etrn_requests_total", "ETRN requests by reply code",
	    met_etrn, met_etrn_codes, MET_NETRN);
	met_codes(out, "etrnd_atrn_requests_total", "ATRN requests by reply code",
	    met_atrn, met_atrn_codes, MET_NATRN);
	buf_puts(out, "# HELP etrnd_commit_seconds time from a message's hand-off"
	    " to its durable commit\n# TYPE etrnd_commit_seconds histogram\n");
	for (i = 0; i < MET_NBOUNDS; i++) {
		cum += atomic_load(&met_hist[i]);
		buf_printf(out, "etrnd_commit_seconds_bucket{le=\"%g\"} %llu\n",
		    met_bounds[i], cum);
	}
	cum += atomic_load(&met_hist[MET_NBOUNDS]);
	buf_printf(out, "etrnd_commit_seconds_bucket{le=\"+Inf\"} %llu\n", cum);
	buf_printf(out, "etrnd_commit_seconds_sum %.6f\n",
	    (double)atomic_load(&met_hist_sum_us) / 1e6);
	buf_printf(out, "etrnd_commit_seconds_count %llu\n", cum);
}

struct met_recent {
	char node[260];
	char kind[5];
	char client[64];
	time_t when;
	int code;
};

static struct met_recent met_recent_v[METRICS_RECENT];

void metrics_note_request(const char *kind, const char *node, int code,
    const char *client)
{
	size_t i, oldest = 0;

	for (i = 0; i < METRICS_RECENT; i++) {
		if (strcmp(met_recent_v[i].node, node) == 0 &&
		    strcmp(met_recent_v[i].kind, kind) == 0)
			break;
		if (met_recent_v[i].when < met_recent_v[oldest].when)
			oldest = i;
	}
	if (i == METRICS_RECENT)
		i = oldest;
	snprintf(met_recent_v[i].node, sizeof(met_recent_v[i].node), "%s", node);
	snprintf(met_recent_v[i].kind, sizeof(met_recent_v[i].kind), "%s", kind);
	snprintf(met_recent_v[i].client, sizeof(met_recent_v[i].client), "%s",
	    client ? client : "");
	met_recent_v[i].when = time(NULL);
	met_recent_v[i].code = code;
}

void metrics_recent(struct buf *out)
{
	size_t i;

	for (i = 0; i < METRICS_RECENT; i++)
		if (met_recent_v[i].when != 0)
			buf_printf(out, "%s\t%s\t%lld\t%d\t%s\n",
			    met_recent_v[i].node, met_recent_v[i].kind,
			    (long long)met_recent_v[i].when,
			    met_recent_v[i].code, met_recent_v[i].client);
}
