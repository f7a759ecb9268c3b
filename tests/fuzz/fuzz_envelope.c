/* fuzz_envelope - libFuzzer target for envelope_decode() / envelope_encode():
 * any bytes decode or are refused cleanly; what decodes is canonical */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "queue/envelope.h"
#include "queue/queue.h"
#include "util/buf.h"

#define ID 0x0123456789abcdefULL

/* check_msg - what a decoded envelope promises */
static void check_msg(const struct queue_msg_in *m)
{
	size_t i;

	if (m->sender == NULL || m->nrcpt < 1 ||
	    m->nrcpt > ENVELOPE_MAX_RCPT || m->rcpts == NULL)
		abort();
	for (i = 0; i < m->nrcpt; i++) {
		const struct queue_rcpt_in *r = &m->rcpts[i];

		if (r->addr == NULL || r->domain == NULL ||
		    r->domain[0] == '\0')
			abort();
		if (r->state != QUEUE_R_QUEUED && r->state != QUEUE_R_HELD)
			abort();
	}
}

/* LLVMFuzzerTestOneInput - the input as an envelope */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct queue_msg_in *m = calloc(1, sizeof(*m));
	struct buf enc = BUF_INIT;

	if (m == NULL)
		abort();
	m->id = ID;
	m->body_fd = 7;		/* decode sets -1 */
	if (envelope_decode(data, size, m) == 0) {
		check_msg(m);
		/* encode(decode(x)) == x: one encoding per envelope */
		envelope_encode(&enc, m);
		if (enc.len != size || memcmp(enc.p, data, size) != 0)
			abort();
	} else {
		/* refused: nothing left set to free */
		if (m->sender != NULL || m->envid != NULL ||
		    m->client != NULL || m->helo != NULL ||
		    m->rcpts != NULL || m->nrcpt != 0)
			abort();
	}
	if (m->id != ID || m->body_fd != -1 || m->body.len != 0)
		abort();
	buf_free(&enc);
	queue_msg_free(m);
	return 0;
}
