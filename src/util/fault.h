/*
 * SUMMARY
 *	fault - named crash points for the durability tests
 * DESCRIPTION
 *	The tests prove "nothing accepted is lost" by killing etrnd at the
 *	moments that matter (SECURITY.md D1, D4).  A random kill rarely lands
 *	in a window of microseconds, so the windows have names:
 *
 *	  before_commit      bodies synced, the accepting transaction not
 *	                     yet committed (the client has no 250)
 *	  after_commit       committed, the 250 not yet sent
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
 */
#ifndef ETRND_UTIL_FAULT_H
#define ETRND_UTIL_FAULT_H

#include <stdbool.h>

/* fault_init - read ETRND_FAULT; call once at start-up, before threads */
void fault_init(void);
/* fault_point - the named point is passed */
void fault_point(const char *name);
/* fault_error - the named error point is passed: true when it must fail */
bool fault_error(const char *name);

#endif
