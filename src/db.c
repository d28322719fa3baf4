/* db — the database thread, libpq pipeline mode; see include/meshd/db.h. */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <libpq-fe.h>

#include "meshd/alloc.h"
#include "meshd/clock.h"
#include "meshd/config.h"
#include "meshd/db.h"
#include "meshd/log.h"
#include "meshd/map.h"
#include "meshd/metrics.h"
#include "meshd/server.h"
#include "meshd/thread.h"
#include "meshd/worker.h"

/* One pipeline carries at most this many jobs; the rest wait for the next. */
#define BATCH_MAX 512
/* A connection attempt that has not completed by then is abandoned. */
#define CONNECT_TIMEOUT_MS 10000

enum db_state { DB_DOWN, DB_CONNECTING, DB_READY };

enum slot_kind { SLOT_BEGIN, SLOT_COMMIT, SLOT_PREPARE, SLOT_JOB };

struct slot {
	enum slot_kind kind;
	struct db_job *job;
	PGresult *res;
};

struct msg_stop {
	struct msg hdr; /* MSG_STOP */
	int timeout_ms;
};

/* A FIFO of jobs linked through hdr.next. */
struct jobq {
	struct msg *head;
	struct msg *tail;
	size_t len;
};

struct db {
	struct server *srv;
	char *url;
	pthread_t thread;
	struct event_base *base;
	struct inbox inbox;
	struct event *inbox_ev;
	struct event *sock_ev;
	struct event *timer;      /* ping / reconnect */
	struct event *depth_timer;
	struct event *orphan_timer;
	struct event *stop_timer;

	PGconn *pg;
	enum db_state state;
	int failures;
	int64_t connect_started_ms;
	bool stopping;

	struct jobq pending;
	/* Each job has a prepare in front of it at most: 2 slots per job. */
	struct slot batch[2 * BATCH_MAX + 2];
	/* Statements prepared on this connection: SQL text -> name.  Every
	 * job's SQL is a static string, so it is parsed and planned once per
	 * connection instead of once per execution. */
	struct map prepared;
	unsigned nprepared;
	int nslots;
	int cursor;       /* slot receiving results */
	bool cursor_has_result;
	bool in_flight;
	bool want_flush;

	atomic_bool healthy;
};

static void sock_cb(evutil_socket_t fd, short what, void *arg);
static void send_batch(struct db *db);
static void submit_internal(struct db *db, const char *sql, db_done_fn done);
static void accept_job(struct db *db, struct db_job *j);

/* ---- jobs -------------------------------------------------------------- */

struct db_job *db_job_new(const char *sql, unsigned flags, struct worker *origin, db_done_fn done,
			  void *arg)
{
	struct db_job *j = xcalloc(1, sizeof(*j));
	j->hdr.type = MSG_DB_JOB;
	j->sql = sql;
	j->flags = flags;
	j->origin = origin;
	j->done = done;
	j->arg = arg;
	return j;
}

void db_job_param(struct db_job *job, const char *value)
{
	if (job->nparams >= DB_MAX_PARAMS)
		abort(); /* a programming error: the SQL has a fixed parameter count */
	job->params[job->nparams++] = value ? xstrdup(value) : NULL;
}

void db_job_paramf(struct db_job *job, const char *fmt, ...)
{
	char buf[64];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	db_job_param(job, buf);
}

void db_job_free(struct db_job *job)
{
	if (!job)
		return;
	xfree(job->mesh_id);
	if (job->free_arg)
		job->free_arg(job->arg);
	for (int i = 0; i < job->nparams; i++)
		xfree(job->params[i]);
	PQclear(job->res);
	xfree(job);
}

static void q_push_back(struct jobq *q, struct db_job *j)
{
	j->hdr.next = NULL;
	if (q->tail)
		q->tail->next = &j->hdr;
	else
		q->head = &j->hdr;
	q->tail = &j->hdr;
	q->len++;
}

static struct db_job *q_pop(struct jobq *q)
{
	struct msg *m = q->head;
	if (!m)
		return NULL;
	q->head = m->next;
	if (!q->head)
		q->tail = NULL;
	q->len--;
	m->next = NULL;
	return (struct db_job *)m;
}

/* Puts `front` (in order) before everything in q. */
static void q_prepend(struct jobq *q, struct jobq *front)
{
	if (!front->head)
		return;
	front->tail->next = q->head;
	if (!q->tail)
		q->tail = front->tail;
	q->head = front->head;
	q->len += front->len;
	front->head = front->tail = NULL;
	front->len = 0;
}

/* Delivers the outcome: to the origin worker's inbox, or here. */
static void complete(struct db *db, struct db_job *j, bool ok, PGresult *res, const char *error)
{
	j->ok = ok;
	j->res = res;
	if (error)
		snprintf(j->error, sizeof(j->error), "%s", error);
	if (j->origin) {
		j->hdr.type = MSG_DB_DONE;
		worker_post(j->origin, &j->hdr);
		return;
	}
	if (j->done)
		j->done(j);
	db_job_free(j);
}

static void fail_fast_jobs(struct db *db, struct jobq *q)
{
	struct jobq keep = { 0 };
	struct db_job *j;
	while ((j = q_pop(q)))
		if (j->flags & DB_JOB_FAIL_FAST)
			complete(db, j, false, NULL, "database unavailable");
		else
			q_push_back(&keep, j);
	*q = keep;
}

/* ---- health and connection ------------------------------------------- */

static void forget_prepared(struct db *db)
{
	const char *k;
	void *v;
	for (size_t i = 0; map_next(&db->prepared, &i, &k, &v);)
		xfree(v);
	map_free(&db->prepared);
	map_init(&db->prepared);
}

static void set_healthy(struct db *db, bool up)
{
	bool was = atomic_exchange(&db->healthy, up);
	metrics_gauge_set(METRIC_DB_HEALTHY, up ? 1 : 0);
	if (was != up)
		log_info(up ? "db_up" : "db_down", "failures=%d", db->failures);
}

static int64_t retry_delay_ms(const struct db *db)
{
	int64_t cap = (int64_t)db->srv->cfg->db_ping_interval_seconds * 1000;
	int shift = db->failures < 6 ? db->failures : 6;
	int64_t d = 500LL << shift;
	return d < cap ? d : cap;
}

static void arm(struct event *ev, int64_t ms)
{
	struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };
	evtimer_add(ev, &tv);
}

/* Everything sent but not answered goes back to the front of the queue:
 * rolled back or never run, it is sent again on the next connection. */
static void requeue_in_flight(struct db *db)
{
	struct jobq again = { 0 };
	for (int i = 0; i < db->nslots; i++) {
		struct slot *s = &db->batch[i];
		PQclear(s->res);
		s->res = NULL;
		if (s->kind == SLOT_JOB)
			q_push_back(&again, s->job);
	}
	db->nslots = 0;
	db->in_flight = false;
	q_prepend(&db->pending, &again);
}

static void connection_lost(struct db *db, const char *why)
{
	if (db->pg) {
		log_warn("db_connection_lost", "error=%s", why);
		if (db->sock_ev) {
			event_free(db->sock_ev);
			db->sock_ev = NULL;
		}
		PQfinish(db->pg);
		db->pg = NULL;
	}
	forget_prepared(db);
	db->failures++;
	db->state = DB_DOWN;
	set_healthy(db, false);
	requeue_in_flight(db);
	fail_fast_jobs(db, &db->pending);
	if (!db->stopping)
		arm(db->timer, retry_delay_ms(db));
}

static void watch_socket(struct db *db, short what)
{
	if (db->sock_ev)
		event_free(db->sock_ev);
	db->sock_ev = event_new(db->base, PQsocket(db->pg), what, sock_cb, db);
	event_add(db->sock_ev, NULL);
}

static void ping_done(struct db_job *j)
{
	struct db *db = j->arg;
	if (!j->ok) {
		log_warn("db_ping_failed", "error=%s", j->error);
		if (db->state == DB_READY)
			connection_lost(db, j->error);
		return;
	}
	db->failures = 0;
	set_healthy(db, true);
	arm(db->timer, (int64_t)db->srv->cfg->db_ping_interval_seconds * 1000);
}

static void depth_done(struct db_job *j)
{
	if (j->ok && PQntuples(j->res) == 1)
		metrics_gauge_set(METRIC_QUEUE_DEPTH, strtoll(PQgetvalue(j->res, 0, 0), NULL, 10));
}

static void connect_ready(struct db *db)
{
	if (PQsetnonblocking(db->pg, 1) != 0 || PQenterPipelineMode(db->pg) != 1) {
		connection_lost(db, PQerrorMessage(db->pg));
		return;
	}
	db->state = DB_READY;
	watch_socket(db, EV_READ | EV_PERSIST);
	log_info("db_connected", "server_version=%d", PQserverVersion(db->pg));
	/* Health is proven by a ping, not by the handshake alone. */
	submit_internal(db, "SELECT 1", ping_done);
	submit_internal(db,
			"SELECT count(*) FROM mesh.message_queue WHERE delivered_at IS NULL",
			depth_done);
}

static void connect_poll(struct db *db)
{
	if (clock_mono_ms() - db->connect_started_ms > CONNECT_TIMEOUT_MS) {
		connection_lost(db, "connect timeout");
		return;
	}
	switch (PQconnectPoll(db->pg)) {
	case PGRES_POLLING_READING:
		watch_socket(db, EV_READ);
		break;
	case PGRES_POLLING_WRITING:
		watch_socket(db, EV_WRITE);
		break;
	case PGRES_POLLING_OK:
		connect_ready(db);
		break;
	default:
		connection_lost(db, PQerrorMessage(db->pg));
		break;
	}
}

static void connect_start(struct db *db)
{
	/* Every timestamp is UTC, in the session as in the process (SEMANTICS §0).
	 * Statements are prepared (parsed once) but planned for each execution:
	 * a generic plan of the batch statements, made without their jsonb
	 * rows or on a young table's statistics, halved the throughput in
	 * contrib/meshbench's dm-burst. */
	const char *keys[] = { "dbname", "options", "application_name", NULL };
	const char *vals[] = { db->url, "-c TimeZone=UTC",
			       "meshd", NULL };
	db->pg = PQconnectStartParams(keys, vals, 1);
	if (!db->pg || PQstatus(db->pg) == CONNECTION_BAD) {
		connection_lost(db, db->pg ? PQerrorMessage(db->pg) : "out of memory");
		return;
	}
	db->state = DB_CONNECTING;
	db->connect_started_ms = clock_mono_ms();
	arm(db->timer, CONNECT_TIMEOUT_MS + 100);
	connect_poll(db);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct db *db = arg;
	switch (db->state) {
	case DB_DOWN:
		if (!db->stopping)
			connect_start(db);
		break;
	case DB_CONNECTING:
		connect_poll(db); /* enforces the connect timeout */
		break;
	case DB_READY:
		submit_internal(db, "SELECT 1", ping_done);
		break;
	}
}

/* §6.7: undelivered rows older than 7 days are dropped, hourly. */
#define ORPHAN_SWEEP_MS (3600 * 1000)

static void orphan_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct db *db = arg;
	if (db->state == DB_READY)
		accept_job(db, db_job_new("DELETE FROM mesh.message_queue WHERE delivered_at IS NULL"
					  " AND created_at < now() - interval '7 days'",
					  DB_JOB_WRITE | DB_JOB_FAIL_FAST, NULL, NULL, db));
	send_batch(db);
	arm(db->orphan_timer, ORPHAN_SWEEP_MS);
}

static void depth_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct db *db = arg;
	if (db->state == DB_READY)
		submit_internal(db,
				"SELECT count(*) FROM mesh.message_queue WHERE delivered_at IS NULL",
				depth_done);
	arm(db->depth_timer, (int64_t)db->srv->cfg->queue_depth_interval_seconds * 1000);
}

/* ---- batches ----------------------------------------------------------- */

static void add_slot(struct db *db, enum slot_kind kind, struct db_job *j)
{
	db->batch[db->nslots++] = (struct slot){ .kind = kind, .job = j, .res = NULL };
}

static bool send_plain(struct db *db, const char *sql)
{
	return PQsendQueryParams(db->pg, sql, 0, NULL, NULL, NULL, NULL, 0) == 1;
}

/* A job's statement, prepared first if this connection has not seen it.
 * Its slots are taken before anything is sent, so a failure midway leaves
 * the job where requeue_in_flight() finds it. */
static bool send_job(struct db *db, struct db_job *j)
{
	if (j->flags & DB_JOB_CUSTOM_PLAN) {
		add_slot(db, SLOT_JOB, j);
		return PQsendQueryParams(db->pg, j->sql, j->nparams, NULL,
					 (const char *const *)j->params, NULL, NULL, 0) == 1;
	}
	const char *name = map_get(&db->prepared, j->sql);
	bool prepare = name == NULL;
	if (prepare) {
		char buf[24];
		snprintf(buf, sizeof(buf), "m%u", db->nprepared++);
		name = xstrdup(buf);
		map_put(&db->prepared, j->sql, (void *)name);
		add_slot(db, SLOT_PREPARE, j);
	}
	add_slot(db, SLOT_JOB, j);
	if (prepare && PQsendPrepare(db->pg, name, j->sql, j->nparams, NULL) != 1)
		return false;
	return PQsendQueryPrepared(db->pg, name, j->nparams, (const char *const *)j->params, NULL,
				   NULL, 0) == 1;
}

/* Jobs taken for a batch but never sent go back to the front, in order. */
static void unsend(struct db *db, struct db_job **jobs, int n)
{
	struct jobq back = { 0 };
	for (int i = 0; i < n; i++)
		q_push_back(&back, jobs[i]);
	q_prepend(&db->pending, &back);
}

static void flush_output(struct db *db)
{
	int r = PQflush(db->pg);
	if (r < 0) {
		connection_lost(db, PQerrorMessage(db->pg));
		return;
	}
	bool pending_out = r == 1;
	if (pending_out != db->want_flush) {
		db->want_flush = pending_out;
		watch_socket(db, (short)(EV_READ | EV_PERSIST | (pending_out ? EV_WRITE : 0)));
	}
}

/* Writes first, inside one transaction; then reads; then one Sync. */
static void send_batch(struct db *db)
{
	if (db->state != DB_READY || db->in_flight || !db->pending.head)
		return;
	struct db_job *writes[BATCH_MAX], *reads[BATCH_MAX];
	int nw = 0, nr = 0;
	struct db_job *j;
	while (nw + nr < BATCH_MAX && (j = q_pop(&db->pending))) {
		if (j->flags & DB_JOB_WRITE)
			writes[nw++] = j;
		else
			reads[nr++] = j;
	}
	db->nslots = 0;
	db->cursor = 0;
	db->cursor_has_result = false;
	bool ok = true;
	int w_sent = 0, r_sent = 0;
	if (nw) {
		add_slot(db, SLOT_BEGIN, NULL);
		ok = send_plain(db, "BEGIN");
		while (ok && w_sent < nw)
			ok = send_job(db, writes[w_sent++]);
		add_slot(db, SLOT_COMMIT, NULL);
		ok = ok && send_plain(db, "COMMIT");
	}
	while (ok && r_sent < nr)
		ok = send_job(db, reads[r_sent++]);
	if (!ok) {
		unsend(db, reads + r_sent, nr - r_sent);
		unsend(db, writes + w_sent, nw - w_sent);
	}
	db->in_flight = true;
	if (!ok || PQpipelineSync(db->pg) != 1) {
		connection_lost(db, PQerrorMessage(db->pg));
		return;
	}
	flush_output(db);
}

/* The Sync arrived: every slot has its result.  Hand out the outcomes. */
static void finish_batch(struct db *db)
{
	bool has_txn = db->nslots > 0 && db->batch[0].kind == SLOT_BEGIN;
	bool committed = false;
	for (int i = 0; i < db->nslots; i++)
		if (db->batch[i].kind == SLOT_COMMIT)
			committed = db->batch[i].res &&
				    PQresultStatus(db->batch[i].res) == PGRES_COMMAND_OK;
	struct jobq again = { 0 };
	for (int i = 0; i < db->nslots; i++) {
		struct slot *s = &db->batch[i];
		PGresult *res = s->res;
		s->res = NULL;
		if (s->kind == SLOT_PREPARE && (!res || PQresultStatus(res) != PGRES_COMMAND_OK)) {
			/* Not prepared after all: prepare again on the next use. */
			xfree(map_del(&db->prepared, s->job->sql));
		}
		if (s->kind != SLOT_JOB) {
			PQclear(res);
			continue;
		}
		ExecStatusType st = res ? PQresultStatus(res) : PGRES_PIPELINE_ABORTED;
		bool done_ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
		bool rolled_back = has_txn && (s->job->flags & DB_JOB_WRITE) && !committed;
		if (done_ok && !rolled_back) {
			complete(db, s->job, true, res, NULL);
		} else if (st == PGRES_FATAL_ERROR || st == PGRES_NONFATAL_ERROR) {
			char msg[200];
			snprintf(msg, sizeof(msg), "%s", PQresultErrorMessage(res));
			msg[strcspn(msg, "\n")] = '\0';
			PQclear(res);
			log_warn("db_job_failed", "error=%s", msg);
			complete(db, s->job, false, NULL, msg);
		} else {
			/* Skipped by the pipeline abort, or rolled back with its batch. */
			PQclear(res);
			q_push_back(&again, s->job);
		}
	}
	db->nslots = 0;
	db->in_flight = false;
	q_prepend(&db->pending, &again);
}

static void read_results(struct db *db)
{
	if (PQconsumeInput(db->pg) != 1) {
		connection_lost(db, PQerrorMessage(db->pg));
		return;
	}
	while (db->in_flight && !PQisBusy(db->pg)) {
		PGresult *r = PQgetResult(db->pg);
		if (!r) {
			/* End of one command's results. */
			if (db->cursor_has_result) {
				db->cursor++;
				db->cursor_has_result = false;
			}
			continue;
		}
		if (PQresultStatus(r) == PGRES_PIPELINE_SYNC) {
			PQclear(r);
			finish_batch(db);
			break;
		}
		if (db->cursor >= db->nslots || db->cursor_has_result) {
			PQclear(r); /* a second result for one command: not ours to keep */
			continue;
		}
		db->batch[db->cursor].res = r;
		db->cursor_has_result = true;
	}
	if (PQstatus(db->pg) == CONNECTION_BAD)
		connection_lost(db, PQerrorMessage(db->pg));
}

static void maybe_finish_stop(struct db *db)
{
	if (db->stopping && !db->in_flight && (!db->pending.head || db->state != DB_READY))
		event_base_loopbreak(db->base);
}

static void sock_cb(evutil_socket_t fd, short what, void *arg)
{
	struct db *db = arg;
	if (db->state == DB_CONNECTING) {
		connect_poll(db);
		return;
	}
	if (db->state != DB_READY)
		return;
	if (what & EV_WRITE)
		flush_output(db);
	if (db->state == DB_READY && (what & EV_READ))
		read_results(db);
	send_batch(db);
	maybe_finish_stop(db);
}

/* ---- inbox and thread -------------------------------------------------- */

static void accept_job(struct db *db, struct db_job *j)
{
	if (db->state != DB_READY && (j->flags & DB_JOB_FAIL_FAST)) {
		complete(db, j, false, NULL, "database unavailable");
		return;
	}
	/* Writes wait for the database, but not without bound: past the cap a
	 * new job fails at once (a send gets an error ack and is retried by
	 * its client) instead of growing the broker's memory. */
	if (db->pending.len >= (size_t)db->srv->cfg->db_max_pending_jobs) {
		complete(db, j, false, NULL, "database unavailable: too many pending writes");
		return;
	}
	q_push_back(&db->pending, j);
}

static void submit_internal(struct db *db, const char *sql, db_done_fn done)
{
	accept_job(db, db_job_new(sql, DB_JOB_FAIL_FAST, NULL, done, db));
	send_batch(db);
}

static void stop_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct db *db = arg;
	log_warn("db_stop_timeout", "pending=%zu", db->pending.len);
	event_base_loopbreak(db->base);
}

static void inbox_cb(evutil_socket_t fd, short what, void *arg)
{
	struct db *db = arg;
	struct msg *m = inbox_take_all(&db->inbox);
	while (m) {
		struct msg *next = m->next;
		if (m->type == MSG_DB_JOB) {
			accept_job(db, (struct db_job *)m);
		} else if (m->type == MSG_STOP) {
			db->stopping = true;
			evtimer_del(db->depth_timer);
			evtimer_del(db->orphan_timer);
			arm(db->stop_timer, ((struct msg_stop *)m)->timeout_ms);
			xfree(m);
		} else {
			xfree(m);
		}
		m = next;
	}
	send_batch(db);
	maybe_finish_stop(db);
}

static void *db_main(void *arg)
{
	struct db *db = arg;
	thread_set_role(THREAD_DB, 0);
	thread_set_name("meshd-db");
	pthread_barrier_wait(&db->srv->start_barrier);
	connect_start(db);
	arm(db->depth_timer, (int64_t)db->srv->cfg->queue_depth_interval_seconds * 1000);
	arm(db->orphan_timer, ORPHAN_SWEEP_MS);
	event_base_dispatch(db->base);
	return NULL;
}

struct db *db_new(struct server *srv, const char *database_url)
{
	struct db *db = xcalloc(1, sizeof(*db));
	db->srv = srv;
	db->url = xstrdup(database_url);
	struct event_config *ec = event_config_new();
	event_config_set_flag(ec, EVENT_BASE_FLAG_NOLOCK);
	db->base = event_base_new_with_config(ec);
	event_config_free(ec);
	if (!db->base || !inbox_init(&db->inbox))
		die("db_init_failed", "");
	map_init(&db->prepared);
	db->inbox_ev = event_new(db->base, inbox_fd(&db->inbox), EV_READ | EV_PERSIST, inbox_cb, db);
	db->timer = evtimer_new(db->base, timer_cb, db);
	db->depth_timer = evtimer_new(db->base, depth_timer_cb, db);
	db->stop_timer = evtimer_new(db->base, stop_timer_cb, db);
	db->orphan_timer = evtimer_new(db->base, orphan_timer_cb, db);
	event_add(db->inbox_ev, NULL);
	metrics_gauge_set(METRIC_DB_HEALTHY, 0);
	return db;
}

bool db_start(struct db *db)
{
	return pthread_create(&db->thread, NULL, db_main, db) == 0;
}

void db_stop(struct db *db, int timeout_ms)
{
	/* The deadline travels in the message: the base is NOLOCK, so only the
	 * db thread may arm its timers. */
	struct msg_stop *m = xcalloc(1, sizeof(*m));
	m->hdr.type = MSG_STOP;
	m->timeout_ms = timeout_ms;
	inbox_push(&db->inbox, &m->hdr);
	pthread_join(db->thread, NULL);
}

void db_free(struct db *db)
{
	if (!db)
		return;
	struct db_job *j;
	while ((j = q_pop(&db->pending)))
		db_job_free(j);
	requeue_in_flight(db);
	while ((j = q_pop(&db->pending)))
		db_job_free(j);
	struct msg *m = inbox_take_all(&db->inbox);
	while (m) {
		struct msg *next = m->next;
		if (m->type == MSG_DB_JOB)
			db_job_free((struct db_job *)m);
		else
			xfree(m);
		m = next;
	}
	if (db->sock_ev)
		event_free(db->sock_ev);
	event_free(db->inbox_ev);
	event_free(db->timer);
	event_free(db->depth_timer);
	event_free(db->stop_timer);
	event_free(db->orphan_timer);
	if (db->pg)
		PQfinish(db->pg);
	forget_prepared(db);
	map_free(&db->prepared);
	event_base_free(db->base);
	inbox_destroy(&db->inbox);
	xfree(db->url);
	xfree(db);
}

void db_submit(struct db *db, struct db_job *job)
{
	job->hdr.type = MSG_DB_JOB;
	inbox_push(&db->inbox, &job->hdr);
}

void db_submit_json_write(struct db *db, const char *sql, json_t *rows)
{
	if (json_array_size(rows) == 0)
		return;
	char *text = json_dumps(rows, JSON_COMPACT);
	json_array_clear(rows);
	struct db_job *j = db_job_new(sql, DB_JOB_WRITE | DB_JOB_CUSTOM_PLAN, NULL, NULL, NULL);
	db_job_param(j, text);
	free(text); /* jansson allocates with malloc */
	db_submit(db, j);
}

bool db_healthy(const struct db *db)
{
	return atomic_load(&((struct db *)db)->healthy);
}
