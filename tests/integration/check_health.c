/* Integration: /health follows the database (D1) and the broker survives it. */
#include "config.h"

#include <check.h>

#include "check_run.h"
#include <stdlib.h>
#include <string.h>

#include "itest.h"

static const char *fast_ping[] = { "DB_PING_INTERVAL_SECONDS=1", NULL };

/* PostgreSQL stops: 503 degraded; it comes back: 200 again, same process. */
START_TEST(health_follows_database)
{
	struct broker b;
	itest_broker_start(&b, fast_ping);
	ck_assert(itest_wait_status(b.port, "/health", 200, 15000));
	pid_t pid = b.pid;

	ck_assert(pgtest_stop(&itest_pg));
	ck_assert_msg(itest_wait_status(b.port, "/health", 503, 15000), "no 503 after db stop");
	struct http_response r;
	itest_get(b.port, "/health", &r);
	ck_assert_msg(strncmp(r.body, "{\"status\":\"degraded\",\"db\":\"down\",\"version\":\"0.1.0\",\"gitSha\":\"", 61) == 0,
		      "body %s", r.body);
	httpc_response_free(&r);
	itest_get(b.port, "/health/ready", &r);
	ck_assert_int_eq(r.status, 503);
	ck_assert_str_eq(r.body, "{\"status\":\"not_ready\",\"reason\":\"db_down\"}");
	httpc_response_free(&r);
	ck_assert_int_eq(itest_metric(b.port, "broker_db_healthy"), 0);

	ck_assert(pgtest_restart(&itest_pg));
	ck_assert_msg(itest_wait_status(b.port, "/health", 200, 15000), "no recovery after restart");
	ck_assert_int_eq(itest_metric(b.port, "broker_db_healthy"), 1);
	ck_assert(broker_alive(&b));
	ck_assert_int_eq(b.pid, pid);
	itest_broker_stop(&b);
}
END_TEST

/* With migrations skipped the broker starts without a database at all,
 * reports it down, and comes up when the database does. */
START_TEST(starts_with_database_down)
{
	ck_assert(pgtest_stop(&itest_pg));
	struct broker b;
	const char *env[] = { "DB_PING_INTERVAL_SECONDS=1", "BROKER_SKIP_MIGRATE=1", NULL };
	ck_assert(broker_start(&b, itest_pg.url, env));
	struct http_response r;
	itest_get(b.port, "/health", &r);
	ck_assert_int_eq(r.status, 503);
	ck_assert(strstr(r.body, "\"db\":\"down\"") != NULL);
	httpc_response_free(&r);
	ck_assert(pgtest_restart(&itest_pg));
	ck_assert(itest_wait_status(b.port, "/health", 200, 15000));
	itest_broker_stop(&b);
}
END_TEST

START_TEST(skip_migrate_leaves_schema_alone)
{
	char url[512];
	ck_assert(pgtest_create_db(&itest_pg, "skipmig", url, sizeof(url)));
	struct broker b;
	const char *env[] = { "BROKER_SKIP_MIGRATE=1", NULL };
	ck_assert(broker_start(&b, url, env));
	ck_assert(itest_wait_status(b.port, "/health", 200, 15000));
	char n[32];
	ck_assert(pgtest_scalar(url, "SELECT count(*) FROM pg_namespace WHERE nspname = 'mesh'", n, sizeof(n)));
	ck_assert_str_eq(n, "0");
	itest_broker_stop(&b);

	/* The same database, migrated by a normal start, then started again: no-op. */
	ck_assert(broker_start(&b, url, NULL));
	ck_assert(itest_wait_status(b.port, "/health", 200, 15000));
	ck_assert(broker_log_contains(&b, "\"event\":\"migration_applied\""));
	itest_broker_stop(&b);
	char before[32];
	ck_assert(pgtest_scalar(url, "SELECT count(*) FROM mesh.__meshd_migrations", before, sizeof(before)));
	ck_assert(broker_start(&b, url, NULL));
	ck_assert(broker_log_contains(&b, "\"applied\":0"));
	ck_assert(!broker_log_contains(&b, "\"event\":\"migration_applied\""));
	ck_assert(pgtest_scalar(url, "SELECT count(*) FROM mesh.__meshd_migrations", n, sizeof(n)));
	ck_assert_str_eq(n, before);
	itest_broker_stop(&b);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("health");
	TCase *tc = tcase_create("health");
	tcase_add_unchecked_fixture(tc, itest_cluster_setup, itest_cluster_teardown);
	tcase_set_timeout(tc, 90);
	tcase_add_test(tc, health_follows_database);
	tcase_add_test(tc, starts_with_database_down);
	tcase_add_test(tc, skip_migrate_leaves_schema_alone);
	suite_add_tcase(s, tc);
	return check_run(s);
}
