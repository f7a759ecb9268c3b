/* ctl_proto - requests of the control socket, parsed */
#include "ctl/ctl_proto.h"
#include "util/idgen.h"
#include "util/strutil.h"

#include <string.h>

/* ctl_domain_ok - a plausible domain: LDH labels and dots, lower-cased */
static int ctl_domain_ok(char *s)
{
	size_t i, n = strlen(s);

	if (n == 0 || n > 253 || s[0] == '.' || s[n - 1] == '.')
		return 0;
	for (i = 0; i < n; i++) {
		s[i] = ascii_tolower(s[i]);
		if (!ascii_isalnum(s[i]) && s[i] != '-' && s[i] != '.')
			return 0;
		if (s[i] == '.' && s[i + 1] == '.')
			return 0;
	}
	return 1;
}

void ctl_req_parse(const char *line, size_t len, struct ctl_req *req)
{
	const char *sp = memchr(line, ' ', len);
	size_t vlen = sp ? (size_t)(sp - line) : len;
	size_t alen = sp ? len - vlen - 1 : 0;

	memset(req, 0, sizeof(*req));
	req->cmd = CTL_CMD_BAD;
	if (alen >= sizeof(req->arg) || memchr(line, '\0', len)) {
		req->error = "argument too long";
		return;
	}
	if (sp)
		memcpy(req->arg, sp + 1, alen);
	if (str_caseeq_n(line, vlen, "summary") && alen == 0) {
		req->cmd = CTL_CMD_SUMMARY;
	} else if (str_caseeq_n(line, vlen, "expire") && alen == 0) {
		req->cmd = CTL_CMD_EXPIRE;
	} else if (str_caseeq_n(line, vlen, "qshape") && alen == 0) {
		req->cmd = CTL_CMD_SHAPE;
	} else if (str_caseeq_n(line, vlen, "stats") && alen == 0) {
		req->cmd = CTL_CMD_STATS;
	} else if (str_caseeq_n(line, vlen, "list")) {
		if (alen > 0 && !ctl_domain_ok(req->arg)) {
			req->error = "not a domain name";
			return;
		}
		req->cmd = CTL_CMD_LIST;
	} else if (str_caseeq_n(line, vlen, "show") ||
	    str_caseeq_n(line, vlen, "delete")) {
		if (alen != IDGEN_HEX_LEN || !idgen_parse(req->arg, &req->id)) {
			req->error = "not a queue id (16 hex digits)";
			return;
		}
		req->cmd = str_caseeq_n(line, vlen, "show") ? CTL_CMD_SHOW :
		    CTL_CMD_DELETE;
		req->arg[0] = '\0';	/* the id is in req->id */
	} else if (str_caseeq_n(line, vlen, "flush")) {
		if (!ctl_domain_ok(req->arg)) {
			req->error = "flush needs a domain name";
			return;
		}
		req->cmd = CTL_CMD_FLUSH;
	} else if (str_caseeq_n(line, vlen, "hold") ||
	    str_caseeq_n(line, vlen, "release") ||
	    str_caseeq_n(line, vlen, "requeue")) {
		if (alen == IDGEN_HEX_LEN && idgen_parse(req->arg, &req->id)) {
			req->arg[0] = '\0';
		} else if (!ctl_domain_ok(req->arg)) {
			req->error = "needs a domain name or a queue id";
			return;
		}
		req->cmd = str_caseeq_n(line, vlen, "hold") ? CTL_CMD_HOLD :
		    str_caseeq_n(line, vlen, "release") ? CTL_CMD_RELEASE :
		    CTL_CMD_REQUEUE;
	} else {
		req->error = "unknown command";
	}
}
