/*
 * SUMMARY
 *	conn - the etrn tool's blocking SMTP connection
 * DESCRIPTION
 *	A plain or TLS client connection with a strict, bounded line reader
 *	(CRLF only), whole-reply reading through smtp_reply, and a timeout on
 *	every wait.  Used for the relay (both modes) and the local MTA (ODMR).
 */
#ifndef ETRN_TOOL_CONN_H
#define ETRN_TOOL_CONN_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>

#include "smtp/smtp_reply.h"
#include "util/buf.h"

#define ETRN_IO_TIMEOUT_MS 120000

struct conn {
	int fd;
	SSL *ssl;
	struct buf in;
	bool verbose;
	const char *tag;	/* "->"/"<-" prefix for -v, e.g. "relay" */
};

int conn_wait(struct conn *c, short ev);
int conn_write(struct conn *c, const char *s);
int conn_write_n(struct conn *c, const char *s, size_t n);
/* conn_line - one line without CRLF into line (max bytes at most) */
int conn_line(struct conn *c, char *line, size_t max, size_t *len);
/* conn_read_some - whatever is buffered or arrives next, at most max */
long conn_read_some(struct conn *c, char *out, size_t max);
/* conn_reply - one whole reply; its code, or -1 */
int conn_reply(struct conn *c, struct smtp_reply *r);
int conn_open(struct conn *c, const char *host, const char *port);
int conn_starttls(struct conn *c, const char *host);
void conn_close(struct conn *c);
/*
 * conn_greet - read the greeting, EHLO (HELO when refused), STARTTLS when
 * asked (then EHLO again); the last EHLO's capabilities in caps (may be
 * NULL).  0, or an exit status: 1 temporary, 2 permanent or broken.
 */
int conn_greet(struct conn *c, struct smtp_reply *r, const char *host,
    const char *name, bool starttls, struct smtp_ehlo_caps *caps);

#endif
