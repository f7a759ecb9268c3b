/*
 * etrn - ask a relay to deliver a site's queued mail (RFC 1985 ETRN)
 *
 * Connects, greets with EHLO (HELO if refused), optionally upgrades with
 * STARTTLS, sends one ETRN per node and prints each reply.  With --wait it
 * polls (RFC 1985 section 5.2) until the relay answers 251 (nothing left
 * waiting) for every node, so a link-up script knows when the mail has
 * been handed over.
 *
 * Exit status: 0 every ETRN was accepted (2xx), 1 a temporary refusal (4xx)
 * or --wait ran out of time, 2 a permanent refusal (5xx), a syntax error
 * or a connection failure.
 */
#include "smtp/smtp_reply.h"
#include "util/buf.h"

#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define ETRN_IO_TIMEOUT_MS 120000

struct conn {
	int fd;
	SSL *ssl;
	struct buf in;
	bool verbose;
};

static void usage(FILE *f, int code)
{
	fprintf(f,
"usage: etrn [-p PORT] [--starttls] [--ehlo NAME] [--wait SECONDS]\n"
"            [--interval SECONDS] [-v] HOST NODE...\n"
"\n"
"Ask the relay HOST to deliver the mail it holds for each NODE (RFC 1985):\n"
"  example.org     mail for that domain\n"
"  @example.org    that domain and its subdomains\n"
"  #name           a named queue configured on the relay\n"
"\n"
"  -p, --port PORT      port (default 25)\n"
"  --starttls           use STARTTLS; fail if the relay does not offer it\n"
"  --ehlo NAME          name to greet with (default: this host's name)\n"
"  --wait SECONDS       repeat ETRN until the relay answers 251 (nothing\n"
"                       waiting) for every node, or the time runs out\n"
"  --interval SECONDS   pause between polls with --wait (default 10)\n"
"  -v                   show the whole dialogue\n"
"\n"
"Exit status: 0 accepted, 1 temporary refusal or --wait timed out,\n"
"2 permanent refusal, syntax or connection error.\n"
"\n"
"From a systemd unit started when the link comes up:\n"
"  [Service]\n"
"  Type=oneshot\n"
"  ExecStart=/usr/local/bin/etrn --starttls --wait 600 relay.example.net example.org\n"
"\n"
"From /etc/ppp/ip-up.d/etrn (or a NetworkManager dispatcher script):\n"
"  #!/bin/sh\n"
"  /usr/local/bin/etrn --wait 300 relay.example.net example.org || logger -t etrn \"status $?\"\n");
	exit(code);
}

static int conn_wait(struct conn *c, short ev)
{
	struct pollfd p = { c->fd, ev, 0 };
	int r = poll(&p, 1, ETRN_IO_TIMEOUT_MS);

	if (r == 0) {
		fprintf(stderr, "etrn: timed out waiting for the relay\n");
		return -1;
	}
	return r < 0 ? -1 : 0;
}

static int conn_write(struct conn *c, const char *s)
{
	size_t n = strlen(s), off = 0;

	if (c->verbose)
		fprintf(stderr, "-> %s", s);
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
static int conn_line(struct conn *c, char *line, size_t max, size_t *len)
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
				fprintf(stderr, "<- %s\n", line);
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
static int conn_reply(struct conn *c, struct smtp_reply *r)
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

static int conn_open(struct conn *c, const char *host, const char *port)
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

static int conn_starttls(struct conn *c, const char *host)
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

/* greet - EHLO (HELO when refused) and STARTTLS; 0, or an exit status */
static int greet(struct conn *c, struct smtp_reply *r, const char *host,
    const char *name, bool starttls)
{
	struct smtp_ehlo_caps caps;
	struct buf cmd = BUF_INIT;
	int code;

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
	return 0;
}

static void print_reply(const char *node, const struct smtp_reply *r)
{
	const char *p = r->text.p ? r->text.p : "";

	printf("%s: %d ", node, r->code);
	for (; *p; p++)
		putchar(*p == '\n' ? ' ' : *p);
	putchar('\n');
	fflush(stdout);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "port", required_argument, NULL, 'p' },
		{ "starttls", no_argument, NULL, 'S' },
		{ "ehlo", required_argument, NULL, 'e' },
		{ "wait", required_argument, NULL, 'w' },
		{ "interval", required_argument, NULL, 'i' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	const char *port = "25", *ehlo = NULL, *host;
	char myname[256];
	struct conn c = { -1, NULL, BUF_INIT, false };
	struct smtp_reply r;
	bool starttls = false;
	long waitfor = -1, interval = 10;
	time_t deadline = 0;
	int opt, worst = 0, i, nnodes;
	bool *done;

	while ((opt = getopt_long(argc, argv, "p:vh", opts, NULL)) != -1) {
		char *end;

		switch (opt) {
		case 'p':
			port = optarg;
			break;
		case 'S':
			starttls = true;
			break;
		case 'e':
			ehlo = optarg;
			break;
		case 'w':
		case 'i':
			errno = 0;
			if (opt == 'w')
				waitfor = strtol(optarg, &end, 10);
			else
				interval = strtol(optarg, &end, 10);
			if (errno || *end || end == optarg ||
			    (opt == 'w' ? waitfor : interval) < (opt == 'w' ? 0 : 1)) {
				fprintf(stderr, "etrn: --%s needs a number of"
				    " seconds\n", opt == 'w' ? "wait" : "interval");
				return 2;
			}
			break;
		case 'v':
			c.verbose = true;
			break;
		case 'h':
			usage(stdout, 0);
			break;
		default:
			usage(stderr, 2);
		}
	}
	if (argc - optind < 2)
		usage(stderr, 2);
	host = argv[optind++];
	nnodes = argc - optind;
	for (i = 0; i < nnodes; i++) {
		const char *n = argv[optind + i];

		if (*n == '\0' || strpbrk(n, " \t\r\n") || strlen(n) > 256) {
			fprintf(stderr, "etrn: not a node: \"%s\"\n", n);
			return 2;
		}
	}
	if (ehlo == NULL) {
		if (gethostname(myname, sizeof(myname)) != 0)
			snprintf(myname, sizeof(myname), "localhost");
		myname[sizeof(myname) - 1] = '\0';
		ehlo = myname;
	}
	if (waitfor >= 0)
		deadline = time(NULL) + waitfor;
	smtp_reply_init(&r);
	done = calloc((size_t)nnodes, sizeof(*done));
	if (done == NULL || conn_open(&c, host, port) != 0)
		return 2;
	if ((worst = greet(&c, &r, host, ehlo, starttls)) != 0)
		goto out;
	for (;;) {
		bool all = true;

		for (i = 0; i < nnodes; i++) {
			struct buf cmd = BUF_INIT;
			int code;

			if (done[i])
				continue;
			buf_printf(&cmd, "ETRN %s\r\n", argv[optind + i]);
			code = conn_write(&c, cmd.p) == 0 ? conn_reply(&c, &r) : -1;
			buf_free(&cmd);
			if (code < 0) {
				worst = 2;
				goto out;
			}
			print_reply(argv[optind + i], &r);
			if (code >= 500) {
				worst = 2;
				done[i] = true;
			} else if (code >= 400) {
				if (worst < 1)
					worst = 1;
				done[i] = waitfor < 0;
			} else {
				/* 251: nothing left; otherwise poll again */
				done[i] = waitfor < 0 || code == 251;
			}
			all = all && done[i];
		}
		if (all || waitfor < 0)
			break;
		if (time(NULL) + interval > deadline) {
			fprintf(stderr, "etrn: still mail waiting after %ld"
			    " seconds\n", waitfor);
			if (worst < 1)
				worst = 1;
			break;
		}
		/* polling a 4xx again is fine; its status is the last one */
		if (worst == 1)
			worst = 0;
		sleep((unsigned)interval);
	}
	if (conn_write(&c, "QUIT\r\n") == 0)
		conn_reply(&c, &r);
out:
	if (c.ssl) {
		SSL_shutdown(c.ssl);
		SSL_free(c.ssl);
	}
	if (c.fd >= 0)
		close(c.fd);
	smtp_reply_free(&r);
	buf_free(&c.in);
	free(done);
	return worst;
}
