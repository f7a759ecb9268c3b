/* log - one key=value line per event, to stderr or syslog */
#include "log/log.h"
#include "util/buf.h"
#include "util/strutil.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <syslog.h>
#include <unistd.h>

static const char *log_prog = "etrnd";
static enum log_level log_min = LOG_LVL_INFO;
static int log_syslog;
static int log_pid;		/* etrnd does not fork: taken once */

static const char *const log_names[] = { "debug", "info", "warn", "error" };

void log_init(const char *progname, enum log_level min, int use_syslog)
{
	log_prog = progname;
	log_pid = (int)getpid();
	log_min = min;
	log_syslog = use_syslog;
	if (use_syslog)
		openlog(progname, LOG_PID | LOG_NDELAY, LOG_MAIL);
}

static void log_emit(enum log_level lvl, const char *fmt, va_list ap)
{
	static const int prio[] = { LOG_DEBUG, LOG_INFO, LOG_WARNING, LOG_ERR };
	struct buf b = BUF_INIT;

	if (!log_syslog)
		buf_printf(&b, "%s[%d]: ", log_prog,
		    log_pid ? log_pid : (int)getpid());
	buf_printf(&b, "level=%s ", log_names[lvl]);
	buf_vprintf(&b, fmt, ap);
	if (log_syslog) {
		syslog(prio[lvl], "%s", buf_cstr(&b));
	} else {
		buf_putc(&b, '\n');
		/* one write: lines from several threads stay whole */
		if (write(STDERR_FILENO, b.p, b.len) < 0) {
			/* nowhere left to report it */
		}
	}
	buf_free(&b);
}

void log_msg(enum log_level lvl, const char *fmt, ...)
{
	va_list ap;

	if (lvl < log_min)
		return;
	va_start(ap, fmt);
	log_emit(lvl, fmt, ap);
	va_end(ap);
}

void log_fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_emit(LOG_LVL_ERR, fmt, ap);
	va_end(ap);
	exit(1);
}

#define LOG_RING 8
static _Thread_local struct buf log_ring[LOG_RING];
static _Thread_local unsigned log_ring_next;

void log_thread_end(void)
{
	unsigned i;

	for (i = 0; i < LOG_RING; i++)
		buf_free(&log_ring[i]);
}

const char *log_value(const char *s, size_t len)
{
	struct buf *b = &log_ring[log_ring_next++ % LOG_RING];
	size_t i;
	int plain = len > 0;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c <= 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '=')
			plain = 0;
	}
	buf_reset(b);
	if (plain) {
		buf_append(b, s, len);
		return buf_cstr(b);
	}
	buf_putc(b, '"');
	for (i = 0; i < len; i++) {
		if (s[i] == '"') {
			buf_puts(b, "\\\"");
		} else {
			str_escape(b, s + i, 1);
		}
	}
	buf_putc(b, '"');
	return buf_cstr(b);
}
