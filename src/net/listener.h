/*
 * SUMMARY
 *	listener - listening sockets with total and per-client caps
 * DESCRIPTION
 *	Binds every address of a list (before privileges are dropped),
 *	accepts on the event loop, and hands each connection that fits under
 *	the caps to the owner's callback with a slot; a connection over a cap
 *	gets "421 4.7.0" written without blocking and is closed.  The owner
 *	gives the slot back with net_release() when the connection ends.
 *	When accept() fails for lack of descriptors, accepting pauses for a
 *	second instead of spinning (SECURITY.md X8).
 * OWNERSHIP
 *	The listener owns its sockets and the per-client table.
 */
#ifndef ETRND_NET_LISTENER_H
#define ETRND_NET_LISTENER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "util/buf.h"
#include "config/config.h"

struct event_base;
struct net_listener;
struct net_slot;

typedef void net_accept_fn(void *arg, int fd, const struct sockaddr *sa,
    socklen_t salen, struct net_slot *slot);

struct net_listener *net_listener_new(struct event_base *base,
    const struct config_listen *addrs, size_t n, const char *banner_host,
    net_accept_fn *fn, void *arg, struct buf *err);
/* net_listener_set_limits - caps in force from now on (reload-safe) */
void net_listener_set_limits(struct net_listener *l, unsigned max_total,
    unsigned max_per_client);
void net_release(struct net_slot *slot);
/* net_listener_set_arg - the accept callback's argument, when its owner is
 * created after the sockets were bound (before the loop runs) */
void net_listener_set_arg(struct net_listener *l, void *arg);
/* net_listener_stop - close the listening sockets (shutdown) */
void net_listener_stop(struct net_listener *l);
void net_listener_free(struct net_listener *l);
unsigned net_listener_active(const struct net_listener *l);

/* net_sockaddr_parts - printable address, family, raw bytes, port */
void net_sockaddr_parts(const struct sockaddr *sa, char *addr, size_t addrsz,
    int *family, unsigned char bytes[16], unsigned *port);

#endif
