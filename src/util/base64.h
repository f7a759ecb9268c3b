/*
 * SUMMARY
 *	base64 - strict RFC 4648 base64 (the SASL exchange of AUTH)
 * DESCRIPTION
 *	Pure: no I/O, no logging.  The decoder accepts exactly what the
 *	encoder produces and nothing else (SECURITY.md P15, RFC 4954 4):
 *	  - the standard alphabet A-Z a-z 0-9 + / only: no URL-safe
 *	    alphabet, no white space, no line breaks;
 *	  - a length that is a multiple of 4: padding is required, so a
 *	    length of 4n+1, 4n+2 or 4n+3 is an error;
 *	  - "=" only as the last one or two characters of the input;
 *	  - the bits left over in a padded quantum must be zero (RFC 4648
 *	    3.5), so every byte string has exactly one accepted encoding.
 *	The empty string is valid and decodes to nothing.  The size of the
 *	output is computed from the input before anything is written, and
 *	room for exactly that many bytes is reserved (the lesson of Exim
 *	CVE-2018-6789).
 * OWNERSHIP
 *	Results are appended to the caller's struct buf.  On failure the
 *	buffer is left unchanged (neither its length nor its bytes).  The
 *	decoder reserves room once, before it writes: a caller decoding a
 *	secret into an empty buffer gets no stale copy from a reallocation,
 *	and wipes that buffer itself when done.
 */
#ifndef ETRND_UTIL_BASE64_H
#define ETRND_UTIL_BASE64_H

#include <stdbool.h>
#include <stddef.h>

#include "util/buf.h"

/* base64_decoded_max - the largest output a len-byte input can decode to */
#define BASE64_DECODED_MAX(len)	(((len) / 4) * 3)
/* base64_encoded_len - the exact length of the encoding of len bytes */
#define BASE64_ENCODED_LEN(len)	((((len) + 2) / 3) * 4)

/*
 * base64_decode - decode in[0..len) and append the bytes to out.  Returns
 * false, with out unchanged, on any deviation from the rules above.  in
 * need not be NUL-terminated; a NUL byte in it is an invalid character.
 */
bool base64_decode(const char *in, size_t len, struct buf *out);

/* base64_encode - append the padded encoding of in[0..len) to out */
void base64_encode(const void *in, size_t len, struct buf *out);

#endif
