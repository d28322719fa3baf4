/* Integration: graceful shutdown (PROTOCOL.md §7.13). */
#include "config.h"

#include <check.h>

#include "check_run.h"
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "itest.h"
#include "wsc.h"

static void shutdown_with(int sig)
{
	struct broker b;
	itest_broker_start(&b, NULL);
	struct wsc *c[3];
	for (int i = 0; i < 3; i++) {
		c[i] = wsc_connect(b.port, "/ws", 5000);
		ck_assert_ptr_nonnull(c[i]);
	}
	/* The sockets are live before the signal. */
	ck_assert(wsc_send_text(c[0], "{}", 2));
	struct wsc_msg m;
	ck_assert_int_eq(wsc_recv(c[0], &m, 5000), WSC_TEXT);
	wsc_msg_free(&m);

	long long t0 = httpc_now_ms();
	ck_assert(kill(b.pid, sig) == 0);
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(wsc_recv(c[i], &m, 5000), WSC_CLOSE);
		ck_assert_int_eq(m.close_code, 1001);
		ck_assert_str_eq(m.close_reason, "shutting down");
		wsc_msg_free(&m);
		(void)wsc_send_close(c[i], 1001, "");
	}
	int status = broker_wait_exit(&b, 5000); /* already signalled */
	ck_assert_int_eq(status, 0);
	ck_assert_int_le(httpc_now_ms() - t0, 5000);
	ck_assert(broker_log_contains(&b, "\"event\":\"shutdown_complete\""));
	ck_assert(broker_log_clean(&b));
	for (int i = 0; i < 3; i++)
		wsc_free(c[i]);
	broker_cleanup(&b);
}

START_TEST(sigterm_closes_1001_and_exits_0)
{
	shutdown_with(SIGTERM);
}
END_TEST

START_TEST(sigint_closes_1001_and_exits_0)
{
	shutdown_with(SIGINT);
}
END_TEST

/* Peers that never answer the close frame do not hold the exit past 5 s. */
START_TEST(unresponsive_peers_do_not_block_exit)
{
	struct broker b;
	itest_broker_start(&b, NULL);
	struct wsc *c = wsc_connect(b.port, "/ws", 5000);
	ck_assert_ptr_nonnull(c);
	long long t0 = httpc_now_ms();
	int status = broker_stop(&b, SIGTERM, 10000);
	ck_assert_int_eq(status, 0);
	ck_assert_int_le(httpc_now_ms() - t0, 5000);
	ck_assert(broker_log_clean(&b));
	wsc_free(c);
	broker_cleanup(&b);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("shutdown");
	TCase *tc = tcase_create("shutdown");
	tcase_add_unchecked_fixture(tc, itest_cluster_setup, itest_cluster_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, sigterm_closes_1001_and_exits_0);
	tcase_add_test(tc, sigint_closes_1001_and_exits_0);
	tcase_add_test(tc, unresponsive_peers_do_not_block_exit);
	suite_add_tcase(s, tc);
	return check_run(s);
}
