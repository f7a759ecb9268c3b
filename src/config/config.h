/*
 * SUMMARY
 *	config - etrnd's configuration: schema, pure parser, loading
 * DESCRIPTION
 *	One file of "key = value" lines, '#' comments (a '#' that starts a
 *	value or follows white space), list values separated by white space,
 *	a global part, then "[domain NAME]" and "[queue NAME]" sections.
 *	Every key is described once in a schema table (config_schema.c) with
 *	its type, default, bounds and whether SIGHUP may change it.
 *
 *	config_parse() is pure: text in, a struct config and a list of
 *	errors out, each error carrying its line number.  config_load() reads
 *	the file(s) and calls it.  A struct config is immutable once built and
 *	reference counted, so a reload can swap in a new one while sessions
 *	keep the one they started with.
 * OWNERSHIP
 *	config_parse()/config_load() return a config with one reference;
 *	config_unref() frees it with the last reference.  Every string inside
 *	is owned by the config.
 */
#ifndef ETRND_CONFIG_H
#define ETRND_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

/* A network: "192.0.2.0/24", "2001:db8::/32", "198.51.100.7" (a /32 or
 * /128), or the word "any" (matches every client). */
struct config_net {
	int family;			/* AF_INET or AF_INET6; 0 for "any" */
	uint8_t addr[16];		/* network bytes, host bits zero */
	unsigned prefix;		/* 0..32 or 0..128 */
};

struct config_netlist {
	struct config_net *v;
	size_t n;
};

/* A listening address: "127.0.0.1:2525", "[::1]:25", "0.0.0.0:25". */
struct config_listen {
	char host[64];			/* numeric address, without brackets */
	unsigned port;
};

enum config_route {
	CONFIG_ROUTE_MX,		/* "mx": MX lookup (default) */
	CONFIG_ROUTE_STATIC,		/* "[host]:port" or "host:port" */
	CONFIG_ROUTE_ODMR,		/* "odmr": held for ATRN only */
};

enum config_mode {
	CONFIG_MODE_RETRY,		/* "retry" (default) */
	CONFIG_MODE_HOLD,		/* "hold" */
};

enum config_tls {
	CONFIG_TLS_MAY,			/* "may" (default) */
	CONFIG_TLS_NONE,		/* "none" */
	CONFIG_TLS_MUST,		/* "must" */
};

struct config_domain {
	char *name;			/* lower case, no trailing dot */
	int line;			/* line of its [domain] header */
	enum config_route route;
	char *route_host;		/* CONFIG_ROUTE_STATIC: host name or address */
	unsigned route_port;		/* CONFIG_ROUTE_STATIC: default 25 */
	enum config_mode mode;
	bool has_etrn_clients;		/* else the global etrn_clients apply */
	struct config_netlist etrn_clients;
	enum config_tls tls;
	bool subdomains;		/* default no */
	long long lifetime;		/* seconds; default 5 days */
	char *recipients;		/* path of a valid-recipients file, or NULL */
	char **rcpt_table;		/* its addresses, lower case, sorted (config_load) */
	size_t nrcpt_table;
};

struct config_queue {
	char *name;			/* lower case */
	int line;
	char **domains;			/* each one a configured [domain] */
	size_t ndomains;
};

struct config {
	int refcnt;

	/* global keys (defaults in config_schema.c) */
	char *hostname;			/* default: gethostname() at load time, "localhost" when pure */
	struct config_listen *listen;	/* default: one, 127.0.0.1:2525 */
	size_t nlisten;
	struct config_listen *odmr_listen;	/* default: none */
	size_t nodmr_listen;
	struct config_listen *metrics_listen;	/* default: none (at most one) */
	size_t nmetrics_listen;
	char *queue_dir;		/* required */
	char *control;			/* default: <queue_dir>/control.sock */
	char *user;			/* default: NULL (do not change user) */
	char *tls_cert;			/* both or neither */
	char *tls_key;
	char *dns_server;		/* "host:port" or NULL */
	struct config_netlist etrn_clients;	/* default: empty (nobody) */
	char *users_file;
	char *domains_file;		/* more [domain] sections, same syntax */
	unsigned max_connections;		/* default 1000, 1..1000000 */
	unsigned max_connections_per_client;	/* default 50, 1..1000000 */
	unsigned long long message_size_limit;	/* default 10 MB (10240000), 1k..2G; "10M" */
	unsigned max_recipients;		/* default 1000, 100..100000 */
	unsigned hop_limit;			/* default 50, 1..1000 */
	unsigned hard_error_limit;		/* default 20, 1..1000 */
	unsigned soft_error_limit;		/* default 10: errors before each refusal waits error_delay */
	long long error_delay;			/* default 1s, 0 (off)..60s */
	long long idle_timeout;			/* default 300s, 1s..3600s */
	long long data_timeout;			/* default 600s, 1s..3600s */
	bool log_syslog;			/* default no: log to stderr (journald) */
	long long delay_warning_time;		/* default 0 (none): warn senders of mail deferred this long */
	long long retry_min;			/* default 300s: first retry after a deferral */
	long long retry_max;			/* default 4h: the doubling backoff stops here */
	long long shutdown_grace;		/* default 30s: SIGTERM waits this long for transactions */
	long long greeting_delay;		/* default 0 (off): wait before the 220; who talks first is dropped */
	unsigned long long body_memory_limit;	/* default 256k: larger bodies spill to a temporary file */
	unsigned long long queue_min_free;	/* default 16M: refuse mail (452) below this much free space */
	unsigned mx_port;			/* default 25: the port of MX hosts */
	struct config_listen *etrn_plain_listen;	/* SMTP listeners whose ETRN answers a plain 250 */
	size_t netrn_plain_listen;
	unsigned etrn_rate;			/* default 10: ETRN per client address per minute */

	struct config_domain *domains;	/* sorted by name for config_find_domain() */
	size_t ndomains;
	struct config_queue *queues;	/* sorted by name */
	size_t nqueues;
};

struct config_error {
	int line;			/* 0 when not tied to a line */
	char *msg;
};

struct config_errors {
	struct config_error *v;
	size_t n;
};

/*
 * config_parse - text to config.  Returns NULL and fills errs (every error
 * found, not just the first) when the text is invalid; the caller frees
 * errs with config_errors_free().  name is used in messages only.
 * Pure: no I/O (domains_file is not read here; see config_load), and an
 * unset hostname becomes "localhost".
 * Each message is "name:line: text" ("line N: text" when name is NULL,
 * "name: text" for line 0), sorted by line; at most 100, the last of them
 * then saying that the parse stopped.  errs is left alone on success.
 */
struct config *config_parse(const char *text, size_t len, const char *name,
    struct config_errors *errs);

/*
 * config_load - read path (and domains_file, if set) and parse.  Messages
 * are "path:line: text"; those of the domains_file carry its own path and
 * lines; a file that cannot be read gives "path: cannot open: reason" with
 * line 0.  Each file is capped at 16 MiB.  Relative paths, domains_file's
 * included, are relative to the working directory.  NULL on any error,
 * with errs filled.
 */
struct config *config_load(const char *path, struct config_errors *errs);

void config_errors_free(struct config_errors *errs);

/*
 * config_rcpt_parse - a recipients file: one address per line ("user@dom",
 * or "@dom" for every user of dom), '#' comments, blank lines; every
 * domain must be d or (with subdomains) under it.  Pure.  Fills d's table,
 * or returns false with the errors ("name:line: text") in errs.
 */
bool config_rcpt_parse(struct config_domain *d, const char *text, size_t len,
    const char *name, struct config_errors *errs);
/* config_rcpt_known - addr (local@domain) may receive mail: d has no
 * table, or the table lists it or its "@domain" */
bool config_rcpt_known(const struct config_domain *d, const char *addr);

struct config *config_ref(struct config *c);
void config_unref(struct config *c);

/*
 * config_find_domain - the [domain] that serves a lower-case domain: an
 * exact match, or the nearest parent domain that has subdomains = yes.
 * NULL when the domain is not served.  O(labels * log(domains)).
 */
const struct config_domain *config_find_domain(const struct config *c,
    const char *domain);

const struct config_queue *config_find_queue(const struct config *c,
    const char *name);

/* config_net_match - the address (family, 4 or 16 bytes) is in the list;
 * an IPv4-mapped IPv6 address (::ffff:a.b.c.d) also matches IPv4 networks */
bool config_net_match(const struct config_netlist *l, int family,
    const void *addr);

/*
 * The schema (config_schema.c): one row per key and section kind.  A key
 * valid in two kinds of section (etrn_clients) has one row for each.
 */
enum config_type {
	CONFIG_T_STRING,		/* one word, checked by the row's check */
	CONFIG_T_PATH,			/* file name; relative to the working directory */
	CONFIG_T_UINT,			/* decimal, min..max */
	CONFIG_T_SIZE,			/* bytes; k/M/G suffix (1024-based) */
	CONFIG_T_DURATION,		/* seconds; s/m/h/d/w suffix */
	CONFIG_T_BOOL,			/* yes/no, true/false, on/off, 1/0 */
	CONFIG_T_NETLIST,		/* "any", "none", or networks */
	CONFIG_T_LISTEN,		/* "addr:port" or "[v6]:port" list, or "none" */
	CONFIG_T_ENUM,			/* one of the row's words */
	CONFIG_T_ROUTE,			/* "mx", "odmr", "[host]:port" */
	CONFIG_T_STRLIST,		/* domain names */
};

enum config_scope {
	CONFIG_S_GLOBAL = 1,		/* before the first section */
	CONFIG_S_DOMAIN = 2,		/* in a [domain NAME] section */
	CONFIG_S_QUEUE = 4,		/* in a [queue NAME] section */
};

struct config_key;

/* Parse the NUL-terminated value v (len bytes) into the row's field of obj;
 * false with the reason in why. */
typedef bool config_set_fn(const struct config_key *k, void *obj,
    const char *v, size_t len, struct buf *why);

struct config_key {
	const char *name;
	enum config_type type;
	enum config_scope scope;
	size_t off;			/* field in struct config, config_domain or config_queue */
	size_t noff;			/* list types: the count beside it */
	config_set_fn *set;		/* NULL: the type's parser */
	/* STRING: a check of the value beyond being one word; false with
	 * the reason in why */
	bool (*check)(const char *v, size_t len, struct buf *why);
	const char *def;		/* default as it would be written; NULL: unset */
	unsigned long long min, max;	/* numbers: bounds; lists: max entries (0: any) */
	const char *const *words;	/* ENUM: the words, indexed by value */
	bool reloadable;		/* SIGHUP may change it */
	bool required;			/* must be given in its section */
	const char *help;
};

extern const struct config_key config_schema[];
extern const size_t config_schema_len;

/* config_schema_find - the row of a key (len bytes) valid in scope, or NULL */
const struct config_key *config_schema_find(const char *name, size_t len,
    unsigned scope);

/* config_value_set - parse a value with the row's parser (see config_set_fn) */
bool config_value_set(const struct config_key *k, void *obj, const char *v,
    size_t len, struct buf *why);

/* config_value_free - free what the row's field of obj owns, zero it */
void config_value_free(const struct config_key *k, void *obj);

/* config_value_print - the field's value as it would be written, or
 * nothing when it is unset */
void config_value_print(const struct config_key *k, const void *obj,
    struct buf *out);

/* config_check_domain_name - LDH host name, labels 1..63, total <= 253, no
 * trailing dot, last label not all digits; NULL or why not */
const char *config_check_domain_name(const char *s, size_t len);

/* config_schema_describe - every key: name, section, type, default, bounds,
 * reloadable, help; for documentation and "etrnd -h config" */
void config_schema_describe(struct buf *out);

/*
 * config_print - the effective configuration in the file's own syntax,
 * defaults included; parsing the output gives an equal config.
 */
void config_print(const struct config *c, struct buf *out);

/*
 * config_fixed_changes - the keys that SIGHUP cannot change (reloadable =
 * no in the schema) whose values differ between old and new, appended to
 * names separated by spaces; returns how many.
 */
size_t config_fixed_changes(const struct config *old, const struct config *new,
    struct buf *names);

/*
 * Parsing in steps, as config_load() does it: feed the main text, then
 * (domains_only) the domains_file text, then finish.  Pure like
 * config_parse().  config_parser_finish() runs the cross-checks, frees the
 * parser and returns the config, or NULL with every error in errs (given
 * to config_parser_new(), may be NULL).  default_hostname is used when
 * hostname is not set (NULL: "localhost").
 */
struct config_parser;
struct config_parser *config_parser_new(struct config_errors *errs);
void config_parser_feed(struct config_parser *p, const char *text, size_t len,
    const char *name, bool domains_only);
/* config_parser_domains_file - domains_file once fed, or NULL; valid until
 * config_parser_finish() */
const char *config_parser_domains_file(const struct config_parser *p);
/* config_parser_error - an error not tied to a line (I/O); printf-style */
void config_parser_error(struct config_parser *p, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
struct config *config_parser_finish(struct config_parser *p,
    const char *default_hostname);

/* Used inside the module (config_common.c). */
void config_domain_clear(struct config_domain *d);
void config_queue_clear(struct config_queue *q);
/* config_free - free c whatever its refcnt */
void config_free(struct config *c);

#endif
