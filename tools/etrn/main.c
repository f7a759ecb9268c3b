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
#include "conn.h"
#include "odmr.h"
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


static void usage(FILE *f, int code)
{
	fprintf(f,
"usage: etrn [-p PORT] [--starttls] [--ehlo NAME] [--wait SECONDS]\n"
"            [--interval SECONDS] [-v] HOST NODE...\n"
"       etrn --odmr --user NAME --secret-file FILE [--starttls]\n"
"            --deliver-to HOST:PORT [-p PORT] [-v] HOST [DOMAIN...]\n"
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
"With --odmr (RFC 2645, port 366 by default): authenticate as NAME with the\n"
"password in the first line of FILE (PLAIN under TLS, CRAM-MD5 otherwise),\n"
"send ATRN for the DOMAINs (none: all of the account's), then receive the\n"
"mail on the same connection and hand each message to the local MTA at\n"
"--deliver-to; the provider's final dot is answered only with the local\n"
"MTA's own answer, so nothing is lost if either side fails.\n"
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
		{ "odmr", no_argument, NULL, 'O' },
		{ "user", required_argument, NULL, 'U' },
		{ "secret-file", required_argument, NULL, 'F' },
		{ "deliver-to", required_argument, NULL, 'D' },
		{ NULL, 0, NULL, 0 }
	};
	struct odmr_opts od;
	bool odmr = false, port_set = false;
	const char *port = "25", *ehlo = NULL, *host;
	char myname[256];
	struct conn c = { -1, NULL, BUF_INIT, false, "relay" };
	struct smtp_reply r;
	bool starttls = false;
	long waitfor = -1, interval = 10;
	time_t deadline = 0;
	int opt, worst = 0, i, nnodes;
	bool *done;

	memset(&od, 0, sizeof(od));
	while ((opt = getopt_long(argc, argv, "p:vh", opts, NULL)) != -1) {
		char *end;

		switch (opt) {
		case 'p':
			port = optarg;
			port_set = true;
			break;
		case 'O':
			odmr = true;
			break;
		case 'U':
			od.user = optarg;
			break;
		case 'F':
			od.secret_file = optarg;
			break;
		case 'D':
			od.deliver_to = optarg;
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
	if (argc - optind < (odmr ? 1 : 2))
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
	if (odmr) {
		if (od.user == NULL || od.secret_file == NULL ||
		    od.deliver_to == NULL) {
			fprintf(stderr, "etrn: --odmr needs --user, --secret-file"
			    " and --deliver-to\n");
			return 2;
		}
		od.host = host;
		od.port = port_set ? port : "366";
		od.ehlo = ehlo;
		od.starttls = starttls;
		od.verbose = c.verbose;
		od.domains = argv + optind;
		od.ndomains = nnodes;
		return odmr_run(&od);
	}
	if (waitfor >= 0)
		deadline = time(NULL) + waitfor;
	smtp_reply_init(&r);
	done = calloc((size_t)nnodes, sizeof(*done));
	if (done == NULL || conn_open(&c, host, port) != 0) {
		free(done);
		return 2;
	}
	if ((worst = conn_greet(&c, &r, host, ehlo, starttls, NULL)) != 0)
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
