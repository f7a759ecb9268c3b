/*
 * SUMMARY
 *	envelope - a message's envelope as bytes, stored after its body in
 *	the segment record
 * DESCRIPTION
 *	The record in the segment file is the message's commit: it holds the
 *	body and everything the rows say about the message when it is
 *	stored (sender, DSN parameters, arrival, client, HELO, and every
 *	recipient with its routed domain, NOTIFY, ORCPT and state).  At
 *	start-up the records past the database's watermark are replayed
 *	from it (queue_sqlite.c), so a reply of 250 needs only the record to
 *	be durable.
 *
 *	The format, all integers little-endian:
 *	  u8  version (1)
 *	  str sender          str: u32 length, then the bytes (no NUL)
 *	  ostr envid          ostr: as str, length 0xFFFFFFFF for NULL
 *	  u8  ret, u8 body8 (enum smtp_ret, enum smtp_body)
 *	  i64 arrival
 *	  ostr client, ostr helo
 *	  u32 number of recipients (1 to ENVELOPE_MAX_RCPT)
 *	  per recipient: str addr, str domain (not empty), u32 notify,
 *	    ostr orcpt, u8 state (QUEUE_R_QUEUED or QUEUE_R_HELD)
 *	Nothing may follow.  Strings hold no NUL byte.
 *
 *	Pure: no I/O.  envelope_decode() takes any bytes (it is fuzzed).
 * OWNERSHIP
 *	envelope_decode() fills a zeroed struct queue_msg_in that the caller
 *	frees with queue_msg_free(); on failure it frees what it set.
 */
#ifndef ETRND_QUEUE_ENVELOPE_H
#define ETRND_QUEUE_ENVELOPE_H

#include <stddef.h>

#include "queue/queue.h"
#include "util/buf.h"

#define ENVELOPE_VERSION 1
#define ENVELOPE_MAX_RCPT 100000u	/* max_recipients' upper bound */
#define ENVELOPE_MAX_STR 65536u		/* far above any SMTP limit */

/* envelope_encode - append m's envelope (not its body) to out */
void envelope_encode(struct buf *out, const struct queue_msg_in *m);

/*
 * envelope_decode - parse len bytes at p into m (id, body and body_fd
 * untouched; body_fd is set to -1).  0, or -1 when the bytes are not one
 * well-formed envelope (m then holds nothing to free).
 */
int envelope_decode(const void *p, size_t len, struct queue_msg_in *m);

#endif
