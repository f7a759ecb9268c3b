/*
 * SUMMARY
 *	odmr_glue - the ODMR service (RFC 2645) on libevent
 * DESCRIPTION
 *	Runs odmr_session over each connection of the odmr_listen sockets:
 *	STARTTLS, growing delays after failed AUTH exchanges and failure
 *	limits per client address and per account; and ATRN.  For ATRN it
 *	claims the requested domains from the scheduler (451 when a flush or
 *	another session holds one), counts their mail (453 when there is
 *	none), answers 250, throws away whatever the customer pipelined after
 *	ATRN, and turns the very same connection into an SMTP client session
 *	(smtpc_conn): the customer greets with 220 and etrnd delivers every
 *	pending recipient of those domains, batch by batch, recording each
 *	batch's per-recipient outcomes before fetching the next, then QUITs.
 * OWNERSHIP
 *	The server owns its connections.
 */
#ifndef ETRND_ODMR_GLUE_H
#define ETRND_ODMR_GLUE_H

#include <sys/socket.h>

struct config;
struct event_base;
struct net_slot;
struct queue;
struct sched;
struct users;
typedef struct ssl_ctx_st SSL_CTX;
struct odmr_server;

struct odmr_server *odmr_server_new(struct event_base *base,
    struct config *cfg, struct users *users, struct queue *q,
    struct sched *s, SSL_CTX *tls);
/* odmr_server_accept - a net_accept_fn */
void odmr_server_accept(void *arg, int fd, const struct sockaddr *sa,
    socklen_t salen, struct net_slot *slot);
/* odmr_server_stop - end every session (a reversed one records what it
 * delivered first); done(arg) once none is left */
void odmr_server_stop(struct odmr_server *srv, void (*done)(void *),
    void *arg);
/* odmr_server_reload - new sessions use cfg, users and tls */
void odmr_server_reload(struct odmr_server *srv, struct config *cfg,
    struct users *users, SSL_CTX *tls);
void odmr_server_free(struct odmr_server *srv);

#endif
