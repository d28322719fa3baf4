/* worker — one event loop thread: its connection table and its shard of
 * meshes (hash(meshId) % N).  Nothing in a worker is touched by another
 * thread; the inbox is the only way in.  The worker runs the loop, one
 * iteration then the deferred work, and hands connections over to the
 * worker that owns their mesh; everything else is its modules'.
 */
#ifndef MESHD_WORKER_H
#define MESHD_WORKER_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "meshd/conntab.h"
#include "meshd/inbox.h"
#include "meshd/shard.h"

struct server;
struct conn;
struct event_base;
struct event;

/* acceptor -> worker */
struct msg_new_conn {
	struct msg hdr; /* MSG_NEW_CONN */
	int fd;
	char addr[64];  /* "ip:port" of the peer, for logs */
};

/* main -> worker: close every connection (WebSockets with 1001), then stop;
 * whatever is still open after timeout_ms is dropped. */
struct msg_shutdown {
	struct msg hdr; /* MSG_SHUTDOWN */
	int timeout_ms;
};

/* worker -> owner worker: a WebSocket whose hello passed the stateless
 * checks, moving to the shard of its mesh (the conn carries its hello). */
struct msg_adopt_conn {
	struct msg hdr; /* MSG_ADOPT_CONN */
	struct conn *conn;
};

struct worker {
	int id;
	struct server *srv;
	pthread_t thread;
	char name[16];
	struct event_base *base;
	struct inbox inbox;
	struct event *inbox_ev;

	struct conntab conns;
	struct shard shard;
	bool stop;
	struct event *drain_deadline;
	struct event *sweep_timer;   /* TTL and stale sweeps of this shard */
};

/* Main thread, before start. */
bool worker_init(struct worker *w, struct server *srv, int id) __attribute__((warn_unused_result));
bool worker_start(struct worker *w) __attribute__((warn_unused_result));
void worker_join(struct worker *w);
void worker_destroy(struct worker *w);

/* Any thread: hands a message to w (ownership moves). */
void worker_post(struct worker *w, struct msg *m);

#endif
