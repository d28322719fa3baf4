/* Integration: ghost presences after a crash (issue 13, item 6).  A meshd
 * killed with SIGKILL leaves its presence rows "connected"; another meshd
 * on the same database marks them disconnected once their last_ping_at is
 * older than PRESENCE_STALE_SECONDS, and never marks its own live peers,
 * whose pongs keep last_ping_at fresh. */
#include "config.h"

#include <check.h>

#include "check_run.h"
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "itest.h"
#include "meshtest.h"

#define STALE_S 3

static const char *const env[] = {
	"PING_INTERVAL_SECONDS=1", "PRESENCE_STALE_SECONDS=3", NULL
};

static long long live_rows(const char *url, const char *member_like)
{
	char sql[256], out[32];
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM mesh.presence WHERE disconnected_at IS NULL"
		 " AND member_id LIKE '%s'", member_like);
	ck_assert(pgtest_scalar(url, sql, out, sizeof(out)));
	return atoll(out);
}

/* Reads (so wsc answers the broker's pings) for ms. */
static void keep_alive(struct mt_peer *p, int ms)
{
	struct mc_frame f;
	long long end = httpc_now_ms() + ms;
	while (httpc_now_ms() < end)
		if (mt_next(p, &f, (int)(end - httpc_now_ms())))
			mc_frame_free(&f);
}

START_TEST(a_crashed_brokers_presences_are_swept_by_another)
{
	struct broker a, b;
	itest_broker_start(&a, env);
	const char *url = itest_db_url();
	struct mc_identity ids[3];
	mt_seed_members(url, "meshG", 3, ids);
	struct mt_peer p[3];
	ck_assert(mt_connect(&p[0], a.port, "meshG", "meshG-m0", &ids[0], "a", NULL));
	ck_assert(mt_connect(&p[1], a.port, "meshG", "meshG-m1", &ids[1], "b", NULL));
	long long deadline = httpc_now_ms() + 5000;
	while (live_rows(url, "meshG-m_") < 2 && httpc_now_ms() < deadline)
		keep_alive(&p[0], 100);
	ck_assert_int_eq(live_rows(url, "meshG-m_"), 2);

	ck_assert_int_eq(broker_stop(&a, SIGKILL, 5000), 128 + SIGKILL);
	mt_close(&p[0]);
	mt_close(&p[1]);
	/* Nobody marked them: that process is gone. */
	ck_assert_int_eq(live_rows(url, "meshG-m_"), 2);
	long long killed = httpc_now_ms();

	ck_assert(broker_start(&b, url, env));
	ck_assert(itest_wait_status(b.port, "/health", 200, 15000));
	ck_assert(mt_connect(&p[2], b.port, "meshG", "meshG-m2", &ids[2], "c", NULL));
	/* The ghosts go within the window (plus a sweep period and the commit). */
	deadline = killed + 2 * STALE_S * 1000 + 3000;
	while ((live_rows(url, "meshG-m0") + live_rows(url, "meshG-m1")) > 0 &&
	       httpc_now_ms() < deadline)
		keep_alive(&p[2], 200);
	ck_assert_int_eq(live_rows(url, "meshG-m0") + live_rows(url, "meshG-m1"), 0);
	ck_assert(broker_log_contains(&b, "presence_stale_swept"));
	/* The live peer of this process is never caught, over several windows
	 * and sweeps, while it answers pings. */
	for (int i = 0; i < 4 * STALE_S * 2; i++) {
		ck_assert_int_eq(live_rows(url, "meshG-m2"), 1);
		keep_alive(&p[2], 500);
	}
	ck_assert_str_eq(mt_peer_status(&p[2], ids[2].pk_hex), "idle");
	mt_close(&p[2]);
	ck_assert_int_eq(broker_stop(&b, SIGTERM, 10000), 0);
	ck_assert(broker_log_clean(&b));
	broker_cleanup(&b);
	broker_cleanup(&a);
}
END_TEST

/* A window shorter than two heartbeats would sweep live peers: refused. */
START_TEST(a_stale_window_below_two_pings_is_refused)
{
	struct broker b;
	const char *bad[] = { "PING_INTERVAL_SECONDS=2", "PRESENCE_STALE_SECONDS=3", NULL };
	ck_assert(!broker_start(&b, NULL, bad));
	ck_assert_int_eq(broker_wait_exit(&b, 5000), 1);
	ck_assert(broker_log_contains(&b, "PRESENCE_STALE_SECONDS=3"));
	broker_cleanup(&b);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("ghosts");
	TCase *tc = tcase_create("ghosts");
	tcase_add_unchecked_fixture(tc, itest_cluster_setup, itest_cluster_teardown);
	tcase_set_timeout(tc, 90);
	tcase_add_test(tc, a_crashed_brokers_presences_are_swept_by_another);
	tcase_add_test(tc, a_stale_window_below_two_pings_is_refused);
	suite_add_tcase(s, tc);
	return check_run(s);
}
