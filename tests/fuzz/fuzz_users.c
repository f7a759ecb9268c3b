/* fuzz_users - libFuzzer target for users_parse(): no crash, no leak, and
 * what it accepts keeps the rules users.h promises */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/users.h"
#include "util/strutil.h"

/* name_ok - 1..64 of the name alphabet */
static int name_ok(const char *s)
{
	size_t n = strlen(s), i;

	if (n == 0 || n > USERS_NAME_MAX)
		return 0;
	for (i = 0; i < n; i++) {
		if (!ascii_isalnum(s[i]) && !strchr("._@+-", s[i]))
			return 0;
	}
	return 1;
}

/* check_account - one parsed account */
static void check_account(const struct users *u,
    const struct users_account *a)
{
	const char *name = users_account_name(a);
	size_t nd = users_account_ndomains(a), i;

	if (!name_ok(name) || users_find(u, name) != a)
		abort();
	if (users_find_n(u, name, strlen(name)) != a)
		abort();
	if (!users_account_can_password(a) && !users_account_can_cram(a))
		abort();
	if (nd == 0 || nd > USERS_DOMAINS_MAX)
		abort();
	for (i = 0; i < nd; i++) {
		const char *d = users_account_domain(a, i);
		char up[300];
		size_t k, dl = strlen(d);

		if (dl == 0 || dl >= sizeof(up))
			abort();
		/* lower case, sorted, unique */
		for (k = 0; k < dl; k++) {
			if (d[k] >= 'A' && d[k] <= 'Z')
				abort();
			up[k] = (d[k] >= 'a' && d[k] <= 'z') ?
			    (char)(d[k] - 32) : d[k];
		}
		up[dl] = '\0';
		if (i > 0 && strcmp(users_account_domain(a, i - 1), d) >= 0)
			abort();
		if (!users_may_collect(a, d) || !users_may_collect(a, up))
			abort();
	}
	if (users_account_domain(a, nd) != NULL)
		abort();
}

/* LLVMFuzzerTestOneInput - the input as a users file */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf errs = BUF_INIT;
	struct users *u;
	size_t i, lines = 0;

	u = users_parse((const char *)data, size, "f", &errs);
	if ((u == NULL) != (errs.len > 0))
		abort();
	if (u != NULL) {
		const struct users_account *prev = NULL;

		for (i = 0; i < users_count(u); i++) {
			const struct users_account *a = users_at(u, i);

			if (a == NULL)
				abort();
			check_account(u, a);
			if (prev && strcmp(users_account_name(prev),
			    users_account_name(a)) >= 0)
				abort();
			prev = a;
		}
		if (users_at(u, i) != NULL)
			abort();
		users_ref(u);
		users_free(u);
		users_free(u);
	} else {
		/* one message per line, each naming the file, at most 100 */
		if (errs.p[errs.len - 1] != '\n')
			abort();
		for (i = 0; i < errs.len; i++) {
			if (errs.p[i] == '\0')
				abort();
			if (errs.p[i] == '\n') {
				lines++;
				if (i + 1 < errs.len &&
				    strncmp(errs.p + i + 1, "f:", 2) != 0)
					abort();
			}
		}
		if (strncmp(errs.p, "f:", 2) != 0 || lines > USERS_ERRORS_MAX)
			abort();
	}
	buf_free(&errs);
	return 0;
}
