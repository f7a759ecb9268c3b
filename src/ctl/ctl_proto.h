/*
 * SUMMARY
 *	ctl_proto - requests of the control socket, parsed
 * DESCRIPTION
 *	Pure: a request line (without its LF) to a command and argument.
 *	Shared by the daemon and etrnctl so both agree on the words.
 *	An argument of 16 hex digits is a queue id, anything else a domain
 *	(a domain we serve always has a dot, so the two never meet).
 */
#ifndef ETRND_CTL_PROTO_H
#define ETRND_CTL_PROTO_H

#include <stddef.h>
#include <stdint.h>

#define CTL_LINE_MAX 1024

enum ctl_cmd {
	CTL_CMD_BAD,
	CTL_CMD_SUMMARY,
	CTL_CMD_LIST,
	CTL_CMD_SHOW,
	CTL_CMD_FLUSH,		/* DOMAIN */
	CTL_CMD_HOLD,		/* DOMAIN or QID */
	CTL_CMD_RELEASE,	/* DOMAIN or QID */
	CTL_CMD_REQUEUE,	/* DOMAIN or QID */
	CTL_CMD_DELETE,		/* QID */
	CTL_CMD_EXPIRE,		/* return expired mail now */
	CTL_CMD_SHAPE,		/* messages per domain by age */
	CTL_CMD_STATS,		/* the counters of /metrics */
};

struct ctl_req {
	enum ctl_cmd cmd;
	char arg[256];		/* a domain, "" for all (list) or when id is set */
	uint64_t id;		/* a queue id (show, delete; hold... by QID) */
	const char *error;	/* CTL_CMD_BAD: why */
};

void ctl_req_parse(const char *line, size_t len, struct ctl_req *req);

#endif
