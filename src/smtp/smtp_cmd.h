/*
 * SUMMARY
 *	smtp_cmd - split one SMTP command line into verb and argument
 * DESCRIPTION
 *	Pure: no I/O, no logging.  The line is given without its CRLF.  The
 *	verb is matched case-insensitively; the argument is what follows the
 *	verb and the white space after it, with trailing spaces removed.
 *	Lines holding a NUL, a CR or LF, another control character (other
 *	than TAB) or a byte over 0x7e are refused as a whole: nothing in them
 *	is interpreted (SECURITY.md P3).
 * OWNERSHIP
 *	struct smtp_cmd holds offsets into the caller's line, no pointers.
 */
#ifndef ETRND_SMTP_CMD_H
#define ETRND_SMTP_CMD_H

#include <stddef.h>

#define SMTP_CMD_LINE_MAX 512	/* RFC 5321 4.5.3.1.4, with the CRLF */

enum smtp_verb {
	SMTP_VERB_EMPTY,	/* empty line */
	SMTP_VERB_UNKNOWN,
	SMTP_VERB_HELO,
	SMTP_VERB_EHLO,
	SMTP_VERB_MAIL,		/* "MAIL FROM:..." : arg starts after "FROM:" */
	SMTP_VERB_RCPT,		/* "RCPT TO:..."   : arg starts after "TO:" */
	SMTP_VERB_DATA,
	SMTP_VERB_RSET,
	SMTP_VERB_NOOP,
	SMTP_VERB_QUIT,
	SMTP_VERB_HELP,
	SMTP_VERB_VRFY,
	SMTP_VERB_EXPN,
	SMTP_VERB_ETRN,
	SMTP_VERB_ATRN,
	SMTP_VERB_TURN,
	SMTP_VERB_AUTH,
	SMTP_VERB_STARTTLS,
	SMTP_VERB_BDAT,
	SMTP_VERB_HTTP,		/* GET, POST, HEAD, PUT, CONNECT, OPTIONS: another protocol */
};

enum smtp_cmd_status {
	SMTP_CMD_OK,
	SMTP_CMD_BAD_BYTES,	/* NUL, CR, LF, control or 8-bit byte in the line */
	SMTP_CMD_BAD_SYNTAX,	/* MAIL without "FROM:", RCPT without "TO:", verb glued to junk */
};

struct smtp_cmd {
	enum smtp_verb verb;
	size_t arg_off;		/* argument = line + arg_off, arg_len bytes */
	size_t arg_len;		/* 0 when there is no argument */
};

/*
 * smtp_cmd_parse - parse line[0..len).  On SMTP_CMD_OK, out is filled.
 * "MAIL FROM:<a@b> SIZE=1" gives SMTP_VERB_MAIL with the argument
 * "<a@b> SIZE=1"; a space after the colon ("MAIL FROM: <a@b>") is allowed
 * and skipped.  A verb followed by neither the end nor white space
 * ("NOOPX") is SMTP_VERB_UNKNOWN, and so is a line that begins with white
 * space.  An HTTP method as the first word gives SMTP_VERB_HTTP whatever
 * follows it.  On SMTP_CMD_BAD_SYNTAX out->verb still tells MAIL from
 * RCPT (for the reply text); on SMTP_CMD_BAD_BYTES it is UNKNOWN.  The
 * line length is not checked here: the line reader enforces
 * SMTP_CMD_LINE_MAX.
 */
enum smtp_cmd_status smtp_cmd_parse(const char *line, size_t len,
    struct smtp_cmd *out);

/* smtp_verb_name - the verb in upper case ("MAIL", "UNKNOWN", "HTTP") */
const char *smtp_verb_name(enum smtp_verb v);

#endif
