/*
 * fuzz_smtp_etrn - the ETRN and ATRN argument parsers on any bytes: no
 * crash, and what they accept is always a lower-case host name (or queue
 * name) with no byte a log line, a file name or SQL could trip on.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/smtp_etrn.h"

static void check_name(const char *s, int queue)
{
	size_t i, n = strlen(s);

	if (n == 0 || n > SMTP_ETRN_NAME_MAX)
		abort();
	for (i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '.' || (queue && c == '_')))
			abort();
	}
	if (!queue && (s[0] == '.' || s[n - 1] == '.' || strstr(s, "..")))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smtp_etrn e;
	struct smtp_atrn a;
	size_t i;

	if (smtp_etrn_parse((const char *)data, size, &e) == SMTP_ETRN_OK)
		check_name(e.name, e.kind == SMTP_ETRN_QUEUE);
	if (smtp_atrn_parse((const char *)data, size, &a) == SMTP_ETRN_OK) {
		if (a.n > SMTP_ATRN_MAX)
			abort();
		for (i = 0; i < a.n; i++)
			check_name(a.domain[i], 0);
	}
	return 0;
}
