/*
 * smtpd_session - the SMTP server session as a state machine
 *
 * Each command has a handler in smtpd_cmds[]; smtpd_session_line() does
 * the cross-cutting checks (byte validity, error and junk limits,
 * pipelining discipline) and dispatches.  Handlers only write replies and
 * change state; the glue performs whatever action they return.
 */
#include "smtpd/smtpd_session.h"
#include "smtpd/smtpd_policy.h"
#include "config/config.h"
#include "log/log.h"
#include "metrics/metrics.h"
#include "smtp/smtp_addr.h"
#include "smtp/smtp_cmd.h"
#include "smtp/smtp_data.h"
#include "util/idgen.h"
#include "util/qclock.h"
#include "util/strutil.h"
#include "util/xalloc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define SMTPD_JUNK_LIMIT 100	/* NOOP, RSET, HELP, VRFY... without mail */

enum smtpd_state {
	SMTPD_ST_FRESH,		/* no HELO/EHLO yet */
	SMTPD_ST_READY,		/* greeted, no transaction */
	SMTPD_ST_MAIL,		/* MAIL accepted */
	SMTPD_ST_RCPT,		/* at least one RCPT accepted */
	SMTPD_ST_DATA,		/* reading message content */
	SMTPD_ST_STORING,	/* waiting for the store's commit */
};

struct smtpd_rcpt {
	char *addr;
	char *domain;
	unsigned notify;
	char *orcpt;
	int state;
};

struct smtpd_session {
	struct config *cfg;
	struct smtpd_client cl;
	struct smtpd_env env;
	enum smtpd_state st;
	bool esmtp;
	bool tls;
	char tls_version[16];
	char *helo;
	unsigned errors;
	unsigned junk;
	unsigned messages;

	/* the transaction */
	uint64_t id;
	char qid[IDGEN_HEX_LEN + 1];
	struct smtp_path from;
	struct smtp_params mparams;
	struct smtpd_rcpt *rcpts;
	size_t nrcpt, rcap;
	bool rcpt_tried;	/* a RCPT was given, accepted or not */
	struct smtp_data data;
	struct buf body;
	bool too_big;
	time_t arrival;

	struct smtp_etrn etrn;	/* the last ETRN request */
};

typedef enum smtpd_action smtpd_handler(struct smtpd_session *s,
    const char *arg, size_t len, struct buf *out);

#define SMTPD_F_JUNK	1u	/* counts toward the junk-command limit */

struct smtpd_cmd_def {
	enum smtp_verb verb;
	smtpd_handler *fn;
	unsigned flags;
};

/* smtpd_reply - one reply line; multi-line replies are built by callers */
static void smtpd_reply(struct buf *out, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void smtpd_reply(struct buf *out, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	buf_vprintf(out, fmt, ap);
	va_end(ap);
	buf_puts(out, "\r\n");
}

/* smtpd_error - a refused command: counted toward the hard error limit */
static enum smtpd_action smtpd_error(struct smtpd_session *s, struct buf *out,
    const char *reply)
{
	s->errors++;
	if (s->errors >= s->cfg->hard_error_limit) {
		log_info("event=disconnect sid=%s reason=too_many_errors"
		    " errors=%u", s->cl.sid, s->errors);
		smtpd_reply(out, "421 4.7.0 %s Error: too many errors",
		    s->cfg->hostname);
		return SMTPD_ACT_CLOSE;
	}
	smtpd_reply(out, "%s", reply);
	return SMTPD_ACT_NONE;
}

static void smtpd_txn_reset(struct smtpd_session *s)
{
	size_t i;

	for (i = 0; i < s->nrcpt; i++) {
		free(s->rcpts[i].addr);
		free(s->rcpts[i].domain);
		free(s->rcpts[i].orcpt);
	}
	s->nrcpt = 0;
	s->rcpt_tried = false;
	s->id = 0;
	s->qid[0] = '\0';
	memset(&s->from, 0, sizeof(s->from));
	memset(&s->mparams, 0, sizeof(s->mparams));
	buf_free(&s->body);
	s->too_big = false;
	if (s->st > SMTPD_ST_READY)
		s->st = SMTPD_ST_READY;
}

struct smtpd_session *smtpd_session_new(struct config *cfg,
    const struct smtpd_client *cl, const struct smtpd_env *env)
{
	struct smtpd_session *s = xcalloc(1, sizeof(*s));

	s->cfg = config_ref(cfg);
	s->cl = *cl;
	s->env = *env;
	s->st = SMTPD_ST_FRESH;
	return s;
}

void smtpd_session_free(struct smtpd_session *s)
{
	if (s == NULL)
		return;
	smtpd_txn_reset(s);
	free(s->rcpts);
	free(s->helo);
	config_unref(s->cfg);
	free(s);
}

void smtpd_session_greet(struct smtpd_session *s, struct buf *out)
{
	smtpd_reply(out, "220 %s ESMTP etrnd", s->cfg->hostname);
}

unsigned smtpd_session_errors(const struct smtpd_session *s)
{
	return s->errors;
}

const char *smtpd_session_qid(const struct smtpd_session *s)
{
	return s->qid;
}

bool smtpd_session_idle(const struct smtpd_session *s)
{
	return s->st <= SMTPD_ST_READY;
}

bool smtpd_session_in_data(const struct smtpd_session *s)
{
	return s->st == SMTPD_ST_DATA;
}

struct buf *smtpd_session_body(struct smtpd_session *s)
{
	return &s->body;
}

static enum smtpd_action smtpd_hello(struct smtpd_session *s, const char *arg,
    size_t len, struct buf *out, bool esmtp)
{
	if (len == 0)
		return smtpd_error(s, out, esmtp ?
		    "501 5.5.4 Syntax: EHLO hostname" :
		    "501 5.5.4 Syntax: HELO hostname");
	smtpd_txn_reset(s);
	free(s->helo);
	s->helo = xmemdup0(arg, len);
	s->esmtp = esmtp;
	s->st = SMTPD_ST_READY;
	if (!esmtp) {
		smtpd_reply(out, "250 %s", s->cfg->hostname);
		return SMTPD_ACT_NONE;
	}
	smtpd_reply(out, "250-%s", s->cfg->hostname);
	smtpd_reply(out, "250-PIPELINING");
	smtpd_reply(out, "250-SIZE %llu", s->cfg->message_size_limit);
	smtpd_reply(out, "250-8BITMIME");
	smtpd_reply(out, "250-ENHANCEDSTATUSCODES");
	if (s->env.tls_available && !s->tls)
		smtpd_reply(out, "250-STARTTLS");
	smtpd_reply(out, "250-ETRN");
	smtpd_reply(out, "250 DSN");
	return SMTPD_ACT_NONE;
}

static enum smtpd_action smtpd_cmd_helo(struct smtpd_session *s,
    const char *arg, size_t len, struct buf *out)
{
	return smtpd_hello(s, arg, len, out, false);
}

static enum smtpd_action smtpd_cmd_ehlo(struct smtpd_session *s,
    const char *arg, size_t len, struct buf *out)
{
	return smtpd_hello(s, arg, len, out, true);
}

/* smtpd_addr_error - the reply for a path or parameter the parser refused */
static enum smtpd_action smtpd_addr_error(struct smtpd_session *s,
    enum smtp_addr_status st, const char *why, bool mail, struct buf *out)
{
	struct buf r = BUF_INIT;
	enum smtpd_action a;

	switch (st) {
	case SMTP_ADDR_PARAM_UNKNOWN:
		buf_printf(&r, "555 5.5.4 %s", why ? why : "unsupported parameter");
		break;
	case SMTP_ADDR_PARAM_DUP:
	case SMTP_ADDR_PARAM_BAD:
		buf_printf(&r, "501 5.5.4 %s", why ? why : "bad parameter");
		break;
	case SMTP_ADDR_SIZE_OVERFLOW:
		buf_printf(&r, "552 5.3.4 Message size exceeds fixed limit");
		break;
	case SMTP_ADDR_TOO_LONG:
		buf_printf(&r, "501 5.1.3 %s", why ? why : "address too long");
		break;
	default:
		buf_printf(&r, "501 %s %s", mail ? "5.1.7" : "5.1.3",
		    why ? why : "Bad address syntax");
		break;
	}
	a = smtpd_error(s, out, buf_cstr(&r));
	buf_free(&r);
	return a;
}

static enum smtpd_action smtpd_cmd_mail(struct smtpd_session *s,
    const char *arg, size_t len, struct buf *out)
{
	struct smtp_params p;
	const char *why = NULL;
	enum smtp_addr_status st;

	if (s->st == SMTPD_ST_FRESH)
		return smtpd_error(s, out, "503 5.5.1 Error: send HELO/EHLO first");
	if (s->st != SMTPD_ST_READY)
		return smtpd_error(s, out, "503 5.5.1 Error: nested MAIL command");
	st = smtp_addr_parse(arg, len, SMTP_ADDR_MAIL, &s->from, &p, &why);
	if (st != SMTP_ADDR_OK) {
		memset(&s->from, 0, sizeof(s->from));
		return smtpd_addr_error(s, st, why, true, out);
	}
	if (!s->esmtp && (p.has_size || p.body != SMTP_BODY_NONE ||
	    p.ret != SMTP_RET_NONE || p.has_envid || p.has_auth))
		return smtpd_error(s, out,
		    "555 5.5.4 ESMTP parameters need EHLO");
	if (p.has_size && p.size > s->cfg->message_size_limit)
		return smtpd_error(s, out,
		    "552 5.3.4 Message size exceeds fixed limit");
	if (s->env.space_ok && !s->env.space_ok(s->env.arg,
	    p.has_size ? p.size : 0)) {
		log_warn("event=reject sid=%s reason=insufficient_storage",
		    s->cl.sid);
		smtpd_reply(out, "452 4.3.1 Insufficient system storage");
		return SMTPD_ACT_NONE;
	}
	s->mparams = p;
	s->id = idgen_next();
	idgen_format(s->id, s->qid);
	s->st = SMTPD_ST_MAIL;
	s->junk = 0;
	log_info("event=mail sid=%s qid=%s from=%s size=%llu", s->cl.sid,
	    s->qid, log_value(s->from.addr, strlen(s->from.addr)),
	    p.has_size ? p.size : 0ULL);
	smtpd_reply(out, "250 2.1.0 Ok");
	return SMTPD_ACT_NONE;
}

static bool smtpd_rcpt_dup(const struct smtpd_session *s, const char *addr)
{
	size_t i;

	for (i = 0; i < s->nrcpt; i++)
		if (strcmp(s->rcpts[i].addr, addr) == 0)
			return true;
	return false;
}

static enum smtpd_action smtpd_cmd_rcpt(struct smtpd_session *s,
    const char *arg, size_t len, struct buf *out)
{
	const struct config_domain *dom;
	struct smtp_params p;
	struct smtp_path path;
	struct smtpd_rcpt *r;
	const char *why = NULL, *deny;
	enum smtp_addr_status st;

	if (s->st != SMTPD_ST_MAIL && s->st != SMTPD_ST_RCPT)
		return smtpd_error(s, out, "503 5.5.1 Error: need MAIL command");
	s->rcpt_tried = true;
	st = smtp_addr_parse(arg, len, SMTP_ADDR_RCPT, &path, &p, &why);
	if (st != SMTP_ADDR_OK)
		return smtpd_addr_error(s, st, why, false, out);
	if (!s->esmtp && (p.notify || p.has_orcpt))
		return smtpd_error(s, out,
		    "555 5.5.4 ESMTP parameters need EHLO");
	switch (smtpd_policy_rcpt(s->cfg, &path, &dom)) {
	case SMTPD_RCPT_OK:
		deny = NULL;
		break;
	case SMTPD_RCPT_ROUTING:
		deny = "sender-specified routing";
		break;
	case SMTPD_RCPT_LITERAL:
		deny = "address literal";
		break;
	case SMTPD_RCPT_UNKNOWN:
		metrics_inc(MET_RCPT_REFUSED);
		log_info("event=reject sid=%s qid=%s rcpt=%s reason=\"unknown"
		    " recipient\"", s->cl.sid, s->qid,
		    log_value(path.addr, strlen(path.addr)));
		return smtpd_error(s, out, "550 5.1.1 Recipient address"
		    " rejected: user unknown in relay recipient table");
	default:
		deny = "not a relay domain";
		break;
	}
	if (deny != NULL) {
		metrics_inc(MET_RCPT_REFUSED);
		log_info("event=reject sid=%s qid=%s rcpt=%s reason=%s",
		    s->cl.sid, s->qid, log_value(path.addr, strlen(path.addr)),
		    log_value(deny, strlen(deny)));
		return smtpd_error(s, out,
		    "550 5.7.1 Relay access denied");
	}
	if (smtpd_rcpt_dup(s, path.addr)) {
		smtpd_reply(out, "250 2.1.5 Ok");
		return SMTPD_ACT_NONE;
	}
	if (s->nrcpt >= s->cfg->max_recipients) {
		smtpd_reply(out, "452 4.5.3 Error: too many recipients");
		return SMTPD_ACT_NONE;
	}
	if (s->nrcpt == s->rcap) {
		s->rcap = s->rcap ? s->rcap * 2 : 8;
		s->rcpts = xrealloc(s->rcpts, s->rcap * sizeof(*s->rcpts));
	}
	r = &s->rcpts[s->nrcpt++];
	r->addr = xstrdup(path.addr);
	r->domain = xstrdup(path.domain);
	r->notify = p.notify;
	r->orcpt = p.has_orcpt ? xstrdup(p.orcpt) : NULL;
	/* held until asked for: ETRN (hold) or ATRN (odmr) */
	r->state = dom->mode == CONFIG_MODE_HOLD ||
	    dom->route == CONFIG_ROUTE_ODMR ? QUEUE_R_HELD : QUEUE_R_QUEUED;
	s->st = SMTPD_ST_RCPT;
	smtpd_reply(out, "250 2.1.5 Ok");
	return SMTPD_ACT_NONE;
}

/* smtpd_received - the Received: field this hop adds (RFC 5321 4.4) */
static void smtpd_received(struct smtpd_session *s)
{
	char date[64];
	struct tm tm;
	time_t now = time(NULL);

	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	buf_printf(&s->body, "Received: from %s (%s%s%s)\r\n",
	    s->helo, s->cl.family == AF_INET6 ? "[IPv6:" : "[", s->cl.addr, "]");
	buf_printf(&s->body, "\tby %s (etrnd) with %s%s id %s",
	    s->cfg->hostname, s->esmtp ? "ESMTP" : "SMTP", s->tls ? "S" : "",
	    s->qid);
	if (s->tls)
		buf_printf(&s->body, "\r\n\t(using %s)", s->tls_version);
	if (s->nrcpt == 1)
		buf_printf(&s->body, "\r\n\tfor <%s>", s->rcpts[0].addr);
	buf_printf(&s->body, "; %s\r\n", date);
}

static enum smtpd_action smtpd_cmd_data(struct smtpd_session *s,
    const char *arg, size_t len, struct buf *out)
{
	if (len != 0)
		return smtpd_error(s, out, "501 5.5.4 Syntax: DATA");
	/*
	 * RFC 5321 3.3 allows 503 or 554 here; say which: DATA with no RCPT
	 * at all is out of sequence (SECURITY.md P10), DATA after only
	 * refused RCPTs has no valid recipients.
	 */
	if (s->st == SMTPD_ST_MAIL && s->rcpt_tried)
		return smtpd_error(s, out, "554 5.5.1 Error: no valid recipients");
	if (s->st != SMTPD_ST_RCPT)
		return smtpd_error(s, out, "503 5.5.1 Error: need RCPT command");
	smtp_data_init(&s->data);
	buf_reset(&s->body);
	s->too_big = false;
	s->arrival = qclock_now();
	smtpd_received(s);
	s->st = SMTPD_ST_DATA;
	smtpd_reply(out, "354 End data with <CR><LF>.<CR><LF>");
	return SMTPD_ACT_DATA;
}

static enum smtpd_action smtpd_cmd_rset(struct smtpd_session *s,
    const char *arg, size_t len, struct buf *out)
{
	smtpd_txn_reset(s);
	smtpd_reply(out, "250 2.0.0 Ok");
	return SMTPD_ACT_NONE;
}

static enum smtpd_action smtpd_cmd_noop(struct smtpd_session *s,
    const char *arg, size_t len, struct buf *out)
{
	smtpd_reply(out, "250 2.0.0 Ok");
	return SMTPD_ACT_NONE;
}

static enum smtpd_action smtpd_cmd_quit(struct smtpd_session *s,
    const char *arg, size_t len, struct buf *out)
{
	log_info("event=disconnect sid=%s reason=quit messages=%u", s->cl.sid,
	    s->messages);
	smtpd_reply(out, "221 2.0.0 Bye");
	return SMTPD_ACT_CLOSE;
}

static enum smtpd_action smtpd_cmd_help(struct smtpd_session *s,
    const char *arg, size_t len, struct buf *out)
{
	smtpd_reply(out, "214-2.0.0 Commands: HELO EHLO MAIL RCPT DATA RSET"
	    " NOOP QUIT HELP VRFY ETRN STARTTLS");
	smtpd_reply(out, "214 2.0.0 See RFC 5321 and RFC 1985");
	return SMTPD_ACT_NONE;
}

static enum smtpd_action smtpd_cmd_vrfy(struct smtpd_session *s,
    const char *arg, size_t len, struct buf *out)
{
	if (len == 0)
		return smtpd_error(s, out, "501 5.5.4 Syntax: VRFY address");
	smtpd_reply(out, "252 2.5.2 Cannot VRFY user, but will accept"
	    " message and attempt delivery");
	return SMTPD_ACT_NONE;
}

static enum smtpd_action smtpd_cmd_not_impl(struct smtpd_session *s,
    const char *arg, size_t len, struct buf *out)
{
	return smtpd_error(s, out, "502 5.5.1 Error: command not available here");
}

/*
 * smtpd_cmd_etrn - RFC 1985: syntax and sequence here; who may ask and
 * what it starts are etrn's business (protocol, policy, action apart).
 */
static enum smtpd_action smtpd_cmd_etrn(struct smtpd_session *s,
    const char *arg, size_t len, struct buf *out)
{
	if (s->st == SMTPD_ST_FRESH)
		return smtpd_error(s, out, "503 5.5.1 Error: send HELO/EHLO first");
	if (s->st != SMTPD_ST_READY) {
		metrics_etrn(503);
		return smtpd_error(s, out,
		    "503 5.5.1 Error: ETRN not allowed inside a mail transaction");
	}
	switch (smtp_etrn_parse(arg, len, &s->etrn)) {
	case SMTP_ETRN_EMPTY:
		metrics_etrn(500);
		return smtpd_error(s, out, "500 5.5.2 Syntax Error");
	case SMTP_ETRN_BAD:
		metrics_etrn(501);
		return smtpd_error(s, out, "501 5.5.4 Syntax Error in Parameters");
	default:
		return SMTPD_ACT_ETRN;
	}
}

const struct smtp_etrn *smtpd_session_etrn(const struct smtpd_session *s)
{
	return &s->etrn;
}

bool smtpd_session_etrn_plain250(const struct smtpd_session *s)
{
	return s->env.etrn_plain250;
}

static enum smtpd_action smtpd_cmd_starttls(struct smtpd_session *s,
    const char *arg, size_t len, struct buf *out)
{
	if (!s->env.tls_available || s->tls)
		return smtpd_error(s, out, s->tls ?
		    "503 5.5.1 Error: TLS already active" :
		    "502 5.5.1 Error: command not available here");
	if (len != 0)
		return smtpd_error(s, out, "501 5.5.4 Syntax: STARTTLS");
	if (s->st > SMTPD_ST_READY)
		return smtpd_error(s, out,
		    "503 5.5.1 Error: STARTTLS inside a mail transaction");
	smtpd_reply(out, "220 2.0.0 Ready to start TLS");
	return SMTPD_ACT_STARTTLS;
}

static enum smtpd_action smtpd_cmd_http(struct smtpd_session *s,
    const char *arg, size_t len, struct buf *out)
{
	log_info("event=disconnect sid=%s reason=cross_protocol", s->cl.sid);
	smtpd_reply(out, "554 5.5.0 Error: not an SMTP client");
	return SMTPD_ACT_CLOSE;
}

static enum smtpd_action smtpd_cmd_unknown(struct smtpd_session *s,
    const char *arg, size_t len, struct buf *out)
{
	return smtpd_error(s, out, "500 5.5.2 Error: command not recognized");
}

static const struct smtpd_cmd_def smtpd_cmds[] = {
	{ SMTP_VERB_HELO, smtpd_cmd_helo, 0 },
	{ SMTP_VERB_EHLO, smtpd_cmd_ehlo, 0 },
	{ SMTP_VERB_MAIL, smtpd_cmd_mail, 0 },
	{ SMTP_VERB_RCPT, smtpd_cmd_rcpt, 0 },
	{ SMTP_VERB_DATA, smtpd_cmd_data, 0 },
	{ SMTP_VERB_RSET, smtpd_cmd_rset, SMTPD_F_JUNK },
	{ SMTP_VERB_NOOP, smtpd_cmd_noop, SMTPD_F_JUNK },
	{ SMTP_VERB_QUIT, smtpd_cmd_quit, 0 },
	{ SMTP_VERB_HELP, smtpd_cmd_help, SMTPD_F_JUNK },
	{ SMTP_VERB_VRFY, smtpd_cmd_vrfy, SMTPD_F_JUNK },
	{ SMTP_VERB_EXPN, smtpd_cmd_not_impl, SMTPD_F_JUNK },
	{ SMTP_VERB_TURN, smtpd_cmd_not_impl, 0 },
	{ SMTP_VERB_ETRN, smtpd_cmd_etrn, SMTPD_F_JUNK },
	{ SMTP_VERB_ATRN, smtpd_cmd_not_impl, 0 },
	{ SMTP_VERB_AUTH, smtpd_cmd_not_impl, 0 },
	{ SMTP_VERB_BDAT, smtpd_cmd_not_impl, 0 },
	{ SMTP_VERB_STARTTLS, smtpd_cmd_starttls, 0 },
	{ SMTP_VERB_HTTP, smtpd_cmd_http, 0 },
	{ SMTP_VERB_UNKNOWN, smtpd_cmd_unknown, 0 },
	{ SMTP_VERB_EMPTY, smtpd_cmd_unknown, 0 },
};

enum smtpd_action smtpd_session_line(struct smtpd_session *s,
    const char *line, size_t len, bool more_pending, struct buf *out)
{
	const struct smtpd_cmd_def *def = NULL;
	struct smtp_cmd cmd;
	size_t i;

	switch (smtp_cmd_parse(line, len, &cmd)) {
	case SMTP_CMD_OK:
		break;
	case SMTP_CMD_BAD_BYTES:
		return smtpd_error(s, out,
		    "501 5.5.2 Error: invalid characters in command");
	default:
		return smtpd_error(s, out, "501 5.5.2 Error: bad command syntax");
	}
	/*
	 * RFC 2920: only a client that saw our EHLO reply may send commands
	 * without waiting for each answer.  One that does so earlier is a
	 * spammer's ratware or a smuggling attempt (SECURITY.md S5).
	 */
	if (more_pending && !s->esmtp && cmd.verb != SMTP_VERB_EHLO &&
	    cmd.verb != SMTP_VERB_QUIT) {
		log_info("event=disconnect sid=%s reason=improper_pipelining"
		    " command=%s", s->cl.sid, smtp_verb_name(cmd.verb));
		smtpd_reply(out, "554 5.5.0 Error: SMTP protocol synchronization");
		return SMTPD_ACT_CLOSE;
	}
	for (i = 0; i < sizeof(smtpd_cmds) / sizeof(smtpd_cmds[0]); i++) {
		if (smtpd_cmds[i].verb == cmd.verb) {
			def = &smtpd_cmds[i];
			break;
		}
	}
	if (def == NULL)
		return smtpd_cmd_unknown(s, NULL, 0, out);
	if ((def->flags & SMTPD_F_JUNK) && ++s->junk > SMTPD_JUNK_LIMIT) {
		log_info("event=disconnect sid=%s reason=too_many_junk_commands",
		    s->cl.sid);
		smtpd_reply(out, "421 4.7.0 %s Error: too many commands",
		    s->cfg->hostname);
		return SMTPD_ACT_CLOSE;
	}
	return def->fn(s, line + cmd.arg_off, cmd.arg_len, out);
}

enum smtpd_action smtpd_session_line_error(struct smtpd_session *s,
    enum smtpd_line_error e, struct buf *out)
{
	if (e == SMTPD_LINE_TOO_LONG_ARG) {
		metrics_etrn(501);
		return smtpd_error(s, out, "501 5.5.4 Syntax Error in Parameters");
	}
	if (e == SMTPD_LINE_TOO_LONG)
		return smtpd_error(s, out, "500 5.5.2 Error: line too long");
	return smtpd_error(s, out,
	    "500 5.5.2 Error: bare <LF> received; lines end with <CR><LF>");
}

size_t smtpd_session_data(struct smtpd_session *s, const char *in,
    size_t len, enum smtpd_action *act, struct buf *out)
{
	bool done = false;
	size_t used;
	const char *reason = NULL;

	*act = SMTPD_ACT_DATA;
	used = smtp_data_feed(&s->data, in, len, s->too_big ? NULL : &s->body,
	    &done);
	if (!s->too_big && s->data.out_bytes > s->cfg->message_size_limit) {
		s->too_big = true;
		buf_free(&s->body);	/* keep reading, store nothing */
	}
	if (!done)
		return used;

	if (s->too_big)
		reason = "552 5.3.4 Message size exceeds fixed limit";
	else if (s->data.flags & (SMTP_DATA_BARE_LF | SMTP_DATA_BARE_CR))
		reason = "550 5.6.11 Message refused: bare <CR> or <LF> in"
		    " content; lines must end with <CR><LF>";
	else if (s->data.flags & SMTP_DATA_NUL)
		/* a next hop that drops NULs would see "\0." as "." (S2) */
		reason = "550 5.6.0 Message refused: NUL character in content";
	else if (s->data.flags & SMTP_DATA_LONG_LINE)
		reason = "550 5.6.0 Message refused: line longer than 998"
		    " octets";
	else if (s->data.received >= s->cfg->hop_limit)
		reason = "554 5.4.6 Too many hops: mail loop detected";
	if (reason != NULL) {
		/* the text after "NNN X.Y.Z " */
		const char *text = strchr(strchr(reason, ' ') + 1, ' ') + 1;

		metrics_inc(MET_MESSAGES_REFUSED);
		log_info("event=reject sid=%s qid=%s reason=%s", s->cl.sid,
		    s->qid, log_value(text, strlen(text)));
		smtpd_reply(out, "%s", reason);
		smtpd_txn_reset(s);
		*act = SMTPD_ACT_NONE;
		return used;
	}
	s->st = SMTPD_ST_STORING;
	*act = SMTPD_ACT_QUEUE;
	return used;
}

struct queue_msg_in *smtpd_session_take_msg(struct smtpd_session *s)
{
	struct queue_msg_in *m = xcalloc(1, sizeof(*m));
	size_t i;

	m->id = s->id;
	m->sender = xstrdup(s->from.addr);
	m->envid = s->mparams.has_envid ? xstrdup(s->mparams.envid) : NULL;
	m->ret = (int)s->mparams.ret;
	m->body8 = (int)s->mparams.body;
	m->client = xstrdup(s->cl.addr);
	m->helo = xstrdup(s->helo ? s->helo : "");
	m->arrival = s->arrival;
	m->rcpts = xcalloc(s->nrcpt, sizeof(*m->rcpts));
	for (i = 0; i < s->nrcpt; i++) {
		m->rcpts[i].addr = s->rcpts[i].addr;
		m->rcpts[i].domain = s->rcpts[i].domain;
		m->rcpts[i].notify = s->rcpts[i].notify;
		m->rcpts[i].orcpt = s->rcpts[i].orcpt;
		m->rcpts[i].state = s->rcpts[i].state;
		s->rcpts[i].addr = s->rcpts[i].domain = s->rcpts[i].orcpt = NULL;
	}
	m->nrcpt = s->nrcpt;
	m->body = s->body;
	memset(&s->body, 0, sizeof(s->body));
	m->body_fd = -1;
	return m;
}

void smtpd_session_queued(struct smtpd_session *s, enum queue_status st,
    struct buf *out)
{
	if (st == QUEUE_OK) {
		s->messages++;
		metrics_inc(MET_MESSAGES_ACCEPTED);
		log_info("event=queued sid=%s qid=%s rcpts=%zu size=%llu",
		    s->cl.sid, s->qid, s->nrcpt,
		    (unsigned long long)s->data.out_bytes);
		smtpd_reply(out, "250 2.0.0 Ok: queued as %s", s->qid);
	} else if (st == QUEUE_ENOSPC) {
		metrics_inc(MET_STORE_ERRORS);
		log_warn("event=reject sid=%s qid=%s reason=insufficient_storage",
		    s->cl.sid, s->qid);
		smtpd_reply(out, "452 4.3.1 Insufficient system storage");
	} else {
		metrics_inc(MET_STORE_ERRORS);
		log_warn("event=reject sid=%s qid=%s reason=store_error",
		    s->cl.sid, s->qid);
		smtpd_reply(out, "451 4.3.0 Error: queue file write error");
	}
	s->st = SMTPD_ST_RCPT;	/* so that the reset returns to READY */
	smtpd_txn_reset(s);
}

void smtpd_session_tls_started(struct smtpd_session *s, const char *version)
{
	smtpd_txn_reset(s);
	s->tls = true;
	snprintf(s->tls_version, sizeof(s->tls_version), "%s", version);
	free(s->helo);
	s->helo = NULL;
	s->esmtp = false;
	s->st = SMTPD_ST_FRESH;
}

void smtpd_session_timeout(struct smtpd_session *s, struct buf *out)
{
	log_info("event=disconnect sid=%s reason=timeout state=%d", s->cl.sid,
	    (int)s->st);
	smtpd_reply(out, "421 4.4.2 %s Error: timeout exceeded",
	    s->cfg->hostname);
}
