/* Integration: HTTP/1.1 on the broker's port (PROTOCOL.md §2.2–2.3, §3.1–3.3). */
#include "config.h"

#include <check.h>

#include "check_run.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "itest.h"

static struct broker B;

static void setup(void)
{
	itest_broker_start(&B, NULL);
	ck_assert(itest_wait_status(B.port, "/health", 200, 15000));
}

static void teardown(void)
{
	itest_broker_stop(&B);
}

static void assert_cors(const struct http_response *r)
{
	ck_assert_str_eq(httpc_header(r, "Access-Control-Allow-Origin"), "*");
	ck_assert_str_eq(httpc_header(r, "Access-Control-Allow-Methods"), "POST, GET, OPTIONS");
	ck_assert_str_eq(httpc_header(r, "Access-Control-Allow-Headers"),
			 "Content-Type, X-Mesh-Id, X-Member-Id, X-File-Name, X-Tags, X-Persistent, "
			 "X-Target-Spec");
}

START_TEST(health_ok_exact_shape)
{
	struct http_response r;
	itest_get(B.port, "/health", &r);
	ck_assert_int_eq(r.status, 200);
	assert_cors(&r);
	ck_assert_str_eq(httpc_header(&r, "Content-Type"), "application/json");
	/* Keys in the reference's order, compact. */
	ck_assert_msg(strncmp(r.body, "{\"status\":\"ok\",\"db\":\"up\",\"version\":\"0.1.0\",\"gitSha\":\"", 52) == 0,
		      "body %s", r.body);
	json_error_t e;
	json_t *o = json_loads(r.body, 0, &e);
	ck_assert_ptr_nonnull(o);
	ck_assert(json_is_integer(json_object_get(o, "uptime")));
	ck_assert_int_ge(json_integer_value(json_object_get(o, "uptime")), 0);
	ck_assert(json_is_string(json_object_get(o, "gitSha")));
	ck_assert_int_eq(json_object_size(o), 5);
	json_decref(o);
	httpc_response_free(&r);

	itest_get(B.port, "/health/ready", &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_msg(strncmp(r.body, "{\"status\":\"ready\",\"version\":\"0.1.0\",\"gitSha\":", 44) == 0,
		      "body %s", r.body);
	httpc_response_free(&r);
}
END_TEST

START_TEST(git_sha_from_environment)
{
	struct broker b2;
	const char *env[] = { "GIT_SHA=abc1234", NULL };
	itest_broker_start(&b2, env);
	ck_assert(itest_wait_status(b2.port, "/health", 200, 15000));
	struct http_response r;
	itest_get(b2.port, "/health", &r);
	ck_assert(strstr(r.body, "\"gitSha\":\"abc1234\"") != NULL);
	httpc_response_free(&r);
	itest_broker_stop(&b2);
}
END_TEST

START_TEST(unmatched_is_404_not_found_with_cors)
{
	static const char *paths[] = { "/nope", "/health?x=1", "/health/", "/HEALTH", "/metrics/" };
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		struct http_response r;
		itest_get(B.port, paths[i], &r);
		ck_assert_msg(r.status == 404, "%s -> %d", paths[i], r.status);
		ck_assert_str_eq(r.body, "not found");
		ck_assert_ptr_null(httpc_header(&r, "Content-Type"));
		assert_cors(&r);
		httpc_response_free(&r);
	}
	struct http_response r;
	ck_assert(httpc_request(B.port, "POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", &r));
	ck_assert_int_eq(r.status, 404);
	httpc_response_free(&r);
}
END_TEST

START_TEST(options_is_204_on_any_path)
{
	static const char *paths[] = { "/health", "/anything/at/all", "/ws", "*" };
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		char req[256];
		snprintf(req, sizeof(req), "OPTIONS %s HTTP/1.1\r\nHost: x\r\n\r\n", paths[i]);
		struct http_response r;
		ck_assert(httpc_request(B.port, req, &r));
		ck_assert_int_eq(r.status, 204);
		ck_assert_uint_eq(r.body_len, 0);
		assert_cors(&r);
		httpc_response_free(&r);
	}
}
END_TEST

START_TEST(metrics_every_series)
{
	struct http_response r;
	itest_get(B.port, "/metrics", &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(httpc_header(&r, "Content-Type"), "text/plain; version=0.0.4");
	assert_cors(&r);
	static const char *series[] = {
		"broker_connections_total counter", "broker_connections_rejected_total counter",
		"broker_connections_active gauge", "broker_messages_routed_total counter",
		"broker_messages_rejected_total counter", "broker_messages_dropped_by_grant_total counter",
		"broker_legacy_auth_hits_total counter", "broker_queue_depth gauge",
		"broker_ttl_sweeps_total counter", "broker_hook_requests_total counter",
		"broker_hook_requests_rate_limited_total counter", "broker_db_healthy gauge",
	};
	const char *at = r.body;
	for (size_t i = 0; i < sizeof(series) / sizeof(series[0]); i++) {
		char want[128];
		snprintf(want, sizeof(want), "# TYPE %s\n", series[i]);
		const char *p = strstr(at, want);
		ck_assert_msg(p != NULL, "missing or out of order: %s", series[i]);
		at = p;
	}
	httpc_response_free(&r);
	ck_assert_int_eq(itest_metric(B.port, "broker_db_healthy"), 1);
	ck_assert_int_eq(itest_metric(B.port, "broker_connections_active"), 0);
}
END_TEST

START_TEST(queue_depth_reflects_the_database)
{
	struct broker b2;
	const char *env[] = { "QUEUE_DEPTH_INTERVAL_SECONDS=1", NULL };
	itest_broker_start(&b2, env);
	ck_assert(itest_wait_status(b2.port, "/health", 200, 15000));
	ck_assert(pgtest_exec(itest_db_url(),
		"INSERT INTO public.\"user\"(id,name,email) VALUES ('u','u','u@x');"
		"INSERT INTO mesh.mesh(id,name,slug,owner_user_id) VALUES ('m','m','m','u');"
		"INSERT INTO mesh.member(id,mesh_id,peer_pubkey,display_name) VALUES ('a','m','k','a');"
		"INSERT INTO mesh.message_queue(id,mesh_id,sender_member_id,target_spec,nonce,ciphertext)"
		" VALUES ('q1','m','a','*','n','c'),('q2','m','a','*','n','c'),"
		"        ('q3','m','a','*','n','c');"
		"UPDATE mesh.message_queue SET delivered_at = now() WHERE id = 'q3';"));
	long long deadline = httpc_now_ms() + 10000;
	long long depth = -1;
	while (httpc_now_ms() < deadline && (depth = itest_metric(b2.port, "broker_queue_depth")) != 2)
		usleep(100 * 1000);
	ck_assert_int_eq(depth, 2);
	itest_broker_stop(&b2);
}
END_TEST

START_TEST(keep_alive_and_pipelining)
{
	int fd = httpc_connect(B.port);
	ck_assert_int_ge(fd, 0);
	struct http_response r;
	for (int i = 0; i < 3; i++) {
		ck_assert(httpc_send_str(fd, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n"));
		ck_assert(httpc_read_response(fd, &r, 5000));
		ck_assert_int_eq(r.status, 200);
		ck_assert_str_eq(httpc_header(&r, "Connection"), "keep-alive");
		httpc_response_free(&r);
	}
	/* Two requests in one write, the first with a body to skip: answered in order. */
	ck_assert(httpc_send_str(fd, "POST /nope HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
				     "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"));
	ck_assert(httpc_read_response(fd, &r, 5000));
	ck_assert_int_eq(r.status, 404);
	httpc_response_free(&r);
	ck_assert(httpc_read_response(fd, &r, 5000));
	ck_assert_int_eq(r.status, 200);
	ck_assert(strstr(r.body, "broker_db_healthy") != NULL);
	httpc_response_free(&r);
	/* Connection: close is honoured. */
	ck_assert(httpc_send_str(fd, "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
	ck_assert(httpc_read_response(fd, &r, 5000));
	ck_assert_str_eq(httpc_header(&r, "Connection"), "close");
	httpc_response_free(&r);
	ck_assert(httpc_peer_closed(fd, 5000));
	close(fd);
}
END_TEST

START_TEST(oversize_head_is_431)
{
	size_t n = 9000;
	char *req = malloc(n + 64);
	int k = sprintf(req, "GET /health HTTP/1.1\r\nX-Big: ");
	memset(req + k, 'a', n);
	strcpy(req + k + n, "\r\n\r\n");
	struct http_response r;
	ck_assert(httpc_request(B.port, req, &r));
	ck_assert_int_eq(r.status, 431);
	assert_cors(&r);
	httpc_response_free(&r);
	free(req);
}
END_TEST

START_TEST(bad_requests)
{
	struct http_response r;
	ck_assert(httpc_request(B.port, "GET /health HTTP/2.0\r\n\r\n", &r));
	ck_assert_int_eq(r.status, 505);
	httpc_response_free(&r);
	ck_assert(httpc_request(B.port, "G(T /health HTTP/1.1\r\n\r\n", &r));
	ck_assert_int_eq(r.status, 400);
	httpc_response_free(&r);
	ck_assert(httpc_request(B.port, "GET /health HTTP/1.1\r\nBad Header: x\r\n\r\n", &r));
	ck_assert_int_eq(r.status, 400);
	httpc_response_free(&r);
	ck_assert(httpc_request(B.port,
				"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 65537\r\n\r\n", &r));
	ck_assert_int_eq(r.status, 413);
	httpc_response_free(&r);
	/* The broker is still fine. */
	itest_get(B.port, "/health", &r);
	ck_assert_int_eq(r.status, 200);
	httpc_response_free(&r);
}
END_TEST

/* §2.3: upgrades anywhere but exactly /ws: socket destroyed, no response. */
START_TEST(upgrade_on_other_paths_is_dropped)
{
	static const char *paths[] = { "/ws?x=1", "/ws/", "/wss", "/health" };
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		int fd = httpc_connect(B.port);
		char req[512];
		snprintf(req, sizeof(req),
			 "GET %s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
			 "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
			 paths[i]);
		ck_assert(httpc_send_str(fd, req));
		ck_assert_msg(httpc_peer_closed(fd, 5000), "%s not dropped", paths[i]);
		close(fd);
	}
}
END_TEST

START_TEST(bad_upgrades_on_ws)
{
	struct http_response r;
	ck_assert(httpc_request(B.port,
		"POST /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
		"Content-Length: 0\r\n\r\n", &r));
	ck_assert_int_eq(r.status, 405);
	httpc_response_free(&r);
	ck_assert(httpc_request(B.port, "GET /ws HTTP/1.1\r\nHost: x\r\n\r\n", &r));
	ck_assert_int_eq(r.status, 400);
	httpc_response_free(&r);
	ck_assert(httpc_request(B.port,
		"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
		"Sec-WebSocket-Key: short\r\nSec-WebSocket-Version: 13\r\n\r\n", &r));
	ck_assert_int_eq(r.status, 400);
	httpc_response_free(&r);
	ck_assert(httpc_request(B.port,
		"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n", &r));
	ck_assert_int_eq(r.status, 400);
	httpc_response_free(&r);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("http_server");
	TCase *tc = tcase_create("http");
	tcase_add_unchecked_fixture(tc, itest_cluster_setup, itest_cluster_teardown);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, health_ok_exact_shape);
	tcase_add_test(tc, git_sha_from_environment);
	tcase_add_test(tc, unmatched_is_404_not_found_with_cors);
	tcase_add_test(tc, options_is_204_on_any_path);
	tcase_add_test(tc, metrics_every_series);
	tcase_add_test(tc, queue_depth_reflects_the_database);
	tcase_add_test(tc, keep_alive_and_pipelining);
	tcase_add_test(tc, oversize_head_is_431);
	tcase_add_test(tc, bad_requests);
	tcase_add_test(tc, upgrade_on_other_paths_is_dropped);
	tcase_add_test(tc, bad_upgrades_on_ws);
	suite_add_tcase(s, tc);
	return check_run(s);
}
