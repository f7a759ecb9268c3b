/*
 * test_smtpd_session - transcripts through the server state machine, no
 * sockets: each case feeds command lines and DATA bytes and checks the
 * exact replies and actions a client would see.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "config/config.h"
#include "log/log.h"
#include "smtpd/smtpd_session.h"

static const char conf_text[] =
    "hostname = relay.test\n"
    "queue_dir = /nonexistent\n"
    "hard_error_limit = 10\n"
    "max_recipients = 100\n"
    "[domain example.org]\n"
    "mode = hold\n"
    "subdomains = yes\n"
    "[domain example.net]\n";

struct fx {
	struct config *cfg;
	struct smtpd_session *s;
	struct buf out;
	bool room;
};

static bool fx_space(void *arg, uint64_t size)
{
	return ((struct fx *)arg)->room;
}

static struct fx *fx_new(bool tls)
{
	struct config_errors errs = { 0 };
	struct fx *f = calloc(1, sizeof(*f));
	struct smtpd_client cl = { .addr = "192.0.2.1", .family = AF_INET,
		.sid = "0000000000000001" };
	struct smtpd_env env = { fx_space, f, tls, false };

	f->room = true;
	f->cfg = config_parse(conf_text, strlen(conf_text), "test", &errs);
	assert_non_null(f->cfg);
	f->s = smtpd_session_new(f->cfg, &cl, &env);
	smtpd_session_greet(f->s, &f->out);
	assert_string_equal(buf_cstr(&f->out), "220 relay.test ESMTP etrnd\r\n");
	buf_reset(&f->out);
	return f;
}

static void fx_free(struct fx *f)
{
	smtpd_session_free(f->s);
	config_unref(f->cfg);
	buf_free(&f->out);
	free(f);
}

/* say - one command; returns its reply text and checks the action */
static const char *say(struct fx *f, const char *line, enum smtpd_action want)
{
	enum smtpd_action a;

	buf_reset(&f->out);
	a = smtpd_session_line(f->s, line, strlen(line), false, &f->out);
	assert_int_equal(a, want);
	return buf_cstr(&f->out);
}

static void expect_prefix(const char *got, const char *want)
{
	if (strncmp(got, want, strlen(want)) != 0)
		fail_msg("reply \"%s\" does not start with \"%s\"", got, want);
}

static void test_ehlo_lists_extensions(void **state)
{
	struct fx *f = fx_new(true);
	const char *r = say(f, "EHLO client.test", SMTPD_ACT_NONE);

	assert_string_equal(r, "250-relay.test\r\n250-PIPELINING\r\n"
	    "250-SIZE 10240000\r\n250-8BITMIME\r\n250-ENHANCEDSTATUSCODES\r\n"
	    "250-STARTTLS\r\n250-ETRN\r\n250 DSN\r\n");
	fx_free(f);
}

static void test_sequence_errors(void **state)
{
	struct fx *f = fx_new(false);

	expect_prefix(say(f, "MAIL FROM:<a@b.test>", SMTPD_ACT_NONE), "503 5.5.1");
	say(f, "EHLO c.test", SMTPD_ACT_NONE);
	expect_prefix(say(f, "RCPT TO:<u@example.org>", SMTPD_ACT_NONE), "503 5.5.1");
	expect_prefix(say(f, "DATA", SMTPD_ACT_NONE), "503 5.5.1");
	expect_prefix(say(f, "MAIL FROM:<a@b.test>", SMTPD_ACT_NONE), "250 2.1.0");
	expect_prefix(say(f, "MAIL FROM:<a@b.test>", SMTPD_ACT_NONE), "503 5.5.1");
	expect_prefix(say(f, "DATA", SMTPD_ACT_NONE), "503 5.5.1");
	expect_prefix(say(f, "STARTTLS", SMTPD_ACT_NONE), "502 5.5.1");
	expect_prefix(say(f, "RSET", SMTPD_ACT_NONE), "250 2.0.0");
	/* RSET cleared the transaction */
	expect_prefix(say(f, "RCPT TO:<u@example.org>", SMTPD_ACT_NONE), "503 5.5.1");
	/* errors so far: 503 x5, 502, 503; the tenth reaches the limit */
	expect_prefix(say(f, "BOGUS", SMTPD_ACT_NONE), "500 5.5.2");
	expect_prefix(say(f, "BOGUS", SMTPD_ACT_NONE), "500 5.5.2");
	expect_prefix(say(f, "BOGUS", SMTPD_ACT_CLOSE), "421 4.7.0");
	fx_free(f);
}

static void test_relay_control(void **state)
{
	struct fx *f = fx_new(false);

	say(f, "EHLO c.test", SMTPD_ACT_NONE);
	say(f, "MAIL FROM:<>", SMTPD_ACT_NONE);
	expect_prefix(say(f, "RCPT TO:<u@example.org>", SMTPD_ACT_NONE), "250 2.1.5");
	expect_prefix(say(f, "RCPT TO:<u@a.b.example.org>", SMTPD_ACT_NONE), "250 2.1.5");
	expect_prefix(say(f, "RCPT TO:<u@sub.example.net>", SMTPD_ACT_NONE), "550 5.7.1");
	expect_prefix(say(f, "RCPT TO:<u@badexample.org>", SMTPD_ACT_NONE), "550 5.7.1");
	expect_prefix(say(f, "RCPT TO:<u%evil.test@example.org>", SMTPD_ACT_NONE), "550 5.7.1");
	expect_prefix(say(f, "RCPT TO:<\"u@evil.test\"@example.org>", SMTPD_ACT_NONE), "550 5.7.1");
	expect_prefix(say(f, "RCPT TO:<u@[192.0.2.9]>", SMTPD_ACT_NONE), "550 5.7.1");
	expect_prefix(say(f, "RCPT TO:<evil.test!u@example.org>", SMTPD_ACT_NONE), "550 5.7.1");
	expect_prefix(say(f, "RCPT TO:<@example.org:u@evil.test>", SMTPD_ACT_NONE), "550 5.7.1");
	fx_free(f);
}

static void test_message_flow(void **state)
{
	static const char data[] = "Subject: t\r\n\r\n..dot\r\nend\r\n.\r\nQUIT\r\n";
	struct fx *f = fx_new(false);
	struct queue_msg_in *m;
	enum smtpd_action a;
	size_t used;

	say(f, "EHLO c.test", SMTPD_ACT_NONE);
	say(f, "MAIL FROM:<s@c.test> SIZE=100 RET=HDRS ENVID=e+2B1", SMTPD_ACT_NONE);
	say(f, "RCPT TO:<a@example.org> NOTIFY=FAILURE,DELAY ORCPT=rfc822;a@example.org",
	    SMTPD_ACT_NONE);
	say(f, "RCPT TO:<b@example.net>", SMTPD_ACT_NONE);
	say(f, "RCPT TO:<a@example.org>", SMTPD_ACT_NONE);	/* duplicate: kept once */
	expect_prefix(say(f, "DATA", SMTPD_ACT_DATA), "354 ");
	buf_reset(&f->out);
	used = smtpd_session_data(f->s, data, sizeof(data) - 1, &a, &f->out);
	assert_int_equal(a, SMTPD_ACT_QUEUE);
	assert_int_equal(used, sizeof(data) - 1 - strlen("QUIT\r\n"));
	m = smtpd_session_take_msg(f->s);
	assert_string_equal(m->sender, "s@c.test");
	assert_string_equal(m->envid, "e+1");
	assert_int_equal(m->nrcpt, 2);
	assert_string_equal(m->rcpts[0].addr, "a@example.org");
	assert_string_equal(m->rcpts[0].domain, "example.org");
	assert_int_equal(m->rcpts[0].state, QUEUE_R_HELD);	/* mode = hold */
	assert_string_equal(m->rcpts[0].orcpt, "rfc822;a@example.org");
	assert_int_equal(m->rcpts[1].state, QUEUE_R_QUEUED);
	assert_non_null(strstr(m->body.p, "Received: from c.test ([192.0.2.1])"));
	assert_non_null(strstr(m->body.p, "\r\n\r\n.dot\r\nend\r\n"));
	assert_int_equal(m->body.p[m->body.len - 1], '\n');
	queue_msg_free(m);
	buf_reset(&f->out);
	smtpd_session_queued(f->s, QUEUE_OK, &f->out);
	expect_prefix(buf_cstr(&f->out), "250 2.0.0 Ok: queued as ");
	/* the store refusing gives 452, never 250 */
	say(f, "MAIL FROM:<s@c.test>", SMTPD_ACT_NONE);
	say(f, "RCPT TO:<a@example.org>", SMTPD_ACT_NONE);
	say(f, "DATA", SMTPD_ACT_DATA);
	smtpd_session_data(f->s, ".\r\n", 3, &a, &f->out);
	assert_int_equal(a, SMTPD_ACT_QUEUE);
	queue_msg_free(smtpd_session_take_msg(f->s));
	buf_reset(&f->out);
	smtpd_session_queued(f->s, QUEUE_ENOSPC, &f->out);
	assert_string_equal(buf_cstr(&f->out), "452 4.3.1 Insufficient system storage\r\n");
	fx_free(f);
}

static void test_refusals_at_end_of_data(void **state)
{
	static const char *const bodies[] = {
		"a\nb\r\n.\r\n",			/* bare LF */
		"a\rb\r\n.\r\n",			/* bare CR */
		"x\n.\nMAIL FROM:<e@x>\r\n.\r\n",	/* smuggling attempt */
	};
	struct fx *f = fx_new(false);
	enum smtpd_action a;
	size_t i;

	say(f, "EHLO c.test", SMTPD_ACT_NONE);
	for (i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		say(f, "MAIL FROM:<s@c.test>", SMTPD_ACT_NONE);
		say(f, "RCPT TO:<a@example.org>", SMTPD_ACT_NONE);
		say(f, "DATA", SMTPD_ACT_DATA);
		buf_reset(&f->out);
		assert_int_equal(smtpd_session_data(f->s, bodies[i],
		    strlen(bodies[i]), &a, &f->out), strlen(bodies[i]));
		assert_int_equal(a, SMTPD_ACT_NONE);
		expect_prefix(buf_cstr(&f->out), "550 5.6.11");
	}
	/* the transaction is over: a new one may start */
	expect_prefix(say(f, "MAIL FROM:<s@c.test>", SMTPD_ACT_NONE), "250");
	fx_free(f);
}

static void test_storage_low_at_mail(void **state)
{
	struct fx *f = fx_new(false);

	say(f, "EHLO c.test", SMTPD_ACT_NONE);
	f->room = false;
	assert_string_equal(say(f, "MAIL FROM:<s@c.test>", SMTPD_ACT_NONE),
	    "452 4.3.1 Insufficient system storage\r\n");
	f->room = true;
	expect_prefix(say(f, "MAIL FROM:<s@c.test> SIZE=10240001", SMTPD_ACT_NONE),
	    "552 5.3.4");
	expect_prefix(say(f, "MAIL FROM:<s@c.test> SIZE=18446744073709551616",
	    SMTPD_ACT_NONE), "552 5.3.4");
	fx_free(f);
}

static void test_pipelining_needs_ehlo(void **state)
{
	struct fx *f = fx_new(false);
	enum smtpd_action a;

	buf_reset(&f->out);
	a = smtpd_session_line(f->s, "HELO c.test", 11, true, &f->out);
	assert_int_equal(a, SMTPD_ACT_CLOSE);
	expect_prefix(buf_cstr(&f->out), "554 5.5.0");
	fx_free(f);

	f = fx_new(false);
	say(f, "EHLO c.test", SMTPD_ACT_NONE);
	buf_reset(&f->out);
	a = smtpd_session_line(f->s, "MAIL FROM:<a@b.test>", 20, true, &f->out);
	assert_int_equal(a, SMTPD_ACT_NONE);
	fx_free(f);
}

static void test_starttls_resets_state(void **state)
{
	struct fx *f = fx_new(true);

	say(f, "EHLO c.test", SMTPD_ACT_NONE);
	expect_prefix(say(f, "STARTTLS now", SMTPD_ACT_NONE), "501 5.5.4");
	expect_prefix(say(f, "STARTTLS", SMTPD_ACT_STARTTLS), "220 2.0.0");
	smtpd_session_tls_started(f->s, "TLSv1.3");
	/* RFC 3207: the client must greet again */
	expect_prefix(say(f, "MAIL FROM:<a@b.test>", SMTPD_ACT_NONE), "503 5.5.1");
	assert_null(strstr(say(f, "EHLO c.test", SMTPD_ACT_NONE), "STARTTLS"));
	expect_prefix(say(f, "STARTTLS", SMTPD_ACT_NONE), "503 5.5.1");
	fx_free(f);
}

static void test_etrn_syntax_and_sequence(void **state)
{
	struct fx *f = fx_new(false);
	const struct smtp_etrn *e;

	expect_prefix(say(f, "ETRN example.org", SMTPD_ACT_NONE), "503 5.5.1");
	say(f, "EHLO c.test", SMTPD_ACT_NONE);
	assert_string_equal(say(f, "ETRN", SMTPD_ACT_NONE),
	    "500 5.5.2 Syntax Error\r\n");
	assert_string_equal(say(f, "ETRN a b", SMTPD_ACT_NONE),
	    "501 5.5.4 Syntax Error in Parameters\r\n");
	expect_prefix(say(f, "ETRN ../../etc/passwd", SMTPD_ACT_NONE), "501");
	expect_prefix(say(f, "ETRN x' OR '1'='1", SMTPD_ACT_NONE), "501");
	say(f, "ETRN @Example.ORG", SMTPD_ACT_ETRN);
	e = smtpd_session_etrn(f->s);
	assert_int_equal(e->kind, SMTP_ETRN_SUBTREE);
	assert_string_equal(e->name, "example.org");
	say(f, "ETRN #dialup", SMTPD_ACT_ETRN);
	assert_int_equal(smtpd_session_etrn(f->s)->kind, SMTP_ETRN_QUEUE);
	say(f, "MAIL FROM:<a@b.test>", SMTPD_ACT_NONE);
	expect_prefix(say(f, "ETRN example.org", SMTPD_ACT_NONE), "503 5.5.1");
	fx_free(f);
}

static void test_cross_protocol_and_junk(void **state)
{
	struct fx *f = fx_new(false);
	int i;

	expect_prefix(say(f, "GET / HTTP/1.1", SMTPD_ACT_CLOSE), "554 5.5.0");
	fx_free(f);
	f = fx_new(false);
	for (i = 0; i < 100; i++)
		say(f, "NOOP", SMTPD_ACT_NONE);
	expect_prefix(say(f, "NOOP", SMTPD_ACT_CLOSE), "421 4.7.0");
	fx_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ehlo_lists_extensions),
		cmocka_unit_test(test_sequence_errors),
		cmocka_unit_test(test_relay_control),
		cmocka_unit_test(test_message_flow),
		cmocka_unit_test(test_refusals_at_end_of_data),
		cmocka_unit_test(test_storage_low_at_mail),
		cmocka_unit_test(test_pipelining_needs_ehlo),
		cmocka_unit_test(test_starttls_resets_state),
		cmocka_unit_test(test_etrn_syntax_and_sequence),
		cmocka_unit_test(test_cross_protocol_and_junk),
	};

	log_init("test", LOG_LVL_WARN, 0);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
