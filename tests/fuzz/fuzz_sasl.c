/*
 * fuzz_sasl - libFuzzer target for sasl_start() / sasl_step() against a
 * fixed table: tim and u1 with {PLAIN} secrets, c1 with {CRAM-MD5}
 * contexts.
 *
 * Input: one flag byte, then lines split at LF.
 *   flags bit 0: TLS is active
 *   flags bit 1: the next line is the initial response
 *   flags bits 2-3: mechanism CRAM-MD5, PLAIN, LOGIN, or 3: the next line
 *                   names it
 * Every other line is a client response.  Two forms help the fuzzer past
 * base64 and HMAC: "!b64 TEXT" sends base64(TEXT), and "!cram NAME KEY"
 * sends a correct CRAM-MD5 answer to the last challenge for NAME keyed
 * with KEY.
 *
 * Checked: statuses are in range; SASL_CONTINUE carries decodable base64;
 * SASL_NEED_TLS only for PLAIN/LOGIN in cleartext, and those never succeed
 * in cleartext; a success names an account of the table whose password
 * is the one the client really sent (PLAIN and LOGIN) and whose authzid
 * is empty or the same name; nothing follows the end but SASL_FAIL.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "auth/sasl.h"
#include "util/base64.h"

#define MAX_LINES 32

static const struct {
	const char *name;
	const char *pw;
	int plain;			/* usable for PLAIN and LOGIN */
} accounts[] = {
	{ "tim", "tanstaaftanstaaf", 1 },
	{ "u1", "pw", 1 },
	{ "c1", "secret", 0 },
};

static struct users *table;

/* setup - the table, once */
static void setup(void)
{
	struct buf t = BUF_INIT;

	buf_puts(&t, "tim:{PLAIN}tanstaaftanstaaf:example.org\n"
	    "u1:{PLAIN}pw:a.example,b.example\n");
	if (!users_make_line(&t, "c1", "secret", "c.example", true))
		abort();
	table = users_parse(t.p, t.len, "fuzz", NULL);
	if (table == NULL)
		abort();
	buf_free(&t);
}

/* known_pw - the PLAIN/LOGIN password of a name, NULL if none */
static const char *known_pw(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(accounts) / sizeof(accounts[0]); i++) {
		if (strcmp(accounts[i].name, name) == 0)
			return accounts[i].plain ? accounts[i].pw : NULL;
	}
	return NULL;
}

/* in_table - a name of the table */
static int in_table(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(accounts) / sizeof(accounts[0]); i++) {
		if (strcmp(accounts[i].name, name) == 0)
			return 1;
	}
	return 0;
}

/* cram_line - "!cram NAME KEY" into base64("NAME hexdigest") */
static void cram_line(const char *arg, size_t len, const struct buf *chal,
    struct buf *out)
{
	const char *sp = memchr(arg, ' ', len);
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0, i;
	struct buf resp = BUF_INIT;
	size_t nl = sp ? (size_t)(sp - arg) : len;
	const char *key = sp ? sp + 1 : "";
	size_t klen = sp ? len - nl - 1 : 0;

	buf_append(&resp, arg, nl);
	buf_putc(&resp, ' ');
	if (HMAC(EVP_md5(), key, (int)klen,
	    (const unsigned char *)(chal->p ? chal->p : ""), chal->len, md,
	    &mdlen) == NULL)
		abort();
	for (i = 0; i < mdlen; i++)
		buf_printf(&resp, "%02x", md[i]);
	base64_encode(resp.p, resp.len, out);
	buf_free(&resp);
}

/* check_success - the oracle for PLAIN and LOGIN successes */
static void check_success(int mech, const struct sasl_step *st,
    const struct buf *last, const struct buf *login_user, int tls)
{
	const char *pw;

	if (st->user == NULL || st->account == NULL)
		abort();
	if (users_find(table, st->user) != st->account)
		abort();
	if (!in_table(st->user))
		abort();
	if (mech == 1 || mech == 2) {
		if (!tls)
			abort();
		pw = known_pw(st->user);
		if (pw == NULL)
			abort();
	}
	if (mech == 1) {
		/* authzid NUL authcid NUL pw, exactly */
		const char *m = last->p, *z1, *z2;
		size_t n = last->len;

		z1 = m ? memchr(m, '\0', n) : NULL;
		z2 = z1 ? memchr(z1 + 1, '\0', n - (size_t)(z1 + 1 - m)) : NULL;
		if (z2 == NULL)
			abort();
		if (z1 != m && ((size_t)(z1 - m) != strlen(st->user) ||
		    memcmp(m, st->user, strlen(st->user)) != 0))
			abort();
		if ((size_t)(z2 - z1 - 1) != strlen(st->user) ||
		    memcmp(z1 + 1, st->user, strlen(st->user)) != 0)
			abort();
		if ((size_t)(m + n - z2 - 1) != strlen(pw) ||
		    memcmp(z2 + 1, pw, strlen(pw)) != 0)
			abort();
	} else if (mech == 2) {
		if (login_user->len != strlen(st->user) ||
		    memcmp(login_user->p, st->user, login_user->len) != 0)
			abort();
		if (last->len != strlen(pw) || memcmp(last->p, pw,
		    last->len) != 0)
			abort();
	}
}

/* LLVMFuzzerTestOneInput - one AUTH exchange */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const mechs[] = { "CRAM-MD5", "PLAIN", "LOGIN" };
	const char *p = (const char *)data + 1, *end = (const char *)data +
	    size;
	struct buf chal = BUF_INIT, last = BUF_INIT, login_user = BUF_INIT;
	struct buf line = BUF_INIT;
	struct sasl_step st;
	struct sasl *s;
	char *mech_s = NULL, *initial = NULL;
	int tls, mech, nlines = 0, steps = 0;

	if (table == NULL)
		setup();
	if (size == 0)
		return 0;
	tls = data[0] & 1;
	mech = (data[0] >> 2) & 3;

	/* next_line - [p, eol) and step past the LF */
#define NEXT_LINE(lp, ll) do {						\
		const char *eol_ = memchr(p, '\n', (size_t)(end - p));	\
		(lp) = p;						\
		(ll) = (size_t)((eol_ ? eol_ : end) - p);		\
		p = eol_ ? eol_ + 1 : end;				\
	} while (0)

	if (mech == 3) {
		const char *lp;
		size_t ll;

		NEXT_LINE(lp, ll);
		mech_s = strndup(lp, ll);
		mech = strcasecmp(mech_s, "CRAM-MD5") == 0 ? 0 :
		    strcasecmp(mech_s, "PLAIN") == 0 ? 1 :
		    strcasecmp(mech_s, "LOGIN") == 0 ? 2 : 3;
	}
	if (data[0] & 2) {
		const char *lp;
		size_t ll;

		NEXT_LINE(lp, ll);
		initial = strndup(lp, ll);	/* stops at a NUL, like C */
	}

	s = sasl_start(mech_s ? mech_s : mechs[mech], initial, tls, "fuzz.test",
	    table, &st);
	/* what the exchange decoded, for the oracle */
	if (initial != NULL && st.status != SASL_NEED_TLS) {
		if (strcmp(initial, "=") != 0)
			(void)base64_decode(initial, strlen(initial), &last);
		if (mech == 2)
			buf_append(&login_user, last.p ? last.p : "",
			    last.len);
	}

	for (;;) {
		const char *lp;
		size_t ll;

		if ((unsigned)st.status > SASL_BAD_INITIAL)
			abort();
		if (st.status == SASL_NEED_TLS && (tls || mech == 0 ||
		    mech == 3))
			abort();
		if (st.status == SASL_UNKNOWN_MECH && mech != 3)
			abort();
		if (st.status == SASL_OK)
			check_success(mech, &st, &last, &login_user, tls);
		if (st.status != SASL_OK && st.account != NULL)
			abort();
		if (st.status != SASL_CONTINUE)
			break;
		if (st.challenge == NULL)
			abort();
		buf_reset(&chal);
		if (!base64_decode(st.challenge, strlen(st.challenge), &chal))
			abort();
		if (p >= end || ++nlines > MAX_LINES)
			break;

		NEXT_LINE(lp, ll);
		buf_reset(&line);
		if (ll >= 5 && memcmp(lp, "!b64 ", 5) == 0)
			base64_encode(lp + 5, ll - 5, &line);
		else if (ll >= 6 && memcmp(lp, "!cram ", 6) == 0)
			cram_line(lp + 6, ll - 6, &chal, &line);
		else
			buf_append(&line, lp, ll);

		/* keep what the exchange will decode, for the oracle */
		if (mech == 2 && steps == 0 && initial == NULL) {
			buf_reset(&login_user);
			(void)base64_decode(line.p ? line.p : "", line.len,
			    &login_user);
		}
		buf_reset(&last);
		(void)base64_decode(line.p ? line.p : "", line.len, &last);
		steps++;
		sasl_step(s, line.p ? line.p : "", line.len, &st);
	}
	/* after the end, only failure */
	if (st.status != SASL_CONTINUE) {
		sasl_step(s, "dGlt", 4, &st);
		if (st.status != SASL_FAIL || st.account != NULL)
			abort();
	}
	sasl_free(s);
	free(mech_s);
	free(initial);
	buf_free(&chal);
	buf_free(&last);
	buf_free(&login_user);
	buf_free(&line);
	return 0;
}
