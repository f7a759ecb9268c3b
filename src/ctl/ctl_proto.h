/*
 * SUMMARY
 *	ctl_proto - requests of the control socket, parsed
 * DESCRIPTION
 *	Pure: a request line (without its LF) to a command and argument.
 *	Shared by the daemon and etrnctl so both agree on the words.
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
};

struct ctl_req {
	enum ctl_cmd cmd;
	char arg[256];		/* domain for list, "" for all */
	uint64_t id;		/* show */
	const char *error;	/* CTL_CMD_BAD: why */
};

void ctl_req_parse(const char *line, size_t len, struct ctl_req *req);

#endif
