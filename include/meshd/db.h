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
 * The thread also pings the server (DB_PING_INTERVAL_SECONDS), reconnects
 * with backoff min(interval, 0.5 s × 2^min(failures, 6)) when the connection
 * is lost, keeps broker_db_healthy and /health up to date, and refreshes
 * broker_queue_depth.  Jobs submitted while the database is down wait for it
 * (writes) unless they ask to fail fast (lookups a client is waiting on).
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

enum db_job_flags {
	DB_JOB_WRITE = 1 << 0,     /* part of the batch's transaction */
	DB_JOB_FAIL_FAST = 1 << 1, /* complete with an error at once while the db is down */
	/* Planned for its own parameters each time (an unnamed statement), not
	 * prepared: for the batch statements, whose rows arrive as one jsonb. */
	DB_JOB_CUSTOM_PLAN = 1 << 2,
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

/* Any thread: a fire-and-forget write whose one parameter ($1) is `rows`
 * as JSON text; rows is emptied (the caller keeps it for reuse).  Nothing
 * is sent for an empty array. */
void db_submit_json_write(struct db *db, const char *sql, json_t *rows);

/* Any thread: the latest health verdict (false until the first ping succeeds). */
bool db_healthy(const struct db *db);

#endif
