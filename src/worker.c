/* worker — one event-loop thread and its hand-offs; see include/meshd/worker.h. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <event2/event.h>

#include "meshd/alloc.h"
#include "meshd/config.h"
#include "meshd/conn.h"
#include "meshd/conntab.h"
#include "meshd/dbjob.h"
#include "meshd/dispatch.h"
#include "meshd/hook.h"
#include "meshd/log.h"
#include "meshd/presence.h"
#include "meshd/route.h"
#include "meshd/server.h"
#include "meshd/thread.h"
#include "meshd/worker.h"

/* The gathered writes, as few jobs as possible (force: the last flush). */
static void flush_batches(struct worker *w, bool force)
{
	db_stream_flush(&w->shard.acks, force);
	route_flush(&w->shard, force);
	db_stream_flush(&w->shard.audit, force);
}

/* Runs after the loop iteration, when nothing up the stack still holds a
 * migrating conn: only then may another thread own it. */
static void hand_over(struct worker *w)
{
	struct conn *c;
	while ((c = conntab_take_migrating(&w->conns))) {
		int to = c->migrate_to;
		if (!conn_detach(c))
			continue; /* released: freed with the closed ones */
		struct msg_adopt_conn *m = xcalloc(1, sizeof(*m));
		m->hdr.type = MSG_ADOPT_CONN;
		m->conn = c;
		worker_post(&w->srv->workers[to], &m->hdr);
	}
}

/* One loop iteration's deferred work, in order (STYLE.md §5–6). */
static void after_iteration(struct worker *w, bool force)
{
	flush_batches(w, force);
	conntab_uncork_all(&w->conns);
	hand_over(w);
	conntab_free_closed(&w->conns);
}

/* ---- messages ------------------------------------------------------------ */

static void begin_drain(struct worker *w, int timeout_ms)
{
	/* §7.13 / D10: this process's presences are marked disconnected (the
	 * db thread writes it before it stops), then every socket is closed. */
	presence_shutdown_shard(&w->shard);
	w->shard.draining = true;
	struct timeval tv = { .tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000 };
	evtimer_add(w->drain_deadline, &tv);
	conntab_shutdown_all(&w->conns);
}

static void adopt(struct worker *w, struct conn *c)
{
	if (w->shard.draining || !conn_attach(&w->conns, c)) {
		conn_free(c);
		return;
	}
	dispatch_adopted(c);
}

static void handle(struct worker *w, struct msg *m)
{
	switch (m->type) {
	case MSG_NEW_CONN: {
		struct msg_new_conn *nc = (struct msg_new_conn *)m;
		if (w->shard.draining)
			close(nc->fd);
		else
			conn_open(&w->conns, nc->fd, nc->addr, &dispatch_conn_ops);
		xfree(nc);
		break;
	}
	case MSG_ADOPT_CONN: {
		struct conn *c = ((struct msg_adopt_conn *)m)->conn;
		xfree(m);
		adopt(w, c);
		break;
	}
	case MSG_DB_DONE:
		db_job_finish((struct db_job *)m);
		break;
	case MSG_HOOK_FIND:
	case MSG_HOOK_FOUND:
	case MSG_HOOK_APPLY:
	case MSG_HOOK_APPLIED:
		hook_on_message(&w->shard, (struct msg_hook *)m);
		break;
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
	if (w->shard.draining)
		return;
	presence_sweep_shard(&w->shard);
	arm_sweep(w);
}

static void drain_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	log_warn("worker_drain_timeout", "worker=%d conns=%zu", w->id, conntab_count(&w->conns));
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
		after_iteration(w, false);
		if (w->shard.draining && conntab_count(&w->conns) == 0)
			w->stop = true;
	}
	flush_batches(w, true);
	conntab_uncork_all(&w->conns);
	hand_over(w);
	/* Whatever is left after a drain timeout is dropped. */
	conntab_abort_all(&w->conns);
	conntab_free_closed(&w->conns);
	return NULL;
}

bool worker_init(struct worker *w, struct server *srv, int id)
{
	w->id = id;
	w->srv = srv;
	snprintf(w->name, sizeof(w->name), "meshd-w%d", id);
	struct event_config *ec = event_config_new();
	if (!ec)
		return false;
	event_config_set_flag(ec, EVENT_BASE_FLAG_NOLOCK);
	w->base = event_base_new_with_config(ec);
	event_config_free(ec);
	if (!w->base || !inbox_init(&w->inbox))
		return false;
	w->inbox_ev = event_new(w->base, inbox_fd(&w->inbox), EV_READ | EV_PERSIST, inbox_cb, w);
	w->drain_deadline = evtimer_new(w->base, drain_deadline_cb, w);
	w->sweep_timer = evtimer_new(w->base, sweep_cb, w);
	if (!w->inbox_ev || !w->drain_deadline || !w->sweep_timer)
		return false;
	arm_sweep(w);
	conntab_init(&w->conns, id, w->base, srv->cfg, &w->shard);
	shard_init(&w->shard, &(struct shard_env){
		.id = id,
		.nshards = srv->nworkers,
		.cfg = srv->cfg,
		.db = srv->db,
		.inbox = &w->inbox,
		.base = w->base,
		.conns = &w->conns,
		.git_sha = srv->git_sha,
		.started_mono_ms = srv->started_mono_ms,
		.inboxes = srv->inboxes,
		.hookrate = srv->hookrate,
		.pending = srv->pending,
	});
	w->shard.route_batch = route_batch_new(&w->shard);
	return event_add(w->inbox_ev, NULL) == 0;
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
		else if (m->type >= MSG_HOOK_FIND && m->type <= MSG_HOOK_APPLIED)
			hook_msg_free((struct msg_hook *)m);
		else
			xfree(m);
		m = next;
	}
	route_batch_free(w->shard.route_batch);
	hook_shard_free(&w->shard);
	shard_free(&w->shard); /* before the base: presences hold timers */
	conntab_destroy(&w->conns);
	if (w->inbox_ev)
		event_free(w->inbox_ev);
	if (w->drain_deadline)
		event_free(w->drain_deadline);
	if (w->sweep_timer)
		event_free(w->sweep_timer);
	if (w->base)
		event_base_free(w->base);
	inbox_destroy(&w->inbox);
}

void worker_post(struct worker *w, struct msg *m)
{
	inbox_push(&w->inbox, m);
}
