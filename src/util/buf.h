/*
 * SUMMARY
 *	buf - growable byte buffer, always NUL-terminated
 * DESCRIPTION
 *	A struct buf holds len bytes at p, followed by a NUL that is not
 *	counted.  It grows by doubling; growth aborts on allocation failure.
 *	A zeroed struct buf is a valid empty buffer (BUF_INIT).
 * OWNERSHIP
 *	The struct's owner calls buf_free(); p may be taken over with
 *	buf_steal(), which leaves the buffer empty.
 */
#ifndef ETRND_UTIL_BUF_H
#define ETRND_UTIL_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct buf {
	char *p;
	size_t len;
	size_t cap;
};

#define BUF_INIT { NULL, 0, 0 }

void buf_reserve(struct buf *b, size_t extra);
void buf_append(struct buf *b, const void *data, size_t len);
void buf_puts(struct buf *b, const char *s);
void buf_putc(struct buf *b, char c);
void buf_printf(struct buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void buf_vprintf(struct buf *b, const char *fmt, va_list ap);
/* buf_reset - make empty, keep storage */
void buf_reset(struct buf *b);
/* buf_consume - drop the first n bytes */
void buf_consume(struct buf *b, size_t n);
/* buf_cstr - the contents as a C string (never NULL) */
const char *buf_cstr(const struct buf *b);
char *buf_steal(struct buf *b);
void buf_free(struct buf *b);

#endif
