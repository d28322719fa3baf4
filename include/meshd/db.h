/* db — the database thread: every PostgreSQL conversation of a running broker.
 *
 * Workers never block on PostgreSQL.  They build a job (SQL text + copied
 * parameters + a completion callback) and db_submit() it; the db thread
 * gathers everything that arrived during one loop iteration into one batch
 * and sends it as one libpq pipeline:
 *
 *   BEGIN; <every write job>; COMMIT; <every read job>; Sync
 *
 * so a batch of writes is one transaction (group commit: one fsync for many
 * rows).  A write's completion is delivered only after its COMMIT succeeded,
 * so a caller that acknowledges on completion acknowledges only what is
 * durable (D3).  A job that fails is completed with its error; the others of
 * its batch, rolled back or skipped by the pipeline abort, are sent again.
 * Completions travel back as MSG_DB_DONE to the inbox of the worker that
 * submitted the job and run there.
 *
 * Lanes.  The thread holds DB_LANES connections, each with its own pipeline
 * and batches, so one PostgreSQL backend is not the ceiling of the broker's
 * write rate:
 *   DB_LANE_QUEUE   sends' queue inserts and drains (DB_JOB_LANE_QUEUE):
 *                   the path a send's ack and push wait on;
 *   DB_LANE_STATE   everything else: client_acks, audit appends (write-
 *                   behind), presence and status writes, lookups,
 *                   message_status, sweeps.
 * Order holds within a lane only.  The split keeps the two deadlock-free:
 * a queue-lane job never waits for a lock the state lane may hold (it
 * inserts fresh rows, takes FOR KEY SHARE on mesh and member rows, which
 * meshd never deletes or re-keys, and claims with SKIP LOCKED; the audit
 * chains' advisory locks are taken on the state lane only), so a wait can
 * only go one way.  A write that must be visible to a later read runs in
 * the same lane (client_ack, then message_status).  What crosses lanes is
 * always ordered by a completion: a row is pushed, and so acked, only after
 * its insert committed.
 *
 * The thread also pings the server on each connection
 * (DB_PING_INTERVAL_SECONDS), reconnects one with backoff
 * min(interval, 0.5 s × 2^min(failures, 6)) when it is lost, keeps
 * broker_db_healthy and /health up to date (healthy while every lane is),
 * and refreshes broker_queue_depth.  Jobs submitted while the database is
 * down wait for it (writes, up to DB_MAX_PENDING_JOBS rows) unless they ask
 * to fail fast (lookups a client is waiting on).
 */
#ifndef MESHD_DB_H
#define MESHD_DB_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "meshd/inbox.h"

struct db;
struct server;
struct worker;
struct db_job;

#define DB_MAX_PARAMS 16

enum db_lane { DB_LANE_QUEUE, DB_LANE_STATE, DB_LANES };

enum db_job_flags {
	DB_JOB_WRITE = 1 << 0,     /* part of the batch's transaction */
	DB_JOB_FAIL_FAST = 1 << 1, /* complete with an error at once while the db is down */
	/* Planned for its own parameters each time (an unnamed statement), not
	 * prepared: for the batch statements, whose rows arrive as one jsonb. */
	DB_JOB_CUSTOM_PLAN = 1 << 2,
	DB_JOB_LANE_QUEUE = 1 << 3, /* runs on DB_LANE_QUEUE (see Lanes above) */
};

/* Runs on the origin worker (or on the db thread when origin is NULL).
 * job->ok, job->res and job->error tell the outcome; the job is freed after. */
typedef void (*db_done_fn)(struct db_job *job);

struct db_job {
	struct msg hdr;
	unsigned flags;
	const char *sql;               /* static text, $1..$n placeholders */
	int nparams;
	char *params[DB_MAX_PARAMS];   /* owned copies; NULL is SQL NULL */
	struct worker *origin;
	db_done_fn done;
	void *arg;
	void (*free_arg)(void *arg);   /* frees arg with the job (NULL: not owned) */
	/* Rows it writes (1 unless a batch says more): DB_MAX_PENDING_JOBS
	 * bounds the rows held, so a batch of a thousand counts a thousand. */
	unsigned rows;
	/* Who the completion is for, found again by id on the origin worker
	 * (never by a pointer kept across the round trip). */
	uint32_t conn_slot, conn_gen;
	char *mesh_id;                 /* owned */
	char presence_id[33];
	/* Outcome, filled in by the db thread. */
	bool ok;
	PGresult *res;                 /* owned by the job; NULL unless ok */
	char error[200];
};

/* Any thread. */
struct db_job *db_job_new(const char *sql, unsigned flags, struct worker *origin, db_done_fn done,
			  void *arg);
/* Copies value (NULL for SQL NULL).  At most DB_MAX_PARAMS. */
void db_job_param(struct db_job *job, const char *value);
void db_job_paramf(struct db_job *job, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void db_job_free(struct db_job *job);

/* Main thread, start-up. */
struct db *db_new(struct server *srv, const char *database_url);
bool db_start(struct db *db) __attribute__((warn_unused_result));
/* Main thread: asks the thread to finish what it holds (bounded by
 * timeout_ms) and waits for it. */
void db_stop(struct db *db, int timeout_ms);
void db_free(struct db *db);

/* Any thread: hands the job over (ownership moves). */
void db_submit(struct db *db, struct db_job *job);

/* A worker's stream of one batch statement (adaptive batching).  Rows
 * gather on the worker; a flush sends them as one job, planned for its
 * rows (DB_JOB_CUSTOM_PLAN), unless DB_STREAM_INFLIGHT jobs of the stream
 * are still in flight: then they keep gathering until a completion comes
 * back, so batches grow with the load instead of the number of loop
 * iterations (a busy worker iterates often, with a few frames each).  An
 * idle stream sends at once; past DB_STREAM_ROWS_MAX rows it sends anyway,
 * so a stalled database meets DB_MAX_PENDING_JOBS, not the worker's memory.
 * The statement's one parameter ($1) is the rows as a JSON array. */
#define DB_STREAM_INFLIGHT 1
#define DB_STREAM_ROWS_MAX 1024

struct db_stream {
	const char *sql;
	unsigned flags;   /* DB_JOB_WRITE and the lane */
	json_t *rows;     /* gathered since the last send */
	int inflight;
};

void db_stream_init(struct db_stream *s, const char *sql, unsigned flags);
void db_stream_free(struct db_stream *s);
/* May a stream with `rows` gathered send now?  (force: the worker's last
 * flush.)  For callers that build their own job and call
 * db_stream_sent/db_stream_done around it. */
bool db_stream_may_send(const struct db_stream *s, size_t rows, bool force);
void db_stream_sent(struct db_stream *s);
void db_stream_done(struct db_stream *s);
/* Worker w: sends the gathered rows if db_stream_may_send(). */
void db_stream_flush(struct db_stream *s, struct worker *w, bool force);

/* Any thread: the latest health verdict (false until the first ping succeeds). */
bool db_healthy(const struct db *db);

#endif
