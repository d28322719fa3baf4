/* worker — one event-loop thread and its connections; see include/meshd/worker.h. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <event2/event.h>

#include "meshd/alloc.h"
#include "meshd/config.h"
#include "meshd/conn.h"
#include "meshd/db.h"
#include "meshd/audit.h"
#include "meshd/handshake.h"
#include "meshd/route.h"
#include "meshd/presence.h"
#include "meshd/log.h"
#include "meshd/server.h"
#include "meshd/thread.h"
#include "meshd/worker.h"

static void inbox_cb(evutil_socket_t fd, short what, void *arg);

/* ---- connection table ---------------------------------------------------- */

uint32_t worker_conn_add(struct worker *w, struct conn *c, uint32_t *gen_out)
{
	MESHD_ASSERT_ON_WORKER(w);
	if (w->nfree == 0) {
		uint32_t old = w->nslots;
		uint32_t grown = old ? old * 2 : 64;
		w->slots = xrealloc(w->slots, grown * sizeof(*w->slots));
		w->gens = xrealloc(w->gens, grown * sizeof(*w->gens));
		w->free_slots = xrealloc(w->free_slots, grown * sizeof(*w->free_slots));
		/* Push new slots so the lowest index is handed out first. */
		for (uint32_t i = grown; i > old; i--) {
			w->slots[i - 1] = NULL;
			w->gens[i - 1] = 0;
			w->free_slots[w->nfree++] = i - 1;
		}
		w->nslots = grown;
	}
	uint32_t slot = w->free_slots[--w->nfree];
	w->slots[slot] = c;
	*gen_out = ++w->gens[slot];
	w->nconns++;
	return slot;
}

void worker_conn_remove(struct worker *w, uint32_t slot)
{
	MESHD_ASSERT_ON_WORKER(w);
	w->slots[slot] = NULL;
	w->free_slots[w->nfree++] = slot;
	w->nconns--;
}

struct conn *worker_conn_get(struct worker *w, uint32_t slot, uint32_t gen)
{
	MESHD_ASSERT_ON_WORKER(w);
	if (slot >= w->nslots || w->gens[slot] != gen)
		return NULL;
	return w->slots[slot];
}

void worker_defer_free(struct worker *w, struct conn *c)
{
	c->next_closing = w->closing;
	w->closing = c;
}

void worker_audit(struct worker *w, json_t *entry)
{
	MESHD_ASSERT_ON_WORKER(w);
	if (entry)
		json_array_append_new(w->audit.rows, entry);
}

/* The gathered writes, as few jobs as possible (force: the last flush). */
static void flush_batches(struct worker *w, bool force)
{
	route_flush(w, force);
	db_stream_flush(&w->audit, w, force);
}

void worker_defer_uncork(struct worker *w, struct conn *c)
{
	c->next_uncork = w->uncorking;
	w->uncorking = c;
}

/* Conns stay allocated until free_closed(), after this. */
static void uncork_all(struct worker *w)
{
	while (w->uncorking) {
		struct conn *c = w->uncorking;
		w->uncorking = c->next_uncork;
		c->next_uncork = NULL;
		conn_uncork(c);
	}
}

void worker_defer_migrate(struct worker *w, struct conn *c)
{
	c->next_migrating = w->migrating;
	w->migrating = c;
}

/* Runs after the loop iteration, when nothing up the stack still holds a
 * migrating conn: only then may another thread own it. */
static void hand_over(struct worker *w)
{
	while (w->migrating) {
		struct conn *c = w->migrating;
		w->migrating = c->next_migrating;
		c->next_migrating = NULL;
		if (c->state == CONN_CLOSED)
			continue; /* closed meanwhile: free_closed() has it */
		int to = c->migrate_to;
		conn_detach(c);
		struct msg_adopt_conn *m = xcalloc(1, sizeof(*m));
		m->hdr.type = MSG_ADOPT_CONN;
		m->conn = c;
		worker_post(&w->srv->workers[to], &m->hdr);
	}
}

static void free_closed(struct worker *w)
{
	while (w->closing) {
		struct conn *c = w->closing;
		w->closing = c->next_closing;
		conn_free(c);
	}
}

/* ---- messages ------------------------------------------------------------ */

static void begin_drain(struct worker *w, int timeout_ms)
{
	/* §7.13 / D10: this process's presences are marked disconnected (the
	 * db thread writes it before it stops), then every socket is closed. */
	presence_shutdown_shard(&w->shard);
	w->draining = true;
	struct timeval tv = { .tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000 };
	evtimer_add(w->drain_deadline, &tv);
	for (uint32_t i = 0; i < w->nslots; i++)
		if (w->slots[i])
			conn_shutdown(w->slots[i]);
}

static void handle(struct worker *w, struct msg *m)
{
	switch (m->type) {
	case MSG_NEW_CONN: {
		struct msg_new_conn *nc = (struct msg_new_conn *)m;
		if (w->draining)
			close(nc->fd);
		else
			conn_open(w, nc->fd, nc->addr);
		xfree(nc);
		break;
	}
	case MSG_ADOPT_CONN: {
		struct conn *c = ((struct msg_adopt_conn *)m)->conn;
		xfree(m);
		if (w->draining) {
			conn_free(c);
			break;
		}
		conn_attach(w, c);
		handshake_adopted(c);
		break;
	}
	case MSG_DB_DONE: {
		struct db_job *j = (struct db_job *)m;
		if (j->done)
			j->done(j);
		db_job_free(j);
		break;
	}
	case MSG_SHUTDOWN:
		begin_drain(w, ((struct msg_shutdown *)m)->timeout_ms);
		xfree(m);
		break;
	case MSG_STOP:
		w->stop = true;
		xfree(m);
		break;
	default:
		log_error("worker_unknown_msg", "worker=%d type=%d", w->id, (int)m->type);
		xfree(m);
		break;
	}
}

static void inbox_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	struct msg *m = inbox_take_all(&w->inbox);
	while (m) {
		struct msg *next = m->next;
		handle(w, m);
		m = next;
	}
}

static void arm_sweep(struct worker *w)
{
	struct timeval tv = { .tv_sec = w->srv->cfg->ttl_sweep_interval_seconds, .tv_usec = 0 };
	evtimer_add(w->sweep_timer, &tv);
}

static void sweep_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	if (w->draining)
		return;
	presence_sweep_shard(&w->shard);
	arm_sweep(w);
}

static void drain_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	log_warn("worker_drain_timeout", "worker=%d conns=%zu", w->id, w->nconns);
	w->stop = true;
}

/* ---- the thread ---------------------------------------------------------- */

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	thread_set_role(THREAD_WORKER, w->id);
	thread_set_name(w->name);
	pthread_barrier_wait(&w->srv->start_barrier);
	while (!w->stop) {
		/* One iteration, then the work deferred to its end (STYLE.md §5–6). */
		event_base_loop(w->base, EVLOOP_ONCE);
		flush_batches(w, false);
		uncork_all(w);
		hand_over(w);
		free_closed(w);
		if (w->draining && w->nconns == 0)
			w->stop = true;
	}
	flush_batches(w, true);
	uncork_all(w);
	hand_over(w);
	/* Whatever is left after a drain timeout is dropped. */
	for (uint32_t i = 0; i < w->nslots; i++)
		if (w->slots[i])
			conn_abort(w->slots[i]);
	free_closed(w);
	return NULL;
}

bool worker_init(struct worker *w, struct server *srv, int id)
{
	w->id = id;
	w->srv = srv;
	snprintf(w->name, sizeof(w->name), "meshd-w%d", id);
	struct event_config *ec = event_config_new();
	event_config_set_flag(ec, EVENT_BASE_FLAG_NOLOCK);
	w->base = event_base_new_with_config(ec);
	event_config_free(ec);
	if (!w->base || !inbox_init(&w->inbox))
		return false;
	w->inbox_ev = event_new(w->base, inbox_fd(&w->inbox), EV_READ | EV_PERSIST, inbox_cb, w);
	w->drain_deadline = evtimer_new(w->base, drain_deadline_cb, w);
	w->sweep_timer = evtimer_new(w->base, sweep_cb, w);
	arm_sweep(w);
	shard_init(&w->shard, w);
	db_stream_init(&w->audit, AUDIT_SQL_APPEND_MANY, DB_JOB_WRITE);
	w->route_batch = route_batch_new();
	return w->inbox_ev && w->drain_deadline && w->sweep_timer && event_add(w->inbox_ev, NULL) == 0;
}

bool worker_start(struct worker *w)
{
	return pthread_create(&w->thread, NULL, worker_main, w) == 0;
}

void worker_join(struct worker *w)
{
	pthread_join(w->thread, NULL);
}

void worker_destroy(struct worker *w)
{
	struct msg *m = inbox_take_all(&w->inbox);
	while (m) {
		struct msg *next = m->next;
		if (m->type == MSG_NEW_CONN)
			close(((struct msg_new_conn *)m)->fd);
		if (m->type == MSG_ADOPT_CONN)
			conn_free(((struct msg_adopt_conn *)m)->conn);
		if (m->type == MSG_DB_DONE)
			db_job_free((struct db_job *)m);
		else
			xfree(m);
		m = next;
	}
	shard_free(&w->shard); /* before the base: presences hold timers */
	db_stream_free(&w->audit);
	route_batch_free(w->route_batch);
	if (w->inbox_ev)
		event_free(w->inbox_ev);
	if (w->drain_deadline)
		event_free(w->drain_deadline);
	if (w->sweep_timer)
		event_free(w->sweep_timer);
	if (w->base)
		event_base_free(w->base);
	inbox_destroy(&w->inbox);
	xfree(w->slots);
	xfree(w->gens);
	xfree(w->free_slots);
}

void worker_post(struct worker *w, struct msg *m)
{
	inbox_push(&w->inbox, m);
}
