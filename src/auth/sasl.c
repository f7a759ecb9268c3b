/*
 * sasl - the server side of an SMTP AUTH exchange
 *
 * Every path that names a user ends in one users_check_*() call, with the
 * account users_find_n() gave, NULL when there is none: the unknown user
 * is then handled inside users.c by the dummy check, so this file has no
 * branch that would make an unknown user cheaper or its answer different.
 */
#include "auth/sasl.h"
#include "util/base64.h"
#include "util/strutil.h"
#include "util/xalloc.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

enum sasl_mech {
	MECH_CRAM,
	MECH_PLAIN,
	MECH_LOGIN,
};

enum sasl_state {
	ST_CRAM,			/* waiting for "name digest" */
	ST_PLAIN,			/* waiting for the PLAIN message */
	ST_LOGIN_USER,			/* waiting for the user name */
	ST_LOGIN_PASS,			/* waiting for the password */
	ST_DONE,
};

struct sasl {
	enum sasl_mech mech;
	enum sasl_state st;
	const struct users *u;
	struct buf challenge;		/* base64, as sent after "334 " */
	struct buf raw;			/* the CRAM-MD5 challenge itself */
	char *user;			/* the name tried, NUL-terminated */
	size_t user_len;		/* its length (it may hold a NUL) */
};

/* wipe_buf - clear a buffer that held credentials, then free it */
static void wipe_buf(struct buf *b)
{
	if (b->p != NULL)
		OPENSSL_cleanse(b->p, b->cap);
	buf_free(b);
}

/* set_user - remember the name tried (wiping the one before) */
static void set_user(struct sasl *s, const char *name, size_t len)
{
	if (s->user != NULL) {
		OPENSSL_cleanse(s->user, s->user_len);
		free(s->user);
	}
	s->user = xmemdup0(name, len);
	s->user_len = len;
}

/* tried_user - the name for a SASL_FAIL step: NULL if none or unusable */
static const char *tried_user(const struct sasl *s)
{
	if (s->user == NULL || s->user_len == 0 ||
	    memchr(s->user, '\0', s->user_len) != NULL)
		return NULL;
	return s->user;
}

/* finish - a final status; the exchange is over */
static void finish(struct sasl *s, struct sasl_step *out,
    enum sasl_status st)
{
	s->st = ST_DONE;
	out->status = st;
	out->challenge = NULL;
	out->user = st == SASL_FAIL ? tried_user(s) : NULL;
	out->account = NULL;
}

/* verdict - SASL_OK for a verified account, else SASL_FAIL */
static void verdict(struct sasl *s, struct sasl_step *out, bool ok,
    const struct users_account *a)
{
	if (ok && a != NULL) {
		finish(s, out, SASL_OK);
		out->user = users_account_name(a);
		out->account = a;
	} else {
		finish(s, out, SASL_FAIL);
	}
}

/* ask - SASL_CONTINUE with a challenge given in clear text */
static void ask(struct sasl *s, struct sasl_step *out, const char *text,
    size_t len)
{
	buf_reset(&s->challenge);
	base64_encode(text, len, &s->challenge);
	out->status = SASL_CONTINUE;
	out->challenge = buf_cstr(&s->challenge);
	out->user = NULL;
	out->account = NULL;
}

/* decode - a base64 response into dec; false after finishing with why */
static bool decode(struct sasl *s, const char *line, size_t len,
    struct buf *dec, struct sasl_step *out)
{
	if (len > SASL_LINE_MAX) {
		finish(s, out, SASL_TOO_LONG);
		return false;
	}
	if (!base64_decode(line, len, dec)) {
		finish(s, out, SASL_BAD_B64);
		return false;
	}
	return true;
}

/* cram_answer - "name hexdigest" (the digest after the last space) */
static void cram_answer(struct sasl *s, const char *m, size_t n,
    struct sasl_step *out)
{
	const struct users_account *a;
	const char *sp = memrchr(m, ' ', n);
	size_t nl;
	bool ok;

	if (sp == NULL) {
		finish(s, out, SASL_FAIL);
		return;
	}
	nl = (size_t)(sp - m);
	set_user(s, m, nl);
	a = users_find_n(s->u, m, nl);
	ok = users_check_cram(a, s->raw.p, s->raw.len, sp + 1,
	    n - nl - 1);
	verdict(s, out, ok, a);
}

/* plain_answer - "authzid NUL authcid NUL password" (RFC 4616) */
static void plain_answer(struct sasl *s, const char *m, size_t n,
    struct sasl_step *out)
{
	const struct users_account *a;
	const char *z1, *z2, *cid, *pw;
	size_t zlen, clen, plen;
	bool ok;

	z1 = memchr(m, '\0', n);
	z2 = z1 ? memchr(z1 + 1, '\0', n - (size_t)(z1 + 1 - m)) : NULL;
	if (z2 == NULL) {
		finish(s, out, SASL_FAIL);
		return;
	}
	zlen = (size_t)(z1 - m);
	cid = z1 + 1;
	clen = (size_t)(z2 - cid);
	pw = z2 + 1;
	plen = n - (size_t)(pw - m);
	if (clen == 0) {
		finish(s, out, SASL_FAIL);
		return;
	}
	set_user(s, cid, clen);
	/* Acting as another user is not offered: only "" or oneself. */
	if (zlen != 0 && (zlen != clen || memcmp(m, cid, clen) != 0)) {
		finish(s, out, SASL_FAIL);
		return;
	}
	/* A third NUL lands in pw, which users_check_password() refuses. */
	a = users_find_n(s->u, cid, clen);
	ok = users_check_password(a, pw, plen);
	verdict(s, out, ok, a);
}

/* login_password - the second LOGIN line */
static void login_password(struct sasl *s, const char *pw, size_t plen,
    struct sasl_step *out)
{
	const struct users_account *a;
	bool ok;

	a = users_find_n(s->u, s->user, s->user_len);
	ok = users_check_password(a, pw, plen);
	verdict(s, out, ok, a);
}

/* cram_challenge - make, keep and send "<random.time@host>" */
static void cram_challenge(struct sasl *s, const char *hostname,
    struct sasl_step *out)
{
	unsigned char rb[8];
	uint64_t r = 0;
	unsigned i;

	if (RAND_bytes(rb, sizeof(rb)) != 1) {
		finish(s, out, SASL_FAIL);
		return;
	}
	for (i = 0; i < sizeof(rb); i++)
		r = r << 8 | rb[i];
	if (hostname == NULL || hostname[0] == '\0')
		hostname = "localhost";
	buf_printf(&s->raw, "<%" PRIu64 ".%lld@%s>", r,
	    (long long)time(NULL), hostname);
	s->st = ST_CRAM;
	ask(s, out, s->raw.p, s->raw.len);
}

/* sasl_start - "AUTH mech [initial]" */
struct sasl *sasl_start(const char *mech, const char *initial,
    bool tls_active, const char *hostname, const struct users *u,
    struct sasl_step *out)
{
	struct sasl *s = xcalloc(1, sizeof(*s));
	struct buf dec = BUF_INIT;
	size_t ilen = initial ? strlen(initial) : 0;

	s->u = u;
	if (mech != NULL && str_caseeq_n(mech, strlen(mech), "CRAM-MD5"))
		s->mech = MECH_CRAM;
	else if (mech != NULL && str_caseeq_n(mech, strlen(mech), "PLAIN"))
		s->mech = MECH_PLAIN;
	else if (mech != NULL && str_caseeq_n(mech, strlen(mech), "LOGIN"))
		s->mech = MECH_LOGIN;
	else {
		finish(s, out, SASL_UNKNOWN_MECH);
		return s;
	}
	/* Before any credential is looked at (SECURITY.md T4). */
	if (s->mech != MECH_CRAM && !tls_active) {
		finish(s, out, SASL_NEED_TLS);
		return s;
	}
	if (initial != NULL && ilen > SASL_LINE_MAX) {
		finish(s, out, SASL_TOO_LONG);
		return s;
	}

	switch (s->mech) {
	case MECH_CRAM:
		/* server-first: an initial response is a 501 (RFC 4954 4) */
		if (initial != NULL)
			finish(s, out, SASL_BAD_INITIAL);
		else
			cram_challenge(s, hostname, out);
		break;
	case MECH_PLAIN:
		if (initial == NULL) {
			s->st = ST_PLAIN;
			ask(s, out, "", 0);
		} else if (strcmp(initial, "=") == 0) {
			plain_answer(s, "", 0, out);
		} else if (decode(s, initial, ilen, &dec, out)) {
			plain_answer(s, dec.p ? dec.p : "", dec.len, out);
		}
		break;
	case MECH_LOGIN:
		if (initial == NULL) {
			s->st = ST_LOGIN_USER;
			ask(s, out, "Username:", 9);
		} else if (strcmp(initial, "=") == 0 ||
		    decode(s, initial, ilen, &dec, out)) {
			set_user(s, dec.p ? dec.p : "", dec.len);
			s->st = ST_LOGIN_PASS;
			ask(s, out, "Password:", 9);
		}
		break;
	}
	wipe_buf(&dec);
	return s;
}

/* sasl_step - one response line */
void sasl_step(struct sasl *s, const char *line, size_t len,
    struct sasl_step *out)
{
	struct buf dec = BUF_INIT;
	const char *m;

	if (s->st == ST_DONE) {
		finish(s, out, SASL_FAIL);
		out->user = NULL;
		return;
	}
	if (len == 1 && line[0] == '*') {
		finish(s, out, SASL_CANCELLED);
		return;
	}
	if (!decode(s, line, len, &dec, out))
		return;
	m = dec.p ? dec.p : "";

	switch (s->st) {
	case ST_CRAM:
		cram_answer(s, m, dec.len, out);
		break;
	case ST_PLAIN:
		plain_answer(s, m, dec.len, out);
		break;
	case ST_LOGIN_USER:
		set_user(s, m, dec.len);
		s->st = ST_LOGIN_PASS;
		ask(s, out, "Password:", 9);
		break;
	case ST_LOGIN_PASS:
		login_password(s, m, dec.len, out);
		break;
	case ST_DONE:
		break;
	}
	wipe_buf(&dec);
}

/* sasl_free - wipe what the exchange holds */
void sasl_free(struct sasl *s)
{
	if (s == NULL)
		return;
	if (s->user != NULL) {
		OPENSSL_cleanse(s->user, s->user_len);
		free(s->user);
	}
	buf_free(&s->challenge);
	buf_free(&s->raw);
	OPENSSL_cleanse(s, sizeof(*s));
	free(s);
}

/* sasl_mechs - no password mechanism in cleartext (T4) */
const char *sasl_mechs(bool tls_active)
{
	return tls_active ? "PLAIN LOGIN CRAM-MD5" : "CRAM-MD5";
}

/* sasl_reply - the reply line for a status */
const char *sasl_reply(enum sasl_status st)
{
	switch (st) {
	case SASL_CONTINUE:
		return "334";
	case SASL_OK:
		return "235 2.7.0 Authentication successful";
	case SASL_FAIL:
		return "535 5.7.8 Authentication credentials invalid";
	case SASL_CANCELLED:
		return "501 5.7.0 Authentication cancelled";
	case SASL_BAD_B64:
		return "501 5.5.2 Cannot decode response";
	case SASL_TOO_LONG:
		return "500 5.5.6 Authentication exchange line is too long";
	case SASL_NEED_TLS:
		return "538 5.7.11 Encryption required for requested "
		    "authentication mechanism";
	case SASL_UNKNOWN_MECH:
		return "504 5.5.4 Unrecognized authentication type";
	case SASL_BAD_INITIAL:
		return "501 5.5.4 Initial response not allowed for this "
		    "mechanism";
	}
	return "454 4.7.0 Temporary authentication failure";
}
