/* dbstream — adaptive batching of one statement; see include/meshd/dbstream.h. */
#include "config.h"

#include <stdlib.h>

#include "meshd/db.h"
#include "meshd/dbstream.h"
#include "meshd/thread.h"

void db_stream_init(struct db_stream *s, int id, const char *sql, unsigned flags,
		    struct db *db, const struct db_reply *reply)
{
	s->id = id;
	s->sql = sql;
	s->flags = flags;
	s->rows = json_array();
	s->inflight = 0;
	s->db = db;
	s->reply = *reply;
}

void db_stream_free(struct db_stream *s)
{
	json_decref(s->rows);
	s->rows = NULL;
}

void db_stream_add(struct db_stream *s, json_t *row)
{
	MESHD_ASSERT_ON_WORKER(s);
	if (row)
		json_array_append_new(s->rows, row);
}

bool db_stream_may_send(const struct db_stream *s, size_t rows, bool force)
{
	return rows > 0 && (force || s->inflight < DB_STREAM_INFLIGHT || rows >= DB_STREAM_ROWS_MAX);
}

void db_stream_send(struct db_stream *s, struct db_job *j)
{
	MESHD_ASSERT_ON_WORKER(s);
	s->inflight++;
	db_submit(s->db, j);
}

void db_stream_done(struct db_stream *s)
{
	MESHD_ASSERT_ON_WORKER(s);
	s->inflight--;
}

static void stream_job_done(struct db_job *j, void *owner)
{
	(void)owner;
	db_stream_done(j->arg);
}

void db_stream_flush(struct db_stream *s, bool force)
{
	MESHD_ASSERT_ON_WORKER(s);
	if (!db_stream_may_send(s, json_array_size(s->rows), force))
		return;
	char *text = json_dumps(s->rows, JSON_COMPACT);
	struct db_job *j = db_job_new(s->sql, DB_JOB_CUSTOM_PLAN | s->flags, &s->reply,
				      stream_job_done, s);
	j->rows = (unsigned)json_array_size(s->rows);
	json_array_clear(s->rows);
	db_job_param(j, text);
	free(text); /* jansson allocates with malloc */
	db_stream_send(s, j);
}
