/*
 * SUMMARY
 *	log - one key=value line per event, to stderr or syslog
 * DESCRIPTION
 *	log_msg(level, "event=accept sid=%s client=%s", ...) writes
 *	"level=info event=accept sid=... client=..." as one write(2), so lines
 *	from the queue threads never interleave with the loop's.  Values that
 *	came from the network must be passed through log_value() (or
 *	str_escape), which quotes and escapes them.
 * OWNERSHIP
 *	log_value() returns a pointer into a per-thread ring of buffers, valid
 *	until eight more calls on the same thread.
 */
#ifndef ETRND_LOG_H
#define ETRND_LOG_H

#include <stddef.h>

enum log_level { LOG_LVL_DEBUG, LOG_LVL_INFO, LOG_LVL_WARN, LOG_LVL_ERR };

void log_init(const char *progname, enum log_level min, int use_syslog);
void log_msg(enum log_level lvl, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void log_fatal(const char *fmt, ...)
	__attribute__((format(printf, 1, 2), noreturn));
/* log_value - s (len bytes, from the network) quoted and escaped for a line */
const char *log_value(const char *s, size_t len);
/* log_thread_end - free this thread's log_value() buffers: the last call
 * of a thread that used them */
void log_thread_end(void);

#define log_debug(...)	log_msg(LOG_LVL_DEBUG, __VA_ARGS__)
#define log_info(...)	log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_warn(...)	log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_err(...)	log_msg(LOG_LVL_ERR, __VA_ARGS__)

#endif
