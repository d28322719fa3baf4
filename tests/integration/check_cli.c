/* Integration: the command line of the real binary (config errors, --help, --version). */
#include "config.h"

#include <check.h>

#include "check_run.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

/* Runs `env <env> $MESHD_BIN <args>`; returns the exit status and the
 * combined output in out. */
static int run(const char *env, const char *args, char *out, size_t cap)
{
	const char *bin = getenv("MESHD_BIN");
	ck_assert_ptr_nonnull(bin);
	char cmd[1024];
	snprintf(cmd, sizeof(cmd), "env -i %s '%s' %s 2>&1", env, bin, args);
	FILE *p = popen(cmd, "r");
	ck_assert_ptr_nonnull(p);
	size_t n = fread(out, 1, cap - 1, p);
	out[n] = '\0';
	int st = pclose(p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static int lines(const char *s)
{
	int n = 0;
	for (; *s; s++)
		n += *s == '\n';
	return n;
}

START_TEST(invalid_values_one_line_exit_1)
{
	static const char *cases[][2] = {
		{ "DATABASE_URL=postgresql://x STATUS_TTL_SECONDS=abc", "STATUS_TTL_SECONDS" },
		{ "DATABASE_URL=postgresql://x BROKER_PORT=70000", "BROKER_PORT" },
		{ "DATABASE_URL=postgresql://x BROKER_WORKERS=0", "BROKER_WORKERS" },
		{ "DATABASE_URL=postgresql://x MAX_MESSAGE_BYTES=", "MAX_MESSAGE_BYTES" },
		{ "DATABASE_URL=mysql://x", "DATABASE_URL" },
		{ "DATABASE_URL=postgresql://x SEND_RATE_BURST=-1", "SEND_RATE_BURST" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char out[4096];
		int st = run(cases[i][0], "", out, sizeof(out));
		ck_assert_msg(st == 1, "%s: exit %d", cases[i][0], st);
		ck_assert_msg(lines(out) == 1, "%s: %d lines: %s", cases[i][0], lines(out), out);
		ck_assert_msg(strstr(out, cases[i][1]) != NULL, "%s: %s", cases[i][0], out);
	}
}
END_TEST

START_TEST(flag_overrides_bad_environment_value_check)
{
	char out[4096];
	/* An invalid flag names the flag. */
	ck_assert_int_eq(run("DATABASE_URL=postgresql://x", "--broker-port=x", out, sizeof(out)), 1);
	ck_assert(strstr(out, "--broker-port") != NULL);
	ck_assert_int_eq(run("DATABASE_URL=postgresql://x", "--no-such-flag", out, sizeof(out)), 1);
	ck_assert(strstr(out, "--no-such-flag") != NULL);
}
END_TEST

START_TEST(missing_database_url)
{
	char out[4096];
	ck_assert_int_eq(run("", "", out, sizeof(out)), 1);
	ck_assert(strstr(out, "DATABASE_URL") != NULL);
	ck_assert_int_eq(lines(out), 1);
}
END_TEST

START_TEST(help_lists_every_setting)
{
	char out[16384];
	ck_assert_int_eq(run("", "--help", out, sizeof(out)), 0);
	static const char *vars[] = {
		"BROKER_PORT", "DATABASE_URL", "STATUS_TTL_SECONDS", "HOOK_FRESH_WINDOW_SECONDS",
		"MAX_CONNECTIONS_PER_MESH", "MAX_MESSAGE_BYTES", "HOOK_RATE_LIMIT_PER_MIN", "GIT_SHA",
		"BROKER_WORKERS", "SEND_RATE_BURST", "SEND_RATE_LIMIT_PER_MIN", "LEASE_GRACE_SECONDS",
		"CLAIM_LEASE_SECONDS", "HELLO_DEADLINE_SECONDS", "PING_INTERVAL_SECONDS",
		"PONG_TIMEOUT_SECONDS", "TTL_SWEEP_INTERVAL_SECONDS", "PENDING_STATUS_TTL_SECONDS",
		"DB_PING_INTERVAL_SECONDS", "CLAUDE_PROJECTS_DIR", "BROKER_SKIP_MIGRATE",
		"BROKER_INVITE_V2_ENABLED", "WS_MAX_MESSAGE_BYTES", "MESHD_PORT_FILE",
	};
	for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
		ck_assert_msg(strstr(out, vars[i]) != NULL, "--help lacks %s", vars[i]);
	ck_assert(strstr(out, "7900") != NULL);
}
END_TEST

START_TEST(version)
{
	char out[256];
	ck_assert_int_eq(run("", "--version", out, sizeof(out)), 0);
	ck_assert_str_eq(out, "meshd " PACKAGE_VERSION "\n");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("cli");
	TCase *tc = tcase_create("cli");
	tcase_add_test(tc, invalid_values_one_line_exit_1);
	tcase_add_test(tc, flag_overrides_bad_environment_value_check);
	tcase_add_test(tc, missing_database_url);
	tcase_add_test(tc, help_lists_every_setting);
	tcase_add_test(tc, version);
	suite_add_tcase(s, tc);
	return check_run(s);
}
