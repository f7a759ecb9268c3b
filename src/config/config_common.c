/*
 * config_common - lookups, reference counting and printing of a struct
 * config; pure like the parser (linked into the fuzz targets)
 */
#include "config/config.h"
#include "util/strutil.h"
#include "util/xalloc.h"

#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* config_errors_free - free every message and the array */
void config_errors_free(struct config_errors *errs)
{
	size_t i;

	if (errs == NULL)
		return;
	for (i = 0; i < errs->n; i++)
		free(errs->v[i].msg);
	free(errs->v);
	errs->v = NULL;
	errs->n = 0;
}

/* free_rows - free the fields of obj that the rows of scope own */
static void free_rows(void *obj, unsigned scope)
{
	size_t i;

	for (i = 0; i < config_schema_len; i++)
		if (config_schema[i].scope & scope)
			config_value_free(&config_schema[i], obj);
}

/* config_domain_clear - free what a domain owns, zero it */
void config_domain_clear(struct config_domain *d)
{
	size_t i;

	for (i = 0; i < d->nrcpt_table; i++)
		free(d->rcpt_table[i]);
	free(d->rcpt_table);
	free_rows(d, CONFIG_S_DOMAIN);
	free(d->name);
	memset(d, 0, sizeof(*d));
}

/* config_queue_clear - free what a queue owns, zero it */
void config_queue_clear(struct config_queue *q)
{
	free_rows(q, CONFIG_S_QUEUE);
	free(q->name);
	memset(q, 0, sizeof(*q));
}

/* config_free - free c and everything in it */
void config_free(struct config *c)
{
	size_t i;

	if (c == NULL)
		return;
	free_rows(c, CONFIG_S_GLOBAL);
	for (i = 0; i < c->ndomains; i++)
		config_domain_clear(&c->domains[i]);
	free(c->domains);
	for (i = 0; i < c->nqueues; i++)
		config_queue_clear(&c->queues[i]);
	free(c->queues);
	free(c);
}

/*
 * config_ref - one more reference.  Sessions on the loop and the store
 * thread may hold the same config, so the count is atomic.
 */
struct config *config_ref(struct config *c)
{
	__atomic_add_fetch(&c->refcnt, 1, __ATOMIC_RELAXED);
	return c;
}

/* config_unref - drop a reference; the last one frees */
void config_unref(struct config *c)
{
	if (c && __atomic_sub_fetch(&c->refcnt, 1, __ATOMIC_ACQ_REL) == 0)
		config_free(c);
}

/* name_cmp - order of a (s, len) key against a NUL-terminated name,
 * the same order as strcmp() */
static int name_cmp(const char *s, size_t len, const char *name)
{
	size_t nl = strlen(name);
	int r = memcmp(s, name, len < nl ? len : nl);

	if (r)
		return r;
	return len < nl ? -1 : len > nl;
}

/* find_domain_n - the [domain] named exactly s (len bytes), or NULL */
static const struct config_domain *find_domain_n(const struct config *c,
    const char *s, size_t len)
{
	size_t lo = 0, hi = c->ndomains;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int r = name_cmp(s, len, c->domains[mid].name);

		if (r == 0)
			return &c->domains[mid];
		if (r < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

/*
 * config_find_domain - exact match, else the nearest parent that has
 * subdomains = yes.  Suffixes are taken only at label boundaries, so
 * "badexample.org" never finds "example.org".
 */
const struct config_domain *config_find_domain(const struct config *c,
    const char *domain)
{
	const struct config_domain *d;
	size_t len = strlen(domain);
	const char *s = domain;

	if (len && domain[len - 1] == '.')
		len--;			/* the root label is implied */
	if (len == 0)
		return NULL;
	if ((d = find_domain_n(c, s, len)) != NULL)
		return d;
	while ((s = memchr(s, '.', len - (size_t)(s - domain))) != NULL) {
		s++;
		d = find_domain_n(c, s, len - (size_t)(s - domain));
		if (d && d->subdomains)
			return d;
	}
	return NULL;
}

/* config_find_queue - the [queue] named name, or NULL */
const struct config_queue *config_find_queue(const struct config *c,
    const char *name)
{
	size_t lo = 0, hi = c->nqueues;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int r = strcmp(name, c->queues[mid].name);

		if (r == 0)
			return &c->queues[mid];
		if (r < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

/* net_has - the first prefix bits of a and net agree */
static bool net_has(const struct config_net *net, const uint8_t *a)
{
	unsigned full = net->prefix / 8, rest = net->prefix % 8;

	if (memcmp(net->addr, a, full) != 0)
		return false;
	if (rest == 0)
		return true;
	return ((net->addr[full] ^ a[full]) & (uint8_t)(0xff00 >> rest)) == 0;
}

/*
 * config_net_match - the address is in one of the networks.  An IPv4
 * client reached over an IPv6 socket shows up as ::ffff:a.b.c.d; it is
 * checked against the IPv4 networks too, so one rule covers both sockets.
 */
bool config_net_match(const struct config_netlist *l, int family,
    const void *addr)
{
	static const uint8_t v4mapped[12] = {
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff
	};
	const uint8_t *a = addr, *a4 = NULL;
	size_t i;

	if (family == AF_INET)
		a4 = a;
	else if (family == AF_INET6 && memcmp(a, v4mapped, 12) == 0)
		a4 = a + 12;
	for (i = 0; i < l->n; i++) {
		const struct config_net *n = &l->v[i];

		if (n->family == 0)
			return true;
		if (n->family == AF_INET && a4 && net_has(n, a4))
			return true;
		if (n->family == AF_INET6 && family == AF_INET6 && net_has(n, a))
			return true;
	}
	return false;
}

/* print_rows - "key = value" for every set row of scope */
static void print_rows(struct buf *out, const void *obj, unsigned scope)
{
	size_t i, mark, start;

	for (i = 0; i < config_schema_len; i++) {
		const struct config_key *k = &config_schema[i];

		if (!(k->scope & scope))
			continue;
		if (scope == CONFIG_S_DOMAIN && k->type == CONFIG_T_NETLIST &&
		    !((const struct config_domain *)obj)->has_etrn_clients)
			continue;
		mark = out->len;
		buf_printf(out, "%s = ", k->name);
		start = out->len;
		config_value_print(k, obj, out);
		if (out->len == start) {
			out->len = mark;	/* unset: leave it out */
			out->p[mark] = '\0';
		} else {
			buf_putc(out, '\n');
		}
	}
}

/* config_print - the effective configuration, defaults included */
void config_print(const struct config *c, struct buf *out)
{
	size_t i;

	print_rows(out, c, CONFIG_S_GLOBAL);
	for (i = 0; i < c->ndomains; i++) {
		buf_printf(out, "\n[domain %s]\n", c->domains[i].name);
		print_rows(out, &c->domains[i], CONFIG_S_DOMAIN);
	}
	for (i = 0; i < c->nqueues; i++) {
		buf_printf(out, "\n[queue %s]\n", c->queues[i].name);
		print_rows(out, &c->queues[i], CONFIG_S_QUEUE);
	}
}

/* config_fixed_changes - keys SIGHUP cannot change whose values differ */
size_t config_fixed_changes(const struct config *old, const struct config *new,
    struct buf *names)
{
	struct buf a = BUF_INIT, b = BUF_INIT;
	size_t i, n = 0;

	/* Comparing the printed values compares what the operator wrote,
	 * normalised, with no per-type code to keep in step. */
	for (i = 0; i < config_schema_len; i++) {
		const struct config_key *k = &config_schema[i];

		if (k->reloadable || !(k->scope & CONFIG_S_GLOBAL))
			continue;
		buf_reset(&a);
		buf_reset(&b);
		config_value_print(k, old, &a);
		config_value_print(k, new, &b);
		if (strcmp(buf_cstr(&a), buf_cstr(&b)) != 0) {
			buf_printf(names, "%s%s", n ? " " : "", k->name);
			n++;
		}
	}
	buf_free(&a);
	buf_free(&b);
	return n;
}

static int rcpt_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void rcpt_error(struct config_errors *errs, const char *name, int line,
    const char *fmt, const char *arg)
{
	struct buf b = BUF_INIT;

	if (errs == NULL)
		return;
	buf_printf(&b, "%s:%d: ", name, line);
	buf_printf(&b, fmt, arg);
	errs->v = xrealloc(errs->v, (errs->n + 1) * sizeof(*errs->v));
	errs->v[errs->n].line = line;
	errs->v[errs->n++].msg = buf_steal(&b);
}

bool config_rcpt_parse(struct config_domain *d, const char *text, size_t len,
    const char *name, struct config_errors *errs)
{
	const char *p = text, *end = text + len;
	size_t cap = 0, i, k;
	int line = 0, bad = 0;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *e = nl ? nl : end, *at;
		char *addr;

		line++;
		while (p < e && (*p == ' ' || *p == '\t'))
			p++;
		while (e > p && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
			e--;
		if (p == e || *p == '#') {
			p = nl ? nl + 1 : end;
			continue;
		}
		addr = xmemdup0(p, (size_t)(e - p));
		str_lower(addr);
		at = strrchr(addr, '@');
		if (at == NULL || at[1] == '\0' || strpbrk(addr, " \t") ||
		    memchr(p, '\0', (size_t)(e - p)) != NULL) {
			rcpt_error(errs, name, line, "not an address: %s",
			    "expected user@domain or @domain");
			bad++;
		} else if (!(strcmp(at + 1, d->name) == 0 || (d->subdomains &&
		    domain_within(at + 1, d->name)))) {
			rcpt_error(errs, name, line, "%s is not this domain's",
			    at + 1);
			bad++;
		} else {
			if (d->nrcpt_table == cap) {
				cap = cap ? cap * 2 : 64;
				d->rcpt_table = xrealloc(d->rcpt_table,
				    cap * sizeof(*d->rcpt_table));
			}
			d->rcpt_table[d->nrcpt_table++] = addr;
			addr = NULL;
		}
		free(addr);
		p = nl ? nl + 1 : end;
		if (bad >= 100)
			break;
	}
	if (bad > 0)
		return false;
	if (d->nrcpt_table == 0) {
		rcpt_error(errs, name, line, "%s", "no address at all: every"
		    " recipient would be refused");
		return false;
	}
	qsort(d->rcpt_table, d->nrcpt_table, sizeof(*d->rcpt_table), rcpt_cmp);
	for (i = k = 0; i < d->nrcpt_table; i++) {
		if (k > 0 && strcmp(d->rcpt_table[k - 1], d->rcpt_table[i]) == 0)
			free(d->rcpt_table[i]);
		else
			d->rcpt_table[k++] = d->rcpt_table[i];
	}
	d->nrcpt_table = k;
	return true;
}

bool config_rcpt_known(const struct config_domain *d, const char *addr)
{
	char *low, *key;
	const char *at;
	bool found;

	if (d->rcpt_table == NULL)
		return true;
	low = xstrdup(addr);
	str_lower(low);
	key = low;
	found = bsearch(&key, d->rcpt_table, d->nrcpt_table,
	    sizeof(*d->rcpt_table), rcpt_cmp) != NULL;
	if (!found && (at = strrchr(low, '@')) != NULL) {
		key = (char *)at;
		found = bsearch(&key, d->rcpt_table, d->nrcpt_table,
		    sizeof(*d->rcpt_table), rcpt_cmp) != NULL;
	}
	free(low);
	return found;
}
