/* server — threads, start and stop; see include/meshd/server.h. */
#include "config.h"

#include <stdlib.h>
#include <unistd.h>

#include "meshd/acceptor.h"
#include "meshd/alloc.h"
#include "meshd/clock.h"
#include "meshd/config.h"
#include "meshd/db.h"
#include "meshd/hookrate.h"
#include "meshd/pending.h"
#include "meshd/log.h"
#include "meshd/server.h"
#include "meshd/worker.h"

/* Bounds of the hook endpoint's shared tables (hookrate.h, pending.h). */
#define HOOKRATE_MAX_KEYS 10000
#define PENDING_MAX 4096

void server_init(struct server *s, const struct config *cfg, const char *git_sha)
{
	s->cfg = cfg;
	s->git_sha = git_sha;
	s->started_mono_ms = clock_mono_ms();
	atomic_init(&s->shutting_down, false);
	s->listen_fd = acceptor_listen(cfg->host, cfg->port, &s->port);
	if (s->listen_fd < 0)
		die("startup_failed", "reason=%s", "cannot listen");
	s->nworkers = cfg->workers;
	/* The db first: every worker's shard submits to it. */
	s->db = db_new(cfg, &s->start_barrier);
	s->workers = xcalloc((size_t)s->nworkers, sizeof(*s->workers));
	s->inboxes = xcalloc((size_t)s->nworkers, sizeof(*s->inboxes));
	for (int i = 0; i < s->nworkers; i++)
		s->inboxes[i] = &s->workers[i].inbox;
	s->hookrate = hookrate_new(HOOKRATE_MAX_KEYS);
	s->pending = pending_new(PENDING_MAX, (int64_t)cfg->pending_status_ttl_seconds * 1000);
	for (int i = 0; i < s->nworkers; i++)
		if (!worker_init(&s->workers[i], s, i))
			die("startup_failed", "reason=%s worker=%d", "worker init", i);
	s->acceptor = acceptor_new(s, s->listen_fd);
	/* Every thread plus main waits here, so nothing runs before all exist. */
	if (pthread_barrier_init(&s->start_barrier, NULL, (unsigned)s->nworkers + 3) != 0)
		die("startup_failed", "reason=%s", "barrier");
}

void server_start(struct server *s)
{
	if (!db_start(s->db))
		die("startup_failed", "reason=%s", "db thread");
	for (int i = 0; i < s->nworkers; i++)
		if (!worker_start(&s->workers[i]))
			die("startup_failed", "reason=%s worker=%d", "worker thread", i);
	if (!acceptor_start(s->acceptor))
		die("startup_failed", "reason=%s", "acceptor thread");
	pthread_barrier_wait(&s->start_barrier);
}

bool server_shutdown(struct server *s)
{
	int64_t budget = (int64_t)s->cfg->shutdown_timeout_seconds * 1000;
	int64_t start = clock_mono_ms();
	atomic_store(&s->shutting_down, true);

	/* 1. No new connections. */
	acceptor_stop(s->acceptor);
	/* 2. Workers stop their timers and close every socket with 1001; they
	 *    get half the budget for close handshakes. */
	for (int i = 0; i < s->nworkers; i++) {
		struct msg_shutdown *m = xcalloc(1, sizeof(*m));
		m->hdr.type = MSG_SHUTDOWN;
		m->timeout_ms = (int)(budget / 2);
		worker_post(&s->workers[i], &m->hdr);
	}
	for (int i = 0; i < s->nworkers; i++)
		worker_join(&s->workers[i]);
	/* 3. The db thread writes what the workers left it, within what remains. */
	int64_t left = budget - (clock_mono_ms() - start) - 250;
	db_stop(s->db, left > 100 ? (int)left : 100);
	int64_t took = clock_mono_ms() - start;
	log_info("shutdown_complete", "ms=%lld", (long long)took);
	return took <= budget;
}

void server_free(struct server *s)
{
	for (int i = 0; i < s->nworkers; i++)
		worker_destroy(&s->workers[i]);
	xfree(s->workers);
	xfree(s->inboxes);
	hookrate_free(s->hookrate);
	pending_free(s->pending);
	acceptor_free(s->acceptor);
	db_free(s->db);
	pthread_barrier_destroy(&s->start_barrier);
}
