/* smtp_etrn - the argument of ETRN (RFC 1985) */
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
