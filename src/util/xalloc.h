/*
 * SUMMARY
 *	xalloc - allocation that succeeds or never returns
 * DESCRIPTION
 *	Every function aborts the process with a message on stderr when the
 *	allocator fails.  Callers never check for NULL.
 * OWNERSHIP
 *	The caller owns and frees every returned pointer with free().
 */
#ifndef ETRND_UTIL_XALLOC_H
#define ETRND_UTIL_XALLOC_H

#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
/* xmemdup0 - copy len bytes and add a terminating NUL */
char *xmemdup0(const void *p, size_t len);

#endif
