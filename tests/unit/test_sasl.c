/* test_sasl - AUTH exchanges: CRAM-MD5, PLAIN, LOGIN (SECURITY.md P15,
 * T4, E12-E14) */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "auth/sasl.h"
#include "util/base64.h"

/* L - a literal with its exact length, embedded NULs included */
#define L(s) s, sizeof(s) - 1

static struct users *users;

/*
 * tim: {PLAIN} (CRAM-MD5 and PLAIN/LOGIN); alice: {CRAM-MD5} and
 * {SHA512-CRYPT} lines; carol: {CRAM-MD5} only; bob: {SHA512-CRYPT} only.
 */
static int setup_users(void **state)
{
	struct buf t = BUF_INIT, errs = BUF_INIT;

	buf_puts(&t, "tim:{PLAIN}tanstaaftanstaaf:example.org\n");
	if (!users_make_line(&t, "alice", "wonder land", "a.example", true))
		return -1;
	buf_putc(&t, '\n');
	if (!users_make_line(&t, "alice", "wonder land", "a.example", false))
		return -1;
	buf_putc(&t, '\n');
	if (!users_make_line(&t, "carol", "cram only", "c.example", true))
		return -1;
	buf_putc(&t, '\n');
	if (!users_make_line(&t, "bob", "builder", "b.example", false))
		return -1;
	buf_putc(&t, '\n');
	users = users_parse(t.p, t.len, "test", &errs);
	if (users == NULL)
		fprintf(stderr, "%s", buf_cstr(&errs));
	buf_free(&t);
	buf_free(&errs);
	return users ? 0 : -1;
}

static int teardown_users(void **state)
{
	users_free(users);
	return 0;
}

/* b64 - base64 of s[0..len), caller frees */
static char *b64(const char *s, size_t len)
{
	struct buf b = BUF_INIT;

	base64_encode(s, len, &b);
	return buf_steal(&b);
}

/* step_b64 - send base64 of s[0..len) as the next line */
static void step_b64(struct sasl *s, const char *p, size_t len,
    struct sasl_step *out)
{
	char *e = b64(p, len);

	sasl_step(s, e, strlen(e), out);
	free(e);
}

/* start_plain - "AUTH PLAIN <b64 of msg>" over TLS */
static struct sasl *start_plain(const char *msg, size_t len,
    struct sasl_step *out)
{
	char *e = b64(msg, len);
	struct sasl *s = sasl_start("PLAIN", e, true, "relay.test", users,
	    out);

	free(e);
	return s;
}

/* expect_plain - a one-shot PLAIN exchange ends with st */
static void expect_plain(const char *msg, size_t len, enum sasl_status st,
    const char *user)
{
	struct sasl_step out;
	struct sasl *s = start_plain(msg, len, &out);

	assert_int_equal(out.status, st);
	if (user)
		assert_string_equal(out.user, user);
	else
		assert_null(out.user);
	if (st == SASL_OK) {
		assert_non_null(out.account);
		assert_string_equal(users_account_name(out.account), user);
	} else {
		assert_null(out.account);
	}
	sasl_free(s);
}

/* cram_digest - HMAC-MD5 hex by OpenSSL: the reference client */
static void cram_digest(const char *key, const char *chal, size_t clen,
    char out[33])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	unsigned i;

	assert_non_null(HMAC(EVP_md5(), key, (int)strlen(key),
	    (const unsigned char *)chal, clen, md, &mdlen));
	for (i = 0; i < 16; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* cram_start - AUTH CRAM-MD5; the decoded challenge into chal */
static struct sasl *cram_start(struct buf *chal, bool tls)
{
	struct sasl_step out;
	struct sasl *s = sasl_start("CRAM-MD5", NULL, tls, "relay.test",
	    users, &out);

	assert_int_equal(out.status, SASL_CONTINUE);
	assert_non_null(out.challenge);
	assert_null(out.user);
	buf_reset(chal);
	assert_true(base64_decode(out.challenge, strlen(out.challenge),
	    chal));
	return s;
}

/* cram_login - a full CRAM-MD5 exchange as name with key */
static enum sasl_status cram_login(const char *name, const char *key,
    const char **user)
{
	struct buf chal = BUF_INIT, resp = BUF_INIT;
	struct sasl_step out;
	struct sasl *s = cram_start(&chal, false);
	char hex[33];
	static char who[128];

	cram_digest(key, chal.p, chal.len, hex);
	buf_printf(&resp, "%s %s", name, hex);
	step_b64(s, resp.p, resp.len, &out);
	if (user) {
		*user = NULL;
		if (out.user) {
			snprintf(who, sizeof(who), "%s", out.user);
			*user = who;
		}
	}
	if (out.status == SASL_OK)
		assert_non_null(out.account);
	sasl_free(s);
	buf_free(&chal);
	buf_free(&resp);
	return out.status;
}

/* ---- mechanisms and TLS ------------------------------------------------ */

static void test_mechs(void **state)
{
	assert_string_equal(sasl_mechs(false), "CRAM-MD5");
	assert_string_equal(sasl_mechs(true), "PLAIN LOGIN CRAM-MD5");
}

static void test_unknown_mech(void **state)
{
	static const char *const mechs[] = { "DIGEST-MD5", "EXTERNAL",
	    "GSSAPI", "NTLM", "XOAUTH2", "SCRAM-SHA-256", "PLAINX", "PLAI",
	    "CRAM-MD", "", "LOGIN ", "CRAM-MD5\n" };
	struct sasl_step out;
	size_t i;
	int tls;

	for (tls = 0; tls < 2; tls++) {
		for (i = 0; i < sizeof(mechs) / sizeof(mechs[0]); i++) {
			struct sasl *s = sasl_start(mechs[i], "AAAA", tls,
			    "h", users, &out);

			assert_int_equal(out.status, SASL_UNKNOWN_MECH);
			assert_null(out.user);
			sasl_free(s);
		}
	}
	sasl_free(sasl_start(NULL, NULL, true, "h", users, &out));
	assert_int_equal(out.status, SASL_UNKNOWN_MECH);
	assert_string_equal(sasl_reply(SASL_UNKNOWN_MECH),
	    "504 5.5.4 Unrecognized authentication type");
}

static void test_plain_login_need_tls(void **state)
{
	char *good = b64(L("\0tim\0tanstaaftanstaaf"));
	struct sasl_step out;
	struct sasl *s;

	/* even correct credentials are not looked at in cleartext */
	s = sasl_start("PLAIN", good, false, "h", users, &out);
	assert_int_equal(out.status, SASL_NEED_TLS);
	assert_null(out.user);
	assert_null(out.account);
	/* and the exchange is over */
	step_b64(s, L("\0tim\0tanstaaftanstaaf"), &out);
	assert_int_equal(out.status, SASL_FAIL);
	sasl_free(s);
	sasl_free(sasl_start("plain", NULL, false, "h", users, &out));
	assert_int_equal(out.status, SASL_NEED_TLS);
	sasl_free(sasl_start("LOGIN", NULL, false, "h", users, &out));
	assert_int_equal(out.status, SASL_NEED_TLS);
	sasl_free(sasl_start("LOGIN", "dGlt", false, "h", users, &out));
	assert_int_equal(out.status, SASL_NEED_TLS);
	/* CRAM-MD5 is allowed without TLS (RFC 2645) */
	s = sasl_start("CRAM-MD5", NULL, false, "h", users, &out);
	assert_int_equal(out.status, SASL_CONTINUE);
	sasl_free(s);
	assert_string_equal(sasl_reply(SASL_NEED_TLS),
	    "538 5.7.11 Encryption required for requested authentication "
	    "mechanism");
	free(good);
}

/* ---- PLAIN ------------------------------------------------------------- */

static void test_plain(void **state)
{
	expect_plain(L("\0tim\0tanstaaftanstaaf"), SASL_OK, "tim");
	expect_plain(L("tim\0tim\0tanstaaftanstaaf"), SASL_OK, "tim");
	expect_plain(L("\0alice\0wonder land"), SASL_OK, "alice");
	expect_plain(L("\0bob\0builder"), SASL_OK, "bob");
	/* wrong passwords */
	expect_plain(L("\0tim\0tanstaaftanstaaF"), SASL_FAIL, "tim");
	expect_plain(L("\0tim\0"), SASL_FAIL, "tim");
	expect_plain(L("\0alice\0wonder"), SASL_FAIL, "alice");
	expect_plain(L("\0bob\0builder\0"), SASL_FAIL, "bob");
	expect_plain(L("\0bob\0builder\0x"), SASL_FAIL, "bob");
	/* carol has no secret for PLAIN */
	expect_plain(L("\0carol\0cram only"), SASL_FAIL, "carol");
	/* names are case-sensitive */
	expect_plain(L("\0Tim\0tanstaaftanstaaf"), SASL_FAIL, "Tim");
	assert_string_equal(sasl_reply(SASL_OK),
	    "235 2.7.0 Authentication successful");
	assert_string_equal(sasl_reply(SASL_FAIL),
	    "535 5.7.8 Authentication credentials invalid");
}

static void test_plain_unknown_user(void **state)
{
	struct sasl_step known, unknown;
	struct sasl *s1, *s2;

	/* the same answer as a wrong password, name included */
	s1 = start_plain(L("\0bob\0wrong"), &known);
	s2 = start_plain(L("\0nobody\0wrong"), &unknown);
	assert_int_equal(known.status, SASL_FAIL);
	assert_int_equal(unknown.status, SASL_FAIL);
	assert_string_equal(unknown.user, "nobody");
	assert_null(unknown.account);
	assert_null(unknown.challenge);
	sasl_free(s1);
	sasl_free(s2);
	/* a NUL after the password is not ignored */
	expect_plain(L("\0tim\0tanstaaftanstaaf\0"), SASL_FAIL, "tim");
}

static void test_plain_impersonation(void **state)
{
	/* right password for tim, asking to act as bob: no */
	expect_plain(L("bob\0tim\0tanstaaftanstaaf"), SASL_FAIL, "tim");
	expect_plain(L("Tim\0tim\0tanstaaftanstaaf"), SASL_FAIL, "tim");
	expect_plain(L("tim \0tim\0tanstaaftanstaaf"), SASL_FAIL, "tim");
	expect_plain(L("ti\0tim\0tanstaaftanstaaf"), SASL_FAIL, "tim");
}

static void test_plain_malformed(void **state)
{
	struct sasl_step out;
	struct sasl *s;

	expect_plain(L(""), SASL_FAIL, NULL);
	expect_plain(L("tim"), SASL_FAIL, NULL);
	expect_plain(L("\0tim"), SASL_FAIL, NULL);
	expect_plain(L("\0\0pw"), SASL_FAIL, NULL);
	expect_plain(L("\0\0"), SASL_FAIL, NULL);
	/* "=": an empty initial response, which PLAIN cannot use */
	s = sasl_start("PLAIN", "=", true, "h", users, &out);
	assert_int_equal(out.status, SASL_FAIL);
	assert_null(out.user);
	sasl_free(s);
}

static void test_plain_continuation(void **state)
{
	struct sasl_step out;
	struct sasl *s;

	s = sasl_start("Plain", NULL, true, "h", users, &out);
	assert_int_equal(out.status, SASL_CONTINUE);
	assert_string_equal(out.challenge, "");	/* "334 " */
	step_b64(s, L("\0tim\0tanstaaftanstaaf"), &out);
	assert_int_equal(out.status, SASL_OK);
	assert_string_equal(out.user, "tim");
	/* over: a further line is a failure, never a second success */
	step_b64(s, L("\0tim\0tanstaaftanstaaf"), &out);
	assert_int_equal(out.status, SASL_FAIL);
	assert_null(out.account);
	sasl_free(s);

	/* an empty line decodes to an empty message */
	s = sasl_start("PLAIN", NULL, true, "h", users, &out);
	sasl_step(s, "", 0, &out);
	assert_int_equal(out.status, SASL_FAIL);
	sasl_free(s);
	assert_string_equal(sasl_reply(SASL_CONTINUE), "334");
}

/* ---- LOGIN ------------------------------------------------------------- */

static void test_login(void **state)
{
	struct sasl_step out;
	struct sasl *s;

	s = sasl_start("LOGIN", NULL, true, "h", users, &out);
	assert_int_equal(out.status, SASL_CONTINUE);
	assert_string_equal(out.challenge, "VXNlcm5hbWU6");
	step_b64(s, L("alice"), &out);
	assert_int_equal(out.status, SASL_CONTINUE);
	assert_string_equal(out.challenge, "UGFzc3dvcmQ6");
	assert_null(out.user);
	step_b64(s, L("wonder land"), &out);
	assert_int_equal(out.status, SASL_OK);
	assert_string_equal(out.user, "alice");
	assert_ptr_equal(out.account, users_find(users, "alice"));
	sasl_free(s);

	/* the initial response is the user name */
	s = sasl_start("login", "dGlt", true, "h", users, &out);
	assert_int_equal(out.status, SASL_CONTINUE);
	assert_string_equal(out.challenge, "UGFzc3dvcmQ6");
	step_b64(s, L("tanstaaftanstaaf"), &out);
	assert_int_equal(out.status, SASL_OK);
	assert_string_equal(out.user, "tim");
	sasl_free(s);
}

static void test_login_failures(void **state)
{
	static const struct {
		const char *user;
		size_t ulen;
		const char *pw;
		size_t plen;
		const char *tried;
	} cases[] = {
		{ L("alice"), L("wonder lan"), "alice" },
		{ L("alice"), L(""), "alice" },
		{ L("alice"), L("wonder land\0"), "alice" },
		{ L("nobody"), L("wonder land"), "nobody" },
		{ L("carol"), L("cram only"), "carol" },
		{ L(""), L("x"), NULL },
		{ L("alice\0"), L("wonder land"), NULL },
		{ L("tim\0x"), L("tanstaaftanstaaf"), NULL },
	};
	struct sasl_step out;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sasl *s = sasl_start("LOGIN", NULL, true, "h", users,
		    &out);

		step_b64(s, cases[i].user, cases[i].ulen, &out);
		assert_int_equal(out.status, SASL_CONTINUE);
		step_b64(s, cases[i].pw, cases[i].plen, &out);
		assert_int_equal(out.status, SASL_FAIL);
		if (cases[i].tried)
			assert_string_equal(out.user, cases[i].tried);
		else
			assert_null(out.user);
		assert_null(out.account);
		sasl_free(s);
	}
	/* "=" as the initial response: an empty user name */
	{
		struct sasl *s = sasl_start("LOGIN", "=", true, "h", users,
		    &out);

		assert_int_equal(out.status, SASL_CONTINUE);
		assert_string_equal(out.challenge, "UGFzc3dvcmQ6");
		step_b64(s, L("x"), &out);
		assert_int_equal(out.status, SASL_FAIL);
		sasl_free(s);
	}
}

/* ---- CRAM-MD5 ---------------------------------------------------------- */

static void test_cram_challenge(void **state)
{
	struct buf c1 = BUF_INIT, c2 = BUF_INIT;
	struct sasl *s1 = cram_start(&c1, false);
	struct sasl *s2 = cram_start(&c2, true);
	const char *p;

	/* "<digits.digits@relay.test>" */
	assert_true(c1.len > 20);
	assert_int_equal(c1.p[0], '<');
	assert_int_equal(c1.p[c1.len - 1], '>');
	assert_non_null(strstr(c1.p, "@relay.test>"));
	for (p = c1.p + 1; *p != '.'; p++)
		assert_true(*p >= '0' && *p <= '9');
	for (p++; *p != '@'; p++)
		assert_true(*p >= '0' && *p <= '9');
	/* random: two challenges differ */
	assert_string_not_equal(c1.p, c2.p);
	sasl_free(s1);
	sasl_free(s2);

	/* no hostname: localhost */
	{
		struct sasl_step out;
		struct sasl *s = sasl_start("cram-md5", NULL, false, NULL,
		    users, &out);

		buf_reset(&c1);
		assert_true(base64_decode(out.challenge,
		    strlen(out.challenge), &c1));
		assert_non_null(strstr(c1.p, "@localhost>"));
		sasl_free(s);
	}
	buf_free(&c1);
	buf_free(&c2);
}

static void test_cram(void **state)
{
	const char *who;

	/* from {PLAIN} */
	assert_int_equal(cram_login("tim", "tanstaaftanstaaf", &who), SASL_OK);
	assert_string_equal(who, "tim");
	/* from {CRAM-MD5} contexts */
	assert_int_equal(cram_login("alice", "wonder land", &who), SASL_OK);
	assert_string_equal(who, "alice");
	assert_int_equal(cram_login("carol", "cram only", &who), SASL_OK);
	/* wrong secrets */
	assert_int_equal(cram_login("tim", "tanstaaftanstaa", &who),
	    SASL_FAIL);
	assert_string_equal(who, "tim");
	assert_int_equal(cram_login("alice", "wonder", &who), SASL_FAIL);
	/* bob has only a crypt hash: no CRAM-MD5 */
	assert_int_equal(cram_login("bob", "builder", &who), SASL_FAIL);
	assert_string_equal(who, "bob");
	/* unknown: the same answer */
	assert_int_equal(cram_login("nobody", "tanstaaftanstaaf", &who),
	    SASL_FAIL);
	assert_string_equal(who, "nobody");
}

static void test_cram_response_forms(void **state)
{
	struct buf chal = BUF_INIT, resp = BUF_INIT;
	struct sasl_step out;
	struct sasl *s;
	char hex[33], *p;

	/* upper-case hex is accepted */
	s = cram_start(&chal, false);
	cram_digest("tanstaaftanstaaf", chal.p, chal.len, hex);
	for (p = hex; *p; p++)
		*p = (char)(*p >= 'a' && *p <= 'f' ? *p - 32 : *p);
	buf_printf(&resp, "tim %s", hex);
	step_b64(s, resp.p, resp.len, &out);
	assert_int_equal(out.status, SASL_OK);
	sasl_free(s);

	/* no space, an empty name, a digest with a tail, two spaces */
	s = cram_start(&chal, false);
	cram_digest("tanstaaftanstaaf", chal.p, chal.len, hex);
	step_b64(s, hex, 32, &out);
	assert_int_equal(out.status, SASL_FAIL);
	assert_null(out.user);
	sasl_free(s);

	s = cram_start(&chal, false);
	cram_digest("tanstaaftanstaaf", chal.p, chal.len, hex);
	buf_reset(&resp);
	buf_printf(&resp, " %s", hex);
	step_b64(s, resp.p, resp.len, &out);
	assert_int_equal(out.status, SASL_FAIL);
	assert_null(out.user);
	sasl_free(s);

	s = cram_start(&chal, false);
	cram_digest("tanstaaftanstaaf", chal.p, chal.len, hex);
	buf_reset(&resp);
	buf_printf(&resp, "tim %s0", hex);
	step_b64(s, resp.p, resp.len, &out);
	assert_int_equal(out.status, SASL_FAIL);
	sasl_free(s);

	s = cram_start(&chal, false);
	cram_digest("tanstaaftanstaaf", chal.p, chal.len, hex);
	buf_reset(&resp);
	buf_printf(&resp, "tim  %s", hex);
	step_b64(s, resp.p, resp.len, &out);
	assert_int_equal(out.status, SASL_FAIL);
	assert_string_equal(out.user, "tim ");
	sasl_free(s);

	/* a digest for another challenge */
	s = cram_start(&chal, false);
	cram_digest("tanstaaftanstaaf",
	    L("<1896.697170952@postoffice.reston.mci.net>"), hex);
	buf_reset(&resp);
	buf_printf(&resp, "tim %s", hex);
	step_b64(s, resp.p, resp.len, &out);
	assert_int_equal(out.status, SASL_FAIL);
	sasl_free(s);

	buf_free(&chal);
	buf_free(&resp);
}

static void test_cram_initial_response(void **state)
{
	struct sasl_step out;
	struct sasl *s;

	s = sasl_start("CRAM-MD5", "dGltIGI5MTNhNjAy", false, "h", users,
	    &out);
	assert_int_equal(out.status, SASL_BAD_INITIAL);
	sasl_free(s);
	s = sasl_start("CRAM-MD5", "=", true, "h", users, &out);
	assert_int_equal(out.status, SASL_BAD_INITIAL);
	sasl_free(s);
	assert_true(strncmp(sasl_reply(SASL_BAD_INITIAL), "501 ", 4) == 0);
}

/* ---- cancel, bad base64, long lines ------------------------------------ */

static void test_cancel(void **state)
{
	struct buf chal = BUF_INIT;
	struct sasl_step out;
	struct sasl *s;

	s = cram_start(&chal, false);
	sasl_step(s, "*", 1, &out);
	assert_int_equal(out.status, SASL_CANCELLED);
	assert_null(out.user);
	sasl_step(s, "*", 1, &out);
	assert_int_equal(out.status, SASL_FAIL);
	sasl_free(s);

	s = sasl_start("PLAIN", NULL, true, "h", users, &out);
	sasl_step(s, "*", 1, &out);
	assert_int_equal(out.status, SASL_CANCELLED);
	sasl_free(s);

	s = sasl_start("LOGIN", NULL, true, "h", users, &out);
	sasl_step(s, "*", 1, &out);
	assert_int_equal(out.status, SASL_CANCELLED);
	sasl_free(s);

	s = sasl_start("LOGIN", NULL, true, "h", users, &out);
	step_b64(s, L("tim"), &out);
	sasl_step(s, "*", 1, &out);
	assert_int_equal(out.status, SASL_CANCELLED);
	assert_null(out.user);
	sasl_free(s);

	/* "*" as an initial response is not base64 */
	s = sasl_start("PLAIN", "*", true, "h", users, &out);
	assert_int_equal(out.status, SASL_BAD_B64);
	sasl_free(s);
	/* "**" or "* " is not a cancel either */
	s = sasl_start("PLAIN", NULL, true, "h", users, &out);
	sasl_step(s, "* ", 2, &out);
	assert_int_equal(out.status, SASL_BAD_B64);
	sasl_free(s);
	assert_string_equal(sasl_reply(SASL_CANCELLED),
	    "501 5.7.0 Authentication cancelled");
	buf_free(&chal);
}

static void test_bad_base64(void **state)
{
	static const char *const bad[] = { "!!!!", "dGlt=", "dGl", "dA",
	    "dGlt\r", "dG=t", "dA==dA==", " dGlt", "dGlt ", "dGk=" "x",
	    "dB==" };
	struct buf chal = BUF_INIT;
	struct sasl_step out;
	struct sasl *s;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		/* in each state, and as an initial response */
		s = cram_start(&chal, false);
		sasl_step(s, bad[i], strlen(bad[i]), &out);
		assert_int_equal(out.status, SASL_BAD_B64);
		sasl_free(s);

		s = sasl_start("PLAIN", NULL, true, "h", users, &out);
		sasl_step(s, bad[i], strlen(bad[i]), &out);
		assert_int_equal(out.status, SASL_BAD_B64);
		sasl_free(s);

		s = sasl_start("LOGIN", NULL, true, "h", users, &out);
		sasl_step(s, bad[i], strlen(bad[i]), &out);
		assert_int_equal(out.status, SASL_BAD_B64);
		sasl_free(s);

		s = sasl_start("LOGIN", NULL, true, "h", users, &out);
		step_b64(s, L("tim"), &out);
		sasl_step(s, bad[i], strlen(bad[i]), &out);
		assert_int_equal(out.status, SASL_BAD_B64);
		sasl_step(s, "dGlt", 4, &out);	/* over */
		assert_int_equal(out.status, SASL_FAIL);
		sasl_free(s);

		s = sasl_start("PLAIN", bad[i], true, "h", users, &out);
		assert_int_equal(out.status, SASL_BAD_B64);
		sasl_free(s);
		s = sasl_start("LOGIN", bad[i], true, "h", users, &out);
		assert_int_equal(out.status, SASL_BAD_B64);
		sasl_free(s);
	}
	/* a NUL inside the line */
	s = sasl_start("PLAIN", NULL, true, "h", users, &out);
	sasl_step(s, L("dG\0t"), &out);
	assert_int_equal(out.status, SASL_BAD_B64);
	sasl_free(s);
	assert_string_equal(sasl_reply(SASL_BAD_B64),
	    "501 5.5.2 Cannot decode response");
	buf_free(&chal);
}

static void test_too_long(void **state)
{
	char *big = malloc(64 * 1024 + 1);
	struct buf chal = BUF_INIT;
	struct sasl_step out;
	struct sasl *s;

	assert_non_null(big);
	memset(big, 'A', 64 * 1024);
	big[64 * 1024] = '\0';

	/* a 64 kB blob, valid base64 */
	s = sasl_start("PLAIN", NULL, true, "h", users, &out);
	sasl_step(s, big, 64 * 1024, &out);
	assert_int_equal(out.status, SASL_TOO_LONG);
	sasl_free(s);
	s = cram_start(&chal, false);
	sasl_step(s, big, 64 * 1024, &out);
	assert_int_equal(out.status, SASL_TOO_LONG);
	sasl_free(s);
	s = sasl_start("PLAIN", big, true, "h", users, &out);
	assert_int_equal(out.status, SASL_TOO_LONG);
	sasl_free(s);
	s = sasl_start("LOGIN", big, true, "h", users, &out);
	assert_int_equal(out.status, SASL_TOO_LONG);
	sasl_free(s);

	/* the limit itself is fine (a decodable, failing message) */
	s = sasl_start("PLAIN", NULL, true, "h", users, &out);
	sasl_step(s, big, SASL_LINE_MAX, &out);
	assert_int_equal(out.status, SASL_FAIL);
	sasl_free(s);
	s = sasl_start("PLAIN", NULL, true, "h", users, &out);
	sasl_step(s, big, SASL_LINE_MAX + 4, &out);
	assert_int_equal(out.status, SASL_TOO_LONG);
	sasl_free(s);
	assert_string_equal(sasl_reply(SASL_TOO_LONG),
	    "500 5.5.6 Authentication exchange line is too long");
	free(big);
	buf_free(&chal);
}

static void test_no_users_table(void **state)
{
	struct sasl_step out;
	struct sasl *s;
	char *e = b64(L("\0tim\0tanstaaftanstaaf"));

	s = sasl_start("PLAIN", e, true, "h", NULL, &out);
	assert_int_equal(out.status, SASL_FAIL);
	assert_string_equal(out.user, "tim");
	sasl_free(s);
	free(e);
	sasl_free(NULL);
}

static void test_every_status_has_a_reply(void **state)
{
	int st;

	for (st = SASL_CONTINUE; st <= SASL_BAD_INITIAL; st++) {
		const char *r = sasl_reply((enum sasl_status)st);

		assert_non_null(r);
		assert_true(r[0] >= '2' && r[0] <= '5');
		assert_true(r[3] == '\0' || r[3] == ' ');
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mechs),
		cmocka_unit_test(test_unknown_mech),
		cmocka_unit_test(test_plain_login_need_tls),
		cmocka_unit_test(test_plain),
		cmocka_unit_test(test_plain_unknown_user),
		cmocka_unit_test(test_plain_impersonation),
		cmocka_unit_test(test_plain_malformed),
		cmocka_unit_test(test_plain_continuation),
		cmocka_unit_test(test_login),
		cmocka_unit_test(test_login_failures),
		cmocka_unit_test(test_cram_challenge),
		cmocka_unit_test(test_cram),
		cmocka_unit_test(test_cram_response_forms),
		cmocka_unit_test(test_cram_initial_response),
		cmocka_unit_test(test_cancel),
		cmocka_unit_test(test_bad_base64),
		cmocka_unit_test(test_too_long),
		cmocka_unit_test(test_no_users_table),
		cmocka_unit_test(test_every_status_has_a_reply),
	};

	return cmocka_run_group_tests(tests, setup_users, teardown_users);
}
