/* test_smtp_cmd - command line splitting (SECURITY.md P3, P12) */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>
#include <stdio.h>
#include <cmocka.h>

#include "smtp/smtp_cmd.h"

/* L - a literal with its exact length, embedded NULs included */
#define L(s) s, sizeof(s) - 1

struct cmd_case {
	const char *line;
	size_t len;
	enum smtp_cmd_status status;
	enum smtp_verb verb;
	const char *arg;	/* expected argument on SMTP_CMD_OK */
};

static const struct cmd_case cases[] = {
	{ L(""), SMTP_CMD_OK, SMTP_VERB_EMPTY, "" },
	{ L("HELO example.org"), SMTP_CMD_OK, SMTP_VERB_HELO, "example.org" },
	{ L("ehlo   example.org  "), SMTP_CMD_OK, SMTP_VERB_EHLO, "example.org" },
	{ L("EHLO\texample.org\t"), SMTP_CMD_OK, SMTP_VERB_EHLO, "example.org" },
	{ L("EhLo [192.0.2.1]"), SMTP_CMD_OK, SMTP_VERB_EHLO, "[192.0.2.1]" },
	{ L("EHLO"), SMTP_CMD_OK, SMTP_VERB_EHLO, "" },
	{ L("MAIL FROM:<a@b> SIZE=1"), SMTP_CMD_OK, SMTP_VERB_MAIL,
	  "<a@b> SIZE=1" },
	{ L("mail from:<a@b>"), SMTP_CMD_OK, SMTP_VERB_MAIL, "<a@b>" },
	{ L("MAIL FROM: <a@b>"), SMTP_CMD_OK, SMTP_VERB_MAIL, "<a@b>" },
	{ L("Mail From:   <>  "), SMTP_CMD_OK, SMTP_VERB_MAIL, "<>" },
	{ L("MAIL  FROM:<a@b>"), SMTP_CMD_OK, SMTP_VERB_MAIL, "<a@b>" },
	{ L("MAIL\tFROM:\t<a@b>"), SMTP_CMD_OK, SMTP_VERB_MAIL, "<a@b>" },
	{ L("MAIL FROM:"), SMTP_CMD_OK, SMTP_VERB_MAIL, "" },
	{ L("MAIL FROM:   "), SMTP_CMD_OK, SMTP_VERB_MAIL, "" },
	{ L("MAIL FROM:<a b@c>  x  "), SMTP_CMD_OK, SMTP_VERB_MAIL,
	  "<a b@c>  x" },
	{ L("MAIL"), SMTP_CMD_BAD_SYNTAX, SMTP_VERB_MAIL, NULL },
	{ L("MAIL "), SMTP_CMD_BAD_SYNTAX, SMTP_VERB_MAIL, NULL },
	{ L("MAIL TO:<a@b>"), SMTP_CMD_BAD_SYNTAX, SMTP_VERB_MAIL, NULL },
	{ L("MAIL FROM<a@b>"), SMTP_CMD_BAD_SYNTAX, SMTP_VERB_MAIL, NULL },
	{ L("MAIL FROM :<a@b>"), SMTP_CMD_BAD_SYNTAX, SMTP_VERB_MAIL, NULL },
	{ L("MAIL FRO:<a@b>"), SMTP_CMD_BAD_SYNTAX, SMTP_VERB_MAIL, NULL },
	{ L("MAILFROM:<a@b>"), SMTP_CMD_OK, SMTP_VERB_UNKNOWN, "" },
	{ L("RCPT TO:<a@b>"), SMTP_CMD_OK, SMTP_VERB_RCPT, "<a@b>" },
	{ L("rcpt to: <a@b> NOTIFY=NEVER"), SMTP_CMD_OK, SMTP_VERB_RCPT,
	  "<a@b> NOTIFY=NEVER" },
	{ L("RcPt To:<>"), SMTP_CMD_OK, SMTP_VERB_RCPT, "<>" },
	{ L("RCPT FROM:<a@b>"), SMTP_CMD_BAD_SYNTAX, SMTP_VERB_RCPT, NULL },
	{ L("RCPT"), SMTP_CMD_BAD_SYNTAX, SMTP_VERB_RCPT, NULL },
	{ L("RCPT T:<a@b>"), SMTP_CMD_BAD_SYNTAX, SMTP_VERB_RCPT, NULL },
	{ L("DATA"), SMTP_CMD_OK, SMTP_VERB_DATA, "" },
	{ L("data "), SMTP_CMD_OK, SMTP_VERB_DATA, "" },
	{ L("DATA x"), SMTP_CMD_OK, SMTP_VERB_DATA, "x" },
	{ L("RSET"), SMTP_CMD_OK, SMTP_VERB_RSET, "" },
	{ L("NOOP"), SMTP_CMD_OK, SMTP_VERB_NOOP, "" },
	{ L("NOOP hello world"), SMTP_CMD_OK, SMTP_VERB_NOOP, "hello world" },
	{ L("NOOP\tx"), SMTP_CMD_OK, SMTP_VERB_NOOP, "x" },
	{ L("QUIT"), SMTP_CMD_OK, SMTP_VERB_QUIT, "" },
	{ L("HELP"), SMTP_CMD_OK, SMTP_VERB_HELP, "" },
	{ L("HELP MAIL"), SMTP_CMD_OK, SMTP_VERB_HELP, "MAIL" },
	{ L("VRFY root"), SMTP_CMD_OK, SMTP_VERB_VRFY, "root" },
	{ L("EXPN staff"), SMTP_CMD_OK, SMTP_VERB_EXPN, "staff" },
	{ L("ETRN example.org"), SMTP_CMD_OK, SMTP_VERB_ETRN, "example.org" },
	{ L("etrn @example.org"), SMTP_CMD_OK, SMTP_VERB_ETRN, "@example.org" },
	{ L("ETRN"), SMTP_CMD_OK, SMTP_VERB_ETRN, "" },
	{ L("ETRN    "), SMTP_CMD_OK, SMTP_VERB_ETRN, "" },
	{ L("ATRN a.example,b.example"), SMTP_CMD_OK, SMTP_VERB_ATRN,
	  "a.example,b.example" },
	{ L("TURN"), SMTP_CMD_OK, SMTP_VERB_TURN, "" },
	{ L("AUTH PLAIN dGVzdA=="), SMTP_CMD_OK, SMTP_VERB_AUTH,
	  "PLAIN dGVzdA==" },
	{ L("STARTTLS"), SMTP_CMD_OK, SMTP_VERB_STARTTLS, "" },
	{ L("starttls foo"), SMTP_CMD_OK, SMTP_VERB_STARTTLS, "foo" },
	{ L("BDAT 100 LAST"), SMTP_CMD_OK, SMTP_VERB_BDAT, "100 LAST" },
	/* a verb glued to more letters, or after a blank, is unknown */
	{ L("NOOPX"), SMTP_CMD_OK, SMTP_VERB_UNKNOWN, "" },
	{ L("STARTTLSX"), SMTP_CMD_OK, SMTP_VERB_UNKNOWN, "" },
	{ L("XYZZY plugh"), SMTP_CMD_OK, SMTP_VERB_UNKNOWN, "plugh" },
	{ L(" NOOP"), SMTP_CMD_OK, SMTP_VERB_UNKNOWN, "NOOP" },
	{ L("\tNOOP"), SMTP_CMD_OK, SMTP_VERB_UNKNOWN, "NOOP" },
	{ L("   "), SMTP_CMD_OK, SMTP_VERB_UNKNOWN, "" },
	{ L("HEL"), SMTP_CMD_OK, SMTP_VERB_UNKNOWN, "" },
	/* P12: another protocol talking to us */
	{ L("GET / HTTP/1.1"), SMTP_CMD_OK, SMTP_VERB_HTTP, "/ HTTP/1.1" },
	{ L("get /"), SMTP_CMD_OK, SMTP_VERB_HTTP, "/" },
	{ L("GET"), SMTP_CMD_OK, SMTP_VERB_HTTP, "" },
	{ L("POST /x HTTP/1.0"), SMTP_CMD_OK, SMTP_VERB_HTTP, "/x HTTP/1.0" },
	{ L("HEAD / HTTP/1.1"), SMTP_CMD_OK, SMTP_VERB_HTTP, "/ HTTP/1.1" },
	{ L("PUT /f HTTP/1.1"), SMTP_CMD_OK, SMTP_VERB_HTTP, "/f HTTP/1.1" },
	{ L("CONNECT host:443 HTTP/1.1"), SMTP_CMD_OK, SMTP_VERB_HTTP,
	  "host:443 HTTP/1.1" },
	{ L("OPTIONS * HTTP/1.1"), SMTP_CMD_OK, SMTP_VERB_HTTP,
	  "* HTTP/1.1" },
	/* P3: refused as a whole, nothing interpreted */
	{ L("MAIL FROM:<a\0b@x>"), SMTP_CMD_BAD_BYTES, SMTP_VERB_UNKNOWN, NULL },
	{ L("RCPT TO:<\xff@x>"), SMTP_CMD_BAD_BYTES, SMTP_VERB_UNKNOWN, NULL },
	{ L("EHLO ex\x80mple.org"), SMTP_CMD_BAD_BYTES, SMTP_VERB_UNKNOWN,
	  NULL },
	{ L("\0"), SMTP_CMD_BAD_BYTES, SMTP_VERB_UNKNOWN, NULL },
	{ L("QUIT\0"), SMTP_CMD_BAD_BYTES, SMTP_VERB_UNKNOWN, NULL },
	{ L("NOOP\r"), SMTP_CMD_BAD_BYTES, SMTP_VERB_UNKNOWN, NULL },
	{ L("NOOP\rRSET"), SMTP_CMD_BAD_BYTES, SMTP_VERB_UNKNOWN, NULL },
	{ L("NOOP\nRSET"), SMTP_CMD_BAD_BYTES, SMTP_VERB_UNKNOWN, NULL },
	{ L("\x7f"), SMTP_CMD_BAD_BYTES, SMTP_VERB_UNKNOWN, NULL },
	{ L("\x01NOOP"), SMTP_CMD_BAD_BYTES, SMTP_VERB_UNKNOWN, NULL },
	{ L("NOOP \x1b[31m"), SMTP_CMD_BAD_BYTES, SMTP_VERB_UNKNOWN, NULL },
	{ L("GET /\r"), SMTP_CMD_BAD_BYTES, SMTP_VERB_UNKNOWN, NULL },
	{ L("MAIL\x0b" "FROM:<a@b>"), SMTP_CMD_BAD_BYTES, SMTP_VERB_UNKNOWN,
	  NULL },
};

/* test_table - every row: status, verb and the exact argument */
static void test_table(void **state)
{
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct cmd_case *c = &cases[i];
		struct smtp_cmd cmd;
		enum smtp_cmd_status st;

		memset(&cmd, 0xa5, sizeof(cmd));
		st = smtp_cmd_parse(c->line, c->len, &cmd);
		if (st != c->status || cmd.verb != c->verb)
			print_error("row %zu: \"%s\" status %d verb %d\n", i,
			    c->line, (int)st, (int)cmd.verb);
		assert_int_equal(st, c->status);
		assert_int_equal(cmd.verb, c->verb);
		if (st != SMTP_CMD_OK)
			continue;
		assert_true(cmd.arg_off <= c->len);
		assert_true(cmd.arg_len <= c->len - cmd.arg_off);
		assert_int_equal(cmd.arg_len, strlen(c->arg));
		assert_memory_equal(c->line + cmd.arg_off, c->arg, cmd.arg_len);
	}
}

/* test_offsets - arg_off is exact, so the caller can slice its buffer */
static void test_offsets(void **state)
{
	struct smtp_cmd cmd;
	const char *l;

	l = "MAIL FROM: <a@b>";
	assert_int_equal(smtp_cmd_parse(l, strlen(l), &cmd), SMTP_CMD_OK);
	assert_int_equal(cmd.arg_off, 11);
	assert_int_equal(cmd.arg_len, 5);

	l = "RCPT TO:<a@b>";
	assert_int_equal(smtp_cmd_parse(l, strlen(l), &cmd), SMTP_CMD_OK);
	assert_int_equal(cmd.arg_off, 8);
	assert_int_equal(cmd.arg_len, 5);

	l = "QUIT";
	assert_int_equal(smtp_cmd_parse(l, strlen(l), &cmd), SMTP_CMD_OK);
	assert_int_equal(cmd.arg_len, 0);

	assert_int_equal(smtp_cmd_parse("", 0, &cmd), SMTP_CMD_OK);
	assert_int_equal(cmd.verb, SMTP_VERB_EMPTY);
	assert_int_equal(cmd.arg_off, 0);
	assert_int_equal(cmd.arg_len, 0);
}

/* test_len_not_nul - only len counts: bytes after it are never read */
static void test_len_not_nul(void **state)
{
	struct smtp_cmd cmd;
	const char l[] = "NOOPX\r\n";

	assert_int_equal(smtp_cmd_parse(l, 4, &cmd), SMTP_CMD_OK);
	assert_int_equal(cmd.verb, SMTP_VERB_NOOP);
	assert_int_equal(smtp_cmd_parse(l, 5, &cmd), SMTP_CMD_OK);
	assert_int_equal(cmd.verb, SMTP_VERB_UNKNOWN);
	assert_int_equal(smtp_cmd_parse(l, 6, &cmd), SMTP_CMD_BAD_BYTES);
}

/* test_every_bad_byte - each byte value alone in an otherwise good line */
static void test_every_bad_byte(void **state)
{
	char line[] = "NOOP a?b";
	struct smtp_cmd cmd;
	unsigned c;

	for (c = 0; c < 256; c++) {
		enum smtp_cmd_status want = SMTP_CMD_OK;

		line[6] = (char)c;
		if (c != '\t' && (c < 0x20 || c >= 0x7f))
			want = SMTP_CMD_BAD_BYTES;
		assert_int_equal(smtp_cmd_parse(line, 8, &cmd), want);
		if (want == SMTP_CMD_OK)
			assert_int_equal(cmd.verb, SMTP_VERB_NOOP);
	}
}

/* test_long_lines - no length limit here, and no trouble with length */
static void test_long_lines(void **state)
{
	static char line[70000];
	struct smtp_cmd cmd;

	memcpy(line, "EHLO ", 5);
	memset(line + 5, 'a', sizeof(line) - 5);
	assert_int_equal(smtp_cmd_parse(line, SMTP_CMD_LINE_MAX - 2, &cmd),
	    SMTP_CMD_OK);
	assert_int_equal(cmd.verb, SMTP_VERB_EHLO);
	assert_int_equal(cmd.arg_len, SMTP_CMD_LINE_MAX - 2 - 5);
	assert_int_equal(smtp_cmd_parse(line, sizeof(line), &cmd),
	    SMTP_CMD_OK);
	assert_int_equal(cmd.arg_len, sizeof(line) - 5);

	/* a huge verb-like token is simply unknown */
	memset(line, 'M', sizeof(line));
	assert_int_equal(smtp_cmd_parse(line, sizeof(line), &cmd),
	    SMTP_CMD_OK);
	assert_int_equal(cmd.verb, SMTP_VERB_UNKNOWN);
	assert_int_equal(cmd.arg_len, 0);
}

/* test_verb_names - upper case, one per enum value */
static void test_verb_names(void **state)
{
	static const struct {
		enum smtp_verb v;
		const char *name;
	} names[] = {
		{ SMTP_VERB_EMPTY, "EMPTY" }, { SMTP_VERB_UNKNOWN, "UNKNOWN" },
		{ SMTP_VERB_HELO, "HELO" }, { SMTP_VERB_EHLO, "EHLO" },
		{ SMTP_VERB_MAIL, "MAIL" }, { SMTP_VERB_RCPT, "RCPT" },
		{ SMTP_VERB_DATA, "DATA" }, { SMTP_VERB_RSET, "RSET" },
		{ SMTP_VERB_NOOP, "NOOP" }, { SMTP_VERB_QUIT, "QUIT" },
		{ SMTP_VERB_HELP, "HELP" }, { SMTP_VERB_VRFY, "VRFY" },
		{ SMTP_VERB_EXPN, "EXPN" }, { SMTP_VERB_ETRN, "ETRN" },
		{ SMTP_VERB_ATRN, "ATRN" }, { SMTP_VERB_TURN, "TURN" },
		{ SMTP_VERB_AUTH, "AUTH" }, { SMTP_VERB_STARTTLS, "STARTTLS" },
		{ SMTP_VERB_BDAT, "BDAT" }, { SMTP_VERB_HTTP, "HTTP" },
	};
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		assert_string_equal(smtp_verb_name(names[i].v), names[i].name);
	assert_string_equal(smtp_verb_name((enum smtp_verb)999), "UNKNOWN");
}

/* test_name_roundtrip - each SMTP verb name parses back to its verb */
static void test_name_roundtrip(void **state)
{
	enum smtp_verb v;
	struct smtp_cmd cmd;

	for (v = SMTP_VERB_HELO; v <= SMTP_VERB_BDAT; v++) {
		char line[64];
		int n;

		if (v == SMTP_VERB_MAIL)
			n = snprintf(line, sizeof(line), "mail from:<>");
		else if (v == SMTP_VERB_RCPT)
			n = snprintf(line, sizeof(line), "rcpt to:<a@b>");
		else
			n = snprintf(line, sizeof(line), "%s x",
			    smtp_verb_name(v));
		assert_int_equal(smtp_cmd_parse(line, (size_t)n, &cmd),
		    SMTP_CMD_OK);
		assert_int_equal(cmd.verb, v);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_offsets),
		cmocka_unit_test(test_len_not_nul),
		cmocka_unit_test(test_every_bad_byte),
		cmocka_unit_test(test_long_lines),
		cmocka_unit_test(test_verb_names),
		cmocka_unit_test(test_name_roundtrip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
