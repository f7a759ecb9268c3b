/*
 * fuzz_config - libFuzzer target for the configuration parser
 *
 * Each input is parsed three ways: as a whole configuration, as a
 * domains_file after a fixed main text, and (first byte picks a schema
 * row) as one value.  A config that parses must print as text that parses
 * again to the same print-out, and its lookups must find what it holds.
 * A failed parse must report between 1 and 100 errors.
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "config/config.h"
#include "util/xalloc.h"

/* check - invariants of a config that parsed */
static void check(const struct config *c)
{
	static const uint8_t v4[4] = { 192, 0, 2, 1 };
	static const uint8_t v6[16] = { 0x20, 0x01, 0x0d, 0xb8, [15] = 1 };
	static const uint8_t mapped[16] = { [10] = 0xff, [11] = 0xff,
	    [12] = 192, [13] = 0, [14] = 2, [15] = 1 };
	struct buf one = BUF_INIT, two = BUF_INIT, names = BUF_INIT;
	struct config_errors e = { 0 };
	struct config *c2;
	size_t i, j;

	for (i = 0; i < c->ndomains; i++) {
		const struct config_domain *d = c->domains[i].name ?
		    &c->domains[i] : NULL;
		struct buf sub = BUF_INIT;

		if (d == NULL || config_find_domain(c, d->name) != d)
			abort();
		if (i > 0 && strcmp(c->domains[i - 1].name, d->name) >= 0)
			abort();
		buf_printf(&sub, "x.%s", d->name);
		if (d->subdomains && config_find_domain(c, sub.p) == NULL)
			abort();
		buf_free(&sub);
		if (d->has_etrn_clients) {
			(void)config_net_match(&d->etrn_clients, AF_INET, v4);
			(void)config_net_match(&d->etrn_clients, AF_INET6, v6);
		}
	}
	for (i = 0; i < c->nqueues; i++) {
		if (config_find_queue(c, c->queues[i].name) != &c->queues[i])
			abort();
		for (j = 0; j < c->queues[i].ndomains; j++)
			if (config_find_domain(c, c->queues[i].domains[j]) == NULL)
				abort();
	}
	/* "any" matches everything; a v4 network matches its mapped form */
	for (i = 0; i < c->etrn_clients.n; i++) {
		const struct config_net *n = &c->etrn_clients.v[i];
		struct config_netlist one_net = { (struct config_net *)n, 1 };

		if (n->family == 0 &&
		    !config_net_match(&one_net, AF_INET6, v6))
			abort();
		if (n->family == AF_INET && config_net_match(&one_net, AF_INET,
		    v4) != config_net_match(&one_net, AF_INET6, mapped))
			abort();
		if (n->family == AF_INET6 && n->prefix == 0 &&
		    !config_net_match(&one_net, AF_INET6, v6))
			abort();
	}
	if (c->hostname == NULL || c->queue_dir == NULL || c->control == NULL)
		abort();

	config_print(c, &one);
	c2 = config_parse(one.p, one.len, "printed", &e);
	if (c2 == NULL)
		abort();
	config_print(c2, &two);
	if (one.len != two.len || memcmp(one.p, two.p, one.len) != 0)
		abort();
	if (config_fixed_changes(c, c2, &names) != 0)
		abort();
	config_unref(c2);
	buf_free(&one);
	buf_free(&two);
	buf_free(&names);
}

/* check_errors - a failed parse says why, within the cap */
static void check_errors(const struct config_errors *e)
{
	size_t i;

	if (e->n == 0 || e->n > 100)
		abort();
	for (i = 0; i < e->n; i++)
		if (e->v[i].msg == NULL || e->v[i].line < 0)
			abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char main_text[] = "queue_dir = /q\n"
	    "domains_file = d\n[domain example.org]\nsubdomains = yes\n";
	struct config_errors e = { 0 };
	struct config_parser *p;
	struct config *c;

	c = config_parse((const char *)data, size, "fuzz", &e);
	if (c)
		check(c);
	else
		check_errors(&e);
	config_unref(c);
	config_errors_free(&e);

	p = config_parser_new(&e);
	config_parser_feed(p, main_text, sizeof(main_text) - 1, "main", false);
	config_parser_feed(p, (const char *)data, size, "d", true);
	c = config_parser_finish(p, "fuzz.example");
	if (c)
		check(c);
	else
		check_errors(&e);
	config_unref(c);
	config_errors_free(&e);

	/* one value straight into a row, as the parser would pass it */
	if (size > 1 && size < 4096 && memchr(data + 1, '\0', size - 1) == NULL) {
		const struct config_key *k = &config_schema[data[0] %
		    config_schema_len];
		struct config cfg;
		struct config_domain d;
		struct config_queue q;
		struct buf why = BUF_INIT, out = BUF_INIT;
		void *obj = k->scope == CONFIG_S_GLOBAL ? (void *)&cfg :
		    k->scope == CONFIG_S_DOMAIN ? (void *)&d : (void *)&q;
		char *v = xmemdup0(data + 1, size - 1);

		memset(&cfg, 0, sizeof(cfg));
		memset(&d, 0, sizeof(d));
		memset(&q, 0, sizeof(q));
		if (config_value_set(k, obj, v, size - 1, &why)) {
			config_value_print(k, obj, &out);
			/* and again over the first value: no leak, no
			 * double free */
			(void)config_value_set(k, obj, v, size - 1, &why);
		} else if (why.len == 0) {
			abort();	/* a refusal always says why */
		}
		config_value_free(k, obj);
		free(d.name);
		buf_free(&why);
		buf_free(&out);
		free(v);
	}
	return 0;
}
