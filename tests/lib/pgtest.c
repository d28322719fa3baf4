#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "pgtest.h"
#include "rmtree.h"

/* Clusters this process created and has not destroyed yet: stopped at exit
 * so a failing test program does not leave servers behind.  Only the
 * creating process does that, never a forked test child. */
#define PGTEST_MAX_LIVE 8
static char live_dirs[PGTEST_MAX_LIVE][256];
static pid_t live_owner;
static bool atexit_done;

static const char *script_path(char *buf, size_t cap)
{
	const char *src = getenv("MESHD_SRCDIR");

	if (!src || !*src)
		src = ".";
	snprintf(buf, cap, "%s/scripts/pg", src);
	return buf;
}

static void close_fds_from(int lowfd)
{
	long max;

	if (close_range((unsigned int)lowfd, ~0U, 0) == 0)
		return;
	max = sysconf(_SC_OPEN_MAX);
	if (max < 0 || max > 65536)
		max = 65536;
	for (int fd = lowfd; fd < max; fd++)
		close(fd);
}

/* Runs `bash scripts/pg cmd dir`; its stdout goes to our stderr. */
static bool run_pg(const char *cmd, const char *dir)
{
	char script[512];
	pid_t pid;
	int status;

	script_path(script, sizeof(script));
	if (access(script, R_OK) != 0) {
		fprintf(stderr, "pgtest: cannot read %s (set MESHD_SRCDIR to the source tree): %s\n",
			script, strerror(errno));
		return false;
	}
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0) {
		fprintf(stderr, "pgtest: fork: %s\n", strerror(errno));
		return false;
	}
	if (pid == 0) {
		char *argv[] = { "bash", script, (char *)cmd, (char *)dir, NULL };

		dup2(STDERR_FILENO, STDOUT_FILENO);
		close_fds_from(3);
		execv("/bin/bash", argv);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			fprintf(stderr, "pgtest: waitpid: %s\n", strerror(errno));
			return false;
		}
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return true;
	if (WIFEXITED(status))
		fprintf(stderr, "pgtest: '%s %s %s' exited with %d\n", script, cmd, dir,
			WEXITSTATUS(status));
	else
		fprintf(stderr, "pgtest: '%s %s %s' killed by signal %d\n", script, cmd, dir,
			WIFSIGNALED(status) ? WTERMSIG(status) : 0);
	return false;
}

static void forget_live(const char *dir)
{
	for (int i = 0; i < PGTEST_MAX_LIVE; i++)
		if (strcmp(live_dirs[i], dir) == 0)
			live_dirs[i][0] = '\0';
}

static void stop_live_at_exit(void)
{
	if (getpid() != live_owner)
		return;
	for (int i = 0; i < PGTEST_MAX_LIVE; i++) {
		if (!live_dirs[i][0])
			continue;
		run_pg("stop", live_dirs[i]);
		rmtree(live_dirs[i]);
		live_dirs[i][0] = '\0';
	}
}

static void remember_live(const char *dir)
{
	if (!atexit_done) {
		live_owner = getpid();
		atexit(stop_live_at_exit);
		atexit_done = true;
	}
	for (int i = 0; i < PGTEST_MAX_LIVE; i++) {
		if (!live_dirs[i][0]) {
			snprintf(live_dirs[i], sizeof(live_dirs[i]), "%s", dir);
			return;
		}
	}
}

static bool read_port(const char *dir, int *port)
{
	char path[300], buf[32];
	FILE *f;
	bool ok;

	snprintf(path, sizeof(path), "%s/port", dir);
	f = fopen(path, "r");
	if (!f) {
		fprintf(stderr, "pgtest: cannot open %s: %s\n", path, strerror(errno));
		return false;
	}
	ok = fgets(buf, sizeof(buf), f) && sscanf(buf, "%d", port) == 1 && *port > 0;
	fclose(f);
	if (!ok)
		fprintf(stderr, "pgtest: bad port number in %s\n", path);
	return ok;
}

static bool make_url(const struct pgtest *pg, const char *dbname, char *out, size_t cap)
{
	char enc[256];
	size_t n = 0;
	int len;

	/* Percent-encode the database name (it is a URL path segment). */
	for (const unsigned char *p = (const unsigned char *)dbname; *p; p++) {
		if (n + 4 > sizeof(enc))
			return false;
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.' || *p == '~')
			enc[n++] = (char)*p;
		else
			n += (size_t)snprintf(enc + n, 4, "%%%02X", *p);
	}
	enc[n] = '\0';
	len = snprintf(out, cap, "postgresql://postgres@/%s?host=%s&port=%d", enc, pg->dir, pg->port);
	return len > 0 && (size_t)len < cap;
}

bool pgtest_start(struct pgtest *pg)
{
	memset(pg, 0, sizeof(*pg));
	snprintf(pg->dir, sizeof(pg->dir), "/tmp/mpgXXXXXX");
	if (!mkdtemp(pg->dir)) {
		fprintf(stderr, "pgtest: mkdtemp: %s\n", strerror(errno));
		pg->dir[0] = '\0';
		return false;
	}
	if (!run_pg("init", pg->dir))
		goto fail;
	if (!read_port(pg->dir, &pg->port))
		goto fail;
	if (!make_url(pg, "postgres", pg->url, sizeof(pg->url))) {
		fprintf(stderr, "pgtest: url too long\n");
		goto fail;
	}
	remember_live(pg->dir);
	if (!run_pg("start", pg->dir)) {
		pgtest_destroy(pg);
		return false;
	}
	return true;
fail:
	rmtree(pg->dir);
	pg->dir[0] = '\0';
	return false;
}

bool pgtest_stop(struct pgtest *pg)
{
	return run_pg("stop", pg->dir);
}

bool pgtest_restart(struct pgtest *pg)
{
	return run_pg("start", pg->dir);
}

void pgtest_destroy(struct pgtest *pg)
{
	if (!pg->dir[0])
		return;
	if (!run_pg("stop", pg->dir))
		fprintf(stderr, "pgtest: could not stop the server in %s; removing it anyway\n", pg->dir);
	forget_live(pg->dir);
	rmtree(pg->dir);
	pg->dir[0] = '\0';
}

static void quiet_notices(void *arg, const char *message)
{
	(void)arg;
	/* NOTICE/INFO/DEBUG chatter ("relation already exists, skipping") is noise in tests. */
	if (strncmp(message, "NOTICE:", 7) == 0 || strncmp(message, "INFO:", 5) == 0 ||
	    strncmp(message, "DEBUG:", 6) == 0)
		return;
	fprintf(stderr, "pgtest: %s", message);
}

static PGconn *connect_db(const char *url)
{
	PGconn *c = PQconnectdb(url);

	if (!c) {
		fprintf(stderr, "pgtest: out of memory connecting to %s\n", url);
		return NULL;
	}
	if (PQstatus(c) != CONNECTION_OK) {
		fprintf(stderr, "pgtest: cannot connect to %s: %s", url, PQerrorMessage(c));
		PQfinish(c);
		return NULL;
	}
	PQsetNoticeProcessor(c, quiet_notices, NULL);
	return c;
}

bool pgtest_create_db(struct pgtest *pg, const char *name, char *url_out, size_t cap)
{
	PGconn *c;
	PGresult *res;
	char *ident, *sql;
	size_t len;
	bool ok;

	if (!make_url(pg, name, url_out, cap)) {
		fprintf(stderr, "pgtest: url for database '%s' does not fit\n", name);
		return false;
	}
	c = connect_db(pg->url);
	if (!c)
		return false;
	ident = PQescapeIdentifier(c, name, strlen(name));
	if (!ident) {
		fprintf(stderr, "pgtest: bad database name '%s': %s", name, PQerrorMessage(c));
		PQfinish(c);
		return false;
	}
	len = strlen(ident) + 32;
	sql = malloc(len);
	if (!sql) {
		PQfreemem(ident);
		PQfinish(c);
		return false;
	}
	snprintf(sql, len, "CREATE DATABASE %s", ident);
	PQfreemem(ident);
	res = PQexec(c, sql);
	ok = PQresultStatus(res) == PGRES_COMMAND_OK;
	if (!ok)
		fprintf(stderr, "pgtest: %s: %s", sql, PQerrorMessage(c));
	PQclear(res);
	free(sql);
	PQfinish(c);
	return ok;
}

bool pgtest_exec(const char *url, const char *sql)
{
	PGconn *c = connect_db(url);
	PGresult *res;
	ExecStatusType st;
	bool ok;

	if (!c)
		return false;
	res = PQexec(c, sql);
	st = PQresultStatus(res);
	ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_EMPTY_QUERY;
	if (!ok)
		fprintf(stderr, "pgtest: exec failed (%s): %s\n  sql: %s\n", PQresStatus(st),
			PQerrorMessage(c), sql);
	PQclear(res);
	PQfinish(c);
	return ok;
}

bool pgtest_scalar(const char *url, const char *sql, char *out, size_t cap)
{
	PGconn *c = connect_db(url);
	PGresult *res;
	bool ok = false;

	if (cap > 0)
		out[0] = '\0';
	if (!c)
		return false;
	res = PQexec(c, sql);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		fprintf(stderr, "pgtest: query failed (%s): %s\n  sql: %s\n",
			PQresStatus(PQresultStatus(res)), PQerrorMessage(c), sql);
	} else if (PQntuples(res) != 1 || PQnfields(res) != 1) {
		fprintf(stderr, "pgtest: expected 1x1 result, got %dx%d\n  sql: %s\n",
			PQntuples(res), PQnfields(res), sql);
	} else {
		const char *v = PQgetisnull(res, 0, 0) ? "" : PQgetvalue(res, 0, 0);
		size_t n = strlen(v);

		if (n >= cap) {
			fprintf(stderr, "pgtest: value of %zu bytes does not fit in %zu\n  sql: %s\n",
				n, cap, sql);
		} else {
			memcpy(out, v, n + 1);
			ok = true;
		}
	}
	PQclear(res);
	PQfinish(c);
	return ok;
}
