/*
 * SUMMARY
 *	sasl - the server side of an SMTP AUTH exchange (RFC 4954)
 * DESCRIPTION
 *	A small state machine over lines: no I/O, no logging.  The glue
 *	calls sasl_start() for "AUTH mech [initial-response]", sends what
 *	each step asks for, and feeds every client line (without its CRLF)
 *	to sasl_step() until the status is not SASL_CONTINUE.
 *
 *	Mechanisms (names case-insensitive):
 *	  CRAM-MD5 (RFC 2195)  challenge "<random.unixtime@hostname>" (64
 *	                       bits of RAND_bytes); answer base64("name
 *	                       hexdigest"); no initial response allowed
 *	                       (RFC 4954 4: 501).
 *	  PLAIN (RFC 4616)     authzid NUL authcid NUL password; an authzid
 *	                       other than empty or the authcid fails like a
 *	                       wrong password (no impersonation, E14).
 *	  LOGIN                "334 VXNlcm5hbWU6", "334 UGFzc3dvcmQ6"; an
 *	                       initial response is taken as the user name.
 *	PLAIN and LOGIN need TLS: without it sasl_start() answers
 *	SASL_NEED_TLS before it looks at any credential (T4, E13), and
 *	sasl_mechs() does not offer them.  An initial response "=" is an
 *	empty one.  A response "*" cancels.  A line or initial response
 *	longer than SASL_LINE_MAX is SASL_TOO_LONG, one that is not strict
 *	base64 (util/base64.h) SASL_BAD_B64; every status but
 *	SASL_CONTINUE ends the exchange.
 *
 *	An unknown user goes through users_check_*_dummy() and ends exactly
 *	like a wrong password (SASL_FAIL, same work: E12).  The retry delay,
 *	failure counting and rate limits (E12) are the caller's; so is
 *	refusing a second AUTH (503).
 * OWNERSHIP
 *	sasl_start() always returns an exchange, which the caller frees with
 *	sasl_free() whatever the status.  It borrows the users table, which
 *	must outlive it.  The strings in struct sasl_step belong to the
 *	exchange (or to the users table) and stay valid until the next
 *	sasl_step() or sasl_free().  Decoded credentials are wiped with
 *	OPENSSL_cleanse() as soon as they are checked; the caller wipes its
 *	own copy of the lines it read.
 */
#ifndef ETRND_AUTH_SASL_H
#define ETRND_AUTH_SASL_H

#include <stdbool.h>
#include <stddef.h>

#include "auth/users.h"

/* RFC 4954 4: the AUTH command line may be 12288 octets; so may a
 * response line, without its CRLF. */
#define SASL_LINE_MAX 12288

enum sasl_status {
	SASL_CONTINUE,		/* send "334 " + challenge */
	SASL_OK,		/* 235 2.7.0; user and account say who */
	SASL_FAIL,		/* 535 5.7.8 */
	SASL_CANCELLED,		/* 501 5.7.0: the client sent "*" */
	SASL_BAD_B64,		/* 501 5.5.2: cannot decode */
	SASL_TOO_LONG,		/* 500 5.5.6 */
	SASL_NEED_TLS,		/* 538 5.7.11: PLAIN or LOGIN in cleartext */
	SASL_UNKNOWN_MECH,	/* 504 5.5.4 */
	SASL_BAD_INITIAL,	/* 501 5.5.4: initial response to CRAM-MD5 */
};

struct sasl_step {
	enum sasl_status status;
	/* SASL_CONTINUE: the base64 text to send after "334 " (may be "") */
	const char *challenge;
	/*
	 * SASL_OK: the account's name.  SASL_FAIL: the name the client
	 * tried, as sent (untrusted bytes: escape before logging; no NUL),
	 * for per-account rate limits, or NULL when none was read.  NULL
	 * otherwise.
	 */
	const char *user;
	/* SASL_OK: the account (borrowed from the users table); else NULL */
	const struct users_account *account;
};

struct sasl;

/*
 * sasl_start - begin "AUTH mech [initial]".  initial is the initial
 * response as sent (base64, or "="), or NULL when there was none.
 * hostname goes into the CRAM-MD5 challenge ("localhost" when NULL or
 * empty).  u may be NULL (no account succeeds).
 */
struct sasl *sasl_start(const char *mech, const char *initial,
    bool tls_active, const char *hostname, const struct users *u,
    struct sasl_step *out);

/* sasl_step - one client line[0..len); after the end: SASL_FAIL again */
void sasl_step(struct sasl *s, const char *line, size_t len,
    struct sasl_step *out);

/* sasl_free - wipe and free; NULL is allowed */
void sasl_free(struct sasl *s);

/* sasl_mechs - the AUTH keyword list for EHLO */
const char *sasl_mechs(bool tls_active);

/*
 * sasl_reply - the whole reply line (no CRLF) for a final status, e.g.
 * "535 5.7.8 Authentication credentials invalid"; "334" for
 * SASL_CONTINUE (the glue adds " " and the challenge).
 */
const char *sasl_reply(enum sasl_status st);

#endif
