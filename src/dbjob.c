/* dbjob — jobs for the db thread and their FIFO; see include/meshd/dbjob.h. */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "meshd/alloc.h"
#include "meshd/dbjob.h"

struct db_job *db_job_new(const char *sql, unsigned flags, const struct db_reply *reply,
			  db_done_fn done, void *arg)
{
	struct db_job *j = xcalloc(1, sizeof(*j));
	j->hdr.type = MSG_DB_JOB;
	j->sql = sql;
	j->flags = flags;
	if (reply)
		j->reply = *reply;
	j->done = done;
	j->arg = arg;
	j->rows = 1;
	return j;
}

void db_job_param(struct db_job *job, const char *value)
{
	if (job->nparams >= DB_MAX_PARAMS)
		abort(); /* a programming error: the SQL has a fixed parameter count */
	if (!value) {
		job->params[job->nparams++] = NULL;
		return;
	}
	job->params[job->nparams++] = xstrdup(value);
	job->bytes += strlen(value) + 1;
}

void db_job_param_take(struct db_job *job, char *value, size_t len)
{
	if (job->nparams >= DB_MAX_PARAMS)
		abort();
	job->params[job->nparams++] = value;
	job->bytes += len + 1;
}

/* Formatted at any length: a parameter cut short is a different value
 * (an id list cut at 64 bytes was a malformed array). */
void db_job_paramf(struct db_job *job, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || job->nparams >= DB_MAX_PARAMS)
		abort(); /* a bad format or parameter count: a programming error */
	char *buf = xmalloc((size_t)n + 1);
	va_start(ap, fmt);
	vsnprintf(buf, (size_t)n + 1, fmt, ap);
	va_end(ap);
	job->params[job->nparams++] = buf;
	job->bytes += (size_t)n + 1;
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

void db_job_finish(struct db_job *job)
{
	if (job->done)
		job->done(job, job->reply.owner);
	db_job_free(job);
}

void db_jobq_push(struct db_jobq *q, struct db_job *j)
{
	j->hdr.next = NULL;
	if (q->tail)
		q->tail->next = &j->hdr;
	else
		q->head = &j->hdr;
	q->tail = &j->hdr;
	q->rows += j->rows;
	q->bytes += j->bytes;
}

struct db_job *db_jobq_pop(struct db_jobq *q)
{
	struct msg *m = q->head;
	if (!m)
		return NULL;
	q->head = m->next;
	if (!q->head)
		q->tail = NULL;
	struct db_job *j = (struct db_job *)m;
	q->rows -= j->rows;
	q->bytes -= j->bytes;
	m->next = NULL;
	return j;
}

void db_jobq_prepend(struct db_jobq *q, struct db_jobq *front)
{
	if (!front->head)
		return;
	front->tail->next = q->head;
	if (!q->tail)
		q->tail = front->tail;
	q->head = front->head;
	q->rows += front->rows;
	q->bytes += front->bytes;
	front->head = front->tail = NULL;
	front->rows = front->bytes = 0;
}
