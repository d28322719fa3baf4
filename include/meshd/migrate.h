/* migrate — applies meshd's SQL migrations at start-up.
 *
 * The migrations are the files of src/sql/, compiled into the binary by
 * scripts/embed-sql (src/migrations_sql.c), applied in array order.  Each
 * one is recorded in mesh.__meshd_migrations (filename, sha256 of its SQL,
 * applied_at).  The SQL is written to be a no-op on a database already
 * migrated by the reference project (SEMANTICS.md §A), so meshd and the
 * reference broker can share one database.
 */
#ifndef MESHD_MIGRATE_H
#define MESHD_MIGRATE_H

#include <stddef.h>

struct migration {
	const char *name; /* file name, e.g. "0001_schema.sql" */
	const char *sql;  /* its full text */
};

/* Defined in the generated src/migrations_sql.c. */
extern const struct migration migrations[];
extern const size_t migrations_count;

/* Main thread, start-up only (blocking libpq).  Applies every migration not
 * yet recorded, in order, each with its tracking row in one transaction.
 * Returns the number applied (>= 0), or -1 on failure (logged). */
int migrate_run(const char *database_url) __attribute__((warn_unused_result));

#endif
