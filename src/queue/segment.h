/*
 * SUMMARY
 *	segment - append-only body files of the queue
 * DESCRIPTION
 *	Message bodies live in numbered segment files under <queue_dir>/seg.
 *	Each body is one record: a 24-byte header (magic "ETQ1", body length,
 *	message id, CRC-32C of the body, CRC-32C of the header's first 20
 *	bytes) followed by the body.  The writer appends records, syncs the
 *	file once per batch, and only then commits the rows that point at
 *	them, so a row never points at unsynced bytes; bytes that no row
 *	points at (a crash between the sync and the commit) are never read
 *	and vanish when their segment is removed.
 *
 *	Used by the queue's threads only: every call may block on disk.
 * OWNERSHIP
 *	segment_read() appends to the caller's buffer.
 */
#ifndef ETRND_QUEUE_SEGMENT_H
#define ETRND_QUEUE_SEGMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

#define SEGMENT_HDR_LEN 24
#define SEGMENT_MAX_BYTES (64u << 20)	/* start a new file past this */

struct segment_writer {
	char *dir;		/* <queue_dir>/seg */
	int dirfd;
	int fd;			/* current segment, or -1 */
	uint32_t id;		/* its number */
	uint64_t off;		/* next append offset */
	bool need_dirsync;	/* created since the last sync */
	bool broken;		/* a write or sync failed: never append again */
};

/* segment_path - "<dir>/<id as 8 hex digits>.seg" */
void segment_path(struct buf *out, const char *dir, uint32_t id);

int segment_writer_init(struct segment_writer *w, const char *dir,
    uint32_t next_id);
void segment_writer_close(struct segment_writer *w);

/*
 * segment_append - append one record for message id: the header, then
 * mem (memlen bytes), then fdlen bytes read from fd at offset 0.  Sets
 * *seg, *off (of the record) and *crc.  Returns 0 or an errno value; after
 * an error the writer is broken and the next append opens a new file.
 */
int segment_append(struct segment_writer *w, uint64_t id, const void *mem,
    size_t memlen, int fd, uint64_t fdlen, uint32_t *seg, uint64_t *off,
    uint32_t *crc);

/* segment_sync - make every appended record durable; 0 or errno */
int segment_sync(struct segment_writer *w);

/*
 * segment_read - read and verify the record at (seg, off) of message id
 * with body length len and checksum crc; the body is appended to out.
 * Returns 0, or an errno value (EBADMSG when the record does not verify).
 */
int segment_read(const char *dir, uint32_t seg, uint64_t off, uint64_t id,
    uint64_t len, uint32_t crc, struct buf *out);

/*
 * segment_check - whether the record of message id at (seg, off) is
 * there: its file exists, is long enough, and the header verifies (the
 * body's checksum is verified when it is read).  0, ENOENT (no file),
 * EBADMSG (damaged or cut short) or another errno.  A cursor keeps the
 * last segment open, for checks in segment order.
 */
struct segment_cursor {
	const char *dir;
	uint32_t seg;
	bool open;
	int fd;
	int err;		/* when fd < 0 */
	uint64_t size;
};

void segment_cursor_init(struct segment_cursor *c, const char *dir);
void segment_cursor_close(struct segment_cursor *c);
int segment_check(struct segment_cursor *c, uint32_t seg, uint64_t off,
    uint64_t id, uint64_t len, uint32_t crc);

#endif
