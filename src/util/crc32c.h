/*
 * SUMMARY
 *	crc32c - CRC-32C (Castagnoli) of a byte range
 * DESCRIPTION
 *	Used for the queue's segment records: a record is trusted only when
 *	its checksum verifies.  crc32c(0, p, n) starts a checksum; pass the
 *	previous result to continue it over more bytes.
 */
#ifndef ETRND_UTIL_CRC32C_H
#define ETRND_UTIL_CRC32C_H

#include <stddef.h>
#include <stdint.h>

uint32_t crc32c(uint32_t crc, const void *p, size_t n);
/* crc32c_sw - the same in portable software (crc32c() uses the CPU's
 * instruction where there is one) */
uint32_t crc32c_sw(uint32_t crc, const void *p, size_t n);

#endif
