/*
 * SUMMARY
 *	bounce - delivery status notifications as new queued messages
 * DESCRIPTION
 *	Turns the failed (or delayed) recipients of a message into one DSN
 *	(RFC 3464, built by smtp_dsn) addressed to the message's sender, as a
 *	queue_msg_in ready to be committed together with the failures that
 *	caused it.  Never for the null sender (no bounce of a bounce), and only
 *	for recipients whose NOTIFY asks for it (RFC 3461).
 * OWNERSHIP
 *	The caller owns the returned message (normally handed to queue_update).
 */
#ifndef ETRND_BOUNCE_H
#define ETRND_BOUNCE_H

#include <time.h>

#include "config/config.h"
#include "queue/queue.h"
#include "smtpc/smtpc_session.h"

enum bounce_kind {
	BOUNCE_NONE = 0,
	BOUNCE_FAILED,
	BOUNCE_DELAYED,
};

/*
 * bounce_make - the DSN for item it, where kinds[k] says what happened to
 * recipient k and res[k] why; remote is the peer's name or NULL.  NULL
 * when no DSN is due.
 */
struct queue_msg_in *bounce_make(const struct config *cfg,
    const struct queue_item *it, const enum bounce_kind *kinds,
    const struct smtpc_result *res, const char *remote, time_t now);

#endif
