/* Integration: WebSocket on /ws (PROTOCOL.md §2.3–2.4, §4.3, §7.6, Q15). */
#include "config.h"

#include <check.h>

#include "check_run.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "itest.h"
#include "wsc.h"

#define NO_HELLO "{\"type\":\"error\",\"code\":\"no_hello\",\"message\":\"must send hello first\"}"

static struct broker B;

static void setup(void)
{
	itest_broker_start(&B, NULL);
}

static void teardown(void)
{
	itest_broker_stop(&B);
}

static struct wsc *open_ws(int port)
{
	struct wsc *c = wsc_connect(port, "/ws", 5000);
	ck_assert_msg(c != NULL, "upgrade failed");
	return c;
}

/* The next message is a text frame equal to `want`. */
static void expect_text(struct wsc *c, const char *want)
{
	struct wsc_msg m;
	int kind = wsc_recv(c, &m, 5000);
	ck_assert_msg(kind == WSC_TEXT, "expected text, got kind %d", kind);
	ck_assert_str_eq(m.data, want);
	wsc_msg_free(&m);
}

START_TEST(upgrade_counts_connection)
{
	struct wsc *c = open_ws(B.port);
	ck_assert_int_eq(itest_metric(B.port, "broker_connections_total"), 1);
	struct wsc *d = open_ws(B.port);
	ck_assert_int_eq(itest_metric(B.port, "broker_connections_total"), 2);
	wsc_free(c);
	wsc_free(d);
}
END_TEST

START_TEST(frames_before_hello_get_no_hello)
{
	struct wsc *c = open_ws(B.port);
	static const char *frames[] = {
		"{\"type\":\"send\",\"targetSpec\":\"*\"}", "{}", "[1,2]", "5", "\"hello\"",
		"{\"type\":42}", "{\"type\":\"list_peers\",\"_reqId\":\"r1\"}",
	};
	for (size_t i = 0; i < sizeof(frames) / sizeof(frames[0]); i++) {
		ck_assert(wsc_send_text(c, frames[i], strlen(frames[i])));
		expect_text(c, NO_HELLO); /* no _reqId, socket stays open */
	}
	/* Binary frames are decoded as JSON too. */
	ck_assert(wsc_send_binary(c, "{\"type\":\"x\"}", 12));
	expect_text(c, NO_HELLO);
	wsc_free(c);
}
END_TEST

START_TEST(malformed_json_and_null_are_silent)
{
	struct wsc *c = open_ws(B.port);
	ck_assert(wsc_send_text(c, "{not json", 9));
	ck_assert(wsc_send_text(c, "null", 4));
	/* Invalid UTF-8 in a binary frame (a text frame would be wslay's to refuse). */
	ck_assert(wsc_send_binary(c, "\xff\xfe", 2));
	/* The first reply on the socket answers the frame after them. */
	ck_assert(wsc_send_text(c, "{}", 2));
	expect_text(c, NO_HELLO);
	ck_assert_int_eq(itest_metric(B.port,
		"broker_messages_rejected_total{reason=\"parse_or_handler\"}"), 3);
	wsc_free(c);
}
END_TEST

START_TEST(client_ping_gets_pong)
{
	struct wsc *c = open_ws(B.port);
	ck_assert(wsc_send_ping(c, "abc", 3));
	struct wsc_msg m;
	ck_assert_int_eq(wsc_recv(c, &m, 5000), WSC_PONG);
	ck_assert_uint_eq(m.len, 3);
	ck_assert(memcmp(m.data, "abc", 3) == 0);
	wsc_msg_free(&m);
	wsc_free(c);
}
END_TEST

/* Before the handshake a message may be WS_HELLO_MAX_MESSAGE_BYTES
 * (64 KiB): that is accepted (and answered no_hello), one byte more is
 * closed with 1009.  After it the cap is 16 MiB (check_reliability.c). */
START_TEST(message_cap_before_hello_64_kib)
{
	struct wsc *c = open_ws(B.port);
	size_t cap = 64u << 10;
	char *big = malloc(cap + 1);
	memset(big, ' ', cap + 1);
	memcpy(big, "{\"type\":\"x\"", 11);
	big[cap - 1] = '}';
	ck_assert(wsc_send_text(c, big, cap));
	struct wsc_msg m;
	int kind = wsc_recv(c, &m, 20000);
	ck_assert_msg(kind == WSC_TEXT, "kind %d", kind);
	ck_assert_str_eq(m.data, NO_HELLO);
	wsc_msg_free(&m);

	big[cap - 1] = ' ';
	big[cap] = '}';
	(void)wsc_send_text(c, big, cap + 1); /* the server may stop reading mid-way */
	kind = wsc_recv(c, &m, 20000);
	ck_assert_msg(kind == WSC_CLOSE, "kind %d", kind);
	ck_assert_int_eq(m.close_code, 1009);
	wsc_msg_free(&m);
	free(big);
	wsc_free(c);
}
END_TEST

/* Q15: no valid hello within HELLO_DEADLINE_SECONDS → close 1008. */
START_TEST(hello_deadline_closes_1008)
{
	struct broker b2;
	const char *env[] = { "HELLO_DEADLINE_SECONDS=1", NULL };
	itest_broker_start(&b2, env);
	struct wsc *c = open_ws(b2.port);
	long long t0 = httpc_now_ms();
	struct wsc_msg m;
	ck_assert_int_eq(wsc_recv(c, &m, 10000), WSC_CLOSE);
	ck_assert_int_eq(m.close_code, 1008);
	ck_assert_str_eq(m.close_reason, "hello_timeout");
	ck_assert_int_ge(httpc_now_ms() - t0, 900);
	wsc_msg_free(&m);
	wsc_free(c);
	itest_broker_stop(&b2);
}
END_TEST

/* §7.6: pings every PING_INTERVAL_SECONDS; a peer that answers stays, one
 * that does not is dropped (no close frame) after PONG_TIMEOUT_SECONDS. */
START_TEST(server_pings_and_pong_timeout)
{
	struct broker b2;
	const char *env[] = { "PING_INTERVAL_SECONDS=1", "PONG_TIMEOUT_SECONDS=2",
			      "HELLO_DEADLINE_SECONDS=60", NULL };
	itest_broker_start(&b2, env);
	struct wsc *alive = open_ws(b2.port);
	struct wsc *silent = open_ws(b2.port);
	wsc_set_auto_pong(alive, false);
	wsc_set_auto_pong(silent, false);

	/* `alive` answers four pings: still open after 4 s > PONG_TIMEOUT. */
	for (int i = 0; i < 4; i++) {
		struct wsc_msg m;
		ck_assert_int_eq(wsc_recv(alive, &m, 5000), WSC_PING);
		ck_assert(wsc_send_pong(alive, m.data, m.len));
		wsc_msg_free(&m);
	}
	ck_assert(wsc_send_text(alive, "{}", 2));
	struct wsc_msg m;
	int kind;
	while ((kind = wsc_recv(alive, &m, 5000)) == WSC_PING) {
		ck_assert(wsc_send_pong(alive, m.data, m.len));
		wsc_msg_free(&m);
	}
	ck_assert_int_eq(kind, WSC_TEXT);
	wsc_msg_free(&m);

	/* `silent` saw pings, never answered, and was dropped without a close frame. */
	int pings = 0;
	while ((kind = wsc_recv(silent, &m, 5000)) == WSC_PING) {
		pings++;
		wsc_msg_free(&m);
	}
	ck_assert_int_ge(pings, 1);
	ck_assert_msg(kind == WSC_EOF, "kind %d", kind);
	wsc_free(alive);
	wsc_free(silent);
	itest_broker_stop(&b2);
}
END_TEST

START_TEST(client_close_is_echoed)
{
	struct wsc *c = open_ws(B.port);
	ck_assert(wsc_send_close(c, 1000, "bye"));
	struct wsc_msg m;
	ck_assert_int_eq(wsc_recv(c, &m, 5000), WSC_CLOSE);
	ck_assert_int_eq(m.close_code, 1000);
	wsc_msg_free(&m);
	ck_assert_int_eq(wsc_recv(c, &m, 5000), WSC_EOF);
	wsc_free(c);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("websocket");
	TCase *tc = tcase_create("ws");
	tcase_add_unchecked_fixture(tc, itest_cluster_setup, itest_cluster_teardown);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 90);
	tcase_add_test(tc, upgrade_counts_connection);
	tcase_add_test(tc, frames_before_hello_get_no_hello);
	tcase_add_test(tc, malformed_json_and_null_are_silent);
	tcase_add_test(tc, client_ping_gets_pong);
	tcase_add_test(tc, message_cap_before_hello_64_kib);
	tcase_add_test(tc, hello_deadline_closes_1008);
	tcase_add_test(tc, server_pings_and_pong_timeout);
	tcase_add_test(tc, client_close_is_echoed);
	suite_add_tcase(s, tc);
	return check_run(s);
}
