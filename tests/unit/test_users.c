/* test_users - the users_file: parser, loader, verification, line maker */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <crypt.h>
#include <sys/stat.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "auth/users.h"

/* L - a literal with its exact length, embedded NULs included */
#define L(s) s, sizeof(s) - 1

/* "doveadm pw -s CRAM-MD5 -p password" */
#define DOVECOT_CTX \
    "9186d855e11eba527a7a52ca82b313e180d62234f0acc9051b527243d41e2740"

static const char rfc2195_chal[] =
    "<1896.697170952@postoffice.reston.mci.net>";
static const char rfc2195_digest[] = "b913a602c7eda7a495b4e6e7334d3890";

/* parse - a text that must parse */
static struct users *parse(const char *text)
{
	struct buf errs = BUF_INIT;
	struct users *u = users_parse(text, strlen(text), "t", &errs);

	if (u == NULL)
		fail_msg("refused:\n%s", buf_cstr(&errs));
	assert_int_equal(errs.len, 0);
	buf_free(&errs);
	return u;
}

/* parse_errs - a text that must be refused; the messages, caller frees */
static char *parse_errs(const char *text, size_t len)
{
	struct buf errs = BUF_INIT;
	struct users *u = users_parse(text, len, "t", &errs);

	if (u != NULL)
		fail_msg("accepted: %s", text);
	assert_true(errs.len > 0);
	return buf_steal(&errs);
}

/* expect_err - text is refused with exactly the messages want */
static void expect_err(const char *text, const char *want)
{
	char *got = parse_errs(text, strlen(text));

	assert_string_equal(got, want);
	free(got);
}

/* hash_of - a crypt(3) hash of pw by the method of prefix */
static void hash_of(const char *prefix, const char *pw, char *out,
    size_t outsz)
{
	char setting[CRYPT_GENSALT_OUTPUT_SIZE];
	struct crypt_data *cd = calloc(1, sizeof(*cd));
	const char *h;

	assert_non_null(cd);
	assert_non_null(crypt_gensalt_rn(prefix, 0, NULL, 0, setting,
	    sizeof(setting)));
	h = crypt_rn(pw, setting, cd, sizeof(*cd));
	assert_non_null(h);
	assert_true(strncmp(h, prefix, strlen(prefix)) == 0);
	assert_true(strlen(h) < outsz);
	strcpy(out, h);
	free(cd);
}

/* check_pw - users_check_password on a C string */
static bool check_pw(const struct users *u, const char *name, const char *pw)
{
	return users_check_password(users_find(u, name), pw, strlen(pw));
}

/* check_cram - users_check_cram on C strings */
static bool check_cram(const struct users *u, const char *name,
    const char *chal, const char *hex)
{
	return users_check_cram(users_find(u, name), chal, strlen(chal), hex,
	    strlen(hex));
}

/* ossl_hex - HMAC-MD5 in lower-case hex by OpenSSL, the reference */
static void ossl_hex(const void *key, size_t klen, const void *msg,
    size_t mlen, char out[33])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	unsigned i;

	assert_non_null(HMAC(EVP_md5(), key, (int)klen, msg, mlen, md,
	    &mdlen));
	assert_int_equal(mdlen, 16);
	for (i = 0; i < 16; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* ---- parsing ----------------------------------------------------------- */

static void test_parse_valid(void **state)
{
	const char *text =
	    "# ODMR accounts\n"
	    "\n"
	    "tim:{PLAIN}tanstaaftanstaaf:example.org\r\n"
	    "   # an indented comment\n"
	    "\t \n"
	    "  alice.b_c+d-e@x.example:{plain}pw:"
	    "a.example, B.Example ,c.EXAMPLE  \n"
	    "bob:{SHA512-CRYPT}$6$abc$def:b.example\n"
	    "carol:{BLF-CRYPT}$2y$05$abcdefghijklmnopqrstuu:c.example\n"
	    "dave:{CRYPT}$y$j9T$abc$def:d.example\n"
	    "erin:{CRAM-MD5}9186D855E11EBA527A7A52CA82B313E1"
	    "80d62234f0acc9051b527243d41e2740:e.example\n"
	    "erin:{SHA512-CRYPT}$6$x$y:e.example\n"
	    "colons:{PLAIN}a:b::c:f.example";
	struct users *u = parse(text);
	const struct users_account *a;

	assert_int_equal(users_count(u), 7);
	a = users_find(u, "alice.b_c+d-e@x.example");
	assert_non_null(a);
	assert_string_equal(users_account_name(a), "alice.b_c+d-e@x.example");
	assert_int_equal(users_account_ndomains(a), 3);
	assert_string_equal(users_account_domain(a, 0), "a.example");
	assert_string_equal(users_account_domain(a, 1), "b.example");
	assert_string_equal(users_account_domain(a, 2), "c.example");
	assert_null(users_account_domain(a, 3));
	assert_true(users_account_can_password(a));
	assert_true(users_account_can_cram(a));

	a = users_find(u, "erin");
	assert_non_null(a);
	assert_true(users_account_can_password(a));
	assert_true(users_account_can_cram(a));
	a = users_find(u, "bob");
	assert_true(users_account_can_password(a));
	assert_false(users_account_can_cram(a));

	/* the password is between the first and the last colon */
	assert_true(check_pw(u, "colons", "a:b::c"));
	assert_false(check_pw(u, "colons", "a"));

	assert_null(users_find(u, "Tim"));	/* names are case-sensitive */
	assert_null(users_find(u, "nobody"));
	assert_null(users_find(u, ""));
	assert_null(users_find(NULL, "tim"));
	assert_non_null(users_find(u, "tim"));
	users_free(u);
}

static void test_parse_empty(void **state)
{
	struct users *u;

	u = parse("");
	assert_int_equal(users_count(u), 0);
	assert_null(users_find(u, "tim"));
	users_free(u);
	u = parse("# nothing\n\n   \n");
	assert_int_equal(users_count(u), 0);
	users_free(u);
	u = users_parse(NULL, 0, NULL, NULL);
	assert_non_null(u);
	users_free(u);
}

static void test_parse_errors_with_lines(void **state)
{
	const char *text =
	    "# line 1\n"
	    "bad name!:{PLAIN}x:example.org\n"		/* 2 */
	    "tim:{FOO}x:example.org\n"			/* 3 */
	    "tim:{PLAIN}x:\n"				/* 4 */
	    "tim:{PLAIN}x:exa_mple.org\n"		/* 5 */
	    "nocolon\n"					/* 6 */
	    "a:{CRAM-MD5}zz:example.org\n"		/* 7 */
	    "b:{SHA512-CRYPT}$5$abc$def:example.org\n"	/* 8 */
	    "c:{PLAIN}x:a.org,A.org\n"			/* 9 */
	    "d:{PLAIN}x:a.org,,b.org,\n"		/* 10 */
	    "e:{PLAIN}:a.org\n"				/* 11 */
	    "f:{PLAIN}x:a.org\n"			/* 12 */
	    "f:{SHA512-CRYPT}$6$s$h:a.org\n"		/* 13 */
	    "g:{CRAM-MD5}" DOVECOT_CTX ":a.org\n"
	    "g:{CRYPT}$y$j9T$s$h:b.org\n"		/* 15 */
	    "h:PLAIN}x:a.org\n"				/* 16 */
	    ":{PLAIN}x:a.org\n"				/* 17 */
	    "i:{BLF-CRYPT}$6$s$h:a.org\n"		/* 18 */
	    "j:{CRYPT}$6$s h:a.org\n"			/* 19 */
	    "k:{PLAIN}x:1.2.3.4\n"			/* 20 */
	    "f:{CRAM-MD5}" DOVECOT_CTX ":a.org\n"
	    "l:{PLAIN:a.org\n";				/* 22 */
	const char *want =
	    "t:2: bad character in user name \"bad name!\" (allowed: A-Z a-z 0-9 . _ @ + -)\n"
	    "t:3: unknown scheme \"FOO\" (use PLAIN, CRAM-MD5, SHA512-CRYPT, BLF-CRYPT or CRYPT)\n"
	    "t:4: no domains\n"
	    "t:5: bad domain \"exa_mple.org\": bad character in domain\n"
	    "t:6: expected name:{SCHEME}secret:domain,...\n"
	    "t:7: {CRAM-MD5}: expected 64 hex digits\n"
	    "t:8: {SHA512-CRYPT}: hash does not begin with $6$\n"
	    "t:9: domain \"a.org\" listed twice\n"
	    "t:10: empty domain in the list\n"
	    "t:11: {PLAIN}: empty password\n"
	    "t:13: user \"f\": a second secret for PLAIN/LOGIN (the first is on line 12)\n"
	    "t:15: user \"g\": the domains differ from those on line 14\n"
	    "t:16: the secret does not begin with {SCHEME}\n"
	    "t:17: empty user name\n"
	    "t:18: {BLF-CRYPT}: hash does not begin with $2b$ (or $2a$, $2y$)\n"
	    "t:19: {CRYPT}: bad character in hash\n"
	    "t:20: bad domain \"1.2.3.4\": numeric top-level label (use an address literal)\n"
	    "t:21: user \"f\": a second secret for CRAM-MD5 (the first is on line 12)\n"
	    "t:22: the secret's {SCHEME} has no closing brace\n";
	char *got = parse_errs(text, strlen(text));

	assert_string_equal(got, want);
	free(got);
}

static void test_parse_error_no_name(void **state)
{
	struct buf errs = BUF_INIT;

	assert_null(users_parse(L("\n\nx"), NULL, &errs));
	assert_string_equal(buf_cstr(&errs),
	    "line 3: expected name:{SCHEME}secret:domain,...\n");
	buf_free(&errs);
	/* errs may be NULL */
	assert_null(users_parse(L("x"), "t", NULL));
}

static void test_parse_several_errors_per_line(void **state)
{
	expect_err("bad!:{NOPE}x:a..b\n",
	    "t:1: bad character in user name \"bad!\" (allowed: A-Z a-z 0-9 . _ @ + -)\n"
	    "t:1: unknown scheme \"NOPE\" (use PLAIN, CRAM-MD5, SHA512-CRYPT, BLF-CRYPT or CRYPT)\n"
	    "t:1: bad domain \"a..b\": empty label in domain\n");
}

static void test_parse_limits(void **state)
{
	struct buf t = BUF_INIT;
	struct users *u;
	char *e;
	int i;

	/* a 64-character name is fine, 65 is not */
	buf_printf(&t, "%s:{PLAIN}x:a.org\n",
	    "0123456789012345678901234567890123456789012345678901234567890123");
	u = parse(t.p);
	users_free(u);
	buf_reset(&t);
	buf_printf(&t, "%s:{PLAIN}x:a.org\n",
	    "01234567890123456789012345678901234567890123456789012345678901234");
	e = parse_errs(t.p, t.len);
	assert_non_null(strstr(e, "t:1: user name \""));
	assert_non_null(strstr(e, "longer than 64 characters"));
	free(e);

	/* 100 domains are fine, 101 are not */
	buf_reset(&t);
	buf_puts(&t, "u:{PLAIN}x:");
	for (i = 0; i < 100; i++)
		buf_printf(&t, "%sd%d.example", i ? "," : "", i);
	u = parse(t.p);
	assert_int_equal(users_account_ndomains(users_find(u, "u")), 100);
	assert_true(users_may_collect(users_find(u, "u"), "d99.example"));
	users_free(u);
	buf_puts(&t, ",d100.example");
	expect_err(t.p, "t:1: more than 100 domains\n");

	/* a 256-byte password is fine, 257 is not */
	buf_reset(&t);
	buf_puts(&t, "u:{PLAIN}");
	for (i = 0; i < 256; i++)
		buf_putc(&t, 'p');
	buf_puts(&t, ":a.org");
	u = parse(t.p);
	users_free(u);
	buf_reset(&t);
	buf_puts(&t, "u:{PLAIN}");
	for (i = 0; i < 257; i++)
		buf_putc(&t, 'p');
	buf_puts(&t, ":a.org");
	expect_err(t.p, "t:1: {PLAIN}: password longer than 256 bytes\n");

	/* an over-long line */
	buf_reset(&t);
	buf_puts(&t, "# fine\nu:{PLAIN}x:a.org");
	for (i = 0; i < USERS_LINE_MAX; i++)
		buf_putc(&t, ' ');
	expect_err(t.p, "t:2: line longer than 8192 bytes\n");
	buf_free(&t);
}

static void test_parse_too_many_errors(void **state)
{
	struct buf t = BUF_INIT;
	char *e, *p;
	int i, lines = 0;

	for (i = 0; i < 150; i++)
		buf_puts(&t, "bad\n");
	e = parse_errs(t.p, t.len);
	for (p = e; *p; p++)
		lines += *p == '\n';
	assert_int_equal(lines, USERS_ERRORS_MAX);
	assert_non_null(strstr(e, "t:99: expected"));
	assert_null(strstr(e, "t:100:"));
	assert_non_null(strstr(e, "t: too many errors; stopping after 99\n"));
	free(e);
	buf_free(&t);
}

static void test_parse_control_bytes(void **state)
{
	char *e;

	e = parse_errs(L("u:{PLAIN}x\0y:a.org\n"));
	assert_string_equal(e, "t:1: control character in the line\n");
	free(e);
	e = parse_errs(L("u:{PLAIN}x\ty:a.org\n"));
	assert_string_equal(e, "t:1: {PLAIN}: control character in password\n");
	free(e);
	e = parse_errs(L("ok:{PLAIN}x:a.org\nu:{PLAIN}x\x7fy:a.org\n"));
	assert_string_equal(e, "t:2: control character in the line\n");
	free(e);
	e = parse_errs(L("u:{PLAIN}x:a.org\rb.org\n"));
	assert_string_equal(e, "t:1: control character in the line\n");
	free(e);
	/* 8-bit bytes are fine in a {PLAIN} password (UTF-8), nowhere else */
	{
		struct users *u = parse("u:{PLAIN}p\xc3\xa4ss:a.org\n");

		assert_true(check_pw(u, "u", "p\xc3\xa4ss"));
		users_free(u);
	}
	e = parse_errs(L("\xc3\xa4:{PLAIN}x:a.org\n"));
	assert_non_null(strstr(e, "bad character in user name \"\\xc3\\xa4\""));
	free(e);
}

static void test_parse_secrets_not_echoed(void **state)
{
	char *e;

	e = parse_errs(L("u:{SHA512-CRYPT}$6$secret-salt$sec ret:a.org\n"));
	assert_null(strstr(e, "secret"));
	free(e);
	e = parse_errs(L("u:{CRAM-MD5}secretsecret:a.org\n"));
	assert_null(strstr(e, "secret"));
	free(e);
	e = parse_errs(L("u:{PLAIN}secret\x01:a.org\n"));
	assert_null(strstr(e, "secret"));
	free(e);
}

static void test_parse_merge(void **state)
{
	struct users *u;
	char *e;

	/* the same set of domains in another order and case is the same */
	u = parse("erin:{CRAM-MD5}" DOVECOT_CTX ":b.org,a.org\n"
	    "other:{PLAIN}x:z.org\n"
	    "erin:{SHA512-CRYPT}$6$x$y:A.org,b.ORG\n");
	assert_int_equal(users_count(u), 2);
	users_free(u);

	/* {PLAIN} serves CRAM-MD5 too: no {CRAM-MD5} beside it */
	e = parse_errs(L("x:{PLAIN}p:a.org\n"
	    "x:{CRAM-MD5}" DOVECOT_CTX ":a.org\n"));
	assert_string_equal(e, "t:2: user \"x\": a second secret for "
	    "CRAM-MD5 (the first is on line 1)\n");
	free(e);
	/* two crypt lines */
	e = parse_errs(L("x:{CRYPT}$y$a$b:a.org\ny:{PLAIN}p:a.org\n"
	    "x:{BLF-CRYPT}$2b$05$abc:a.org\n"));
	assert_string_equal(e, "t:3: user \"x\": a second secret for "
	    "PLAIN/LOGIN (the first is on line 1)\n");
	free(e);
	/* a subset is not the same list */
	e = parse_errs(L("x:{CRYPT}$y$a$b:a.org,b.org\n"
	    "x:{CRAM-MD5}" DOVECOT_CTX ":a.org\n"));
	assert_string_equal(e, "t:2: user \"x\": the domains differ from "
	    "those on line 1\n");
	free(e);
}

static void test_may_collect(void **state)
{
	struct users *u = parse("u:{PLAIN}x:Example.ORG,b.example\n");
	const struct users_account *a = users_find(u, "u");

	assert_string_equal(users_account_domain(a, 1), "example.org");
	assert_true(users_may_collect(a, "example.org"));
	assert_true(users_may_collect(a, "EXAMPLE.org"));
	assert_true(users_may_collect(a, "b.example"));
	assert_false(users_may_collect(a, "sub.example.org"));
	assert_false(users_may_collect(a, "org"));
	assert_false(users_may_collect(a, "example.org."));
	assert_false(users_may_collect(a, "example.or"));
	assert_false(users_may_collect(a, "xexample.org"));
	assert_false(users_may_collect(a, ""));
	assert_false(users_may_collect(NULL, "example.org"));
	assert_false(users_may_collect(a, NULL));
	users_free(u);
}

static void test_find_n(void **state)
{
	struct users *u = parse("tim:{PLAIN}x:a.org\n");

	assert_non_null(users_find_n(u, "timothy", 3));
	assert_null(users_find_n(u, L("tim\0")));
	assert_null(users_find_n(u, L("ti\0m")));
	assert_null(users_find_n(u, "", 0));
	assert_null(users_find_n(u,
	    "timtimtimtimtimtimtimtimtimtimtimtimtimtimtimtimtimtimtimtimtimtim",
	    66));
	assert_null(users_find_n(NULL, "tim", 3));
	users_free(u);
}

static void test_refcount(void **state)
{
	struct users *u = parse("tim:{PLAIN}x:a.org\n");

	assert_ptr_equal(users_ref(u), u);
	users_free(u);
	assert_non_null(users_find(u, "tim"));	/* still alive */
	users_free(u);
	users_free(NULL);
}

/* ---- loading ----------------------------------------------------------- */

static char tmpdir[64];

static int setup_dir(void **state)
{
	strcpy(tmpdir, "/tmp/test_users.XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown_dir(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

/* write_file - path in tmpdir with text and mode */
static void write_file(char *path, size_t psz, const char *name,
    const char *text, mode_t mode)
{
	FILE *f;

	snprintf(path, psz, "%s/%s", tmpdir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	assert_int_equal(chmod(path, mode), 0);
}

static void test_load_modes(void **state)
{
	const char *text = "tim:{PLAIN}tanstaaftanstaaf:example.org\n";
	struct buf errs = BUF_INIT;
	struct users *u;
	char path[256], want[512];
	static const mode_t refused[] = { 0644, 0640, 0604, 0660, 0602,
	    0620, 0666, 0601, 0610, 0400 | 0004 };
	size_t i;

	write_file(path, sizeof(path), "users", text, 0600);
	u = users_load(path, &errs);
	assert_non_null(u);
	assert_int_equal(errs.len, 0);
	assert_true(check_pw(u, "tim", "tanstaaftanstaaf"));
	users_free(u);

	assert_int_equal(chmod(path, 0400), 0);
	u = users_load(path, &errs);
	assert_non_null(u);
	users_free(u);

	for (i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		assert_int_equal(chmod(path, refused[i]), 0);
		buf_reset(&errs);
		assert_null(users_load(path, &errs));
		snprintf(want, sizeof(want), "%s: refused: group or others "
		    "may read or write it (mode %04o); it holds secrets: "
		    "chmod 600 it\n", path, (unsigned)refused[i]);
		assert_string_equal(buf_cstr(&errs), want);
	}
	/* errs may be NULL */
	assert_null(users_load(path, NULL));
	buf_free(&errs);
}

static void test_load_not_regular(void **state)
{
	struct buf errs = BUF_INIT;
	char path[256], want[512];

	/* a directory */
	snprintf(path, sizeof(path), "%s/dir", tmpdir);
	assert_int_equal(mkdir(path, 0700), 0);
	assert_null(users_load(path, &errs));
	snprintf(want, sizeof(want), "%s: refused: not a regular file\n",
	    path);
	assert_string_equal(buf_cstr(&errs), want);

	/* a FIFO: refused, and the open does not hang */
	snprintf(path, sizeof(path), "%s/fifo", tmpdir);
	assert_int_equal(mkfifo(path, 0600), 0);
	buf_reset(&errs);
	assert_null(users_load(path, &errs));
	snprintf(want, sizeof(want), "%s: refused: not a regular file\n",
	    path);
	assert_string_equal(buf_cstr(&errs), want);

	/* missing */
	snprintf(path, sizeof(path), "%s/missing", tmpdir);
	buf_reset(&errs);
	assert_null(users_load(path, &errs));
	snprintf(want, sizeof(want), "%s: cannot open: No such file or "
	    "directory\n", path);
	assert_string_equal(buf_cstr(&errs), want);
	buf_free(&errs);
}

static void test_load_errors(void **state)
{
	struct buf errs = BUF_INIT;
	char path[256], want[512];

	/* parse errors name the file */
	write_file(path, sizeof(path), "bad", "# x\nbad\n", 0600);
	assert_null(users_load(path, &errs));
	snprintf(want, sizeof(want), "%s:2: expected name:{SCHEME}secret:"
	    "domain,...\n", path);
	assert_string_equal(buf_cstr(&errs), want);

	/* a hash crypt(3) does not know */
	write_file(path, sizeof(path), "badhash",
	    "ok:{PLAIN}x:a.org\n\nx:{CRYPT}$9$nosuch$method:a.org\n", 0600);
	buf_reset(&errs);
	assert_null(users_load(path, &errs));
	snprintf(want, sizeof(want), "%s:3: user \"x\": the hash is not one "
	    "this system's crypt(3) supports\n", path);
	assert_string_equal(buf_cstr(&errs), want);

	/* over the size limit (a sparse file: nothing is written) */
	write_file(path, sizeof(path), "huge", "", 0600);
	assert_int_equal(truncate(path, (off_t)USERS_FILE_MAX + 1), 0);
	buf_reset(&errs);
	assert_null(users_load(path, &errs));
	snprintf(want, sizeof(want), "%s: refused: larger than %u bytes\n",
	    path, USERS_FILE_MAX);
	assert_string_equal(buf_cstr(&errs), want);

	/* an empty file is an empty table */
	write_file(path, sizeof(path), "empty", "", 0600);
	buf_reset(&errs);
	{
		struct users *u = users_load(path, &errs);

		assert_non_null(u);
		assert_int_equal(users_count(u), 0);
		users_free(u);
	}
	buf_free(&errs);
}

/* ---- verification ------------------------------------------------------ */

static void test_check_plain(void **state)
{
	struct users *u = parse("tim:{PLAIN}tanstaaftanstaaf:example.org\n");
	const struct users_account *a = users_find(u, "tim");

	assert_true(check_pw(u, "tim", "tanstaaftanstaaf"));
	assert_false(check_pw(u, "tim", "tanstaaftanstaaF"));
	assert_false(check_pw(u, "tim", "tanstaaftanstaa"));
	assert_false(check_pw(u, "tim", "tanstaaftanstaaff"));
	assert_false(check_pw(u, "tim", ""));
	assert_false(users_check_password(a, L("tanstaaftanstaaf\0")));
	assert_false(users_check_password(a, L("tanstaaf\0tanstaaf")));
	/* a length past the fixed buffers is a plain failure */
	{
		char big[600];

		memset(big, 't', sizeof(big));
		assert_false(users_check_password(a, big, sizeof(big)));
		assert_false(users_check_password(a, big, 300));
	}
	assert_false(users_check_password(NULL, L("tanstaaftanstaaf")));
	users_free(u);
}

/* check_crypt_scheme - one crypt scheme, right and wrong passwords */
static void check_crypt_scheme(const char *scheme, const char *prefix)
{
	char hash[CRYPT_OUTPUT_SIZE];
	struct buf t = BUF_INIT;
	struct users *u;
	const struct users_account *a;

	hash_of(prefix, "s3cret pass", hash, sizeof(hash));
	buf_printf(&t, "u:{%s}%s:a.org\n", scheme, hash);
	u = parse(t.p);
	a = users_find(u, "u");
	assert_true(users_account_can_password(a));
	assert_false(users_account_can_cram(a));
	assert_true(check_pw(u, "u", "s3cret pass"));
	assert_false(check_pw(u, "u", "s3cret pasS"));
	assert_false(check_pw(u, "u", "s3cret pas"));
	assert_false(check_pw(u, "u", ""));
	/* a NUL must not cut the phrase crypt sees */
	assert_false(users_check_password(a, L("s3cret pass\0junk")));
	assert_false(users_check_password(a, L("s3cret pass\0")));
	/* and such an account cannot answer CRAM-MD5 */
	assert_false(check_cram(u, "u", rfc2195_chal, rfc2195_digest));
	users_free(u);
	buf_free(&t);
}

static void test_check_sha512(void **state)
{
	check_crypt_scheme("SHA512-CRYPT", "$6$");
	check_crypt_scheme("CRYPT", "$6$");
}

static void test_check_bcrypt(void **state)
{
	check_crypt_scheme("BLF-CRYPT", "$2b$");
	check_crypt_scheme("CRYPT", "$2b$");
}

static void test_check_yescrypt(void **state)
{
	check_crypt_scheme("CRYPT", "$y$");
}

static void test_cram_only_cannot_plain(void **state)
{
	struct buf line = BUF_INIT;
	struct users *u;

	assert_true(users_make_line(&line, "tim", "tanstaaftanstaaf",
	    "example.org", true));
	u = parse(line.p);
	assert_false(users_account_can_password(users_find(u, "tim")));
	assert_true(users_account_can_cram(users_find(u, "tim")));
	assert_false(check_pw(u, "tim", "tanstaaftanstaaf"));
	assert_true(check_cram(u, "tim", rfc2195_chal, rfc2195_digest));
	users_free(u);
	buf_free(&line);
}

static void test_cram_rfc2195(void **state)
{
	struct buf line = BUF_INIT;
	struct users *u;
	const struct users_account *a;

	/* from {PLAIN} */
	u = parse("tim:{PLAIN}tanstaaftanstaaf:example.org\n");
	assert_true(check_cram(u, "tim", rfc2195_chal, rfc2195_digest));
	assert_true(check_cram(u, "tim", rfc2195_chal,
	    "B913A602C7EDA7A495B4E6E7334D3890"));
	assert_false(check_cram(u, "tim", rfc2195_chal,
	    "b913a602c7eda7a495b4e6e7334d3891"));
	assert_false(check_cram(u, "tim",
	    "<1896.697170953@postoffice.reston.mci.net>", rfc2195_digest));
	users_free(u);

	/* from the precomputed contexts users_make_line() writes */
	assert_true(users_make_line(&line, "tim", "tanstaaftanstaaf",
	    "example.org", true));
	assert_string_equal(line.p, "tim:{CRAM-MD5}"
	    "d06d4e1b26fccaa4b0b61801132340a354b21152711fb604ca3e035e7015116b"
	    ":example.org");
	u = parse(line.p);
	a = users_find(u, "tim");
	assert_true(check_cram(u, "tim", rfc2195_chal, rfc2195_digest));
	assert_true(check_cram(u, "tim", rfc2195_chal,
	    "b913A602c7eda7a495b4e6e7334d3890"));
	/* wrong lengths, non-hex digits, a digest with a tail */
	assert_false(users_check_cram(a, L(rfc2195_chal),
	    rfc2195_digest, 31));
	assert_false(users_check_cram(a, rfc2195_chal, strlen(rfc2195_chal),
	    L("b913a602c7eda7a495b4e6e7334d38900")));
	assert_false(users_check_cram(a, rfc2195_chal, strlen(rfc2195_chal),
	    L("b913a602c7eda7a495b4e6e7334d389g")));
	assert_false(users_check_cram(a, rfc2195_chal, strlen(rfc2195_chal),
	    "", 0));
	assert_false(users_check_cram(NULL, rfc2195_chal,
	    strlen(rfc2195_chal), L("b913a602c7eda7a495b4e6e7334d3890")));
	assert_false(users_check_cram_dummy(rfc2195_chal,
	    strlen(rfc2195_chal), L("b913a602c7eda7a495b4e6e7334d3890")));
	users_free(u);
	buf_free(&line);
}

static void test_cram_dovecot_vector(void **state)
{
	struct buf line = BUF_INIT;

	/* "doveadm pw -s CRAM-MD5 -p password" */
	assert_true(users_make_line(&line, "u", "password", "a.org", true));
	assert_string_equal(line.p, "u:{CRAM-MD5}"
	    "9186d855e11eba527a7a52ca82b313e180d62234f0acc9051b527243d41e2740"
	    ":a.org");
	buf_free(&line);
}

static void test_cram_against_openssl(void **state)
{
	uint32_t r = 12345;
	int round;

	/* keys of 1..200 bytes (over 64: hashed first), random challenges */
	for (round = 1; round <= 200; round++) {
		char key[201], chal[120], want[33];
		struct buf line = BUF_INIT, t = BUF_INIT;
		struct users *u;
		size_t clen, i;

		for (i = 0; i < (size_t)round; i++) {
			r = r * 1103515245u + 12345u;
			/* printable, ':' and '{' included */
			key[i] = (char)('!' + (r >> 16) % 93);
		}
		key[round] = '\0';
		clen = (size_t)round % sizeof(chal);
		for (i = 0; i < clen; i++) {
			r = r * 1103515245u + 12345u;
			chal[i] = (char)(r >> 16);
		}
		ossl_hex(key, (size_t)round, chal, clen, want);

		if ((size_t)round <= USERS_PASSWORD_MAX) {
			buf_printf(&t, "p:{PLAIN}%s:a.org\n", key);
			u = parse(t.p);
			assert_true(users_check_cram(users_find(u, "p"), chal,
			    clen, want, 32));
			users_free(u);
		}
		assert_true(users_make_line(&line, "c", key, "a.org", true));
		u = parse(line.p);
		assert_true(users_check_cram(users_find(u, "c"), chal, clen,
		    want, 32));
		want[0] = want[0] == '0' ? '1' : '0';
		assert_false(users_check_cram(users_find(u, "c"), chal, clen,
		    want, 32));
		users_free(u);
		buf_free(&line);
		buf_free(&t);
	}
}

static void test_dummy_costs_like_crypt(void **state)
{
	struct buf line = BUF_INIT;
	struct users *u;
	struct timespec t0, t1, t2;
	double real, dummy;
	int i;

	assert_true(users_make_line(&line, "u", "password", "a.org", false));
	u = parse(line.p);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (i = 0; i < 5; i++)
		assert_false(check_pw(u, "u", "wrong"));
	clock_gettime(CLOCK_MONOTONIC, &t1);
	for (i = 0; i < 5; i++)
		assert_false(users_check_password_dummy(L("wrong")));
	clock_gettime(CLOCK_MONOTONIC, &t2);
	real = (double)(t1.tv_sec - t0.tv_sec) * 1e9 +
	    (double)(t1.tv_nsec - t0.tv_nsec);
	dummy = (double)(t2.tv_sec - t1.tv_sec) * 1e9 +
	    (double)(t2.tv_nsec - t1.tv_nsec);
	/* loose: the point is "a crypt", not "a few nanoseconds" */
	if (dummy < real / 4 || dummy > real * 4)
		fail_msg("real %.0f ns, dummy %.0f ns", real, dummy);
	/* an unknown user costs a crypt too */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (i = 0; i < 5; i++)
		assert_false(check_pw(u, "nobody", "wrong"));
	clock_gettime(CLOCK_MONOTONIC, &t1);
	dummy = (double)(t1.tv_sec - t0.tv_sec) * 1e9 +
	    (double)(t1.tv_nsec - t0.tv_nsec);
	if (dummy < real / 4)
		fail_msg("real %.0f ns, unknown user %.0f ns", real, dummy);
	assert_false(users_check_password_dummy(NULL, 0));
	users_free(u);
	buf_free(&line);
}

/* ---- making lines ------------------------------------------------------ */

static void test_make_line_sha512(void **state)
{
	struct buf line = BUF_INIT, line2 = BUF_INIT;
	struct users *u;

	assert_true(users_make_line(&line, "alice", "correct horse",
	    " A.example , b.EXAMPLE", false));
	assert_true(strncmp(line.p, "alice:{SHA512-CRYPT}$6$", 23) == 0);
	assert_non_null(strstr(line.p, ":a.example,b.example"));
	assert_null(strchr(line.p, '\n'));
	/* a random salt: the same password gives another hash */
	assert_true(users_make_line(&line2, "alice", "correct horse",
	    "a.example,b.example", false));
	assert_string_not_equal(line.p, line2.p);
	u = parse(line.p);
	assert_true(check_pw(u, "alice", "correct horse"));
	assert_false(check_pw(u, "alice", "correct horsE"));
	assert_true(users_may_collect(users_find(u, "alice"), "b.example"));
	users_free(u);

	/* a CRAM-MD5 line and a SHA512-CRYPT line make one account */
	buf_putc(&line, '\n');
	assert_true(users_make_line(&line, "alice", "correct horse",
	    "b.example,a.example", true));
	u = parse(line.p);
	assert_int_equal(users_count(u), 1);
	assert_true(users_account_can_password(users_find(u, "alice")));
	assert_true(users_account_can_cram(users_find(u, "alice")));
	users_free(u);
	buf_free(&line);
	buf_free(&line2);
}

static void test_make_line_refuses(void **state)
{
	struct buf out = BUF_INIT;
	char longpw[USERS_PASSWORD_MAX + 2];
	int cram;

	memset(longpw, 'x', sizeof(longpw) - 1);
	longpw[sizeof(longpw) - 1] = '\0';
	buf_puts(&out, "before");
	for (cram = 0; cram < 2; cram++) {
		assert_false(users_make_line(&out, "bad name", "pw", "a.org",
		    cram));
		assert_false(users_make_line(&out, "", "pw", "a.org", cram));
		assert_false(users_make_line(&out, "a:b", "pw", "a.org",
		    cram));
		assert_false(users_make_line(&out, "x", "", "a.org", cram));
		assert_false(users_make_line(&out, "x", longpw, "a.org",
		    cram));
		assert_false(users_make_line(&out, "x", "p\tw", "a.org",
		    cram));
		assert_false(users_make_line(&out, "x", "pw", "", cram));
		assert_false(users_make_line(&out, "x", "pw", "a..org",
		    cram));
		assert_false(users_make_line(&out, "x", "pw", "a.org,a.org",
		    cram));
		assert_false(users_make_line(&out, "x", "pw", "ex ample.org",
		    cram));
		assert_false(users_make_line(&out, "x", "pw", "a.org:b",
		    cram));
		/* no second account smuggled in through a newline */
		assert_false(users_make_line(&out, "x", "pw",
		    "a.org\nroot:{PLAIN}pw:b.org", cram));
		assert_false(users_make_line(&out, NULL, "pw", "a.org", cram));
		assert_false(users_make_line(&out, "x", NULL, "a.org", cram));
		assert_false(users_make_line(&out, "x", "pw", NULL, cram));
	}
	assert_string_equal(out.p, "before");
	/* the longest password is fine */
	longpw[USERS_PASSWORD_MAX] = '\0';
	assert_true(users_make_line(&out, "x", longpw, "a.org", false));
	buf_free(&out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_valid),
		cmocka_unit_test(test_parse_empty),
		cmocka_unit_test(test_parse_errors_with_lines),
		cmocka_unit_test(test_parse_error_no_name),
		cmocka_unit_test(test_parse_several_errors_per_line),
		cmocka_unit_test(test_parse_limits),
		cmocka_unit_test(test_parse_too_many_errors),
		cmocka_unit_test(test_parse_control_bytes),
		cmocka_unit_test(test_parse_secrets_not_echoed),
		cmocka_unit_test(test_parse_merge),
		cmocka_unit_test(test_may_collect),
		cmocka_unit_test(test_find_n),
		cmocka_unit_test(test_refcount),
		cmocka_unit_test_setup_teardown(test_load_modes, setup_dir,
		    teardown_dir),
		cmocka_unit_test_setup_teardown(test_load_not_regular,
		    setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_load_errors, setup_dir,
		    teardown_dir),
		cmocka_unit_test(test_check_plain),
		cmocka_unit_test(test_check_sha512),
		cmocka_unit_test(test_check_bcrypt),
		cmocka_unit_test(test_check_yescrypt),
		cmocka_unit_test(test_cram_only_cannot_plain),
		cmocka_unit_test(test_cram_rfc2195),
		cmocka_unit_test(test_cram_dovecot_vector),
		cmocka_unit_test(test_cram_against_openssl),
		cmocka_unit_test(test_dummy_costs_like_crypt),
		cmocka_unit_test(test_make_line_sha512),
		cmocka_unit_test(test_make_line_refuses),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
