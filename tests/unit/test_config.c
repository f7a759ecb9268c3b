/* test_config - the configuration schema, parser, lookups and loader */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config/config.h"
#include "util/buf.h"

/* ---- helpers ---- */

/* dump - print errors, to see why a test failed */
static void dump(const struct config_errors *e)
{
	size_t i;

	for (i = 0; i < e->n; i++)
		fprintf(stderr, "  error %d: %s\n", e->v[i].line, e->v[i].msg);
}

/* ok - text that must parse without errors */
static struct config *ok(const char *text)
{
	struct config_errors e = { 0 };
	struct config *c = config_parse(text, strlen(text), NULL, &e);

	if (c == NULL || e.n) {
		fprintf(stderr, "unexpected errors for:\n%s\n", text);
		dump(&e);
	}
	assert_non_null(c);
	assert_int_equal(e.n, 0);
	config_errors_free(&e);
	return c;
}

/* has_error - an error at line whose message contains sub */
static bool has_error(const struct config_errors *e, int line,
    const char *sub)
{
	size_t i;

	for (i = 0; i < e->n; i++)
		if (e->v[i].line == line && strstr(e->v[i].msg, sub))
			return true;
	return false;
}

/* bad_n - text (len bytes) that must fail with exactly one error, at line,
 * whose message contains sub */
static void bad_n(const char *text, size_t len, int line, const char *sub)
{
	struct config_errors e = { 0 };
	struct config *c = config_parse(text, len, NULL, &e);

	if (c != NULL || e.n != 1 || !has_error(&e, line, sub)) {
		fprintf(stderr, "expected one error at line %d with \"%s\" "
		    "for:\n%.*s\n", line, sub, (int)len, text);
		dump(&e);
	}
	assert_null(c);
	assert_int_equal(e.n, 1);
	assert_true(has_error(&e, line, sub));
	config_errors_free(&e);
}

static void bad(const char *text, int line, const char *sub)
{
	bad_n(text, strlen(text), line, sub);
}

#define BASE "queue_dir = /q\n"
#define DOM BASE "[domain example.org]\n"

/* global value: line 2 of BASE + "key = value" */
static struct config *gval(const char *key, const char *value, bool good,
    const char *sub)
{
	struct buf b = BUF_INIT;
	struct config *c = NULL;

	buf_printf(&b, BASE "%s = %s\n", key, value);
	if (good)
		c = ok(buf_cstr(&b));
	else
		bad(buf_cstr(&b), 2, sub ? sub : key);
	buf_free(&b);
	return c;
}

/* gok / gbad - a global value that is accepted / refused */
static void gok(const char *key, const char *value)
{
	config_unref(gval(key, value, true, NULL));
}

static void gbad(const char *key, const char *value, const char *sub)
{
	gval(key, value, false, sub);
}

/* dval - a [domain example.org] value on line 3 */
static struct config *dval(const char *key, const char *value, bool good,
    const char *sub)
{
	struct buf b = BUF_INIT;
	struct config *c = NULL;

	buf_printf(&b, DOM "%s = %s\n", key, value);
	if (good)
		c = ok(buf_cstr(&b));
	else
		bad(buf_cstr(&b), 3, sub ? sub : key);
	buf_free(&b);
	return c;
}

static void dbad(const char *key, const char *value, const char *sub)
{
	dval(key, value, false, sub);
}

/* ---- schema ---- */

static void test_schema_table(void **state)
{
	size_t i, j;
	struct buf d = BUF_INIT;

	config_schema_describe(&d);
	for (i = 0; i < config_schema_len; i++) {
		const struct config_key *k = &config_schema[i];
		const char *s;

		assert_non_null(k->help);
		assert_true(strlen(k->help) > 10);
		for (s = k->name; *s; s++)
			assert_true((*s >= 'a' && *s <= 'z') || *s == '_' ||
			    (*s >= '0' && *s <= '9'));
		assert_ptr_equal(config_schema_find(k->name, strlen(k->name),
		    k->scope), k);
		for (j = 0; j < i; j++)
			assert_false(strcmp(k->name, config_schema[j].name) == 0 &&
			    (k->scope & config_schema[j].scope));
		assert_non_null(strstr(buf_cstr(&d), k->name));
		if (k->type == CONFIG_T_UINT || k->type == CONFIG_T_SIZE ||
		    k->type == CONFIG_T_DURATION)
			assert_true(k->min <= k->max && k->max > 0);
	}
	assert_non_null(strstr(buf_cstr(&d), "restart to change"));
	assert_non_null(strstr(buf_cstr(&d), "10240000"));
	assert_null(config_schema_find("nosuchkey", 9, CONFIG_S_GLOBAL));
	assert_null(config_schema_find("route", 5, CONFIG_S_GLOBAL));
	assert_non_null(config_schema_find("route", 5, CONFIG_S_DOMAIN));
	buf_free(&d);
}

/* every default parses with its own row (apply_defaults aborts if not) */
static void test_schema_defaults_parse(void **state)
{
	struct config c;
	struct config_domain d;
	struct config_queue q;
	struct buf why = BUF_INIT;
	size_t i;

	for (i = 0; i < config_schema_len; i++) {
		const struct config_key *k = &config_schema[i];
		void *obj = k->scope == CONFIG_S_GLOBAL ? (void *)&c :
		    k->scope == CONFIG_S_DOMAIN ? (void *)&d : (void *)&q;

		memset(&c, 0, sizeof(c));
		memset(&d, 0, sizeof(d));
		memset(&q, 0, sizeof(q));
		if (k->def == NULL)
			continue;
		assert_true(config_value_set(k, obj, k->def, strlen(k->def),
		    &why));
		config_value_free(k, obj);
	}
	buf_free(&why);
}

static void test_defaults(void **state)
{
	struct config *c = ok("queue_dir = /var/spool/etrnd\n");

	assert_int_equal(c->refcnt, 1);
	assert_string_equal(c->hostname, "localhost");
	assert_int_equal(c->nlisten, 1);
	assert_string_equal(c->listen[0].host, "127.0.0.1");
	assert_int_equal(c->listen[0].port, 2525);
	assert_int_equal(c->nodmr_listen, 0);
	assert_int_equal(c->nmetrics_listen, 0);
	assert_string_equal(c->queue_dir, "/var/spool/etrnd");
	assert_string_equal(c->control, "/var/spool/etrnd/control.sock");
	assert_null(c->user);
	assert_null(c->tls_cert);
	assert_null(c->tls_key);
	assert_null(c->dns_server);
	assert_int_equal(c->etrn_clients.n, 0);
	assert_null(c->users_file);
	assert_null(c->domains_file);
	assert_int_equal(c->max_connections, 1000);
	assert_int_equal(c->max_connections_per_client, 50);
	assert_int_equal(c->message_size_limit, 10240000);
	assert_int_equal(c->max_recipients, 1000);
	assert_int_equal(c->hop_limit, 50);
	assert_int_equal(c->hard_error_limit, 20);
	assert_int_equal(c->idle_timeout, 300);
	assert_int_equal(c->data_timeout, 600);
	assert_int_equal(c->body_memory_limit, 256 * 1024);
	assert_int_equal(c->ndomains, 0);
	assert_int_equal(c->nqueues, 0);
	config_unref(c);

	c = ok("queue_dir = run/queue/\n");
	assert_string_equal(c->control, "run/queue/control.sock");
	config_unref(c);

	c = ok(BASE "control = /run/etrnd.sock\n[domain example.org]\n");
	assert_string_equal(c->control, "/run/etrnd.sock");
	assert_int_equal(c->ndomains, 1);
	assert_string_equal(c->domains[0].name, "example.org");
	assert_int_equal(c->domains[0].line, 3);
	assert_int_equal(c->domains[0].route, CONFIG_ROUTE_MX);
	assert_null(c->domains[0].route_host);
	assert_int_equal(c->domains[0].mode, CONFIG_MODE_RETRY);
	assert_false(c->domains[0].has_etrn_clients);
	assert_int_equal(c->domains[0].tls, CONFIG_TLS_MAY);
	assert_false(c->domains[0].subdomains);
	assert_int_equal(c->domains[0].lifetime, 5 * 86400);
	assert_null(c->domains[0].recipients);
	config_unref(c);
}

/* ---- value types ---- */

static void test_uint(void **state)
{
	struct config *c;

	c = gval("max_connections", "1", true, NULL);
	assert_int_equal(c->max_connections, 1);
	config_unref(c);
	c = gval("max_connections", "1000000", true, NULL);
	assert_int_equal(c->max_connections, 1000000);
	config_unref(c);
	gbad("max_connections", "0", "out of range (expected 1 to 1000000)");
	gbad("max_connections", "1000001", "out of range");
	gbad("max_connections", "-1", "not a whole number");
	gbad("max_connections", "+5", "not a whole number");
	gbad("max_connections", "1k", "not a whole number");
	gbad("max_connections", "ten", "not a whole number");
	gbad("max_connections", "1 2", "not a whole number");
	gbad("max_connections", "99999999999999999999999", "out of range");
	gbad("max_connections", "4294967297", "out of range");

	gbad("max_recipients", "99", "out of range (expected 100 to 100000)");
	gok("max_recipients", "100");
	gok("max_recipients", "100000");
	gbad("max_recipients", "100001", "out of range");
	gok("max_connections_per_client", "1");
	gbad("max_connections_per_client", "0", "out of range");
	gok("hop_limit", "1000");
	gbad("hop_limit", "1001", "out of range");
	gbad("hop_limit", "0", "out of range");
	gok("hard_error_limit", "1");
	gbad("hard_error_limit", "1001", "out of range");
}

static void test_size(void **state)
{
	static const struct {
		const char *v;
		unsigned long long n;
	} good[] = {
		{ "10M", 10485760ULL }, { "10m", 10485760ULL },
		{ "10240000", 10240000ULL }, { "1k", 1024 }, { "1K", 1024 },
		{ "1024", 1024 }, { "2G", 2147483648ULL },
		{ "2g", 2147483648ULL }, { "2147483648", 2147483648ULL },
		{ "2048M", 2147483648ULL }, { "0001k", 1024 },
	};
	static const char *const out_of_range[] = {
		"1023", "2147483649", "3G", "2049M", "0", "0k",
		"99999999999999999999G",	/* too many digits */
		"17179869184G",			/* 2^34 G = 2^64: wraps to 0 */
		"18446744073709551615",		/* ULLONG_MAX */
		"18446744073709551616",		/* ULLONG_MAX + 1 */
	};
	static const char *const malformed[] = {
		"10MB", "10 M", "1.5M", "M", "-1k", "k10", "10T", "0x10",
		"10M ", "ten",
	};
	struct config *c;
	size_t i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		c = gval("message_size_limit", good[i].v, true, NULL);
		assert_int_equal(c->message_size_limit, good[i].n);
		config_unref(c);
	}
	for (i = 0; i < sizeof(out_of_range) / sizeof(out_of_range[0]); i++)
		gbad("message_size_limit", out_of_range[i],
		    "out of range (expected 1k to 2G)");
	/* "10M " has its space trimmed: it is good; the others are not */
	for (i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++) {
		if (strcmp(malformed[i], "10M ") == 0)
			continue;
		gbad("message_size_limit", malformed[i], "is not a size");
	}
	c = gval("body_memory_limit", "1k", true, NULL);
	assert_int_equal(c->body_memory_limit, 1024);
	config_unref(c);
	c = gval("body_memory_limit", "1G", true, NULL);
	assert_int_equal(c->body_memory_limit, 1ULL << 30);
	config_unref(c);
	gbad("body_memory_limit", "1025M", "out of range (expected 1k to 1G)");
	gbad("body_memory_limit", "512", "out of range");
}

static void test_duration(void **state)
{
	static const struct {
		const char *v;
		long long n;
	} good[] = {
		{ "300", 300 }, { "300s", 300 }, { "5m", 300 }, { "1h", 3600 },
		{ "3600", 3600 }, { "1", 1 }, { "60m", 3600 },
	};
	struct config *c;
	size_t i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		c = gval("idle_timeout", good[i].v, true, NULL);
		assert_int_equal(c->idle_timeout, good[i].n);
		config_unref(c);
	}
	gbad("idle_timeout", "0", "out of range (expected 1s to 1h)");
	gbad("idle_timeout", "3601", "out of range");
	gbad("idle_timeout", "61m", "out of range");
	gbad("idle_timeout", "2h", "out of range");
	gbad("idle_timeout", "1d", "out of range");
	gbad("idle_timeout", "99999999999999999999w", "out of range");
	gbad("idle_timeout", "30500568904943664w", "out of range"); /* wraps */
	gbad("idle_timeout", "5M", "is not a duration");
	gbad("idle_timeout", "1y", "is not a duration");
	gbad("idle_timeout", "1h30m", "is not a duration");
	gbad("idle_timeout", "-5", "is not a duration");
	gbad("idle_timeout", "5 m", "is not a duration");
	c = gval("data_timeout", "10m", true, NULL);
	assert_int_equal(c->data_timeout, 600);
	config_unref(c);

	c = dval("lifetime", "28d", true, NULL);
	assert_int_equal(c->domains[0].lifetime, 28 * 86400);
	config_unref(c);
	c = dval("lifetime", "2w", true, NULL);
	assert_int_equal(c->domains[0].lifetime, 14 * 86400);
	config_unref(c);
	c = dval("lifetime", "365d", true, NULL);
	assert_int_equal(c->domains[0].lifetime, 365 * 86400);
	config_unref(c);
	c = dval("lifetime", "60", true, NULL);
	assert_int_equal(c->domains[0].lifetime, 60);
	config_unref(c);
	dbad("lifetime", "366d", "out of range (expected 1s to 365d)");
	dbad("lifetime", "0", "out of range");
	c = dval("lifetime", "2s", true, NULL);	/* short lifetimes: tests */
	assert_int_equal(c->domains[0].lifetime, 2);
	config_unref(c);
	dbad("lifetime", "53w", "out of range");
}

static void test_bool(void **state)
{
	static const char *const yes[] = { "yes", "YES", "true", "on", "1", "Yes" };
	static const char *const no[] = { "no", "NO", "false", "off", "0" };
	static const char *const neither[] = { "maybe", "2", "y", "n", "yess",
	    "yes no", "enable" };
	struct config *c;
	size_t i;

	for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		c = dval("subdomains", yes[i], true, NULL);
		assert_true(c->domains[0].subdomains);
		config_unref(c);
	}
	for (i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
		c = dval("subdomains", no[i], true, NULL);
		assert_false(c->domains[0].subdomains);
		config_unref(c);
	}
	for (i = 0; i < sizeof(neither) / sizeof(neither[0]); i++)
		dbad("subdomains", neither[i], "is not yes or no");
}

static void test_enum(void **state)
{
	struct config *c;

	c = dval("mode", "hold", true, NULL);
	assert_int_equal(c->domains[0].mode, CONFIG_MODE_HOLD);
	config_unref(c);
	c = dval("mode", "RETRY", true, NULL);
	assert_int_equal(c->domains[0].mode, CONFIG_MODE_RETRY);
	config_unref(c);
	dbad("mode", "held", "is not one of: retry hold");
	dbad("mode", "hold retry", "is not one of");
	c = dval("tls", "none", true, NULL);
	assert_int_equal(c->domains[0].tls, CONFIG_TLS_NONE);
	config_unref(c);
	c = dval("tls", "must", true, NULL);
	assert_int_equal(c->domains[0].tls, CONFIG_TLS_MUST);
	config_unref(c);
	c = dval("tls", "may", true, NULL);
	assert_int_equal(c->domains[0].tls, CONFIG_TLS_MAY);
	config_unref(c);
	dbad("tls", "required", "is not one of: may none must");
}

static void test_route(void **state)
{
	static const struct {
		const char *v;
		const char *host;
		unsigned port;
	} stat[] = {
		{ "[127.0.0.1]:2526", "127.0.0.1", 2526 },
		{ "[127.0.0.1]", "127.0.0.1", 25 },
		{ "127.0.0.1:2526", "127.0.0.1", 2526 },
		{ "127.0.0.1", "127.0.0.1", 25 },
		{ "[mail.example.net]", "mail.example.net", 25 },
		{ "[Mail.Example.NET]:587", "mail.example.net", 587 },
		{ "mail.example.net:587", "mail.example.net", 587 },
		{ "mail.example.net", "mail.example.net", 25 },
		{ "[::1]:2526", "::1", 2526 },
		{ "[2001:db8::25]", "2001:db8::25", 25 },
		{ "[::1]:65535", "::1", 65535 },
		{ "[::1]:1", "::1", 1 },
	};
	static const struct {
		const char *v;
		const char *why;
	} wrong[] = {
		{ "::1", "in brackets" },
		{ "2001:db8::25:25", "in brackets" },
		{ "[::1", "missing ']'" },
		{ "[::1]:0", "port must be a number from 1 to 65535" },
		{ "[::1]:65536", "port must be" },
		{ "[::1]:", "port must be" },
		{ "host:", "port must be" },
		{ "host:abc", "port must be" },
		{ "[a.example]25", "port must be" },
		{ "[a.example]:25x", "port must be" },
		{ "bad_host", "character not allowed" },
		{ "[]:25", "host is missing" },
		{ ":25", "host is missing" },
		{ "mx odmr", "character not allowed" },
		{ "host.example.", "trailing dot" },
	};
	struct config *c;
	size_t i;

	c = dval("route", "mx", true, NULL);
	assert_int_equal(c->domains[0].route, CONFIG_ROUTE_MX);
	config_unref(c);
	c = dval("route", "ODMR", true, NULL);
	assert_int_equal(c->domains[0].route, CONFIG_ROUTE_ODMR);
	assert_null(c->domains[0].route_host);
	config_unref(c);
	for (i = 0; i < sizeof(stat) / sizeof(stat[0]); i++) {
		c = dval("route", stat[i].v, true, NULL);
		assert_int_equal(c->domains[0].route, CONFIG_ROUTE_STATIC);
		assert_string_equal(c->domains[0].route_host, stat[i].host);
		assert_int_equal(c->domains[0].route_port, stat[i].port);
		config_unref(c);
	}
	for (i = 0; i < sizeof(wrong) / sizeof(wrong[0]); i++)
		dbad("route", wrong[i].v, wrong[i].why);
}

/* ODMR without accounts is a configuration error, caught by -n */
static void test_odmr_needs_users(void **state)
{
	bad(BASE "odmr_listen = 127.0.0.1:366\n", 2, "users_file is not");
}

static void test_listen(void **state)
{
	struct config *c;

	c = gval("listen", "[::1]:25 0.0.0.0:25  192.0.2.1:587", true, NULL);
	assert_int_equal(c->nlisten, 3);
	assert_string_equal(c->listen[0].host, "::1");
	assert_int_equal(c->listen[0].port, 25);
	assert_string_equal(c->listen[1].host, "0.0.0.0");
	assert_string_equal(c->listen[2].host, "192.0.2.1");
	assert_int_equal(c->listen[2].port, 587);
	config_unref(c);
	c = gval("listen", "none", true, NULL);
	assert_int_equal(c->nlisten, 0);
	assert_null(c->listen);
	config_unref(c);
	c = ok(BASE "users_file = /u\nodmr_listen = 0.0.0.0:366\n");
	assert_int_equal(c->nodmr_listen, 1);
	assert_int_equal(c->odmr_listen[0].port, 366);
	config_unref(c);
	c = gval("metrics_listen", "[::1]:9025", true, NULL);
	assert_int_equal(c->nmetrics_listen, 1);
	config_unref(c);

	gbad("listen", "localhost:25", "must be numeric");
	gbad("listen", "127.0.0.1", "port is required");
	gbad("listen", "::1:25", "in brackets");
	gbad("listen", "[::1]:70000", "port must be");
	gbad("listen", "127.0.0.1:0", "port must be");
	gbad("listen", "127.0.0.1:25 none", "none must stand alone");
	gbad("listen", "1.2.3:25", "must be numeric");
	gbad("metrics_listen", "127.0.0.1:1 127.0.0.1:2", "at most 1 entry");
	/* the same address twice, on one line or across keys: one error,
	 * on the later line */
	bad(BASE "listen = 127.0.0.1:25 127.0.0.1:25\n", 2,
	    "127.0.0.1:25 is already in listen");
	bad(BASE "users_file = /u\nodmr_listen = 127.0.0.1:2525\n", 3,
	    "odmr_listen: 127.0.0.1:2525 is already in listen");
	bad(BASE "listen = [::1]:25\nmetrics_listen = [0::1]:25\n", 3,
	    "metrics_listen: [0::1]:25 is already in listen");
	c = ok(BASE "listen = 127.0.0.1:25\nodmr_listen = 127.0.0.1:366\n"
	    "users_file = /u\n");
	config_unref(c);
}

static void test_netlist_parse(void **state)
{
	struct config *c;
	char a[64];

	c = gval("etrn_clients", "192.0.2.0/24 2001:db8::/32 198.51.100.7",
	    true, NULL);
	assert_int_equal(c->etrn_clients.n, 3);
	assert_int_equal(c->etrn_clients.v[0].family, AF_INET);
	assert_int_equal(c->etrn_clients.v[0].prefix, 24);
	assert_int_equal(c->etrn_clients.v[1].family, AF_INET6);
	assert_int_equal(c->etrn_clients.v[1].prefix, 32);
	assert_int_equal(c->etrn_clients.v[2].prefix, 32);
	config_unref(c);

	c = gval("etrn_clients", "any", true, NULL);
	assert_int_equal(c->etrn_clients.n, 1);
	assert_int_equal(c->etrn_clients.v[0].family, 0);
	config_unref(c);
	c = gval("etrn_clients", "none", true, NULL);
	assert_int_equal(c->etrn_clients.n, 0);
	config_unref(c);
	c = gval("etrn_clients", "::1", true, NULL);
	assert_int_equal(c->etrn_clients.v[0].prefix, 128);
	config_unref(c);

	/* an IPv4-mapped network is stored as the IPv4 network */
	c = gval("etrn_clients", "::ffff:192.0.2.0/120", true, NULL);
	assert_int_equal(c->etrn_clients.v[0].family, AF_INET);
	assert_int_equal(c->etrn_clients.v[0].prefix, 24);
	inet_ntop(AF_INET, c->etrn_clients.v[0].addr, a, sizeof(a));
	assert_string_equal(a, "192.0.2.0");
	config_unref(c);

	gbad("etrn_clients", "192.0.2.7/24",
	    "has host bits set (the network is 192.0.2.0/24)");
	gbad("etrn_clients", "2001:db8::1/32",
	    "has host bits set (the network is 2001:db8::/32)");
	gbad("etrn_clients", "192.0.2.0/33", "prefix length must be 0 to 32");
	gbad("etrn_clients", "::/129", "prefix length must be 0 to 128");
	gbad("etrn_clients", "10.0.0.0/", "prefix length");
	gbad("etrn_clients", "10.0.0.0/x", "prefix length");
	gbad("etrn_clients", "10.0.0.0/-1", "prefix length");
	gbad("etrn_clients", "300.1.1.1", "not an address or network");
	gbad("etrn_clients", "example.org", "not an address or network");
	gbad("etrn_clients", "/8", "not an address or network");
	gbad("etrn_clients", "any 10.0.0.0/8", "must stand alone");
	gbad("etrn_clients", "10.0.0.0/8 none", "must stand alone");
}

/* match - the netlist of "etrn_clients = v" against a printed address */
static bool match(const char *v, const char *addr)
{
	struct buf b = BUF_INIT;
	struct config *c;
	uint8_t a[16];
	int family = strchr(addr, ':') ? AF_INET6 : AF_INET;
	bool r;

	buf_printf(&b, BASE "etrn_clients = %s\n", v);
	c = ok(buf_cstr(&b));
	assert_int_equal(inet_pton(family, addr, a), 1);
	r = config_net_match(&c->etrn_clients, family, a);
	config_unref(c);
	buf_free(&b);
	return r;
}

static void test_net_match(void **state)
{
	const char *l = "192.0.2.0/24 2001:db8::/32 198.51.100.7";

	assert_true(match(l, "192.0.2.0"));
	assert_true(match(l, "192.0.2.255"));
	assert_false(match(l, "192.0.3.1"));
	assert_false(match(l, "192.0.1.255"));
	assert_true(match(l, "198.51.100.7"));	/* /32 */
	assert_false(match(l, "198.51.100.8"));
	assert_true(match(l, "2001:db8::1"));
	assert_true(match(l, "2001:db8:ffff:ffff::1"));
	assert_false(match(l, "2001:db9::1"));
	/* mapped addresses match the IPv4 networks */
	assert_true(match(l, "::ffff:192.0.2.55"));
	assert_true(match(l, "::ffff:198.51.100.7"));
	assert_false(match(l, "::ffff:10.0.0.1"));
	assert_true(match("::ffff:192.0.2.0/120", "192.0.2.9"));
	assert_true(match("::ffff:192.0.2.0/120", "::ffff:192.0.2.9"));

	assert_true(match("0.0.0.0/0", "203.0.113.9"));
	assert_true(match("0.0.0.0/0", "::ffff:203.0.113.9"));
	assert_false(match("0.0.0.0/0", "2001:db8::1"));
	assert_true(match("::/0", "2001:db8::1"));
	assert_false(match("::/0", "203.0.113.9"));
	assert_true(match("::1/128", "::1"));
	assert_false(match("::1/128", "::2"));
	assert_false(match("::1", "127.0.0.1"));
	assert_true(match("10.0.0.128/25", "10.0.0.200"));
	assert_false(match("10.0.0.128/25", "10.0.0.127"));
	assert_true(match("10.0.0.2/31", "10.0.0.3"));
	assert_false(match("10.0.0.2/31", "10.0.0.4"));
	assert_true(match("2001:db8::/33", "2001:db8:7fff::1"));
	assert_false(match("2001:db8::/33", "2001:db8:8000::1"));

	assert_true(match("any", "192.0.2.1"));
	assert_true(match("any", "2001:db8::1"));
	assert_true(match("any", "::ffff:1.2.3.4"));
	assert_false(match("none", "192.0.2.1"));
	assert_false(match("none", "::1"));
}

static void test_domain_etrn_clients(void **state)
{
	struct config *c;

	c = ok(BASE "etrn_clients = 10.0.0.0/8\n"
	    "[domain a.example]\n"
	    "[domain b.example]\netrn_clients = none\n"
	    "[domain c.example]\netrn_clients = any\n");
	assert_int_equal(c->etrn_clients.n, 1);
	assert_false(c->domains[0].has_etrn_clients);
	assert_true(c->domains[1].has_etrn_clients);
	assert_int_equal(c->domains[1].etrn_clients.n, 0);
	assert_true(c->domains[2].has_etrn_clients);
	assert_int_equal(c->domains[2].etrn_clients.n, 1);
	config_unref(c);
}

static void test_strings(void **state)
{
	struct config *c;
	char label[80], longname[400];

	c = gval("hostname", "relay.example.net", true, NULL);
	assert_string_equal(c->hostname, "relay.example.net");
	config_unref(c);
	gok("hostname", "relay");
	gok("hostname", "a-b.c0.example");
	gbad("hostname", "relay.example.net.", "trailing dot");
	gbad("hostname", "-relay.example", "starting with '-'");
	gbad("hostname", "relay-.example", "ending in '-'");
	gbad("hostname", "relay..example", "empty label");
	gbad("hostname", "relay example", "character not allowed");
	gbad("hostname", "192.0.2.1", "all digits");
	memset(label, 'a', 64);
	label[64] = '\0';
	gbad("hostname", label, "longer than 63");
	label[63] = '\0';
	gok("hostname", label);
	/* 4 * 63 + 3 dots = 255 > 253 */
	snprintf(longname, sizeof(longname), "%s.%s.%s.%s", label, label,
	    label, label);
	gbad("hostname", longname, "longer than 253");
	/* 63 + 63 + 63 + 61 + 3 = 253 */
	snprintf(longname, sizeof(longname), "%s.%s.%s.%.61s", label, label,
	    label, label);
	gok("hostname", longname);

	c = gval("user", "etrnd", true, NULL);
	assert_string_equal(c->user, "etrnd");
	config_unref(c);
	gok("user", "mail_relay-1.x");
	gbad("user", "-etrnd", "starting with '-'");
	gbad("user", "etrn d", "not allowed in a user name");
	gbad("user", "root;rm", "not allowed");
	gbad("user", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "longer than 32");

	c = gval("dns_server", "127.0.0.1:53", true, NULL);
	assert_string_equal(c->dns_server, "127.0.0.1:53");
	config_unref(c);
	gok("dns_server", "127.0.0.1");
	gok("dns_server", "[::1]:5353");
	gok("dns_server", "[2001:db8::53]");
	gbad("dns_server", "::1", "in brackets");
	gbad("dns_server", "dns.example:53", "must be numeric");
	gbad("dns_server", "127.0.0.1:99999", "port must be");

	/* a path is the rest of the line: spaces inside are kept */
	c = gval("users_file", "/etc/etrnd/my users", true, NULL);
	assert_string_equal(c->users_file, "/etc/etrnd/my users");
	config_unref(c);
	c = dval("recipients", "relative/example.org.rcpt", true, NULL);
	assert_string_equal(c->domains[0].recipients,
	    "relative/example.org.rcpt");
	config_unref(c);
	c = ok(BASE "tls_cert = /etc/c.pem\ntls_key = /etc/k.pem\n");
	assert_string_equal(c->tls_cert, "/etc/c.pem");
	assert_string_equal(c->tls_key, "/etc/k.pem");
	config_unref(c);
}

/* ---- syntax ---- */

static void test_syntax(void **state)
{
	struct config *c;
	const char crlf[] = "queue_dir = /q\r\nhostname = a.example\r\n"
	    "[domain example.org]\r\nmode = hold\r\n";

	c = ok("queue_dir=/q\nhostname=h.example\n");
	assert_string_equal(c->hostname, "h.example");
	config_unref(c);
	c = ok("\n\n   # comment\n\t queue_dir \t=\t /q  \t\n# end");
	assert_string_equal(c->queue_dir, "/q");
	config_unref(c);
	c = ok("queue_dir = /q#1\n");	/* '#' inside a value */
	assert_string_equal(c->queue_dir, "/q#1");
	config_unref(c);
	c = ok("queue_dir = /q #1\n");
	assert_string_equal(c->queue_dir, "/q");
	config_unref(c);
	c = ok("queue_dir = /q\t# tab before the comment\n");
	assert_string_equal(c->queue_dir, "/q");
	config_unref(c);
	c = ok(crlf);
	assert_string_equal(c->hostname, "a.example");
	assert_int_equal(c->domains[0].mode, CONFIG_MODE_HOLD);
	config_unref(c);
	c = ok(BASE "[ domain \t Example.ORG ]   # comment\n"
	    "[queue  DialUp]\ndomains = EXAMPLE.org\n");
	assert_string_equal(c->domains[0].name, "example.org");
	assert_string_equal(c->queues[0].name, "dialup");
	assert_string_equal(c->queues[0].domains[0], "example.org");
	config_unref(c);
	c = ok("queue_dir = /q");	/* no final newline */
	config_unref(c);

	bad(BASE "hostname =#comment\n", 2, "hostname: a value is expected");
	bad(BASE "hostname =\n", 2, "hostname: a value is expected");
	bad(BASE "hostname = # comment\n", 2, "a value is expected");
	bad(BASE "hostname\n", 2, "expected \"hostname = value\"");
	bad(BASE "hostname relay\n", 2, "expected \"hostname = value\"");
	bad(BASE "= relay\n", 2, "is not a key");
	bad(BASE "HostName = relay\n", 2, "\"HostName\" is not a key");
	bad(BASE "host-name = relay\n", 2, "\"host-name\" is not a key");
	bad(BASE "nosuchkey = 1\n", 2, "unknown key nosuchkey");
	bad(BASE "[domain example.org\n", 2, "ending with ']'");
	bad(BASE "[\n", 2, "ending with ']'");
	bad(BASE "[]\n", 2, "unknown section type \"\"");
}

static void test_line_limits(void **state)
{
	char text[5000];
	struct buf b = BUF_INIT;
	struct config *c;
	const char nul[] = "queue_dir = /q\nhostname = a\0b\nuser = x\n";

	bad_n(nul, sizeof(nul) - 1, 2, "NUL byte");
	bad(BASE "hostname = a\x01" "b\n", 2, "control character 0x01");
	bad(BASE "hostname = a\rb\n", 2, "control character 0x0d");
	bad(BASE "hostname = a\x7f\n", 2, "control character 0x7f");
	/* control characters in a comment are harmless */
	c = ok(BASE "# \x01\x02\n");
	config_unref(c);

	/* a line of exactly 4096 bytes is read; 4097 is refused */
	memset(text, 'x', sizeof(text));
	text[0] = '#';
	buf_printf(&b, BASE "%.*s\n", 4096, text);
	c = ok(b.p);
	config_unref(c);
	buf_reset(&b);
	buf_printf(&b, BASE "%.*s\n", 4097, text);
	bad_n(b.p, b.len, 2, "line longer than 4096 bytes");
	/* the CRLF does not count */
	buf_reset(&b);
	buf_printf(&b, BASE "%.*s\r\n", 4096, text);
	c = ok(b.p);
	config_unref(c);
	/* the last line, without a newline */
	buf_reset(&b);
	buf_printf(&b, BASE "%.*s", 4097, text);
	bad_n(b.p, b.len, 2, "line longer");
	buf_free(&b);
}

static void test_all_errors_in_one_pass(void **state)
{
	const char *text =
	    "queue_dir = /q\n"			/* 1 */
	    "max_connections = 0\n"		/* 2: bound */
	    "hostname = relay.example\n"	/* 3 */
	    "bogus = 1\n"			/* 4: unknown */
	    "[domain example.org]\n"		/* 5 */
	    "mode = hold\n"			/* 6 */
	    "tls = sometimes\n"			/* 7: bad enum */
	    "subdomains = yes\n";		/* 8 */
	struct config_errors e = { 0 };
	struct config *c = config_parse(text, strlen(text), "etrnd.conf", &e);

	assert_null(c);
	assert_int_equal(e.n, 3);
	assert_int_equal(e.v[0].line, 2);
	assert_int_equal(e.v[1].line, 4);
	assert_int_equal(e.v[2].line, 7);
	assert_string_equal(e.v[0].msg, "etrnd.conf:2: max_connections: "
	    "\"0\" is out of range (expected 1 to 1000000)");
	assert_string_equal(e.v[1].msg, "etrnd.conf:4: unknown key bogus");
	assert_non_null(strstr(e.v[2].msg, "etrnd.conf:7: tls:"));
	config_errors_free(&e);
	assert_int_equal(e.n, 0);
	assert_null(e.v);

	/* without a name: "line N: ..." */
	c = config_parse("x = 1\n", 6, NULL, &e);
	assert_null(c);
	assert_int_equal(e.n, 2);
	assert_string_equal(e.v[0].msg, "queue_dir is required");
	assert_int_equal(e.v[0].line, 0);
	assert_string_equal(e.v[1].msg, "line 1: unknown key x");
	config_errors_free(&e);
}

static void test_error_cap(void **state)
{
	struct buf b = BUF_INIT;
	struct config_errors e = { 0 };
	struct config *c;
	int i;

	for (i = 0; i < 150; i++)
		buf_puts(&b, "bogus = 1\n");
	c = config_parse(b.p, b.len, "f", &e);
	assert_null(c);
	assert_int_equal(e.n, 100);
	assert_int_equal(e.v[0].line, 1);
	assert_int_equal(e.v[98].line, 99);
	assert_non_null(strstr(e.v[99].msg, "too many errors"));
	config_errors_free(&e);
	buf_free(&b);
}

static void test_sections(void **state)
{
	struct config_errors e = { 0 };
	struct config *c;
	const char *dup = BASE "[domain example.org]\nmode = hold\n"
	    "[domain example.net]\n[domain EXAMPLE.org]\n";
	const char *dupq = BASE "[domain example.org]\n"
	    "[queue a]\ndomains = example.org\n"
	    "[queue a]\ndomains = example.org\n";

	bad(dup, 5, "[domain example.org] is already defined at line 2");
	bad(dupq, 5, "[queue a] is already defined at line 3");
	bad(BASE "[zone example.org]\nroute = mx\nmode = hold\n", 2,
	    "unknown section type \"zone\"");
	bad(BASE "[Domain example.org]\n", 2, "unknown section type");
	bad(BASE "[domain]\n", 2, "[domain] needs a name");
	bad(BASE "[domain a.example b.example]\n", 2, "one name");
	bad(BASE "[domain example.org.]\n", 2, "trailing dot");
	bad(BASE "[domain exa_mple.org]\n", 2, "character not allowed");
	bad(BASE "[domain 192.0.2.1]\n", 2, "all digits");
	bad(BASE "[queue bad/name]\n", 2, "a queue name is 1 to 64");
	bad(BASE "[queue]\n", 2, "a queue name");
	bad(BASE "[queue q]\n", 2, "[queue q] needs domains");
	/* a broken header's keys are still checked against its kind */
	c = config_parse(BASE "[domain -bad]\nmode = sometimes\n",
	    strlen(BASE "[domain -bad]\nmode = sometimes\n"), NULL, &e);
	assert_null(c);
	assert_int_equal(e.n, 2);
	assert_true(has_error(&e, 2, "label starting with '-'"));
	assert_true(has_error(&e, 3, "mode"));
	config_errors_free(&e);

	/* keys valid elsewhere */
	bad(DOM "queue_dir = /x\n", 3, "queue_dir is not valid in a [domain] "
	    "section: it goes before the first section");
	bad(BASE "route = mx\n", 2, "route is not valid before the first "
	    "section: it goes in a [domain] section");
	bad(DOM "domains = example.org\n", 3, "it goes in a [queue] section");
	bad(BASE "[domain example.org]\n[queue q]\ndomains = example.org\n"
	    "mode = hold\n", 5, "mode is not valid in a [queue] section");

	/* many domains come out sorted */
	c = ok(BASE "[domain c.example]\n[domain a.example]\n[domain b.example]\n"
	    "[queue z]\ndomains = a.example\n[queue y]\ndomains = b.example\n");
	assert_int_equal(c->ndomains, 3);
	assert_string_equal(c->domains[0].name, "a.example");
	assert_int_equal(c->domains[0].line, 3);
	assert_string_equal(c->domains[2].name, "c.example");
	assert_int_equal(c->nqueues, 2);
	assert_string_equal(c->queues[0].name, "y");
	assert_int_equal(c->queues[0].line, 7);
	config_unref(c);
}

static void test_repeated_keys(void **state)
{
	struct config *c;

	bad(BASE "listen = 127.0.0.1:25\nlisten = 127.0.0.1:26\n", 3,
	    "listen is already set at line 2 (a list goes on one line)");
	bad(BASE "hostname = a\nhostname = b\n", 3,
	    "hostname is already set at line 2");
	bad("queue_dir = /a\nqueue_dir = /b\n", 2, "already set at line 1");
	bad(DOM "mode = hold\nmode = hold\n", 4, "mode is already set at line 3");
	/* the same key in two sections is fine, and so is the global
	 * etrn_clients beside a domain's */
	c = ok(BASE "etrn_clients = any\n[domain a.example]\nmode = hold\n"
	    "etrn_clients = none\n[domain b.example]\nmode = hold\n");
	config_unref(c);
}

static void test_cross_checks(void **state)
{
	struct config *c;
	struct config_errors e = { 0 };

	bad("hostname = a\n", 0, "queue_dir is required");
	bad(BASE "tls_cert = /c.pem\n", 2,
	    "tls_cert is set but tls_key is not: set both or neither");
	bad(BASE "tls_key = /k.pem\n", 2,
	    "tls_key is set but tls_cert is not");
	bad(BASE "[domain example.org]\n[queue dialup]\n"
	    "domains = example.org unknown.example\n", 3,
	    "[queue dialup]: unknown.example is not a configured [domain]");
	bad(BASE "[domain example.org]\n[queue dialup]\n"
	    "domains = example.org example.org\n", 4, "listed twice");
	bad(BASE "[domain org]\nsubdomains = yes\n", 2,
	    "refused for a top-level domain");
	/* a subdomain served through subdomains = yes may be in a queue */
	c = ok(BASE "[domain example.org]\nsubdomains = yes\n"
	    "[queue q]\ndomains = shop.example.org example.org\n");
	assert_int_equal(c->queues[0].ndomains, 2);
	assert_string_equal(c->queues[0].domains[0], "shop.example.org");
	config_unref(c);
	bad(BASE "[domain example.org]\n[queue q]\n"
	    "domains = shop.example.org\n", 3, "not a configured [domain]");
	/* a single-label domain is fine without subdomains */
	c = ok(BASE "[domain localdomain]\n");
	config_unref(c);
	/* a domain inside one with subdomains = yes is allowed */
	c = ok(BASE "[domain example.org]\nsubdomains = yes\n"
	    "[domain a.example.org]\nmode = hold\n");
	config_unref(c);

	/* every cross-check error in one pass */
	c = config_parse("tls_key = k\n[queue q]\ndomains = nowhere.example\n",
	    strlen("tls_key = k\n[queue q]\ndomains = nowhere.example\n"),
	    NULL, &e);
	assert_null(c);
	assert_int_equal(e.n, 3);
	assert_true(has_error(&e, 0, "queue_dir is required"));
	assert_true(has_error(&e, 1, "tls_key is set"));
	assert_true(has_error(&e, 2, "nowhere.example is not a configured"));
	config_errors_free(&e);
}

/* ---- lookups ---- */

static void test_find_domain(void **state)
{
	struct config *c = ok(BASE
	    "[domain example.org]\nsubdomains = yes\n"
	    "[domain a.example.org]\nmode = hold\n"
	    "[domain example.net]\n"
	    "[domain b.c.example.com]\nsubdomains = yes\n"
	    "[domain example.com]\nsubdomains = yes\n");
	const struct config_domain *d;

	d = config_find_domain(c, "example.org");
	assert_non_null(d);
	assert_string_equal(d->name, "example.org");
	assert_string_equal(config_find_domain(c, "mail.example.org")->name,
	    "example.org");
	assert_string_equal(config_find_domain(c, "x.y.z.example.org")->name,
	    "example.org");
	/* the more specific one wins */
	assert_string_equal(config_find_domain(c, "a.example.org")->name,
	    "a.example.org");
	/* a.example.org has no subdomains: its children go to the nearest
	 * parent that has */
	assert_string_equal(config_find_domain(c, "x.a.example.org")->name,
	    "example.org");
	assert_string_equal(config_find_domain(c, "q.b.c.example.com")->name,
	    "b.c.example.com");
	assert_string_equal(config_find_domain(c, "c.example.com")->name,
	    "example.com");
	assert_string_equal(config_find_domain(c, "example.org.")->name,
	    "example.org");
	/* label boundaries only */
	assert_null(config_find_domain(c, "badexample.org"));
	assert_null(config_find_domain(c, "example.org.au"));
	assert_null(config_find_domain(c, "org"));
	assert_null(config_find_domain(c, "xample.org"));
	assert_null(config_find_domain(c, ".example.org.x"));
	/* exact only without subdomains = yes */
	assert_non_null(config_find_domain(c, "example.net"));
	assert_null(config_find_domain(c, "mail.example.net"));
	assert_null(config_find_domain(c, ""));
	assert_null(config_find_domain(c, "."));
	config_unref(c);
}

static void test_find_domain_many(void **state)
{
	struct buf b = BUF_INIT;
	struct config *c;
	char name[64];
	int i;

	buf_puts(&b, BASE);
	for (i = 0; i < 2000; i++)
		buf_printf(&b, "[domain d%d.example]\nsubdomains = %s\n", i,
		    i % 2 ? "yes" : "no");
	c = ok(buf_cstr(&b));
	assert_int_equal(c->ndomains, 2000);
	for (i = 0; i < 2000; i++) {
		snprintf(name, sizeof(name), "d%d.example", i);
		assert_string_equal(config_find_domain(c, name)->name, name);
		snprintf(name, sizeof(name), "mx.d%d.example", i);
		if (i % 2)
			assert_non_null(config_find_domain(c, name));
		else
			assert_null(config_find_domain(c, name));
	}
	assert_null(config_find_domain(c, "d2000.example"));
	config_unref(c);
	buf_free(&b);
}

static void test_find_queue(void **state)
{
	struct config *c = ok(BASE "[domain a.example]\n[domain b.example]\n"
	    "[queue dialup]\ndomains = a.example b.example\n"
	    "[queue other]\ndomains = b.example\n");
	const struct config_queue *q = config_find_queue(c, "dialup");

	assert_non_null(q);
	assert_int_equal(q->ndomains, 2);
	assert_string_equal(q->domains[0], "a.example");
	assert_string_equal(q->domains[1], "b.example");
	assert_non_null(config_find_queue(c, "other"));
	assert_null(config_find_queue(c, "nosuch"));
	assert_null(config_find_queue(c, "dial"));
	config_unref(c);
}

/* ---- printing, reload, refcount ---- */

static void roundtrip(const char *text)
{
	struct buf one = BUF_INIT, two = BUF_INIT;
	struct config *c = ok(text), *c2;

	config_print(c, &one);
	c2 = ok(buf_cstr(&one));
	config_print(c2, &two);
	assert_string_equal(buf_cstr(&one), buf_cstr(&two));
	config_unref(c);
	config_unref(c2);
	buf_free(&one);
	buf_free(&two);
}

static void test_print_roundtrip(void **state)
{
	roundtrip("queue_dir = /q\n");
	roundtrip("queue_dir = /q\nlisten = [::1]:25 0.0.0.0:25\n"
	    "odmr_listen = 0.0.0.0:366\nmetrics_listen = 127.0.0.1:9025\n"
	    "user = etrnd\ntls_cert = /c\ntls_key = /k\ndns_server = [::1]:53\n"
	    "etrn_clients = 192.0.2.0/24 ::ffff:10.0.0.0/104 2001:db8::/32\n"
	    "users_file = /u f\nmessage_size_limit = 12345\n"
	    "body_memory_limit = 3M\nidle_timeout = 61\n"
	    "[domain example.org]\nroute = [::1]:2526\nmode = hold\n"
	    "etrn_clients = any\ntls = must\nsubdomains = yes\n"
	    "lifetime = 90000\nrecipients = /r\n"
	    "[domain example.net]\nroute = Mail.Example.net\n"
	    "etrn_clients = none\n"
	    "[domain example.com]\nroute = odmr\n"
	    "[queue q]\ndomains = example.net example.org\n");
}

static void test_print_values(void **state)
{
	struct config *c = ok(BASE "message_size_limit = 10M\n"
	    "[domain example.org]\nroute = [mx.example.net]\nlifetime = 28d\n");
	struct buf b = BUF_INIT;

	config_print(c, &b);
	assert_non_null(strstr(b.p, "message_size_limit = 10M\n"));
	assert_non_null(strstr(b.p, "route = [mx.example.net]:25\n"));
	assert_non_null(strstr(b.p, "lifetime = 4w\n"));
	assert_non_null(strstr(b.p, "control = /q/control.sock\n"));
	assert_null(strstr(b.p, "user ="));
	config_unref(c);
	buf_free(&b);
}

static void test_fixed_changes(void **state)
{
	struct config *a = ok(BASE "listen = 127.0.0.1:25\nmax_connections = 5\n");
	struct config *b = ok(BASE "listen = 127.0.0.1:26\nmax_connections = 6\n"
	    "[domain example.org]\n");
	struct config *b2 = ok(BASE "listen = 127.0.0.1:25\nuser = x\n");
	struct buf names = BUF_INIT;

	assert_int_equal(config_fixed_changes(a, a, &names), 0);
	assert_int_equal(names.len, 0);
	assert_int_equal(config_fixed_changes(a, b, &names), 1);
	assert_string_equal(buf_cstr(&names), "listen");
	buf_reset(&names);
	assert_int_equal(config_fixed_changes(a, b2, &names), 1);
	assert_string_equal(buf_cstr(&names), "user");
	config_unref(a);
	config_unref(b);
	config_unref(b2);
	buf_free(&names);
}

static void test_refcount(void **state)
{
	struct config *c = ok(BASE);

	assert_int_equal(c->refcnt, 1);
	assert_ptr_equal(config_ref(c), c);
	assert_int_equal(c->refcnt, 2);
	config_unref(c);
	assert_int_equal(c->refcnt, 1);
	assert_string_equal(c->queue_dir, "/q");	/* still alive */
	config_unref(c);				/* freed: ASan watches */
	config_unref(NULL);
}

static void test_parser_steps(void **state)
{
	struct config_errors e = { 0 };
	struct config_parser *p = config_parser_new(&e);
	const char *main_text = BASE "domains_file = d.conf\n"
	    "[queue q]\ndomains = b.example\n";
	const char *dom_text = "[domain b.example]\nmode = hold\n";
	struct config *c;

	config_parser_feed(p, main_text, strlen(main_text), "m.conf", false);
	assert_string_equal(config_parser_domains_file(p), "d.conf");
	config_parser_feed(p, dom_text, strlen(dom_text), "d.conf", true);
	c = config_parser_finish(p, "host.example");
	assert_non_null(c);
	assert_int_equal(e.n, 0);
	assert_string_equal(c->hostname, "host.example");
	assert_int_equal(c->ndomains, 1);
	assert_int_equal(c->domains[0].mode, CONFIG_MODE_HOLD);
	config_unref(c);

	/* the main text alone: the queue's domain is unknown */
	c = config_parse(main_text, strlen(main_text), "m.conf", &e);
	assert_null(c);
	assert_true(has_error(&e, 3, "m.conf:3: [queue q]: b.example"));
	config_errors_free(&e);
}

/* ---- loading ---- */

static char tmpdir[64];

static int setup_tmp(void **state)
{
	strcpy(tmpdir, "/tmp/test_config.XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown_tmp(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

/* put - write a file in tmpdir; its path in out */
static void put(const char *name, const char *text, char *out, size_t outsz)
{
	FILE *f;

	snprintf(out, outsz, "%s/%s", tmpdir, name);
	f = fopen(out, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
	assert_int_equal(fclose(f), 0);
}

static void test_load_missing(void **state)
{
	struct config_errors e = { 0 };
	struct config *c = config_load("/nonexistent/etrnd.conf", &e);

	assert_null(c);
	assert_int_equal(e.n, 1);
	assert_int_equal(e.v[0].line, 0);
	assert_string_equal(e.v[0].msg, "/nonexistent/etrnd.conf: cannot "
	    "open: No such file or directory");
	config_errors_free(&e);

	c = config_load("/", &e);
	assert_null(c);
	assert_int_equal(e.n, 1);
	assert_non_null(strstr(e.v[0].msg, "/: cannot read: Is a directory"));
	config_errors_free(&e);
}

static void test_load(void **state)
{
	char path[256];
	struct config_errors e = { 0 };
	struct config *c;
	char host[HOST_NAME_MAX + 1];

	put("a.conf", "queue_dir = q\nbogus = 1\n", path, sizeof(path));
	c = config_load(path, &e);
	assert_null(c);
	assert_int_equal(e.n, 1);
	assert_int_equal(e.v[0].line, 2);
	assert_non_null(strstr(e.v[0].msg, "a.conf:2: unknown key bogus"));
	assert_true(strncmp(e.v[0].msg, path, strlen(path)) == 0);
	config_errors_free(&e);

	/* hostname unset: the system's name */
	put("b.conf", "queue_dir = q\n", path, sizeof(path));
	c = config_load(path, &e);
	assert_non_null(c);
	assert_int_equal(e.n, 0);
	assert_int_equal(gethostname(host, sizeof(host)), 0);
	assert_string_equal(c->hostname, host);
	assert_string_equal(c->control, "q/control.sock");
	config_unref(c);

	/* an empty file parses, and misses queue_dir */
	put("empty.conf", "", path, sizeof(path));
	c = config_load(path, &e);
	assert_null(c);
	assert_int_equal(e.n, 1);
	assert_non_null(strstr(e.v[0].msg, "queue_dir is required"));
	config_errors_free(&e);
}

static void test_load_too_big(void **state)
{
	char path[256];
	struct config_errors e = { 0 };
	struct config *c;
	int fd;

	snprintf(path, sizeof(path), "%s/big.conf", tmpdir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 16 * 1024 * 1024 + 1), 0);
	close(fd);
	c = config_load(path, &e);
	assert_null(c);
	assert_int_equal(e.n, 1);
	assert_non_null(strstr(e.v[0].msg, "big.conf: larger than 16 MiB"));
	config_errors_free(&e);
	unlink(path);
}

static void test_load_domains_file(void **state)
{
	char path[256], dpath[256];
	struct buf b = BUF_INIT;
	struct config_errors e = { 0 };
	struct config *c;

	put("domains.conf",
	    "# many domains\n"
	    "[domain b.example]\nroute = [192.0.2.25]\nmode = hold\n"
	    "[domain c.example]\nsubdomains = yes\n", dpath, sizeof(dpath));
	buf_printf(&b, "queue_dir = q\ndomains_file = %s\n"
	    "[domain a.example]\n[queue all]\ndomains = a.example b.example "
	    "x.c.example\n", dpath);
	put("main.conf", b.p, path, sizeof(path));
	c = config_load(path, &e);
	if (c == NULL)
		dump(&e);
	assert_non_null(c);
	assert_int_equal(c->ndomains, 3);
	assert_string_equal(c->domains[1].name, "b.example");
	assert_int_equal(c->domains[1].line, 2);
	assert_int_equal(c->domains[1].route, CONFIG_ROUTE_STATIC);
	assert_string_equal(config_find_domain(c, "y.c.example")->name,
	    "c.example");
	config_unref(c);

	/* its errors carry its own name and lines; a global key or a
	 * [queue] there is refused; duplicates across files name both */
	put("domains.conf",
	    "hostname = x\n"
	    "[domain b.example]\nmode = sometimes\n"
	    "[queue z]\ndomains = b.example\n"
	    "[domain a.example]\n"
	    "[domain c.example]\nsubdomains = yes\n", dpath, sizeof(dpath));
	c = config_load(path, &e);
	assert_null(c);
	if (e.n != 4)
		dump(&e);
	assert_int_equal(e.n, 4);
	buf_reset(&b);
	buf_printf(&b, "%s:1: hostname: a domains_file holds only [domain] "
	    "sections", dpath);
	assert_true(has_error(&e, 1, b.p));
	buf_reset(&b);
	buf_printf(&b, "%s:3: mode: \"sometimes\"", dpath);
	assert_true(has_error(&e, 3, b.p));
	buf_reset(&b);
	buf_printf(&b, "%s:4: a domains_file holds only [domain]", dpath);
	assert_true(has_error(&e, 4, b.p));
	buf_reset(&b);
	buf_printf(&b, "%s:6: [domain a.example] is already defined at "
	    "%s:3", dpath, path);
	assert_true(has_error(&e, 6, b.p));
	config_errors_free(&e);

	/* a missing domains_file: one error, no noise from the queue */
	unlink(dpath);
	c = config_load(path, &e);
	assert_null(c);
	assert_int_equal(e.n, 1);
	assert_int_equal(e.v[0].line, 0);
	buf_reset(&b);
	buf_printf(&b, "%s: domains_file %s: cannot open: No such file or "
	    "directory", path, dpath);
	assert_string_equal(e.v[0].msg, b.p);
	config_errors_free(&e);
	buf_free(&b);
}

/* demo_path - demo/etrnd.conf from the work tree, wherever we run */
static const char *demo_path(void)
{
	static char path[PATH_MAX];
	const char *f = __FILE__, *cut = strstr(f, "tests/unit/");

	if (access("demo/etrnd.conf", R_OK) == 0)
		return "demo/etrnd.conf";
	if (cut) {
		snprintf(path, sizeof(path), "%.*sdemo/etrnd.conf",
		    (int)(cut - f), f);
		if (access(path, R_OK) == 0)
			return path;
	}
	return "../../demo/etrnd.conf";
}

static void test_demo_config(void **state)
{
	struct config_errors e = { 0 };
	struct config *c = config_load(demo_path(), &e);
	const struct config_domain *d;
	uint8_t lo[16] = { 0 };

	if (c == NULL)
		dump(&e);
	assert_non_null(c);
	assert_int_equal(e.n, 0);
	assert_string_equal(c->hostname, "relay.demo.test");
	assert_int_equal(c->nlisten, 1);
	assert_string_equal(c->listen[0].host, "127.0.0.1");
	assert_int_equal(c->listen[0].port, 2525);
	assert_string_equal(c->queue_dir, "run/queue");
	assert_string_equal(c->control, "run/control.sock");
	lo[0] = 127;
	lo[3] = 1;
	assert_true(config_net_match(&c->etrn_clients, AF_INET, lo));
	lo[0] = 0;
	lo[3] = 0;
	lo[15] = 1;
	assert_true(config_net_match(&c->etrn_clients, AF_INET6, lo));

	d = config_find_domain(c, "mail.example.org");
	assert_non_null(d);
	assert_string_equal(d->name, "example.org");
	assert_int_equal(d->route, CONFIG_ROUTE_STATIC);
	assert_string_equal(d->route_host, "127.0.0.1");
	assert_int_equal(d->route_port, 2526);
	assert_int_equal(d->mode, CONFIG_MODE_HOLD);
	assert_true(d->subdomains);
	d = config_find_domain(c, "example.net");
	assert_non_null(d);
	assert_int_equal(d->route, CONFIG_ROUTE_MX);
	assert_int_equal(d->mode, CONFIG_MODE_RETRY);
	assert_non_null(config_find_queue(c, "dialup"));
	assert_int_equal(config_find_queue(c, "dialup")->ndomains, 2);
	config_unref(c);
}

/* the valid-recipients table of a domain: parsed, matched, refused */
static void test_recipients_table(void **state)
{
	static const char good[] = "# site users\nAlice@Example.org\n"
	    "  bob@example.org  \r\n\n@lists.example.org\nalice@example.org\n";
	struct config_domain d;
	struct config_errors e = { 0 };

	memset(&d, 0, sizeof(d));
	d.name = (char *)"example.org";
	d.subdomains = true;
	assert_true(config_rcpt_parse(&d, good, strlen(good), "rcpts", &e));
	assert_int_equal(d.nrcpt_table, 3);	/* the duplicate went */
	assert_true(config_rcpt_known(&d, "alice@example.org"));
	assert_true(config_rcpt_known(&d, "ALICE@EXAMPLE.ORG"));
	assert_true(config_rcpt_known(&d, "bob@example.org"));
	assert_true(config_rcpt_known(&d, "anyone@lists.example.org"));
	assert_false(config_rcpt_known(&d, "carol@example.org"));
	assert_false(config_rcpt_known(&d, "x@sub.lists.example.org"));
	assert_false(config_rcpt_known(&d, "alice@example.org.evil"));
	d.name = NULL;
	config_domain_clear(&d);

	memset(&d, 0, sizeof(d));
	d.name = (char *)"example.org";
	assert_false(config_rcpt_parse(&d, "x\nu@other.test\nu@sub.example.org\n",
	    32, "rcpts", &e));
	assert_int_equal(e.n, 3);		/* every line, with its number */
	assert_non_null(strstr(e.v[0].msg, "rcpts:1: "));
	assert_non_null(strstr(e.v[1].msg, "rcpts:2: other.test"));
	assert_non_null(strstr(e.v[2].msg, "rcpts:3: sub.example.org"));
	config_errors_free(&e);
	assert_false(config_rcpt_parse(&d, "# nothing\n", 10, "rcpts", &e));
	assert_int_equal(e.n, 1);
	config_errors_free(&e);
	d.name = NULL;
	config_domain_clear(&d);
	/* no table: every address of the domain is taken */
	assert_true(config_rcpt_known(&d, "anyone@example.org"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_recipients_table),
		cmocka_unit_test(test_odmr_needs_users),
		cmocka_unit_test(test_schema_table),
		cmocka_unit_test(test_schema_defaults_parse),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_uint),
		cmocka_unit_test(test_size),
		cmocka_unit_test(test_duration),
		cmocka_unit_test(test_bool),
		cmocka_unit_test(test_enum),
		cmocka_unit_test(test_route),
		cmocka_unit_test(test_listen),
		cmocka_unit_test(test_netlist_parse),
		cmocka_unit_test(test_net_match),
		cmocka_unit_test(test_domain_etrn_clients),
		cmocka_unit_test(test_strings),
		cmocka_unit_test(test_syntax),
		cmocka_unit_test(test_line_limits),
		cmocka_unit_test(test_all_errors_in_one_pass),
		cmocka_unit_test(test_error_cap),
		cmocka_unit_test(test_sections),
		cmocka_unit_test(test_repeated_keys),
		cmocka_unit_test(test_cross_checks),
		cmocka_unit_test(test_find_domain),
		cmocka_unit_test(test_find_domain_many),
		cmocka_unit_test(test_find_queue),
		cmocka_unit_test(test_print_roundtrip),
		cmocka_unit_test(test_print_values),
		cmocka_unit_test(test_fixed_changes),
		cmocka_unit_test(test_refcount),
		cmocka_unit_test(test_parser_steps),
		cmocka_unit_test(test_load_missing),
		cmocka_unit_test_setup_teardown(test_load, setup_tmp,
		    teardown_tmp),
		cmocka_unit_test_setup_teardown(test_load_too_big, setup_tmp,
		    teardown_tmp),
		cmocka_unit_test_setup_teardown(test_load_domains_file,
		    setup_tmp, teardown_tmp),
		cmocka_unit_test(test_demo_config),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
