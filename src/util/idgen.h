/*
 * SUMMARY
 *	idgen - unique, sortable message ids
 * DESCRIPTION
 *	An id is a 64-bit number: the queue's time (util/qclock.h) in
 *	microseconds, made
 *	strictly greater than every id handed out before (and than the floor
 *	given at start-up, the largest id in the queue), so ids stay unique
 *	and ordered by arrival even when the clock steps back.  Printed as 16
 *	upper-case hex digits (the qid= of the logs).
 *	Not thread-safe: the event loop thread alone calls idgen_next().
 */
#ifndef ETRND_UTIL_IDGEN_H
#define ETRND_UTIL_IDGEN_H

#include <stdbool.h>
#include <stdint.h>

#define IDGEN_HEX_LEN 16

void idgen_floor(uint64_t floor);
uint64_t idgen_next(void);
void idgen_format(uint64_t id, char out[IDGEN_HEX_LEN + 1]);
/* idgen_parse - 1..16 hex digits, either case */
bool idgen_parse(const char *s, uint64_t *id);

#endif
