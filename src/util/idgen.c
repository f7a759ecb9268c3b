/* idgen - unique, sortable message ids */
#include "util/idgen.h"
#include "util/qclock.h"

#include <stdio.h>
#include <time.h>

static uint64_t idgen_last;

void idgen_floor(uint64_t floor)
{
	if (floor > idgen_last)
		idgen_last = floor;
}

uint64_t idgen_next(void)
{
	uint64_t now = qclock_now_us();

	idgen_last = now > idgen_last ? now : idgen_last + 1;
	return idgen_last;
}

void idgen_format(uint64_t id, char out[IDGEN_HEX_LEN + 1])
{
	snprintf(out, IDGEN_HEX_LEN + 1, "%016llX", (unsigned long long)id);
}

bool idgen_parse(const char *s, uint64_t *id)
{
	uint64_t v = 0;
	int n = 0;

	for (; *s; s++, n++) {
		char c = *s;
		unsigned d;

		if (c >= '0' && c <= '9')
			d = (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			d = (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			d = (unsigned)(c - 'A' + 10);
		else
			return false;
		if (n >= IDGEN_HEX_LEN)
			return false;
		v = (v << 4) | d;
	}
	if (n == 0)
		return false;
	*id = v;
	return true;
}
