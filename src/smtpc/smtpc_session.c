/*
 * smtpc_session - the SMTP client as a state machine
 *
 * Two cursors (in the manner of Postfix's smtp_loop): what has been sent
 * runs ahead of what has been answered, and the phase says which reply is
 * expected next.  With PIPELINING a message's MAIL, RCPTs and DATA are
 * one write; without it each command waits for its reply.
 */
#include "smtpc/smtpc_session.h"
#include "smtp/smtp_addr.h"
#include "util/strutil.h"
#include "util/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct smtpc {
	struct smtpc_params p;
	char *helo;
	enum smtpc_phase ph;
	bool esmtp;
	bool tls;
	bool tried_helo;
	bool pipelined;		/* the current message was pipelined */
	bool rset_first;	/* an RSET reply precedes the message's replies */
	bool need_rset;		/* the last transaction did not end cleanly */
	struct smtp_ehlo_caps caps;

	const struct queue_item *it;
	struct smtpc_result *res;
	size_t nres;
	size_t rcpt_next;	/* the RCPT whose reply comes next */
	size_t accepted;
	bool mail_failed;
	struct smtpc_result mail_res;
	struct smtpc_result fail;
};

static void smtpc_set(struct smtpc_result *res, int code, const char *enh,
    const char *text)
{
	res->code = code;
	snprintf(res->enh, sizeof(res->enh), "%s", enh);
	snprintf(res->text, sizeof(res->text), "%s", text);
}

/* smtpc_from_reply - a result from a server reply, escaped and bounded */
static void smtpc_from_reply(struct smtpc_result *res,
    const struct smtp_reply *r)
{
	struct buf t = BUF_INIT;
	char enh[16];

	smtp_reply_format_log(r, &t);
	smtpc_set(res, r->code, smtp_reply_enhanced(r, enh) ? enh : "",
	    buf_cstr(&t));
	buf_free(&t);
}

struct smtpc *smtpc_new(const struct smtpc_params *p)
{
	struct smtpc *c = xcalloc(1, sizeof(*c));

	c->p = *p;
	c->helo = xstrdup(p->helo);
	c->p.helo = c->helo;
	c->tls = p->tls_active;
	c->ph = SMTPC_PH_GREETING;
	return c;
}

void smtpc_free(struct smtpc *c)
{
	if (c == NULL)
		return;
	free(c->res);
	free(c->helo);
	free(c);
}

enum smtpc_phase smtpc_phase(const struct smtpc *c)
{
	return c->ph;
}

bool smtpc_in_message(const struct smtpc *c)
{
	return c->it != NULL;
}

bool smtpc_tls(const struct smtpc *c)
{
	return c->tls;
}

const struct smtpc_result *smtpc_results(const struct smtpc *c)
{
	return c->res;
}

const struct smtpc_result *smtpc_failure(const struct smtpc *c)
{
	return &c->fail;
}

static enum smtpc_action smtpc_fail(struct smtpc *c, const struct smtpc_result *why,
    struct buf *out)
{
	c->fail = *why;
	/* a polite QUIT where the dialogue is still in step */
	if (c->ph != SMTPC_PH_GREETING && c->ph != SMTPC_PH_DEAD && out)
		buf_puts(out, "QUIT\r\n");
	c->ph = SMTPC_PH_DEAD;
	return SMTPC_ACT_FAIL;
}

static void smtpc_ehlo(struct smtpc *c, struct buf *out, bool helo)
{
	buf_printf(out, "%s %s\r\n", helo ? "HELO" : "EHLO", c->helo);
	c->ph = SMTPC_PH_EHLO;
}

/* smtpc_after_ehlo - TLS per policy, or ready for mail */
static enum smtpc_action smtpc_after_ehlo(struct smtpc *c, struct buf *out)
{
	struct smtpc_result why;

	if (!c->tls && c->p.tls != CONFIG_TLS_NONE && c->caps.starttls &&
	    c->p.tls_possible) {
		buf_puts(out, "STARTTLS\r\n");
		c->ph = SMTPC_PH_STARTTLS;
		return SMTPC_ACT_WAIT;
	}
	if (!c->tls && c->p.tls == CONFIG_TLS_MUST) {
		smtpc_set(&why, 451, "4.7.4", c->caps.starttls ?
		    "TLS is required for this destination but no TLS client"
		    " context is available" :
		    "TLS is required for this destination but the server does"
		    " not offer STARTTLS");
		return smtpc_fail(c, &why, out);
	}
	c->ph = SMTPC_PH_IDLE;
	return SMTPC_ACT_READY;
}

enum smtpc_action smtpc_tls_started(struct smtpc *c, struct buf *out)
{
	c->tls = true;
	c->esmtp = false;
	memset(&c->caps, 0, sizeof(c->caps));
	smtpc_ehlo(c, out, false);
	return SMTPC_ACT_WAIT;
}

static void smtpc_mail_cmd(struct smtpc *c, struct buf *out)
{
	const struct queue_item *it = c->it;
	char x[SMTP_ORCPT_MAX * 3 + 1];

	buf_printf(out, "MAIL FROM:<%s>", it->sender);
	if (c->caps.has_size)
		buf_printf(out, " SIZE=%llu", (unsigned long long)it->size);
	if (it->body8 == SMTP_BODY_8BITMIME && c->caps.eightbitmime)
		buf_puts(out, " BODY=8BITMIME");
	if (c->caps.dsn) {
		if (it->ret == SMTP_RET_FULL)
			buf_puts(out, " RET=FULL");
		else if (it->ret == SMTP_RET_HDRS)
			buf_puts(out, " RET=HDRS");
		if (it->envid && smtp_xtext_encode(it->envid, x, sizeof(x)))
			buf_printf(out, " ENVID=%s", x);
	}
	buf_puts(out, "\r\n");
}

static void smtpc_rcpt_cmd(struct smtpc *c, size_t i, struct buf *out)
{
	const struct queue_rcpt *r = &c->it->rcpts[i];
	char x[SMTP_ORCPT_MAX * 3 + 1];
	const char *sep = "";

	buf_printf(out, "RCPT TO:<%s>", r->addr);
	if (c->caps.dsn && r->notify) {
		buf_puts(out, " NOTIFY=");
		if (r->notify & SMTP_NOTIFY_NEVER) {
			buf_puts(out, "NEVER");
		} else {
			if (r->notify & SMTP_NOTIFY_SUCCESS) {
				buf_puts(out, "SUCCESS");
				sep = ",";
			}
			if (r->notify & SMTP_NOTIFY_FAILURE) {
				buf_printf(out, "%sFAILURE", sep);
				sep = ",";
			}
			if (r->notify & SMTP_NOTIFY_DELAY)
				buf_printf(out, "%sDELAY", sep);
		}
	}
	if (c->caps.dsn && r->orcpt) {
		const char *semi = strchr(r->orcpt, ';');

		/* the address type stays as is; the address is xtext */
		if (semi && smtp_xtext_encode(semi + 1, x, sizeof(x)))
			buf_printf(out, " ORCPT=%.*s;%s",
			    (int)(semi - r->orcpt), r->orcpt, x);
	}
	buf_puts(out, "\r\n");
}

/*
 * smtpc_refuse_early - what this client must not send at all: an 8-bit
 * body to a server without 8BITMIME (RFC 6152; no conversion here), or a
 * message over the server's declared SIZE (RFC 1870).
 */
static bool smtpc_refuse_early(struct smtpc *c, struct smtpc_result *why)
{
	const struct queue_item *it = c->it;

	if (it->body8 == SMTP_BODY_8BITMIME && !c->caps.eightbitmime) {
		smtpc_set(why, 554, "5.6.3", "8-bit message, and the server"
		    " does not support 8BITMIME");
		return true;
	}
	if (c->caps.has_size && c->caps.size > 0 && it->size > c->caps.size) {
		smtpc_set(why, 552, "5.3.4", "message larger than the server's"
		    " SIZE limit");
		return true;
	}
	return false;
}

static enum smtpc_action smtpc_msg_done(struct smtpc *c)
{
	c->it = NULL;
	c->ph = SMTPC_PH_IDLE;
	return SMTPC_ACT_MSG_DONE;
}

enum smtpc_action smtpc_message(struct smtpc *c, const struct queue_item *it,
    struct buf *out)
{
	struct smtpc_result why;
	size_t i;

	c->it = it;
	free(c->res);
	c->nres = it->nrcpt;
	c->res = xcalloc(it->nrcpt ? it->nrcpt : 1, sizeof(*c->res));
	c->rcpt_next = 0;
	c->accepted = 0;
	c->mail_failed = false;
	if (smtpc_refuse_early(c, &why)) {
		for (i = 0; i < c->nres; i++)
			c->res[i] = why;
		return smtpc_msg_done(c);
	}
	c->pipelined = c->caps.pipelining;
	c->rset_first = c->need_rset;
	c->need_rset = false;
	if (c->rset_first) {
		buf_puts(out, "RSET\r\n");
		if (!c->pipelined) {
			c->ph = SMTPC_PH_RSET;
			return SMTPC_ACT_WAIT;
		}
	}
	smtpc_mail_cmd(c, out);
	if (c->pipelined) {
		for (i = 0; i < it->nrcpt; i++)
			smtpc_rcpt_cmd(c, i, out);
		buf_puts(out, "DATA\r\n");
	}
	c->ph = c->rset_first ? SMTPC_PH_RSET : SMTPC_PH_MAIL;
	return SMTPC_ACT_WAIT;
}

void smtpc_quit(struct smtpc *c, struct buf *out)
{
	buf_puts(out, "QUIT\r\n");
	c->ph = SMTPC_PH_QUIT;
}

void smtpc_dot_stuff(const char *body, size_t len, struct buf *out)
{
	size_t i, start = 0;

	buf_reserve(out, len + len / 64 + 8);
	for (i = 0; i <= len; i++) {
		if (i < len && body[i] != '\n')
			continue;
		/* the line [start, i] including its LF, if any */
		if (i > start || i < len) {
			if (body[start] == '.')
				buf_putc(out, '.');
			buf_append(out, body + start, i - start + (i < len));
		}
		start = i + 1;
	}
	if (len > 0 && body[len - 1] != '\n')
		buf_puts(out, "\r\n");
	buf_puts(out, ".\r\n");
}

/* smtpc_all_pending - give every recipient still open this result */
static void smtpc_all_pending(struct smtpc *c, const struct smtpc_result *r,
    bool accepted_only)
{
	size_t i;

	for (i = 0; i < c->nres; i++) {
		if (c->res[i].code == 0 ||
		    (accepted_only && c->res[i].code / 100 == 2))
			c->res[i] = *r;
	}
}

static enum smtpc_action smtpc_on_rcpt(struct smtpc *c,
    const struct smtp_reply *r, struct buf *out)
{
	struct smtpc_result *res = &c->res[c->rcpt_next];

	if (c->mail_failed)
		*res = c->mail_res;
	else
		smtpc_from_reply(res, r);
	if (res->code / 100 == 2)
		c->accepted++;
	c->rcpt_next++;
	if (c->rcpt_next < c->nres) {
		if (!c->pipelined)
			smtpc_rcpt_cmd(c, c->rcpt_next, out);
		return SMTPC_ACT_WAIT;
	}
	if (c->pipelined) {
		c->ph = SMTPC_PH_DATA;	/* DATA went with the group */
		return SMTPC_ACT_WAIT;
	}
	if (c->accepted == 0) {
		c->need_rset = true;
		return smtpc_msg_done(c);
	}
	buf_puts(out, "DATA\r\n");
	c->ph = SMTPC_PH_DATA;
	return SMTPC_ACT_WAIT;
}

static enum smtpc_action smtpc_on_data(struct smtpc *c,
    const struct smtp_reply *r, struct buf *out)
{
	struct smtpc_result res;

	if (r->code == 354) {
		if (c->accepted == 0 || c->mail_failed) {
			/* nobody to deliver to, yet the server wants data */
			buf_puts(out, ".\r\n");
			c->accepted = 0;
		} else {
			smtpc_dot_stuff(c->it->body.p, c->it->body.len, out);
		}
		c->ph = SMTPC_PH_DOT;
		return SMTPC_ACT_WAIT;
	}
	smtpc_from_reply(&res, r);
	if (c->accepted > 0 && !c->mail_failed)
		smtpc_all_pending(c, &res, true);
	c->need_rset = true;
	return smtpc_msg_done(c);
}

enum smtpc_action smtpc_reply(struct smtpc *c, const struct smtp_reply *r,
    struct buf *out)
{
	struct smtpc_result res;
	int cls = r->code / 100;

	/* 421: the server is closing; what is in flight is deferred */
	if (r->code == 421 && c->ph != SMTPC_PH_QUIT) {
		smtpc_from_reply(&res, r);
		if (c->it)
			smtpc_all_pending(c, &res, true);
		return smtpc_fail(c, &res, NULL);
	}
	switch (c->ph) {
	case SMTPC_PH_GREETING:
		if (cls != 2) {
			smtpc_from_reply(&res, r);
			return smtpc_fail(c, &res, out);
		}
		smtpc_ehlo(c, out, false);
		return SMTPC_ACT_WAIT;
	case SMTPC_PH_EHLO:
		if (cls == 2) {
			c->esmtp = !c->tried_helo;
			if (c->esmtp)
				smtp_ehlo_caps(r, &c->caps);
			return smtpc_after_ehlo(c, out);
		}
		if (cls == 5 && !c->tried_helo && !c->tls) {
			c->tried_helo = true;
			smtpc_ehlo(c, out, true);
			return SMTPC_ACT_WAIT;
		}
		smtpc_from_reply(&res, r);
		return smtpc_fail(c, &res, out);
	case SMTPC_PH_STARTTLS:
		if (r->code == 220)
			return SMTPC_ACT_STARTTLS;
		if (c->p.tls == CONFIG_TLS_MUST) {
			smtpc_from_reply(&res, r);
			/* a refused STARTTLS is never a permanent failure */
			res.code = 450;
			snprintf(res.enh, sizeof(res.enh), "4.7.4");
			return smtpc_fail(c, &res, out);
		}
		c->ph = SMTPC_PH_IDLE;
		return SMTPC_ACT_READY;
	case SMTPC_PH_RSET:
		if (cls != 2) {
			smtpc_from_reply(&res, r);
			res.code = res.code / 100 == 5 ? 451 : res.code;
			smtpc_all_pending(c, &res, false);
			return smtpc_fail(c, &res, out);
		}
		c->rset_first = false;
		if (!c->pipelined)
			smtpc_mail_cmd(c, out);
		c->ph = SMTPC_PH_MAIL;
		return SMTPC_ACT_WAIT;
	case SMTPC_PH_MAIL:
		if (cls != 2) {
			c->mail_failed = true;
			smtpc_from_reply(&c->mail_res, r);
			if (!c->pipelined) {
				smtpc_all_pending(c, &c->mail_res, false);
				c->need_rset = true;
				return smtpc_msg_done(c);
			}
		}
		if (c->nres == 0) {
			c->need_rset = true;
			return smtpc_msg_done(c);
		}
		if (!c->pipelined)
			smtpc_rcpt_cmd(c, 0, out);
		c->ph = SMTPC_PH_RCPT;
		return SMTPC_ACT_WAIT;
	case SMTPC_PH_RCPT:
		return smtpc_on_rcpt(c, r, out);
	case SMTPC_PH_DATA:
		return smtpc_on_data(c, r, out);
	case SMTPC_PH_DOT:
		smtpc_from_reply(&res, r);
		if (c->accepted > 0)
			smtpc_all_pending(c, &res, true);
		return smtpc_msg_done(c);
	case SMTPC_PH_QUIT:
		c->ph = SMTPC_PH_DEAD;
		return SMTPC_ACT_CLOSE;
	case SMTPC_PH_IDLE:
	case SMTPC_PH_DEAD:
		break;
	}
	/* a reply nobody asked for: the dialogue is out of step */
	smtpc_set(&res, 451, "4.5.0", "unexpected reply from the server");
	return smtpc_fail(c, &res, out);
}

void smtpc_lost(struct smtpc *c, const char *why)
{
	struct smtpc_result res;

	smtpc_set(&res, 451, "4.4.2", why);
	if (c->it)
		smtpc_all_pending(c, &res, true);
	if (c->ph != SMTPC_PH_DEAD)
		c->fail = res;
	c->ph = SMTPC_PH_DEAD;
}
