/* smtp_cmd - split one SMTP command line into verb and argument */
#include "smtp/smtp_cmd.h"

#include <string.h>

#include "util/strutil.h"

struct verb_entry {
	const char *name;
	enum smtp_verb verb;
};

/*
 * The HTTP methods sit in the same table: a browser or proxy probe is
 * recognised by its first word and the session hangs up (SECURITY.md P12).
 */
static const struct verb_entry verb_table[] = {
	{ "HELO", SMTP_VERB_HELO },
	{ "EHLO", SMTP_VERB_EHLO },
	{ "MAIL", SMTP_VERB_MAIL },
	{ "RCPT", SMTP_VERB_RCPT },
	{ "DATA", SMTP_VERB_DATA },
	{ "RSET", SMTP_VERB_RSET },
	{ "NOOP", SMTP_VERB_NOOP },
	{ "QUIT", SMTP_VERB_QUIT },
	{ "HELP", SMTP_VERB_HELP },
	{ "VRFY", SMTP_VERB_VRFY },
	{ "EXPN", SMTP_VERB_EXPN },
	{ "ETRN", SMTP_VERB_ETRN },
	{ "ATRN", SMTP_VERB_ATRN },
	{ "TURN", SMTP_VERB_TURN },
	{ "AUTH", SMTP_VERB_AUTH },
	{ "STARTTLS", SMTP_VERB_STARTTLS },
	{ "BDAT", SMTP_VERB_BDAT },
	{ "GET", SMTP_VERB_HTTP },
	{ "POST", SMTP_VERB_HTTP },
	{ "HEAD", SMTP_VERB_HTTP },
	{ "PUT", SMTP_VERB_HTTP },
	{ "CONNECT", SMTP_VERB_HTTP },
	{ "OPTIONS", SMTP_VERB_HTTP },
};

/* is_wsp - SP or HTAB, the only separators inside a command line */
static int is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

/* line_bytes_ok - no byte that could be read differently by another parser */
static int line_bytes_ok(const char *line, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)line[i];

		if (c == '\t')
			continue;
		if (c < 0x20 || c >= 0x7f)
			return 0;
	}
	return 1;
}

/* skip_wsp - index of the first non-blank byte at or after i */
static size_t skip_wsp(const char *line, size_t len, size_t i)
{
	while (i < len && is_wsp(line[i]))
		i++;
	return i;
}

/* set_arg - the argument is line[start..len) without trailing blanks */
static void set_arg(struct smtp_cmd *out, const char *line, size_t len,
    size_t start)
{
	size_t end = len;

	while (end > start && is_wsp(line[end - 1]))
		end--;
	out->arg_off = start;
	out->arg_len = end - start;
}

/* lookup_verb - the verb named by line[0..n), or SMTP_VERB_UNKNOWN */
static enum smtp_verb lookup_verb(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < sizeof(verb_table) / sizeof(verb_table[0]); i++) {
		if (str_caseeq_n(s, n, verb_table[i].name))
			return verb_table[i].verb;
	}
	return SMTP_VERB_UNKNOWN;
}

/* smtp_cmd_parse - verb and argument offsets of one command line */
enum smtp_cmd_status smtp_cmd_parse(const char *line, size_t len,
    struct smtp_cmd *out)
{
	size_t vlen, i;
	const char *kw;

	out->verb = SMTP_VERB_UNKNOWN;
	out->arg_off = 0;
	out->arg_len = 0;

	/*
	 * Refuse the whole line before looking at any of it: a NUL or a
	 * stray CR must never let "the part before it" be acted on.
	 */
	if (!line_bytes_ok(line, len))
		return SMTP_CMD_BAD_BYTES;
	if (len == 0) {
		out->verb = SMTP_VERB_EMPTY;
		return SMTP_CMD_OK;
	}

	for (vlen = 0; vlen < len && !is_wsp(line[vlen]); vlen++)
		;
	/* A leading blank gives an empty verb, which matches nothing. */
	out->verb = vlen ? lookup_verb(line, vlen) : SMTP_VERB_UNKNOWN;
	i = skip_wsp(line, len, vlen);

	if (out->verb != SMTP_VERB_MAIL && out->verb != SMTP_VERB_RCPT) {
		set_arg(out, line, len, i);
		return SMTP_CMD_OK;
	}

	/*
	 * MAIL and RCPT carry a fixed keyword before their path; the caller
	 * gets the path only, so "MAIL FROM:" and "MAIL FROM: " look alike.
	 * On failure the verb stays set so the reply can quote the syntax.
	 */
	kw = out->verb == SMTP_VERB_MAIL ? "FROM:" : "TO:";
	if (i == vlen || !str_caseprefix(line + i, len - i, kw))
		return SMTP_CMD_BAD_SYNTAX;
	i = skip_wsp(line, len, i + strlen(kw));
	set_arg(out, line, len, i);
	return SMTP_CMD_OK;
}

/* smtp_verb_name - the verb in upper case, for logs and replies */
const char *smtp_verb_name(enum smtp_verb v)
{
	switch (v) {
	case SMTP_VERB_EMPTY:
		return "EMPTY";
	case SMTP_VERB_UNKNOWN:
		return "UNKNOWN";
	case SMTP_VERB_HELO:
		return "HELO";
	case SMTP_VERB_EHLO:
		return "EHLO";
	case SMTP_VERB_MAIL:
		return "MAIL";
	case SMTP_VERB_RCPT:
		return "RCPT";
	case SMTP_VERB_DATA:
		return "DATA";
	case SMTP_VERB_RSET:
		return "RSET";
	case SMTP_VERB_NOOP:
		return "NOOP";
	case SMTP_VERB_QUIT:
		return "QUIT";
	case SMTP_VERB_HELP:
		return "HELP";
	case SMTP_VERB_VRFY:
		return "VRFY";
	case SMTP_VERB_EXPN:
		return "EXPN";
	case SMTP_VERB_ETRN:
		return "ETRN";
	case SMTP_VERB_ATRN:
		return "ATRN";
	case SMTP_VERB_TURN:
		return "TURN";
	case SMTP_VERB_AUTH:
		return "AUTH";
	case SMTP_VERB_STARTTLS:
		return "STARTTLS";
	case SMTP_VERB_BDAT:
		return "BDAT";
	case SMTP_VERB_HTTP:
		return "HTTP";
	}
	return "UNKNOWN";
}
