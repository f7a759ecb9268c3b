/*
 * SUMMARY
 *	queue_check - a damaged queue database: detect it, set it aside,
 *	salvage what it still holds
 * DESCRIPTION
 *	Used by queue_open() at start-up, before the store's threads run;
 *	every call may block on disk.
 *
 *	queue_check_cut() - whether the database file is shorter than its
 *	own header says (truncated), from the 100-byte header alone: cheap
 *	enough for every start.  A database that is gone or emptier than a
 *	header, with no write-ahead log to rebuild it from, while segment
 *	files exist, is cut too: starting empty would lose that mail.  A flipped byte inside a page is found by
 *	PRAGMA quick_check, which the store runs in the background after
 *	start-up (too slow for a big queue's start); it leaves the marker
 *	file QUEUE_CHECK_MARKER so that the next start salvages.
 *
 *	queue_salvage() - move queue.db (and its -wal and -shm) into
 *	<queue_dir>/quarantine/<UTC time>/, create a fresh database with
 *	schema, and copy into it every row the damaged one still yields
 *	(each table read forwards and backwards, so rows on both sides of a
 *	bad page survive).  Messages whose recipients were all lost are
 *	listed in the log, not kept.  The segment files stay where they are:
 *	the salvaged rows point at them.  The quarantine directory's path is
 *	left in qdir: segments no salvaged row points at go there too
 *	(queue_open), so nothing acknowledged is ever deleted.
 */
#ifndef ETRND_QUEUE_CHECK_H
#define ETRND_QUEUE_CHECK_H

#include <stdbool.h>
#include <stdint.h>

#include "util/buf.h"

#define QUEUE_CHECK_MARKER "salvage-at-start"
#define QUEUE_CHECK_CHUNK 2000	/* messages per step of the scrub */

struct sqlite3;

/*
 * queue_check_chunk - one step of the background check after start-up,
 * on a reader's connection db: the first step (after == 0) runs PRAGMA
 * quick_check and, when it finds damage, writes the marker file under
 * dir; then the segment records of up to QUEUE_CHECK_CHUNK messages with
 * ids above after are checked (segment_check()).  Rows appended to out:
 *   db<TAB>what quick_check says       (damage in the database)
 *   bad<TAB>msg id<TAB>rcpt row<TAB>errno  (a pending recipient of a
 *                                        message whose record is bad)
 *   end<TAB>last msg id<TAB>messages checked
 * Returns an SQLite result code.
 */
int queue_check_chunk(struct sqlite3 *db, const char *dir, const char *segdir,
    uint64_t after, struct buf *out);

bool queue_check_cut(const char *dir, const char *dbname, struct buf *why);
int queue_salvage(const char *dir, const char *dbname, const char *schema,
    struct buf *qdir, struct buf *err);

#endif
