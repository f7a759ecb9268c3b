/*
 * users_parse - the pure users_file parser, account lookup and the
 * table's lifetime
 *
 * The text is cut into lines and each line into its three fields; a line
 * with an error is reported and skipped, and parsing goes on, so one run
 * shows every mistake.  Lines that pass are kept as records; at the end
 * the records are sorted by name and the lines of one name merged into
 * one account, which is where the cross-line rules are checked (same
 * domain set, no two secrets for one mechanism).
 *
 * No I/O, no logging and no crypto: the fuzz target links this file with
 * src/util and src/smtp alone.  Secrets are wiped with explicit_bzero()
 * for the same reason (not OPENSSL_cleanse()).
 */
#include "auth/users_int.h"
#include "smtp/smtp_addr.h"
#include "util/strutil.h"
#include "util/xalloc.h"

#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum scheme {
	SCH_PLAIN,
	SCH_CRAM,
	SCH_CRYPT,
};

/* The mechanisms a secret serves. */
#define SERVES_PASSWORD	1u		/* PLAIN, LOGIN */
#define SERVES_CRAM	2u		/* CRAM-MD5 */

struct rec {
	char *name;
	int line;
	enum scheme scheme;
	char *data;			/* PLAIN password or crypt hash */
	size_t dlen;
	unsigned char cram[USERS_CRAM_CTX_LEN];
	char **domains;			/* lower case, sorted */
	size_t nd;
};

struct perr {
	int line;
	size_t seq;
	char *msg;
};

struct parser {
	const char *fname;
	struct perr *e;
	size_t ne, cape;
	bool full;			/* USERS_ERRORS_MAX reached */
	struct rec *r;
	size_t nr, capr;
};

/* err - record an error on a line (INT_MAX: after every line) */
static void err(struct parser *p, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void err(struct parser *p, int line, const char *fmt, ...)
{
	struct buf b = BUF_INIT;
	va_list ap;

	if (p->full)
		return;
	if (p->fname)
		buf_printf(&b, "%s:", p->fname);
	if (p->ne == USERS_ERRORS_MAX - 1) {
		if (!p->fname)
			buf_puts(&b, "users:");
		buf_printf(&b, " too many errors; stopping after %d",
		    USERS_ERRORS_MAX - 1);
		p->full = true;
		line = INT_MAX;
	} else {
		if (p->fname)
			buf_printf(&b, "%d: ", line);
		else
			buf_printf(&b, "line %d: ", line);
		va_start(ap, fmt);
		buf_vprintf(&b, fmt, ap);
		va_end(ap);
	}
	if (p->ne == p->cape) {
		p->cape = p->cape ? p->cape * 2 : 16;
		p->e = xrealloc(p->e, p->cape * sizeof(*p->e));
	}
	p->e[p->ne].line = line;
	p->e[p->ne].seq = p->ne;
	p->e[p->ne].msg = buf_steal(&b);
	p->ne++;
}

/* quoted - s[0..len) escaped and quoted for a message, cut at 64 bytes;
 * the caller frees.  Only for names and domains, never for secrets. */
static char *quoted(const char *s, size_t len)
{
	struct buf b = BUF_INIT;

	buf_putc(&b, '"');
	str_escape(&b, s, len > 64 ? 64 : len);
	if (len > 64)
		buf_puts(&b, "...");
	buf_putc(&b, '"');
	return buf_steal(&b);
}

/* is_blank - the white space allowed around fields */
static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

/* trim - drop blanks at both ends of [*s, *s + *n) */
static void trim(const char **s, size_t *n)
{
	while (*n > 0 && is_blank((*s)[0])) {
		(*s)++;
		(*n)--;
	}
	while (*n > 0 && is_blank((*s)[*n - 1]))
		(*n)--;
}

/* name_char - a byte allowed in an account name */
static bool name_char(char c)
{
	return ascii_isalnum(c) || c == '.' || c == '_' || c == '@' ||
	    c == '+' || c == '-';
}

/* hex_value - a hex digit's value, -1 for other bytes */
static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = ascii_tolower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* crypt_char - a byte of a crypt(3) hash (every libcrypt method) */
static bool crypt_char(char c)
{
	return ascii_isalnum(c) || c == '.' || c == '/' || c == '$' ||
	    c == '=' || c == ',' || c == '+' || c == '-';
}

/* wipe_free - clear n bytes of a secret, then free it */
static void wipe_free(char *s, size_t n)
{
	if (s) {
		explicit_bzero(s, n);
		free(s);
	}
}

/* domains_free - a domain vector */
static void domains_free(char **v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* rec_clear - free what a record owns, wiping its secret */
static void rec_clear(struct rec *r)
{
	free(r->name);
	wipe_free(r->data, r->dlen);
	explicit_bzero(r->cram, sizeof(r->cram));
	domains_free(r->domains, r->nd);
	memset(r, 0, sizeof(*r));
}

/* check_name - the name field; false after reporting */
static bool check_name(struct parser *p, int line, const char *s, size_t n)
{
	size_t i;
	char *q;

	if (n == 0) {
		err(p, line, "empty user name");
		return false;
	}
	if (n > USERS_NAME_MAX) {
		q = quoted(s, n);
		err(p, line, "user name %s longer than %d characters", q,
		    USERS_NAME_MAX);
		free(q);
		return false;
	}
	for (i = 0; i < n; i++) {
		if (!name_char(s[i])) {
			q = quoted(s, n);
			err(p, line, "bad character in user name %s "
			    "(allowed: A-Z a-z 0-9 . _ @ + -)", q);
			free(q);
			return false;
		}
	}
	return true;
}

/* check_crypt - the data of a crypt(3) scheme: prefix and alphabet */
static bool check_crypt(struct parser *p, int line, const char *scheme,
    const char *s, size_t n)
{
	size_t i;

	if (n == 0) {
		err(p, line, "{%s}: empty hash", scheme);
		return false;
	}
	if (n > USERS_HASH_MAX) {
		err(p, line, "{%s}: hash longer than %d characters", scheme,
		    USERS_HASH_MAX);
		return false;
	}
	for (i = 0; i < n; i++) {
		if (!crypt_char(s[i])) {
			err(p, line, "{%s}: bad character in hash", scheme);
			return false;
		}
	}
	if (strcmp(scheme, "SHA512-CRYPT") == 0 &&
	    !(n > 3 && memcmp(s, "$6$", 3) == 0)) {
		err(p, line, "{SHA512-CRYPT}: hash does not begin with $6$");
		return false;
	}
	if (strcmp(scheme, "BLF-CRYPT") == 0 &&
	    !(n > 4 && s[0] == '$' && s[1] == '2' &&
	    (s[2] == 'a' || s[2] == 'b' || s[2] == 'y') && s[3] == '$')) {
		err(p, line, "{BLF-CRYPT}: hash does not begin with $2b$ "
		    "(or $2a$, $2y$)");
		return false;
	}
	return true;
}

/* parse_secret - "{SCHEME}data" into r; false after reporting */
static bool parse_secret(struct parser *p, int line, const char *s,
    size_t n, struct rec *r)
{
	static const struct {
		const char *name;
		enum scheme scheme;
	} schemes[] = {
		{ "PLAIN", SCH_PLAIN },
		{ "CRAM-MD5", SCH_CRAM },
		{ "SHA512-CRYPT", SCH_CRYPT },
		{ "BLF-CRYPT", SCH_CRYPT },
		{ "CRYPT", SCH_CRYPT },
	};
	const char *close, *data, *sname = NULL;
	size_t i, slen, dlen;
	char *q;

	if (n == 0 || s[0] != '{') {
		err(p, line, "the secret does not begin with {SCHEME}");
		return false;
	}
	close = memchr(s, '}', n < 32 ? n : 32);
	if (close == NULL) {
		err(p, line, "the secret's {SCHEME} has no closing brace");
		return false;
	}
	slen = (size_t)(close - s - 1);
	for (i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
		if (str_caseeq_n(s + 1, slen, schemes[i].name)) {
			sname = schemes[i].name;
			r->scheme = schemes[i].scheme;
			break;
		}
	}
	if (sname == NULL) {
		q = quoted(s + 1, slen);
		err(p, line, "unknown scheme %s (use PLAIN, CRAM-MD5, "
		    "SHA512-CRYPT, BLF-CRYPT or CRYPT)", q);
		free(q);
		return false;
	}
	data = close + 1;
	dlen = n - slen - 2;

	switch (r->scheme) {
	case SCH_PLAIN:
		if (dlen == 0) {
			err(p, line, "{PLAIN}: empty password");
			return false;
		}
		if (dlen > USERS_PASSWORD_MAX) {
			err(p, line, "{PLAIN}: password longer than %d bytes",
			    USERS_PASSWORD_MAX);
			return false;
		}
		if (memchr(data, '\t', dlen) != NULL) {
			err(p, line, "{PLAIN}: control character in password");
			return false;
		}
		break;
	case SCH_CRAM:
		if (dlen != USERS_CRAM_HEX_LEN) {
			err(p, line, "{CRAM-MD5}: expected %d hex digits",
			    USERS_CRAM_HEX_LEN);
			return false;
		}
		for (i = 0; i < USERS_CRAM_CTX_LEN; i++) {
			int hi = hex_value(data[2 * i]);
			int lo = hex_value(data[2 * i + 1]);

			if (hi < 0 || lo < 0) {
				explicit_bzero(r->cram, sizeof(r->cram));
				err(p, line, "{CRAM-MD5}: expected %d hex "
				    "digits", USERS_CRAM_HEX_LEN);
				return false;
			}
			r->cram[i] = (unsigned char)(hi << 4 | lo);
		}
		return true;
	case SCH_CRYPT:
		if (!check_crypt(p, line, sname, data, dlen))
			return false;
		break;
	}
	r->data = xmemdup0(data, dlen);
	r->dlen = dlen;
	return true;
}

/* str_ptr_cmp - qsort() order of a vector of strings */
static int str_ptr_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* parse_domains - the comma-separated list into r; false after reporting */
static bool parse_domains(struct parser *p, int line, const char *s,
    size_t n, struct rec *r)
{
	size_t pos = 0, i;
	bool ok = true, empty_seen = false;
	char *q;

	trim(&s, &n);
	if (n == 0) {
		err(p, line, "no domains");
		return false;
	}
	r->domains = xcalloc(USERS_DOMAINS_MAX, sizeof(*r->domains));
	for (;;) {
		const char *d = s + pos, *comma, *errtext = NULL;
		size_t dl;

		comma = memchr(d, ',', n - pos);
		dl = comma ? (size_t)(comma - d) : n - pos;
		pos += dl + 1;
		trim(&d, &dl);
		if (dl == 0) {
			if (!empty_seen)
				err(p, line, "empty domain in the list");
			empty_seen = true;
			ok = false;
		} else if (smtp_domain_check(d, dl, &errtext) !=
		    SMTP_ADDR_OK) {
			q = quoted(d, dl);
			err(p, line, "bad domain %s: %s", q, errtext);
			free(q);
			ok = false;
		} else if (r->nd == USERS_DOMAINS_MAX) {
			err(p, line, "more than %d domains",
			    USERS_DOMAINS_MAX);
			ok = false;
			break;
		} else {
			char *dom = xmemdup0(d, dl);

			str_lower(dom);
			r->domains[r->nd++] = dom;
		}
		if (comma == NULL)
			break;
	}
	if (!ok)
		return false;
	r->domains = xrealloc(r->domains, r->nd * sizeof(*r->domains));
	qsort(r->domains, r->nd, sizeof(*r->domains), str_ptr_cmp);
	for (i = 1; i < r->nd; i++) {
		if (strcmp(r->domains[i - 1], r->domains[i]) == 0) {
			q = quoted(r->domains[i], strlen(r->domains[i]));
			err(p, line, "domain %s listed twice", q);
			free(q);
			ok = false;
			/* once per name, however many times it repeats */
			while (i + 1 < r->nd &&
			    strcmp(r->domains[i], r->domains[i + 1]) == 0)
				i++;
		}
	}
	return ok;
}

/* parse_line - one line (without its LF) */
static void parse_line(struct parser *p, const char *s, size_t n, int line)
{
	const char *c1, *c2;
	struct rec r;
	bool ok = true;
	size_t i;

	if (n > 0 && s[n - 1] == '\r')
		n--;
	if (n > USERS_LINE_MAX) {
		err(p, line, "line longer than %d bytes", USERS_LINE_MAX);
		return;
	}
	trim(&s, &n);
	if (n == 0 || s[0] == '#')
		return;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		/* not shown: the byte may be part of a password */
		if ((c < 0x20 && c != '\t') || c == 0x7f) {
			err(p, line, "control character in the line");
			return;
		}
	}
	c1 = memchr(s, ':', n);
	c2 = memrchr(s, ':', n);
	if (c1 == NULL || c1 == c2) {
		err(p, line, "expected name:{SCHEME}secret:domain,...");
		return;
	}

	memset(&r, 0, sizeof(r));
	r.line = line;
	if (!check_name(p, line, s, (size_t)(c1 - s)))
		ok = false;
	if (!parse_secret(p, line, c1 + 1, (size_t)(c2 - c1 - 1), &r))
		ok = false;
	if (!parse_domains(p, line, c2 + 1, (size_t)(s + n - c2 - 1), &r))
		ok = false;
	if (!ok) {
		rec_clear(&r);
		return;
	}
	r.name = xmemdup0(s, (size_t)(c1 - s));
	if (p->nr == p->capr) {
		p->capr = p->capr ? p->capr * 2 : 16;
		p->r = xrealloc(p->r, p->capr * sizeof(*p->r));
	}
	p->r[p->nr++] = r;
}

/* rec_cmp - records by name, then line */
static int rec_cmp(const void *a, const void *b)
{
	const struct rec *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	if (c != 0)
		return c;
	return (x->line > y->line) - (x->line < y->line);
}

/* perr_cmp - errors by line, then by the order they were found */
static int perr_cmp(const void *a, const void *b)
{
	const struct perr *x = a, *y = b;

	if (x->line != y->line)
		return (x->line > y->line) - (x->line < y->line);
	return (x->seq > y->seq) - (x->seq < y->seq);
}

/* serves - the mechanisms a record's secret serves */
static unsigned serves(const struct rec *r)
{
	switch (r->scheme) {
	case SCH_PLAIN:
		return SERVES_PASSWORD | SERVES_CRAM;
	case SCH_CRAM:
		return SERVES_CRAM;
	case SCH_CRYPT:
		return SERVES_PASSWORD;
	}
	return 0;
}

/* same_domains - two sorted domain vectors hold the same names */
static bool same_domains(const struct rec *a, const struct rec *b)
{
	size_t i;

	if (a->nd != b->nd)
		return false;
	for (i = 0; i < a->nd; i++) {
		if (strcmp(a->domains[i], b->domains[i]) != 0)
			return false;
	}
	return true;
}

/* check_group - the cross-line rules for recs[0..n), all of one name */
static void check_group(struct parser *p, const struct rec *g, size_t n)
{
	int pw_line = 0, cram_line = 0;
	size_t i;
	char *q = quoted(g[0].name, strlen(g[0].name));

	for (i = 0; i < n; i++) {
		unsigned sv = serves(&g[i]);

		if (i > 0 && !same_domains(&g[0], &g[i]))
			err(p, g[i].line, "user %s: the domains differ from "
			    "those on line %d", q, g[0].line);
		if ((sv & SERVES_PASSWORD) && pw_line)
			err(p, g[i].line, "user %s: a second secret for "
			    "PLAIN/LOGIN (the first is on line %d)", q,
			    pw_line);
		else if ((sv & SERVES_CRAM) && cram_line)
			err(p, g[i].line, "user %s: a second secret for "
			    "CRAM-MD5 (the first is on line %d)", q,
			    cram_line);
		if ((sv & SERVES_PASSWORD) && !pw_line)
			pw_line = g[i].line;
		if ((sv & SERVES_CRAM) && !cram_line)
			cram_line = g[i].line;
	}
	free(q);
}

/* merge_group - make one account of recs[0..n), taking their storage */
static void merge_group(struct users_account *a, struct rec *g, size_t n)
{
	size_t i;

	a->name = g[0].name;
	g[0].name = NULL;
	a->domains = g[0].domains;
	a->ndomains = g[0].nd;
	g[0].domains = NULL;
	g[0].nd = 0;
	for (i = 0; i < n; i++) {
		switch (g[i].scheme) {
		case SCH_PLAIN:
			a->plain = g[i].data;
			a->plain_len = g[i].dlen;
			g[i].data = NULL;
			break;
		case SCH_CRYPT:
			a->hash = g[i].data;
			a->hash_line = g[i].line;
			g[i].data = NULL;
			break;
		case SCH_CRAM:
			a->has_cram = true;
			memcpy(a->cram, g[i].cram, sizeof(a->cram));
			break;
		}
		rec_clear(&g[i]);
	}
}

/* users_parse - text to a table, or NULL and every error */
struct users *users_parse(const char *text, size_t len, const char *name,
    struct buf *errs)
{
	struct parser p;
	struct users *u = NULL;
	size_t pos = 0, i, j, nacc = 0;
	int line = 0;

	memset(&p, 0, sizeof(p));
	p.fname = name;
	while (pos < len && !p.full) {
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t end = nl ? (size_t)(nl - text) : len;

		if (line == INT_MAX - 1) {
			err(&p, line, "too many lines");
			break;
		}
		parse_line(&p, text + pos, end - pos, ++line);
		pos = end + 1;
	}

	if (p.nr > 0)
		qsort(p.r, p.nr, sizeof(*p.r), rec_cmp);
	for (i = 0; i < p.nr; i = j) {
		for (j = i + 1; j < p.nr; j++) {
			if (strcmp(p.r[i].name, p.r[j].name) != 0)
				break;
		}
		check_group(&p, p.r + i, j - i);
		nacc++;
	}

	if (p.ne == 0) {
		u = xcalloc(1, sizeof(*u));
		u->refcnt = 1;
		u->v = xcalloc(nacc, sizeof(*u->v));
		for (i = 0; i < p.nr; i = j) {
			for (j = i + 1; j < p.nr; j++) {
				if (strcmp(p.r[i].name, p.r[j].name) != 0)
					break;
			}
			merge_group(&u->v[u->n++], p.r + i, j - i);
		}
	} else {
		for (i = 0; i < p.nr; i++)
			rec_clear(&p.r[i]);
		qsort(p.e, p.ne, sizeof(*p.e), perr_cmp);
		for (i = 0; i < p.ne; i++) {
			if (errs) {
				buf_puts(errs, p.e[i].msg);
				buf_putc(errs, '\n');
			}
			free(p.e[i].msg);
		}
	}
	free(p.r);
	free(p.e);
	return u;
}

/* users_ref - one more reference; atomic, as for struct config */
struct users *users_ref(struct users *u)
{
	__atomic_add_fetch(&u->refcnt, 1, __ATOMIC_RELAXED);
	return u;
}

/* users_free - drop a reference; the last one wipes and frees */
void users_free(struct users *u)
{
	size_t i;

	if (u == NULL || __atomic_sub_fetch(&u->refcnt, 1,
	    __ATOMIC_ACQ_REL) != 0)
		return;
	for (i = 0; i < u->n; i++) {
		struct users_account *a = &u->v[i];

		free(a->name);
		domains_free(a->domains, a->ndomains);
		wipe_free(a->plain, a->plain_len);
		if (a->hash)
			wipe_free(a->hash, strlen(a->hash));
		explicit_bzero(a->cram, sizeof(a->cram));
	}
	free(u->v);
	free(u);
}

/* users_count - the number of accounts */
size_t users_count(const struct users *u)
{
	return u ? u->n : 0;
}

/* users_at - the accounts in name order */
const struct users_account *users_at(const struct users *u, size_t i)
{
	return u != NULL && i < u->n ? &u->v[i] : NULL;
}

/* users_find - binary search by name */
const struct users_account *users_find(const struct users *u,
    const char *name)
{
	size_t lo = 0, hi;

	if (u == NULL || name == NULL)
		return NULL;
	hi = u->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(name, u->v[mid].name);

		if (c == 0)
			return &u->v[mid];
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

/* users_find_n - a counted name: no empty, over-long or NUL-cut names */
const struct users_account *users_find_n(const struct users *u,
    const char *name, size_t len)
{
	char tmp[USERS_NAME_MAX + 1];

	if (len == 0 || len > USERS_NAME_MAX || memchr(name, '\0', len))
		return NULL;
	memcpy(tmp, name, len);
	tmp[len] = '\0';
	return users_find(u, tmp);
}

/* users_account_name - the account's name */
const char *users_account_name(const struct users_account *a)
{
	return a->name;
}

/* users_account_ndomains - how many domains it may collect */
size_t users_account_ndomains(const struct users_account *a)
{
	return a->ndomains;
}

/* users_account_domain - the i-th domain, NULL past the end */
const char *users_account_domain(const struct users_account *a, size_t i)
{
	return i < a->ndomains ? a->domains[i] : NULL;
}

/* users_account_can_password - {PLAIN} or a crypt hash */
bool users_account_can_password(const struct users_account *a)
{
	return a->plain != NULL || a->hash != NULL;
}

/* users_account_can_cram - {PLAIN} or {CRAM-MD5} */
bool users_account_can_cram(const struct users_account *a)
{
	return a->plain != NULL || a->has_cram;
}

/* dom_cmp - strcmp() order of domain (any case) against a lower-case one */
static int dom_cmp(const char *d, const char *stored)
{
	size_t i;

	for (i = 0;; i++) {
		unsigned char x = (unsigned char)ascii_tolower(d[i]);
		unsigned char y = (unsigned char)stored[i];

		if (x != y)
			return x < y ? -1 : 1;
		if (x == '\0')
			return 0;
	}
}

/* users_may_collect - an exact (case-blind) match on a listed domain */
bool users_may_collect(const struct users_account *a, const char *domain)
{
	size_t lo = 0, hi;

	if (a == NULL || domain == NULL)
		return false;
	hi = a->ndomains;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = dom_cmp(domain, a->domains[mid]);

		if (c == 0)
			return true;
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return false;
}
