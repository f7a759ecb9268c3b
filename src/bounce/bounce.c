/* bounce - delivery status notifications as new queued messages */
#include "bounce/bounce.h"
#include "smtp/smtp_dsn.h"
#include "util/idgen.h"
#include "util/strutil.h"
#include "util/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct queue_msg_in *bounce_make(const struct config *cfg,
    const struct queue_item *it, const enum bounce_kind *kinds,
    const struct smtpc_result *res, const char *remote, time_t now)
{
	struct smtp_dsn_rcpt *r;
	struct smtp_dsn d;
	struct smtp_dsn_info info;
	struct queue_msg_in *m;
	const char *at;
	char qid[IDGEN_HEX_LEN + 1], boundary[64];
	char (*status)[16];
	size_t k, n = 0;
	bool delay_only = true;

	if (it->sender == NULL || it->sender[0] == '\0')
		return NULL;		/* never a bounce of a bounce */
	at = strrchr(it->sender, '@');
	if (at == NULL || at[1] == '\0')
		return NULL;
	r = xcalloc(it->nrcpt, sizeof(*r));
	status = xcalloc(it->nrcpt, sizeof(*status));
	for (k = 0; k < it->nrcpt; k++) {
		bool failed = kinds[k] == BOUNCE_FAILED;

		if (kinds[k] == BOUNCE_NONE ||
		    !smtp_dsn_wanted(it->rcpts[k].notify, failed))
			continue;
		if (failed)
			delay_only = false;
		snprintf(status[n], sizeof(status[n]), "%s", res[k].enh);
		r[n].addr = it->rcpts[k].addr;
		r[n].orcpt = it->rcpts[k].orcpt;
		r[n].action = failed ? SMTP_DSN_FAILED : SMTP_DSN_DELAYED;
		r[n].status = status[n][0] ? status[n] : NULL;
		r[n].remote_mta = remote;
		r[n].diagnostic = res[k].text[0] ? res[k].text : NULL;
		r[n].last_attempt = now;
		n++;
	}
	if (n == 0) {
		free(r);
		free(status);
		return NULL;
	}
	m = xcalloc(1, sizeof(*m));
	m->id = idgen_next();
	idgen_format(it->id, qid);
	snprintf(boundary, sizeof(boundary), "%016llX.etrnd",
	    (unsigned long long)m->id);
	memset(&d, 0, sizeof(d));
	d.kind = delay_only ? SMTP_DSN_DELAY : SMTP_DSN_FAILURE;
	d.reporting_mta = cfg->hostname;
	d.sender = it->sender;
	d.envid = it->envid;
	d.ret = (enum smtp_ret)it->ret;
	d.arrival = it->arrival;
	d.qid = qid;
	d.body = it->body.p;
	d.body_len = it->body.len;
	d.rcpts = r;
	d.nrcpt = n;
	d.now = now;
	d.boundary = boundary;
	m->body_fd = -1;
	if (!smtp_dsn_build(&d, &m->body, &info)) {
		free(r);
		free(status);
		buf_free(&m->body);
		free(m);
		return NULL;
	}
	m->sender = xstrdup("");
	m->body8 = info.eightbit ? SMTP_BODY_8BITMIME : SMTP_BODY_NONE;
	m->client = xstrdup("");
	m->helo = xstrdup(cfg->hostname);
	m->arrival = now;
	m->nrcpt = 1;
	m->rcpts = xcalloc(1, sizeof(*m->rcpts));
	m->rcpts[0].addr = xstrdup(it->sender);
	m->rcpts[0].domain = xstrdup(at + 1);
	str_lower(m->rcpts[0].domain);
	{
		/* a sender in a domain we hold for waits like its other mail */
		const struct config_domain *dd =
		    config_find_domain(cfg, m->rcpts[0].domain);

		m->rcpts[0].state = dd && dd->mode == CONFIG_MODE_HOLD ?
		    QUEUE_R_HELD : QUEUE_R_QUEUED;
	}
	free(r);
	free(status);
	return m;
}
