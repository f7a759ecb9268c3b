/* fuzz_smtp_addr - libFuzzer target for smtp_addr_parse() and xtext */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/smtp_addr.h"

static volatile size_t sink;

/* check_printable - every byte of s in lo..0x7e */
static void check_printable(const char *s, int lo)
{
	for (; *s != '\0'; s++) {
		if ((unsigned char)*s < lo || (unsigned char)*s > 0x7e)
			abort();
	}
}

/* check_path - the invariants of a path that parsed */
static void check_path(const struct smtp_path *p, enum smtp_addr_kind kind)
{
	const char *c;
	char both[SMTP_LOCAL_MAX + SMTP_DOMAIN_MAX + 2];

	if (strlen(p->addr) > SMTP_PATH_MAX ||
	    strlen(p->local) > SMTP_LOCAL_MAX ||
	    strlen(p->domain) > SMTP_DOMAIN_MAX)
		abort();
	if (p->null) {
		if (kind != SMTP_ADDR_MAIL || p->addr[0] || p->local[0] ||
		    p->domain[0] || p->domain_literal || p->quoted_local)
			abort();
		return;
	}
	if (p->local[0] == '\0' || p->domain[0] == '\0')
		abort();
	for (c = p->domain; *c != '\0'; c++) {
		if ((unsigned char)*c < 0x21 || (unsigned char)*c > 0x7e ||
		    (*c >= 'A' && *c <= 'Z'))
			abort();
	}
	check_printable(p->local, 0x20);
	if (p->domain_literal != (p->domain[0] == '['))
		abort();
	if (p->quoted_local != (p->local[0] == '"'))
		abort();
	if (p->local_has_route_chars != (strpbrk(p->local, "@%!") != NULL))
		abort();
	snprintf(both, sizeof(both), "%s@%s", p->local, p->domain);
	if (strcmp(both, p->addr) != 0)
		abort();
	if (!p->domain_literal &&
	    smtp_domain_check(p->domain, strlen(p->domain), NULL) !=
	    SMTP_ADDR_OK)
		abort();
}

/* check_params - decoded values stay printable and within limits */
static void check_params(const struct smtp_params *pr)
{
	char enc[SMTP_ENVID_MAX * 3 + 1], arg[SMTP_ENVID_MAX * 3 + 16];
	struct smtp_path p2;
	struct smtp_params pr2;

	check_printable(pr->envid, 0x20);
	check_printable(pr->orcpt, 0x20);
	if (strlen(pr->envid) > SMTP_ENVID_MAX ||
	    strlen(pr->orcpt) > SMTP_ORCPT_MAX)
		abort();
	if ((pr->notify & SMTP_NOTIFY_NEVER) &&
	    pr->notify != SMTP_NOTIFY_NEVER)
		abort();
	if (pr->has_orcpt && strchr(pr->orcpt, ';') == NULL)
		abort();
	if (!pr->has_envid)
		return;
	/* what the writer encodes, the reader gives back */
	if (!smtp_xtext_encode(pr->envid, enc, sizeof(enc)))
		abort();
	snprintf(arg, sizeof(arg), "<> ENVID=%s", enc);
	if (smtp_addr_parse(arg, strlen(arg), SMTP_ADDR_MAIL, &p2, &pr2,
	    NULL) != SMTP_ADDR_OK || strcmp(pr2.envid, pr->envid) != 0)
		abort();
}

/* LLVMFuzzerTestOneInput - one MAIL/RCPT argument, both kinds */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const enum smtp_addr_kind kinds[] = {
		SMTP_ADDR_MAIL, SMTP_ADDR_RCPT
	};
	const char *arg = (const char *)data;
	size_t k;

	for (k = 0; k < 2; k++) {
		struct smtp_path p;
		struct smtp_params pr;
		const char *err = NULL;
		enum smtp_addr_status st;

		st = smtp_addr_parse(arg, size, kinds[k], &p, &pr, &err);
		sink += (size_t)st;
		if (st != SMTP_ADDR_OK) {
			if (err == NULL || err[0] == '\0')
				abort();
			sink += strlen(err);
			continue;
		}
		if (err != NULL)
			abort();
		check_path(&p, kinds[k]);
		check_params(&pr);
		sink += strlen(p.addr) + (size_t)pr.size + pr.notify;
	}

	/* the domain checker alone, on the raw input */
	{
		const char *err = NULL;

		if (smtp_domain_check(arg, size, &err) != SMTP_ADDR_OK &&
		    err == NULL)
			abort();
	}

	/* encode the input as text (up to a NUL) and check the alphabet */
	if (size < 512) {
		char s[512], enc[512 * 3 + 1];
		const char *c;

		memcpy(s, data, size);
		s[size] = '\0';
		if (!smtp_xtext_encode(s, enc, sizeof(enc)))
			abort();
		for (c = enc; *c != '\0'; c++) {
			if ((unsigned char)*c < 0x21 ||
			    (unsigned char)*c > 0x7e || *c == '=')
				abort();
		}
		sink += strlen(enc);
	}
	return 0;
}
