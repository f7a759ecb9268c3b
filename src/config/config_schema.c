/*
 * config_schema - the table of every configuration key and the parsers,
 * printers and destructors of its value types
 *
 * One row per key and section kind: the parser (config_parse.c) looks a
 * key up here, the defaults are applied by parsing the row's default text
 * with the same code (so the documented default is the real one), and
 * config_print() and config_schema_describe() walk the same rows.  Nothing
 * here does I/O: inet_pton() and inet_ntop() are pure.
 */
#include "config/config.h"
#include "util/strutil.h"
#include "util/xalloc.h"

#include <arpa/inet.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define G(f)	offsetof(struct config, f)
#define D(f)	offsetof(struct config_domain, f)
#define Q(f)	offsetof(struct config_queue, f)
#define FIELD(obj, k, T)	((T *)(void *)((char *)(obj) + (k)->off))
#define CFIELD(obj, k, T)	((const T *)(const void *)((const char *)(obj) + (k)->off))
#define COUNT(obj, k)		((size_t *)(void *)((char *)(obj) + (k)->noff))
#define CCOUNT(obj, k)		((const size_t *)(const void *)((const char *)(obj) + (k)->noff))

#define KIB	1024ULL
#define MIB	(1024ULL * 1024)
#define GIB	(1024ULL * 1024 * 1024)
#define MINUTE	60ULL
#define HOUR	3600ULL
#define DAY	86400ULL

/* ENUM fields are written through an int; the enums must be int-sized. */
_Static_assert(sizeof(enum config_mode) == sizeof(int), "enum size");
_Static_assert(sizeof(enum config_tls) == sizeof(int), "enum size");

static config_set_fn set_domain_etrn;
static bool check_hostname(const char *, size_t, struct buf *);
static bool check_user(const char *, size_t, struct buf *);
static bool check_dns_server(const char *, size_t, struct buf *);

static const char *const mode_words[] = { "retry", "hold", NULL };
static const char *const tls_words[] = { "may", "none", "must", NULL };

const struct config_key config_schema[] = {
	/* global */
	{ "hostname", CONFIG_T_STRING, CONFIG_S_GLOBAL, G(hostname), 0, NULL,
	  check_hostname, NULL, 0, 0, NULL, true, false,
	  "our name in the greeting, EHLO and Received: (default: the system's host name)" },
	{ "listen", CONFIG_T_LISTEN, CONFIG_S_GLOBAL, G(listen), G(nlisten),
	  NULL, NULL, "127.0.0.1:2525", 0, 64, NULL, false, false,
	  "SMTP (and ETRN) listening addresses: addr:port or [v6]:port, numeric" },
	{ "odmr_listen", CONFIG_T_LISTEN, CONFIG_S_GLOBAL, G(odmr_listen),
	  G(nodmr_listen), NULL, NULL, NULL, 0, 64, NULL, false, false,
	  "ODMR (ATRN, RFC 2645) listening addresses, usually port 366" },
	{ "metrics_listen", CONFIG_T_LISTEN, CONFIG_S_GLOBAL, G(metrics_listen),
	  G(nmetrics_listen), NULL, NULL, NULL, 0, 1, NULL, false, false,
	  "one address for /metrics and the status page" },
	{ "queue_dir", CONFIG_T_PATH, CONFIG_S_GLOBAL, G(queue_dir), 0, NULL,
	  NULL, NULL, 0, 0, NULL, false, true,
	  "the queue's directory (required)" },
	{ "control", CONFIG_T_PATH, CONFIG_S_GLOBAL, G(control), 0, NULL, NULL,
	  NULL, 0, 0, NULL, false, false,
	  "the control socket for etrnctl (default: <queue_dir>/control.sock)" },
	{ "user", CONFIG_T_STRING, CONFIG_S_GLOBAL, G(user), 0, NULL,
	  check_user, NULL, 0, 0, NULL, false, false,
	  "when started as root: the user to run as after binding" },
	{ "tls_cert", CONFIG_T_PATH, CONFIG_S_GLOBAL, G(tls_cert), 0, NULL,
	  NULL, NULL, 0, 0, NULL, true, false,
	  "PEM certificate chain; with tls_key, enables STARTTLS" },
	{ "tls_key", CONFIG_T_PATH, CONFIG_S_GLOBAL, G(tls_key), 0, NULL,
	  NULL, NULL, 0, 0, NULL, true, false,
	  "PEM private key of tls_cert" },
	{ "dns_server", CONFIG_T_STRING, CONFIG_S_GLOBAL, G(dns_server), 0,
	  NULL, check_dns_server, NULL, 0, 0, NULL, false, false,
	  "resolver to ask, addr[:port] or [v6][:port] (default: the system's)" },
	{ "etrn_clients", CONFIG_T_NETLIST, CONFIG_S_GLOBAL, G(etrn_clients),
	  0, NULL, NULL, NULL, 0, 0, NULL, true, false,
	  "networks that may ETRN a domain that sets none (default: nobody)" },
	{ "users_file", CONFIG_T_PATH, CONFIG_S_GLOBAL, G(users_file), 0, NULL,
	  NULL, NULL, 0, 0, NULL, true, false,
	  "ODMR accounts, name:{SCHEME}secret:domain,domain per line" },
	{ "domains_file", CONFIG_T_PATH, CONFIG_S_GLOBAL, G(domains_file), 0,
	  NULL, NULL, NULL, 0, 0, NULL, true, false,
	  "a file of more [domain] sections, for large tables" },
	{ "max_connections", CONFIG_T_UINT, CONFIG_S_GLOBAL,
	  G(max_connections), 0, NULL, NULL, "1000", 1, 1000000, NULL, true,
	  false, "SMTP sessions in total (421 past it)" },
	{ "max_connections_per_client", CONFIG_T_UINT, CONFIG_S_GLOBAL,
	  G(max_connections_per_client), 0, NULL, NULL, "50", 1, 1000000,
	  NULL, true, false, "SMTP sessions per client address (421 past it)" },
	{ "message_size_limit", CONFIG_T_SIZE, CONFIG_S_GLOBAL,
	  G(message_size_limit), 0, NULL, NULL, "10240000", KIB, 2 * GIB, NULL,
	  true, false, "largest message accepted, advertised with SIZE" },
	{ "max_recipients", CONFIG_T_UINT, CONFIG_S_GLOBAL, G(max_recipients),
	  0, NULL, NULL, "1000", 100, 100000, NULL, true, false,
	  "recipients per message (452 past it)" },
	{ "hop_limit", CONFIG_T_UINT, CONFIG_S_GLOBAL, G(hop_limit), 0, NULL,
	  NULL, "50", 1, 1000, NULL, true, false,
	  "Received: headers before a message is refused as looping (554 5.4.6)" },
	{ "hard_error_limit", CONFIG_T_UINT, CONFIG_S_GLOBAL,
	  G(hard_error_limit), 0, NULL, NULL, "20", 1, 1000, NULL, true, false,
	  "errors in one session before it is closed" },
	{ "soft_error_limit", CONFIG_T_UINT, CONFIG_S_GLOBAL,
	  G(soft_error_limit), 0, NULL, NULL, "10", 1, 1000, NULL, true, false,
	  "errors in one session after which every refusal waits error_delay" },
	{ "error_delay", CONFIG_T_DURATION, CONFIG_S_GLOBAL, G(error_delay), 0,
	  NULL, NULL, "1", 0, 60, NULL, true, false,
	  "how long a refusal waits past soft_error_limit (0: never)" },
	{ "idle_timeout", CONFIG_T_DURATION, CONFIG_S_GLOBAL, G(idle_timeout),
	  0, NULL, NULL, "300", 1, HOUR, NULL, true, false,
	  "time a client may take to send a command (counted from its"
	  " first byte: trickling bytes does not extend it)" },
	{ "data_timeout", CONFIG_T_DURATION, CONFIG_S_GLOBAL, G(data_timeout),
	  0, NULL, NULL, "600", 1, HOUR, NULL, true, false,
	  "time a client may stay silent during DATA, or take for one"
	  " line of the message" },
	{ "log_syslog", CONFIG_T_BOOL, CONFIG_S_GLOBAL, G(log_syslog), 0, NULL,
	  NULL, "no", 0, 0, NULL, false, false,
	  "log to syslog (facility mail) instead of stderr" },
	{ "delay_warning_time", CONFIG_T_DURATION, CONFIG_S_GLOBAL,
	  G(delay_warning_time), 0, NULL, NULL, "0", 0, 365 * DAY, NULL, true,
	  false, "send the sender one delay warning (RFC 3464) for a recipient"
	  " still undelivered after this long (0: never; NOTIFY is honoured)" },
	{ "retry_min", CONFIG_T_DURATION, CONFIG_S_GLOBAL, G(retry_min), 0,
	  NULL, NULL, "300", 1, DAY, NULL, true, false,
	  "a deferred recipient's first retry comes this long after its"
	  " failure; each further one waits twice as long" },
	{ "retry_max", CONFIG_T_DURATION, CONFIG_S_GLOBAL, G(retry_max), 0,
	  NULL, NULL, "4h", 1, 30 * DAY, NULL, true, false,
	  "the longest wait between two retries" },
	{ "greeting_delay", CONFIG_T_DURATION, CONFIG_S_GLOBAL,
	  G(greeting_delay), 0, NULL, NULL, "0", 0, 30, NULL, true, false,
	  "wait this long before the 220 greeting; a client that sends before"
	  " it gets 554 and is disconnected (0: greet at once)" },
	{ "shutdown_grace", CONFIG_T_DURATION, CONFIG_S_GLOBAL,
	  G(shutdown_grace), 0, NULL, NULL, "30", 0, HOUR, NULL, true, false,
	  "on SIGTERM, how long mail transactions in progress may take to finish" },
	{ "body_memory_limit", CONFIG_T_SIZE, CONFIG_S_GLOBAL,
	  G(body_memory_limit), 0, NULL, NULL, "256k", KIB, GIB, NULL, true,
	  false, "per session: a larger body goes to a temporary file" },
	{ "queue_min_free", CONFIG_T_SIZE, CONFIG_S_GLOBAL, G(queue_min_free),
	  0, NULL, NULL, "16M", 0, 1024 * GIB, NULL, true, false,
	  "free space kept on the queue's file system: mail is refused (452) below it" },
	{ "mx_port", CONFIG_T_UINT, CONFIG_S_GLOBAL, G(mx_port), 0, NULL, NULL,
	  "25", 1, 65535, NULL, false, false,
	  "the port delivery connects to on MX hosts (25; tests use another)" },
	{ "etrn_plain_listen", CONFIG_T_LISTEN, CONFIG_S_GLOBAL,
	  G(etrn_plain_listen), G(netrn_plain_listen), NULL, NULL, NULL, 0, 64,
	  NULL, false, false,
	  "more SMTP listeners, whose ETRN answers a plain 250 (for clients that expect only that)" },
	{ "etrn_rate", CONFIG_T_UINT, CONFIG_S_GLOBAL, G(etrn_rate), 0, NULL,
	  NULL, "10", 1, 100000, NULL, true, false,
	  "ETRN commands one client address may send per minute (458 past it)" },

	/* [domain NAME] */
	{ "route", CONFIG_T_ROUTE, CONFIG_S_DOMAIN, D(route), 0, NULL, NULL,
	  "mx", 0, 0, NULL, true, false,
	  "mx (MX lookup), [host]:port (static next hop, port 25 by default) or odmr (ATRN only)" },
	{ "mode", CONFIG_T_ENUM, CONFIG_S_DOMAIN, D(mode), 0, NULL, NULL,
	  "retry", 0, 0, mode_words, true, false,
	  "retry: deliver with backoff; hold: nothing leaves until ETRN, ATRN or etrnctl flush" },
	{ "etrn_clients", CONFIG_T_NETLIST, CONFIG_S_DOMAIN, D(etrn_clients), 0,
	  set_domain_etrn, NULL, NULL, 0, 0, NULL, true, false,
	  "networks that may ETRN this domain, any, or none (default: the global etrn_clients)" },
	{ "tls", CONFIG_T_ENUM, CONFIG_S_DOMAIN, D(tls), 0, NULL, NULL, "may",
	  0, 0, tls_words, true, false,
	  "outbound STARTTLS: may (when offered), none, must (defer without it)" },
	{ "subdomains", CONFIG_T_BOOL, CONFIG_S_DOMAIN, D(subdomains), 0, NULL,
	  NULL, "no", 0, 0, NULL, true, false,
	  "also relay for every subdomain (and allow ETRN @domain)" },
	{ "lifetime", CONFIG_T_DURATION, CONFIG_S_DOMAIN, D(lifetime), 0, NULL,
	  NULL, "5d", 1, 365 * DAY, NULL, true, false,
	  "how long mail may wait before it is returned to its sender" },
	{ "recipients", CONFIG_T_PATH, CONFIG_S_DOMAIN, D(recipients), 0, NULL,
	  NULL, NULL, 0, 0, NULL, true, false,
	  "file of the valid addresses, one a line (others get 550 5.1.1 at RCPT)" },

	/* [queue NAME] */
	{ "domains", CONFIG_T_STRLIST, CONFIG_S_QUEUE, Q(domains), Q(ndomains),
	  NULL, NULL, NULL, 0, 0, NULL, true, true,
	  "the [domain]s that ETRN #NAME flushes (required)" },
};

const size_t config_schema_len = sizeof(config_schema) / sizeof(config_schema[0]);

/* config_schema_find - the row of a key valid in scope, or NULL */
const struct config_key *config_schema_find(const char *name, size_t len,
    unsigned scope)
{
	size_t i;

	for (i = 0; i < config_schema_len; i++) {
		const struct config_key *k = &config_schema[i];

		if ((k->scope & scope) && strlen(k->name) == len &&
		    memcmp(k->name, name, len) == 0)
			return k;
	}
	return NULL;
}

/* ---- numbers ---- */

struct unit {
	char c;
	unsigned long long mult;
};

static const struct unit size_units[] = {
	{ 'k', KIB }, { 'K', KIB }, { 'm', MIB }, { 'M', MIB },
	{ 'g', GIB }, { 'G', GIB }, { 0, 0 }
};

static const struct unit duration_units[] = {
	{ 's', 1 }, { 'm', MINUTE }, { 'h', HOUR }, { 'd', DAY },
	{ 'w', 7 * DAY }, { 0, 0 }
};

enum num_result { NUM_OK, NUM_BAD, NUM_BIG };

/* num_parse - digits and an optional one-letter unit from units (NULL: none) */
static enum num_result num_parse(const char *v, size_t len,
    const struct unit *units, unsigned long long *out)
{
	unsigned long long n, mult = 1;
	size_t i, digits;

	for (digits = 0; digits < len && v[digits] >= '0' && v[digits] <= '9';
	    digits++)
		;
	if (digits == 0)
		return NUM_BAD;
	if (digits < len) {
		if (units == NULL || digits + 1 != len)
			return NUM_BAD;
		for (i = 0; units[i].c; i++)
			if (units[i].c == v[digits])
				break;
		if (units[i].c == 0)
			return NUM_BAD;
		mult = units[i].mult;
	}
	if (!str_parse_u64(v, digits, &n))
		return NUM_BIG;		/* all digits: only overflow fails */
	if (n > ULLONG_MAX / mult)
		return NUM_BIG;
	*out = n * mult;
	return NUM_OK;
}

/* num_print - a number in the row's type, with the largest exact unit */
static void num_print(struct buf *out, enum config_type type,
    unsigned long long n)
{
	static const struct unit sizes[] = {
		{ 'G', GIB }, { 'M', MIB }, { 'k', KIB }, { 0, 0 }
	};
	static const struct unit times[] = {
		{ 'w', 7 * DAY }, { 'd', DAY }, { 'h', HOUR }, { 'm', MINUTE },
		{ 0, 0 }
	};
	const struct unit *u = NULL;

	if (type == CONFIG_T_SIZE)
		u = sizes;
	else if (type == CONFIG_T_DURATION)
		u = times;
	for (; u && u->c && n; u++) {
		if (n % u->mult == 0) {
			buf_printf(out, "%llu%c", n / u->mult, u->c);
			return;
		}
	}
	buf_printf(out, "%llu%s", n, type == CONFIG_T_DURATION ? "s" : "");
}

/* quote - a value for a message: escaped, cut at 64 bytes */
static void quote(struct buf *why, const char *v, size_t len)
{
	buf_putc(why, '"');
	str_escape(why, v, len > 64 ? 64 : len);
	if (len > 64)
		buf_puts(why, "...");
	buf_putc(why, '"');
}

/* set_number - UINT, SIZE and DURATION */
static bool set_number(const struct config_key *k, void *obj, const char *v,
    size_t len, struct buf *why)
{
	const struct unit *units = NULL;
	const char *what = "a whole number";
	unsigned long long n = 0;
	enum num_result r;

	if (k->type == CONFIG_T_SIZE) {
		units = size_units;
		what = "a size in bytes, with an optional k, M or G suffix";
	} else if (k->type == CONFIG_T_DURATION) {
		units = duration_units;
		what = "a duration in seconds, with an optional s, m, h, d or w suffix";
	}
	r = num_parse(v, len, units, &n);
	if (r == NUM_BAD) {
		quote(why, v, len);
		buf_printf(why, " is not %s", what);
		return false;
	}
	if (r == NUM_BIG || n < k->min || n > k->max) {
		quote(why, v, len);
		buf_puts(why, " is out of range (expected ");
		num_print(why, k->type, k->min);
		buf_puts(why, " to ");
		num_print(why, k->type, k->max);
		buf_putc(why, ')');
		return false;
	}
	switch (k->type) {
	case CONFIG_T_UINT:
		*FIELD(obj, k, unsigned) = (unsigned)n;
		break;
	case CONFIG_T_SIZE:
		*FIELD(obj, k, unsigned long long) = n;
		break;
	default:
		*FIELD(obj, k, long long) = (long long)n;
		break;
	}
	return true;
}

/* ---- words ---- */

/* set_bool - yes/no, true/false, on/off, 1/0, in any case */
static bool set_bool(const struct config_key *k, void *obj, const char *v,
    size_t len, struct buf *why)
{
	static const char *const yes[] = { "yes", "true", "on", "1", NULL };
	static const char *const no[] = { "no", "false", "off", "0", NULL };
	size_t i;

	for (i = 0; yes[i]; i++) {
		if (str_caseeq_n(v, len, yes[i])) {
			*FIELD(obj, k, bool) = true;
			return true;
		}
		if (str_caseeq_n(v, len, no[i])) {
			*FIELD(obj, k, bool) = false;
			return true;
		}
	}
	quote(why, v, len);
	buf_puts(why, " is not yes or no (or true/false, on/off, 1/0)");
	return false;
}

/* set_enum - one of the row's words, in any case */
static bool set_enum(const struct config_key *k, void *obj, const char *v,
    size_t len, struct buf *why)
{
	int i;

	for (i = 0; k->words[i]; i++) {
		if (str_caseeq_n(v, len, k->words[i])) {
			memcpy(FIELD(obj, k, int), &i, sizeof(i));
			return true;
		}
	}
	quote(why, v, len);
	buf_puts(why, " is not one of:");
	for (i = 0; k->words[i]; i++)
		buf_printf(why, " %s", k->words[i]);
	return false;
}

/* set_string - STRING and PATH: the whole value, checked for STRING */
static bool set_string(const struct config_key *k, void *obj, const char *v,
    size_t len, struct buf *why)
{
	char **f = FIELD(obj, k, char *);
	struct buf err = BUF_INIT;

	if (k->check && !k->check(v, len, &err)) {
		quote(why, v, len);
		buf_printf(why, ": %s", buf_cstr(&err));
		buf_free(&err);
		return false;
	}
	free(*f);
	*f = xmemdup0(v, len);
	return true;
}

/* ---- names and addresses ---- */

/* config_check_domain_name - LDH host name; NULL or why not */
const char *config_check_domain_name(const char *s, size_t len)
{
	size_t i, label = 0;
	bool digits = true;

	if (len == 0)
		return "empty domain name";
	if (len > 253)
		return "domain name longer than 253 characters";
	if (s[len - 1] == '.')
		return "domain name with a trailing dot";
	for (i = 0; i <= len; i++) {
		char c = i < len ? s[i] : '.';

		if (c == '.') {
			if (label == 0)
				return "empty label in domain name";
			if (label > 63)
				return "label longer than 63 characters";
			if (s[i - 1] == '-')
				return "label ending in '-'";
			label = 0;
			if (i < len)
				digits = true;
			continue;
		}
		if (!ascii_isalnum(c) && c != '-')
			return "character not allowed in a domain name "
			    "(letters, digits, '-' and '.')";
		if (c == '-' && label == 0)
			return "label starting with '-'";
		if (c < '0' || c > '9')
			digits = false;
		label++;
	}
	if (digits)
		return "domain name whose last label is all digits (an address?)";
	return NULL;
}

/* check_hostname - our own name: a domain name, one label allowed */
static bool check_hostname(const char *v, size_t len, struct buf *why)
{
	const char *err = config_check_domain_name(v, len);

	if (err)
		buf_puts(why, err);
	return err == NULL;
}

/* check_user - a system user name: letters, digits, '_', '.', '-' */
static bool check_user(const char *v, size_t len, struct buf *why)
{
	size_t i;

	if (len > 32) {
		buf_puts(why, "user name longer than 32 characters");
		return false;
	}
	if (v[0] == '-') {
		buf_puts(why, "user name starting with '-'");
		return false;
	}
	for (i = 0; i < len; i++) {
		if (!ascii_isalnum(v[i]) && v[i] != '_' && v[i] != '.' &&
		    v[i] != '-') {
			buf_puts(why, "character not allowed in a user name");
			return false;
		}
	}
	return true;
}

/* port_parse - 1..65535 */
static bool port_parse(const char *s, size_t len, unsigned *port)
{
	unsigned long long n;

	if (len == 0 || len > 5 || !str_parse_u64(s, len, &n) || n < 1 ||
	    n > 65535)
		return false;
	*port = (unsigned)n;
	return true;
}

enum hp_flags {
	HP_NAMES = 1,			/* a host name is allowed, not only an address */
	HP_PORT = 2,			/* the port is required */
};

/*
 * hostport_parse - "[host]:port", "host:port", "[host]" or "host" into
 * host (NUL-terminated, no brackets) and port (left alone when absent).
 * An IPv6 address needs the brackets: its colons would be ambiguous.
 */
static bool hostport_parse(const char *s, size_t len, unsigned flags,
    char *host, size_t hostsz, unsigned *port, struct buf *why)
{
	const char *h, *rest;
	size_t hlen, restlen;
	unsigned char tmp[16];
	const char *err;
	bool bracket = false;

	if (len > 0 && s[0] == '[') {
		const char *close = memchr(s, ']', len);

		if (close == NULL) {
			buf_puts(why, "missing ']'");
			return false;
		}
		bracket = true;
		h = s + 1;
		hlen = (size_t)(close - h);
		rest = close + 1;
	} else {
		const char *colon = memchr(s, ':', len);

		if (colon && memchr(colon + 1, ':', len - (size_t)(colon + 1 - s))) {
			buf_puts(why, "an IPv6 address must be in brackets, "
			    "as in [::1]:25");
			return false;
		}
		h = s;
		hlen = colon ? (size_t)(colon - s) : len;
		rest = s + hlen;
	}
	restlen = len - (size_t)(rest - s);
	if (restlen == 0) {
		if (flags & HP_PORT) {
			buf_puts(why, "a port is required, as in 127.0.0.1:25");
			return false;
		}
	} else if (rest[0] != ':' || !port_parse(rest + 1, restlen - 1, port)) {
		buf_puts(why, "the port must be a number from 1 to 65535");
		return false;
	}
	if (hlen == 0 || hlen >= hostsz || hlen > 253) {
		buf_puts(why, hlen == 0 ? "the host is missing" :
		    "the host is too long");
		return false;
	}
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	if (inet_pton(AF_INET, host, tmp) == 1)
		return true;
	if (inet_pton(AF_INET6, host, tmp) == 1) {
		if (bracket)
			return true;
		buf_puts(why, "an IPv6 address must be in brackets");
		return false;
	}
	if (!(flags & HP_NAMES)) {
		buf_puts(why, "the address must be numeric, as in "
		    "127.0.0.1:25 or [::1]:25");
		return false;
	}
	if ((err = config_check_domain_name(host, hlen)) != NULL) {
		buf_puts(why, err);
		return false;
	}
	str_lower(host);
	return true;
}

/* check_dns_server - addr, addr:port, [v6] or [v6]:port, numeric */
static bool check_dns_server(const char *v, size_t len, struct buf *why)
{
	char host[64];
	unsigned port = 53;

	return hostport_parse(v, len, 0, host, sizeof(host), &port, why);
}

/* ---- lists ---- */

/* next_word - the next white-space separated word after *pos */
static bool next_word(const char *v, size_t len, size_t *pos,
    const char **w, size_t *wlen)
{
	size_t i = *pos;

	while (i < len && (v[i] == ' ' || v[i] == '\t'))
		i++;
	if (i == len)
		return false;
	*w = v + i;
	while (i < len && v[i] != ' ' && v[i] != '\t')
		i++;
	*wlen = (size_t)(v + i - *w);
	*pos = i;
	return true;
}

/* word_count - the number of words in v */
static size_t word_count(const char *v, size_t len)
{
	const char *w;
	size_t pos = 0, wl, n = 0;

	while (next_word(v, len, &pos, &w, &wl))
		n++;
	return n;
}

/* too_many - a list row's entry limit */
static bool too_many(const struct config_key *k, size_t n, struct buf *why)
{
	if (k->max == 0 || n <= k->max)
		return false;
	buf_printf(why, "at most %llu %s allowed", k->max,
	    k->max == 1 ? "entry is" : "entries are");
	return true;
}

static const uint8_t v4mapped[12] = {
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff
};

/* net_parse - "addr" or "addr/prefix", host bits zero */
static bool net_parse(const char *s, size_t len, struct config_net *n,
    struct buf *why)
{
	const char *slash = memchr(s, '/', len);
	size_t alen = slash ? (size_t)(slash - s) : len;
	unsigned maxp, i;
	char a[64];

	memset(n, 0, sizeof(*n));
	if (alen == 0 || alen >= sizeof(a))
		goto bad;
	memcpy(a, s, alen);
	a[alen] = '\0';
	if (inet_pton(AF_INET, a, n->addr) == 1) {
		n->family = AF_INET;
		maxp = 32;
	} else if (inet_pton(AF_INET6, a, n->addr) == 1) {
		n->family = AF_INET6;
		maxp = 128;
	} else
		goto bad;
	n->prefix = maxp;
	if (slash) {
		unsigned long long p;
		size_t plen = len - alen - 1;

		if (plen == 0 || plen > 3 || !str_parse_u64(slash + 1, plen, &p) ||
		    p > maxp) {
			quote(why, s, len);
			buf_printf(why, ": the prefix length must be 0 to %u", maxp);
			return false;
		}
		n->prefix = (unsigned)p;
	}
	for (i = 0; i < maxp / 8; i++) {
		unsigned bits = n->prefix > i * 8 ? n->prefix - i * 8 : 0;
		uint8_t mask = bits >= 8 ? 0xff : (uint8_t)(0xff00 >> bits);

		if (n->addr[i] & ~mask) {
			char net[64];
			unsigned j;

			for (j = i; j < maxp / 8; j++) {
				bits = n->prefix > j * 8 ? n->prefix - j * 8 : 0;
				n->addr[j] &= bits >= 8 ? 0xff :
				    (uint8_t)(0xff00 >> bits);
			}
			inet_ntop(n->family, n->addr, net, sizeof(net));
			quote(why, s, len);
			buf_printf(why, " has host bits set (the network is %s/%u)",
			    net, n->prefix);
			return false;
		}
	}
	/* ::ffff:192.0.2.0/120 is the IPv4 network 192.0.2.0/24. */
	if (n->family == AF_INET6 && n->prefix >= 96 &&
	    memcmp(n->addr, v4mapped, 12) == 0) {
		memmove(n->addr, n->addr + 12, 4);
		memset(n->addr + 4, 0, 12);
		n->family = AF_INET;
		n->prefix -= 96;
	}
	return true;
bad:
	quote(why, s, len);
	buf_puts(why, " is not an address or network (as in 192.0.2.0/24, "
	    "2001:db8::/32, any or none)");
	return false;
}

/* set_netlist - "any", "none", or networks separated by white space */
static bool set_netlist(const struct config_key *k, void *obj, const char *v,
    size_t len, struct buf *why)
{
	struct config_netlist *l = FIELD(obj, k, struct config_netlist);
	struct config_net *nets;
	size_t n = word_count(v, len), i = 0, pos = 0, wl;
	const char *w;

	if (n == 1 && (str_caseeq_n(v, len, "any") ||
	    str_caseeq_n(v, len, "none"))) {
		free(l->v);
		l->v = NULL;
		l->n = 0;
		if (ascii_tolower(v[0]) == 'a') {
			l->v = xcalloc(1, sizeof(*l->v));
			l->n = 1;	/* family 0: any */
		}
		return true;
	}
	nets = xcalloc(n, sizeof(*nets));
	while (next_word(v, len, &pos, &w, &wl)) {
		if (str_caseeq_n(w, wl, "any") || str_caseeq_n(w, wl, "none")) {
			buf_puts(why, "any and none must stand alone");
			free(nets);
			return false;
		}
		if (!net_parse(w, wl, &nets[i], why)) {
			free(nets);
			return false;
		}
		i++;
	}
	free(l->v);
	l->v = nets;
	l->n = n;
	return true;
}

/* set_domain_etrn - a domain's own etrn_clients replace the global ones */
static bool set_domain_etrn(const struct config_key *k, void *obj,
    const char *v, size_t len, struct buf *why)
{
	if (!set_netlist(k, obj, v, len, why))
		return false;
	((struct config_domain *)obj)->has_etrn_clients = true;
	return true;
}

/* set_listen - numeric addr:port or [v6]:port, several, or "none" */
static bool set_listen(const struct config_key *k, void *obj, const char *v,
    size_t len, struct buf *why)
{
	struct config_listen **f = FIELD(obj, k, struct config_listen *);
	struct config_listen *ls;
	size_t n = word_count(v, len), i, pos = 0, wl;
	const char *w;

	if (n == 1 && str_caseeq_n(v, len, "none")) {
		free(*f);
		*f = NULL;
		*COUNT(obj, k) = 0;
		return true;
	}
	if (too_many(k, n, why))
		return false;
	ls = xcalloc(n, sizeof(*ls));
	for (i = 0; next_word(v, len, &pos, &w, &wl); i++) {
		if (str_caseeq_n(w, wl, "none")) {
			buf_puts(why, "none must stand alone");
			free(ls);
			return false;
		}
		if (!hostport_parse(w, wl, HP_PORT, ls[i].host,
		    sizeof(ls[i].host), &ls[i].port, why)) {
			struct buf tmp = BUF_INIT;

			quote(&tmp, w, wl);
			buf_printf(&tmp, ": %s", buf_cstr(why));
			buf_reset(why);
			buf_puts(why, buf_cstr(&tmp));
			buf_free(&tmp);
			free(ls);
			return false;
		}
	}
	free(*f);
	*f = ls;
	*COUNT(obj, k) = n;
	return true;
}

/* strp_cmp - qsort order of strings */
static int strp_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* set_strlist - domain names separated by white space, each once */
static bool set_strlist(const struct config_key *k, void *obj, const char *v,
    size_t len, struct buf *why)
{
	char ***f = FIELD(obj, k, char **);
	size_t n = word_count(v, len), i, pos = 0, wl;
	char **l, **sorted;
	const char *w, *err;

	if (n == 0) {
		buf_puts(why, "a value is expected");
		return false;
	}
	if (too_many(k, n, why))
		return false;
	l = xcalloc(n, sizeof(*l));
	for (i = 0; next_word(v, len, &pos, &w, &wl); i++) {
		if ((err = config_check_domain_name(w, wl)) != NULL) {
			quote(why, w, wl);
			buf_printf(why, ": %s", err);
			goto fail;
		}
		l[i] = xmemdup0(w, wl);
		str_lower(l[i]);
	}
	/* Sort a copy: the operator's order is kept, duplicates are found in
	 * O(n log n) even on a 4096-byte line of one-letter names. */
	sorted = xcalloc(n, sizeof(*sorted));
	memcpy(sorted, l, n * sizeof(*l));
	qsort(sorted, n, sizeof(*sorted), strp_cmp);
	for (i = 1; i < n; i++) {
		if (strcmp(sorted[i - 1], sorted[i]) == 0) {
			quote(why, sorted[i], strlen(sorted[i]));
			buf_puts(why, " is listed twice");
			free(sorted);
			goto fail;
		}
	}
	free(sorted);
	config_value_free(k, obj);
	*f = l;
	*COUNT(obj, k) = n;
	return true;
fail:
	for (i = 0; i < n; i++)
		free(l[i]);
	free(l);
	return false;
}

/* set_route - "mx", "odmr", or a static next hop [host]:port */
static bool set_route(const struct config_key *k, void *obj, const char *v,
    size_t len, struct buf *why)
{
	struct config_domain *d = obj;
	char host[256];
	unsigned port = 25;

	if (str_caseeq_n(v, len, "mx") || str_caseeq_n(v, len, "odmr")) {
		free(d->route_host);
		d->route_host = NULL;
		d->route_port = 0;
		d->route = ascii_tolower(v[0]) == 'm' ? CONFIG_ROUTE_MX :
		    CONFIG_ROUTE_ODMR;
		return true;
	}
	if (!hostport_parse(v, len, HP_NAMES, host, sizeof(host), &port, why)) {
		struct buf tmp = BUF_INIT;

		quote(&tmp, v, len);
		buf_printf(&tmp, " is not mx, odmr or [host]:port: %s",
		    buf_cstr(why));
		buf_reset(why);
		buf_puts(why, buf_cstr(&tmp));
		buf_free(&tmp);
		return false;
	}
	free(d->route_host);
	d->route_host = xstrdup(host);
	d->route_port = port;
	d->route = CONFIG_ROUTE_STATIC;
	return true;
}

/* config_value_set - parse v with the row's parser */
bool config_value_set(const struct config_key *k, void *obj, const char *v,
    size_t len, struct buf *why)
{
	if (len == 0) {
		buf_puts(why, "a value is expected");
		return false;
	}
	if (k->set)
		return k->set(k, obj, v, len, why);
	switch (k->type) {
	case CONFIG_T_STRING:
	case CONFIG_T_PATH:
		return set_string(k, obj, v, len, why);
	case CONFIG_T_UINT:
	case CONFIG_T_SIZE:
	case CONFIG_T_DURATION:
		return set_number(k, obj, v, len, why);
	case CONFIG_T_BOOL:
		return set_bool(k, obj, v, len, why);
	case CONFIG_T_NETLIST:
		return set_netlist(k, obj, v, len, why);
	case CONFIG_T_LISTEN:
		return set_listen(k, obj, v, len, why);
	case CONFIG_T_ENUM:
		return set_enum(k, obj, v, len, why);
	case CONFIG_T_ROUTE:
		return set_route(k, obj, v, len, why);
	case CONFIG_T_STRLIST:
		return set_strlist(k, obj, v, len, why);
	}
	buf_puts(why, "internal error: unknown type");
	return false;
}

/* config_value_free - free what the field owns and zero it */
void config_value_free(const struct config_key *k, void *obj)
{
	size_t i;

	switch (k->type) {
	case CONFIG_T_STRING:
	case CONFIG_T_PATH:
		free(*FIELD(obj, k, char *));
		*FIELD(obj, k, char *) = NULL;
		break;
	case CONFIG_T_NETLIST:
		free(FIELD(obj, k, struct config_netlist)->v);
		FIELD(obj, k, struct config_netlist)->v = NULL;
		FIELD(obj, k, struct config_netlist)->n = 0;
		break;
	case CONFIG_T_LISTEN:
		free(*FIELD(obj, k, struct config_listen *));
		*FIELD(obj, k, struct config_listen *) = NULL;
		*COUNT(obj, k) = 0;
		break;
	case CONFIG_T_ROUTE:
		free(((struct config_domain *)obj)->route_host);
		((struct config_domain *)obj)->route_host = NULL;
		break;
	case CONFIG_T_STRLIST:
		for (i = 0; i < *COUNT(obj, k); i++)
			free((*FIELD(obj, k, char **))[i]);
		free(*FIELD(obj, k, char **));
		*FIELD(obj, k, char **) = NULL;
		*COUNT(obj, k) = 0;
		break;
	default:
		break;
	}
}

/* listen_print - one listening address as written */
static void listen_print(struct buf *out, const struct config_listen *l)
{
	if (strchr(l->host, ':'))
		buf_printf(out, "[%s]:%u", l->host, l->port);
	else
		buf_printf(out, "%s:%u", l->host, l->port);
}

/* config_value_print - the value as it would be written; nothing if unset */
void config_value_print(const struct config_key *k, const void *obj,
    struct buf *out)
{
	const struct config_netlist *nl;
	const struct config_domain *d;
	char a[64];
	size_t i;
	int e;

	switch (k->type) {
	case CONFIG_T_STRING:
	case CONFIG_T_PATH:
		if (*CFIELD(obj, k, char *))
			buf_puts(out, *CFIELD(obj, k, char *));
		break;
	case CONFIG_T_UINT:
		num_print(out, k->type, *CFIELD(obj, k, unsigned));
		break;
	case CONFIG_T_SIZE:
		num_print(out, k->type, *CFIELD(obj, k, unsigned long long));
		break;
	case CONFIG_T_DURATION:
		num_print(out, k->type,
		    (unsigned long long)*CFIELD(obj, k, long long));
		break;
	case CONFIG_T_BOOL:
		buf_puts(out, *CFIELD(obj, k, bool) ? "yes" : "no");
		break;
	case CONFIG_T_NETLIST:
		nl = CFIELD(obj, k, struct config_netlist);
		if (nl->n == 0)
			buf_puts(out, "none");
		for (i = 0; i < nl->n; i++) {
			if (i)
				buf_putc(out, ' ');
			if (nl->v[i].family == 0) {
				buf_puts(out, "any");
				continue;
			}
			inet_ntop(nl->v[i].family, nl->v[i].addr, a, sizeof(a));
			buf_printf(out, "%s/%u", a, nl->v[i].prefix);
		}
		break;
	case CONFIG_T_LISTEN:
		if (*CCOUNT(obj, k) == 0)
			buf_puts(out, "none");
		for (i = 0; i < *CCOUNT(obj, k); i++) {
			if (i)
				buf_putc(out, ' ');
			listen_print(out, &(*CFIELD(obj, k,
			    struct config_listen *))[i]);
		}
		break;
	case CONFIG_T_ENUM:
		memcpy(&e, CFIELD(obj, k, int), sizeof(e));
		buf_puts(out, k->words[e]);
		break;
	case CONFIG_T_ROUTE:
		d = obj;
		if (d->route == CONFIG_ROUTE_MX)
			buf_puts(out, "mx");
		else if (d->route == CONFIG_ROUTE_ODMR)
			buf_puts(out, "odmr");
		else
			buf_printf(out, "[%s]:%u", d->route_host, d->route_port);
		break;
	case CONFIG_T_STRLIST:
		for (i = 0; i < *CCOUNT(obj, k); i++)
			buf_printf(out, "%s%s", i ? " " : "",
			    (*CFIELD(obj, k, char **))[i]);
		break;
	}
}

/* type_name - a type as the documentation calls it */
static const char *type_name(enum config_type t)
{
	switch (t) {
	case CONFIG_T_STRING:	return "string";
	case CONFIG_T_PATH:	return "path";
	case CONFIG_T_UINT:	return "number";
	case CONFIG_T_SIZE:	return "size";
	case CONFIG_T_DURATION:	return "duration";
	case CONFIG_T_BOOL:	return "yes/no";
	case CONFIG_T_NETLIST:	return "networks";
	case CONFIG_T_LISTEN:	return "addresses";
	case CONFIG_T_ENUM:	return "word";
	case CONFIG_T_ROUTE:	return "route";
	case CONFIG_T_STRLIST:	return "domains";
	}
	return "?";
}

/* config_schema_describe - every key, for documentation */
void config_schema_describe(struct buf *out)
{
	static const char *const scopes[] = {
		"", "global", "[domain]", "", "[queue]"
	};
	size_t i;
	int j;

	for (i = 0; i < config_schema_len; i++) {
		const struct config_key *k = &config_schema[i];

		buf_printf(out, "%s (%s, %s", k->name, scopes[k->scope],
		    type_name(k->type));
		if (k->type == CONFIG_T_ENUM) {
			buf_puts(out, ":");
			for (j = 0; k->words[j]; j++)
				buf_printf(out, "%s%s", j ? "|" : " ", k->words[j]);
		}
		if (k->type == CONFIG_T_UINT || k->type == CONFIG_T_SIZE ||
		    k->type == CONFIG_T_DURATION) {
			buf_puts(out, ", ");
			num_print(out, k->type, k->min);
			buf_puts(out, "..");
			num_print(out, k->type, k->max);
		} else if (k->max) {
			buf_printf(out, ", at most %llu", k->max);
		}
		if (k->required)
			buf_puts(out, ", required");
		else if (k->def)
			buf_printf(out, ", default %s", k->def);
		buf_printf(out, "%s)\n\t%s\n",
		    k->reloadable ? "" : ", restart to change", k->help);
	}
}
