/* odmr_session - the ODMR server before the reversal (RFC 2645) */
#include "odmr/odmr_session.h"
#include "auth/sasl.h"
#include "config/config.h"
#include "log/log.h"
#include "metrics/metrics.h"
#include "smtp/smtp_cmd.h"
#include "util/strutil.h"
#include "util/xalloc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ODMR_AUTH_TRIES 3	/* failed exchanges before 421 */

enum odmr_state {
	ODMR_ST_FRESH,		/* no EHLO yet */
	ODMR_ST_READY,		/* greeted */
	ODMR_ST_SASL,		/* an AUTH exchange is running */
	ODMR_ST_AUTHED,
};

struct odmr_session {
	struct config *cfg;
	struct users *users;
	struct odmr_env env;
	enum odmr_state st;
	bool tls;
	bool esmtp;
	unsigned errors;
	unsigned auth_failures;
	struct sasl *sasl;
	char user[USERS_NAME_MAX + 1];
	const struct users_account *account;
	struct smtp_atrn atrn;
};

static void odmr_reply(struct buf *out, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void odmr_reply(struct buf *out, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	buf_vprintf(out, fmt, ap);
	va_end(ap);
	buf_puts(out, "\r\n");
}

static enum odmr_action odmr_error(struct odmr_session *s, struct buf *out,
    const char *reply)
{
	if (++s->errors >= s->cfg->hard_error_limit) {
		odmr_reply(out, "421 4.7.0 %s Error: too many errors",
		    s->cfg->hostname);
		return ODMR_ACT_CLOSE;
	}
	odmr_reply(out, "%s", reply);
	return ODMR_ACT_NONE;
}

struct odmr_session *odmr_session_new(struct config *cfg, struct users *u,
    const struct odmr_env *env)
{
	struct odmr_session *s = xcalloc(1, sizeof(*s));

	s->cfg = config_ref(cfg);
	s->users = u ? users_ref(u) : NULL;
	s->env = *env;
	return s;
}

void odmr_session_free(struct odmr_session *s)
{
	if (s == NULL)
		return;
	sasl_free(s->sasl);
	users_free(s->users);
	config_unref(s->cfg);
	free(s);
}

void odmr_session_greet(struct odmr_session *s, struct buf *out)
{
	odmr_reply(out, "220 %s ESMTP etrnd ODMR service ready",
	    s->cfg->hostname);
}

const struct smtp_atrn *odmr_session_atrn(const struct odmr_session *s)
{
	return &s->atrn;
}

const char *odmr_session_user(const struct odmr_session *s)
{
	return s->user;
}

bool odmr_session_tls(const struct odmr_session *s)
{
	return s->tls;
}

void odmr_session_tls_started(struct odmr_session *s)
{
	/* RFC 3207: everything said before TLS is forgotten */
	s->tls = true;
	s->esmtp = false;
	s->st = ODMR_ST_FRESH;
}

static enum odmr_action odmr_cmd_ehlo(struct odmr_session *s, const char *arg,
    size_t len, struct buf *out, bool esmtp)
{
	if (len == 0)
		return odmr_error(s, out, "501 5.5.4 Syntax: EHLO hostname");
	if (s->st == ODMR_ST_AUTHED) {
		/* RFC 4954: no second AUTH; the greeting changes nothing */
		odmr_reply(out, "250 %s", s->cfg->hostname);
		return ODMR_ACT_NONE;
	}
	s->esmtp = esmtp;
	s->st = ODMR_ST_READY;
	if (!esmtp) {
		odmr_reply(out, "250 %s", s->cfg->hostname);
		return ODMR_ACT_NONE;
	}
	odmr_reply(out, "250-%s", s->cfg->hostname);
	odmr_reply(out, "250-AUTH %s", sasl_mechs(s->tls));
	odmr_reply(out, "250-ATRN");
	if (s->env.tls_available && !s->tls)
		odmr_reply(out, "250-STARTTLS");
	odmr_reply(out, "250 ENHANCEDSTATUSCODES");
	return ODMR_ACT_NONE;
}

/* odmr_sasl_result - the end of an AUTH exchange, or its next step */
static enum odmr_action odmr_sasl_result(struct odmr_session *s,
    const struct sasl_step *st, struct buf *out)
{
	if (st->status == SASL_CONTINUE) {
		odmr_reply(out, "334 %s", st->challenge ? st->challenge : "");
		return ODMR_ACT_NONE;
	}
	s->st = ODMR_ST_READY;
	if (st->status == SASL_OK) {
		sasl_free(s->sasl);
		s->sasl = NULL;
		if (s->env.auth_done && !s->env.auth_done(s->env.arg, st->user,
		    true)) {
			odmr_reply(out, "454 4.7.0 Too many authentication"
			    " failures for this account; try again later");
			return ODMR_ACT_NONE;
		}
		snprintf(s->user, sizeof(s->user), "%s", st->user);
		s->account = st->account;
		s->st = ODMR_ST_AUTHED;
		metrics_inc(MET_AUTH_OK);
		log_info("event=auth sid=%s user=%s result=ok", s->env.sid,
		    log_value(s->user, strlen(s->user)));
		odmr_reply(out, "235 2.7.0 Authentication successful");
		return ODMR_ACT_NONE;
	}
	if (st->status == SASL_FAIL) {
		const char *who = st->user ? st->user : "";

		metrics_inc(MET_AUTH_FAILED);
		log_info("event=auth sid=%s user=%s result=failed", s->env.sid,
		    log_value(who, strlen(who)));
		if (s->env.auth_done)
			s->env.auth_done(s->env.arg, st->user, false);
		sasl_free(s->sasl);
		s->sasl = NULL;
		if (++s->auth_failures >= ODMR_AUTH_TRIES) {
			odmr_reply(out, "421 4.7.0 %s Error: too many"
			    " authentication failures", s->cfg->hostname);
			return ODMR_ACT_CLOSE;
		}
		odmr_reply(out, "%s", sasl_reply(st->status));
		return ODMR_ACT_AUTH_FAILED;
	}
	sasl_free(s->sasl);
	s->sasl = NULL;
	return odmr_error(s, out, sasl_reply(st->status));
}

static enum odmr_action odmr_cmd_auth(struct odmr_session *s, const char *arg,
    size_t len, struct buf *out)
{
	char mech[32], initial[SASL_LINE_MAX + 1];
	const char *sp;
	size_t mlen, ilen = 0;
	struct sasl_step st;

	if (s->st == ODMR_ST_FRESH)
		return odmr_error(s, out, "503 5.5.1 Error: send EHLO first");
	if (s->st == ODMR_ST_AUTHED)
		return odmr_error(s, out, "503 5.5.1 Error: already authenticated");
	if (s->users == NULL)
		return odmr_error(s, out, "454 4.7.0 Temporary authentication"
		    " failure: no accounts are configured");
	if (s->env.auth_allowed && !s->env.auth_allowed(s->env.arg)) {
		odmr_reply(out, "454 4.7.0 Too many authentication failures"
		    " from your address; try again later");
		return ODMR_ACT_CLOSE;
	}
	sp = memchr(arg, ' ', len);
	mlen = sp ? (size_t)(sp - arg) : len;
	if (mlen == 0 || mlen >= sizeof(mech))
		return odmr_error(s, out, "504 5.5.4 Unrecognized authentication"
		    " type");
	memcpy(mech, arg, mlen);
	mech[mlen] = '\0';
	if (sp) {
		ilen = len - mlen - 1;
		if (ilen > SASL_LINE_MAX)
			return odmr_error(s, out, sasl_reply(SASL_TOO_LONG));
		memcpy(initial, sp + 1, ilen);
	}
	initial[ilen] = '\0';
	s->sasl = sasl_start(mech, sp ? initial : NULL, s->tls,
	    s->cfg->hostname, s->users, &st);
	s->st = ODMR_ST_SASL;
	return odmr_sasl_result(s, &st, out);
}

static enum odmr_action odmr_cmd_atrn(struct odmr_session *s, const char *arg,
    size_t len, struct buf *out)
{
	size_t i, n;

	if (s->st != ODMR_ST_AUTHED) {
		metrics_atrn(530);
		return odmr_error(s, out, "530 5.7.0 Authentication required");
	}
	if (smtp_atrn_parse(arg, len, &s->atrn) != SMTP_ETRN_OK) {
		metrics_atrn(501);
		return odmr_error(s, out, "501 5.5.4 Syntax Error in Parameters");
	}
	if (s->atrn.n == 0) {
		/* no list: every domain of the account */
		n = users_account_ndomains(s->account);
		for (i = 0; i < n && i < SMTP_ATRN_MAX; i++)
			snprintf(s->atrn.domain[i], sizeof(s->atrn.domain[i]),
			    "%s", users_account_domain(s->account, i));
		s->atrn.n = i;
	}
	for (i = 0; i < s->atrn.n; i++) {
		if (!users_may_collect(s->account, s->atrn.domain[i])) {
			log_info("event=atrn sid=%s user=%s domain=%s"
			    " reply=450", s->env.sid,
			    log_value(s->user, strlen(s->user)),
			    s->atrn.domain[i]);
			metrics_atrn(450);
			odmr_reply(out, "450 4.7.1 ATRN request refused: %s is"
			    " not yours to collect", s->atrn.domain[i]);
			return ODMR_ACT_NONE;
		}
	}
	return ODMR_ACT_ATRN;
}

enum odmr_action odmr_session_line(struct odmr_session *s, const char *line,
    size_t len, struct buf *out)
{
	struct smtp_cmd cmd;
	const char *arg;

	if (s->st == ODMR_ST_SASL) {
		struct sasl_step st;

		sasl_step(s->sasl, line, len, &st);
		return odmr_sasl_result(s, &st, out);
	}
	if (smtp_cmd_parse(line, len, &cmd) != SMTP_CMD_OK)
		return odmr_error(s, out,
		    "501 5.5.2 Error: invalid characters in command");
	arg = line + cmd.arg_off;
	switch (cmd.verb) {
	case SMTP_VERB_EHLO:
		return odmr_cmd_ehlo(s, arg, cmd.arg_len, out, true);
	case SMTP_VERB_HELO:
		return odmr_cmd_ehlo(s, arg, cmd.arg_len, out, false);
	case SMTP_VERB_AUTH:
		return odmr_cmd_auth(s, arg, cmd.arg_len, out);
	case SMTP_VERB_ATRN:
		return odmr_cmd_atrn(s, arg, cmd.arg_len, out);
	case SMTP_VERB_NOOP:
	case SMTP_VERB_RSET:
		odmr_reply(out, "250 2.0.0 Ok");
		return ODMR_ACT_NONE;
	case SMTP_VERB_QUIT:
		log_info("event=disconnect sid=%s service=odmr reason=quit",
		    s->env.sid);
		odmr_reply(out, "221 2.0.0 Bye");
		return ODMR_ACT_CLOSE;
	case SMTP_VERB_STARTTLS:
		if (!s->env.tls_available || s->tls)
			return odmr_error(s, out, s->tls ?
			    "503 5.5.1 Error: TLS already active" :
			    "502 5.5.1 Error: command not available here");
		if (cmd.arg_len != 0)
			return odmr_error(s, out, "501 5.5.4 Syntax: STARTTLS");
		if (s->st == ODMR_ST_AUTHED)
			return odmr_error(s, out, "503 5.5.1 Error: already"
			    " authenticated");
		odmr_reply(out, "220 2.0.0 Ready to start TLS");
		return ODMR_ACT_STARTTLS;
	case SMTP_VERB_HTTP:
		odmr_reply(out, "554 5.5.0 Error: not an SMTP client");
		return ODMR_ACT_CLOSE;
	default:
		/* MAIL, RCPT, ETRN...: ODMR collects mail, it relays none */
		return odmr_error(s, out, "502 5.5.1 Error: command not"
		    " available on the ODMR service");
	}
}

enum odmr_action odmr_session_line_error(struct odmr_session *s,
    struct buf *out)
{
	return odmr_error(s, out, "500 5.5.2 Error: line too long or bare"
	    " <LF>");
}
