/* test_envelope - a message's envelope as bytes in its segment record */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "queue/envelope.h"
#include "queue/queue.h"
#include "smtp/smtp_addr.h"
#include "util/buf.h"
#include "util/xalloc.h"

/*
 * Under AddressSanitizer every allocation is seen through its malloc hook,
 * so a test can bound the largest single allocation a decode makes.
 */
#if defined(__SANITIZE_ADDRESS__)
#define HAVE_ALLOC_HOOK 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HAVE_ALLOC_HOOK 1
#endif
#endif

#ifdef HAVE_ALLOC_HOOK
int __sanitizer_install_malloc_and_free_hooks(
    void (*malloc_hook)(const volatile void *, size_t),
    void (*free_hook)(const volatile void *));

static volatile size_t alloc_max;	/* the largest since reset */

static void on_malloc(const volatile void *p, size_t size)
{
	if (size > alloc_max)
		alloc_max = size;
}

static void on_free(const volatile void *p)
{
}
#endif

/* --- building messages and bytes --- */

#define ENV_NULL 0xFFFFFFFFu

/* msg_new - an empty message, as queue_msg_free() expects it */
static struct queue_msg_in *msg_new(void)
{
	struct queue_msg_in *m = xcalloc(1, sizeof(*m));

	m->body_fd = -1;
	return m;
}

static char *dup_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

/* rcpt_add - append one recipient (strings copied) */
static void rcpt_add(struct queue_msg_in *m, const char *addr,
    const char *domain, unsigned notify, const char *orcpt, int st)
{
	struct queue_rcpt_in *r;

	m->rcpts = xrealloc(m->rcpts, (m->nrcpt + 1) * sizeof(*m->rcpts));
	r = &m->rcpts[m->nrcpt++];
	r->addr = dup_or_null(addr);
	r->domain = dup_or_null(domain);
	r->notify = notify;
	r->orcpt = dup_or_null(orcpt);
	r->state = st;
}

/* msg_full - every field set, three recipients */
static struct queue_msg_in *msg_full(time_t arrival)
{
	struct queue_msg_in *m = msg_new();

	m->sender = xstrdup("alice@example.org");
	m->envid = xstrdup("QQ314159");
	m->ret = SMTP_RET_HDRS;
	m->body8 = SMTP_BODY_8BITMIME;
	m->arrival = arrival;
	m->client = xstrdup("2001:db8::25");
	m->helo = xstrdup("client.example.org");
	rcpt_add(m, "bob@example.com", "example.com",
	    SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_FAILURE | SMTP_NOTIFY_DELAY,
	    "rfc822;bob@example.com", QUEUE_R_QUEUED);
	rcpt_add(m, "carol@sub.example.net", "sub.example.net",
	    SMTP_NOTIFY_NEVER, NULL, QUEUE_R_HELD);
	rcpt_add(m, "dave@example.com", "example.com", 0,
	    "utf-8;dave\\x2B@example.com", QUEUE_R_QUEUED);
	return m;
}

/* msg_small - one recipient, the nullable fields NULL */
static struct queue_msg_in *msg_small(void)
{
	struct queue_msg_in *m = msg_new();

	m->sender = xstrdup("s@a.example");
	m->arrival = 1700000000;
	rcpt_add(m, "r@b.example", "b.example", 0, NULL, QUEUE_R_QUEUED);
	return m;
}

static struct buf encode(const struct queue_msg_in *m)
{
	struct buf b = BUF_INIT;

	envelope_encode(&b, m);
	return b;
}

static void put_u8(struct buf *b, unsigned v)
{
	buf_putc(b, (char)(unsigned char)v);
}

static void put_u32(struct buf *b, uint32_t v)
{
	unsigned char x[4] = { (unsigned char)v, (unsigned char)(v >> 8),
	    (unsigned char)(v >> 16), (unsigned char)(v >> 24) };

	buf_append(b, x, sizeof(x));
}

/* put_strn - a str of n bytes (embedded NULs allowed) */
static void put_strn(struct buf *b, const char *s, size_t n)
{
	put_u32(b, (uint32_t)n);
	buf_append(b, s, n);
}

static void put_str(struct buf *b, const char *s)
{
	if (s == NULL)
		put_u32(b, ENV_NULL);
	else
		put_strn(b, s, strlen(s));
}

/* put_head - a valid envelope up to (not including) the recipient count */
static void put_head(struct buf *b)
{
	put_u8(b, ENVELOPE_VERSION);
	put_str(b, "s@a.example");
	put_str(b, NULL);
	put_u8(b, 0);
	put_u8(b, 0);
	put_u32(b, 1700000000u);
	put_u32(b, 0);
	put_str(b, NULL);
	put_str(b, NULL);
}

/* put_rcpt - one recipient */
static void put_rcpt(struct buf *b, const char *addr, const char *domain,
    unsigned notify, const char *orcpt, unsigned st)
{
	put_str(b, addr);
	put_str(b, domain);
	put_u32(b, notify);
	put_str(b, orcpt);
	put_u8(b, st);
}

/* --- decoding --- */

static void assert_str_same(const char *got, const char *want)
{
	if (want == NULL)
		assert_null(got);
	else {
		assert_non_null(got);
		assert_string_equal(got, want);
	}
}

/* assert_msg_equal - every envelope field of a equals b's */
static void assert_msg_equal(const struct queue_msg_in *a,
    const struct queue_msg_in *b)
{
	size_t i;

	assert_str_same(a->sender, b->sender);
	assert_str_same(a->envid, b->envid);
	assert_int_equal(a->ret, b->ret);
	assert_int_equal(a->body8, b->body8);
	assert_true(a->arrival == b->arrival);
	assert_str_same(a->client, b->client);
	assert_str_same(a->helo, b->helo);
	assert_int_equal(a->nrcpt, b->nrcpt);
	assert_non_null(a->rcpts);
	for (i = 0; i < a->nrcpt; i++) {
		assert_str_same(a->rcpts[i].addr, b->rcpts[i].addr);
		assert_str_same(a->rcpts[i].domain, b->rcpts[i].domain);
		assert_int_equal(a->rcpts[i].notify, b->rcpts[i].notify);
		assert_str_same(a->rcpts[i].orcpt, b->rcpts[i].orcpt);
		assert_int_equal(a->rcpts[i].state, b->rcpts[i].state);
	}
}

/* decode_ok - decode, expecting success; the caller frees the result */
static struct queue_msg_in *decode_ok(const void *p, size_t len)
{
	struct queue_msg_in *m = xcalloc(1, sizeof(*m));

	assert_int_equal(envelope_decode(p, len, m), 0);
	assert_int_equal(m->body_fd, -1);
	return m;
}

/* decode_bad - p must be refused, leaving nothing to free in m */
static void decode_bad(const void *p, size_t len)
{
	struct queue_msg_in *m = xcalloc(1, sizeof(*m));

	assert_int_equal(envelope_decode(p, len, m), -1);
	assert_null(m->sender);
	assert_null(m->envid);
	assert_null(m->client);
	assert_null(m->helo);
	assert_null(m->rcpts);
	assert_int_equal(m->nrcpt, 0);
	assert_int_equal(m->body_fd, -1);
	queue_msg_free(m);
}

static void decode_bad_buf(const struct buf *b)
{
	decode_bad(b->p, b->len);
}

/* refused - m's encoding does not decode; m is freed */
static void refused(struct queue_msg_in *m)
{
	struct buf b = encode(m);

	decode_bad_buf(&b);
	buf_free(&b);
	queue_msg_free(m);
}

/* roundtrip - encode m, decode the bytes: equal, and canonical */
static void roundtrip(const struct queue_msg_in *m)
{
	struct buf b = encode(m), b2 = BUF_INIT;
	struct queue_msg_in *d = decode_ok(b.p, b.len);

	assert_msg_equal(d, m);
	envelope_encode(&b2, d);
	assert_int_equal(b2.len, b.len);
	assert_memory_equal(b2.p, b.p, b.len);
	queue_msg_free(d);
	buf_free(&b);
	buf_free(&b2);
}

/* field_at - the offset of the bytes of the str s in b (found once) */
static size_t field_at(const struct buf *b, const char *s)
{
	struct buf pat = BUF_INIT;
	const char *hit, *again;
	size_t off;

	put_str(&pat, s);
	hit = memmem(b->p, b->len, pat.p, pat.len);
	assert_non_null(hit);
	again = memmem(hit + 1, b->len - (size_t)(hit + 1 - b->p), pat.p,
	    pat.len);
	assert_null(again);
	off = (size_t)(hit - b->p) + 4;
	buf_free(&pat);
	return off;
}

/* --- the tests --- */

static void test_roundtrip_full(void **state)
{
	static const time_t arrivals[] = {
		1700000000, 0, -1, -1700000000, (time_t)1 << 40,
		(time_t)0x0123456789abcdefLL, INT64_MAX, INT64_MIN,
		(time_t)0xffffffffLL, (time_t)0x80000000LL,
	};
	size_t i;

	for (i = 0; i < sizeof(arrivals) / sizeof(arrivals[0]); i++) {
		struct queue_msg_in *m = msg_full(arrivals[i]);

		roundtrip(m);
		queue_msg_free(m);
	}
}

static void test_roundtrip_values(void **state)
{
	static const int rets[] = { SMTP_RET_NONE, SMTP_RET_FULL, SMTP_RET_HDRS };
	static const int bodies[] = {
		SMTP_BODY_NONE, SMTP_BODY_7BIT, SMTP_BODY_8BITMIME
	};
	size_t i, k;

	for (i = 0; i < 3; i++) {
		for (k = 0; k < 3; k++) {
			struct queue_msg_in *m = msg_full(1700000000);

			m->ret = rets[i];
			m->body8 = bodies[k];
			m->rcpts[0].notify = (unsigned)(i * 3 + k);
			m->rcpts[1].notify = 0xFFFFFFFFu;
			roundtrip(m);
			queue_msg_free(m);
		}
	}
}

static void test_roundtrip_nulls(void **state)
{
	struct queue_msg_in *m = msg_small();
	struct buf b;
	struct queue_msg_in *d;

	free(m->sender);
	m->sender = xstrdup("");	/* the null sender */
	roundtrip(m);

	b = encode(m);
	d = decode_ok(b.p, b.len);
	assert_non_null(d->sender);
	assert_string_equal(d->sender, "");
	assert_null(d->envid);
	assert_null(d->client);
	assert_null(d->helo);
	assert_null(d->rcpts[0].orcpt);
	queue_msg_free(d);
	buf_free(&b);

	/* an empty (not NULL) envid, client, helo, orcpt, addr stay empty */
	m->envid = xstrdup("");
	m->client = xstrdup("");
	m->helo = xstrdup("");
	m->rcpts[0].orcpt = xstrdup("");
	free(m->rcpts[0].addr);
	m->rcpts[0].addr = xstrdup("");
	roundtrip(m);
	queue_msg_free(m);
}

/* the encoder writes exactly the documented format */
static void test_encode_bytes(void **state)
{
	struct queue_msg_in *m = msg_new();
	struct buf got, want = BUF_INIT;

	m->sender = xstrdup("a@b");
	m->envid = xstrdup("E1");
	m->ret = SMTP_RET_FULL;
	m->body8 = SMTP_BODY_7BIT;
	m->arrival = -2;
	m->helo = xstrdup("h");
	rcpt_add(m, "x@d", "d", SMTP_NOTIFY_FAILURE, "rfc822;x@d",
	    QUEUE_R_HELD);
	rcpt_add(m, "y@e", "e", 0, NULL, QUEUE_R_QUEUED);
	got = encode(m);

	put_u8(&want, 1);
	put_str(&want, "a@b");
	put_str(&want, "E1");
	put_u8(&want, SMTP_RET_FULL);
	put_u8(&want, SMTP_BODY_7BIT);
	put_u32(&want, 0xFFFFFFFEu);	/* -2, low half */
	put_u32(&want, 0xFFFFFFFFu);
	put_str(&want, NULL);
	put_str(&want, "h");
	put_u32(&want, 2);
	put_rcpt(&want, "x@d", "d", SMTP_NOTIFY_FAILURE, "rfc822;x@d",
	    QUEUE_R_HELD);
	put_rcpt(&want, "y@e", "e", 0, NULL, QUEUE_R_QUEUED);

	assert_int_equal(got.len, want.len);
	assert_memory_equal(got.p, want.p, want.len);
	/* and hand-built bytes decode */
	queue_msg_free(decode_ok(want.p, want.len));
	queue_msg_free(m);
	buf_free(&got);
	buf_free(&want);
}

/* decoding leaves id and body alone, and sets body_fd to -1 */
static void test_decode_keeps_id_body(void **state)
{
	struct queue_msg_in *m = msg_small(), *d = xcalloc(1, sizeof(*d));
	struct buf b = encode(m);

	d->id = 0x1122334455667788ULL;
	buf_puts(&d->body, "body bytes");
	d->body_fd = 99;
	assert_int_equal(envelope_decode(b.p, b.len, d), 0);
	assert_true(d->id == 0x1122334455667788ULL);
	assert_string_equal(buf_cstr(&d->body), "body bytes");
	assert_int_equal(d->body_fd, -1);
	assert_msg_equal(d, m);
	queue_msg_free(d);
	queue_msg_free(m);
	buf_free(&b);
}

static void test_truncations(void **state)
{
	struct queue_msg_in *ms[] = { msg_full(-1), msg_small() };
	size_t i, n;

	for (i = 0; i < 2; i++) {
		struct buf b = encode(ms[i]);

		for (n = 0; n < b.len; n++) {
			/* an exact-size copy, so ASan sees any overread */
			char *p = xmalloc(n ? n : 1);

			memcpy(p, b.p, n);
			decode_bad(p, n);
			free(p);
		}
		decode_bad(NULL, 0);
		buf_free(&b);
		queue_msg_free(ms[i]);
	}
}

static void test_trailing_bytes(void **state)
{
	static const char tails[] = { '\0', '\x01', 'x', '\xff' };
	struct queue_msg_in *m = msg_full(1700000000);
	struct buf b = encode(m);
	size_t i, len = b.len;

	for (i = 0; i < sizeof(tails); i++) {
		b.len = len;
		buf_putc(&b, tails[i]);
		decode_bad_buf(&b);
	}
	/* and a whole second envelope after the first */
	b.len = len;
	envelope_encode(&b, m);
	decode_bad_buf(&b);
	buf_free(&b);
	queue_msg_free(m);
}

static void test_wrong_version(void **state)
{
	static const unsigned char versions[] = { 0, 2, 0x7f, 0xff };
	struct queue_msg_in *m = msg_full(1700000000);
	struct buf b = encode(m);
	size_t i;

	for (i = 0; i < sizeof(versions); i++) {
		b.p[0] = (char)versions[i];
		decode_bad_buf(&b);
	}
	b.p[0] = ENVELOPE_VERSION;
	queue_msg_free(decode_ok(b.p, b.len));
	buf_free(&b);
	queue_msg_free(m);
}

/* a NUL byte at the start, middle or end of any string is refused */
static void test_nul_in_string(void **state)
{
	static const char *const fields[] = {
		"alice@example.org", "QQ314159", "2001:db8::25",
		"client.example.org", "carol@sub.example.net", "sub.example.net",
		"rfc822;bob@example.com",
	};
	struct queue_msg_in *m = msg_full(1700000000);
	struct buf b = encode(m);
	size_t i;

	for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		size_t off = field_at(&b, fields[i]), n = strlen(fields[i]);
		size_t where[3] = { off, off + n / 2, off + n - 1 };
		size_t k;

		for (k = 0; k < 3; k++) {
			char save = b.p[where[k]];

			b.p[where[k]] = '\0';
			decode_bad_buf(&b);
			b.p[where[k]] = save;
		}
	}
	/* unchanged, it still decodes */
	queue_msg_free(decode_ok(b.p, b.len));
	buf_free(&b);
	queue_msg_free(m);

	/* a string that is only a NUL */
	b = (struct buf)BUF_INIT;
	put_head(&b);
	put_u32(&b, 1);
	put_str(&b, "r@b.example");
	put_strn(&b, "\0", 1);
	put_u32(&b, 0);
	put_str(&b, NULL);
	put_u8(&b, QUEUE_R_QUEUED);
	decode_bad_buf(&b);
	buf_free(&b);
}

/* NULL where the format has a str, not an ostr */
static void test_null_not_nullable(void **state)
{
	struct buf b = BUF_INIT;

	put_u8(&b, ENVELOPE_VERSION);	/* NULL sender */
	put_str(&b, NULL);
	put_str(&b, NULL);
	put_u8(&b, 0);
	put_u8(&b, 0);
	put_u32(&b, 0);
	put_u32(&b, 0);
	put_str(&b, NULL);
	put_str(&b, NULL);
	put_u32(&b, 1);
	put_rcpt(&b, "r@b.example", "b.example", 0, NULL, QUEUE_R_QUEUED);
	decode_bad_buf(&b);

	b.len = 0;		/* NULL recipient address */
	put_head(&b);
	put_u32(&b, 1);
	put_rcpt(&b, NULL, "b.example", 0, NULL, QUEUE_R_QUEUED);
	decode_bad_buf(&b);

	b.len = 0;		/* NULL domain */
	put_head(&b);
	put_u32(&b, 1);
	put_rcpt(&b, "r@b.example", NULL, 0, NULL, QUEUE_R_QUEUED);
	decode_bad_buf(&b);
	buf_free(&b);
}

static void test_zero_rcpts(void **state)
{
	struct queue_msg_in *m = msg_small();
	struct buf b = BUF_INIT;

	put_head(&b);
	put_u32(&b, 0);
	decode_bad_buf(&b);
	/* a count of 0 followed by what would be a recipient */
	put_rcpt(&b, "r@b.example", "b.example", 0, NULL, QUEUE_R_QUEUED);
	decode_bad_buf(&b);
	buf_free(&b);

	/* what the encoder writes for no recipients */
	b = encode(m);
	queue_msg_free(decode_ok(b.p, b.len));
	buf_free(&b);
	m->nrcpt = 0;
	b = encode(m);
	decode_bad_buf(&b);
	m->nrcpt = 1;
	buf_free(&b);
	queue_msg_free(m);
}

static void test_empty_domain(void **state)
{
	struct queue_msg_in *m = msg_full(1700000000);
	struct buf b;

	free(m->rcpts[2].domain);	/* the last recipient's */
	m->rcpts[2].domain = xstrdup("");
	b = encode(m);
	decode_bad_buf(&b);
	buf_free(&b);

	free(m->rcpts[0].domain);	/* and the first's */
	m->rcpts[0].domain = xstrdup("");
	free(m->rcpts[2].domain);
	m->rcpts[2].domain = xstrdup("example.com");
	refused(m);
}

static void test_bad_state(void **state)
{
	static const int states[] = {
		QUEUE_R_DEFERRED, QUEUE_R_DELIVERED, QUEUE_R_FAILED,
		QUEUE_R_CORRUPT, 6, 0x7f, 0xff,
	};
	size_t i, k;

	for (k = 0; k < 3; k++) {	/* on each recipient in turn */
		for (i = 0; i < sizeof(states) / sizeof(states[0]); i++) {
			struct queue_msg_in *m = msg_full(1700000000);

			m->rcpts[k].state = states[i];
			refused(m);
		}
	}
	/* ret and body8 outside their enums */
	for (k = 0; k < 2; k++) {
		struct queue_msg_in *m = msg_full(1700000000);

		if (k)
			m->body8 = SMTP_BODY_8BITMIME + 1;
		else
			m->ret = SMTP_RET_HDRS + 1;
		refused(m);
	}
	/* and the two that are stored */
	for (k = 0; k < 2; k++) {
		struct queue_msg_in *m = msg_full(1700000000);

		for (i = 0; i < m->nrcpt; i++)
			m->rcpts[i].state = k ? QUEUE_R_HELD : QUEUE_R_QUEUED;
		roundtrip(m);
		queue_msg_free(m);
	}
}

/*
 * A recipient count that the bytes cannot hold is refused before the
 * recipients are allocated.
 */
static void test_huge_rcpt_count(void **state)
{
	static const uint32_t counts[] = {
		ENV_NULL, 0xFFFFFFFEu, 0x80000000u, ENVELOPE_MAX_RCPT + 1,
		ENVELOPE_MAX_RCPT, 50000, 2,
	};
	struct buf b = BUF_INIT;
	size_t i;

	for (i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
		b.len = 0;
		put_head(&b);
		put_u32(&b, counts[i]);
		put_rcpt(&b, "r@b.example", "b.example", 0, NULL,
		    QUEUE_R_QUEUED);
#ifdef HAVE_ALLOC_HOOK
		alloc_max = 0;
#endif
		decode_bad_buf(&b);
#ifdef HAVE_ALLOC_HOOK
		/* the struct, one recipient's strings, nothing in bulk */
		assert_in_range(alloc_max, 1, 4096);
#endif
	}

	/* over ENVELOPE_MAX_RCPT, refused even with the bytes there */
	b.len = 0;
	put_head(&b);
	put_u32(&b, ENVELOPE_MAX_RCPT + 1);
	for (i = 0; i < ENVELOPE_MAX_RCPT + 1; i++)
		put_rcpt(&b, "", "d", 0, NULL, QUEUE_R_QUEUED);
	decode_bad_buf(&b);

	/* exactly ENVELOPE_MAX_RCPT of the smallest recipients decode */
	b.len = 0;
	put_head(&b);
	put_u32(&b, ENVELOPE_MAX_RCPT);
	for (i = 0; i < ENVELOPE_MAX_RCPT; i++)
		put_rcpt(&b, "", "d", 0, NULL, QUEUE_R_HELD);
	{
		struct queue_msg_in *d = decode_ok(b.p, b.len);

		assert_int_equal(d->nrcpt, ENVELOPE_MAX_RCPT);
		assert_string_equal(d->rcpts[ENVELOPE_MAX_RCPT - 1].domain,
		    "d");
		queue_msg_free(d);
	}
	buf_free(&b);
}

/* set_string - the i-th of sender, helo, first domain, first orcpt */
static void set_string(struct queue_msg_in *t, size_t i, const char *v)
{
	char **f = i == 0 ? &t->sender : i == 1 ? &t->helo :
	    i == 2 ? &t->rcpts[0].domain : &t->rcpts[0].orcpt;

	free(*f);
	*f = xstrdup(v);
}

static void test_long_string(void **state)
{
	char *big = xmalloc(ENVELOPE_MAX_STR + 2);
	struct queue_msg_in *m = msg_small();
	struct buf b = BUF_INIT;
	size_t i;

	memset(big, 'x', ENVELOPE_MAX_STR + 1);
	big[ENVELOPE_MAX_STR + 1] = '\0';

	/* one over the limit, in each kind of string */
	for (i = 0; i < 4; i++) {
		struct queue_msg_in *t = msg_small();

		set_string(t, i, big);
		b = encode(t);
		decode_bad_buf(&b);
		buf_free(&b);

		/* exactly at the limit it decodes */
		big[ENVELOPE_MAX_STR] = '\0';
		set_string(t, i, big);
		big[ENVELOPE_MAX_STR] = 'x';
		roundtrip(t);
		queue_msg_free(t);
	}

	/* a length far over the bytes there (not the NULL marker) */
	b = (struct buf)BUF_INIT;
	put_u8(&b, ENVELOPE_VERSION);
	put_u32(&b, 0xFFFFFFFEu);
	buf_puts(&b, "short");
	decode_bad_buf(&b);
	b.len = 0;
	put_u8(&b, ENVELOPE_VERSION);
	put_u32(&b, ENVELOPE_MAX_STR + 1);
	buf_puts(&b, "short");
	decode_bad_buf(&b);
	buf_free(&b);

	free(big);
	queue_msg_free(m);
}

/* every single-byte change of a valid encoding: no crash, no leak */
static void test_byte_flips(void **state)
{
	struct queue_msg_in *m = msg_full(-1700000000);
	struct buf b = encode(m), b2 = BUF_INIT;
	size_t i;
	unsigned v;

	for (i = 0; i < b.len; i++) {
		char save = b.p[i];

		for (v = 0; v < 256; v += 51) {
			struct queue_msg_in *d = xcalloc(1, sizeof(*d));

			b.p[i] = (char)(unsigned char)(save ^ (v | 1));
			if (envelope_decode(b.p, b.len, d) == 0) {
				/* canonical: it encodes back to the bytes */
				b2.len = 0;
				envelope_encode(&b2, d);
				assert_int_equal(b2.len, b.len);
				assert_memory_equal(b2.p, b.p, b.len);
			}
			queue_msg_free(d);
		}
		b.p[i] = save;
	}
	buf_free(&b);
	buf_free(&b2);
	queue_msg_free(m);
}

static int group_setup(void **state)
{
#ifdef HAVE_ALLOC_HOOK
	if (!__sanitizer_install_malloc_and_free_hooks(on_malloc, on_free))
		return -1;
#endif
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip_full),
		cmocka_unit_test(test_roundtrip_values),
		cmocka_unit_test(test_roundtrip_nulls),
		cmocka_unit_test(test_encode_bytes),
		cmocka_unit_test(test_decode_keeps_id_body),
		cmocka_unit_test(test_truncations),
		cmocka_unit_test(test_trailing_bytes),
		cmocka_unit_test(test_wrong_version),
		cmocka_unit_test(test_nul_in_string),
		cmocka_unit_test(test_null_not_nullable),
		cmocka_unit_test(test_zero_rcpts),
		cmocka_unit_test(test_empty_domain),
		cmocka_unit_test(test_bad_state),
		cmocka_unit_test(test_huge_rcpt_count),
		cmocka_unit_test(test_long_string),
		cmocka_unit_test(test_byte_flips),
	};

	return cmocka_run_group_tests(tests, group_setup, NULL);
}
