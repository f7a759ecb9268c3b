/* fuzz_smtp_cmd - libFuzzer target for smtp_cmd_parse() */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/smtp_cmd.h"

static volatile size_t sink;

/* is_blank - the separators the parser trims */
static int is_blank(char c)
{
	return c == ' ' || c == '\t';
}

/* LLVMFuzzerTestOneInput - one command line */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *line = (const char *)data;
	struct smtp_cmd cmd;
	enum smtp_cmd_status st;
	const char *name;
	size_t i;

	st = smtp_cmd_parse(line, size, &cmd);
	name = smtp_verb_name(cmd.verb);
	if (name == NULL || name[0] == '\0')
		abort();
	sink += (size_t)st + (size_t)cmd.verb + strlen(name);

	if (st == SMTP_CMD_BAD_BYTES) {
		/* refused lines must really hold a refused byte */
		for (i = 0; i < size; i++) {
			if (line[i] != '\t' && (data[i] < 0x20 ||
			    data[i] >= 0x7f))
				break;
		}
		if (i == size || cmd.verb != SMTP_VERB_UNKNOWN)
			abort();
		return 0;
	}
	/* an accepted or syntax-refused line holds printable ASCII only */
	for (i = 0; i < size; i++) {
		if (line[i] != '\t' && (data[i] < 0x20 || data[i] >= 0x7f))
			abort();
	}
	if (st == SMTP_CMD_BAD_SYNTAX) {
		if (cmd.verb != SMTP_VERB_MAIL && cmd.verb != SMTP_VERB_RCPT)
			abort();
		return 0;
	}
	if (st != SMTP_CMD_OK)
		abort();
	if ((size == 0) != (cmd.verb == SMTP_VERB_EMPTY))
		abort();
	if (cmd.arg_off > size || cmd.arg_len > size - cmd.arg_off)
		abort();
	if (cmd.arg_len > 0) {
		const char *a = line + cmd.arg_off;

		if (is_blank(a[0]) || is_blank(a[cmd.arg_len - 1]))
			abort();
		for (i = 0; i < cmd.arg_len; i++)
			sink += (unsigned char)a[i];
	}
	/* the argument is always at the end of the line, bar blanks */
	for (i = cmd.arg_off + cmd.arg_len; i < size; i++) {
		if (!is_blank(line[i]))
			abort();
	}
	return 0;
}
