/*
 * SUMMARY
 *	segment - append-only body files of the queue
 * DESCRIPTION
 *	Message bodies live in numbered segment files under <queue_dir>/seg.
 *	Each message is one record: a 40-byte header, its body, then its
 *	envelope (queue/envelope.h).  The header, little-endian: magic "ETQ2",
 *	u32 body length, u64 message id, u32 CRC-32C of the body, u32 number
 *	of the segment file it was written to, u32 envelope length, u32
 *	CRC-32C of the envelope, u32 zero, u32 CRC-32C of the first 36 bytes.
 *	The file number tells a record from the old content of a recycled
 *	file.  Records of the first format ("ETQ1", a 24-byte header, no
 *	envelope) are still read.  Readers of bodies never look at the envelope; it is there for
 *	segment_scan(), which rebuilds the rows of records that the database
 *	lost (queue_sqlite.c: the watermark).
 *
 *	Syncing a batch.  On ext2/3/4 and XFS, when the queue's database and
 *	the segments are on one device, the writer keeps zeroed, synced space
 *	ahead of its append offset (segment_prepare(), between batches, or a
 *	recycled segment file).  Records written there change no metadata,
 *	so segment_sync() only writes them to the device and waits for that
 *	(sync_file_range); the cache flush of the commit that follows (SQLite
 *	syncs its WAL) then makes them durable with the rows: one flush per
 *	batch instead of two or three.  Anywhere else, and for records past
 *	the prepared space, it is fdatasync, as before.
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

#define SEGMENT_HDR_LEN 40
#define SEGMENT_ENV_MAX (64u << 20)	/* an envelope's bytes at most (some
					 * 50,000 recipients of the longest
					 * addresses and ORCPTs) */
#define SEGMENT_MAX_BYTES (64u << 20)	/* start a new file past this */
#define SEGMENT_PREP_BYTES (4u << 20)	/* zeroed ahead at a time */
#define SEGMENT_PREP_LOW (2u << 20)	/* ... when less than this is left */
#define SEGMENT_SPARE "spare"		/* a retired file kept for reuse */

struct segment_writer {
	char *dir;		/* <queue_dir>/seg */
	int dirfd;
	int fd;			/* current segment, or -1 */
	uint32_t id;		/* its number */
	uint64_t off;		/* next append offset */
	bool need_dirsync;	/* created since the last sync */
	bool broken;		/* a write or sync failed: never append again */
	bool shared_flush;	/* the commit's flush may cover our writes */
	bool prep_failed;	/* zeroing ahead failed: not again in this file */
	bool ever_broken;	/* a file failed: no file is reused any more */
	uint64_t ready;		/* [0, ready) is allocated and durable */
	uint64_t synced;	/* [0, synced) is synced */
	/* records appended, not yet written: [pend_at, off) of the file */
	uint64_t pend_at;
	struct buf pend_meta;	/* their headers and envelopes */
	struct segment_piece *pend;	/* in file order */
	size_t npend, pend_cap;
};

/* one piece of a gathered write: bytes of the caller (p) or of pend_meta
 * (p NULL, at meta) */
struct segment_piece {
	const void *p;
	size_t meta;
	size_t len;
};

/* segment_path - "<dir>/<id as 8 hex digits>.seg" */
void segment_path(struct buf *out, const char *dir, uint32_t id);
/* segment_spare_path - "<dir>/spare" */
void segment_spare_path(struct buf *out, const char *dir);

/*
 * segment_writer_init - the writer of <dir>, next file next_id.  shared
 * says whether the commit's cache flush reaches the segments (the caller
 * knows where its database lives); it is used only on file systems where
 * an overwrite of written blocks changes no metadata.
 */
int segment_writer_init(struct segment_writer *w, const char *dir,
    uint32_t next_id, bool shared);
void segment_writer_close(struct segment_writer *w);

/*
 * segment_append - append one record for message id: the header, then
 * the body, mem (memlen bytes) and fdlen bytes read from fd at offset 0,
 * then the envelope's envlen bytes.  Sets *seg, *off (of the record) and
 * *crc (of the body).  Returns 0 or an errno value: EFBIG, with nothing
 * written, for a body over 4 GB or an envelope over SEGMENT_ENV_MAX;
 * after any other error the writer is broken and the next append opens a
 * new file.
 *
 * A record whose body is all in memory is only gathered: the records of
 * a batch go to the file in one pwritev, at the next segment_write_out()
 * or segment_sync() (a batch of 12 messages: one system call, not 12).
 * mem must stay valid until then, or until an append returns an error
 * (what was gathered is then written, for EFBIG, or dropped with the
 * broken file); env is copied.  Write errors of gathered records show
 * there.
 */
int segment_append(struct segment_writer *w, uint64_t id, const void *mem,
    size_t memlen, int fd, uint64_t fdlen, const void *env, size_t envlen,
    uint32_t *seg, uint64_t *off, uint32_t *crc);

/*
 * segment_sync - make every record appended since the last call durable
 * (fdatasync), or, with may_share and when *flush is set on return,
 * written to the device in prepared space, so that the caller's next
 * cache flush on the same device (its commit) makes them durable.  0 or
 * an errno value.
 */
int segment_sync(struct segment_writer *w, bool may_share, bool *flush);

/* segment_next_pos - where the next record will go: every record
 * appended so far lies before (*seg, *off) */
void segment_next_pos(const struct segment_writer *w, uint32_t *seg,
    uint64_t *off);

/* segment_write_out - write the gathered records, and start writing the
 * records appended since the last sync to the device, without waiting
 * (segment_sync waits).  0 or the errno value of the write (the writer
 * is broken then) */
int segment_write_out(struct segment_writer *w);

/*
 * segment_prepare - between batches: when the current file has less than
 * SEGMENT_PREP_LOW bytes of prepared space left, write and sync zeros for
 * SEGMENT_PREP_BYTES more.  A failure (a full disk) only stops it for
 * this file.  Nothing when shared flushes are off.
 */
void segment_prepare(struct segment_writer *w);

/*
 * segment_retire - a file none of whose records is needed any more:
 * kept as the spare, whose written blocks the next new file reuses, when
 * there is none yet and shared flushes are on, and no file has failed
 * a write or sync since the start (a failed file's blocks are never
 * written again); else removed.  0 or errno.
 */
int segment_retire(struct segment_writer *w, uint32_t id);

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

/*
 * segment_scan - every whole, verified record (header, body and envelope
 * checksums, its own file number) of the files numbered from_seg and up,
 * in order: from from_off in file from_seg, from 0 in later ones.  In each
 * file the scan stops at the first bytes that are not such a record (the
 * end of what was written, prepared zeros, a recycled file's old
 * records).  fn(arg, rec) runs for each; rec->env is valid during the
 * call only.  A non-zero return of fn stops the scan and is returned;
 * else 0, or the errno of a file that could not be read.
 */
struct segment_rec {
	uint32_t seg;
	uint64_t off;		/* of the record */
	uint64_t end;		/* just past it */
	uint64_t id, len;	/* message id, body length */
	uint32_t crc;		/* of the body */
	const void *env;
	size_t envlen;
};

typedef int segment_scan_fn(void *arg, const struct segment_rec *rec);
int segment_scan(const char *dir, uint32_t from_seg, uint64_t from_off,
    segment_scan_fn *fn, void *arg);

#endif
