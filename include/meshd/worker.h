/* worker — one event loop thread: its connections and, from the mesh
 * protocol on, its shard of meshes (hash(meshId) % N).  Nothing in a worker
 * is touched by another thread; the inbox is the only way in.
 */
#ifndef MESHD_WORKER_H
#define MESHD_WORKER_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "meshd/db.h"
#include "meshd/inbox.h"
#include "meshd/shard.h"

#include <jansson.h>

struct route_batch;

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

	/* Connection table: slot index + generation make a conn_id that other
	 * threads may hold and that goes stale when the slot is reused. */
	struct conn **slots;
	uint32_t *gens;
	uint32_t nslots;
	uint32_t *free_slots;
	uint32_t nfree;
	size_t nconns;

	struct conn *closing;   /* freed after the current loop iteration */
	struct conn *migrating; /* handed to their owner after the iteration */
	struct conn *uncorking; /* corked this iteration (conn_uncork) */
	struct shard shard;
	/* Writes gathered by the loop iterations, flushed to the db thread
	 * after each (STYLE.md §6) as db.h's streams allow: audit entries,
	 * and route.c's sends and acks. */
	struct db_stream audit;
	struct route_batch *route_batch;
	bool stop;
	bool draining; /* MSG_SHUTDOWN received: stop once nconns == 0 */
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

/* Worker thread (w's own). */
uint32_t worker_conn_add(struct worker *w, struct conn *c, uint32_t *gen_out);
void worker_conn_remove(struct worker *w, uint32_t slot);
struct conn *worker_conn_get(struct worker *w, uint32_t slot, uint32_t gen);
/* Queues c to be freed after this loop iteration (STYLE.md §5). */
void worker_defer_free(struct worker *w, struct conn *c);
/* Queues c to move to worker c->migrate_to after this loop iteration. */
void worker_defer_migrate(struct worker *w, struct conn *c);
/* Queues c for conn_uncork() after this loop iteration (before migrations
 * and frees). */
void worker_defer_uncork(struct worker *w, struct conn *c);

/* Worker thread: queues an audit entry (audit_entry(); NULL is ignored) on
 * the worker's AUDIT_SQL_APPEND_MANY stream. */
void worker_audit(struct worker *w, json_t *entry);

static inline struct shard *worker_shard(struct worker *w)
{
	return &w->shard;
}

#endif
