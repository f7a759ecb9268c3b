/* envelope - a message's envelope as bytes (see envelope.h) */
#include "queue/envelope.h"
#include "smtp/smtp_addr.h"
#include "util/xalloc.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ENVELOPE_NULL 0xFFFFFFFFu

static void env_u32(struct buf *out, uint32_t v)
{
	unsigned char b[4] = { (unsigned char)v, (unsigned char)(v >> 8),
	    (unsigned char)(v >> 16), (unsigned char)(v >> 24) };

	buf_append(out, b, sizeof(b));
}

static void env_u8(struct buf *out, unsigned v)
{
	buf_putc(out, (char)(unsigned char)v);
}

static void env_str(struct buf *out, const char *s)
{
	size_t n;

	if (s == NULL) {
		env_u32(out, ENVELOPE_NULL);
		return;
	}
	n = strlen(s);
	env_u32(out, (uint32_t)n);
	buf_append(out, s, n);
}

void envelope_encode(struct buf *out, const struct queue_msg_in *m)
{
	uint64_t a = (uint64_t)(int64_t)m->arrival;
	size_t i;

	env_u8(out, ENVELOPE_VERSION);
	env_str(out, m->sender ? m->sender : "");
	env_str(out, m->envid);
	env_u8(out, (unsigned)m->ret);
	env_u8(out, (unsigned)m->body8);
	env_u32(out, (uint32_t)a);
	env_u32(out, (uint32_t)(a >> 32));
	env_str(out, m->client);
	env_str(out, m->helo);
	env_u32(out, (uint32_t)m->nrcpt);
	for (i = 0; i < m->nrcpt; i++) {
		const struct queue_rcpt_in *r = &m->rcpts[i];

		env_str(out, r->addr);
		env_str(out, r->domain);
		env_u32(out, r->notify);
		env_str(out, r->orcpt);
		env_u8(out, (unsigned)r->state);
	}
}

/* a cursor over the bytes being decoded; any short read sets bad */
struct env_rd {
	const unsigned char *p;
	size_t left;
	bool bad;
};

static const unsigned char *env_take(struct env_rd *r, size_t n)
{
	const unsigned char *p = r->p;

	if (r->bad || r->left < n) {
		r->bad = true;
		return NULL;
	}
	r->p += n;
	r->left -= n;
	return p;
}

static unsigned env_get8(struct env_rd *r)
{
	const unsigned char *p = env_take(r, 1);

	return p ? p[0] : 0;
}

static uint32_t env_get32(struct env_rd *r)
{
	const unsigned char *p = env_take(r, 4);

	return p ? (uint32_t)p[0] | (uint32_t)p[1] << 8 |
	    (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24 : 0;
}

/* env_getstr - a string (NULL when nullable and absent), or bad */
static char *env_getstr(struct env_rd *r, bool nullable)
{
	uint32_t n = env_get32(r);
	const unsigned char *p;

	if (r->bad)
		return NULL;
	if (n == ENVELOPE_NULL) {
		r->bad = !nullable;
		return NULL;
	}
	if (n > ENVELOPE_MAX_STR || (p = env_take(r, n)) == NULL ||
	    memchr(p, '\0', n) != NULL) {
		r->bad = true;
		return NULL;
	}
	return xmemdup0(p, n);
}

int envelope_decode(const void *p, size_t len, struct queue_msg_in *m)
{
	struct env_rd r = { p, len, false };
	uint64_t a;
	uint32_t n, i;

	m->body_fd = -1;
	if (env_get8(&r) != ENVELOPE_VERSION || r.bad)
		return -1;
	m->sender = env_getstr(&r, false);
	m->envid = env_getstr(&r, true);
	m->ret = (int)env_get8(&r);
	m->body8 = (int)env_get8(&r);
	if (m->ret > SMTP_RET_HDRS || m->body8 > SMTP_BODY_8BITMIME)
		r.bad = true;
	a = env_get32(&r);
	a |= (uint64_t)env_get32(&r) << 32;
	m->arrival = (time_t)(int64_t)a;
	m->client = env_getstr(&r, true);
	m->helo = env_getstr(&r, true);
	n = env_get32(&r);
	if (!r.bad && (n == 0 || n > ENVELOPE_MAX_RCPT || n > r.left / 17))
		r.bad = true;	/* 17: the smallest recipient's bytes */
	if (!r.bad)
		m->rcpts = xcalloc(n, sizeof(*m->rcpts));
	for (i = 0; i < n && !r.bad; i++) {
		struct queue_rcpt_in *rc = &m->rcpts[i];

		m->nrcpt = i + 1;
		rc->addr = env_getstr(&r, false);
		rc->domain = env_getstr(&r, false);
		rc->notify = env_get32(&r);
		rc->orcpt = env_getstr(&r, true);
		rc->state = (int)env_get8(&r);
		if (rc->domain != NULL && rc->domain[0] == '\0')
			r.bad = true;
		if (rc->state != QUEUE_R_QUEUED && rc->state != QUEUE_R_HELD)
			r.bad = true;
	}
	if (!r.bad && r.left != 0)
		r.bad = true;	/* trailing bytes */
	if (r.bad) {
		struct queue_msg_in keep = *m;

		/* free what was set, leave the caller's other fields */
		for (i = 0; i < keep.nrcpt; i++) {
			free(keep.rcpts[i].addr);
			free(keep.rcpts[i].domain);
			free(keep.rcpts[i].orcpt);
		}
		free(keep.rcpts);
		free(keep.sender);
		free(keep.envid);
		free(keep.client);
		free(keep.helo);
		m->rcpts = NULL;
		m->nrcpt = 0;
		m->sender = m->envid = m->client = m->helo = NULL;
		return -1;
	}
	return 0;
}
