/* conn - the etrn tool's blocking SMTP connection */
#include "conn.h"

#include <errno.h>
#include <netdb.h>
#include <openssl/err.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>


int conn_wait(struct conn *c, short ev)
{
	struct pollfd p = { c->fd, ev, 0 };
	int r = poll(&p, 1, ETRN_IO_TIMEOUT_MS);

	if (r == 0) {
		fprintf(stderr, "etrn: timed out waiting for the relay\n");
		return -1;
	}
	return r < 0 ? -1 : 0;
}

int conn_write(struct conn *c, const char *s)
{
	if (c->verbose)
		fprintf(stderr, "%s -> %s", c->tag ? c->tag : "", s);
	return conn_write_n(c, s, strlen(s));
}

int conn_write_n(struct conn *c, const char *s, size_t n)
{
	size_t off = 0;

	while (off < n) {
		ssize_t w;

		if (c->ssl) {
			int r = SSL_write(c->ssl, s + off, (int)(n - off));

			w = r > 0 ? r : -1;
		} else {
			w = send(c->fd, s + off, n - off, MSG_NOSIGNAL);
		}
		if (w < 0) {
			fprintf(stderr, "etrn: write: %s\n", strerror(errno));
			return -1;
		}
		off += (size_t)w;
	}
	return 0;
}

/* conn_line - one reply line without CRLF; bounded, CRLF only */
int conn_line(struct conn *c, char *line, size_t max, size_t *len)
{
	for (;;) {
		char *nl = c->in.len ? memchr(c->in.p, '\n', c->in.len) : NULL;
		char chunk[4096];
		ssize_t r;

		if (nl) {
			size_t n = (size_t)(nl - c->in.p);

			if (n == 0 || c->in.p[n - 1] != '\r' || n > max) {
				fprintf(stderr, "etrn: malformed reply line\n");
				return -1;
			}
			memcpy(line, c->in.p, n - 1);
			line[n - 1] = '\0';
			*len = n - 1;
			buf_consume(&c->in, n + 1);
			if (c->verbose)
				fprintf(stderr, "%s <- %s\n", c->tag ? c->tag : "",
				    line);
			return 0;
		}
		if (c->in.len > max) {
			fprintf(stderr, "etrn: reply line too long\n");
			return -1;
		}
		if (!c->ssl || SSL_pending(c->ssl) == 0)
			if (conn_wait(c, POLLIN) != 0)
				return -1;
		if (c->ssl) {
			int n = SSL_read(c->ssl, chunk, sizeof(chunk));

			r = n > 0 ? n : -1;
		} else {
			r = recv(c->fd, chunk, sizeof(chunk), 0);
		}
		if (r <= 0) {
			fprintf(stderr, "etrn: connection closed by the relay\n");
			return -1;
		}
		buf_append(&c->in, chunk, (size_t)r);
	}
}

/* conn_reply - one whole reply; returns its code, or -1 */
int conn_reply(struct conn *c, struct smtp_reply *r)
{
	char line[SMTP_REPLY_LINE_MAX + 1];
	size_t len;

	smtp_reply_reset(r);
	for (;;) {
		enum smtp_reply_status st;

		if (conn_line(c, line, SMTP_REPLY_LINE_MAX, &len) != 0)
			return -1;
		st = smtp_reply_feed(r, line, len);
		if (st == SMTP_REPLY_DONE)
			return r->code;
		if (st == SMTP_REPLY_BAD) {
			fprintf(stderr, "etrn: malformed reply: %s\n",
			    r->error ? r->error : "?");
			return -1;
		}
	}
}

int conn_open(struct conn *c, const char *host, const char *port)
{
	struct addrinfo hints, *res, *ai;
	int e;

	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	if ((e = getaddrinfo(host, port, &hints, &res)) != 0) {
		fprintf(stderr, "etrn: %s: %s\n", host, gai_strerror(e));
		return -1;
	}
	c->fd = -1;
	for (ai = res; ai; ai = ai->ai_next) {
		c->fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
		    ai->ai_protocol);
		if (c->fd < 0)
			continue;
		if (connect(c->fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		e = errno;
		close(c->fd);
		c->fd = -1;
		errno = e;
	}
	freeaddrinfo(res);
	if (c->fd < 0) {
		fprintf(stderr, "etrn: cannot connect to %s port %s: %s\n",
		    host, port, strerror(errno));
		return -1;
	}
	return 0;
}

int conn_starttls(struct conn *c, const char *host)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	if (ctx == NULL)
		return -1;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	c->ssl = SSL_new(ctx);
	SSL_CTX_free(ctx);	/* the SSL keeps its own reference */
	if (c->ssl == NULL)
		return -1;
	SSL_set_tlsext_host_name(c->ssl, host);
	SSL_set_fd(c->ssl, c->fd);
	/* nothing the relay sent in clear after its 220 is kept */
	buf_reset(&c->in);
	if (SSL_connect(c->ssl) != 1) {
		char e[256];

		ERR_error_string_n(ERR_get_error(), e, sizeof(e));
		fprintf(stderr, "etrn: TLS handshake failed: %s\n", e);
		return -1;
	}
	return 0;
}


long conn_read_some(struct conn *c, char *out, size_t max)
{
	long r;

	if (c->in.len > 0) {
		size_t n = c->in.len < max ? c->in.len : max;

		memcpy(out, c->in.p, n);
		buf_consume(&c->in, n);
		return (long)n;
	}
	if ((!c->ssl || SSL_pending(c->ssl) == 0) && conn_wait(c, POLLIN) != 0)
		return -1;
	if (c->ssl) {
		int n = SSL_read(c->ssl, out, (int)max);

		r = n > 0 ? n : -1;
	} else {
		r = recv(c->fd, out, max, 0);
	}
	return r > 0 ? r : -1;
}

void conn_close(struct conn *c)
{
	if (c->ssl) {
		SSL_shutdown(c->ssl);
		SSL_free(c->ssl);
		c->ssl = NULL;
	}
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	buf_free(&c->in);
}

/* conn_greet - the greeting, EHLO (HELO when refused) and STARTTLS */
int conn_greet(struct conn *c, struct smtp_reply *r, const char *host,
    const char *name, bool starttls, struct smtp_ehlo_caps *capsp)
{
	struct smtp_ehlo_caps caps;
	struct buf cmd = BUF_INIT;
	int code;

	memset(&caps, 0, sizeof(caps));
	if ((code = conn_reply(c, r)) != 220)
		return code < 0 || code >= 500 ? 2 : 1;
	for (int round = 0; round < 2; round++) {
		buf_reset(&cmd);
		buf_printf(&cmd, "EHLO %s\r\n", name);
		if (conn_write(c, cmd.p) != 0 || (code = conn_reply(c, r)) < 0) {
			buf_free(&cmd);
			return 2;
		}
		if (code != 250) {
			buf_reset(&cmd);
			buf_printf(&cmd, "HELO %s\r\n", name);
			if (starttls || conn_write(c, cmd.p) != 0 ||
			    conn_reply(c, r) != 250) {
				fprintf(stderr, "etrn: the relay refused our"
				    " greeting\n");
				buf_free(&cmd);
				return 2;
			}
			break;
		}
		smtp_ehlo_caps(r, &caps);
		if (!starttls || c->ssl)
			break;
		if (!caps.starttls) {
			fprintf(stderr, "etrn: the relay does not offer"
			    " STARTTLS\n");
			buf_free(&cmd);
			return 2;
		}
		if (conn_write(c, "STARTTLS\r\n") != 0 ||
		    (code = conn_reply(c, r)) != 220 ||
		    conn_starttls(c, host) != 0) {
			buf_free(&cmd);
			return code >= 400 && code < 500 ? 1 : 2;
		}
	}
	buf_free(&cmd);
	if (capsp)
		*capsp = caps;
	return 0;
}

