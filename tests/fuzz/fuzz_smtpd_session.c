/*
 * fuzz_smtpd_session - whole SMTP sessions through the server's state
 * machine: the input is a transcript (lines in command mode, raw bytes in
 * DATA mode), fed the way the glue feeds a socket.  Whatever the client
 * sends, every reply is well formed (three digits, a space or hyphen,
 * CRLF-terminated lines), a stored message only ever holds recipients the
 * policy accepted, and nothing leaks or crashes (ASan, UBSan, LSan).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "log/log.h"
#include "smtp/smtp_cmd.h"
#include "smtpd/smtpd_session.h"

static struct config *cfg;

static const char conf_text[] =
    "hostname = relay.test\n"
    "queue_dir = /nonexistent\n"
    "hard_error_limit = 50\n"
    "max_recipients = 100\n"
    "message_size_limit = 64k\n"
    "[domain example.org]\n"
    "mode = hold\n"
    "subdomains = yes\n"
    "[domain example.net]\n";

static bool room(void *arg, uint64_t size)
{
	return *(const bool *)arg;
}

/* check_replies - every line: 3 digits, ' ' or '-', text, CRLF */
static void check_replies(const struct buf *out)
{
	const char *p = out->p, *end = p ? p + out->len : NULL;

	while (p && p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n;

		if (nl == NULL || nl == p || nl[-1] != '\r')
			abort();
		n = (size_t)(nl - p) - 1;
		if (n < 3 || p[0] < '2' || p[0] > '5' || p[1] < '0' ||
		    p[1] > '9' || p[2] < '0' || p[2] > '9' ||
		    (n > 3 && p[3] != ' ' && p[3] != '-'))
			abort();
		for (size_t i = 0; i < n; i++)
			if ((unsigned char)p[i] < 0x20 || (unsigned char)p[i] > 0x7e)
				abort();
		p = nl + 1;
	}
}

static void check_msg(const struct queue_msg_in *m)
{
	size_t i;

	for (i = 0; i < m->nrcpt; i++) {
		const char *d = m->rcpts[i].domain;
		size_t n = strlen(d);

		if (!(strcmp(d, "example.org") == 0 ||
		    strcmp(d, "example.net") == 0 ||
		    (n > 12 && strcmp(d + n - 12, ".example.org") == 0)))
			abort();
		if (strpbrk(m->rcpts[i].addr, "%!") != NULL)
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smtpd_client cl = { .addr = "192.0.2.1", .family = 2,
		.sid = "FUZZ" };
	bool space = true;
	struct smtpd_env env = { room, &space, true, false };
	struct smtpd_session *s;
	struct buf out = BUF_INIT;
	const char *p = (const char *)data, *end = p + size;
	bool data_mode = false;

	if (cfg == NULL) {
		struct config_errors errs = { 0 };

		log_init("fuzz", LOG_LVL_ERR + 1, 0);
		cfg = config_parse(conf_text, strlen(conf_text), "fuzz", &errs);
		if (cfg == NULL)
			abort();
	}
	s = smtpd_session_new(cfg, &cl, &env);
	smtpd_session_greet(s, &out);
	while (p < end) {
		enum smtpd_action act;

		if (data_mode) {
			size_t used = smtpd_session_data(s, p, (size_t)(end - p),
			    &act, &out);

			p += used;
			if (act == SMTPD_ACT_QUEUE) {
				struct queue_msg_in *m = smtpd_session_take_msg(s);

				check_msg(m);
				queue_msg_free(m);
				/* the store answers per the next input byte */
				smtpd_session_queued(s, p < end && (*p & 1) ?
				    QUEUE_ENOSPC : QUEUE_OK, &out);
			}
			if (act != SMTPD_ACT_DATA)
				data_mode = false;
			else if (used == 0)
				break;
			continue;
		}
		{
			const char *nl = memchr(p, '\n', (size_t)(end - p));
			size_t len = (size_t)((nl ? nl : end) - p);

			if (len > 0 && p[len - 1] == '\r')
				len--;
			if (len + 2 > SMTP_CMD_LINE_MAX)
				act = smtpd_session_line_error(s,
				    SMTPD_LINE_TOO_LONG, &out);
			else
				act = smtpd_session_line(s, p, len,
				    nl != NULL && nl + 1 < end, &out);
			p = nl ? nl + 1 : end;
		}
		switch (act) {
		case SMTPD_ACT_CLOSE:
			p = end;
			break;
		case SMTPD_ACT_STARTTLS:
			smtpd_session_tls_started(s, "TLSv1.3");
			break;
		case SMTPD_ACT_DATA:
			data_mode = true;
			break;
		default:
			break;
		}
		space = !space || (size & 1);	/* the disk fills and frees */
	}
	check_replies(&out);
	smtpd_session_free(s);
	buf_free(&out);
	return 0;
}
