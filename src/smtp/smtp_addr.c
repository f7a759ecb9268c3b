/* smtp_addr - reverse-path, forward-path and ESMTP parameters */
#include "smtp/smtp_addr.h"

#include <string.h>

#include "util/strutil.h"

#define SMTP_LABEL_MAX 63
#define SMTP_PARAMS_MAX 16	/* more is abuse, not a real client (P7) */

#define KIND_MAIL 1u
#define KIND_RCPT 2u

enum param_id {
	PARAM_SIZE,
	PARAM_BODY,
	PARAM_RET,
	PARAM_ENVID,
	PARAM_AUTH,
	PARAM_NOTIFY,
	PARAM_ORCPT,
};

struct param_def {
	const char *name;
	unsigned kinds;		/* KIND_* where the parameter is allowed */
	enum param_id id;
};

static const struct param_def param_table[] = {
	{ "SIZE", KIND_MAIL, PARAM_SIZE },
	{ "BODY", KIND_MAIL, PARAM_BODY },
	{ "RET", KIND_MAIL, PARAM_RET },
	{ "ENVID", KIND_MAIL, PARAM_ENVID },
	{ "AUTH", KIND_MAIL, PARAM_AUTH },
	{ "NOTIFY", KIND_RCPT, PARAM_NOTIFY },
	{ "ORCPT", KIND_RCPT, PARAM_ORCPT },
};

/* xtext_decode results */
enum xtext_res { XTEXT_OK, XTEXT_BAD, XTEXT_LONG };

/* fail - record the reply text for an error and pass the status through */
static enum smtp_addr_status fail(const char **errtext,
    enum smtp_addr_status st, const char *text)
{
	if (errtext != NULL)
		*errtext = text;
	return st;
}

/* is_digit - ASCII decimal digit, independent of the locale */
static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* is_ldh - letter, digit or hyphen: what a domain label may hold */
static bool is_ldh(char c)
{
	return ascii_isalnum(c) || c == '-';
}

/* is_atext - RFC 5322 atext: what a dot-string atom may hold */
static bool is_atext(char c)
{
	if (ascii_isalnum(c))
		return true;
	switch (c) {
	case '!': case '#': case '$': case '%': case '&': case '\'':
	case '*': case '+': case '-': case '/': case '=': case '?':
	case '^': case '_': case '`': case '{': case '|': case '}':
	case '~':
		return true;
	default:
		return false;
	}
}

/* is_print - printable ASCII including the space */
static bool is_print(char c)
{
	return c >= 0x20 && c <= 0x7e;
}

/* hexval - value of an upper-case hex digit, -1 for anything else */
static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* smtp_domain_check - LDH domain name rules, no address literal */
enum smtp_addr_status smtp_domain_check(const char *s, size_t n,
    const char **errtext)
{
	size_t i = 0, start;
	bool digits;

	if (n == 0)
		return fail(errtext, SMTP_ADDR_SYNTAX, "empty domain");
	for (;;) {
		start = i;
		digits = true;
		while (i < n && s[i] != '.') {
			if (!is_ldh(s[i]))
				return fail(errtext, SMTP_ADDR_SYNTAX,
				    "bad character in domain");
			if (!is_digit(s[i]))
				digits = false;
			i++;
		}
		/* Also catches a leading, doubled or trailing dot. */
		if (i == start)
			return fail(errtext, SMTP_ADDR_SYNTAX,
			    "empty label in domain");
		if (i - start > SMTP_LABEL_MAX)
			return fail(errtext, SMTP_ADDR_TOO_LONG,
			    "domain label too long");
		if (s[start] == '-' || s[i - 1] == '-')
			return fail(errtext, SMTP_ADDR_SYNTAX,
			    "hyphen at the edge of a domain label");
		if (i == n)
			break;
		i++;
	}
	if (n > SMTP_DOMAIN_MAX)
		return fail(errtext, SMTP_ADDR_TOO_LONG, "domain too long");
	/*
	 * An all-digit last label means "1.2.3.4" dressed as a name; a host
	 * that wants an IP address must use the bracketed literal (R6).
	 */
	if (digits)
		return fail(errtext, SMTP_ADDR_SYNTAX,
		    "numeric top-level label (use an address literal)");
	return SMTP_ADDR_OK;
}

/* literal_ipv4 - s[0..n) is a dotted quad, each part 0..255 */
static bool literal_ipv4(const char *s, size_t n)
{
	size_t i = 0;
	int part;

	for (part = 0; part < 4; part++) {
		unsigned v = 0;
		size_t nd = 0;

		if (part > 0) {
			if (i >= n || s[i] != '.')
				return false;
			i++;
		}
		while (i < n && is_digit(s[i]) && nd < 3) {
			v = v * 10 + (unsigned)(s[i] - '0');
			nd++;
			i++;
		}
		if (nd == 0 || v > 255)
			return false;
	}
	return i == n;
}

/*
 * literal_ok - the inside of "[...]": a dotted quad or "IPv6:" and an
 * IPv6-looking string.  Deliberately loose for IPv6: the literal only
 * needs to be harmless and recognisable; whether it is ours is policy.
 */
static bool literal_ok(const char *s, size_t n)
{
	size_t i, colons = 0;

	if (!str_caseprefix(s, n, "IPv6:"))
		return literal_ipv4(s, n);
	for (i = 5; i < n; i++) {
		char c = ascii_tolower(s[i]);

		if (c == ':')
			colons++;
		else if (c != '.' && !is_digit(c) && (c < 'a' || c > 'f'))
			return false;
	}
	/* Every textual IPv6 address has at least two colons. */
	return colons >= 2;
}

/* scan_quoted - a quoted-string at a[*ip]; *ip moves past its end quote */
static enum smtp_addr_status scan_quoted(const char *a, size_t len,
    size_t *ip, const char **errtext)
{
	size_t i = *ip + 1;

	for (;;) {
		if (i >= len)
			return fail(errtext, SMTP_ADDR_SYNTAX, "unbalanced quote");
		if (a[i] == '"')
			break;
		if (a[i] == '\\') {
			if (i + 1 >= len || !is_print(a[i + 1]))
				return fail(errtext, SMTP_ADDR_SYNTAX,
				    "bad quoted pair in local part");
			i += 2;
			continue;
		}
		if (!is_print(a[i]))
			return fail(errtext, SMTP_ADDR_SYNTAX,
			    "bad character in local part");
		i++;
	}
	*ip = i + 1;
	return SMTP_ADDR_OK;
}

/* scan_dot_string - atoms of atext joined by single dots */
static enum smtp_addr_status scan_dot_string(const char *a, size_t len,
    size_t *ip, const char **errtext)
{
	size_t i = *ip, start;

	for (;;) {
		start = i;
		while (i < len && is_atext(a[i]))
			i++;
		if (i == start) {
			if (i == *ip && i < len && a[i] == '@')
				return fail(errtext, SMTP_ADDR_SYNTAX,
				    "empty local part");
			return fail(errtext, SMTP_ADDR_SYNTAX,
			    "bad local part");
		}
		if (i < len && a[i] == '.') {
			i++;
			continue;
		}
		break;
	}
	*ip = i;
	return SMTP_ADDR_OK;
}

/* scan_route - "@a,@b:" at a[*ip]: each domain checked, then forgotten */
static enum smtp_addr_status scan_route(const char *a, size_t len,
    size_t *ip, const char **errtext)
{
	enum smtp_addr_status st;
	size_t i = *ip, start;

	for (;;) {
		i++;			/* the '@' */
		start = i;
		while (i < len && (is_ldh(a[i]) || a[i] == '.'))
			i++;
		if ((st = smtp_domain_check(a + start, i - start,
		    errtext)) != SMTP_ADDR_OK)
			return st;
		if (i < len && a[i] == ':')
			break;
		if (i + 1 < len && a[i] == ',' && a[i + 1] == '@') {
			i++;
			continue;
		}
		return fail(errtext, SMTP_ADDR_SYNTAX, "bad source route");
	}
	*ip = i + 1;
	return SMTP_ADDR_OK;
}

/* has_route_chars - local part bytes another MTA might route on (R2, R3) */
static bool has_route_chars(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (s[i] == '@' || s[i] == '%' || s[i] == '!')
			return true;
	}
	return false;
}

/*
 * parse_path - the "<...>" at the start of a; *endp is set just past the
 * '>'.  Nothing is copied into p until every limit has been checked, so
 * the fixed-size fields can never overflow.
 */
static enum smtp_addr_status parse_path(const char *a, size_t len,
    enum smtp_addr_kind kind, struct smtp_path *p, size_t *endp,
    const char **errtext)
{
	enum smtp_addr_status st;
	size_t i = 1, lstart, llen, dstart, dlen, k;

	if (len == 0 || a[0] != '<')
		return fail(errtext, SMTP_ADDR_SYNTAX,
		    "path must be enclosed in <>");
	if (len > 1 && a[1] == '>') {
		if (kind != SMTP_ADDR_MAIL)
			return fail(errtext, SMTP_ADDR_NULL_NOT_ALLOWED,
			    "null path not allowed here");
		p->null = true;
		*endp = 2;
		return SMTP_ADDR_OK;
	}

	if (i < len && a[i] == '@' &&
	    (st = scan_route(a, len, &i, errtext)) != SMTP_ADDR_OK)
		return st;

	lstart = i;
	if (i < len && a[i] == '"') {
		if ((st = scan_quoted(a, len, &i, errtext)) != SMTP_ADDR_OK)
			return st;
		/* "" is legal RFC 5321 but names nobody; refuse it. */
		if (i - lstart == 2)
			return fail(errtext, SMTP_ADDR_SYNTAX,
			    "empty local part");
		p->quoted_local = true;
	} else if ((st = scan_dot_string(a, len, &i, errtext)) !=
	    SMTP_ADDR_OK)
		return st;
	llen = i - lstart;
	if (llen > SMTP_LOCAL_MAX)
		return fail(errtext, SMTP_ADDR_TOO_LONG, "local part too long");

	if (i >= len || a[i] != '@')
		return fail(errtext, SMTP_ADDR_SYNTAX,
		    "address must be local-part@domain");
	i++;

	dstart = i;
	if (i < len && a[i] == '[') {
		while (i < len && a[i] != ']' && a[i] != '>')
			i++;
		if (i >= len || a[i] != ']')
			return fail(errtext, SMTP_ADDR_SYNTAX,
			    "bad address literal");
		i++;
		dlen = i - dstart;
		if (dlen > SMTP_DOMAIN_MAX)
			return fail(errtext, SMTP_ADDR_TOO_LONG,
			    "domain too long");
		if (!literal_ok(a + dstart + 1, dlen - 2))
			return fail(errtext, SMTP_ADDR_SYNTAX,
			    "bad address literal");
		p->domain_literal = true;
	} else {
		while (i < len && (is_ldh(a[i]) || a[i] == '.'))
			i++;
		dlen = i - dstart;
		if ((st = smtp_domain_check(a + dstart, dlen, errtext)) !=
		    SMTP_ADDR_OK)
			return st;
	}

	if (i >= len || a[i] != '>')
		return fail(errtext, SMTP_ADDR_SYNTAX,
		    i >= len ? "missing >" : "junk in path");
	i++;
	/* The whole path as received, source route and brackets included. */
	if (i > SMTP_PATH_MAX)
		return fail(errtext, SMTP_ADDR_TOO_LONG, "path too long");

	memcpy(p->local, a + lstart, llen);
	p->local[llen] = '\0';
	for (k = 0; k < dlen; k++)
		p->domain[k] = ascii_tolower(a[dstart + k]);
	p->domain[dlen] = '\0';
	/* llen + 1 + dlen <= i - 2 <= SMTP_PATH_MAX - 2: it fits. */
	memcpy(p->addr, p->local, llen);
	p->addr[llen] = '@';
	memcpy(p->addr + llen + 1, p->domain, dlen + 1);
	p->local_has_route_chars = has_route_chars(p->local, llen);
	*endp = i;
	return SMTP_ADDR_OK;
}

/*
 * xtext_decode - RFC 3461 xtext in s[0..n) into out (at most outmax
 * bytes, then a NUL); out NULL only validates.  Stricter than the RFC's
 * reader: the hex digits must be upper case as its writer is told to
 * produce, and a decoded control character is refused, since the value
 * may end up in a DSN or a log (CVE-2020-28021, CVE-2020-28026).
 */
static enum xtext_res xtext_decode(const char *s, size_t n, char *out,
    size_t outmax, size_t *outlen)
{
	size_t i, o = 0;

	for (i = 0; i < n; i++) {
		char c = s[i];

		if (c == '+') {
			int hi, lo;

			if (n - i < 3)
				return XTEXT_BAD;
			hi = hexval(s[i + 1]);
			lo = hexval(s[i + 2]);
			if (hi < 0 || lo < 0)
				return XTEXT_BAD;
			c = (char)(hi * 16 + lo);
			i += 2;
			if (!is_print(c))
				return XTEXT_BAD;
		} else if (c < 0x21 || c > 0x7e || c == '=') {
			return XTEXT_BAD;
		}
		if (out != NULL) {
			if (o >= outmax)
				return XTEXT_LONG;
			out[o] = c;
		}
		o++;
	}
	if (out != NULL)
		out[o] = '\0';
	if (outlen != NULL)
		*outlen = o;
	return XTEXT_OK;
}

/* parse_size - RFC 1870: digits only, and no silent wrap-around (P8) */
static enum smtp_addr_status parse_size(const char *v, size_t n,
    struct smtp_params *pr, const char **errtext)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (!is_digit(v[i]))
			return fail(errtext, SMTP_ADDR_PARAM_BAD,
			    "SIZE must be digits");
	}
	if (!str_parse_u64(v, n, &pr->size))
		return fail(errtext, SMTP_ADDR_SIZE_OVERFLOW,
		    "SIZE too large");
	pr->has_size = true;
	return SMTP_ADDR_OK;
}

/* parse_notify - RFC 3461 4.1: NEVER alone, or a list of the others */
static enum smtp_addr_status parse_notify(const char *v, size_t n,
    struct smtp_params *pr, const char **errtext)
{
	size_t i = 0, start;
	unsigned bits = 0;

	for (;;) {
		start = i;
		while (i < n && v[i] != ',')
			i++;
		if (str_caseeq_n(v + start, i - start, "NEVER"))
			bits |= SMTP_NOTIFY_NEVER;
		else if (str_caseeq_n(v + start, i - start, "SUCCESS"))
			bits |= SMTP_NOTIFY_SUCCESS;
		else if (str_caseeq_n(v + start, i - start, "FAILURE"))
			bits |= SMTP_NOTIFY_FAILURE;
		else if (str_caseeq_n(v + start, i - start, "DELAY"))
			bits |= SMTP_NOTIFY_DELAY;
		else
			return fail(errtext, SMTP_ADDR_PARAM_BAD,
			    "NOTIFY must be NEVER or SUCCESS,FAILURE,DELAY");
		if (i == n)
			break;
		i++;
	}
	if ((bits & SMTP_NOTIFY_NEVER) && bits != SMTP_NOTIFY_NEVER)
		return fail(errtext, SMTP_ADDR_PARAM_BAD,
		    "NOTIFY=NEVER cannot be combined");
	pr->notify = bits;
	return SMTP_ADDR_OK;
}

/* parse_orcpt - "addr-type;xtext", stored decoded with its type */
static enum smtp_addr_status parse_orcpt(const char *v, size_t n,
    struct smtp_params *pr, const char **errtext)
{
	const char *semi = memchr(v, ';', n);
	size_t tlen, k;

	if (semi == NULL || semi == v || semi == v + n - 1)
		return fail(errtext, SMTP_ADDR_PARAM_BAD,
		    "ORCPT must be addr-type;xtext");
	tlen = (size_t)(semi - v);
	for (k = 0; k < tlen; k++) {
		if (!is_atext(v[k]))
			return fail(errtext, SMTP_ADDR_PARAM_BAD,
			    "ORCPT must be addr-type;xtext");
	}
	if (tlen + 1 >= SMTP_ORCPT_MAX)
		return fail(errtext, SMTP_ADDR_PARAM_BAD, "ORCPT too long");
	memcpy(pr->orcpt, v, tlen + 1);
	switch (xtext_decode(semi + 1, n - tlen - 1, pr->orcpt + tlen + 1,
	    SMTP_ORCPT_MAX - tlen - 1, NULL)) {
	case XTEXT_OK:
		break;
	case XTEXT_LONG:
		pr->orcpt[0] = '\0';
		return fail(errtext, SMTP_ADDR_PARAM_BAD, "ORCPT too long");
	case XTEXT_BAD:
		pr->orcpt[0] = '\0';
		return fail(errtext, SMTP_ADDR_PARAM_BAD, "bad ORCPT xtext");
	}
	pr->has_orcpt = true;
	return SMTP_ADDR_OK;
}

/* parse_value - check and store the value of a known parameter */
static enum smtp_addr_status parse_value(enum param_id id, const char *v,
    size_t n, struct smtp_params *pr, const char **errtext)
{
	switch (id) {
	case PARAM_SIZE:
		return parse_size(v, n, pr, errtext);
	case PARAM_BODY:
		if (str_caseeq_n(v, n, "7BIT"))
			pr->body = SMTP_BODY_7BIT;
		else if (str_caseeq_n(v, n, "8BITMIME"))
			pr->body = SMTP_BODY_8BITMIME;
		else
			return fail(errtext, SMTP_ADDR_PARAM_BAD,
			    "BODY must be 7BIT or 8BITMIME");
		return SMTP_ADDR_OK;
	case PARAM_RET:
		if (str_caseeq_n(v, n, "FULL"))
			pr->ret = SMTP_RET_FULL;
		else if (str_caseeq_n(v, n, "HDRS"))
			pr->ret = SMTP_RET_HDRS;
		else
			return fail(errtext, SMTP_ADDR_PARAM_BAD,
			    "RET must be FULL or HDRS");
		return SMTP_ADDR_OK;
	case PARAM_ENVID:
		switch (xtext_decode(v, n, pr->envid, SMTP_ENVID_MAX, NULL)) {
		case XTEXT_OK:
			pr->has_envid = true;
			return SMTP_ADDR_OK;
		case XTEXT_LONG:
			pr->envid[0] = '\0';
			return fail(errtext, SMTP_ADDR_PARAM_BAD,
			    "ENVID too long");
		case XTEXT_BAD:
			break;
		}
		pr->envid[0] = '\0';
		return fail(errtext, SMTP_ADDR_PARAM_BAD, "bad ENVID xtext");
	case PARAM_AUTH:
		/* "<>" is itself valid xtext; the value is never used. */
		if (xtext_decode(v, n, NULL, 0, NULL) != XTEXT_OK)
			return fail(errtext, SMTP_ADDR_PARAM_BAD,
			    "bad AUTH xtext");
		pr->has_auth = true;
		return SMTP_ADDR_OK;
	case PARAM_NOTIFY:
		return parse_notify(v, n, pr, errtext);
	case PARAM_ORCPT:
		return parse_orcpt(v, n, pr, errtext);
	}
	return fail(errtext, SMTP_ADDR_PARAM_UNKNOWN, "unknown parameter");
}

/* parse_param - one "keyword=value" token t[0..n) */
static enum smtp_addr_status parse_param(const char *t, size_t n,
    unsigned kindbit, unsigned *seen, struct smtp_params *pr,
    const char **errtext)
{
	const struct param_def *def = NULL;
	const char *eq;
	size_t i, klen;

	for (i = 0; i < n; i++) {
		if (t[i] < 0x21 || t[i] > 0x7e)
			return fail(errtext, SMTP_ADDR_PARAM_BAD,
			    "bad character in parameter");
	}
	/* A bare keyword (SMTPUTF8, ...) names an extension we lack. */
	if ((eq = memchr(t, '=', n)) == NULL)
		return fail(errtext, SMTP_ADDR_PARAM_UNKNOWN,
		    "unknown parameter");
	klen = (size_t)(eq - t);
	for (i = 0; i < sizeof(param_table) / sizeof(param_table[0]); i++) {
		if (str_caseeq_n(t, klen, param_table[i].name)) {
			def = &param_table[i];
			break;
		}
	}
	if (def == NULL || (def->kinds & kindbit) == 0)
		return fail(errtext, SMTP_ADDR_PARAM_UNKNOWN,
		    "unknown parameter");
	if (*seen & (1u << def->id))
		return fail(errtext, SMTP_ADDR_PARAM_DUP,
		    "duplicate parameter");
	*seen |= 1u << def->id;
	/* esmtp-value is 1*(%d33-60 / %d62-126): never empty, never '='. */
	if (klen + 1 == n)
		return fail(errtext, SMTP_ADDR_PARAM_BAD,
		    "parameter value missing");
	if (memchr(eq + 1, '=', n - klen - 1) != NULL)
		return fail(errtext, SMTP_ADDR_PARAM_BAD,
		    "'=' in parameter value");
	return parse_value(def->id, eq + 1, n - klen - 1, pr, errtext);
}

/* parse_params - space-separated parameters from a[i] to the end */
static enum smtp_addr_status parse_params(const char *a, size_t len,
    size_t i, enum smtp_addr_kind kind, struct smtp_params *pr,
    const char **errtext)
{
	unsigned kindbit = kind == SMTP_ADDR_MAIL ? KIND_MAIL : KIND_RCPT;
	unsigned seen = 0, count = 0;
	enum smtp_addr_status st;
	size_t start, k;

	if (i == len)
		return SMTP_ADDR_OK;
	if (a[i] != ' ')
		return fail(errtext, SMTP_ADDR_SYNTAX, "junk after path");

	/*
	 * Count first: a flood of parameters is refused as such, not
	 * reported as whatever its first bad member happens to be.
	 */
	for (k = i; k < len; k++) {
		if (a[k] != ' ' && (k == i || a[k - 1] == ' '))
			count++;
	}
	if (count > SMTP_PARAMS_MAX)
		return fail(errtext, SMTP_ADDR_PARAM_BAD,
		    "too many parameters");

	for (;;) {
		while (i < len && a[i] == ' ')
			i++;
		if (i == len)
			break;
		start = i;
		while (i < len && a[i] != ' ')
			i++;
		st = parse_param(a + start, i - start, kindbit, &seen, pr,
		    errtext);
		if (st != SMTP_ADDR_OK)
			return st;
	}
	return SMTP_ADDR_OK;
}

/* smtp_addr_parse - the path, then its ESMTP parameters */
enum smtp_addr_status smtp_addr_parse(const char *arg, size_t len,
    enum smtp_addr_kind kind, struct smtp_path *path,
    struct smtp_params *params, const char **errtext)
{
	enum smtp_addr_status st;
	size_t end = 0;

	memset(path, 0, sizeof(*path));
	memset(params, 0, sizeof(*params));
	if (errtext != NULL)
		*errtext = NULL;
	if ((st = parse_path(arg, len, kind, path, &end, errtext)) !=
	    SMTP_ADDR_OK)
		return st;
	return parse_params(arg, len, end, kind, params, errtext);
}

/* smtp_xtext_encode - RFC 3461 xtext, upper-case hex */
bool smtp_xtext_encode(const char *s, char *out, size_t outsz)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;

	if (outsz == 0)
		return false;
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c < 0x21 || c > 0x7e || c == '+' || c == '=') {
			if (outsz - o < 4)
				goto toolong;
			out[o++] = '+';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		} else {
			if (outsz - o < 2)
				goto toolong;
			out[o++] = (char)c;
		}
	}
	out[o] = '\0';
	return true;
toolong:
	out[0] = '\0';
	return false;
}
