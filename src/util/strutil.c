/* strutil - ASCII string helpers with explicit lengths */
#include "util/strutil.h"

#include <string.h>

void str_lower(char *s)
{
	for (; *s; s++)
		*s = ascii_tolower(*s);
}

bool str_caseeq_n(const char *s, size_t len, const char *lit)
{
	size_t n = strlen(lit);

	if (n != len)
		return false;
	return str_caseprefix(s, len, lit);
}

bool str_caseprefix(const char *s, size_t len, const char *lit)
{
	size_t i;

	for (i = 0; lit[i]; i++) {
		if (i >= len || ascii_tolower(s[i]) != ascii_tolower(lit[i]))
			return false;
	}
	return true;
}

void domain_rkey(struct buf *out, const char *dom, size_t len)
{
	size_t end = len;

	while (end > 0) {
		size_t start = end;

		while (start > 0 && dom[start - 1] != '.')
			start--;
		if (end > start) {
			buf_append(out, dom + start, end - start);
			buf_putc(out, '.');
		}
		if (start == 0)
			break;
		end = start - 1;
	}
}

bool domain_within(const char *dom, const char *parent)
{
	size_t dl = strlen(dom), pl = strlen(parent);
	size_t i;

	if (pl == 0 || dl < pl)
		return false;
	for (i = 0; i < pl; i++) {
		if (ascii_tolower(dom[dl - pl + i]) != ascii_tolower(parent[i]))
			return false;
	}
	return dl == pl || dom[dl - pl - 1] == '.';
}

void str_escape(struct buf *out, const char *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c >= 0x20 && c < 0x7f && c != '\\') {
			buf_putc(out, (char)c);
		} else {
			char e[4] = { '\\', 'x', hex[c >> 4], hex[c & 15] };

			buf_append(out, e, 4);
		}
	}
}

bool str_parse_u64(const char *s, size_t len, unsigned long long *out)
{
	unsigned long long v = 0;
	size_t i;

	if (len == 0)
		return false;
	for (i = 0; i < len; i++) {
		unsigned d;

		if (s[i] < '0' || s[i] > '9')
			return false;
		d = (unsigned)(s[i] - '0');
		if (v > (~0ULL - d) / 10)
			return false;
		v = v * 10 + d;
	}
	*out = v;
	return true;
}

const char *str_next_line(const char **p, const char *end, size_t *len)
{
	const char *line = *p, *nl;

	if (line == NULL || line >= end)
		return NULL;
	nl = memchr(line, '\n', (size_t)(end - line));
	*len = (size_t)((nl ? nl : end) - line);
	*p = nl ? nl + 1 : end;
	return line;
}

bool str_copy_line(char *out, size_t size, const char *s, size_t n)
{
	if (n == 0 || n >= size)
		return false;
	memcpy(out, s, n);
	out[n] = '\0';
	return true;
}
