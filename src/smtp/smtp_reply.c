/* smtp_reply - the delivery client's strict, bounded reply parser */
#include "smtp/smtp_reply.h"

#include <string.h>

#include "util/strutil.h"

/* bad - record why the reply is refused; BAD is sticky */
static enum smtp_reply_status bad(struct smtp_reply *r, const char *why)
{
	r->status = SMTP_REPLY_BAD;
	r->error = why;
	return SMTP_REPLY_BAD;
}

/* smtp_reply_init - empty, waiting for the first line */
void smtp_reply_init(struct smtp_reply *r)
{
	memset(r, 0, sizeof(*r));
	r->status = SMTP_REPLY_MORE;
}

/* smtp_reply_reset - empty again for the next reply, storage kept */
void smtp_reply_reset(struct smtp_reply *r)
{
	buf_reset(&r->text);
	r->code = 0;
	r->nlines = 0;
	r->status = SMTP_REPLY_MORE;
	r->error = NULL;
}

/* smtp_reply_free - release the text buffer */
void smtp_reply_free(struct smtp_reply *r)
{
	buf_free(&r->text);
	smtp_reply_init(r);
}

/* reply_code - the code of line[0..3), or -1 when it is not a reply code */
static int reply_code(const char *line)
{
	if (line[0] < '2' || line[0] > '5' ||
	    line[1] < '0' || line[1] > '5' ||
	    line[2] < '0' || line[2] > '9')
		return -1;
	return (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
}

/* text_ok - no NUL, CR, LF or other control byte than TAB; DEL refused */
static bool text_ok(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return false;
	}
	return true;
}

/* smtp_reply_feed - check one line and add its text to the reply */
enum smtp_reply_status smtp_reply_feed(struct smtp_reply *r, const char *line,
    size_t len)
{
	const char *text;
	size_t tlen, need;
	bool last;
	int code;

	if (r->status != SMTP_REPLY_MORE)
		return bad(r, "line after the end of the reply");
	/*
	 * The length check comes first so that a huge line costs nothing;
	 * the reader should never hand one over.
	 */
	if (len > SMTP_REPLY_LINE_MAX - 2)
		return bad(r, "reply line too long");
	if (len < 3 || line == NULL)
		return bad(r, "reply line shorter than a code");
	if ((code = reply_code(line)) < 0)
		return bad(r, "malformed reply code");
	if (r->nlines > 0 && code != r->code)
		return bad(r, "reply code changed between lines");
	if (len == 3 || line[3] == ' ')
		last = true;
	else if (line[3] == '-')
		last = false;
	else
		return bad(r, "no space or hyphen after the reply code");
	if (r->nlines >= SMTP_REPLY_MAX_LINES)
		return bad(r, "too many reply lines");

	text = len > 4 ? line + 4 : "";
	tlen = len > 4 ? len - 4 : 0;
	if (!text_ok(text, tlen))
		return bad(r, "control character in reply text");
	need = tlen + (r->nlines > 0 ? 1 : 0);
	if (r->text.len + need > SMTP_REPLY_MAX_TEXT)
		return bad(r, "reply text too long");

	if (r->nlines > 0)
		buf_putc(&r->text, '\n');
	buf_append(&r->text, text, tlen);
	r->code = code;
	r->nlines++;
	r->status = last ? SMTP_REPLY_DONE : SMTP_REPLY_MORE;
	return r->status;
}

/* first_line - the first line's text and its length */
static const char *first_line(const struct smtp_reply *r, size_t *len)
{
	const char *t = buf_cstr(&r->text);
	const char *nl = memchr(t, '\n', r->text.len);

	*len = nl ? (size_t)(nl - t) : r->text.len;
	return t;
}

/* digits - length of the run of 1..3 digits at s[i..len), 0 if none or more */
static size_t digits(const char *s, size_t i, size_t len)
{
	size_t n = 0;

	while (i + n < len && s[i + n] >= '0' && s[i + n] <= '9')
		n++;
	return n >= 1 && n <= 3 ? n : 0;
}

/* smtp_reply_enhanced - "x.y.z" at the start of the first line */
const char *smtp_reply_enhanced(const struct smtp_reply *r, char out[16])
{
	const char *t;
	size_t len, i, n;
	int cls;

	out[0] = '\0';
	if (r->nlines == 0)
		return NULL;
	cls = r->code / 100;
	if (cls != 2 && cls != 4 && cls != 5)
		return NULL;
	t = first_line(r, &len);
	if (len < 5 || t[0] != (char)('0' + cls) || t[1] != '.')
		return NULL;
	i = 2;
	if ((n = digits(t, i, len)) == 0)
		return NULL;
	i += n;
	if (i >= len || t[i] != '.')
		return NULL;
	i++;
	if ((n = digits(t, i, len)) == 0)
		return NULL;
	i += n;
	if (i < len && t[i] != ' ')
		return NULL;
	/* at most "5.999.999": 9 bytes */
	memcpy(out, t, i);
	out[i] = '\0';
	return out;
}

/* is_kwchar - a character of an EHLO keyword (RFC 5321 4.1.1.1) */
static bool is_kwchar(char c)
{
	return ascii_isalnum(c) || c == '-';
}

/* is_mechchar - a character of a SASL mechanism name (RFC 4422 3.1) */
static bool is_mechchar(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	    (c >= '0' && c <= '9') || c == '-' || c == '_';
}

/* has_mech - the space-separated list already holds mech (upper case) */
static bool has_mech(const char *list, const char *mech, size_t mlen)
{
	const char *p = list;

	while (*p != '\0') {
		size_t n = strcspn(p, " ");

		if (n == mlen && memcmp(p, mech, n) == 0)
			return true;
		p += n;
		if (*p == ' ')
			p++;
	}
	return false;
}

/* add_mechs - the mechanisms in s[0..len) into caps->auth_mechs */
static void add_mechs(struct smtp_ehlo_caps *caps, const char *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		char mech[21];
		size_t start, n, have, k;
		bool ok = true;

		while (i < len && (s[i] == ' ' || s[i] == '\t'))
			i++;
		start = i;
		while (i < len && s[i] != ' ' && s[i] != '\t')
			i++;
		n = i - start;
		if (n == 0)
			break;
		if (n > 20)
			continue;
		for (k = 0; k < n; k++) {
			if (!is_mechchar(s[start + k])) {
				ok = false;
				break;
			}
			mech[k] = s[start + k];
			if (mech[k] >= 'a' && mech[k] <= 'z')
				mech[k] = (char)(mech[k] - 'a' + 'A');
		}
		mech[n] = '\0';
		if (!ok || has_mech(caps->auth_mechs, mech, n))
			continue;
		have = strlen(caps->auth_mechs);
		if (have + (have ? 1 : 0) + n > SMTP_EHLO_AUTH_MAX)
			continue;
		if (have)
			caps->auth_mechs[have++] = ' ';
		memcpy(caps->auth_mechs + have, mech, n + 1);
	}
}

/* ehlo_line - one "keyword [params]" line */
static void ehlo_line(struct smtp_ehlo_caps *caps, const char *s, size_t len)
{
	const char *par;
	size_t k = 0, plen;

	while (k < len && is_kwchar(s[k]))
		k++;
	if (k == 0)
		return;
	if (k < len && s[k] != ' ' &&
	    !(s[k] == '=' && str_caseeq_n(s, k, "AUTH")))
		return;
	par = k < len ? s + k + 1 : "";
	plen = k < len ? len - k - 1 : 0;

	if (str_caseeq_n(s, k, "PIPELINING"))
		caps->pipelining = true;
	else if (str_caseeq_n(s, k, "STARTTLS"))
		caps->starttls = true;
	else if (str_caseeq_n(s, k, "8BITMIME"))
		caps->eightbitmime = true;
	else if (str_caseeq_n(s, k, "DSN"))
		caps->dsn = true;
	else if (str_caseeq_n(s, k, "ENHANCEDSTATUSCODES"))
		caps->enhancedstatuscodes = true;
	else if (str_caseeq_n(s, k, "SMTPUTF8"))
		caps->smtputf8 = true;
	else if (str_caseeq_n(s, k, "CHUNKING"))
		caps->chunking = true;
	else if (str_caseeq_n(s, k, "AUTH")) {
		caps->auth = true;
		add_mechs(caps, par, plen);
	} else if (str_caseeq_n(s, k, "SIZE")) {
		unsigned long long v;
		size_t n = 0;

		while (n < plen && par[n] != ' ' && par[n] != '\t')
			n++;
		if (n == 0) {
			caps->has_size = true;
			caps->size = 0;
		} else if (str_parse_u64(par, n, &v)) {
			caps->has_size = true;
			caps->size = v;
		}
	}
}

/* smtp_ehlo_caps - the extensions a 250 EHLO reply offers */
void smtp_ehlo_caps(const struct smtp_reply *r, struct smtp_ehlo_caps *caps)
{
	const char *t, *end, *nl;

	memset(caps, 0, sizeof(*caps));
	if (r->status != SMTP_REPLY_DONE || r->code != 250)
		return;
	t = buf_cstr(&r->text);
	end = t + r->text.len;
	/* the first line is the greeting; keywords start on the second */
	nl = memchr(t, '\n', r->text.len);
	while (nl != NULL) {
		t = nl + 1;
		nl = memchr(t, '\n', (size_t)(end - t));
		ehlo_line(caps, t, nl ? (size_t)(nl - t) : (size_t)(end - t));
	}
}

/* escaped_len - the length of byte c after str_escape() */
static size_t escaped_len(unsigned char c)
{
	return (c >= 0x20 && c < 0x7f && c != '\\') ? 1 : 4;
}

/* smtp_reply_format_log - the reply on one escaped, bounded line */
void smtp_reply_format_log(const struct smtp_reply *r, struct buf *out)
{
	struct buf raw = BUF_INIT;
	size_t i, total = 0, used = 0;

	if (r->nlines == 0)
		return;
	buf_printf(&raw, "%03d", r->code);
	if (r->text.len > 0)
		buf_putc(&raw, ' ');
	for (i = 0; i < r->text.len; i++) {
		if (r->text.p[i] == '\n')
			buf_puts(&raw, "; ");
		else
			buf_putc(&raw, r->text.p[i]);
	}

	for (i = 0; i < raw.len; i++)
		total += escaped_len((unsigned char)raw.p[i]);
	if (total <= SMTP_REPLY_LOG_MAX) {
		str_escape(out, raw.p, raw.len);
		buf_free(&raw);
		return;
	}
	/* cut between escapes, leaving room for the "..." */
	for (i = 0; i < raw.len; i++) {
		size_t n = escaped_len((unsigned char)raw.p[i]);

		if (used + n > SMTP_REPLY_LOG_MAX - 3)
			break;
		used += n;
	}
	str_escape(out, raw.p, i);
	buf_puts(out, "...");
	buf_free(&raw);
}
