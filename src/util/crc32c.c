/* crc32c - CRC-32C (Castagnoli) of a byte range */
#include "util/crc32c.h"

#include <pthread.h>

static uint32_t crc32c_table[8][256];
static pthread_once_t crc32c_once = PTHREAD_ONCE_INIT;

/* crc32c_init - slicing-by-8 tables for the reflected polynomial */
static void crc32c_init(void)
{
	uint32_t i, k, c;

	for (i = 0; i < 256; i++) {
		c = i;
		for (k = 0; k < 8; k++)
			c = (c & 1) ? (c >> 1) ^ 0x82f63b78u : c >> 1;
		crc32c_table[0][i] = c;
	}
	for (i = 0; i < 256; i++) {
		c = crc32c_table[0][i];
		for (k = 1; k < 8; k++) {
			c = crc32c_table[0][c & 0xff] ^ (c >> 8);
			crc32c_table[k][i] = c;
		}
	}
}

#if defined(__x86_64__)
#include <string.h>

/* crc32c_hw - the SSE 4.2 instruction computes the same polynomial */
__attribute__((target("sse4.2")))
static uint32_t crc32c_hw(uint32_t crc, const unsigned char *s, size_t n)
{
	uint64_t c = ~crc;

	while (n >= 8) {
		uint64_t v;

		memcpy(&v, s, 8);
		c = __builtin_ia32_crc32di(c, v);
		s += 8;
		n -= 8;
	}
	while (n--)
		c = __builtin_ia32_crc32qi((uint32_t)c, *s++);
	return ~(uint32_t)c;
}

static int crc32c_has_hw = -1;
#endif

uint32_t crc32c(uint32_t crc, const void *p, size_t n)
{
#if defined(__x86_64__)
	if (crc32c_has_hw < 0)
		crc32c_has_hw = __builtin_cpu_supports("sse4.2") ? 1 : 0;
	if (crc32c_has_hw)
		return crc32c_hw(crc, p, n);
#endif
	return crc32c_sw(crc, p, n);
}

/* crc32c_sw - slicing-by-8 in software */
uint32_t crc32c_sw(uint32_t crc, const void *p, size_t n)
{
	const unsigned char *s = p;

	pthread_once(&crc32c_once, crc32c_init);
	crc = ~crc;
	while (n >= 8) {
		uint32_t lo = crc ^ ((uint32_t)s[0] | (uint32_t)s[1] << 8 |
		    (uint32_t)s[2] << 16 | (uint32_t)s[3] << 24);

		crc = crc32c_table[7][lo & 0xff] ^
		    crc32c_table[6][(lo >> 8) & 0xff] ^
		    crc32c_table[5][(lo >> 16) & 0xff] ^
		    crc32c_table[4][lo >> 24] ^
		    crc32c_table[3][s[4]] ^ crc32c_table[2][s[5]] ^
		    crc32c_table[1][s[6]] ^ crc32c_table[0][s[7]];
		s += 8;
		n -= 8;
	}
	while (n--)
		crc = crc32c_table[0][(crc ^ *s++) & 0xff] ^ (crc >> 8);
	return ~crc;
}
