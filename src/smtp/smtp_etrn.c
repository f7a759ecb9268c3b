/* smtp_etrn - the arguments of ETRN (RFC 1985) and ATRN (RFC 2645) */
#include "smtp/smtp_etrn.h"
#include "smtp/smtp_addr.h"
#include "util/strutil.h"

#include <string.h>

enum smtp_etrn_status smtp_etrn_parse(const char *arg, size_t len,
    struct smtp_etrn *out)
{
	size_t i;

	memset(out, 0, sizeof(*out));
	/* the command parser trims trailing spaces; leading ones are ours */
	while (len > 0 && (*arg == ' ' || *arg == '\t')) {
		arg++;
		len--;
	}
	if (len == 0)
		return SMTP_ETRN_EMPTY;
	if (arg[0] == '#') {
		out->kind = SMTP_ETRN_QUEUE;
		arg++;
		len--;
		if (len == 0 || len > 64)
			return SMTP_ETRN_BAD;
		for (i = 0; i < len; i++)
			if (!ascii_isalnum(arg[i]) && arg[i] != '.' &&
			    arg[i] != '_' && arg[i] != '-')
				return SMTP_ETRN_BAD;
	} else {
		if (arg[0] == '@') {
			out->kind = SMTP_ETRN_SUBTREE;
			arg++;
			len--;
		} else {
			out->kind = SMTP_ETRN_NODE;
		}
		if (len == 0 || len > SMTP_ETRN_NAME_MAX ||
		    smtp_domain_check(arg, len, NULL) != SMTP_ADDR_OK)
			return SMTP_ETRN_BAD;
	}
	memcpy(out->name, arg, len);
	out->name[len] = '\0';
	str_lower(out->name);
	return SMTP_ETRN_OK;
}

enum smtp_etrn_status smtp_atrn_parse(const char *arg, size_t len,
    struct smtp_atrn *out)
{
	size_t start = 0, i;

	memset(out, 0, sizeof(*out));
	while (len > 0 && (arg[len - 1] == ' ' || arg[len - 1] == '\t'))
		len--;
	while (start < len && (arg[start] == ' ' || arg[start] == '\t'))
		start++;
	if (start == len)
		return SMTP_ETRN_OK;	/* all of the account's domains */
	while (start <= len) {
		const char *comma = memchr(arg + start, ',', len - start);
		size_t end = comma ? (size_t)(comma - arg) : len, a = start, b = end;
		char name[SMTP_ETRN_NAME_MAX + 1];

		while (a < b && (arg[a] == ' ' || arg[a] == '\t'))
			a++;
		while (b > a && (arg[b - 1] == ' ' || arg[b - 1] == '\t'))
			b--;
		if (b == a || b - a > SMTP_ETRN_NAME_MAX ||
		    smtp_domain_check(arg + a, b - a, NULL) != SMTP_ADDR_OK)
			return SMTP_ETRN_BAD;
		memcpy(name, arg + a, b - a);
		name[b - a] = '\0';
		str_lower(name);
		for (i = 0; i < out->n; i++)
			if (strcmp(out->domain[i], name) == 0)
				break;
		if (i == out->n) {
			if (out->n == SMTP_ATRN_MAX)
				return SMTP_ETRN_BAD;
			memcpy(out->domain[out->n++], name, b - a + 1);
		}
		if (comma == NULL)
			break;
		start = end + 1;
	}
	return SMTP_ETRN_OK;
}
