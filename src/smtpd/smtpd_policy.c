/* smtpd_policy - who may send what to whom */
#include "smtpd/smtpd_policy.h"

enum smtpd_rcpt_verdict smtpd_policy_rcpt(const struct config *c,
    const struct smtp_path *p, const struct config_domain **dom)
{
	const struct config_domain *d;

	*dom = NULL;
	if (p->domain_literal)
		return SMTPD_RCPT_LITERAL;
	d = config_find_domain(c, p->domain);
	if (d == NULL)
		return SMTPD_RCPT_NOT_RELAY;
	if (p->local_has_route_chars)
		return SMTPD_RCPT_ROUTING;
	/* refused now, at RCPT, rather than bounced later: no backscatter */
	if (!config_rcpt_known(d, p->addr))
		return SMTPD_RCPT_UNKNOWN;
	*dom = d;
	return SMTPD_RCPT_OK;
}
