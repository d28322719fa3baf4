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
 * A job names the inbox its completion goes back to and an opaque owner
 * (dbjob.h); the thread posts it there as MSG_DB_DONE and the owner's
 * thread runs done(job, owner).  The db thread never knows what a worker,
 * a connection or a mesh is (Redis bio.h: comp_fn(user_data, user_ptr)).
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

#include <pthread.h>
#include <stdbool.h>

struct config;
struct db;
struct db_job;

/* Main thread, start-up: the thread waits at `start` with every other one. */
struct db *db_new(const struct config *cfg, pthread_barrier_t *start);
bool db_start(struct db *db) __attribute__((warn_unused_result));
/* Main thread: asks the thread to finish what it holds (bounded by
 * timeout_ms) and waits for it. */
void db_stop(struct db *db, int timeout_ms);
void db_free(struct db *db);

/* A database without a thread or a server, for harnesses that drive one
 * worker's code alone (tests/fuzz/fuzz_dispatch.c): db_submit() hands each
 * job to run(job, arg) on the submitting thread, which owns it from then on
 * and completes it later (job->ok, ->res, ->error, then db_job_finish());
 * completing it inside run() would re-enter the submitter.  db_healthy() is
 * true; db_free() frees it. */
struct db *db_new_stub(void (*run)(struct db_job *job, void *arg), void *arg)
	__attribute__((returns_nonnull));

/* Any thread: hands the job over (ownership moves). */
void db_submit(struct db *db, struct db_job *job);

/* Any thread: the latest health verdict (false until the first ping succeeds). */
bool db_healthy(const struct db *db);

#endif
