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
#include "meshd/dbjob.h"
#include "meshd/log.h"
#include "meshd/map.h"
#include "meshd/metrics.h"
#include "meshd/thread.h"

/* One pipeline carries at most this many jobs; the rest wait for the next. */
#define BATCH_MAX 512
/* A connection attempt that has not completed by then is abandoned. */
#define CONNECT_TIMEOUT_MS 10000

enum db_state { DB_DOWN, DB_CONNECTING, DB_READY };

/* One command of a pipeline in flight and, once read, its result. */
enum batch_cmd_kind { CMD_BEGIN, CMD_COMMIT, CMD_PREPARE, CMD_JOB };

struct batch_cmd {
	enum batch_cmd_kind kind;
	struct db_job *job;
	PGresult *res;
};

struct msg_stop {
	struct msg hdr; /* MSG_STOP */
	int timeout_ms;
};

/* One PostgreSQL connection and its pipeline: a lane (see db.h). */
struct dbconn {
	struct db *db;
	int lane;
	PGconn *pg;
	enum db_state state;
	int failures;
	int64_t connect_started_ms;
	struct event *sock_ev;
	struct event *timer;      /* ping / reconnect */
	bool healthy;

	struct db_jobq pending;
	/* Each job has a prepare in front of it at most: 2 commands per job. */
	struct batch_cmd batch[2 * BATCH_MAX + 2];
	/* Statements prepared on this connection: SQL text -> name.  Every
	 * job's SQL is a static string, so it is parsed and planned once per
	 * connection instead of once per execution. */
	struct map prepared;
	unsigned nprepared;
	int ncmds;
	int cursor;       /* command receiving results */
	bool cursor_has_result;
	bool in_flight;
	bool want_flush;
	int64_t sent_ns;          /* the pipeline in flight: when, and its rows */
	unsigned sent_rows;
};

/* The lanes are the histograms' label values, in the same order. */
_Static_assert((int)DB_LANE_QUEUE == (int)LANE_LABEL_QUEUE &&
		       (int)DB_LANE_STATE == (int)LANE_LABEL_STATE,
	       "db lanes and their metric labels");

struct db {
	const struct config *cfg;
	pthread_barrier_t *start;
	char *url;
	pthread_t thread;
	struct event_base *base;
	struct inbox inbox;
	struct event *inbox_ev;
	struct event *depth_timer;
	struct event *orphan_timer;
	struct event *stale_timer;
	struct event *stop_timer;
	bool stopping;

	struct dbconn conns[DB_LANES];
	atomic_bool healthy;

	/* db_new_stub(): no thread, no connections; every job goes to run(). */
	void (*run)(struct db_job *job, void *arg);
	void *run_arg;
};

static void sock_cb(evutil_socket_t fd, short what, void *arg);
static void send_batch(struct dbconn *c);
static void submit_internal(struct dbconn *c, const char *sql, db_done_fn done);
static void accept_job(struct db *db, struct db_job *j);
static void send_batches(struct db *db);

/* ---- completions ----------------------------------------------------- */

/* Delivers the outcome: to the inbox the job names, or here. */
static void complete(struct db *db, struct db_job *j, bool ok, PGresult *res, const char *error)
{
	(void)db;
	j->ok = ok;
	j->res = res;
	if (error)
		snprintf(j->error, sizeof(j->error), "%s", error);
	if (j->reply.inbox) {
		j->hdr.type = MSG_DB_DONE;
		inbox_push(j->reply.inbox, &j->hdr);
		return;
	}
	db_job_finish(j);
}

static void fail_fast_jobs(struct db *db, struct db_jobq *q)
{
	struct db_jobq keep = { 0 };
	struct db_job *j;
	while ((j = db_jobq_pop(q)))
		if (j->flags & DB_JOB_FAIL_FAST)
			complete(db, j, false, NULL, "database unavailable");
		else
			db_jobq_push(&keep, j);
	*q = keep;
}

/* ---- health and connection ------------------------------------------- */

static void forget_prepared(struct dbconn *c)
{
	const char *k;
	void *v;
	for (size_t i = 0; map_next(&c->prepared, &i, &k, &v);)
		xfree(v);
	map_free(&c->prepared);
	map_init(&c->prepared);
}

/* The broker is healthy while every lane is. */
static void set_healthy(struct dbconn *c, bool up)
{
	c->healthy = up;
	bool all = true;
	for (int i = 0; i < DB_LANES; i++)
		all = all && c->db->conns[i].healthy;
	bool was = atomic_exchange(&c->db->healthy, all);
	metrics_gauge_set(METRIC_DB_HEALTHY, all ? 1 : 0);
	if (was != all)
		log_info(all ? "db_up" : "db_down", "lane=%d failures=%d", c->lane, c->failures);
}

static int64_t retry_delay_ms(const struct dbconn *c)
{
	int64_t cap = (int64_t)c->db->cfg->db_ping_interval_seconds * 1000;
	int shift = c->failures < 6 ? c->failures : 6;
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
static void requeue_in_flight(struct dbconn *c)
{
	struct db_jobq again = { 0 };
	for (int i = 0; i < c->ncmds; i++) {
		struct batch_cmd *s = &c->batch[i];
		PQclear(s->res);
		s->res = NULL;
		if (s->kind == CMD_JOB)
			db_jobq_push(&again, s->job);
	}
	c->ncmds = 0;
	c->in_flight = false;
	db_jobq_prepend(&c->pending, &again);
}

static void connection_lost(struct dbconn *c, const char *why)
{
	if (c->pg) {
		log_warn("db_connection_lost", "lane=%d error=%s", c->lane, why);
		if (c->sock_ev) {
			event_free(c->sock_ev);
			c->sock_ev = NULL;
		}
		PQfinish(c->pg);
		c->pg = NULL;
	}
	forget_prepared(c);
	c->failures++;
	c->state = DB_DOWN;
	set_healthy(c, false);
	requeue_in_flight(c);
	fail_fast_jobs(c->db, &c->pending);
	if (!c->db->stopping)
		arm(c->timer, retry_delay_ms(c));
}

static void watch_socket(struct dbconn *c, short what)
{
	if (c->sock_ev)
		event_free(c->sock_ev);
	c->sock_ev = event_new(c->db->base, PQsocket(c->pg), what, sock_cb, c);
	event_add(c->sock_ev, NULL);
}

static void ping_done(struct db_job *j, void *owner)
{
	(void)owner;
	struct dbconn *c = j->arg;
	if (!j->ok) {
		log_warn("db_ping_failed", "lane=%d error=%s", c->lane, j->error);
		if (c->state == DB_READY)
			connection_lost(c, j->error);
		return;
	}
	c->failures = 0;
	set_healthy(c, true);
	arm(c->timer, (int64_t)c->db->cfg->db_ping_interval_seconds * 1000);
}

static void depth_done(struct db_job *j, void *owner)
{
	(void)owner;
	if (j->ok && PQntuples(j->res) == 1)
		metrics_gauge_set(METRIC_QUEUE_DEPTH, strtoll(PQgetvalue(j->res, 0, 0), NULL, 10));
}

static const char depth_sql[] = "SELECT count(*) FROM mesh.message_queue WHERE delivered_at IS NULL";

static void connect_ready(struct dbconn *c)
{
	if (PQsetnonblocking(c->pg, 1) != 0 || PQenterPipelineMode(c->pg) != 1) {
		connection_lost(c, PQerrorMessage(c->pg));
		return;
	}
	c->state = DB_READY;
	watch_socket(c, EV_READ | EV_PERSIST);
	log_info("db_connected", "lane=%d server_version=%d", c->lane, PQserverVersion(c->pg));
	/* Health is proven by a ping, not by the handshake alone. */
	submit_internal(c, "SELECT 1", ping_done);
	if (c->lane == DB_LANE_QUEUE)
		submit_internal(c, depth_sql, depth_done);
}

static void connect_poll(struct dbconn *c)
{
	if (clock_mono_ms() - c->connect_started_ms > CONNECT_TIMEOUT_MS) {
		connection_lost(c, "connect timeout");
		return;
	}
	switch (PQconnectPoll(c->pg)) {
	case PGRES_POLLING_READING:
		watch_socket(c, EV_READ);
		break;
	case PGRES_POLLING_WRITING:
		watch_socket(c, EV_WRITE);
		break;
	case PGRES_POLLING_OK:
		connect_ready(c);
		break;
	default:
		connection_lost(c, PQerrorMessage(c->pg));
		break;
	}
}

static void connect_start(struct dbconn *c)
{
	/* Every timestamp is UTC, in the session as in the process (SEMANTICS §0). */
	const char *keys[] = { "dbname", "options", "application_name", NULL };
	const char *vals[] = { c->db->url, "-c TimeZone=UTC", "meshd", NULL };
	c->pg = PQconnectStartParams(keys, vals, 1);
	if (!c->pg || PQstatus(c->pg) == CONNECTION_BAD) {
		connection_lost(c, c->pg ? PQerrorMessage(c->pg) : "out of memory");
		return;
	}
	c->state = DB_CONNECTING;
	c->connect_started_ms = clock_mono_ms();
	arm(c->timer, CONNECT_TIMEOUT_MS + 100);
	connect_poll(c);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dbconn *c = arg;
	switch (c->state) {
	case DB_DOWN:
		if (!c->db->stopping)
			connect_start(c);
		break;
	case DB_CONNECTING:
		connect_poll(c); /* enforces the connect timeout */
		break;
	case DB_READY:
		submit_internal(c, "SELECT 1", ping_done);
		break;
	}
}

/* §6.7: undelivered rows older than 7 days are dropped, hourly. */
#define ORPHAN_SWEEP_MS (3600 * 1000)

static void orphan_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct db *db = arg;
	accept_job(db, db_job_new("DELETE FROM mesh.message_queue WHERE delivered_at IS NULL"
				  " AND created_at < now() - interval '7 days'",
				  DB_JOB_WRITE | DB_JOB_FAIL_FAST, NULL, NULL, NULL));
	send_batches(db);
	arm(db->orphan_timer, ORPHAN_SWEEP_MS);
}

/* The stale-presence sweep (SEMANTICS §B.7), process-wide: a presence row
 * whose last_ping_at is older than PRESENCE_STALE_SECONDS is marked
 * disconnected whichever meshd wrote it, so a crashed process's rows do not
 * stay "connected" forever.  A live presence is never caught: its pongs
 * write last_ping_at at least once per ping interval (presence_heartbeat),
 * and the window holds two of them (config.c).  The sweep runs on the state
 * lane, in order behind the heartbeats already queued, so heartbeats held
 * through an outage commit (with a fresh now()) before it; it fails fast,
 * because sweeps queued through an outage would only pile up.
 * In-memory state is untouched: a grace presence marked here is listed no
 * more (presence_listed), and a reattach restores its row. */
static int64_t stale_period_ms(const struct db *db)
{
	int64_t ms = (int64_t)db->cfg->presence_stale_seconds * 1000 / 3;
	return ms < 1000 ? 1000 : ms;
}

static void stale_done(struct db_job *j, void *owner)
{
	(void)owner;
	if (j->ok && j->res && strcmp(PQcmdTuples(j->res), "0") != 0)
		log_info("presence_stale_swept", "rows=%s", PQcmdTuples(j->res));
}

static void stale_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct db *db = arg;
	struct db_job *j = db_job_new("UPDATE mesh.presence SET disconnected_at = now()"
				      " WHERE disconnected_at IS NULL"
				      " AND last_ping_at < now() - make_interval(secs => $1::int)",
				      DB_JOB_WRITE | DB_JOB_FAIL_FAST, NULL, stale_done, NULL);
	db_job_paramf(j, "%d", db->cfg->presence_stale_seconds);
	accept_job(db, j);
	send_batches(db);
	arm(db->stale_timer, stale_period_ms(db));
}

static void depth_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct db *db = arg;
	struct dbconn *c = &db->conns[DB_LANE_QUEUE];
	if (c->state == DB_READY)
		submit_internal(c, depth_sql, depth_done);
	arm(db->depth_timer, (int64_t)db->cfg->queue_depth_interval_seconds * 1000);
}

/* ---- batches ----------------------------------------------------------- */

static void add_cmd(struct dbconn *c, enum batch_cmd_kind kind, struct db_job *j)
{
	c->batch[c->ncmds++] = (struct batch_cmd){ .kind = kind, .job = j, .res = NULL };
}

static bool send_plain(struct dbconn *c, const char *sql)
{
	return PQsendQueryParams(c->pg, sql, 0, NULL, NULL, NULL, NULL, 0) == 1;
}

/* A job's statement, prepared first if this connection has not seen it
 * (or, DB_JOB_CUSTOM_PLAN, sent unnamed).  Its commands are taken before
 * anything is sent, so a failure midway leaves the job where
 * requeue_in_flight() finds it. */
static bool send_job(struct dbconn *c, struct db_job *j)
{
	if (j->flags & DB_JOB_CUSTOM_PLAN) {
		add_cmd(c, CMD_JOB, j);
		return PQsendQueryParams(c->pg, j->sql, j->nparams, NULL,
					 (const char *const *)j->params, NULL, NULL, 0) == 1;
	}
	const char *name = map_get(&c->prepared, j->sql);
	bool prepare = name == NULL;
	if (prepare) {
		char buf[24];
		snprintf(buf, sizeof(buf), "m%u", c->nprepared++);
		name = xstrdup(buf);
		map_put(&c->prepared, j->sql, (void *)name);
		add_cmd(c, CMD_PREPARE, j);
	}
	add_cmd(c, CMD_JOB, j);
	if (prepare && PQsendPrepare(c->pg, name, j->sql, j->nparams, NULL) != 1)
		return false;
	return PQsendQueryPrepared(c->pg, name, j->nparams, (const char *const *)j->params, NULL,
				   NULL, 0) == 1;
}

/* Jobs taken for a batch but never sent go back to the front, in order. */
static void unsend(struct dbconn *c, struct db_job **jobs, int n)
{
	struct db_jobq back = { 0 };
	for (int i = 0; i < n; i++)
		db_jobq_push(&back, jobs[i]);
	db_jobq_prepend(&c->pending, &back);
}

static void flush_output(struct dbconn *c)
{
	int r = PQflush(c->pg);
	if (r < 0) {
		connection_lost(c, PQerrorMessage(c->pg));
		return;
	}
	bool pending_out = r == 1;
	if (pending_out != c->want_flush) {
		c->want_flush = pending_out;
		watch_socket(c, (short)(EV_READ | EV_PERSIST | (pending_out ? EV_WRITE : 0)));
	}
}

/* Writes first, inside one transaction; then reads; then one Sync. */
static void send_batch(struct dbconn *c)
{
	if (c->state != DB_READY || c->in_flight || !c->pending.head)
		return;
	struct db_job *writes[BATCH_MAX], *reads[BATCH_MAX];
	int nw = 0, nr = 0;
	struct db_job *j;
	c->sent_rows = 0;
	while (nw + nr < BATCH_MAX && (j = db_jobq_pop(&c->pending))) {
		c->sent_rows += j->rows;
		if (j->flags & DB_JOB_WRITE)
			writes[nw++] = j;
		else
			reads[nr++] = j;
	}
	c->ncmds = 0;
	c->cursor = 0;
	c->cursor_has_result = false;
	bool ok = true;
	int w_sent = 0, r_sent = 0;
	if (nw) {
		add_cmd(c, CMD_BEGIN, NULL);
		ok = send_plain(c, "BEGIN");
		while (ok && w_sent < nw)
			ok = send_job(c, writes[w_sent++]);
		add_cmd(c, CMD_COMMIT, NULL);
		ok = ok && send_plain(c, "COMMIT");
	}
	while (ok && r_sent < nr)
		ok = send_job(c, reads[r_sent++]);
	if (!ok) {
		unsend(c, reads + r_sent, nr - r_sent);
		unsend(c, writes + w_sent, nw - w_sent);
	}
	c->in_flight = true;
	c->sent_ns = clock_mono_ns();
	if (!ok || PQpipelineSync(c->pg) != 1) {
		connection_lost(c, PQerrorMessage(c->pg));
		return;
	}
	flush_output(c);
}

/* The Sync arrived: every command has its result.  Hand out the outcomes. */
static void finish_batch(struct dbconn *c)
{
	bool has_txn = c->ncmds > 0 && c->batch[0].kind == CMD_BEGIN;
	bool committed = false;
	for (int i = 0; i < c->ncmds; i++)
		if (c->batch[i].kind == CMD_COMMIT)
			committed = c->batch[i].res &&
				    PQresultStatus(c->batch[i].res) == PGRES_COMMAND_OK;
	struct db_jobq again = { 0 };
	for (int i = 0; i < c->ncmds; i++) {
		struct batch_cmd *s = &c->batch[i];
		PGresult *res = s->res;
		s->res = NULL;
		if (s->kind == CMD_PREPARE && (!res || PQresultStatus(res) != PGRES_COMMAND_OK)) {
			/* Not prepared after all: prepare again on the next use. */
			xfree(map_del(&c->prepared, s->job->sql));
		}
		if (s->kind != CMD_JOB) {
			PQclear(res);
			continue;
		}
		ExecStatusType st = res ? PQresultStatus(res) : PGRES_PIPELINE_ABORTED;
		bool done_ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
		bool rolled_back = has_txn && (s->job->flags & DB_JOB_WRITE) && !committed;
		if (done_ok && !rolled_back) {
			complete(c->db, s->job, true, res, NULL);
		} else if (st == PGRES_FATAL_ERROR || st == PGRES_NONFATAL_ERROR) {
			char msg[200];
			snprintf(msg, sizeof(msg), "%s", PQresultErrorMessage(res));
			msg[strcspn(msg, "\n")] = '\0';
			PQclear(res);
			log_warn("db_job_failed", "lane=%d error=%s", c->lane, msg);
			complete(c->db, s->job, false, NULL, msg);
		} else {
			/* Skipped by the pipeline abort, or rolled back with its batch. */
			PQclear(res);
			db_jobq_push(&again, s->job);
		}
	}
	c->ncmds = 0;
	c->in_flight = false;
	metrics_observe(HIST_DB_BATCH_ROWS, c->lane, c->sent_rows);
	metrics_observe(HIST_DB_ROUND_TRIP, c->lane, (double)(clock_mono_ns() - c->sent_ns) / 1e9);
	db_jobq_prepend(&c->pending, &again);
}

static void read_results(struct dbconn *c)
{
	if (PQconsumeInput(c->pg) != 1) {
		connection_lost(c, PQerrorMessage(c->pg));
		return;
	}
	while (c->in_flight && !PQisBusy(c->pg)) {
		PGresult *r = PQgetResult(c->pg);
		if (!r) {
			/* End of one command's results. */
			if (c->cursor_has_result) {
				c->cursor++;
				c->cursor_has_result = false;
			}
			continue;
		}
		if (PQresultStatus(r) == PGRES_PIPELINE_SYNC) {
			PQclear(r);
			finish_batch(c);
			break;
		}
		if (c->cursor >= c->ncmds || c->cursor_has_result) {
			PQclear(r); /* a second result for one command: not ours to keep */
			continue;
		}
		c->batch[c->cursor].res = r;
		c->cursor_has_result = true;
	}
	if (PQstatus(c->pg) == CONNECTION_BAD)
		connection_lost(c, PQerrorMessage(c->pg));
}

/* Stopping ends once no lane has work it can still do. */
static void maybe_finish_stop(struct db *db)
{
	if (!db->stopping)
		return;
	for (int i = 0; i < DB_LANES; i++) {
		const struct dbconn *c = &db->conns[i];
		if (c->in_flight || (c->pending.head && c->state == DB_READY))
			return;
	}
	event_base_loopbreak(db->base);
}

static void sock_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dbconn *c = arg;
	if (c->state == DB_CONNECTING) {
		connect_poll(c);
		return;
	}
	if (c->state != DB_READY)
		return;
	if (what & EV_WRITE)
		flush_output(c);
	if (c->state == DB_READY && (what & EV_READ))
		read_results(c);
	send_batch(c);
	maybe_finish_stop(c->db);
}

/* ---- inbox and thread -------------------------------------------------- */

/* The rows held over both lanes; their bytes too, when asked. */
static size_t pending_total(const struct db *db, size_t *bytes)
{
	size_t n = 0, b = 0;
	for (int i = 0; i < DB_LANES; i++) {
		n += db->conns[i].pending.rows;
		b += db->conns[i].pending.bytes;
	}
	if (bytes)
		*bytes = b;
	return n;
}

static void enqueue(struct dbconn *c, struct db_job *j)
{
	if (c->state != DB_READY && (j->flags & DB_JOB_FAIL_FAST)) {
		complete(c->db, j, false, NULL, "database unavailable");
		return;
	}
	/* Writes wait for the database, but not without bound: past the caps
	 * (in rows and in bytes) a new job fails at once (a send gets an error
	 * ack and is retried by its client) instead of growing the broker's
	 * memory.  An empty queue takes any one job, however big. */
	const struct config *cfg = c->db->cfg;
	size_t bytes;
	size_t pending = pending_total(c->db, &bytes);
	bool rows_over = pending + j->rows > (size_t)cfg->db_max_pending_jobs;
	bool bytes_over = bytes + j->bytes > cfg->db_max_pending_bytes;
	if (pending > 0 && (rows_over || bytes_over)) {
		metrics_inc_label(METRIC_LIMIT_REFUSALS, rows_over ? LIMIT_DB_ROWS : LIMIT_DB_BYTES);
		complete(c->db, j, false, NULL, "database unavailable: too many pending writes");
		return;
	}
	db_jobq_push(&c->pending, j);
}

static void accept_job(struct db *db, struct db_job *j)
{
	enqueue(&db->conns[(j->flags & DB_JOB_LANE_QUEUE) ? DB_LANE_QUEUE : DB_LANE_STATE], j);
}

static void submit_internal(struct dbconn *c, const char *sql, db_done_fn done)
{
	enqueue(c, db_job_new(sql, DB_JOB_FAIL_FAST, NULL, done, c));
	send_batch(c);
}

static void stop_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct db *db = arg;
	log_warn("db_stop_timeout", "pending=%zu", pending_total(db, NULL));
	event_base_loopbreak(db->base);
}

static void send_batches(struct db *db)
{
	for (int i = 0; i < DB_LANES; i++)
		send_batch(&db->conns[i]);
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
			evtimer_del(db->stale_timer);
			arm(db->stop_timer, ((struct msg_stop *)m)->timeout_ms);
			xfree(m);
		} else {
			xfree(m);
		}
		m = next;
	}
	send_batches(db);
	maybe_finish_stop(db);
}

static void *db_main(void *arg)
{
	struct db *db = arg;
	thread_set_role(THREAD_DB, 0);
	thread_set_name("meshd-db");
	pthread_barrier_wait(db->start);
	for (int i = 0; i < DB_LANES; i++)
		connect_start(&db->conns[i]);
	arm(db->depth_timer, (int64_t)db->cfg->queue_depth_interval_seconds * 1000);
	arm(db->orphan_timer, ORPHAN_SWEEP_MS);
	arm(db->stale_timer, stale_period_ms(db));
	event_base_dispatch(db->base);
	return NULL;
}

struct db *db_new(const struct config *cfg, pthread_barrier_t *start)
{
	struct db *db = xcalloc(1, sizeof(*db));
	db->cfg = cfg;
	db->start = start;
	db->url = xstrdup(cfg->database_url);
	struct event_config *ec = event_config_new();
	event_config_set_flag(ec, EVENT_BASE_FLAG_NOLOCK);
	db->base = event_base_new_with_config(ec);
	event_config_free(ec);
	if (!db->base || !inbox_init(&db->inbox))
		die("db_init_failed", "reason=%s", "event base or inbox");
	for (int i = 0; i < DB_LANES; i++) {
		struct dbconn *c = &db->conns[i];
		c->db = db;
		c->lane = i;
		map_init(&c->prepared);
		c->timer = evtimer_new(db->base, timer_cb, c);
	}
	db->inbox_ev = event_new(db->base, inbox_fd(&db->inbox), EV_READ | EV_PERSIST, inbox_cb, db);
	db->depth_timer = evtimer_new(db->base, depth_timer_cb, db);
	db->stop_timer = evtimer_new(db->base, stop_timer_cb, db);
	db->orphan_timer = evtimer_new(db->base, orphan_timer_cb, db);
	db->stale_timer = evtimer_new(db->base, stale_timer_cb, db);
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

static void dbconn_free(struct dbconn *c)
{
	struct db_job *j;
	requeue_in_flight(c);
	while ((j = db_jobq_pop(&c->pending)))
		db_job_free(j);
	if (c->sock_ev)
		event_free(c->sock_ev);
	event_free(c->timer);
	if (c->pg)
		PQfinish(c->pg);
	forget_prepared(c);
	map_free(&c->prepared);
}

struct db *db_new_stub(void (*run)(struct db_job *job, void *arg), void *arg)
{
	struct db *db = xcalloc(1, sizeof(*db));
	db->run = run;
	db->run_arg = arg;
	atomic_store(&db->healthy, true);
	return db;
}

void db_free(struct db *db)
{
	if (!db)
		return;
	if (db->run) {
		xfree(db);
		return;
	}
	for (int i = 0; i < DB_LANES; i++)
		dbconn_free(&db->conns[i]);
	struct msg *m = inbox_take_all(&db->inbox);
	while (m) {
		struct msg *next = m->next;
		if (m->type == MSG_DB_JOB)
			db_job_free((struct db_job *)m);
		else
			xfree(m);
		m = next;
	}
	event_free(db->inbox_ev);
	event_free(db->depth_timer);
	event_free(db->stop_timer);
	event_free(db->orphan_timer);
	event_free(db->stale_timer);
	event_base_free(db->base);
	inbox_destroy(&db->inbox);
	xfree(db->url);
	xfree(db);
}

void db_submit(struct db *db, struct db_job *job)
{
	if (db->run) {
		db->run(job, db->run_arg);
		return;
	}
	job->hdr.type = MSG_DB_JOB;
	inbox_push(&db->inbox, &job->hdr);
}

bool db_healthy(const struct db *db)
{
	return atomic_load(&((struct db *)db)->healthy);
}
