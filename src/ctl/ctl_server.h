/*
 * SUMMARY
 *	ctl_server - the operator's control socket
 * DESCRIPTION
 *	A UNIX stream socket (mode 0600).  Only root and the daemon's own user
 *	may connect (SO_PEERCRED).  A client sends one request line and reads
 *	the answer until EOF: "ok" and then rows of tab-separated fields, or
 *	"error<TAB>message".  Requests (ctl_proto.h): summary, list [DOMAIN],
 *	show QID, flush DOMAIN, hold|release|requeue DOMAIN|QID, delete QID.  Every request goes through queue.h; nothing here touches
 *	the store directly or blocks the loop.
 */
#ifndef ETRND_CTL_SERVER_H
#define ETRND_CTL_SERVER_H

#include "util/buf.h"

struct event_base;
struct queue;
struct sched;
struct ctl_server;

struct ctl_server *ctl_server_new(struct event_base *base, const char *path,
    struct queue *q, struct sched *s, struct buf *err);
void ctl_server_free(struct ctl_server *cs);

#endif
