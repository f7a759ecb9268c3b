/*
 * SUMMARY
 *	smtp_etrn - the argument of ETRN (RFC 1985)
 * DESCRIPTION
 *	Pure: no I/O, no logging.  "ETRN node" names one domain; "ETRN
 *	@domain" the domain and its subdomains; "ETRN #name" a named queue.
 *	A node must be a host name (LDH labels of 1..63 octets, 255 at most,
 *	no trailing dot, the last label not all digits); a queue name is
 *	[A-Za-z0-9._-], 1..64.  Address literals ("[192.0.2.7]") are refused:
 *	the queue is indexed by recipient domain, not by next-hop address, and
 *	a literal would only name domains already reachable by name.  The
 *	result is lower-cased.  Anything else is a syntax error (501); no
 *	argument at all is 500, as in RFC 1985's examples.
 */
#ifndef ETRND_SMTP_ETRN_H
#define ETRND_SMTP_ETRN_H

#include <stddef.h>

#define SMTP_ETRN_NAME_MAX 255

enum smtp_etrn_kind {
	SMTP_ETRN_NODE,		/* example.org */
	SMTP_ETRN_SUBTREE,	/* @example.org */
	SMTP_ETRN_QUEUE,	/* #dialup */
};

enum smtp_etrn_status {
	SMTP_ETRN_OK,
	SMTP_ETRN_EMPTY,	/* 500 Syntax Error */
	SMTP_ETRN_BAD,		/* 501 Syntax Error in Parameters */
};

struct smtp_etrn {
	enum smtp_etrn_kind kind;
	char name[SMTP_ETRN_NAME_MAX + 1];	/* without "@" or "#", lower case */
};

enum smtp_etrn_status smtp_etrn_parse(const char *arg, size_t len,
    struct smtp_etrn *out);

/*
 * The argument of ATRN (RFC 2645): nothing (every domain of the account)
 * or a comma-separated list of domains, each a host name as for ETRN;
 * spaces around the commas are tolerated.  At most SMTP_ATRN_MAX domains;
 * a repeated one counts once.
 */
#define SMTP_ATRN_MAX 32

struct smtp_atrn {
	size_t n;		/* 0: all of the account's domains */
	char domain[SMTP_ATRN_MAX][SMTP_ETRN_NAME_MAX + 1];	/* lower case */
};

/* smtp_atrn_parse - SMTP_ETRN_OK, or SMTP_ETRN_BAD (501) */
enum smtp_etrn_status smtp_atrn_parse(const char *arg, size_t len,
    struct smtp_atrn *out);

#endif
