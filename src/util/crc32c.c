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

uint32_t crc32c(uint32_t crc, const void *p, size_t n)
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
