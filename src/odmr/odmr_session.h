/*
 * SUMMARY
 *	odmr_session - the ODMR server before the reversal (RFC 2645)
 * DESCRIPTION
 *	No sockets: command lines in, replies and actions out, like
 *	smtpd_session.  Before AUTH only EHLO, HELO, AUTH, STARTTLS, NOOP,
 *	RSET and QUIT are served; ATRN gets 530, everything else 502: an ODMR
 *	account confers no relay rights, here or on port 25.  EHLO lists AUTH
 *	(CRAM-MD5 in clear, which RFC 2645 requires; PLAIN and LOGIN only
 *	under TLS) and ATRN.  AUTH runs a SASL exchange (auth/sasl); the
 *	environment's gate sees every outcome so the glue can rate-limit
 *	failures per address and per account and lock an account out.
 *
 *	"ATRN [domain,...]" (no list: every domain of the account) is refused
 *	with 450 as a whole when any listed domain is not the account's, so
 *	nothing is delivered for it; otherwise the session hands the list to
 *	the glue (ODMR_ACT_ATRN), which claims the domains, counts, and
 *	answers 451, 453 or 250 and reverses the roles.
 * OWNERSHIP
 *	The session holds references on the config and the users table.
 */
#ifndef ETRND_ODMR_SESSION_H
#define ETRND_ODMR_SESSION_H

#include <stdbool.h>

#include "auth/users.h"
#include "smtp/smtp_etrn.h"
#include "util/buf.h"

struct config;

enum odmr_action {
	ODMR_ACT_NONE,
	ODMR_ACT_CLOSE,		/* send, then close */
	ODMR_ACT_STARTTLS,	/* send, drop pending input, start TLS */
	ODMR_ACT_ATRN,		/* the glue claims, counts and answers */
	ODMR_ACT_AUTH_FAILED,	/* send the refusal after the glue's delay */
};

/* The glue's say on authentication, per address and per account. */
struct odmr_env {
	/* may this client try AUTH now (not over its failure rate)? */
	bool (*auth_allowed)(void *arg);
	/* an exchange ended: user may be NULL; returns false to refuse a
	 * success (the account is locked out for now) */
	bool (*auth_done)(void *arg, const char *user, bool ok);
	void *arg;
	bool tls_available;
	const char *sid;
};

struct odmr_session;

struct odmr_session *odmr_session_new(struct config *cfg, struct users *u,
    const struct odmr_env *env);
void odmr_session_free(struct odmr_session *s);
void odmr_session_greet(struct odmr_session *s, struct buf *out);
enum odmr_action odmr_session_line(struct odmr_session *s, const char *line,
    size_t len, struct buf *out);
enum odmr_action odmr_session_line_error(struct odmr_session *s,
    struct buf *out);
void odmr_session_tls_started(struct odmr_session *s);
/* odmr_session_atrn - the domains to serve (after ODMR_ACT_ATRN) */
const struct smtp_atrn *odmr_session_atrn(const struct odmr_session *s);
const char *odmr_session_user(const struct odmr_session *s);
bool odmr_session_tls(const struct odmr_session *s);

#endif
