/* dbjob — one unit of work for the db thread, and the FIFO that holds jobs.
 *
 * A job is static SQL text, copied parameters, a lane and flags, and where
 * its completion goes: the inbox to answer on and an opaque owner, handed
 * back to done(job, owner) on the thread that reads that inbox (Redis bio.h:
 * comp_fn(user_data, user_ptr)).  With no inbox the completion runs on the
 * db thread itself (the thread's own pings).  The db thread never looks at
 * the owner or at the ids a job carries for it.
 */
#ifndef MESHD_DBJOB_H
#define MESHD_DBJOB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "meshd/inbox.h"

struct db_job;

#define DB_MAX_PARAMS 16

enum db_lane { DB_LANE_QUEUE, DB_LANE_STATE, DB_LANES };

enum db_job_flags {
	DB_JOB_WRITE = 1 << 0,     /* part of the batch's transaction */
	DB_JOB_FAIL_FAST = 1 << 1, /* complete with an error at once while the db is down */
	/* Planned for its own parameters each time (an unnamed statement), not
	 * prepared: for the batch statements, whose rows arrive as one jsonb. */
	DB_JOB_CUSTOM_PLAN = 1 << 2,
	DB_JOB_LANE_QUEUE = 1 << 3, /* runs on DB_LANE_QUEUE (see db.h, Lanes) */
};

/* Where a completion goes: posted to `inbox` as MSG_DB_DONE, and run there
 * with `owner` (the submitter's per-thread state, opaque to the db). */
struct db_reply {
	struct inbox *inbox;
	void *owner;
};

/* job->ok, job->res and job->error tell the outcome; the job is freed after. */
typedef void (*db_done_fn)(struct db_job *job, void *owner);

/* Row 0, column i of a result: its text, or NULL for SQL NULL. */
static inline const char *db_value(const PGresult *res, int i)
{
	return PQgetisnull(res, 0, i) ? NULL : PQgetvalue(res, 0, i);
}

/* Row 0, column i of a result is boolean true. */
static inline bool db_true(const PGresult *res, int i)
{
	return !PQgetisnull(res, 0, i) && PQgetvalue(res, 0, i)[0] == 't';
}

/* A timestamp column as the protocol writes times: ISO 8601 UTC with
 * milliseconds (sessions run in UTC, db.c). */
#define SQL_ISO8601(col) "to_char(" col ", 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

struct db_job {
	struct msg hdr;
	unsigned flags;
	const char *sql;               /* static text, $1..$n placeholders */
	int nparams;
	char *params[DB_MAX_PARAMS];   /* owned copies; NULL is SQL NULL */
	struct db_reply reply;         /* inbox NULL: the completion runs on the db thread */
	db_done_fn done;
	void *arg;
	void (*free_arg)(void *arg);   /* frees arg with the job (NULL: not owned) */
	/* Rows it writes (1 unless a batch says more): DB_MAX_PENDING_JOBS
	 * bounds the rows held, so a batch of a thousand counts a thousand. */
	unsigned rows;
	/* Bytes it holds in the broker: its parameters (counted by
	 * db_job_param*), plus what its owner adds for its arg (a batch of
	 * sends holds their ciphertexts for the pushes).  DB_MAX_PENDING_BYTES
	 * bounds their sum. */
	size_t bytes;
	/* Who the completion is for, in the owner's terms, found again by id
	 * (never by a pointer kept across the round trip). */
	uint32_t conn_slot, conn_gen;
	char *mesh_id;                 /* owned */
	char presence_id[33];
	/* Outcome, filled in by the db thread. */
	bool ok;
	PGresult *res;                 /* owned by the job; NULL unless ok */
	char error[200];
};

/* Any thread.  reply NULL: fire and forget (done, if any, runs on the db thread). */
struct db_job *db_job_new(const char *sql, unsigned flags, const struct db_reply *reply,
			  db_done_fn done, void *arg) __attribute__((returns_nonnull));
/* Copies value (NULL for SQL NULL).  At most DB_MAX_PARAMS. */
void db_job_param(struct db_job *job, const char *value);
/* Takes value (xmalloc'd, len bytes before its NUL): a batch's text is not
 * copied. */
void db_job_param_take(struct db_job *job, char *value, size_t len);
void db_job_paramf(struct db_job *job, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void db_job_free(struct db_job *job);
/* The thread that read MSG_DB_DONE: runs done(job, owner), frees the job. */
void db_job_finish(struct db_job *job);

/* A FIFO of jobs linked through hdr.next, its length in rows and bytes. */
struct db_jobq {
	struct msg *head;
	struct msg *tail;
	size_t rows;
	size_t bytes;
};

void db_jobq_push(struct db_jobq *q, struct db_job *j);
struct db_job *db_jobq_pop(struct db_jobq *q);
/* Puts everything of `front` (in order) before everything in q; empties front. */
void db_jobq_prepend(struct db_jobq *q, struct db_jobq *front);

#endif
