/* inbox — typed cross-thread hand-off; see include/meshd/inbox.h. */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "meshd/inbox.h"
#include "meshd/metrics.h"
#include "meshd/log.h"

bool inbox_init(struct inbox *in)
{
	in->head = in->tail = NULL;
	in->depth = 0;
	in->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (in->efd < 0)
		return false;
	if (pthread_mutex_init(&in->lock, NULL) != 0) {
		close(in->efd);
		return false;
	}
	return true;
}

void inbox_destroy(struct inbox *in)
{
	pthread_mutex_destroy(&in->lock);
	if (in->efd >= 0)
		close(in->efd);
	in->efd = -1;
}

void inbox_push(struct inbox *in, struct msg *m)
{
	m->next = NULL;
	pthread_mutex_lock(&in->lock);
	bool was_empty = in->head == NULL;
	if (was_empty)
		in->head = m;
	else
		in->tail->next = m;
	in->tail = m;
	in->depth++;
	pthread_mutex_unlock(&in->lock);

	if (was_empty) {
		uint64_t one = 1;
		/* EAGAIN means the counter is saturated: the owner is awake anyway. */
		while (write(in->efd, &one, sizeof(one)) < 0 && errno == EINTR)
			;
	}
}

struct msg *inbox_take_all(struct inbox *in)
{
	uint64_t n;
	while (read(in->efd, &n, sizeof(n)) < 0 && errno == EINTR)
		;
	pthread_mutex_lock(&in->lock);
	struct msg *all = in->head;
	size_t depth = in->depth;
	in->head = in->tail = NULL;
	in->depth = 0;
	pthread_mutex_unlock(&in->lock);
	/* The depth each wake-up finds: how far a thread's work queues up. */
	if (all)
		metrics_observe(HIST_INBOX_TAKE, 0, (double)depth);
	return all;
}

int inbox_fd(const struct inbox *in)
{
	return in->efd;
}
