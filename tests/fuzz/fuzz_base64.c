/* fuzz_base64 - libFuzzer target for base64_decode() / base64_encode():
 * both round trips, the unchanged buffer on failure, the exact size */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/base64.h"

/* LLVMFuzzerTestOneInput - the input as base64 text and as raw bytes */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data;
	struct buf dec = BUF_INIT, enc = BUF_INIT;
	size_t pad;

	/* decode(x), prefixed: an append that leaves the prefix alone */
	buf_puts(&dec, "pre");
	if (base64_decode(in, size, &dec)) {
		if (size % 4 != 0 || memcmp(dec.p, "pre", 3) != 0)
			abort();
		pad = size == 0 ? 0 : in[size - 1] != '=' ? 0 :
		    in[size - 2] != '=' ? 1 : 2;
		if (dec.len - 3 != BASE64_DECODED_MAX(size) - pad)
			abort();
		if (dec.p[dec.len] != '\0')
			abort();
		/* encode(decode(x)) == x: exactly one accepted encoding */
		base64_encode(dec.p + 3, dec.len - 3, &enc);
		if (enc.len != size || (size && memcmp(enc.p, in, size) != 0))
			abort();
	} else {
		if (dec.len != 3 || memcmp(dec.p, "pre", 4) != 0)
			abort();
		if (size == 0)
			abort();	/* the empty string is valid */
	}

	/* decode(encode(y)) == y */
	buf_reset(&enc);
	buf_reset(&dec);
	base64_encode(data, size, &enc);
	if (enc.len != BASE64_ENCODED_LEN(size))
		abort();
	if (!base64_decode(enc.p ? enc.p : "", enc.len, &dec))
		abort();
	if (dec.len != size || (size && memcmp(dec.p, data, size) != 0))
		abort();

	buf_free(&dec);
	buf_free(&enc);
	return 0;
}
