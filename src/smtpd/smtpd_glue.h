/*
 * SUMMARY
 *	smtpd_glue - SMTP sessions on libevent bufferevents
 * DESCRIPTION
 *	Turns socket events into smtpd_session calls and carries out the
 *	actions they return: replies written once per pipelined group, a
 *	STARTTLS upgrade with the plain input discarded, DATA bytes fed to the
 *	session with large bodies spilled to an unlinked temporary file, the
 *	message handed to the queue with reading paused until the commit
 *	answers, idle timeouts, and a cap on commands handled per wakeup so
 *	one client cannot starve the others.
 * OWNERSHIP
 *	The server owns its connections; smtpd_server_free() closes them.
 */
#ifndef ETRND_SMTPD_GLUE_H
#define ETRND_SMTPD_GLUE_H

#include <sys/socket.h>

struct config;
struct event_base;
struct net_slot;
struct queue;
struct etrn;
typedef struct ssl_ctx_st SSL_CTX;

struct smtpd_server;

struct smtpd_server *smtpd_server_new(struct event_base *base,
    struct config *cfg, SSL_CTX *tls);
/* smtpd_server_accept - a net_accept_fn: start a session on fd */
void smtpd_server_accept(void *arg, int fd, const struct sockaddr *sa,
    socklen_t salen, struct net_slot *slot);
/* smtpd_server_accept_plain250 - the same, for a listener whose ETRN
 * answers a plain 250 */
void smtpd_server_accept_plain250(void *arg, int fd,
    const struct sockaddr *sa, socklen_t salen, struct net_slot *slot);
/* smtpd_server_attach - the queue it stores into and the ETRN service it
 * asks; both before the loop runs */
void smtpd_server_attach(struct smtpd_server *srv, struct queue *q,
    struct etrn *etrn);
unsigned smtpd_server_sessions(const struct smtpd_server *srv);
/* smtpd_server_reload - new sessions use cfg and tls; running ones keep
 * the configuration they started with */
void smtpd_server_reload(struct smtpd_server *srv, struct config *cfg,
    SSL_CTX *tls);
/*
 * smtpd_server_drain - shutting down: sessions without an open mail
 * transaction get 421 and are closed now; the others may finish theirs
 * (and get their 250) and are closed after it.
 */
void smtpd_server_drain(struct smtpd_server *srv);
/* smtpd_server_close_all - end every session now (shutdown) */
void smtpd_server_free(struct smtpd_server *srv);

#endif
