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
#include "queue/queue.h"

#include <errno.h>
#include <stdbool.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define ETRNCTL_DEFAULT_CONFIG "/etc/etrnd/etrnd.conf"

static int json;

static void usage(FILE *f, int code)
{
	fprintf(f,
	    "usage: etrnctl [-c FILE | -s SOCKET] [--json] COMMAND [ARG]\n"
	    "commands:\n"
	    "  summary [--sort age|size]  per domain: messages, recipients, oldest\n"
	    "  qshape           messages per domain by age (minutes), like Postfix's\n"
	    "  stats            the counters of /metrics\n"
	    "  list [DOMAIN]    queued recipients (of DOMAIN and its subdomains)\n"
	    "  show QID         one message: envelope and recipients\n"
	    "  flush DOMAIN     deliver every pending recipient of DOMAIN now\n"
	    "  hold DOMAIN|QID  keep its queued and deferred recipients back\n"
	    "  release DOMAIN|QID  let held recipients go (due now)\n"
	    "  requeue DOMAIN|QID  make queued and deferred recipients due now\n"
	    "  delete QID       remove a message (no bounce is sent)\n"
	    "  expire           return mail older than its domain's lifetime now\n");
	exit(code);
}

/* etrnctl_request - send one line, read the whole answer */
static int etrnctl_request(const char *path, const char *req, struct buf *ans)
{
	struct sockaddr_un sun;
	char chunk[8192];
	ssize_t n;
	int fd, werr = 0;

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
	/*
	 * etrnd may answer and close before reading the request (a refused
	 * uid): the write then fails with EPIPE (no SIGPIPE: MSG_NOSIGNAL)
	 * and the read ends with ECONNRESET, but the answer is there to read.
	 */
	if (send(fd, req, strlen(req), MSG_NOSIGNAL) != (ssize_t)strlen(req) ||
	    send(fd, "\n", 1, MSG_NOSIGNAL) != 1) {
		werr = errno;
		if (werr != EPIPE && werr != ECONNRESET) {
			fprintf(stderr, "etrnctl: write: %s\n", strerror(werr));
			close(fd);
			return -1;
		}
	}
	while ((n = read(fd, chunk, sizeof(chunk))) > 0)
		buf_append(ans, chunk, (size_t)n);
	close(fd);
	if (n < 0 && !(errno == ECONNRESET && ans->len > 0)) {
		fprintf(stderr, "etrnctl: read: %s\n", strerror(errno));
		return -1;
	}
	if (werr != 0 && ans->len == 0) {
		fprintf(stderr, "etrnctl: write: %s\n", strerror(werr));
		return -1;
	}
	return 0;
}

#define MAXF 16

/* rows_split - lines of tab-separated fields, in place; the row count */
static size_t rows_split(char *rows, char *(**out)[MAXF], size_t **nf)
{
	size_t n = 0, cap = 0;
	char *line, *save = NULL;

	*out = NULL;
	*nf = NULL;
	for (line = strtok_r(rows, "\n", &save); line;
	    line = strtok_r(NULL, "\n", &save)) {
		size_t k = 0;
		char *p;

		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			*out = realloc(*out, cap * sizeof(**out));
			*nf = realloc(*nf, cap * sizeof(**nf));
			if (*out == NULL || *nf == NULL) {
				perror("etrnctl");
				exit(1);
			}
		}
		(*out)[n][k++] = line;
		for (p = line; *p && k < MAXF; p++) {
			if (*p == '\t') {
				*p = '\0';
				(*out)[n][k++] = p + 1;
			}
		}
		(*nf)[n++] = k;
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
	return queue_rstate_name(atoi(n));
}

/* print_objects - rows as a JSON array of objects; numeric columns bare */
static void print_objects(char *(*r)[MAXF], const size_t *nf, size_t n,
    const char *const *keys, size_t nkeys, unsigned numeric, int state_col)
{
	size_t i, k;

	printf("[");
	for (i = 0; i < n; i++) {
		if (nf[i] < nkeys)
			continue;
		printf("%s{", i ? "," : "");
		for (k = 0; k < nkeys; k++) {
			printf("%s\"%s\":", k ? "," : "", keys[k]);
			if ((int)k == state_col)
				json_str(state_name(r[i][k]));
			else if (numeric & (1u << k))
				printf("%lld", atoll(r[i][k]));
			else
				json_str(r[i][k]);
		}
		printf("}");
	}
	printf("]\n");
}

static const char *sort_by;	/* summary: "size" or "age" */

static int cmp_size(const void *a, const void *b)
{
	char *const *x = a, *const *y = b;
	long long d = atoll(y[1]) - atoll(x[1]);

	return d > 0 ? 1 : d < 0 ? -1 : strcmp(x[0], y[0]);
}

static int cmp_age(const void *a, const void *b)
{
	char *const *x = a, *const *y = b;
	long long d = atoll(x[3]) - atoll(y[3]);

	return d > 0 ? 1 : d < 0 ? -1 : strcmp(x[0], y[0]);
}

static void print_summary(char *(*r)[MAXF], size_t *nf, size_t n)
{
	static const char *const keys[] = { "domain", "messages",
		"recipients", "oldest" };
	char a[32];
	size_t i;

	if (sort_by)
		qsort(r, n, sizeof(*r), strcmp(sort_by, "age") == 0 ?
		    cmp_age : cmp_size);
	if (json) {
		print_objects(r, nf, n, keys, 4, 0xe, -1);
		return;
	}
	printf("%-40s %9s %10s %7s\n", "DOMAIN", "MESSAGES", "RECIPIENTS",
	    "OLDEST");
	for (i = 0; i < n; i++) {
		if (nf[i] < 4)
			continue;
		age(a, sizeof(a), atoll(r[i][3]));
		printf("%-40s %9s %10s %7s\n", r[i][0], r[i][1], r[i][2], a);
	}
}

static void print_list(char *(*r)[MAXF], size_t *nf, size_t n)
{
	static const char *const keys[] = { "qid", "arrival", "size",
		"sender", "recipient", "state", "attempts", "next_try", "domain" };
	char a[32];
	size_t i;

	if (json) {
		print_objects(r, nf, n, keys, 9, 0xc6, 5);
		return;
	}
	printf("%-16s %5s %8s %-9s %s -> %s\n", "QID", "AGE", "SIZE", "STATE",
	    "SENDER", "RECIPIENT");
	for (i = 0; i < n; i++) {
		if (nf[i] < 9)
			continue;
		age(a, sizeof(a), atoll(r[i][1]));
		printf("%-16s %5s %8s %-9s <%s> -> <%s>\n", r[i][0], a, r[i][2],
		    state_name(r[i][5]), r[i][3], r[i][4]);
	}
}

static void print_show(char *(*r)[MAXF], size_t *nf, size_t n)
{
	const char *sep = "";
	size_t i, nr = 0;

	if (json)
		printf("{");
	for (i = 0; i < n; i++) {
		bool rcpt = strcmp(r[i][0], "rcpt") == 0 && nf[i] >= 8;

		if (json && rcpt) {
			printf("%s\"rcpt_%zu\":{\"address\":", sep, nr++);
			json_str(r[i][1]);
			printf(",\"state\":\"%s\",\"attempts\":%s,\"next_try\":%s,"
			    "\"notify\":%s,\"orcpt\":", state_name(r[i][2]),
			    r[i][3], r[i][4], r[i][5]);
			json_str(r[i][6]);
			printf(",\"last_reply\":");
			json_str(r[i][7]);
			printf("}");
			sep = ",";
		} else if (json && nf[i] >= 2 && strcmp(r[i][0], "header") != 0) {
			printf("%s", sep);
			json_str(r[i][0]);
			putchar(':');
			json_str(r[i][1]);
			sep = ",";
		} else if (rcpt) {
			printf("%-10s %s state=%s attempts=%s%s%s\n", "recipient",
			    r[i][1], state_name(r[i][2]), r[i][3],
			    r[i][7][0] ? " last_reply=" : "", r[i][7]);
		} else if (!json && nf[i] >= 2) {
			printf("%-10s %s\n", r[i][0], r[i][1]);
		}
	}
	if (json) {
		/* the header lines as one array: an object with a key
		 * "header" per line would keep only one of them */
		printf("%s\"headers\":[", sep);
		sep = "";
		for (i = 0; i < n; i++) {
			if (nf[i] >= 2 && strcmp(r[i][0], "header") == 0) {
				printf("%s", sep);
				json_str(r[i][1]);
				sep = ",";
			}
		}
		printf("]}\n");
	}
}

/* print_qshape - Postfix's qshape view: messages per domain by age */
static void print_qshape(char *(*r)[MAXF], size_t *nf, size_t n)
{
	static const char *const keys[] = { "domain", "total", "m0_5",
		"m5_10", "m10_20", "m20_40", "m40_80", "m80_160", "m160_320",
		"m320_640", "m640_1280", "m1280_" };
	static const char *const head[] = { "5", "10", "20", "40", "80",
		"160", "320", "640", "1280", "1280+" };
	long long tot[11] = { 0 };
	size_t i, k;

	if (json) {
		print_objects(r, nf, n, keys, 12, 0xffe, -1);
		return;
	}
	for (i = 0; i < n; i++)
		for (k = 1; k < 12 && k < nf[i]; k++)
			tot[k - 1] += atoll(r[i][k]);
	printf("%-32s %6s", "", "T");
	for (k = 0; k < 10; k++)
		printf(" %5s", head[k]);
	printf("\n%-32s %6lld", "TOTAL", tot[0]);
	for (k = 0; k < 10; k++)
		printf(" %5lld", tot[k + 1]);
	putchar('\n');
	for (i = 0; i < n; i++) {
		if (nf[i] < 12)
			continue;
		printf("%-32s %6s", r[i][0], r[i][1]);
		for (k = 2; k < 12; k++)
			printf(" %5s", r[i][k]);
		putchar('\n');
	}
}

static void print_stats(char *(*r)[MAXF], size_t *nf, size_t n)
{
	size_t i;

	if (json)
		printf("{");
	for (i = 0; i < n; i++) {
		if (nf[i] < 2)
			continue;
		if (json) {
			printf("%s", i ? "," : "");
			json_str(r[i][0]);
			printf(":%s", r[i][1]);
		} else {
			printf("%-60s %s\n", r[i][0], r[i][1]);
		}
	}
	if (json)
		printf("}\n");
}

/* print_result - flush, hold, release, requeue, delete, expire */
static void print_result(const char *cmd, char *rows)
{
	char *nl = strchr(rows, '\n');
	bool number = rows[0] >= '0' && rows[0] <= '9';

	if (nl)
		*nl = '\0';
	if (json)
		printf(number ? "{\"command\":\"%s\",\"result\":%s}\n" :
		    "{\"command\":\"%s\",\"result\":\"%s\"}\n", cmd, rows);
	else if (number)
		printf("%s: %s recipient(s) changed\n", cmd, rows);
	else
		printf("%s: %s\n", cmd, rows);
}

static void print(const char *cmd, char *rows)
{
	static const struct {
		const char *cmd;
		void (*fn)(char *(*)[MAXF], size_t *, size_t);
	} printers[] = {
		{ "summary", print_summary },
		{ "list", print_list },
		{ "show", print_show },
		{ "qshape", print_qshape },
		{ "stats", print_stats },
	};
	char *(*r)[MAXF];
	size_t *nf, n, i;

	for (i = 0; i < sizeof(printers) / sizeof(printers[0]); i++) {
		if (strcasecmp(cmd, printers[i].cmd) == 0) {
			n = rows_split(rows, &r, &nf);
			printers[i].fn(r, nf, n);
			free(r);
			free(nf);
			return;
		}
	}
	print_result(cmd, rows);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "sort", required_argument, NULL, 'S' },
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
		case 'h':
			usage(stdout, 0);
			break;
		case 'S':
			if (strcmp(optarg, "age") != 0 &&
			    strcmp(optarg, "size") != 0) {
				fprintf(stderr, "etrnctl: --sort age or --sort"
				    " size\n");
				return 2;
			}
			sort_by = optarg;
			break;
		default:
			usage(stderr, 2);
		}
	}
	if (optind >= argc || argc - optind > 2)
		usage(stderr, 2);
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
		usage(stderr, 2);
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
