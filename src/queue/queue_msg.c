/*
 * queue_msg - what every queue backend shares: freeing the structures of
 * queue.h, the names of states and statuses.
 */
#include "queue/queue.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

const char *queue_rstate_name(int st)
{
	static const char *const names[] = {
		"queued", "held", "deferred", "delivered", "failed", "corrupt"
	};

	return st >= 0 && st <= QUEUE_R_CORRUPT ? names[st] : "unknown";
}

bool queue_body_damaged(int body_error)
{
	return body_error == EBADMSG || body_error == ENOENT;
}

const char *queue_status_text(enum queue_status st)
{
	switch (st) {
	case QUEUE_OK:
		return "ok";
	case QUEUE_ETEMP:
		return "store error";
	case QUEUE_ENOSPC:
		return "insufficient storage";
	case QUEUE_ENOENT:
		return "no such message";
	case QUEUE_EINVAL:
		return "invalid argument";
	}
	return "unknown";
}

void queue_msg_free(struct queue_msg_in *m)
{
	size_t i;

	if (m == NULL)
		return;
	for (i = 0; i < m->nrcpt; i++) {
		free(m->rcpts[i].addr);
		free(m->rcpts[i].domain);
		free(m->rcpts[i].orcpt);
	}
	free(m->rcpts);
	free(m->sender);
	free(m->envid);
	free(m->client);
	free(m->helo);
	buf_free(&m->body);
	if (m->body_fd >= 0)
		close(m->body_fd);
	free(m);
}

void queue_batch_free(struct queue_batch *b)
{
	size_t i, k;

	if (b == NULL)
		return;
	for (i = 0; i < b->n; i++) {
		struct queue_item *it = &b->items[i];

		for (k = 0; k < it->nrcpt; k++) {
			free(it->rcpts[k].addr);
			free(it->rcpts[k].domain);
			free(it->rcpts[k].orcpt);
		}
		free(it->rcpts);
		free(it->sender);
		free(it->envid);
		buf_free(&it->body);
	}
	free(b->items);
	free(b);
}
