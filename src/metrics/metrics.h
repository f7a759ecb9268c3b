/*
 * SUMMARY
 *	metrics - process-wide counters and the commit latency histogram
 * DESCRIPTION
 *	Counters are atomic, so the store's threads and the loop can count
 *	without locks.  metrics_render() writes them in the Prometheus text
 *	exposition format; per-domain queue figures come from the store at
 *	scrape time (metrics_http), not from here.  Reply codes of ETRN and
 *	ATRN are counted per code, among a fixed set, so the number of label
 *	values is bounded whatever clients send.
 */
#ifndef ETRND_METRICS_H
#define ETRND_METRICS_H

#include "util/buf.h"

enum metric {
	MET_SESSIONS,		/* SMTP sessions accepted */
	MET_ODMR_SESSIONS,	/* ODMR sessions accepted */
	MET_REFUSED_CONNECTIONS,	/* 421 at connect: over a cap */
	MET_EARLY_TALKERS,	/* sent before the greeting: 554, dropped */
	MET_MESSAGES_ACCEPTED,	/* 250 after DATA: committed */
	MET_MESSAGES_REFUSED,	/* refused after DATA (size, bare LF, loops) */
	MET_RCPT_REFUSED,	/* RCPT refused by relay policy */
	MET_STORE_ERRORS,	/* 451/452 after DATA */
	MET_DELIVERED,		/* recipients delivered */
	MET_DEFERRED,		/* recipients deferred or held again */
	MET_BOUNCED,		/* recipients failed */
	MET_DSN,		/* DSN messages queued */
	MET_AUTH_OK,
	MET_AUTH_FAILED,
	MET__COUNT
};

void metrics_inc(enum metric m);
void metrics_add(enum metric m, unsigned long long n);
/* metrics_etrn, metrics_atrn - one reply, by its code */
void metrics_etrn(int code);
void metrics_atrn(int code);
/* metrics_commit - one group commit took this many seconds */
void metrics_commit(double seconds);
/* metrics_render - every counter and the histogram, Prometheus text */
void metrics_render(struct buf *out);

/*
 * metrics_note_request - remember the last ETRN or ATRN for a node (loop
 * thread only): kind "ETRN" or "ATRN", the node as asked, the reply code.
 * The table keeps the METRICS_RECENT most recent nodes.
 */
#define METRICS_RECENT 256
void metrics_note_request(const char *kind, const char *node, int code,
    const char *client);
/* metrics_recent - rows "node<TAB>kind<TAB>unix time<TAB>code<TAB>client" */
void metrics_recent(struct buf *out);

#endif
