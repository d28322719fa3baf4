/* inbox — the only door into a thread (STYLE.md §3).
 *
 * A mutex-protected singly linked list of typed messages plus one eventfd.
 * Producers push; the eventfd is written only when the list goes from empty
 * to non-empty, so a burst of N messages costs one wake-up.  The owning
 * thread watches inbox_fd() in its event loop, and on wake-up calls
 * inbox_take_all(), which reads the eventfd *first* and then splices the
 * whole list out under the lock; it then processes the list without holding
 * the lock.  Reading the eventfd before splicing is what makes the hand-off
 * race-free: a push that lands after the splice finds the list empty and
 * writes the eventfd again.
 *
 * Messages carry copies or transferred ownership, never borrowed pointers:
 * after inbox_push() the producer must not touch the message again.
 */
#ifndef MESHD_INBOX_H
#define MESHD_INBOX_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

enum msg_type {
	MSG_STOP = 1,       /* leave the event loop (acceptor, worker, db) */
	MSG_SHUTDOWN,       /* worker: close every WebSocket with 1001, then stop */
	MSG_NEW_CONN,       /* acceptor -> worker: a freshly accepted fd */
	MSG_ADOPT_CONN,     /* worker -> owner worker: a connection changing shard */
	MSG_DB_JOB,         /* worker -> db: a job to run */
	MSG_DB_DONE,        /* db -> worker: a finished job, back to its origin */
	MSG_HOOK_FIND,      /* worker -> every worker: who has this hook's presence? (hook.h) */
	MSG_HOOK_FOUND,     /* each worker -> the asking one: its best candidate */
	MSG_HOOK_APPLY,     /* asking worker -> owner: write the hook's status */
	MSG_HOOK_APPLIED,   /* owner -> asking worker: written (or the presence had gone) */
	MSG_TEST,           /* unit tests */
};

/* Every message starts with this header; typed messages embed it first. */
struct msg {
	struct msg *next;
	enum msg_type type;
};

struct inbox {
	pthread_mutex_t lock;
	struct msg *head;
	struct msg *tail;
	size_t depth;       /* messages queued (meshd_inbox_take_messages) */
	int efd;
};

bool inbox_init(struct inbox *in) __attribute__((warn_unused_result));
/* Frees nothing still queued: the owner drains it first (inbox_take_all). */
void inbox_destroy(struct inbox *in);

/* Any thread.  Takes ownership of m. */
void inbox_push(struct inbox *in, struct msg *m);

/* Owner thread only.  Returns the queued messages in push order (NULL if none). */
struct msg *inbox_take_all(struct inbox *in);

/* The eventfd to watch for EV_READ (owner thread). */
int inbox_fd(const struct inbox *in);

#endif
