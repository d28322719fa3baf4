/* Unit tests: the db layer's bookkeeping without a database — the job FIFO
 * (src/dbjob.c: order, prepend, rows counted as DB_MAX_PENDING_JOBS counts
 * them), completions handed to their owner, and the adaptive batching of a
 * stream (src/dbstream.c), with db_submit() stubbed here so no db thread or
 * PostgreSQL is linked in.
 */
#include "config.h"

#include <check.h>

#include "check_run.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "meshd/db.h"
#include "meshd/dbjob.h"
#include "meshd/dbstream.h"
#include "meshd/inbox.h"
#include "meshd/thread.h"

/* ---- the stub: what would have gone to the db thread ---------------------- */

static struct db_job *submitted[64];
static int nsubmitted;

void db_submit(struct db *db, struct db_job *job)
{
	(void)db;
	ck_assert_int_lt(nsubmitted, 64);
	submitted[nsubmitted++] = job;
}

static void reset(void)
{
	for (int i = 0; i < nsubmitted; i++)
		db_job_free(submitted[i]);
	nsubmitted = 0;
	thread_set_role(THREAD_WORKER, 3);
}

/* The db thread's part: the job comes back done (through the inbox). */
static void complete(struct inbox *in, struct db_job *j)
{
	j->ok = true;
	j->hdr.type = MSG_DB_DONE;
	inbox_push(in, &j->hdr);
	struct msg *m = inbox_take_all(in);
	ck_assert_ptr_eq(m, &j->hdr);
	ck_assert_ptr_null(m->next);
	db_job_finish((struct db_job *)m);
}

/* ---- jobs ------------------------------------------------------------------- */

static struct db_job *job_rows(unsigned rows)
{
	struct db_job *j = db_job_new("SELECT 1", DB_JOB_WRITE, NULL, NULL, NULL);
	j->rows = rows;
	return j;
}

START_TEST(jobq_is_fifo_and_counts_rows)
{
	struct db_jobq q = { 0 };
	struct db_job *a = job_rows(1), *b = job_rows(1000), *c = job_rows(3);
	db_jobq_push(&q, a);
	db_jobq_push(&q, b);
	db_jobq_push(&q, c);
	ck_assert_uint_eq(q.rows, 1004);
	ck_assert_ptr_eq(db_jobq_pop(&q), a);
	ck_assert_uint_eq(q.rows, 1003);
	ck_assert_ptr_eq(db_jobq_pop(&q), b);
	ck_assert_ptr_eq(db_jobq_pop(&q), c);
	ck_assert_uint_eq(q.rows, 0);
	ck_assert_ptr_null(db_jobq_pop(&q));
	ck_assert_ptr_null(q.tail);
	db_job_free(a);
	db_job_free(b);
	db_job_free(c);
}
END_TEST

START_TEST(jobq_prepend_puts_a_batch_back_in_front_in_order)
{
	struct db_jobq q = { 0 }, again = { 0 }, empty = { 0 };
	struct db_job *j[5];
	for (int i = 0; i < 5; i++)
		j[i] = job_rows((unsigned)i + 1);
	db_jobq_push(&q, j[3]);
	db_jobq_push(&q, j[4]);
	db_jobq_push(&again, j[0]);
	db_jobq_push(&again, j[1]);
	db_jobq_push(&again, j[2]);
	db_jobq_prepend(&q, &again);
	ck_assert_ptr_null(again.head);
	ck_assert_uint_eq(again.rows, 0);
	ck_assert_uint_eq(q.rows, 15);
	db_jobq_prepend(&q, &empty); /* nothing to put back: unchanged */
	for (int i = 0; i < 5; i++)
		ck_assert_ptr_eq(db_jobq_pop(&q), j[i]);
	/* Into an empty queue: the tail follows. */
	db_jobq_push(&again, j[0]);
	db_jobq_prepend(&q, &again);
	ck_assert_ptr_eq(q.tail, &j[0]->hdr);
	db_jobq_push(&q, j[1]);
	ck_assert_ptr_eq(db_jobq_pop(&q), j[0]);
	ck_assert_ptr_eq(db_jobq_pop(&q), j[1]);
	for (int i = 0; i < 5; i++)
		db_job_free(j[i]);
}
END_TEST

static void *seen_owner;
static int done_calls;
static void record_done(struct db_job *j, void *owner)
{
	(void)j;
	seen_owner = owner;
	done_calls++;
}

START_TEST(completion_runs_with_the_jobs_owner)
{
	struct inbox in;
	ck_assert(inbox_init(&in));
	int owner;
	struct db_reply reply = { &in, &owner };
	struct db_job *j = db_job_new("SELECT 1", 0, &reply, record_done, NULL);
	db_job_param(j, "x");
	db_job_param(j, NULL);
	db_job_paramf(j, "%d", 42);
	ck_assert_int_eq(j->nparams, 3);
	ck_assert_str_eq(j->params[0], "x");
	ck_assert_ptr_null(j->params[1]);
	ck_assert_str_eq(j->params[2], "42");
	ck_assert_uint_eq(j->rows, 1);
	done_calls = 0;
	complete(&in, j);
	ck_assert_int_eq(done_calls, 1);
	ck_assert_ptr_eq(seen_owner, &owner);
	inbox_destroy(&in);
}
END_TEST

static int freed_args;
static void free_arg(void *arg)
{
	freed_args++;
	free(arg);
}

START_TEST(job_frees_what_it_owns)
{
	freed_args = 0;
	struct db_job *j = db_job_new("SELECT 1", 0, NULL, NULL, malloc(16));
	j->free_arg = free_arg;
	db_job_free(j);
	db_job_free(NULL);
	ck_assert_int_eq(freed_args, 1);
}
END_TEST

/* ---- streams ---------------------------------------------------------------- */

static json_t *row(int i)
{
	return json_pack("{s:i}", "n", i);
}

START_TEST(idle_stream_sends_at_once_then_gathers_while_in_flight)
{
	reset();
	struct inbox in;
	ck_assert(inbox_init(&in));
	struct db_reply reply = { &in, NULL };
	struct db_stream s;
	db_stream_init(&s, 3, "SELECT $1", DB_JOB_WRITE | DB_JOB_LANE_QUEUE, NULL, &reply);

	db_stream_flush(&s, false); /* nothing gathered: nothing sent */
	ck_assert_int_eq(nsubmitted, 0);

	db_stream_add(&s, row(1));
	db_stream_add(&s, NULL); /* ignored */
	db_stream_flush(&s, false);
	ck_assert_int_eq(nsubmitted, 1);
	struct db_job *first = submitted[0];
	ck_assert_str_eq(first->sql, "SELECT $1");
	ck_assert_uint_eq(first->flags, DB_JOB_WRITE | DB_JOB_LANE_QUEUE | DB_JOB_CUSTOM_PLAN);
	ck_assert_uint_eq(first->rows, 1);
	ck_assert_str_eq(first->params[0], "[{\"n\":1}]");
	ck_assert_ptr_eq(first->reply.inbox, &in);
	ck_assert_int_eq(s.inflight, 1);

	/* In flight: later rows gather, whatever the number of flushes. */
	for (int i = 2; i <= 4; i++) {
		db_stream_add(&s, row(i));
		db_stream_flush(&s, false);
	}
	ck_assert_int_eq(nsubmitted, 1);

	/* Its completion comes back: the next flush sends all three as one. */
	nsubmitted = 0;
	complete(&in, first);
	ck_assert_int_eq(s.inflight, 0);
	db_stream_flush(&s, false);
	ck_assert_int_eq(nsubmitted, 1);
	ck_assert_uint_eq(submitted[0]->rows, 3);
	ck_assert_str_eq(submitted[0]->params[0], "[{\"n\":2},{\"n\":3},{\"n\":4}]");
	complete(&in, submitted[0]);
	nsubmitted = 0;
	ck_assert_int_eq(s.inflight, 0);
	db_stream_free(&s);
	inbox_destroy(&in);
}
END_TEST

START_TEST(full_or_forced_stream_sends_while_in_flight)
{
	reset();
	struct inbox in;
	ck_assert(inbox_init(&in));
	struct db_reply reply = { &in, NULL };
	struct db_stream s;
	db_stream_init(&s, 3, "SELECT $1", DB_JOB_WRITE, NULL, &reply);
	db_stream_add(&s, row(0));
	db_stream_flush(&s, false);
	ck_assert_int_eq(nsubmitted, 1);
	for (int i = 0; i < DB_STREAM_ROWS_MAX - 1; i++)
		db_stream_add(&s, row(i));
	db_stream_flush(&s, false);
	ck_assert_int_eq(nsubmitted, 1); /* one short of the cap: waits */
	db_stream_add(&s, row(-1));
	db_stream_flush(&s, false);
	ck_assert_int_eq(nsubmitted, 2); /* at the cap: sent anyway */
	ck_assert_uint_eq(submitted[1]->rows, DB_STREAM_ROWS_MAX);
	ck_assert_int_eq(s.inflight, 2);
	db_stream_add(&s, row(7));
	db_stream_flush(&s, true); /* the worker's last flush */
	ck_assert_int_eq(nsubmitted, 3);
	ck_assert_int_eq(s.inflight, 3);
	for (int i = 0; i < 3; i++)
		complete(&in, submitted[i]);
	nsubmitted = 0;
	ck_assert_int_eq(s.inflight, 0);
	ck_assert(!db_stream_may_send(&s, 0, true));
	ck_assert(db_stream_may_send(&s, 1, false));
	db_stream_free(&s);
	inbox_destroy(&in);
}
END_TEST

static Suite *dbstream_suite(void)
{
	Suite *s = suite_create("dbstream");
	TCase *jobs = tcase_create("jobs");
	tcase_add_test(jobs, jobq_is_fifo_and_counts_rows);
	tcase_add_test(jobs, jobq_prepend_puts_a_batch_back_in_front_in_order);
	tcase_add_test(jobs, completion_runs_with_the_jobs_owner);
	tcase_add_test(jobs, job_frees_what_it_owns);
	suite_add_tcase(s, jobs);
	TCase *streams = tcase_create("streams");
	tcase_add_test(streams, idle_stream_sends_at_once_then_gathers_while_in_flight);
	tcase_add_test(streams, full_or_forced_stream_sends_while_in_flight);
	suite_add_tcase(s, streams);
	return s;
}

int main(void)
{
	return check_run(dbstream_suite());
}
