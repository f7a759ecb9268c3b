/*
 * users - load the users file, verify credentials, make account lines
 *
 * CRAM-MD5 secrets are stored as Dovecot stores them: not the password
 * but the two HMAC-MD5 key contexts, i.e. the MD5 chaining state after
 * one block of key^opad and after one block of key^ipad (RFC 2104; the
 * key is first hashed when longer than 64 bytes).  Answering a challenge
 * from them means resuming MD5 from a given state, which EVP cannot do
 * and OpenSSL 3 allows only through the deprecated MD5_* API; so this
 * file carries its own MD5 (RFC 1321, written from the RFC), about sixty
 * lines, and uses it for every CRAM-MD5 digest, {PLAIN} or {CRAM-MD5}.
 * The unit tests check it against RFC 2195, a Dovecot-made context and
 * OpenSSL's HMAC.
 *
 * The byte order of the 32 context bytes follows Dovecot (it writes the
 * outer context first), so "doveadm pw -s CRAM-MD5" output can be pasted
 * in: "password" gives 9186d855...d41e2740 in both.
 */
#include "auth/users_int.h"
#include "util/strutil.h"
#include "util/xalloc.h"

#include <crypt.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#define MD5_LEN	16

/* A fixed sha512crypt setting: the same work as users_make_line()'s. */
static const char dummy_setting[] = "$6$etrndDummySalt$";

/* ---- MD5 (RFC 1321) ---------------------------------------------------- */

struct md5 {
	uint32_t h[4];
	uint64_t n;			/* bytes hashed so far */
	unsigned char blk[64];
	size_t fill;
};

/* T[i] = floor(2^32 * |sin(i + 1)|), RFC 1321 3.4 */
static const uint32_t md5_t[64] = {
	0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee,
	0xf57c0faf, 0x4787c62a, 0xa8304613, 0xfd469501,
	0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be,
	0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821,
	0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa,
	0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8,
	0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed,
	0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a,
	0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c,
	0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70,
	0x289b7ec6, 0xeaa127fa, 0xd4ef3085, 0x04881d05,
	0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665,
	0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039,
	0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
	0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1,
	0xf7537e82, 0xbd3af235, 0x2ad7d2bb, 0xeb86d391,
};

/* the left rotations of each round, four per round */
static const unsigned char md5_r[4][4] = {
	{ 7, 12, 17, 22 }, { 5, 9, 14, 20 }, { 4, 11, 16, 23 },
	{ 6, 10, 15, 21 },
};

static const uint32_t md5_iv[4] = {
	0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476,
};

/* get_le32, put_le32 - little-endian words */
static uint32_t get_le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	    (uint32_t)p[3] << 24;
}

static void put_le32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
	p[2] = (unsigned char)(v >> 16);
	p[3] = (unsigned char)(v >> 24);
}

/* md5_block - the compression function: one 64-byte block into h */
static void md5_block(uint32_t h[4], const unsigned char p[64])
{
	uint32_t m[16], a = h[0], b = h[1], c = h[2], d = h[3];
	unsigned i;

	for (i = 0; i < 16; i++)
		m[i] = get_le32(p + 4 * i);
	for (i = 0; i < 64; i++) {
		uint32_t f, t;
		unsigned g, s = md5_r[i / 16][i % 4];

		switch (i / 16) {
		case 0:
			f = (b & c) | (~b & d);
			g = i;
			break;
		case 1:
			f = (b & d) | (c & ~d);
			g = (5 * i + 1) % 16;
			break;
		case 2:
			f = b ^ c ^ d;
			g = (3 * i + 5) % 16;
			break;
		default:
			f = c ^ (b | ~d);
			g = (7 * i) % 16;
			break;
		}
		t = a + f + md5_t[i] + m[g];
		a = d;
		d = c;
		c = b;
		b += t << s | t >> (32 - s);
	}
	h[0] += a;
	h[1] += b;
	h[2] += c;
	h[3] += d;
	OPENSSL_cleanse(m, sizeof(m));	/* may hold key bytes */
}

/* md5_resume - continue from state h after n bytes (a multiple of 64) */
static void md5_resume(struct md5 *c, const uint32_t h[4], uint64_t n)
{
	memcpy(c->h, h, sizeof(c->h));
	c->n = n;
	c->fill = 0;
}

/* md5_update - hash more bytes */
static void md5_update(struct md5 *c, const void *data, size_t len)
{
	const unsigned char *p = data;

	c->n += len;
	while (len > 0) {
		size_t k = 64 - c->fill;

		if (k > len)
			k = len;
		memcpy(c->blk + c->fill, p, k);
		c->fill += k;
		p += k;
		len -= k;
		if (c->fill == 64) {
			md5_block(c->h, c->blk);
			c->fill = 0;
		}
	}
}

/* md5_final - padding and length, the digest out; c is wiped */
static void md5_final(struct md5 *c, unsigned char out[MD5_LEN])
{
	uint64_t bits = c->n * 8;
	unsigned i;

	c->blk[c->fill++] = 0x80;
	if (c->fill > 56) {
		memset(c->blk + c->fill, 0, 64 - c->fill);
		md5_block(c->h, c->blk);
		c->fill = 0;
	}
	memset(c->blk + c->fill, 0, 56 - c->fill);
	for (i = 0; i < 8; i++)
		c->blk[56 + i] = (unsigned char)(bits >> (8 * i));
	md5_block(c->h, c->blk);
	for (i = 0; i < 4; i++)
		put_le32(out + 4 * i, c->h[i]);
	OPENSSL_cleanse(c, sizeof(*c));
}

/* ---- HMAC-MD5 from contexts (RFC 2104, RFC 2195) ---------------------- */

/* cram_contexts - the 32 context bytes of key: outer state, inner state */
static void cram_contexts(const void *key, size_t klen,
    unsigned char ctx[USERS_CRAM_CTX_LEN])
{
	unsigned char k[64], blk[64];
	uint32_t hi[4], ho[4];
	unsigned i;

	memset(k, 0, sizeof(k));
	if (klen > sizeof(k)) {
		struct md5 c;

		md5_resume(&c, md5_iv, 0);
		md5_update(&c, key, klen);
		md5_final(&c, k);
	} else if (klen > 0) {
		memcpy(k, key, klen);
	}
	memcpy(hi, md5_iv, sizeof(hi));
	memcpy(ho, md5_iv, sizeof(ho));
	for (i = 0; i < 64; i++)
		blk[i] = k[i] ^ 0x36;
	md5_block(hi, blk);
	for (i = 0; i < 64; i++)
		blk[i] = k[i] ^ 0x5c;
	md5_block(ho, blk);
	for (i = 0; i < 4; i++) {
		put_le32(ctx + 4 * i, ho[i]);
		put_le32(ctx + 16 + 4 * i, hi[i]);
	}
	OPENSSL_cleanse(k, sizeof(k));
	OPENSSL_cleanse(blk, sizeof(blk));
	OPENSSL_cleanse(hi, sizeof(hi));
	OPENSSL_cleanse(ho, sizeof(ho));
}

/* cram_hmac - HMAC-MD5 of msg under the key the contexts stand for */
static void cram_hmac(const unsigned char ctx[USERS_CRAM_CTX_LEN],
    const void *msg, size_t len, unsigned char out[MD5_LEN])
{
	unsigned char inner[MD5_LEN];
	uint32_t h[4];
	struct md5 c;
	unsigned i;

	for (i = 0; i < 4; i++)
		h[i] = get_le32(ctx + 16 + 4 * i);
	md5_resume(&c, h, 64);
	md5_update(&c, msg, len);
	md5_final(&c, inner);
	for (i = 0; i < 4; i++)
		h[i] = get_le32(ctx + 4 * i);
	md5_resume(&c, h, 64);
	md5_update(&c, inner, sizeof(inner));
	md5_final(&c, out);
	OPENSSL_cleanse(inner, sizeof(inner));
	OPENSSL_cleanse(h, sizeof(h));
}

/* hex_lower - 2n lower-case hex digits of p[0..n), no NUL */
static void hex_lower(char *out, const unsigned char *p, size_t n)
{
	static const char hx[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = hx[p[i] >> 4];
		out[2 * i + 1] = hx[p[i] & 15];
	}
}

/* cram_compare - HMAC(ctx, challenge) against the client's hex digits */
static bool cram_compare(const unsigned char ctx[USERS_CRAM_CTX_LEN],
    const char *challenge, size_t clen, const char *hex, size_t hlen)
{
	unsigned char dig[MD5_LEN];
	char want[USERS_DIGEST_HEX_LEN], got[USERS_DIGEST_HEX_LEN];
	size_t i;
	int ok;

	cram_hmac(ctx, challenge, clen, dig);
	hex_lower(want, dig, sizeof(dig));
	/* The same work whatever the length: short input compares zeros. */
	for (i = 0; i < sizeof(got); i++)
		got[i] = i < hlen ? ascii_tolower(hex[i]) : '\0';
	ok = CRYPTO_memcmp(want, got, sizeof(want)) == 0;
	ok &= hlen == USERS_DIGEST_HEX_LEN;
	OPENSSL_cleanse(dig, sizeof(dig));
	OPENSSL_cleanse(want, sizeof(want));
	return ok;
}

/* users_check_cram_dummy - the work of a check, with a fixed context */
bool users_check_cram_dummy(const char *challenge, size_t clen,
    const char *hexdigest, size_t hlen)
{
	static const char key[] = "etrnd-no-such-user";
	unsigned char ctx[USERS_CRAM_CTX_LEN];

	cram_contexts(key, sizeof(key) - 1, ctx);
	(void)cram_compare(ctx, challenge, clen, hexdigest, hlen);
	return false;
}

/* users_check_cram - from {CRAM-MD5} contexts or the {PLAIN} password */
bool users_check_cram(const struct users_account *a, const char *challenge,
    size_t clen, const char *hexdigest, size_t hlen)
{
	unsigned char ctx[USERS_CRAM_CTX_LEN];
	bool ok;

	if (a == NULL || (!a->has_cram && a->plain == NULL))
		return users_check_cram_dummy(challenge, clen, hexdigest,
		    hlen);
	if (a->has_cram)
		memcpy(ctx, a->cram, sizeof(ctx));
	else
		cram_contexts(a->plain, a->plain_len, ctx);
	ok = cram_compare(ctx, challenge, clen, hexdigest, hlen);
	OPENSSL_cleanse(ctx, sizeof(ctx));
	return ok;
}

/* ---- passwords --------------------------------------------------------- */

/* crypt_match - crypt_rn(pw, setting) equals expect; NULL expect: never */
static bool crypt_match(const char *setting, const char *expect,
    const char *pw, size_t len)
{
	struct crypt_data *cd = xcalloc(1, sizeof(*cd));
	char *phrase = xmemdup0(pw, len);
	const char *res;
	bool ok = false;

	res = crypt_rn(phrase, setting, cd, (int)sizeof(*cd));
	if (res != NULL && expect != NULL) {
		size_t rl = strlen(res), el = strlen(expect);

		ok = rl == el && CRYPTO_memcmp(res, expect, el) == 0;
	}
	OPENSSL_cleanse(phrase, len);
	free(phrase);
	OPENSSL_cleanse(cd, sizeof(*cd));
	free(cd);
	return ok;
}

/* users_check_password_dummy - a sha512crypt of pw that matches nothing */
bool users_check_password_dummy(const char *pw, size_t len)
{
	if (pw == NULL)
		len = 0;
	if (len >= CRYPT_MAX_PASSPHRASE_SIZE)
		len = CRYPT_MAX_PASSPHRASE_SIZE - 1;
	(void)crypt_match(dummy_setting, NULL, pw ? pw : "", len);
	return false;
}

/* plain_match - {PLAIN}: fixed-size copies, CRYPTO_memcmp, no early exit */
static bool plain_match(const struct users_account *a, const char *pw,
    size_t len)
{
	unsigned char x[USERS_PASSWORD_MAX], y[USERS_PASSWORD_MAX];
	int ok;

	memset(x, 0, sizeof(x));
	memset(y, 0, sizeof(y));
	memcpy(x, a->plain, a->plain_len);
	memcpy(y, pw, len < sizeof(y) ? len : sizeof(y));
	ok = CRYPTO_memcmp(x, y, sizeof(x)) == 0;
	ok &= len == a->plain_len;
	OPENSSL_cleanse(x, sizeof(x));
	OPENSSL_cleanse(y, sizeof(y));
	return ok;
}

/* users_check_password - PLAIN and LOGIN */
bool users_check_password(const struct users_account *a, const char *pw,
    size_t len)
{
	/*
	 * A NUL would cut the phrase crypt sees ("secret\0junk" would
	 * pass), and crypt refuses long phrases at once; both take the
	 * dummy path so they cost what any failure costs.
	 */
	if (a == NULL || pw == NULL || memchr(pw, '\0', len) != NULL ||
	    len >= CRYPT_MAX_PASSPHRASE_SIZE)
		return users_check_password_dummy(pw, len);
	if (a->hash != NULL)
		return crypt_match(a->hash, a->hash, pw, len);
	if (a->plain != NULL)
		return plain_match(a, pw, len);
	return users_check_password_dummy(pw, len);	/* CRAM-MD5 only */
}

/* ---- loading ----------------------------------------------------------- */

/* load_err - one message line, when the caller wants them */
static void load_err(struct buf *errs, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void load_err(struct buf *errs, const char *fmt, ...)
{
	va_list ap;

	if (errs == NULL)
		return;
	va_start(ap, fmt);
	buf_vprintf(errs, fmt, ap);
	va_end(ap);
	buf_putc(errs, '\n');
}

/* read_all - the whole of fd, at most max bytes; -1 and errno on error */
static ssize_t read_all(int fd, char *p, size_t max)
{
	size_t n = 0;

	while (n < max) {
		ssize_t r = read(fd, p + n, max - n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0)
			break;
		n += (size_t)r;
	}
	return (ssize_t)n;
}

/* check_hashes - every crypt hash names a method libcrypt accepts */
static bool check_hashes(const struct users *u, const char *path,
    struct buf *errs)
{
	bool ok = true;
	size_t i;

	for (i = 0; i < u->n; i++) {
		const struct users_account *a = &u->v[i];
		int r;

		if (a->hash == NULL)
			continue;
		r = crypt_checksalt(a->hash);
		if (r == CRYPT_SALT_INVALID ||
		    r == CRYPT_SALT_METHOD_DISABLED) {
			load_err(errs, "%s:%d: user \"%s\": the hash is not "
			    "one this system's crypt(3) supports", path,
			    a->hash_line, a->name);
			ok = false;
		}
	}
	return ok;
}

/* users_load - read, check the mode, parse, wipe */
struct users *users_load(const char *path, struct buf *errs)
{
	struct users *u;
	struct stat st;
	ssize_t n;
	char *text;
	int fd;

	/* O_NONBLOCK: a FIFO planted at the path must not hang the open */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		load_err(errs, "%s: cannot open: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) < 0) {
		load_err(errs, "%s: cannot stat: %s", path, strerror(errno));
		close(fd);
		return NULL;
	}
	if (!S_ISREG(st.st_mode)) {
		load_err(errs, "%s: refused: not a regular file", path);
		close(fd);
		return NULL;
	}
	if (st.st_mode & 077) {
		load_err(errs, "%s: refused: group or others may read or "
		    "write it (mode %04o); it holds secrets: chmod 600 it",
		    path, (unsigned)(st.st_mode & 07777));
		close(fd);
		return NULL;
	}
	if (st.st_size > (off_t)USERS_FILE_MAX) {
		load_err(errs, "%s: refused: larger than %u bytes", path,
		    USERS_FILE_MAX);
		close(fd);
		return NULL;
	}
	/* One byte more than fstat() said tells a file that grew since. */
	text = xmalloc((size_t)st.st_size + 1);
	n = read_all(fd, text, (size_t)st.st_size + 1);
	if (n < 0) {
		load_err(errs, "%s: cannot read: %s", path, strerror(errno));
		close(fd);
		free(text);
		return NULL;
	}
	close(fd);
	if ((size_t)n > (size_t)st.st_size) {
		load_err(errs, "%s: changed while being read; try again",
		    path);
		u = NULL;
	} else {
		u = users_parse(text, (size_t)n, path, errs);
	}
	OPENSSL_cleanse(text, (size_t)n);
	free(text);
	if (u != NULL && !check_hashes(u, path, errs)) {
		users_free(u);
		u = NULL;
	}
	return u;
}

/* ---- account lines ----------------------------------------------------- */

/* make_secret - "{CRAM-MD5}hex" or "{SHA512-CRYPT}hash" into b */
static bool make_secret(struct buf *b, const char *pw, bool cram)
{
	size_t len = strlen(pw);

	if (cram) {
		unsigned char ctx[USERS_CRAM_CTX_LEN];
		char hx[USERS_CRAM_HEX_LEN];

		cram_contexts(pw, len, ctx);
		hex_lower(hx, ctx, sizeof(ctx));
		buf_puts(b, "{CRAM-MD5}");
		buf_append(b, hx, sizeof(hx));
		OPENSSL_cleanse(ctx, sizeof(ctx));
		OPENSSL_cleanse(hx, sizeof(hx));
		return true;
	} else {
		char setting[CRYPT_GENSALT_OUTPUT_SIZE];
		unsigned char rb[16];
		struct crypt_data *cd;
		const char *res;
		bool ok = false;

		if (RAND_bytes(rb, sizeof(rb)) != 1)
			return false;
		if (crypt_gensalt_rn("$6$", 0, (const char *)rb, sizeof(rb),
		    setting, sizeof(setting)) == NULL)
			return false;
		cd = xcalloc(1, sizeof(*cd));
		res = crypt_rn(pw, setting, cd, (int)sizeof(*cd));
		if (res != NULL && strncmp(res, "$6$", 3) == 0) {
			buf_puts(b, "{SHA512-CRYPT}");
			buf_puts(b, res);
			ok = true;
		}
		OPENSSL_cleanse(cd, sizeof(*cd));
		free(cd);
		OPENSSL_cleanse(rb, sizeof(rb));
		return ok;
	}
}

/* users_make_line - a checked users_file line for one account */
bool users_make_line(struct buf *out, const char *name, const char *password,
    const char *domains, bool cram)
{
	struct buf line = BUF_INIT;
	struct users *u;
	const char *d;
	size_t i, len;
	bool ok;

	if (name == NULL || password == NULL || domains == NULL)
		return false;
	len = strlen(password);
	if (len == 0 || len > USERS_PASSWORD_MAX)
		return false;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)password[i];

		if (c < 0x20 || c == 0x7f)
			return false;
	}

	buf_puts(&line, name);
	buf_putc(&line, ':');
	if (!make_secret(&line, password, cram)) {
		OPENSSL_cleanse(line.p, line.cap);
		buf_free(&line);
		return false;
	}
	buf_putc(&line, ':');
	/* Each domain in lower case, the blanks around it dropped; a blank
	 * inside one is kept for users_parse() to refuse. */
	for (d = domains;;) {
		const char *comma = strchr(d, ',');
		size_t dl = comma ? (size_t)(comma - d) : strlen(d);

		while (dl > 0 && (*d == ' ' || *d == '\t')) {
			d++;
			dl--;
		}
		while (dl > 0 && (d[dl - 1] == ' ' || d[dl - 1] == '\t'))
			dl--;
		for (i = 0; i < dl; i++)
			buf_putc(&line, ascii_tolower(d[i]));
		if (comma == NULL)
			break;
		buf_putc(&line, ',');
		d = comma + 1;
	}

	u = users_parse(line.p, line.len, NULL, NULL);
	ok = u != NULL && users_count(u) == 1 && users_find(u, name) != NULL;
	users_free(u);
	if (ok)
		buf_append(out, line.p, line.len);
	OPENSSL_cleanse(line.p, line.cap);
	buf_free(&line);
	return ok;
}
