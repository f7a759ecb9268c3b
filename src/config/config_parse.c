/*
 * config_parse - the pure configuration parser: text in, a struct config
 * and every error (with its line) out
 *
 * The text is cut into lines; each is a comment, a "[domain NAME]" or
 * "[queue NAME]" header, or "key = value".  Values are parsed by the
 * schema's row for the key (config_schema.c).  An error never stops the
 * parse: the line is skipped and the next one read, so one run of
 * "etrnd -n" shows every mistake.  Cross-checks (required keys, key pairs,
 * duplicate sections, queues naming unknown domains) run at the end, in
 * config_parser_finish(), after a domains_file has been fed too.
 *
 * No I/O, no logging, no environment: config_load() does those.
 */
#include "config/config.h"
#include "util/strutil.h"
#include "util/xalloc.h"

#include <arpa/inet.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define LINE_MAX_BYTES	4096
#define ERRORS_MAX	100		/* the last one says that we stopped */
#define QUEUE_NAME_MAX	64

struct perr {
	int file;			/* index in files[]; -1: not tied to a file */
	int line;
	size_t seq;			/* keeps the order of equal (file, line) */
	char *msg;
};

struct pdomain {
	struct config_domain d;
	int file;
};

struct pqueue {
	struct config_queue q;
	int file;
};

enum sect {
	SECT_GLOBAL,
	SECT_DOMAIN,
	SECT_QUEUE,
	SECT_SKIP,			/* after a broken header: keys ignored */
};

struct config_parser {
	struct config *c;
	struct config_errors *errs;

	struct perr *e;
	size_t ne, cape;
	bool full;			/* ERRORS_MAX reached: stop */
	bool io_failed;			/* a file could not be read */

	char **files;			/* names given to feed (NULL allowed) */
	size_t nfiles;
	int file;			/* the one being fed */
	bool domains_only;

	int *gseen;			/* per schema row: line it was set on */
	int *sseen;			/* the same for the current section */

	struct pdomain *pd;
	size_t npd, cappd;
	struct pqueue *pq;
	size_t npq, cappq;

	enum sect sect;
	bool sink;			/* the section is broken: parse into scratch */
	int sect_line;
	struct config_domain sink_d;
	struct config_queue sink_q;
};

/* quote - append a value for a message: escaped, cut at 64 bytes */
static void quote(struct buf *b, const char *s, size_t len)
{
	buf_putc(b, '"');
	str_escape(b, s, len > 64 ? 64 : len);
	if (len > 64)
		buf_puts(b, "...");
	buf_putc(b, '"');
}

/* verr - record an error at (file, line) */
static void verr(struct config_parser *p, int file, int line,
    const char *fmt, va_list ap)
{
	const char *name = file >= 0 ? p->files[file] : NULL;
	struct buf b = BUF_INIT;
	struct perr *e;

	if (p->full)
		return;
	if (p->ne == ERRORS_MAX - 1) {
		if (name)
			buf_printf(&b, "%s: ", name);
		buf_printf(&b, "too many errors; stopping after %d",
		    ERRORS_MAX - 1);
		p->full = true;
		file = line = INT_MAX;	/* sorts last */
	} else {
		if (file >= 0 && name && line > 0)
			buf_printf(&b, "%s:%d: ", name, line);
		else if (file >= 0 && name)
			buf_printf(&b, "%s: ", name);
		else if (file >= 0 && line > 0)
			buf_printf(&b, "line %d: ", line);
		buf_vprintf(&b, fmt, ap);
	}
	if (p->ne == p->cape) {
		p->cape = p->cape ? p->cape * 2 : 16;
		p->e = xrealloc(p->e, p->cape * sizeof(*p->e));
	}
	e = &p->e[p->ne];
	e->file = file;
	e->line = line;
	e->seq = p->ne++;
	e->msg = buf_steal(&b);
}

/* err - an error on a line of the file being fed */
static void err(struct config_parser *p, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void err(struct config_parser *p, int line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	verr(p, p->file, line, fmt, ap);
	va_end(ap);
}

/* err_at - an error on a line of any fed file */
static void err_at(struct config_parser *p, int file, int line,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void err_at(struct config_parser *p, int file, int line,
    const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	verr(p, file, line, fmt, ap);
	va_end(ap);
}

/* config_parser_error - an error not tied to a line */
void config_parser_error(struct config_parser *p, const char *fmt, ...)
{
	va_list ap;

	p->io_failed = true;
	va_start(ap, fmt);
	verr(p, -1, 0, fmt, ap);
	va_end(ap);
}

/* row - a schema row's index */
static size_t row(const struct config_key *k)
{
	return (size_t)(k - config_schema);
}

/* apply_defaults - set every row of scope that has a default */
static void apply_defaults(void *obj, unsigned scope)
{
	struct buf why = BUF_INIT;
	size_t i;

	for (i = 0; i < config_schema_len; i++) {
		const struct config_key *k = &config_schema[i];

		if (!(k->scope & scope) || k->def == NULL)
			continue;
		/* A default that does not parse is a bug in the table, and
		 * the unit tests parse every one. */
		if (!config_value_set(k, obj, k->def, strlen(k->def), &why))
			abort();
	}
	buf_free(&why);
}

/* config_parser_new - an empty parser; the defaults are set */
struct config_parser *config_parser_new(struct config_errors *errs)
{
	struct config_parser *p = xcalloc(1, sizeof(*p));

	p->errs = errs;
	p->c = xcalloc(1, sizeof(*p->c));
	p->c->refcnt = 1;
	p->gseen = xcalloc(config_schema_len, sizeof(*p->gseen));
	p->sseen = xcalloc(config_schema_len, sizeof(*p->sseen));
	apply_defaults(p->c, CONFIG_S_GLOBAL);
	return p;
}

/* config_parser_domains_file - domains_file as set so far */
const char *config_parser_domains_file(const struct config_parser *p)
{
	return p->c->domains_file;
}

/* cur_obj - the struct the current section's keys go into */
static void *cur_obj(struct config_parser *p)
{
	switch (p->sect) {
	case SECT_GLOBAL:
		return p->c;
	case SECT_DOMAIN:
		return p->sink ? &p->sink_d : &p->pd[p->npd - 1].d;
	case SECT_QUEUE:
		return p->sink ? (void *)&p->sink_q : &p->pq[p->npq - 1].q;
	default:
		return NULL;
	}
}

/* end_section - the section's own checks; back to no section */
static void end_section(struct config_parser *p)
{
	unsigned scope = p->sect == SECT_DOMAIN ? CONFIG_S_DOMAIN :
	    p->sect == SECT_QUEUE ? CONFIG_S_QUEUE : 0;
	size_t i;

	if (scope && !p->sink) {
		const char *name = p->sect == SECT_DOMAIN ?
		    p->pd[p->npd - 1].d.name : p->pq[p->npq - 1].q.name;

		for (i = 0; i < config_schema_len; i++) {
			const struct config_key *k = &config_schema[i];

			if ((k->scope & scope) && k->required && !p->sseen[i])
				err(p, p->sect_line, "[%s %s] needs %s",
				    p->sect == SECT_DOMAIN ? "domain" : "queue",
				    name, k->name);
		}
	}
	config_domain_clear(&p->sink_d);
	config_queue_clear(&p->sink_q);
	memset(p->sseen, 0, config_schema_len * sizeof(*p->sseen));
	p->sink = false;
	p->sect = SECT_SKIP;
}

/* check_queue_name - [a-z0-9_.-], 1..64; upper case is folded later */
static bool check_queue_name(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || len > QUEUE_NAME_MAX)
		return false;
	for (i = 0; i < len; i++)
		if (!ascii_isalnum(s[i]) && s[i] != '_' && s[i] != '.' &&
		    s[i] != '-')
			return false;
	return true;
}

/* is_space - blank within a line */
static bool is_space(char c)
{
	return c == ' ' || c == '\t';
}

/* section_line - "[domain NAME]" or "[queue NAME]" */
static void section_line(struct config_parser *p, int line, const char *s,
    size_t len)
{
	const char *type, *name, *bad;
	size_t tlen, nlen, i;
	struct buf q = BUF_INIT;

	end_section(p);
	p->sect_line = line;
	if (len < 2 || s[len - 1] != ']') {
		err(p, line, "a section header is [domain NAME] or "
		    "[queue NAME], ending with ']'");
		return;
	}
	type = s + 1;
	len -= 2;
	while (len && is_space(*type)) {
		type++;
		len--;
	}
	while (len && is_space(type[len - 1]))
		len--;
	for (tlen = 0; tlen < len && !is_space(type[tlen]); tlen++)
		;
	name = type + tlen;
	nlen = len - tlen;
	while (nlen && is_space(*name)) {
		name++;
		nlen--;
	}
	for (i = 0; i < nlen; i++) {
		if (is_space(name[i])) {
			quote(&q, name, nlen);
			err(p, line, "a section has one name, not %s",
			    buf_cstr(&q));
			goto out;
		}
	}
	if (tlen == 6 && memcmp(type, "domain", 6) == 0) {
		p->sect = SECT_DOMAIN;
		if (nlen == 0) {
			err(p, line, "[domain] needs a name: [domain NAME]");
			p->sink = true;
		} else if ((bad = config_check_domain_name(name, nlen)) != NULL) {
			quote(&q, name, nlen);
			err(p, line, "[domain %s]: %s", buf_cstr(&q), bad);
			p->sink = true;
		} else {
			struct pdomain *d;

			if (p->npd == p->cappd) {
				p->cappd = p->cappd ? p->cappd * 2 : 16;
				p->pd = xrealloc(p->pd, p->cappd * sizeof(*p->pd));
			}
			d = &p->pd[p->npd++];
			memset(d, 0, sizeof(*d));
			d->file = p->file;
			d->d.line = line;
			d->d.name = xmemdup0(name, nlen);
			str_lower(d->d.name);
		}
		apply_defaults(cur_obj(p), CONFIG_S_DOMAIN);
	} else if (tlen == 5 && memcmp(type, "queue", 5) == 0) {
		p->sect = SECT_QUEUE;
		if (p->domains_only) {
			err(p, line, "a domains_file holds only [domain] sections");
			p->sink = true;
		} else if (!check_queue_name(name, nlen)) {
			quote(&q, name, nlen);
			err(p, line, "[queue %s]: a queue name is 1 to %d letters, "
			    "digits, '_', '.' or '-'", buf_cstr(&q),
			    QUEUE_NAME_MAX);
			p->sink = true;
		} else {
			struct pqueue *qu;

			if (p->npq == p->cappq) {
				p->cappq = p->cappq ? p->cappq * 2 : 4;
				p->pq = xrealloc(p->pq, p->cappq * sizeof(*p->pq));
			}
			qu = &p->pq[p->npq++];
			memset(qu, 0, sizeof(*qu));
			qu->file = p->file;
			qu->q.line = line;
			qu->q.name = xmemdup0(name, nlen);
			str_lower(qu->q.name);
		}
		apply_defaults(cur_obj(p), CONFIG_S_QUEUE);
	} else {
		quote(&q, type, tlen);
		err(p, line, "unknown section type %s (expected [domain NAME] "
		    "or [queue NAME])", buf_cstr(&q));
	}
out:
	buf_free(&q);
}

/* scope_where - where a scope's keys go, for messages */
static const char *scope_where(unsigned scope)
{
	if (scope & CONFIG_S_GLOBAL)
		return "before the first section";
	if (scope & CONFIG_S_DOMAIN)
		return "in a [domain] section";
	return "in a [queue] section";
}

/* key_line - "key = value" */
static void key_line(struct config_parser *p, int line, const char *s,
    size_t len)
{
	const struct config_key *k;
	unsigned scope;
	size_t i, klen;
	const char *v;
	size_t vlen;
	int *seen;
	struct buf why = BUF_INIT;
	char *val;
	void *obj;

	for (i = 0; i < len && ((s[i] >= 'a' && s[i] <= 'z') ||
	    (s[i] >= '0' && s[i] <= '9') || s[i] == '_'); i++)
		;
	klen = i;
	if (klen == 0 || (i < len && !is_space(s[i]) && s[i] != '=')) {
		while (i < len && !is_space(s[i]) && s[i] != '=')
			i++;
		quote(&why, s, i);
		err(p, line, "%s is not a key: keys are lower-case letters, "
		    "digits and '_', as in \"key = value\"", buf_cstr(&why));
		goto out;
	}
	while (i < len && is_space(s[i]))
		i++;
	if (i == len || s[i] != '=') {
		err(p, line, "%.*s: expected \"%.*s = value\"", (int)klen, s,
		    (int)klen, s);
		goto out;
	}
	for (i++; i < len && is_space(s[i]); i++)
		;
	v = s + i;
	vlen = len - i;
	if (vlen && v[0] == '#')
		vlen = 0;		/* a '#' that starts the value */

	if (p->sect == SECT_SKIP)
		goto out;
	if (p->sect == SECT_GLOBAL && p->domains_only) {
		err(p, line, "%.*s: a domains_file holds only [domain] "
		    "sections", (int)klen, s);
		goto out;
	}
	scope = p->sect == SECT_GLOBAL ? CONFIG_S_GLOBAL :
	    p->sect == SECT_DOMAIN ? CONFIG_S_DOMAIN : CONFIG_S_QUEUE;
	if ((k = config_schema_find(s, klen, scope)) == NULL) {
		k = config_schema_find(s, klen, CONFIG_S_GLOBAL |
		    CONFIG_S_DOMAIN | CONFIG_S_QUEUE);
		if (k == NULL)
			err(p, line, "unknown key %.*s", (int)klen, s);
		else
			err(p, line, "%s is not valid %s: it goes %s", k->name,
			    scope_where(scope), scope_where(k->scope));
		goto out;
	}
	seen = p->sect == SECT_GLOBAL ? p->gseen : p->sseen;
	if (seen[row(k)]) {
		bool list = k->type == CONFIG_T_LISTEN ||
		    k->type == CONFIG_T_NETLIST || k->type == CONFIG_T_STRLIST;

		err(p, line, "%s is already set at line %d%s", k->name,
		    seen[row(k)], list ? " (a list goes on one line)" : "");
		goto out;
	}
	seen[row(k)] = line;
	obj = cur_obj(p);
	val = xmemdup0(v, vlen);
	if (!config_value_set(k, obj, val, vlen, &why))
		err(p, line, "%s: %s", k->name, buf_cstr(&why));
	free(val);
out:
	buf_free(&why);
}

/* one_line - a line without its end, len <= LINE_MAX_BYTES */
static void one_line(struct config_parser *p, int line, const char *s,
    size_t len)
{
	size_t i;

	/* A comment starts at a '#' that begins the line or follows white
	 * space, so that "a#b" stays a value. */
	for (i = 0; i < len; i++) {
		if (s[i] == '#' && (i == 0 || is_space(s[i - 1]))) {
			len = i;
			break;
		}
	}
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if ((c < 0x20 && c != '\t') || c == 0x7f) {
			err(p, line, "control character 0x%02x in the line", c);
			return;
		}
	}
	while (len && is_space(*s)) {
		s++;
		len--;
	}
	while (len && is_space(s[len - 1]))
		len--;
	if (len == 0)
		return;
	if (s[0] == '[')
		section_line(p, line, s, len);
	else
		key_line(p, line, s, len);
}

/* config_parser_feed - every line of one text */
void config_parser_feed(struct config_parser *p, const char *text, size_t len,
    const char *name, bool domains_only)
{
	size_t pos = 0;
	int line = 0;

	p->files = xrealloc(p->files, (p->nfiles + 1) * sizeof(*p->files));
	p->files[p->nfiles] = name ? xstrdup(name) : NULL;
	p->file = (int)p->nfiles++;
	p->domains_only = domains_only;
	p->sect = SECT_GLOBAL;
	memset(p->sseen, 0, config_schema_len * sizeof(*p->sseen));

	while (pos < len && !p->full) {
		const char *s = text + pos;
		const char *nl = memchr(s, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - s) : len - pos;

		pos += n + (nl != NULL);
		if (line == INT_MAX - 1) {
			err(p, line, "too many lines");
			break;
		}
		line++;
		if (n && s[n - 1] == '\r')
			n--;
		if (memchr(s, '\0', n)) {
			err(p, line, "NUL byte in the line");
			continue;
		}
		if (n > LINE_MAX_BYTES) {
			err(p, line, "line longer than %d bytes", LINE_MAX_BYTES);
			continue;
		}
		one_line(p, line, s, n);
	}
	end_section(p);
	p->sect = SECT_GLOBAL;
}

/* pd_cmp - domains by name, then where they were defined */
static int pd_cmp(const void *a, const void *b)
{
	const struct pdomain *x = a, *y = b;
	int r = strcmp(x->d.name, y->d.name);

	if (r)
		return r;
	if (x->file != y->file)
		return x->file < y->file ? -1 : 1;
	return (x->d.line > y->d.line) - (x->d.line < y->d.line);
}

/* pq_cmp - queues by name, then where they were defined */
static int pq_cmp(const void *a, const void *b)
{
	const struct pqueue *x = a, *y = b;
	int r = strcmp(x->q.name, y->q.name);

	if (r)
		return r;
	if (x->file != y->file)
		return x->file < y->file ? -1 : 1;
	return (x->q.line > y->q.line) - (x->q.line < y->q.line);
}

/* perr_cmp - errors by file, line, then the order they were found */
static int perr_cmp(const void *a, const void *b)
{
	const struct perr *x = a, *y = b;

	if (x->file != y->file)
		return x->file < y->file ? -1 : 1;
	if (x->line != y->line)
		return x->line < y->line ? -1 : 1;
	return (x->seq > y->seq) - (x->seq < y->seq);
}

/* where - "line N" in the same file, else "name:N" */
static void where(struct config_parser *p, struct buf *b, int here,
    int file, int line)
{
	if (file == here || p->files[file] == NULL)
		buf_printf(b, "line %d", line);
	else
		buf_printf(b, "%s:%d", p->files[file], line);
}

/* finish_domains - sort, refuse duplicates, move into the config */
static void finish_domains(struct config_parser *p)
{
	struct config *c = p->c;
	struct buf b = BUF_INIT;
	size_t i, first = 0;

	if (p->npd)
		qsort(p->pd, p->npd, sizeof(*p->pd), pd_cmp);
	c->domains = xcalloc(p->npd, sizeof(*c->domains));
	for (i = 0; i < p->npd; i++) {
		struct pdomain *d = &p->pd[i];

		if (i > 0 && strcmp(d->d.name, p->pd[first].d.name) == 0) {
			buf_reset(&b);
			where(p, &b, d->file, p->pd[first].file,
			    p->pd[first].d.line);
			err_at(p, d->file, d->d.line, "[domain %s] is already "
			    "defined at %s", d->d.name, buf_cstr(&b));
			config_domain_clear(&d->d);
			continue;
		}
		first = i;
		/* subdomains = yes on "org" would relay for every .org */
		if (d->d.subdomains && strchr(d->d.name, '.') == NULL)
			err_at(p, d->file, d->d.line, "[domain %s]: subdomains "
			    "= yes is refused for a top-level domain",
			    d->d.name);
		c->domains[c->ndomains++] = d->d;
	}
	buf_free(&b);
	free(p->pd);
	p->pd = NULL;
	p->npd = 0;
}

/* finish_queues - sort, refuse duplicates and unknown domains, move */
static void finish_queues(struct config_parser *p)
{
	struct config *c = p->c;
	struct buf b = BUF_INIT;
	size_t i, j, first = 0;

	if (p->npq)
		qsort(p->pq, p->npq, sizeof(*p->pq), pq_cmp);
	c->queues = xcalloc(p->npq, sizeof(*c->queues));
	for (i = 0; i < p->npq; i++) {
		struct pqueue *q = &p->pq[i];

		if (i > 0 && strcmp(q->q.name, p->pq[first].q.name) == 0) {
			buf_reset(&b);
			where(p, &b, q->file, p->pq[first].file,
			    p->pq[first].q.line);
			err_at(p, q->file, q->q.line, "[queue %s] is already "
			    "defined at %s", q->q.name, buf_cstr(&b));
			config_queue_clear(&q->q);
			continue;
		}
		first = i;
		/* A missing domains_file would make every domain in it
		 * "unknown": say that once, not once per queue entry. */
		for (j = 0; j < q->q.ndomains && !p->io_failed; j++) {
			if (config_find_domain(c, q->q.domains[j]) == NULL)
				err_at(p, q->file, q->q.line, "[queue %s]: %s is "
				    "not a configured [domain]", q->q.name,
				    q->q.domains[j]);
		}
		c->queues[c->nqueues++] = q->q;
	}
	buf_free(&b);
	free(p->pq);
	p->pq = NULL;
	p->npq = 0;
}

struct laddr {
	const struct config_key *k;
	const struct config_listen *l;
	int family;
	uint8_t a[16];
};

/* finish_listen - no address:port twice across listen, odmr_listen and
 * metrics_listen: the second bind would fail at startup */
static void finish_listen(struct config_parser *p)
{
	static const char *const keys[] = {
		"listen", "odmr_listen", "metrics_listen", "etrn_plain_listen"
	};
	struct laddr *v = NULL;
	size_t n = 0, i, j, cnt;

	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		const struct config_key *k = config_schema_find(keys[i],
		    strlen(keys[i]), CONFIG_S_GLOBAL);
		const struct config_listen *ls = *(struct config_listen *const *)
		    (const void *)((const char *)p->c + k->off);

		cnt = *(const size_t *)(const void *)((const char *)p->c +
		    k->noff);
		v = xrealloc(v, (n + cnt + 1) * sizeof(*v));
		for (j = 0; j < cnt; j++, n++) {
			v[n].k = k;
			v[n].l = &ls[j];
			memset(v[n].a, 0, sizeof(v[n].a));
			v[n].family = inet_pton(AF_INET, ls[j].host, v[n].a) == 1 ?
			    AF_INET : AF_INET6;
			if (v[n].family == AF_INET6)
				inet_pton(AF_INET6, ls[j].host, v[n].a);
		}
	}
	for (i = 0; i < n; i++) {
		for (j = 0; j < i; j++) {
			int li, lj;

			if (v[i].family != v[j].family ||
			    v[i].l->port != v[j].l->port ||
			    memcmp(v[i].a, v[j].a, sizeof(v[i].a)) != 0)
				continue;
			li = p->gseen[row(v[i].k)];
			lj = p->gseen[row(v[j].k)];
			err_at(p, 0, li > lj ? li : lj, "%s: %s%s%s:%u is "
			    "already in %s", v[i].k->name,
			    v[i].family == AF_INET6 ? "[" : "", v[i].l->host,
			    v[i].family == AF_INET6 ? "]" : "", v[i].l->port,
			    v[j].k->name);
			break;
		}
	}
	free(v);
}

/* finish_globals - required keys, pairs, derived defaults */
static void finish_globals(struct config_parser *p,
    const char *default_hostname)
{
	struct config *c = p->c;
	const struct config_key *cert, *key;
	size_t i;

	for (i = 0; i < config_schema_len && !p->io_failed; i++) {
		const struct config_key *k = &config_schema[i];

		if ((k->scope & CONFIG_S_GLOBAL) && k->required && !p->gseen[i])
			err_at(p, 0, 0, "%s is required", k->name);
	}
	cert = config_schema_find("tls_cert", 8, CONFIG_S_GLOBAL);
	key = config_schema_find("tls_key", 7, CONFIG_S_GLOBAL);
	if (p->gseen[row(cert)] && !p->gseen[row(key)])
		err_at(p, 0, p->gseen[row(cert)], "tls_cert is set but "
		    "tls_key is not: set both or neither");
	if (p->gseen[row(key)] && !p->gseen[row(cert)])
		err_at(p, 0, p->gseen[row(key)], "tls_key is set but "
		    "tls_cert is not: set both or neither");
	if (c->nodmr_listen > 0 && c->users_file == NULL)
		err_at(p, 0, p->gseen[row(config_schema_find("odmr_listen", 11,
		    CONFIG_S_GLOBAL))], "odmr_listen is set but users_file is"
		    " not: ODMR needs accounts");
	if (c->hostname == NULL)
		c->hostname = xstrdup(default_hostname && *default_hostname ?
		    default_hostname : "localhost");
	if (c->control == NULL && c->queue_dir) {
		size_t n = strlen(c->queue_dir);
		struct buf b = BUF_INIT;

		buf_printf(&b, "%s%scontrol.sock", c->queue_dir,
		    n && c->queue_dir[n - 1] == '/' ? "" : "/");
		c->control = buf_steal(&b);
	}
}

/* config_parser_finish - cross-checks, then the config or NULL */
struct config *config_parser_finish(struct config_parser *p,
    const char *default_hostname)
{
	struct config *c = p->c;
	size_t i;

	if (p->nfiles == 0)
		p->files = xcalloc(1, sizeof(*p->files));	/* err_at(0) */
	finish_globals(p, default_hostname);
	finish_domains(p);
	finish_queues(p);
	finish_listen(p);

	if (p->ne)
		qsort(p->e, p->ne, sizeof(*p->e), perr_cmp);
	if (p->errs && p->ne) {
		struct config_errors *errs = p->errs;

		errs->v = xrealloc(errs->v, (errs->n + p->ne + 1) *
		    sizeof(*errs->v));
		for (i = 0; i < p->ne; i++) {
			errs->v[errs->n].line = p->e[i].line == INT_MAX ? 0 :
			    p->e[i].line;
			errs->v[errs->n++].msg = p->e[i].msg;
		}
	} else {
		for (i = 0; i < p->ne; i++)
			free(p->e[i].msg);
	}
	if (p->ne) {
		config_free(c);
		c = NULL;
	}
	free(p->e);
	for (i = 0; i < p->nfiles; i++)
		free(p->files[i]);
	free(p->files);
	free(p->gseen);
	free(p->sseen);
	free(p);
	return c;
}

/* config_parse - the whole of one text, as config_load() without I/O */
struct config *config_parse(const char *text, size_t len, const char *name,
    struct config_errors *errs)
{
	struct config_parser *p = config_parser_new(errs);

	config_parser_feed(p, text, len, name, false);
	return config_parser_finish(p, NULL);
}
