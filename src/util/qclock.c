#include "util/qclock.h"

#include <stdbool.h>

static bool qclock_anchored;
static int64_t qclock_base_us;	/* wall - monotonic, at the anchor */

static int64_t qclock_read_us(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void qclock_init(void)
{
	qclock_base_us = qclock_read_us(CLOCK_REALTIME) -
	    qclock_read_us(CLOCK_MONOTONIC);
	qclock_anchored = true;
}

uint64_t qclock_now_us(void)
{
	if (!qclock_anchored)
		qclock_init();
	return (uint64_t)(qclock_base_us + qclock_read_us(CLOCK_MONOTONIC));
}

time_t qclock_now(void)
{
	return (time_t)(qclock_now_us() / 1000000u);
}

int64_t qclock_skew(void)
{
	int64_t d = qclock_read_us(CLOCK_REALTIME) - (int64_t)qclock_now_us();

	return (d + (d < 0 ? -500000 : 500000)) / 1000000;	/* rounded */
}
