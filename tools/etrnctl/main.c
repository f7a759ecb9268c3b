/*
 * etrnctl - the operator's queue tool for etrnd
 *
 * Talks to the running daemon over its control socket (the "control" key
 * of the configuration, or -s PATH); never opens the store itself.
 * Exit status: 0 done, 1 the daemon refused or is not running, 2 usage.
 */
#include "config/config.h"
#include "ctl/ctl_proto.h"
#include "util/buf.h"
#include "util/strutil.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define ETRNCTL_DEFAULT_CONFIG "/etc/etrnd/etrnd.conf"

static int json;

static void usage(void)
{
	fprintf(stderr,
	    "usage: etrnctl [-c FILE | -s SOCKET] [--json] COMMAND [ARG]\n"
	    "commands:\n"
	    "  summary          per domain: messages, recipients, oldest\n"
	    "  list [DOMAIN]    queued recipients (of DOMAIN and its subdomains)\n"
	    "  show QID         one message: envelope and recipients\n"
	    "  flush DOMAIN     deliver every pending recipient of DOMAIN now\n"
	    "  hold DOMAIN|QID  keep its queued and deferred recipients back\n"
	    "  release DOMAIN|QID  let held recipients go (due now)\n"
	    "  requeue DOMAIN|QID  make queued and deferred recipients due now\n"
	    "  delete QID       remove a message (no bounce is sent)\n"
	    "  expire           return mail older than its domain's lifetime now\n");
	exit(2);
}

/* etrnctl_request - send one line, read the whole answer */
static int etrnctl_request(const char *path, const char *req, struct buf *ans)
{
	struct sockaddr_un sun;
	char chunk[8192];
	ssize_t n;
	int fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		fprintf(stderr, "etrnctl: socket path too long: %s\n", path);
		return -1;
	}
	memcpy(sun.sun_path, path, strlen(path));
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
		fprintf(stderr, "etrnctl: cannot reach etrnd at %s: %s"
		    " (is etrnd running?)\n", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (write(fd, req, strlen(req)) != (ssize_t)strlen(req) ||
	    write(fd, "\n", 1) != 1) {
		fprintf(stderr, "etrnctl: write: %s\n", strerror(errno));
		close(fd);
		return -1;
	}
	while ((n = read(fd, chunk, sizeof(chunk))) > 0)
		buf_append(ans, chunk, (size_t)n);
	close(fd);
	if (n < 0) {
		fprintf(stderr, "etrnctl: read: %s\n", strerror(errno));
		return -1;
	}
	return 0;
}

/* split - the tab-separated fields of one line, in place */
static size_t split(char *line, char **f, size_t max)
{
	size_t n = 0;

	f[n++] = line;
	for (; *line && n < max; line++) {
		if (*line == '\t') {
			*line = '\0';
			f[n++] = line + 1;
		}
	}
	return n;
}

static void json_str(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			printf("\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			printf("\\u%04x", *s);
		else
			putchar(*s);
	}
	putchar('"');
}

static void age(char *out, size_t sz, long long t)
{
	long long s = (long long)time(NULL) - t;

	if (s < 0)
		s = 0;
	if (s < 120)
		snprintf(out, sz, "%llds", s);
	else if (s < 7200)
		snprintf(out, sz, "%lldm", s / 60);
	else if (s < 172800)
		snprintf(out, sz, "%lldh", s / 3600);
	else
		snprintf(out, sz, "%lldd", s / 86400);
}

static const char *state_name(const char *n)
{
	static const char *const names[] = {
		"queued", "held", "deferred", "delivered", "failed"
	};
	int v = atoi(n);

	return v >= 0 && v <= 4 ? names[v] : "unknown";
}

/* print - rows of an answer as a table or as JSON objects */
static void print(const char *cmd, char *rows)
{
	static const char *const sum_keys[] = { "domain", "messages",
		"recipients", "oldest" };
	static const char *const list_keys[] = { "qid", "arrival", "size",
		"sender", "recipient", "state", "attempts", "next_try", "domain" };
	const char *const *keys = NULL;
	size_t nkeys = 0, nrow = 0;
	char *line, *save = NULL;
	int show = strcmp(cmd, "show") == 0;

	if (strcmp(cmd, "summary") == 0) {
		keys = sum_keys;
		nkeys = 4;
		if (!json)
			printf("%-40s %9s %10s %7s\n", "DOMAIN", "MESSAGES",
			    "RECIPIENTS", "OLDEST");
	} else if (strcmp(cmd, "list") == 0) {
		keys = list_keys;
		nkeys = 9;
		if (!json)
			printf("%-16s %5s %8s %-9s %s -> %s\n", "QID", "AGE",
			    "SIZE", "STATE", "SENDER", "RECIPIENT");
	}
	if (keys == NULL && !show) {
		/* flush, hold, release, requeue, delete: one word or number */
		char *nl = strchr(rows, '\n');

		if (nl)
			*nl = '\0';
		if (json)
			printf("{\"command\":\"%s\",\"result\":", cmd);
		if (json && rows[0] >= '0' && rows[0] <= '9')
			printf("%s}\n", rows);
		else if (json)
			printf("\"%s\"}\n", rows);
		else if (rows[0] >= '0' && rows[0] <= '9')
			printf("%s: %s recipient(s) changed\n", cmd, rows);
		else
			printf("%s: %s\n", cmd, rows);
		return;
	}
	if (json)
		printf(show ? "{" : "[");
	for (line = strtok_r(rows, "\n", &save); line;
	    line = strtok_r(NULL, "\n", &save)) {
		char *f[16], a[32];
		size_t n = split(line, f, 16), i;

		if (show) {
			if (json) {
				if (strcmp(f[0], "rcpt") == 0 && n >= 8) {
					printf("%s\"rcpt_%zu\":{\"address\":", nrow ? "," : "", nrow);
					json_str(f[1]);
					printf(",\"state\":\"%s\",\"attempts\":%s,\"next_try\":%s,\"notify\":%s,\"orcpt\":",
					    state_name(f[2]), f[3], f[4], f[5]);
					json_str(f[6]);
					printf(",\"last_reply\":");
					json_str(f[7]);
					printf("}");
				} else if (n >= 2) {
					printf("%s", nrow ? "," : "");
					json_str(f[0]);
					putchar(':');
					json_str(f[1]);
				}
			} else if (strcmp(f[0], "rcpt") == 0 && n >= 8) {
				printf("%-10s %s state=%s attempts=%s%s%s\n",
				    "recipient", f[1], state_name(f[2]), f[3],
				    f[7][0] ? " last_reply=" : "", f[7]);
			} else if (n >= 2) {
				printf("%-10s %s\n", f[0], f[1]);
			}
			nrow++;
			continue;
		}
		if (n < nkeys)
			continue;
		if (json) {
			printf("%s{", nrow ? "," : "");
			for (i = 0; i < nkeys; i++) {
				printf("%s\"%s\":", i ? "," : "", keys[i]);
				if (keys == list_keys && i == 5)
					json_str(state_name(f[i]));
				else if (keys == sum_keys ? i >= 1 :
				    (i == 1 || i == 2 || i == 6 || i == 7))
					printf("%lld", atoll(f[i]));
				else
					json_str(f[i]);
			}
			printf("}");
		} else if (keys == sum_keys) {
			age(a, sizeof(a), atoll(f[3]));
			printf("%-40s %9s %10s %7s\n", f[0], f[1], f[2], a);
		} else {
			age(a, sizeof(a), atoll(f[1]));
			printf("%-16s %5s %8s %-9s <%s> -> <%s>\n", f[0], a, f[2],
			    state_name(f[5]), f[3], f[4]);
		}
		nrow++;
	}
	if (json)
		printf(show ? "}\n" : "]\n");
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	const char *cfgpath = ETRNCTL_DEFAULT_CONFIG, *sock = NULL, *cmd;
	struct config *cfg = NULL;
	struct buf req = BUF_INIT, ans = BUF_INIT;
	struct ctl_req parsed;
	char *nl;
	int opt, rc;

	while ((opt = getopt_long(argc, argv, "c:s:jh", longopts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			cfgpath = optarg;
			break;
		case 's':
			sock = optarg;
			break;
		case 'j':
			json = 1;
			break;
		default:
			usage();
		}
	}
	if (optind >= argc || argc - optind > 2)
		usage();
	cmd = argv[optind];
	buf_puts(&req, cmd);
	if (optind + 1 < argc) {
		buf_putc(&req, ' ');
		buf_puts(&req, argv[optind + 1]);
	}
	/* refuse what the daemon would refuse, with the same words */
	ctl_req_parse(req.p, req.len, &parsed);
	if (parsed.cmd == CTL_CMD_BAD) {
		fprintf(stderr, "etrnctl: %s: %s\n", req.p, parsed.error);
		usage();
	}
	if (sock == NULL) {
		struct config_errors errs = { 0 };
		size_t i;

		cfg = config_load(cfgpath, &errs);
		if (cfg == NULL) {
			for (i = 0; i < errs.n; i++)
				fprintf(stderr, "etrnctl: %s\n", errs.v[i].msg);
			config_errors_free(&errs);
			return 2;
		}
		sock = cfg->control;
	}
	rc = etrnctl_request(sock, req.p, &ans) == 0 ? 0 : 1;
	if (rc == 0) {
		nl = strchr(buf_cstr(&ans), '\n');
		if (strncmp(buf_cstr(&ans), "ok\n", 3) == 0 &&
		    parsed.cmd == CTL_CMD_DELETE && strcmp(nl + 1, "0\n") == 0) {
			fprintf(stderr, "etrnctl: delete %s: no such message"
			    " (or nothing left to deliver)\n", argv[optind + 1]);
			rc = 1;
		} else if (strncmp(buf_cstr(&ans), "ok\n", 3) == 0) {
			print(cmd, nl + 1);
		} else {
			const char *msg = strncmp(buf_cstr(&ans), "error\t", 6) == 0 ?
			    ans.p + 6 : "no answer from etrnd";

			if (nl)
				*nl = '\0';
			fprintf(stderr, "etrnctl: %s\n", msg);
			rc = 1;
		}
	}
	buf_free(&req);
	buf_free(&ans);
	if (cfg)
		config_unref(cfg);
	return rc;
}
