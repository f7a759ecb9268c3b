/*
 * SUMMARY
 *	smtp_addr - reverse-path, forward-path and ESMTP parameters
 * DESCRIPTION
 *	Pure: no I/O, no logging.  Parses the argument of MAIL FROM: and
 *	RCPT TO: (what smtp_cmd_parse() leaves after the colon): an angle-
 *	bracketed path, then space-separated ESMTP parameters (RFC 5321 4.1.2,
 *	RFC 1870 SIZE, RFC 6152 BODY, RFC 3461 DSN, RFC 4954 AUTH).
 *
 *	Path rules (RFC 5321 4.1.2, 4.5.3.1):
 *	  - angle brackets are required; "<>" only where null_ok;
 *	  - a source route "@a,@b:" before the mailbox is checked and dropped;
 *	  - local part: dot-string of atext, or a quoted-string of printable
 *	    ASCII (quoted-pairs kept as received); at most 64 octets;
 *	  - domain: LDH labels of 1..63 octets, at most 255 octets in all, no
 *	    leading, trailing or doubled dot, the last label not all digits (a
 *	    bare IP address is not a domain); or an address literal
 *	    "[1.2.3.4]" / "[IPv6:...]", flagged in domain_literal;
 *	  - the whole path "<...>", brackets included, at most 256 octets;
 *	  - no byte outside printable ASCII anywhere (no SMTPUTF8).
 *	The domain is returned in lower case; the local part as received.
 *
 *	Parameters: names are case-insensitive, values are case-insensitive
 *	keywords where the RFC says so; xtext (ENVID, ORCPT) is decoded, and a
 *	decoded byte outside printable ASCII is an error.  A parameter that is
 *	not allowed for this command (MAIL: SIZE BODY RET ENVID AUTH; RCPT:
 *	NOTIFY ORCPT) or unknown is SMTP_ADDR_PARAM_UNKNOWN; a repeated one is
 *	SMTP_ADDR_PARAM_DUP; a bad value SMTP_ADDR_PARAM_BAD.  SIZE is parsed
 *	with an overflow check: digits only; a value too large for 64 bits is
 *	SMTP_ADDR_SIZE_OVERFLOW (the caller answers 552, it never wraps).
 * OWNERSHIP
 *	Results are copied into the caller's fixed-size structs.
 */
#ifndef ETRND_SMTP_ADDR_H
#define ETRND_SMTP_ADDR_H

#include <stdbool.h>
#include <stddef.h>

#define SMTP_LOCAL_MAX 64
#define SMTP_DOMAIN_MAX 255
#define SMTP_PATH_MAX 256	/* "<" local "@" domain ">" */
#define SMTP_ENVID_MAX 100	/* RFC 3461 4.4, decoded */
#define SMTP_ORCPT_MAX 500	/* RFC 3461 4.2, decoded, with "type;" */

enum smtp_addr_status {
	SMTP_ADDR_OK,
	SMTP_ADDR_SYNTAX,		/* path syntax: 501 5.1.7 (MAIL) / 501 5.1.3 (RCPT) */
	SMTP_ADDR_TOO_LONG,		/* a length limit: 501 5.1.3 */
	SMTP_ADDR_NULL_NOT_ALLOWED,	/* "<>" in RCPT: 501 5.1.3 */
	SMTP_ADDR_PARAM_UNKNOWN,	/* 555 5.5.4 */
	SMTP_ADDR_PARAM_DUP,		/* 501 5.5.4 */
	SMTP_ADDR_PARAM_BAD,		/* 501 5.5.4 */
	SMTP_ADDR_SIZE_OVERFLOW,	/* 552 5.3.4 */
};

struct smtp_path {
	bool null;			/* "<>" */
	bool domain_literal;		/* "[...]" */
	bool quoted_local;		/* the local part was a quoted-string */
	bool local_has_route_chars;	/* '@', '%' or '!' inside the local part */
	char local[SMTP_LOCAL_MAX + 1];
	char domain[SMTP_DOMAIN_MAX + 1];	/* lower case; literal with brackets */
	char addr[SMTP_PATH_MAX + 1];	/* local "@" domain, no brackets; "" when null */
};

enum smtp_body { SMTP_BODY_NONE, SMTP_BODY_7BIT, SMTP_BODY_8BITMIME };
enum smtp_ret { SMTP_RET_NONE, SMTP_RET_FULL, SMTP_RET_HDRS };

#define SMTP_NOTIFY_NEVER	1u
#define SMTP_NOTIFY_SUCCESS	2u
#define SMTP_NOTIFY_FAILURE	4u
#define SMTP_NOTIFY_DELAY	8u

struct smtp_params {
	bool has_size;
	unsigned long long size;
	enum smtp_body body;
	enum smtp_ret ret;
	bool has_envid;
	char envid[SMTP_ENVID_MAX + 1];	/* decoded */
	unsigned notify;		/* 0: not given; NEVER is never combined with others */
	bool has_orcpt;
	char orcpt[SMTP_ORCPT_MAX + 1];	/* decoded, "rfc822;user@example.org" */
	bool has_auth;			/* AUTH= seen (value checked, not used) */
};

enum smtp_addr_kind { SMTP_ADDR_MAIL, SMTP_ADDR_RCPT };

/*
 * smtp_addr_parse - parse arg[0..len) for MAIL (null path allowed) or RCPT.
 * On any error, *errtext (if not NULL) is set to a static description
 * for the reply text, e.g. "unknown parameter" or "SIZE must be digits";
 * on success it is set to NULL.  path and params are cleared first; after
 * an error their contents are unspecified.
 *
 * Details: the path is parsed before any parameter, and parameters left
 * to right, so the first fault found is the one reported.  The 256-octet
 * path limit counts the path as received, source route included.  A
 * quoted local part keeps its quotes and backslashes; "" is refused as
 * an empty local part.  The domain of a path may not end in a dot.
 * IPv4 literals are dotted quads of 0..255; "[IPv6:...]" needs hex
 * digits, dots and at least two colons.  Parameters are separated by
 * one or more spaces; a keyword without "=" (e.g. SMTPUTF8) is unknown;
 * more than 16 parameters is SMTP_ADDR_PARAM_BAD, whatever they hold
 * (counted before any is looked at).  xtext must use
 * upper-case hex after "+".  NOTIFY list elements may repeat.
 */
enum smtp_addr_status smtp_addr_parse(const char *arg, size_t len,
    enum smtp_addr_kind kind, struct smtp_path *path,
    struct smtp_params *params, const char **errtext);

/*
 * smtp_domain_check - s[0..len) is a domain name by the path rules above
 * (LDH labels, lengths, no empty label, last label not all digits; no
 * address literal).  Returns SMTP_ADDR_OK, SMTP_ADDR_SYNTAX or
 * SMTP_ADDR_TOO_LONG; on error *errtext (if not NULL) says why.  Case is
 * not changed or checked.  Usable for ETRN arguments and HELO names.
 */
enum smtp_addr_status smtp_domain_check(const char *s, size_t len,
    const char **errtext);

/* smtp_xtext_encode - RFC 3461 xtext of s into out (NUL-terminated):
 * bytes below 0x21 or above 0x7e, "+" and "=" become "+XX" (upper-case
 * hex).  Returns false, with out set to "", when it does not fit in
 * outsz (which counts the NUL). */
bool smtp_xtext_encode(const char *s, char *out, size_t outsz);

#endif
