/*
 * SUMMARY
 *	qclock - the queue's clock, deaf to steps of the system clock
 * DESCRIPTION
 *	Everything the queue schedules by (message ids and arrival times,
 *	next tries, lifetimes, delay warnings, rate windows) reads this clock:
 *	the wall clock as read once at start-up, advanced by the monotonic
 *	clock since.  When the system clock is stepped while etrnd runs (NTP
 *	jumping two days forward, or back), queued mail neither expires in a
 *	storm nor waits for days: its times keep their meaning.  A restart
 *	takes the wall clock again.  Times shown to people (Received: dates,
 *	DSN dates) still come from the wall clock.
 *
 *	qclock_skew() - the wall clock minus this one: the sum of the steps
 *	seen since start-up (0 without steps), for the scheduler to log.
 *	Thread-safe once qclock_init() has run (at start-up, before threads);
 *	without it the first call anchors the clock.
 */
#ifndef ETRND_UTIL_QCLOCK_H
#define ETRND_UTIL_QCLOCK_H

#include <stdint.h>
#include <time.h>

void qclock_init(void);
time_t qclock_now(void);
uint64_t qclock_now_us(void);	/* microseconds since the epoch */
int64_t qclock_skew(void);	/* seconds */

#endif
