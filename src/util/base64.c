/* base64 - strict RFC 4648 base64 */
#include "util/base64.h"

static const char alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* b64_value - the 6-bit value of an alphabet character, -1 for others */
static int b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* base64_decode - strict decode; out unchanged on failure */
bool base64_decode(const char *in, size_t len, struct buf *out)
{
	const unsigned char *s = (const unsigned char *)in;
	size_t pad = 0, data, outlen, i, o;
	unsigned char *dst;

	if (len == 0)
		return true;
	if (len % 4 != 0)
		return false;
	if (s[len - 1] == '=')
		pad = s[len - 2] == '=' ? 2 : 1;
	data = len - pad;

	/*
	 * First pass: validate everything, so that nothing is written unless
	 * the whole input is good.  A third "=" from the end is caught here:
	 * it lies inside the data part, where "=" is not in the alphabet.
	 */
	for (i = 0; i < data; i++) {
		if (b64_value(s[i]) < 0)
			return false;
	}
	/* The bits the padding leaves over must be zero (RFC 4648 3.5). */
	if (pad == 1 && (b64_value(s[data - 1]) & 0x03) != 0)
		return false;
	if (pad == 2 && (b64_value(s[data - 1]) & 0x0f) != 0)
		return false;

	outlen = len / 4 * 3 - pad;
	buf_reserve(out, outlen);
	dst = (unsigned char *)out->p + out->len;
	o = 0;
	for (i = 0; i < len; i += 4) {
		unsigned v0 = (unsigned)b64_value(s[i]);
		unsigned v1 = (unsigned)b64_value(s[i + 1]);
		unsigned v2 = i + 2 < data ? (unsigned)b64_value(s[i + 2]) : 0;
		unsigned v3 = i + 3 < data ? (unsigned)b64_value(s[i + 3]) : 0;
		unsigned long q = (unsigned long)v0 << 18 | v1 << 12 |
		    v2 << 6 | v3;

		dst[o++] = (unsigned char)(q >> 16);
		if (i + 2 < data)
			dst[o++] = (unsigned char)(q >> 8);
		if (i + 3 < data)
			dst[o++] = (unsigned char)q;
	}
	out->len += o;
	out->p[out->len] = '\0';
	return true;
}

/* base64_encode - append the padded encoding */
void base64_encode(const void *in, size_t len, struct buf *out)
{
	const unsigned char *s = in;
	size_t i, o = 0;
	char *dst;

	if (len == 0)
		return;
	buf_reserve(out, BASE64_ENCODED_LEN(len));
	dst = out->p + out->len;
	for (i = 0; i + 3 <= len; i += 3) {
		unsigned long q = (unsigned long)s[i] << 16 |
		    (unsigned long)s[i + 1] << 8 | s[i + 2];

		dst[o++] = alphabet[q >> 18 & 63];
		dst[o++] = alphabet[q >> 12 & 63];
		dst[o++] = alphabet[q >> 6 & 63];
		dst[o++] = alphabet[q & 63];
	}
	if (len - i == 1) {
		unsigned long q = (unsigned long)s[i] << 16;

		dst[o++] = alphabet[q >> 18 & 63];
		dst[o++] = alphabet[q >> 12 & 63];
		dst[o++] = '=';
		dst[o++] = '=';
	} else if (len - i == 2) {
		unsigned long q = (unsigned long)s[i] << 16 |
		    (unsigned long)s[i + 1] << 8;

		dst[o++] = alphabet[q >> 18 & 63];
		dst[o++] = alphabet[q >> 12 & 63];
		dst[o++] = alphabet[q >> 6 & 63];
		dst[o++] = '=';
	}
	out->len += o;
	out->p[out->len] = '\0';
}
