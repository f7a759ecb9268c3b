/*
 * SUMMARY
 *	odmr - the customer's side of On-Demand Mail Relay (RFC 2645)
 * DESCRIPTION
 *	Connects to the provider, (STARTTLS,) authenticates (PLAIN under TLS,
 *	else CRAM-MD5), sends ATRN, and once the provider reverses the roles
 *	acts as the SMTP server of that session, relaying every command into
 *	the local MTA: each RCPT gets the local MTA's own answer, and the
 *	provider's final dot is answered 250 only after the local MTA accepted
 *	the message (4xx when it did not), so a message is never lost between
 *	the two: if either side dies first, the provider keeps it.
 */
#ifndef ETRN_TOOL_ODMR_H
#define ETRN_TOOL_ODMR_H

#include <stdbool.h>

struct odmr_opts {
	const char *host;
	const char *port;		/* default 366 */
	const char *user;
	const char *secret_file;	/* first line: the password */
	const char *deliver_to;		/* HOST:PORT of the local MTA */
	const char *ehlo;
	bool starttls;
	bool verbose;
	char **domains;
	int ndomains;
};

/* odmr_run - the exit status: 0 done (or no mail), 1 temporary, 2 error */
int odmr_run(const struct odmr_opts *o);

#endif
