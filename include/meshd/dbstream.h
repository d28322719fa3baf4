/* dbstream — a submitter's stream of one batch statement (adaptive
 * batching), on the thread that owns it (a worker's shard).
 *
 * Rows gather between loop iterations; a flush sends them as one job,
 * planned for its rows (DB_JOB_CUSTOM_PLAN), unless DB_STREAM_INFLIGHT jobs
 * of the stream are still in flight: then they keep gathering until a
 * completion comes back, so batches grow with the load instead of the
 * number of loop iterations (a busy worker iterates often, with a few
 * frames each).  An idle stream sends at once; past DB_STREAM_ROWS_MAX rows
 * it sends anyway, so a stalled database meets DB_MAX_PENDING_JOBS, not the
 * worker's memory.  The statement's one parameter ($1) is the rows as a
 * JSON array.
 *
 * Owner thread only (the thread that reads the stream's reply inbox).
 */
#ifndef MESHD_DBSTREAM_H
#define MESHD_DBSTREAM_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "meshd/dbjob.h"

struct db;

#define DB_STREAM_INFLIGHT 1
#define DB_STREAM_ROWS_MAX 1024

struct db_stream {
	int id;                   /* the owning worker's index (ownership assertions) */
	const char *sql;
	unsigned flags;           /* DB_JOB_WRITE and the lane */
	json_t *rows;             /* gathered since the last send */
	int inflight;             /* jobs sent, completion not back yet */
	struct db *db;
	struct db_reply reply;    /* where the completions come back */
};

void db_stream_init(struct db_stream *s, int id, const char *sql, unsigned flags,
		    struct db *db, const struct db_reply *reply);
void db_stream_free(struct db_stream *s);
/* Gathers one row (takes the reference; NULL is ignored). */
void db_stream_add(struct db_stream *s, json_t *row);
/* May a stream with `rows` gathered send now?  (force: the owner's last
 * flush.)  For callers that build their own job and send it with
 * db_stream_send() and db_stream_done() on its completion. */
bool db_stream_may_send(const struct db_stream *s, size_t rows, bool force);
/* Submits a job of the stream's (counted in flight until db_stream_done). */
void db_stream_send(struct db_stream *s, struct db_job *j);
void db_stream_done(struct db_stream *s);
/* Sends the gathered rows if db_stream_may_send(). */
void db_stream_flush(struct db_stream *s, bool force);

#endif
