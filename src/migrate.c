/* migrate — applies meshd's embedded SQL migrations; see include/meshd/migrate.h.
 *
 * Modelled on the reference broker's migrator (SEMANTICS.md §A.1): one
 * session, an advisory lock around the whole run, each file applied together
 * with its tracking row in one transaction, a changed file only warned about.
 * meshd keeps its own tracking table (mesh.__meshd_migrations) because its
 * files are not the reference's; the reference's mesh.__cmh_migrations is
 * never read or written.
 */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>
#include <sodium.h>

#include "meshd/log.h"
#include "meshd/migrate.h"
#include "meshd/thread.h"

/* The same advisory lock id as the reference broker's migrator, so that a
 * reference broker and meshd starting against one database serialise their
 * DDL instead of racing on it. */
#define MIGRATE_LOCK_ID "7473773831"
#define LOCK_RETRY_SECONDS 2
#define LOCK_WAIT_SECONDS 60
/* Used unless the URL sets its own connect_timeout. */
#define CONNECT_TIMEOUT_SECONDS "10"

#define SHA256_HEX_LEN (crypto_hash_sha256_BYTES * 2)

static const char create_tracking_sql[] =
	"CREATE TABLE IF NOT EXISTS mesh.__meshd_migrations ("
	" filename text PRIMARY KEY,"
	" sha256 text NOT NULL,"
	" applied_at timestamp NOT NULL DEFAULT (now() AT TIME ZONE 'utc'))";

/* The server's own text for an error, without the trailing newline.  Only the
 * primary message: DETAIL lines can quote row values. */
static const char *pg_message(const PGresult *res, PGconn *conn, char *buf, size_t cap)
{
	const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	if (!msg)
		msg = PQerrorMessage(conn);
	snprintf(buf, cap, "%s", msg);
	size_t n = strlen(buf);
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		buf[--n] = '\0';
	return buf;
}

static const char *pg_sqlstate(const PGresult *res)
{
	const char *s = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	return s ? s : "";
}

/* Consumes res.  True if the command succeeded; logs the server's error
 * otherwise. */
static bool check(PGconn *conn, PGresult *res, const char *what, const char *file)
{
	ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
	bool ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;

	if (!ok) {
		char msg[512];
		log_error("migration_failed", "step=%s file=%s sqlstate=%s error=%s", what, file,
			  pg_sqlstate(res), pg_message(res, conn, msg, sizeof(msg)));
	}
	PQclear(res);
	return ok;
}

static bool exec_cmd(PGconn *conn, const char *sql, const char *what)
{
	return check(conn, PQexec(conn, sql), what, NULL);
}

/* Server notices ("relation ... already exists, skipping") would otherwise
 * go to stderr as plain text, breaking the JSON-lines log. */
static void on_notice(void *arg, const PGresult *res)
{
	(void)arg;
	const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
	log_debug("migration_notice", "message=%s", msg);
}

static void sleep_seconds(int s)
{
	struct timespec ts = { .tv_sec = s, .tv_nsec = 0 };
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

static double now_seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* pg_try_advisory_lock every LOCK_RETRY_SECONDS for up to LOCK_WAIT_SECONDS,
 * as the reference does (a blocking pg_advisory_lock could wait forever). */
static bool take_lock(PGconn *conn)
{
	double start = now_seconds();

	for (;;) {
		PGresult *res = PQexec(conn, "SELECT pg_try_advisory_lock(" MIGRATE_LOCK_ID ")");
		if (PQresultStatus(res) != PGRES_TUPLES_OK) {
			(void)check(conn, res, "lock", NULL); /* logs */
			return false;
		}
		bool got = PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "t") == 0;
		PQclear(res);
		if (got)
			return true;

		double waited = now_seconds() - start;
		if (waited + LOCK_RETRY_SECONDS > LOCK_WAIT_SECONDS) {
			log_error("migration_lock_timeout", "lock_id=%s waited_s=%d", MIGRATE_LOCK_ID,
				  (int)waited);
			return false;
		}
		log_info("migration_lock_busy", "lock_id=%s retry_s=%d", MIGRATE_LOCK_ID,
			 LOCK_RETRY_SECONDS);
		sleep_seconds(LOCK_RETRY_SECONDS);
	}
}

static void release_lock(PGconn *conn)
{
	PGresult *res = PQexec(conn, "SELECT pg_advisory_unlock(" MIGRATE_LOCK_ID ")");
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		char msg[512];
		/* Not fatal: the session ends right after, which releases it. */
		log_warn("migration_unlock_failed", "error=%s", pg_message(res, conn, msg, sizeof(msg)));
	}
	PQclear(res);
}

static void sha256_hex(const char *text, char out[SHA256_HEX_LEN + 1])
{
	unsigned char digest[crypto_hash_sha256_BYTES];
	crypto_hash_sha256(digest, (const unsigned char *)text, strlen(text));
	sodium_bin2hex(out, SHA256_HEX_LEN + 1, digest, sizeof(digest)); /* lowercase */
}

/* The recorded sha256 of `name` into out (empty string if not recorded).
 * False on a query error (logged). */
static bool recorded_sha(PGconn *conn, const char *name, char *out, size_t cap)
{
	const char *params[1] = { name };
	PGresult *res = PQexecParams(conn,
				     "SELECT sha256 FROM mesh.__meshd_migrations WHERE filename = $1",
				     1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		(void)check(conn, res, "lookup", name); /* logs */
		return false;
	}
	out[0] = '\0';
	if (PQntuples(res) == 1)
		snprintf(out, cap, "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	return true;
}

/* BEGIN; the file; its tracking row; COMMIT.  Rolls back on any error. */
static bool apply_one(PGconn *conn, const struct migration *m, const char *sha)
{
	const char *params[2] = { m->name, sha };

	if (!check(conn, PQexec(conn, "BEGIN"), "begin", m->name))
		return false;
	if (!check(conn, PQexec(conn, m->sql), "apply", m->name))
		goto rollback;
	if (!check(conn,
		   PQexecParams(conn,
				"INSERT INTO mesh.__meshd_migrations (filename, sha256) VALUES ($1, $2)",
				2, NULL, params, NULL, NULL, 0),
		   "record", m->name))
		goto rollback;
	if (!check(conn, PQexec(conn, "COMMIT"), "commit", m->name))
		goto rollback;
	return true;

rollback:
	PQclear(PQexec(conn, "ROLLBACK"));
	return false;
}

static int run_locked(PGconn *conn)
{
	int applied = 0;

	if (!exec_cmd(conn, "CREATE SCHEMA IF NOT EXISTS mesh", "create_schema") ||
	    !exec_cmd(conn, create_tracking_sql, "create_tracking_table"))
		return -1;

	for (size_t i = 0; i < migrations_count; i++) {
		const struct migration *m = &migrations[i];
		char sha[SHA256_HEX_LEN + 1];
		char old[SHA256_HEX_LEN + 1];

		sha256_hex(m->sql, sha);
		if (!recorded_sha(conn, m->name, old, sizeof(old)))
			return -1;
		if (old[0] != '\0') {
			if (strcmp(old, sha) != 0)
				log_warn("migration_changed", "file=%s recorded_sha256=%s sha256=%s",
					 m->name, old, sha);
			else
				log_debug("migration_skipped", "file=%s sha256=%s", m->name, sha);
			continue;
		}
		if (!apply_one(conn, m, sha))
			return -1;
		log_info("migration_applied", "file=%s sha256=%s", m->name, sha);
		applied++;
	}
	return applied;
}

int migrate_run(const char *database_url)
{
	/* connect_timeout comes first so that a value in the URL overrides it. */
	const char *keys[] = { "connect_timeout", "application_name", "dbname", NULL };
	const char *vals[] = { CONNECT_TIMEOUT_SECONDS, "meshd-migrate", database_url, NULL };
	PGconn *conn;
	int ret = -1;

	MESHD_ASSERT_ON(THREAD_MAIN);
	if (sodium_init() < 0) {
		log_error("migration_failed", "step=%s", "sodium_init");
		return -1;
	}

	conn = PQconnectdbParams(keys, vals, 1);
	if (!conn || PQstatus(conn) != CONNECTION_OK) {
		char msg[512];
		/* Never the URL itself: it may carry a password. */
		log_error("migration_connect_failed", "error=%s",
			  conn ? pg_message(NULL, conn, msg, sizeof(msg)) : "out of memory");
		PQfinish(conn);
		return -1;
	}
	PQsetNoticeReceiver(conn, on_notice, NULL);

	if (!exec_cmd(conn, "SET TIME ZONE 'UTC'", "set_timezone") ||
	    !exec_cmd(conn, "SET lock_timeout = '60000ms'", "set_lock_timeout"))
		goto out;
	if (!take_lock(conn))
		goto out;

	ret = run_locked(conn);
	release_lock(conn);
	if (ret >= 0)
		log_info("migrations_done", "applied=%d total=%zu", ret, migrations_count);
out:
	PQfinish(conn);
	return ret;
}
