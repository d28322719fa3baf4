/* Unit tests for config: defaults, environment, flags, and the strict
 * rejection of every malformed value.  Check forks each test, so setenv()
 * here cannot leak into the next test. */
#include "config.h"

#include <check.h>

#include "check_run.h"
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "meshd/config.h"
#include "meshd/log.h"

/* Every variable config reads.  Kept here by hand on purpose: the --help
 * test checks the table against this list, so a setting dropped from the
 * table (or renamed) fails a test instead of silently vanishing. */
static const char *const all_env[] = {
	"BROKER_PORT", "BROKER_HOST", "MESHD_PORT_FILE", "DATABASE_URL",
	"BROKER_SKIP_MIGRATE", "EXPECTED_MIGRATION", "DB_PING_INTERVAL_SECONDS",
	"STATUS_TTL_SECONDS", "HOOK_FRESH_WINDOW_SECONDS", "MAX_CONNECTIONS_PER_MESH",
	"MAX_MESSAGE_BYTES", "HOOK_RATE_LIMIT_PER_MIN", "BROKER_INVITE_V2_ENABLED",
	"GIT_SHA", "BROKER_WORKERS", "SEND_RATE_BURST", "SEND_RATE_LIMIT_PER_MIN",
	"LEASE_GRACE_SECONDS", "CLAIM_LEASE_SECONDS", "REDELIVERY_MAX_ATTEMPTS",
	"HELLO_DEADLINE_SECONDS",
	"PING_INTERVAL_SECONDS", "PONG_TIMEOUT_SECONDS", "PRESENCE_STALE_SECONDS",
	"TTL_SWEEP_INTERVAL_SECONDS", "PENDING_STATUS_TTL_SECONDS", "CLAUDE_PROJECTS_DIR", "WS_MAX_MESSAGE_BYTES",
	"WS_HELLO_MAX_MESSAGE_BYTES", "WS_PARTIAL_BUDGET_BYTES",
	"CONN_MAX_OUTPUT_BYTES", "QUEUE_DEPTH_INTERVAL_SECONDS", "DB_MAX_PENDING_JOBS",
	"DB_MAX_PENDING_BYTES", "SHUTDOWN_TIMEOUT_SECONDS", "MESHD_LOG_LEVEL",
};
#define N_ENV (sizeof(all_env) / sizeof(all_env[0]))

/* The settings that must be positive integers with no upper bound but INT_MAX. */
static const char *const positive_env[] = {
	"STATUS_TTL_SECONDS", "HOOK_FRESH_WINDOW_SECONDS", "MAX_CONNECTIONS_PER_MESH",
	"MAX_MESSAGE_BYTES", "HOOK_RATE_LIMIT_PER_MIN", "LEASE_GRACE_SECONDS",
	"CLAIM_LEASE_SECONDS", "HELLO_DEADLINE_SECONDS", "PING_INTERVAL_SECONDS",
	"PONG_TIMEOUT_SECONDS", "TTL_SWEEP_INTERVAL_SECONDS", "PENDING_STATUS_TTL_SECONDS",
	"DB_PING_INTERVAL_SECONDS", "WS_MAX_MESSAGE_BYTES", "WS_HELLO_MAX_MESSAGE_BYTES",
	"CONN_MAX_OUTPUT_BYTES",
	"QUEUE_DEPTH_INTERVAL_SECONDS", "DB_MAX_PENDING_JOBS", "SHUTDOWN_TIMEOUT_SECONDS",
};
#define N_POSITIVE (sizeof(positive_env) / sizeof(positive_env[0]))

static struct config cfg;
static char err[512];
static char *out_buf;
static size_t out_len;

static void setup(void)
{
	for (size_t i = 0; i < N_ENV; i++)
		unsetenv(all_env[i]);
	setenv("HOME", "/home/tester", 1);
	memset(&cfg, 0, sizeof(cfg));
	err[0] = '\0';
	out_buf = NULL;
	out_len = 0;
}

static void teardown(void)
{
	config_free(&cfg);
	free(out_buf);
}

/* Loads with argv = {"meshd", args..., NULL}; help/version text lands in out_buf. */
static enum config_status load_argv(int argc, char **argv)
{
	FILE *out;
	enum config_status st;

	free(out_buf);
	out_buf = NULL;
	out = open_memstream(&out_buf, &out_len);
	ck_assert_ptr_nonnull(out);
	st = config_load(&cfg, argc, argv, out, err, sizeof(err));
	fclose(out);
	return st;
}

#define LOAD(...) \
	load_argv((int)(sizeof((char *[]){ "meshd", __VA_ARGS__, NULL }) / sizeof(char *)) - 1, \
		  (char *[]){ "meshd", __VA_ARGS__, NULL })
#define LOAD_NONE() load_argv(1, (char *[]){ "meshd", NULL })

static enum config_status load_env(const char *name, const char *value)
{
	setenv(name, value, 1);
	return LOAD_NONE();
}

static void assert_one_line_naming(const char *name)
{
	ck_assert_msg(strstr(err, name) != NULL, "error \"%s\" does not name %s", err, name);
	ck_assert_msg(strncmp(err, "meshd: ", 7) == 0, "error \"%s\" lacks the prefix", err);
	ck_assert_ptr_null(strchr(err, '\n'));
}

static int expected_workers(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	if (n < 1)
		return 1;
	return n > 256 ? 256 : (int)n;
}

START_TEST(test_defaults)
{
	ck_assert_int_eq(LOAD_NONE(), CONFIG_OK);
	ck_assert_str_eq(err, "");
	ck_assert_int_eq(cfg.port, 7900);
	ck_assert_str_eq(cfg.host, "0.0.0.0");
	ck_assert_ptr_null(cfg.port_file);
	ck_assert_ptr_null(cfg.database_url);
	ck_assert(!cfg.skip_migrate);
	ck_assert_ptr_null(cfg.expected_migration);
	ck_assert_int_eq(cfg.db_ping_interval_seconds, 30);
	ck_assert_int_eq(cfg.status_ttl_seconds, 60);
	ck_assert_int_eq(cfg.hook_fresh_window_seconds, 30);
	ck_assert_int_eq(cfg.max_connections_per_mesh, 100);
	ck_assert_uint_eq(cfg.max_message_bytes, 65536);
	ck_assert_int_eq(cfg.hook_rate_limit_per_min, 30);
	ck_assert(!cfg.invite_v2_enabled);
	ck_assert_ptr_null(cfg.git_sha);
	ck_assert_int_eq(cfg.workers, expected_workers());
	ck_assert_int_eq(cfg.send_rate_burst, 10);
	ck_assert_int_eq(cfg.send_rate_limit_per_min, 60);
	ck_assert_int_eq(cfg.lease_grace_seconds, 90);
	ck_assert_int_eq(cfg.claim_lease_seconds, 30);
	ck_assert_int_eq(cfg.hello_deadline_seconds, 30);
	ck_assert_int_eq(cfg.ping_interval_seconds, 30);
	ck_assert_int_eq(cfg.pong_timeout_seconds, 75);
	ck_assert_int_eq(cfg.ttl_sweep_interval_seconds, 15);
	ck_assert_int_eq(cfg.pending_status_ttl_seconds, 10);
	ck_assert_str_eq(cfg.claude_projects_dir, "/home/tester/.claude/projects");
	ck_assert_uint_eq(cfg.ws_max_message_bytes, 16777216);
	ck_assert_uint_eq(cfg.ws_hello_max_message_bytes, 65536);
	ck_assert_uint_eq(cfg.ws_partial_budget_bytes, 268435456);
	ck_assert_uint_eq(cfg.conn_max_output_bytes, 8388608);
	ck_assert_int_eq(cfg.queue_depth_interval_seconds, 30);
	ck_assert_int_eq(cfg.db_max_pending_jobs, 100000);
	ck_assert_uint_eq(cfg.db_max_pending_bytes, 268435456);
	ck_assert_int_eq(cfg.shutdown_timeout_seconds, 5);
	ck_assert_int_eq(cfg.log_level, LOG_INFO);
}
END_TEST

START_TEST(test_projects_dir_home)
{
	unsetenv("HOME");
	ck_assert_int_eq(LOAD_NONE(), CONFIG_OK);
	ck_assert_str_eq(cfg.claude_projects_dir, "");
	config_free(&cfg);

	setenv("HOME", "", 1);
	ck_assert_int_eq(LOAD_NONE(), CONFIG_OK);
	ck_assert_str_eq(cfg.claude_projects_dir, "");
	config_free(&cfg);

	setenv("HOME", "/", 1);
	ck_assert_int_eq(LOAD_NONE(), CONFIG_OK);
	ck_assert_str_eq(cfg.claude_projects_dir, "/.claude/projects");
	config_free(&cfg);

	setenv("HOME", "/home/x/", 1);
	ck_assert_int_eq(LOAD_NONE(), CONFIG_OK);
	ck_assert_str_eq(cfg.claude_projects_dir, "/home/x/.claude/projects");
	config_free(&cfg);

	/* An explicit value is taken literally, the empty one included. */
	setenv("CLAUDE_PROJECTS_DIR", "", 1);
	ck_assert_int_eq(LOAD_NONE(), CONFIG_OK);
	ck_assert_str_eq(cfg.claude_projects_dir, "");
	config_free(&cfg);

	setenv("CLAUDE_PROJECTS_DIR", "$HOME/p", 1);
	ck_assert_int_eq(LOAD_NONE(), CONFIG_OK);
	ck_assert_str_eq(cfg.claude_projects_dir, "$HOME/p");
}
END_TEST

START_TEST(test_env_overrides)
{
	setenv("BROKER_PORT", "0", 1);
	setenv("BROKER_HOST", "127.0.0.1", 1);
	setenv("MESHD_PORT_FILE", "/tmp/port", 1);
	setenv("DATABASE_URL", "postgresql://u@localhost/db", 1);
	setenv("BROKER_SKIP_MIGRATE", "1", 1);
	setenv("EXPECTED_MIGRATION", "abc123", 1);
	setenv("DB_PING_INTERVAL_SECONDS", "2", 1);
	setenv("STATUS_TTL_SECONDS", "3", 1);
	setenv("HOOK_FRESH_WINDOW_SECONDS", "4", 1);
	setenv("MAX_CONNECTIONS_PER_MESH", "5", 1);
	setenv("MAX_MESSAGE_BYTES", "6", 1);
	setenv("HOOK_RATE_LIMIT_PER_MIN", "7", 1);
	setenv("BROKER_INVITE_V2_ENABLED", "1", 1);
	setenv("GIT_SHA", "deadbee", 1);
	setenv("BROKER_WORKERS", "256", 1);
	setenv("SEND_RATE_BURST", "0", 1);
	setenv("SEND_RATE_LIMIT_PER_MIN", "0", 1);
	setenv("LEASE_GRACE_SECONDS", "8", 1);
	setenv("CLAIM_LEASE_SECONDS", "9", 1);
	setenv("HELLO_DEADLINE_SECONDS", "10", 1);
	setenv("PING_INTERVAL_SECONDS", "11", 1);
	setenv("PONG_TIMEOUT_SECONDS", "12", 1);
	setenv("PRESENCE_STALE_SECONDS", "22", 1);
	setenv("REDELIVERY_MAX_ATTEMPTS", "0", 1);
	setenv("TTL_SWEEP_INTERVAL_SECONDS", "13", 1);
	setenv("PENDING_STATUS_TTL_SECONDS", "14", 1);
	setenv("CLAUDE_PROJECTS_DIR", "/srv/projects", 1);
	setenv("WS_MAX_MESSAGE_BYTES", "2147483647", 1);
	setenv("CONN_MAX_OUTPUT_BYTES", "16", 1);
	setenv("QUEUE_DEPTH_INTERVAL_SECONDS", "17", 1);
	setenv("SHUTDOWN_TIMEOUT_SECONDS", "18", 1);
	setenv("MESHD_LOG_LEVEL", "debug", 1);

	ck_assert_int_eq(LOAD_NONE(), CONFIG_OK);
	ck_assert_int_eq(cfg.port, 0);
	ck_assert_str_eq(cfg.host, "127.0.0.1");
	ck_assert_str_eq(cfg.port_file, "/tmp/port");
	ck_assert_str_eq(cfg.database_url, "postgresql://u@localhost/db");
	ck_assert(cfg.skip_migrate);
	ck_assert_str_eq(cfg.expected_migration, "abc123");
	ck_assert_int_eq(cfg.db_ping_interval_seconds, 2);
	ck_assert_int_eq(cfg.status_ttl_seconds, 3);
	ck_assert_int_eq(cfg.hook_fresh_window_seconds, 4);
	ck_assert_int_eq(cfg.max_connections_per_mesh, 5);
	ck_assert_uint_eq(cfg.max_message_bytes, 6);
	ck_assert_int_eq(cfg.hook_rate_limit_per_min, 7);
	ck_assert(cfg.invite_v2_enabled);
	ck_assert_str_eq(cfg.git_sha, "deadbee");
	ck_assert_int_eq(cfg.workers, 256);
	ck_assert_int_eq(cfg.send_rate_burst, 0);
	ck_assert_int_eq(cfg.send_rate_limit_per_min, 0);
	ck_assert_int_eq(cfg.lease_grace_seconds, 8);
	ck_assert_int_eq(cfg.claim_lease_seconds, 9);
	ck_assert_int_eq(cfg.hello_deadline_seconds, 10);
	ck_assert_int_eq(cfg.ping_interval_seconds, 11);
	ck_assert_int_eq(cfg.pong_timeout_seconds, 12);
	ck_assert_int_eq(cfg.presence_stale_seconds, 22);
	ck_assert_int_eq(cfg.redelivery_max_attempts, 0);
	ck_assert_int_eq(cfg.ttl_sweep_interval_seconds, 13);
	ck_assert_int_eq(cfg.pending_status_ttl_seconds, 14);
	ck_assert_str_eq(cfg.claude_projects_dir, "/srv/projects");
	ck_assert_uint_eq(cfg.ws_max_message_bytes, 2147483647u);
	ck_assert_uint_eq(cfg.conn_max_output_bytes, 16);
	ck_assert_int_eq(cfg.queue_depth_interval_seconds, 17);
	ck_assert_int_eq(cfg.shutdown_timeout_seconds, 18);
	ck_assert_int_eq(cfg.log_level, LOG_DEBUG);
}
END_TEST

START_TEST(test_numeric_edges_accepted)
{
	ck_assert_int_eq(load_env("BROKER_PORT", "65535"), CONFIG_OK);
	ck_assert_int_eq(cfg.port, 65535);
	config_free(&cfg);
	/* Leading zeros read as decimal, as Number() reads them. */
	ck_assert_int_eq(load_env("STATUS_TTL_SECONDS", "007"), CONFIG_OK);
	ck_assert_int_eq(cfg.status_ttl_seconds, 7);
	config_free(&cfg);
	ck_assert_int_eq(load_env("STATUS_TTL_SECONDS", "2147483647"), CONFIG_OK);
	ck_assert_int_eq(cfg.status_ttl_seconds, INT_MAX);
	config_free(&cfg);
	ck_assert_int_eq(load_env("BROKER_WORKERS", "1"), CONFIG_OK);
	ck_assert_int_eq(cfg.workers, 1);
}
END_TEST

/* The stale window must hold two heartbeats (one per pong). */
START_TEST(test_stale_window_at_least_two_pings)
{
	ck_assert_int_eq(load_env("PRESENCE_STALE_SECONDS", "59"), CONFIG_INVALID);
	ck_assert_str_eq(err, "meshd: invalid PRESENCE_STALE_SECONDS=59: expected at least"
			      " twice PING_INTERVAL_SECONDS (30)");
	ck_assert_int_eq(load_env("PRESENCE_STALE_SECONDS", "60"), CONFIG_OK);
	ck_assert_int_eq(cfg.presence_stale_seconds, 60);
	config_free(&cfg);
	setenv("PRESENCE_STALE_SECONDS", "3", 1);
	ck_assert_int_eq(load_env("PING_INTERVAL_SECONDS", "2"), CONFIG_INVALID);
	ck_assert_int_eq(load_env("PING_INTERVAL_SECONDS", "1"), CONFIG_OK);
	ck_assert_int_eq(cfg.presence_stale_seconds, 3);
}
END_TEST

START_TEST(test_flag_overrides_env)
{
	setenv("BROKER_PORT", "1234", 1);
	setenv("STATUS_TTL_SECONDS", "9", 1);
	ck_assert_int_eq(LOAD("--broker-port=0"), CONFIG_OK);
	ck_assert_int_eq(cfg.port, 0);
	/* Settings without a flag still come from the environment. */
	ck_assert_int_eq(cfg.status_ttl_seconds, 9);
}
END_TEST

START_TEST(test_flag_syntaxes)
{
	ck_assert_int_eq(LOAD("--broker-port", "0", "--status-ttl-seconds=5", "--broker-host", "::1",
			      "--database-url=postgres://h/db", "--meshd-log-level", "warn"),
			 CONFIG_OK);
	ck_assert_int_eq(cfg.port, 0);
	ck_assert_int_eq(cfg.status_ttl_seconds, 5);
	ck_assert_str_eq(cfg.host, "::1");
	ck_assert_str_eq(cfg.database_url, "postgres://h/db");
	ck_assert_int_eq(cfg.log_level, LOG_WARN);
	config_free(&cfg);

	/* The last occurrence wins; "=" keeps a value that starts with '-'. */
	ck_assert_int_eq(LOAD("--git-sha=a", "--git-sha", "b", "--expected-migration=-x"), CONFIG_OK);
	ck_assert_str_eq(cfg.git_sha, "b");
	ck_assert_str_eq(cfg.expected_migration, "-x");
	config_free(&cfg);

	/* "--" ends the options. */
	ck_assert_int_eq(LOAD("--broker-port=1", "--"), CONFIG_OK);
	ck_assert_int_eq(cfg.port, 1);
}
END_TEST

START_TEST(test_flag_rescues_bad_env)
{
	/* A flag replaces its variable, which is then not judged at all. */
	setenv("BROKER_PORT", "abc", 1);
	ck_assert_int_eq(LOAD("--broker-port", "8080"), CONFIG_OK);
	ck_assert_int_eq(cfg.port, 8080);
}
END_TEST

START_TEST(test_bool_exactly_one)
{
	static const char *const falsy[] = { "true", "0", "", "yes", " 1", "1 ", "01", "TRUE" };

	ck_assert_int_eq(load_env("BROKER_INVITE_V2_ENABLED", "1"), CONFIG_OK);
	ck_assert(cfg.invite_v2_enabled);
	config_free(&cfg);
	ck_assert_int_eq(load_env("BROKER_SKIP_MIGRATE", "1"), CONFIG_OK);
	ck_assert(cfg.skip_migrate);
	config_free(&cfg);
	for (size_t i = 0; i < sizeof(falsy) / sizeof(falsy[0]); i++) {
		setenv("BROKER_INVITE_V2_ENABLED", falsy[i], 1);
		setenv("BROKER_SKIP_MIGRATE", falsy[i], 1);
		ck_assert_int_eq(LOAD_NONE(), CONFIG_OK);
		ck_assert_msg(!cfg.invite_v2_enabled, "\"%s\" enabled invite v2", falsy[i]);
		ck_assert_msg(!cfg.skip_migrate, "\"%s\" skipped migrations", falsy[i]);
		config_free(&cfg);
	}
}
END_TEST

START_TEST(test_bool_flags)
{
	ck_assert_int_eq(LOAD("--broker-invite-v2-enabled", "--broker-skip-migrate=1"), CONFIG_OK);
	ck_assert(cfg.invite_v2_enabled);
	ck_assert(cfg.skip_migrate);
	config_free(&cfg);

	setenv("BROKER_INVITE_V2_ENABLED", "1", 1);
	setenv("BROKER_SKIP_MIGRATE", "1", 1);
	ck_assert_int_eq(LOAD("--broker-invite-v2-enabled=0", "--broker-skip-migrate=true"), CONFIG_OK);
	ck_assert(!cfg.invite_v2_enabled);
	ck_assert(!cfg.skip_migrate);
	config_free(&cfg);

	/* A bare boolean flag takes no separate argument. */
	ck_assert_int_eq(LOAD("--broker-skip-migrate", "1"), CONFIG_INVALID);
	assert_one_line_naming("\"1\"");
}
END_TEST

START_TEST(test_send_rate_zero)
{
	setenv("SEND_RATE_BURST", "0", 1);
	setenv("SEND_RATE_LIMIT_PER_MIN", "0", 1);
	ck_assert_int_eq(LOAD_NONE(), CONFIG_OK);
	ck_assert_int_eq(cfg.send_rate_burst, 0);
	ck_assert_int_eq(cfg.send_rate_limit_per_min, 0);
}
END_TEST

START_TEST(test_strings_stored)
{
	/* Unvalidated as in the reference: an empty value is still a value. */
	setenv("GIT_SHA", "", 1);
	setenv("EXPECTED_MIGRATION", "", 1);
	ck_assert_int_eq(LOAD_NONE(), CONFIG_OK);
	ck_assert_str_eq(cfg.git_sha, "");
	ck_assert_str_eq(cfg.expected_migration, "");
}
END_TEST

/* One malformed value per row; each must be refused with a line naming it. */
static const struct bad {
	const char *name;
	const char *value;
} bad_values[] = {
	{ "STATUS_TTL_SECONDS", "" },
	{ "STATUS_TTL_SECONDS", "abc" },
	{ "STATUS_TTL_SECONDS", "-5" },
	{ "STATUS_TTL_SECONDS", "+5" },
	{ "STATUS_TTL_SECONDS", " 5" },
	{ "STATUS_TTL_SECONDS", "5 " },
	{ "STATUS_TTL_SECONDS", "5s" },
	{ "STATUS_TTL_SECONDS", "1e3" },
	{ "STATUS_TTL_SECONDS", "0x10" },
	{ "STATUS_TTL_SECONDS", "1.5" },
	{ "STATUS_TTL_SECONDS", "0" },
	{ "STATUS_TTL_SECONDS", "2147483648" },
	{ "STATUS_TTL_SECONDS", "99999999999999999999999999" },
	{ "STATUS_TTL_SECONDS", "99999999999999999999999999x" },
	{ "BROKER_PORT", "65536" },
	{ "BROKER_PORT", "-1" },
	{ "BROKER_PORT", "" },
	{ "BROKER_PORT", "http" },
	{ "BROKER_WORKERS", "0" },
	{ "BROKER_WORKERS", "257" },
	{ "BROKER_WORKERS", "" },
	{ "SEND_RATE_BURST", "-1" },
	{ "SEND_RATE_BURST", "" },
	{ "SEND_RATE_LIMIT_PER_MIN", "2147483648" },
	{ "SEND_RATE_LIMIT_PER_MIN", "x" },
	{ "MAX_MESSAGE_BYTES", "0" },
	{ "WS_MAX_MESSAGE_BYTES", "18446744073709551616" },
	{ "CONN_MAX_OUTPUT_BYTES", "-8" },
	{ "DATABASE_URL", "" },
	{ "DATABASE_URL", "mysql://u@h/db" },
	{ "DATABASE_URL", "POSTGRES://h/db" },
	{ "DATABASE_URL", "postgres:/h/db" },
	{ "DATABASE_URL", " postgres://h/db" },
	{ "MESHD_LOG_LEVEL", "" },
	{ "MESHD_LOG_LEVEL", "verbose" },
	{ "MESHD_LOG_LEVEL", "INFO" },
	{ "BROKER_HOST", "" },
	{ "MESHD_PORT_FILE", "" },
};
#define N_BAD (sizeof(bad_values) / sizeof(bad_values[0]))

START_TEST(test_invalid_value)
{
	const struct bad *b = &bad_values[_i];

	ck_assert_msg(load_env(b->name, b->value) == CONFIG_INVALID, "%s=\"%s\" was accepted",
		      b->name, b->value);
	assert_one_line_naming(b->name);
	ck_assert_msg(strncmp(err, "meshd: invalid ", 15) == 0, "unexpected error \"%s\"", err);
	/* Nothing is left allocated after a failure. */
	ck_assert_ptr_null(cfg.host);
	ck_assert_ptr_null(cfg.claude_projects_dir);
}
END_TEST

START_TEST(test_positive_settings_refuse_zero_and_letters)
{
	const char *name = positive_env[_i];

	ck_assert_int_eq(load_env(name, "0"), CONFIG_INVALID);
	assert_one_line_naming(name);
	ck_assert_ptr_nonnull(strstr(err, "positive"));
	ck_assert_int_eq(load_env(name, "x"), CONFIG_INVALID);
	assert_one_line_naming(name);
	ck_assert_int_eq(load_env(name, ""), CONFIG_INVALID);
	assert_one_line_naming(name);
	ck_assert_int_eq(load_env(name, "1"), CONFIG_OK);
	config_free(&cfg);
}
END_TEST

START_TEST(test_error_text)
{
	ck_assert_int_eq(load_env("STATUS_TTL_SECONDS", "abc"), CONFIG_INVALID);
	ck_assert_str_eq(err, "meshd: invalid STATUS_TTL_SECONDS=\"abc\": expected a positive integer");

	unsetenv("STATUS_TTL_SECONDS");
	ck_assert_int_eq(load_env("BROKER_PORT", "65536"), CONFIG_INVALID);
	ck_assert_str_eq(err, "meshd: invalid BROKER_PORT=\"65536\": expected an integer from 0 to 65535");

	unsetenv("BROKER_PORT");
	ck_assert_int_eq(load_env("STATUS_TTL_SECONDS", "2147483648"), CONFIG_INVALID);
	ck_assert_str_eq(err, "meshd: invalid STATUS_TTL_SECONDS=\"2147483648\": "
			      "expected a positive integer no greater than 2147483647");

	unsetenv("STATUS_TTL_SECONDS");
	ck_assert_int_eq(load_env("SEND_RATE_BURST", "-1"), CONFIG_INVALID);
	ck_assert_str_eq(err, "meshd: invalid SEND_RATE_BURST=\"-1\": expected a non-negative integer");
}
END_TEST

START_TEST(test_error_is_one_printable_line)
{
	char long_value[300];

	ck_assert_int_eq(load_env("STATUS_TTL_SECONDS", "1\n2\"\\\x01\xff"), CONFIG_INVALID);
	assert_one_line_naming("STATUS_TTL_SECONDS");
	ck_assert_str_eq(err, "meshd: invalid STATUS_TTL_SECONDS=\"1\\x0a2\\\"\\\\\\x01\\xff\": "
			      "expected a positive integer");

	memset(long_value, '9', sizeof(long_value) - 2);
	long_value[sizeof(long_value) - 2] = 'x';
	long_value[sizeof(long_value) - 1] = '\0';
	ck_assert_int_eq(load_env("STATUS_TTL_SECONDS", long_value), CONFIG_INVALID);
	assert_one_line_naming("STATUS_TTL_SECONDS");
	ck_assert_ptr_nonnull(strstr(err, "...\""));
	ck_assert_uint_lt(strlen(err), 200);
}
END_TEST

START_TEST(test_error_buffer_small)
{
	char tiny[8];

	setenv("STATUS_TTL_SECONDS", "abc", 1);
	ck_assert_int_eq(config_load(&cfg, 1, (char *[]){ "meshd", NULL }, stdout, tiny, sizeof(tiny)),
			 CONFIG_INVALID);
	ck_assert_str_eq(tiny, "meshd: ");
	ck_assert_int_eq(config_load(&cfg, 1, (char *[]){ "meshd", NULL }, stdout, NULL, 0),
			 CONFIG_INVALID);
}
END_TEST

START_TEST(test_database_url_not_echoed)
{
	ck_assert_int_eq(load_env("DATABASE_URL", "mysql://user:hunter2@db/x"), CONFIG_INVALID);
	assert_one_line_naming("DATABASE_URL");
	ck_assert_ptr_null(strstr(err, "hunter2"));
	ck_assert_int_eq(load_env("DATABASE_URL", "postgresql://user:hunter2@db/x"), CONFIG_OK);
	ck_assert_str_eq(cfg.database_url, "postgresql://user:hunter2@db/x");
}
END_TEST

START_TEST(test_invalid_flag_value_names_flag)
{
	ck_assert_int_eq(LOAD("--broker-port=x"), CONFIG_INVALID);
	ck_assert_str_eq(err, "meshd: invalid --broker-port=\"x\": expected an integer from 0 to 65535");
	ck_assert_int_eq(LOAD("--status-ttl-seconds", ""), CONFIG_INVALID);
	assert_one_line_naming("--status-ttl-seconds");
	ck_assert_int_eq(LOAD("--database-url=mysql://u:hunter2@h"), CONFIG_INVALID);
	assert_one_line_naming("--database-url");
	ck_assert_ptr_null(strstr(err, "hunter2"));
}
END_TEST

START_TEST(test_unknown_flag)
{
	ck_assert_int_eq(LOAD("--bogus"), CONFIG_INVALID);
	ck_assert_str_eq(err, "meshd: unknown option \"--bogus\"");

	/* Only the name is echoed: the value of a misspelt flag may be secret. */
	ck_assert_int_eq(LOAD("--databse-url=postgres://u:hunter2@h"), CONFIG_INVALID);
	assert_one_line_naming("--databse-url");
	ck_assert_ptr_null(strstr(err, "hunter2"));

	/* Variable names are not flags. */
	ck_assert_int_eq(LOAD("--BROKER_PORT=1"), CONFIG_INVALID);
	assert_one_line_naming("--BROKER_PORT");
	ck_assert_int_eq(LOAD("--broker_port=1"), CONFIG_INVALID);
	assert_one_line_naming("--broker_port");
	ck_assert_int_eq(LOAD("-p"), CONFIG_INVALID);
	assert_one_line_naming("-p");
	ck_assert_int_eq(LOAD("--broker-por=1"), CONFIG_INVALID);
	assert_one_line_naming("--broker-por");
	ck_assert_int_eq(LOAD("--help=1"), CONFIG_INVALID);
	assert_one_line_naming("--help");

	ck_assert_int_eq(LOAD("serve"), CONFIG_INVALID);
	ck_assert_str_eq(err, "meshd: unexpected argument \"serve\"");
	ck_assert_int_eq(LOAD("--", "--broker-port=1"), CONFIG_INVALID);
	assert_one_line_naming("--broker-port=1");
	ck_assert_int_eq(LOAD("-"), CONFIG_INVALID);

	ck_assert_int_eq(LOAD("--broker-port"), CONFIG_INVALID);
	ck_assert_str_eq(err, "meshd: option --broker-port requires a value");
}
END_TEST

START_TEST(test_help)
{
	char flag[64];

	/* Help works even when the environment is broken. */
	setenv("STATUS_TTL_SECONDS", "abc", 1);
	ck_assert_int_eq(LOAD("--help"), CONFIG_EXIT);
	ck_assert_ptr_nonnull(out_buf);
	for (size_t i = 0; i < N_ENV; i++) {
		size_t j;

		ck_assert_msg(strstr(out_buf, all_env[i]) != NULL, "--help omits %s", all_env[i]);
		flag[0] = flag[1] = '-';
		for (j = 0; all_env[i][j]; j++)
			flag[j + 2] = all_env[i][j] == '_' ? '-' : (char)(all_env[i][j] | 0x20);
		flag[j + 2] = '\0';
		ck_assert_msg(strstr(out_buf, flag) != NULL, "--help omits %s", flag);
	}
	ck_assert_ptr_nonnull(strstr(out_buf, "--help"));
	ck_assert_ptr_nonnull(strstr(out_buf, "--version"));
	ck_assert_ptr_nonnull(strstr(out_buf, "BROKER_PORT, default 7900"));
	ck_assert_ptr_nonnull(strstr(out_buf, "$HOME/.claude/projects"));
	ck_assert_ptr_null(cfg.host);

	ck_assert_int_eq(LOAD("-h"), CONFIG_EXIT);
	ck_assert_ptr_nonnull(strstr(out_buf, "SEND_RATE_BURST"));

	/* Options before --help are looked at first. */
	ck_assert_int_eq(LOAD("--bogus", "--help"), CONFIG_INVALID);
}
END_TEST

START_TEST(test_help_lines_match_table_size)
{
	FILE *out;
	size_t settings_lines = 0;

	/* config_print_help on its own: one "(VAR, default" per setting, no
	 * more, so nothing in the table is missing from this test's list. */
	out = open_memstream(&out_buf, &out_len);
	config_print_help(out);
	fclose(out);
	for (const char *p = out_buf; (p = strstr(p, ", default ")) != NULL; p++)
		settings_lines++;
	ck_assert_uint_eq(settings_lines, N_ENV);
}
END_TEST

START_TEST(test_version)
{
	ck_assert_int_eq(LOAD("--version"), CONFIG_EXIT);
	ck_assert_str_eq(out_buf, "meshd " PACKAGE_VERSION "\n");
	ck_assert_int_eq(LOAD("--broker-port=1", "-V"), CONFIG_EXIT);
	ck_assert_str_eq(out_buf, "meshd " PACKAGE_VERSION "\n");
}
END_TEST

START_TEST(test_free_twice)
{
	setenv("GIT_SHA", "x", 1);
	ck_assert_int_eq(LOAD_NONE(), CONFIG_OK);
	config_free(&cfg);
	ck_assert_ptr_null(cfg.git_sha);
	ck_assert_ptr_null(cfg.host);
	config_free(&cfg);
}
END_TEST

static Suite *config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_defaults);
	tcase_add_test(tc, test_projects_dir_home);
	tcase_add_test(tc, test_env_overrides);
	tcase_add_test(tc, test_numeric_edges_accepted);
	tcase_add_test(tc, test_stale_window_at_least_two_pings);
	tcase_add_test(tc, test_flag_overrides_env);
	tcase_add_test(tc, test_flag_syntaxes);
	tcase_add_test(tc, test_flag_rescues_bad_env);
	tcase_add_test(tc, test_bool_exactly_one);
	tcase_add_test(tc, test_bool_flags);
	tcase_add_test(tc, test_send_rate_zero);
	tcase_add_test(tc, test_strings_stored);
	tcase_add_loop_test(tc, test_invalid_value, 0, (int)N_BAD);
	tcase_add_loop_test(tc, test_positive_settings_refuse_zero_and_letters, 0, (int)N_POSITIVE);
	tcase_add_test(tc, test_error_text);
	tcase_add_test(tc, test_error_is_one_printable_line);
	tcase_add_test(tc, test_error_buffer_small);
	tcase_add_test(tc, test_database_url_not_echoed);
	tcase_add_test(tc, test_invalid_flag_value_names_flag);
	tcase_add_test(tc, test_unknown_flag);
	tcase_add_test(tc, test_help);
	tcase_add_test(tc, test_help_lines_match_table_size);
	tcase_add_test(tc, test_version);
	tcase_add_test(tc, test_free_twice);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return check_run(config_suite());
}
