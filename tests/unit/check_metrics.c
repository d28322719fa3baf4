/* Unit tests: Prometheus text of PROTOCOL.md §10 (src/metrics.c). */
#include "config.h"

#include <check.h>

#include "check_run.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "meshd/metrics.h"

static char *render(void)
{
	struct evbuffer *b = evbuffer_new();
	metrics_render(b);
	size_t n = evbuffer_get_length(b);
	char *s = malloc(n + 1);
	evbuffer_remove(b, s, n);
	s[n] = '\0';
	evbuffer_free(b);
	return s;
}

START_TEST(untouched_series_print_zero_in_order)
{
	metrics_reset();
	char *t = render();
	static const char *names[] = {
		"broker_connections_total", "broker_connections_rejected_total",
		"broker_connections_active", "broker_messages_routed_total",
		"broker_messages_rejected_total", "broker_messages_dropped_by_grant_total",
		"broker_legacy_auth_hits_total", "broker_queue_depth", "broker_ttl_sweeps_total",
		"broker_hook_requests_total", "broker_hook_requests_rate_limited_total",
		"broker_db_healthy",
	};
	const char *p = t;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		char want[160];
		snprintf(want, sizeof(want), "\n%s 0\n", names[i]);
		const char *at = strstr(p, want);
		ck_assert_msg(at != NULL, "missing or out of order: %s", names[i]);
		p = at + 1;
	}
	ck_assert(t[strlen(t) - 1] == '\n');
	ck_assert(strstr(t, "\n\n") == NULL);
	free(t);
}
END_TEST

START_TEST(exact_text_of_the_protocol_example)
{
	metrics_reset();
	for (int i = 0; i < 3; i++)
		metrics_inc(METRIC_CONNECTIONS_TOTAL);
	metrics_inc_label(METRIC_CONNECTIONS_REJECTED, REJECT_BAD_SIGNATURE);
	char *t = render();
	const char *want =
		"# HELP broker_connections_total Total WS connection attempts\n"
		"# TYPE broker_connections_total counter\n"
		"broker_connections_total 3\n"
		"# HELP broker_connections_rejected_total WS connections refused (auth failure, capacity, etc.)\n"
		"# TYPE broker_connections_rejected_total counter\n"
		"broker_connections_rejected_total{reason=\"bad_signature\"} 1\n";
	ck_assert_msg(strncmp(t, want, strlen(want)) == 0, "got:\n%s", t);
	free(t);
}
END_TEST

START_TEST(labels_in_first_touch_order_and_gauges)
{
	metrics_reset();
	metrics_inc_label(METRIC_MESSAGES_REJECTED, MSG_REJECT_TOO_LARGE);
	metrics_inc_label(METRIC_MESSAGES_REJECTED, MSG_REJECT_RATE_LIMIT);
	metrics_inc_label(METRIC_MESSAGES_REJECTED, MSG_REJECT_TOO_LARGE);
	metrics_gauge_add(METRIC_CONNECTIONS_ACTIVE, 5);
	metrics_gauge_add(METRIC_CONNECTIONS_ACTIVE, -2);
	metrics_gauge_set(METRIC_DB_HEALTHY, 1);
	metrics_inc_ttl_sweep(0);
	metrics_inc_ttl_sweep(3);
	char *t = render();
	ck_assert(strstr(t, "broker_messages_rejected_total{reason=\"too_large\"} 2\n"
			    "broker_messages_rejected_total{reason=\"rate_limit\"} 1\n# HELP") != NULL);
	ck_assert(strstr(t, "broker_messages_rejected_total 0") == NULL);
	ck_assert(strstr(t, "\nbroker_connections_active 3\n") != NULL);
	ck_assert(strstr(t, "\nbroker_db_healthy 1\n") != NULL);
	ck_assert(strstr(t, "broker_ttl_sweeps_total{flipped=\"0\"} 1\n"
			    "broker_ttl_sweeps_total{flipped=\"3\"} 1\n") != NULL);
	ck_assert_int_eq(metrics_get(METRIC_MESSAGES_REJECTED, MSG_REJECT_TOO_LARGE), 2);
	free(t);
}
END_TEST

/* meshd's histograms: cumulative buckets (a value on a bound falls in
 * it), _sum and _count, then meshd_build_info; the labelled ones list
 * every lane. */
START_TEST(histograms_and_build_info_exact_text)
{
	metrics_reset();
	metrics_set_build_info("0.1.0", "abc1234");
	metrics_observe(HIST_SEND_COMMIT, 0, 0.001);
	metrics_observe(HIST_SEND_COMMIT, 0, 0.003);
	metrics_observe(HIST_SEND_COMMIT, 0, 20);
	metrics_observe(HIST_DB_BATCH_ROWS, LANE_LABEL_STATE, 3);
	char *t = render();
	const char *want =
		"# HELP meshd_send_commit_seconds Time from a send's arrival to the commit of its row\n"
		"# TYPE meshd_send_commit_seconds histogram\n"
		"meshd_send_commit_seconds_bucket{le=\"0.0005\"} 0\n"
		"meshd_send_commit_seconds_bucket{le=\"0.001\"} 1\n"
		"meshd_send_commit_seconds_bucket{le=\"0.0025\"} 1\n"
		"meshd_send_commit_seconds_bucket{le=\"0.005\"} 2\n"
		"meshd_send_commit_seconds_bucket{le=\"0.01\"} 2\n"
		"meshd_send_commit_seconds_bucket{le=\"0.025\"} 2\n"
		"meshd_send_commit_seconds_bucket{le=\"0.05\"} 2\n"
		"meshd_send_commit_seconds_bucket{le=\"0.1\"} 2\n"
		"meshd_send_commit_seconds_bucket{le=\"0.25\"} 2\n"
		"meshd_send_commit_seconds_bucket{le=\"0.5\"} 2\n"
		"meshd_send_commit_seconds_bucket{le=\"1\"} 2\n"
		"meshd_send_commit_seconds_bucket{le=\"2.5\"} 2\n"
		"meshd_send_commit_seconds_bucket{le=\"5\"} 2\n"
		"meshd_send_commit_seconds_bucket{le=\"10\"} 2\n"
		"meshd_send_commit_seconds_bucket{le=\"+Inf\"} 3\n"
		"meshd_send_commit_seconds_sum 20.004000000\n"
		"meshd_send_commit_seconds_count 3\n"
		"# HELP meshd_db_batch_rows Rows written or read per database pipeline\n"
		"# TYPE meshd_db_batch_rows histogram\n";
	const char *at = strstr(t, "# HELP meshd_send_commit_seconds");
	ck_assert_ptr_nonnull(at);
	ck_assert_msg(strncmp(at, want, strlen(want)) == 0, "got:\n%s", at);
	ck_assert_ptr_nonnull(strstr(t, "meshd_db_batch_rows_bucket{lane=\"queue\",le=\"1\"} 0\n"));
	ck_assert_ptr_nonnull(strstr(t, "meshd_db_batch_rows_bucket{lane=\"state\",le=\"2\"} 0\n"
					"meshd_db_batch_rows_bucket{lane=\"state\",le=\"4\"} 1\n"));
	ck_assert_ptr_nonnull(strstr(t, "meshd_db_batch_rows_sum{lane=\"state\"} 3\n"
					"meshd_db_batch_rows_count{lane=\"state\"} 1\n"));
	ck_assert_ptr_nonnull(strstr(t, "meshd_db_round_trip_seconds_count{lane=\"queue\"} 0\n"));
	const char *tail = "# HELP meshd_build_info meshd's version and git revision\n"
			   "# TYPE meshd_build_info gauge\n"
			   "meshd_build_info{version=\"0.1.0\",git_sha=\"abc1234\"} 1\n";
	ck_assert_str_eq(t + strlen(t) - strlen(tail), tail);
	free(t);
}
END_TEST

/* Per-worker gauges are labelled by the worker's index. */
START_TEST(worker_gauges_by_index)
{
	metrics_reset();
	metrics_gauge_add_label(METRIC_WORKER_CONNECTIONS, 3, 2);
	metrics_gauge_add_label(METRIC_WORKER_CONNECTIONS, 0, 1);
	metrics_gauge_add_label(METRIC_WORKER_CONNECTIONS, 3, -1);
	char *t = render();
	ck_assert_ptr_nonnull(strstr(t, "# TYPE meshd_worker_connections gauge\n"
					"meshd_worker_connections{worker=\"3\"} 1\n"
					"meshd_worker_connections{worker=\"0\"} 1\n"));
	free(t);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("metrics");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, untouched_series_print_zero_in_order);
	tcase_add_test(tc, exact_text_of_the_protocol_example);
	tcase_add_test(tc, labels_in_first_touch_order_and_gauges);
	tcase_add_test(tc, histograms_and_build_info_exact_text);
	tcase_add_test(tc, worker_gauges_by_index);
	suite_add_tcase(s, tc);
	return check_run(s);
}
