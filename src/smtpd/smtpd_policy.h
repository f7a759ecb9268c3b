/*
 * SUMMARY
 *	smtpd_policy - who may send what to whom
 * DESCRIPTION
 *	Pure decisions over the configuration: whether a recipient is for a
 *	domain we relay for (RFC 5321 3.6; SECURITY.md R1-R9).  Sender-
 *	specified routing never leads to relaying: a local part holding '@',
 *	'%' or '!' is refused for every domain (a downstream host that honours
 *	the percent hack or de-quotes could otherwise turn us into an open
 *	relay), address literals are refused, and domains match on whole
 *	labels only.
 */
#ifndef ETRND_SMTPD_POLICY_H
#define ETRND_SMTPD_POLICY_H

#include "config/config.h"
#include "smtp/smtp_addr.h"

enum smtpd_rcpt_verdict {
	SMTPD_RCPT_OK,
	SMTPD_RCPT_NOT_RELAY,	/* 550 5.7.1 relay access denied */
	SMTPD_RCPT_ROUTING,	/* 550 5.7.1 sender-specified routing */
	SMTPD_RCPT_LITERAL,	/* 550 5.7.1 address literal */
	SMTPD_RCPT_UNKNOWN,	/* 550 5.1.1 not in the domain's recipients */
};

enum smtpd_rcpt_verdict smtpd_policy_rcpt(const struct config *c,
    const struct smtp_path *p, const struct config_domain **dom);

#endif
