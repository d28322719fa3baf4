/* pgtest — a private PostgreSQL cluster for one test program.
 *
 * pgtest_start() makes a temp dir, runs `scripts/pg init` and `scripts/pg start`
 * (initdb as an unprivileged user when run as root; the server listens only on
 * a unix socket inside that dir, so tests never collide on a port), and fills
 * in a DATABASE_URL for it.  Call it from an unchecked (suite-level) fixture:
 * the cluster then outlives the forked tests.  Test code only.
 */
#ifndef MESHD_TEST_PGTEST_H
#define MESHD_TEST_PGTEST_H

#include <stdbool.h>
#include <stddef.h>

struct pgtest {
	char dir[256];  /* cluster root: data/, socket, log */
	char url[512];  /* postgresql://postgres@/postgres?host=<dir>&port=<port> */
	int port;       /* the number in the socket's file name */
};

/* Creates and starts a fresh cluster.  Returns false (after printing why) on failure. */
bool pgtest_start(struct pgtest *pg) __attribute__((warn_unused_result));
/* Stops the server (fast shutdown), keeping the data. */
bool pgtest_stop(struct pgtest *pg) __attribute__((warn_unused_result));
/* Starts a stopped server again, same dir and url. */
bool pgtest_restart(struct pgtest *pg) __attribute__((warn_unused_result));
/* Stops the server and removes the dir. */
void pgtest_destroy(struct pgtest *pg);

/* Creates a fresh database `name` and writes its URL to url_out. */
bool pgtest_create_db(struct pgtest *pg, const char *name, char *url_out, size_t cap)
	__attribute__((warn_unused_result));

/* Runs SQL (several statements allowed) on `url`; false on any error (printed). */
bool pgtest_exec(const char *url, const char *sql) __attribute__((warn_unused_result));
/* Runs a query returning one row, one column; copies the text value into out
 * ("" for NULL).  False on error or if the result is not exactly 1x1. */
bool pgtest_scalar(const char *url, const char *sql, char *out, size_t cap)
	__attribute__((warn_unused_result));

#endif
