/*
 * SUMMARY
 *	strutil - ASCII string helpers with explicit lengths
 * DESCRIPTION
 *	Locale-independent case folding and comparison, the reversed-label
 *	key of a domain (the queue's subdomain index), label-boundary domain
 *	matching and escaping of untrusted bytes for logs and replies.
 * OWNERSHIP
 *	Results are appended to a caller's struct buf; nothing is retained.
 */
#ifndef ETRND_UTIL_STRUTIL_H
#define ETRND_UTIL_STRUTIL_H

#include <stdbool.h>
#include <stddef.h>

#include "util/buf.h"

static inline char ascii_tolower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

static inline bool ascii_isalnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9');
}

void str_lower(char *s);
/* str_caseeq_n - s (len bytes) equals the NUL-terminated lit, ignoring case */
bool str_caseeq_n(const char *s, size_t len, const char *lit);
/* str_caseprefix - s (len bytes) begins with lit, ignoring case */
bool str_caseprefix(const char *s, size_t len, const char *lit);

/*
 * domain_rkey - append the reversed-label key of a lower-case domain:
 * "mail.example.org" gives "org.example.mail.".  Every key ends in a dot, so
 * the keys of a domain's subdomains are exactly those that begin with the
 * domain's key and are longer.
 */
void domain_rkey(struct buf *out, const char *dom, size_t len);

/*
 * domain_within - dom equals parent or is a subdomain of it, on label
 * boundaries, ignoring case ("a.example.org" is within "example.org";
 * "badexample.org" is not).
 */
bool domain_within(const char *dom, const char *parent);

/*
 * str_escape - append s with every byte outside printable ASCII, and the
 * backslash, written as \xHH; the result is safe in a log line or reply.
 */
void str_escape(struct buf *out, const char *s, size_t len);

/* str_parse_u64 - whole-string decimal parse with overflow check */
bool str_parse_u64(const char *s, size_t len, unsigned long long *out);

/*
 * str_next_line - the next line of [*p, end), ended by '\n' or by end: its
 * start, with its length (without the '\n') in *len; *p moves past it.
 * NULL when nothing is left (or *p is NULL).  For the rows of queue
 * queries and the like.
 */
const char *str_next_line(const char **p, const char *end, size_t *len);
/* str_copy_line - s[0..n) into out as a string, when 0 < n < size */
bool str_copy_line(char *out, size_t size, const char *s, size_t n);

#endif
