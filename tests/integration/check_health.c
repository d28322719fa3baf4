/* Integration: /health follows the database (D1) and the broker survives it. */
#include "config.h"

#include <check.h>

#include "check_run.h"
#include <stdlib.h>
#include <string.h>

#include "itest.h"
#include "meshtest.h"

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

/* While PostgreSQL is down, sends wait for it, but only DB_MAX_PENDING_JOBS
 * rows of them: past that they get an error ack at once instead of growing
 * the broker.  Every send gets exactly one ack; every one acked as queued
 * reaches the recipient once the database is back. */
START_TEST(writes_held_are_bounded_while_database_down)
{
	struct broker b;
	const char *env[] = { "DB_PING_INTERVAL_SECONDS=1", "SEND_RATE_LIMIT_PER_MIN=0",
			      "DB_MAX_PENDING_JOBS=1500", NULL };
	itest_broker_start(&b, env);
	ck_assert(itest_wait_status(b.port, "/health", 200, 15000));
	struct mc_identity ids[2];
	struct mt_peer p[2];
	mt_seed_mesh(itest_db_url(), "held", "held");
	mt_seed_member(itest_db_url(), "held", "held-a", "a", &ids[0]);
	mt_seed_member(itest_db_url(), "held", "held-b", "b", &ids[1]);
	ck_assert(mt_connect(&p[0], b.port, "held", "held-a", &ids[0], "a", NULL));
	ck_assert(mt_connect(&p[1], b.port, "held", "held-b", &ids[1], "b", NULL));

	ck_assert(pgtest_stop(&itest_pg));
	ck_assert(itest_wait_status(b.port, "/health", 503, 15000));
	enum { SENDS = 3000 };
	for (int i = 0; i < SENDS; i++) {
		char frame[256];
		snprintf(frame, sizeof(frame),
			 "{\"type\":\"send\",\"id\":\"s%d\",\"targetSpec\":\"%s\","
			 "\"priority\":\"now\",\"nonce\":\"bm9uY2U=\",\"ciphertext\":\"Y3Q=\"}",
			 i, mt_pubkey(&p[1]));
		ck_assert(mt_send_raw(&p[0], frame));
	}
	/* The refusals come while the database is still down: the first may
	 * take a while under a sanitizer, the rest follow it closely. */
	int refused = 0, queued = 0;
	struct mc_frame f;
	for (int wait_ms = 20000; mt_wait(&p[0], MC_ACK, &f, wait_ms); wait_ms = 3000) {
		ck_assert_msg(!f.ack.queued, "a send acked as queued while the database is down");
		ck_assert_str_eq(f.ack.error,
				 "internal: database unavailable: too many pending writes");
		refused++;
		mc_frame_free(&f);
	}
	ck_assert_int_gt(refused, 0);
	ck_assert_int_lt(refused, SENDS);

	ck_assert(pgtest_restart(&itest_pg));
	while (refused + queued < SENDS && mt_wait(&p[0], MC_ACK, &f, 20000)) {
		if (f.ack.queued)
			queued++;
		else
			refused++;
		mc_frame_free(&f);
	}
	ck_assert_int_eq(refused + queued, SENDS);
	ck_assert_int_gt(queued, 0);
	int pushed = 0;
	while (pushed < queued && mt_wait_push(&p[1], &f, 20000)) {
		pushed++;
		mc_frame_free(&f);
	}
	ck_assert_int_eq(pushed, queued);
	mt_close(&p[0]);
	mt_close(&p[1]);
	ck_assert(broker_log_clean(&b));
	itest_broker_stop(&b);
}
END_TEST

/* meshd's own series move by exact deltas around one action (one
 * worker, so every connection and mesh is worker 0's; the scrape's own
 * connection is counted in each reading). */
START_TEST(meshd_series_move_by_exact_deltas)
{
	struct broker b;
	const char *env[] = { "BROKER_WORKERS=1", NULL };
	itest_broker_start(&b, env);
	ck_assert(itest_wait_status(b.port, "/health", 200, 15000));
	struct mc_identity ids[2];
	mt_seed_members(itest_db_url(), "meshSeries", 2, ids);
	const char *conns = "meshd_worker_connections{worker=\"0\"}";
	const char *meshes = "meshd_worker_meshes{worker=\"0\"}";
	const char *commits = "meshd_send_commit_seconds_count";
	const char *inf = "meshd_send_commit_seconds_bucket{le=\"+Inf\"}";
	long long c0 = itest_metric(b.port, conns);
	ck_assert_int_eq(itest_metric(b.port, "meshd_worker_meshes"), 0); /* untouched */
	long long s0 = itest_metric(b.port, commits), i0 = itest_metric(b.port, inf);
	ck_assert_int_eq(c0, 1); /* the scrape itself */
	ck_assert_int_eq(s0, 0);
	struct mt_peer a, p;
	ck_assert(mt_connect(&a, b.port, "meshSeries", "meshSeries-m0", &ids[0], "a", NULL));
	ck_assert(mt_connect(&p, b.port, "meshSeries", "meshSeries-m1", &ids[1], "b", NULL));
	ck_assert_int_eq(itest_metric(b.port, conns), c0 + 2);
	ck_assert_int_eq(itest_metric(b.port, meshes), 1);
	mt_dm_ok(&a, &p, "one", "now");
	mt_expect_dm(&p, "one", "now");
	ck_assert_int_eq(itest_metric(b.port, commits), s0 + 1);
	ck_assert_int_eq(itest_metric(b.port, inf), i0 + 1);
	ck_assert_int_ge(itest_metric(b.port, "meshd_db_round_trip_seconds_count{lane=\"queue\"}"), 1);
	ck_assert_int_eq(itest_metric(b.port, "meshd_build_info{version=\"0.1.0\",git_sha=\"test\"}"),
			 -1); /* the sha is configure's, not "test" */
	struct http_response r;
	itest_get(b.port, "/metrics", &r);
	ck_assert_ptr_nonnull(strstr(r.body, "\nmeshd_build_info{version=\"0.1.0\",git_sha=\""));
	httpc_response_free(&r);
	mt_close(&a);
	mt_close(&p);
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
	tcase_add_test(tc, writes_held_are_bounded_while_database_down);
	tcase_add_test(tc, meshd_series_move_by_exact_deltas);
	suite_add_tcase(s, tc);
	return check_run(s);
}
