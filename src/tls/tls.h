/*
 * SUMMARY
 *	tls - OpenSSL contexts and STARTTLS upgrades of bufferevents
 * DESCRIPTION
 *	tls_server_ctx_new() builds a server context from a certificate chain
 *	and key (TLS 1.2 or newer).  tls_server_upgrade() wraps a connected
 *	plain bufferevent in an OpenSSL filter, after the caller wrote its
 *	"220 Ready" on the plain one and drained the plain input (bytes
 *	pipelined after STARTTLS are never read: CVE-2011-0411).
 * OWNERSHIP
 *	The filter owns the plain bufferevent and the SSL object
 *	(BEV_OPT_CLOSE_ON_FREE); free only the returned bufferevent.
 */
#ifndef ETRND_TLS_H
#define ETRND_TLS_H

#include "util/buf.h"

struct bufferevent;
struct event_base;
typedef struct ssl_ctx_st SSL_CTX;

SSL_CTX *tls_server_ctx_new(const char *cert, const char *key,
    struct buf *err);
/* tls_client_ctx_new - for outbound STARTTLS: TLS 1.2 or newer, the
 * server's certificate is not verified (opportunistic TLS, as MTAs do
 * without DANE or MTA-STS; "must" means encrypted, not authenticated) */
SSL_CTX *tls_client_ctx_new(struct buf *err);
void tls_ctx_free(SSL_CTX *ctx);
/* tls_client_upgrade - wrap a connected plain bufferevent, SNI = host */
struct bufferevent *tls_client_upgrade(struct event_base *base,
    struct bufferevent *plain, SSL_CTX *ctx, const char *host);
struct bufferevent *tls_server_upgrade(struct event_base *base,
    struct bufferevent *plain, SSL_CTX *ctx);
/* tls_version - "TLSv1.3" etc. of a filter bufferevent, "" if none */
const char *tls_version(struct bufferevent *bev);
/* tls_output_pending - bytes still queued below the filter */
size_t tls_output_pending(struct bufferevent *bev);

#endif
