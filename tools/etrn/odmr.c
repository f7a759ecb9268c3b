/* odmr - the customer's side of On-Demand Mail Relay (RFC 2645) */
#include "odmr.h"
#include "conn.h"
#include "smtp/smtp_cmd.h"
#include "smtp/smtp_data.h"
#include "util/base64.h"
#include "util/buf.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ODMR_LINE_MAX 1024	/* a command line from the provider */

/* read_secret - the first line of the file, without its newline */
static int read_secret(const char *path, char *out, size_t max)
{
	FILE *f = fopen(path, "r");
	size_t n;

	if (f == NULL) {
		perror(path);
		return -1;
	}
	if (fgets(out, (int)max, f) == NULL) {
		fprintf(stderr, "etrn: %s: empty\n", path);
		fclose(f);
		return -1;
	}
	fclose(f);
	n = strcspn(out, "\r\n");
	out[n] = '\0';
	return n > 0 ? 0 : -1;
}

/* auth - PLAIN under TLS, CRAM-MD5 otherwise; 0, or an exit status */
static int auth(struct conn *c, struct smtp_reply *r, const char *user,
    const char *pw, const struct smtp_ehlo_caps *caps)
{
	struct buf b = BUF_INIT, e = BUF_INIT;
	int code;

	if (c->ssl && strstr(caps->auth_mechs, "PLAIN")) {
		buf_putc(&b, '\0');
		buf_puts(&b, user);
		buf_putc(&b, '\0');
		buf_puts(&b, pw);
		buf_puts(&e, "AUTH PLAIN ");
		base64_encode(b.p, b.len, &e);
		buf_puts(&e, "\r\n");
		code = conn_write(c, e.p) == 0 ? conn_reply(c, r) : -1;
	} else if (strstr(caps->auth_mechs, "CRAM-MD5")) {
		unsigned char mac[EVP_MAX_MD_SIZE];
		unsigned int maclen = 0;
		unsigned int i;

		code = conn_write(c, "AUTH CRAM-MD5\r\n") == 0 ?
		    conn_reply(c, r) : -1;
		if (code != 334 || !base64_decode(r->text.p, r->text.len, &b)) {
			fprintf(stderr, "etrn: no CRAM-MD5 challenge\n");
			goto fail;
		}
		HMAC(EVP_md5(), pw, (int)strlen(pw), (unsigned char *)b.p,
		    b.len, mac, &maclen);
		buf_reset(&b);
		buf_printf(&b, "%s ", user);
		for (i = 0; i < maclen; i++)
			buf_printf(&b, "%02x", mac[i]);
		base64_encode(b.p, b.len, &e);
		buf_puts(&e, "\r\n");
		code = conn_write_n(c, e.p, e.len) == 0 ? conn_reply(c, r) : -1;
	} else {
		fprintf(stderr, "etrn: the provider offers no usable AUTH"
		    " mechanism%s\n", c->ssl ? "" : " (try --starttls)");
		goto fail;
	}
	OPENSSL_cleanse(b.p, b.len);
	OPENSSL_cleanse(e.p, e.len);
	buf_free(&b);
	buf_free(&e);
	if (code == 235)
		return 0;
	fprintf(stderr, "etrn: authentication refused: %d %s\n", code,
	    r->text.p ? r->text.p : "");
	return code >= 400 && code < 500 ? 1 : 2;
fail:
	buf_free(&b);
	buf_free(&e);
	return 2;
}

/* relay_reply - send the local MTA's reply, as is, to the provider */
static int relay_reply(struct conn *prov, const struct smtp_reply *r)
{
	struct buf out = BUF_INIT;
	const char *p = r->text.p ? r->text.p : "";
	int rc;

	for (;;) {
		const char *nl = strchr(p, '\n');

		buf_printf(&out, "%d%c%.*s\r\n", r->code, nl ? '-' : ' ',
		    (int)(nl ? (size_t)(nl - p) : strlen(p)), p);
		if (nl == NULL)
			break;
		p = nl + 1;
	}
	rc = conn_write(prov, out.p);
	buf_free(&out);
	return rc;
}

/*
 * relay_data - after 354 on both sides: pass the provider's bytes to the
 * local MTA unchanged (dot-stuffing included) up to and including the
 * final CRLF "." CRLF, found by the same DATA machine etrnd uses
 */
static int relay_data(struct conn *prov, struct conn *local)
{
	struct smtp_data d;
	char chunk[16384];
	bool done = false;

	smtp_data_init(&d);
	while (!done) {
		long n = conn_read_some(prov, chunk, sizeof(chunk));
		size_t used;

		if (n <= 0)
			return -1;
		used = smtp_data_feed(&d, chunk, (size_t)n, NULL, &done);
		if (conn_write_n(local, chunk, used) != 0)
			return -1;
		if (used < (size_t)n)	/* pipelined commands after the dot */
			buf_append(&prov->in, chunk + used, (size_t)n - used);
	}
	return 0;
}

/*
 * serve - the reversed session: the provider is the client now.  Each of
 * its commands goes to the local MTA and the local answer goes back.
 */
static int serve(struct conn *prov, struct conn *local, const char *name,
    const char *local_host, const char *local_port)
{
	struct smtp_reply r;
	struct buf out = BUF_INIT;
	char line[ODMR_LINE_MAX + 1];
	size_t len;
	int status = 0, delivered = 0;
	bool local_open = false;

	smtp_reply_init(&r);
	buf_printf(&out, "220 %s ESMTP etrn ODMR client\r\n", name);
	if (conn_write(prov, out.p) != 0)
		return 1;
	for (;;) {
		struct smtp_cmd cmd;
		int code;

		if (conn_line(prov, line, ODMR_LINE_MAX, &len) != 0) {
			status = 1;
			break;
		}
		if (smtp_cmd_parse(line, len, &cmd) != SMTP_CMD_OK) {
			conn_write(prov, "501 5.5.2 Bad command\r\n");
			continue;
		}
		if (cmd.verb == SMTP_VERB_EHLO || cmd.verb == SMTP_VERB_HELO) {
			buf_reset(&out);
			buf_printf(&out, cmd.verb == SMTP_VERB_EHLO ?
			    "250-%s\r\n250-8BITMIME\r\n250 ENHANCEDSTATUSCODES\r\n" :
			    "250 %s\r\n", name);
			conn_write(prov, out.p);
			continue;
		}
		if (cmd.verb == SMTP_VERB_QUIT) {
			conn_write(prov, "221 2.0.0 Bye\r\n");
			break;
		}
		if (cmd.verb == SMTP_VERB_NOOP) {
			conn_write(prov, "250 2.0.0 Ok\r\n");
			continue;
		}
		if (cmd.verb != SMTP_VERB_MAIL && cmd.verb != SMTP_VERB_RCPT &&
		    cmd.verb != SMTP_VERB_DATA && cmd.verb != SMTP_VERB_RSET) {
			conn_write(prov, "502 5.5.1 Not implemented\r\n");
			continue;
		}
		if (!local_open) {
			if (conn_open(local, local_host, local_port) != 0 ||
			    conn_greet(local, &r, local_host, name, false,
			    NULL) != 0) {
				conn_close(local);
				conn_write(prov, "421 4.4.1 The local mail"
				    " server is not answering\r\n");
				status = 1;
				break;
			}
			local_open = true;
		}
		buf_reset(&out);
		buf_append(&out, line, len);
		buf_puts(&out, "\r\n");
		code = conn_write(local, out.p) == 0 ? conn_reply(local, &r) : -1;
		if (code < 0) {
			conn_write(prov, "421 4.4.2 Lost the local mail"
			    " server\r\n");
			status = 1;
			break;
		}
		relay_reply(prov, &r);
		if (cmd.verb != SMTP_VERB_DATA || code != 354)
			continue;
		/* the message; its final answer is the local MTA's */
		if (relay_data(prov, local) != 0 ||
		    (code = conn_reply(local, &r)) < 0) {
			/* never a 250 for what the local MTA did not take */
			conn_write(prov, "451 4.4.2 Lost the local mail server"
			    " during the message\r\n");
			status = 1;
			break;
		}
		relay_reply(prov, &r);
		delivered += code / 100 == 2;
	}
	if (local_open) {
		if (conn_write(local, "QUIT\r\n") == 0)
			conn_reply(local, &r);
		conn_close(local);
	}
	printf("%d message(s) handed to the local mail server\n", delivered);
	smtp_reply_free(&r);
	buf_free(&out);
	return status;
}

int odmr_run(const struct odmr_opts *o)
{
	struct conn prov = { -1, NULL, BUF_INIT, o->verbose, "provider" };
	struct conn local = { -1, NULL, BUF_INIT, o->verbose, "local" };
	struct smtp_ehlo_caps caps;
	struct smtp_reply r;
	struct buf cmd = BUF_INIT;
	char pw[512], lhost[256];
	const char *colon = strrchr(o->deliver_to, ':');
	int status, code, i;

	if (colon == NULL || colon == o->deliver_to || colon[1] == '\0' ||
	    (size_t)(colon - o->deliver_to) >= sizeof(lhost)) {
		fprintf(stderr, "etrn: --deliver-to needs HOST:PORT\n");
		return 2;
	}
	memcpy(lhost, o->deliver_to, (size_t)(colon - o->deliver_to));
	lhost[colon - o->deliver_to] = '\0';
	if (read_secret(o->secret_file, pw, sizeof(pw)) != 0)
		return 2;
	smtp_reply_init(&r);
	if (conn_open(&prov, o->host, o->port) != 0) {
		status = 2;
		goto out;
	}
	if ((status = conn_greet(&prov, &r, o->host, o->ehlo, o->starttls,
	    &caps)) != 0)
		goto out;
	if ((status = auth(&prov, &r, o->user, pw, &caps)) != 0)
		goto out;
	buf_puts(&cmd, "ATRN");
	for (i = 0; i < o->ndomains; i++)
		buf_printf(&cmd, "%c%s", i ? ',' : ' ', o->domains[i]);
	buf_puts(&cmd, "\r\n");
	code = conn_write(&prov, cmd.p) == 0 ? conn_reply(&prov, &r) : -1;
	printf("ATRN: %d %s\n", code, r.text.p ? r.text.p : "");
	if (code == 453) {
		status = 0;	/* nothing waiting: done */
		if (conn_write(&prov, "QUIT\r\n") == 0)
			conn_reply(&prov, &r);
		goto out;
	}
	if (code != 250) {
		status = code >= 400 && code < 500 ? 1 : 2;
		goto out;
	}
	/* what the provider said in clear after 250 was pipelined: none */
	buf_reset(&prov.in);
	status = serve(&prov, &local, o->ehlo, lhost, colon + 1);
out:
	OPENSSL_cleanse(pw, sizeof(pw));
	conn_close(&prov);
	smtp_reply_free(&r);
	buf_free(&cmd);
	return status;
}
