/*
 * SUMMARY
 *	fault - named crash points for the durability tests
 * DESCRIPTION
 *	The tests prove "nothing accepted is lost" by killing etrnd at the
 *	moments that matter (SECURITY.md D1, D4).  A random kill rarely lands
 *	in a window of microseconds, so the windows have names:
 *
 *	  before_commit      records (bodies, envelopes) synced, nothing
 *	                     acknowledged, the rows not committed (the
 *	                     client has no 250)
 *	  after_ack          the 250s handed to the loop, the rows not
 *	                     committed; the kill waits 500 ms, so the
 *	                     client has its 250 (replayed at the restart)
 *	  after_commit       the rows committed
 *	  after_remote_250   the next hop said 250 to the dot; not yet marked
 *	  during_mark        outcomes written, their transaction not committed
 *	  after_mark         outcomes committed
 *
 *	ETRND_FAULT=NAME or NAME:N in the environment arms one point: its
 *	Nth passage (default the first) kills the process with SIGKILL, as
 *	kill -9 would.  Unset, a passage costs one comparison of a pointer.
 *	Any thread may pass a point.
 *
 *	Error points make a call fail instead (SECURITY.md D6), armed the
 *	same way; the Nth passage reports an error that the caller handles
 *	as the real one:
 *
 *	  sync_error         syncing a batch's bodies fails with EIO
 *	  rows_error         an acknowledged batch's rows fail to commit
 *	                     (they are kept and retried: the backlog)
 *
 *	Delay points make the passing thread wait:
 *
 *	  slow_rows          an acknowledged batch's rows wait 1 s before
 *	                     their commit (queries must wait for them)
 *	  slow_sync          a batch's records wait 2 s before their sync
 *	                     (its sessions wait for their 250 meanwhile)
 */
#ifndef ETRND_UTIL_FAULT_H
#define ETRND_UTIL_FAULT_H

#include <stdbool.h>

/* fault_init - read ETRND_FAULT; call once at start-up, before threads */
void fault_init(void);
/* fault_point - the named point is passed */
void fault_point(const char *name);
/* fault_point_after - the same, killing ms milliseconds after the
 * passage (while the other threads go on) */
void fault_point_after(const char *name, unsigned ms);
/* fault_delay - the named delay point: the Nth passage sleeps ms */
void fault_delay(const char *name, unsigned ms);
/* fault_error - the named error point is passed: true when it must fail */
bool fault_error(const char *name);

#endif
