/* config — the broker's settings: environment first, command-line flags over it.
 *
 * Every setting lives in one table in src/config.c ({env name, kind, default,
 * bounds, help, field}); --help, the environment and the flags are all driven
 * from it, so they cannot disagree.  A setting's flag is its environment name
 * lowercased with '_' turned into '-': BROKER_PORT is --broker-port=N or
 * --broker-port N.  Boolean flags take no separate argument: --broker-skip-migrate
 * means "1", --broker-skip-migrate=V means V.  Plus -h/--help and -V/--version.
 *
 * Parsing is strict, as the reference is at start-up (SEMANTICS.md §E.5):
 * an integer is decimal digits only — no sign, no spaces, no "0x", no
 * exponent — and an empty value is invalid, not "unset".  The first invalid
 * value stops loading with one line naming the variable (or the flag).
 * A setting given as a flag is not read from the environment at all, so a
 * flag can rescue a bad inherited variable.
 *
 * Integer fields fit in an int (bounds are at most INT_MAX); widen to 64 bits
 * before turning seconds into milliseconds.
 */
#ifndef MESHD_CONFIG_H
#define MESHD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "meshd/log.h"

struct config {
	/* Listening. */
	int port;			/* BROKER_PORT 7900; 0 = any free port (meshd's extension, for tests) */
	char *host;			/* BROKER_HOST "0.0.0.0" (meshd's own) */
	char *port_file;		/* MESHD_PORT_FILE: bound port written here (temp + rename); NULL = don't */

	/* Database. */
	char *database_url;		/* DATABASE_URL; NULL when unset, main requires it */
	bool skip_migrate;		/* BROKER_SKIP_MIGRATE, true only for exactly "1" */
	char *expected_migration;	/* EXPECTED_MIGRATION; stored, unsupported (no drizzle table) */
	int db_ping_interval_seconds;	/* DB_PING_INTERVAL_SECONDS 30 */

	/* Reference limits (PROTOCOL.md §9.1). */
	int status_ttl_seconds;		/* STATUS_TTL_SECONDS 60 */
	int hook_fresh_window_seconds;	/* HOOK_FRESH_WINDOW_SECONDS 30 */
	int max_connections_per_mesh;	/* MAX_CONNECTIONS_PER_MESH 100 */
	size_t max_message_bytes;	/* MAX_MESSAGE_BYTES 65536 */
	int hook_rate_limit_per_min;	/* HOOK_RATE_LIMIT_PER_MIN 30 */
	bool invite_v2_enabled;		/* BROKER_INVITE_V2_ENABLED, true only for exactly "1" */
	char *git_sha;			/* GIT_SHA; NULL when unset, main fills a fallback */

	/* Timers and limits of D11. */
	int workers;			/* BROKER_WORKERS: online CPUs, 1..256 */
	int send_rate_burst;		/* SEND_RATE_BURST 10; 0 = unlimited */
	int send_rate_limit_per_min;	/* SEND_RATE_LIMIT_PER_MIN 60; 0 = unlimited */
	int lease_grace_seconds;	/* LEASE_GRACE_SECONDS 90 */
	int claim_lease_seconds;	/* CLAIM_LEASE_SECONDS 30 */
	int redelivery_max_attempts;	/* REDELIVERY_MAX_ATTEMPTS 5 */
	int presence_stale_seconds;	/* PRESENCE_STALE_SECONDS 90 */
	int hello_deadline_seconds;	/* HELLO_DEADLINE_SECONDS 30 */
	int ping_interval_seconds;	/* PING_INTERVAL_SECONDS 30 */
	int pong_timeout_seconds;	/* PONG_TIMEOUT_SECONDS 75 */
	int ttl_sweep_interval_seconds;	/* TTL_SWEEP_INTERVAL_SECONDS 15 */
	int pending_status_ttl_seconds;	/* PENDING_STATUS_TTL_SECONDS 10 */
	char *claude_projects_dir;	/* CLAUDE_PROJECTS_DIR "$HOME/.claude/projects"; "" = none */

	/* meshd's own. */
	size_t db_max_pending_bytes;	/* DB_MAX_PENDING_BYTES 256 MiB: held writes, in bytes */
	size_t ws_max_message_bytes;	/* WS_MAX_MESSAGE_BYTES 16 MiB: larger message → close 1009 */
	size_t ws_hello_max_message_bytes; /* WS_HELLO_MAX_MESSAGE_BYTES 64 KiB: the cap before the handshake */
	size_t ws_partial_budget_bytes;	/* WS_PARTIAL_BUDGET_BYTES 256 MiB: unfinished messages, all workers */
	size_t conn_max_output_bytes;	/* CONN_MAX_OUTPUT_BYTES 8 MiB: per-connection output bound */
	int queue_depth_interval_seconds; /* QUEUE_DEPTH_INTERVAL_SECONDS 30 */
	int db_max_pending_jobs;	/* DB_MAX_PENDING_JOBS 100000: bound on rows of jobs held while the db is down */
	int shutdown_timeout_seconds;	/* SHUTDOWN_TIMEOUT_SECONDS 5 */
	enum log_level log_level;	/* MESHD_LOG_LEVEL "info" */
};

enum config_status {
	CONFIG_OK = 0,
	CONFIG_EXIT,		/* --help or --version printed to `out`: exit 0 */
	CONFIG_INVALID,		/* one-line message in err: exit 1 */
};

/* Main thread, start-up only.  Fills *c with the defaults, then the
 * environment (getenv), then argv (argv[0] is the program name).  On
 * CONFIG_INVALID, err holds one line without a trailing newline, such as
 *   meshd: invalid STATUS_TTL_SECONDS="abc": expected a positive integer
 * and on anything but CONFIG_OK *c owns no memory.  config_free(c) is safe
 * after any outcome. */
enum config_status config_load(struct config *c, int argc, char **argv, FILE *out,
			       char *err, size_t errlen) __attribute__((warn_unused_result));

/* Any thread.  Every setting's flag, variable, default and one-line help,
 * then -h/--help and -V/--version. */
void config_print_help(FILE *out);

/* Main thread.  Frees the strings and clears them; safe to call twice. */
void config_free(struct config *c);

#endif
