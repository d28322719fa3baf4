/* server — the process: its threads, in the shape of DESIGN.md §1.
 *
 *   main      config, migrations, builds every event base, starts the threads
 *             behind a barrier, waits for SIGTERM/SIGINT, runs the shutdown
 *   acceptor  accept4() -> MSG_NEW_CONN to a worker, round robin
 *   worker i  its connections and (later) its shard of meshes
 *   db        PostgreSQL in pipeline mode
 *
 * Shutdown order (PROTOCOL.md §7.13): the acceptor stops taking connections,
 * each worker stops its timers and closes its WebSockets with 1001, workers
 * are joined, then the db thread finishes the jobs it holds (the presences'
 * "disconnected" writes among them) and is joined last.
 */
#ifndef MESHD_SERVER_H
#define MESHD_SERVER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct config;
struct worker;
struct acceptor;
struct db;
struct hookrate;
struct inbox;
struct pending;

struct server {
	const struct config *cfg;
	const char *git_sha;
	int64_t started_mono_ms;
	int listen_fd;
	int port; /* the bound port (BROKER_PORT may be 0) */
	int nworkers;
	struct worker *workers;
	struct inbox **inboxes;    /* workers[i].inbox, for the hook's question to all */
	struct hookrate *hookrate; /* the hook endpoint's buckets, shared by every worker */
	struct pending *pending;   /* hook statuses awaiting their presence */
	struct acceptor *acceptor;
	struct db *db;
	pthread_barrier_t start_barrier;
	atomic_bool shutting_down;
};

/* Main thread: binds the port and builds every thread's state.  Dies on failure (start-up). */
void server_init(struct server *s, const struct config *cfg, const char *git_sha);
/* Main thread: starts every thread; returns once all passed the start barrier. */
void server_start(struct server *s);
/* Main thread: the graceful shutdown; returns once every thread is joined or
 * the shutdown timeout passed (returns false then). */
bool server_shutdown(struct server *s) __attribute__((warn_unused_result));
void server_free(struct server *s);

#endif
