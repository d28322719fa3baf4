/* Unit tests: the connection layer (src/conn.c, src/conntab.c) alone,
 * driven through a stub struct conn_ops over a socketpair: keep-alive,
 * pipelining, bodies, deferred answers, the upgrade, frames both ways, the session
 * deadline, every close path, the output bound, ids and the hand-over to
 * another table.  Nothing of the mesh protocol is linked in.
 */
#include "config.h"

#include <check.h>

#include "check_run.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "meshd/clock.h"
#include "meshd/config.h"
#include "meshd/conn.h"
#include "meshd/conntab.h"
#include "meshd/metrics.h"
#include "meshd/http.h"
#include "meshd/thread.h"
#include "meshd/ws.h"

/* What the stub ops saw, reached through conn_owner(). */
struct seen {
	int requests;
	char targets[8][32];
	char last_body[64];
	long long body_len;       /* -1: the op got no body */
	bool defer;               /* http: answer later (conn_http_defer) */
	int ws_opens, messages, pongs, deadlines, released, freed;
	char last_message[256];
	bool binary;
	size_t respond_body;      /* http: answer with this many bytes of 'x' */
	int64_t deadline_in_ms;   /* ws_open: arm the session deadline, 0: none */
	struct conn *last;
	int user_token;           /* conn_user travels with the connection */
};

static void stub_http(struct conn *c, const struct http_request *req, const char *body,
		      size_t body_len)
{
	struct seen *s = conn_owner(c);
	if (s->requests < 8)
		snprintf(s->targets[s->requests], sizeof(s->targets[0]), "%.*s",
			 (int)req->target_len, req->target);
	s->requests++;
	s->last = c;
	s->body_len = body ? (long long)body_len : -1;
	snprintf(s->last_body, sizeof(s->last_body), "%.*s", body ? (int)body_len : 0,
		 body ? body : "");
	if (s->defer) {
		conn_http_defer(c);
		return;
	}
	size_t n = s->respond_body ? s->respond_body : 2;
	char *answer = malloc(n);
	memset(answer, 'x', n);
	if (!s->respond_body)
		memcpy(answer, "ok", 2);
	conn_http_respond(c, 200, "text/plain", answer, n, false);
	free(answer);
}

static void stub_ws_open(struct conn *c)
{
	struct seen *s = conn_owner(c);
	s->ws_opens++;
	s->last = c;
	conn_set_user(c, &s->user_token);
	if (s->deadline_in_ms)
		conn_ws_set_deadline(c, clock_mono_ms() + s->deadline_in_ms);
}

static void stub_ws_message(struct conn *c, const uint8_t *data, size_t len, bool binary)
{
	struct seen *s = conn_owner(c);
	ck_assert_ptr_nonnull(conn_user(c)); /* set at ws_open, wherever it is now */
	s->messages++;
	s->binary = binary;
	snprintf(s->last_message, sizeof(s->last_message), "%.*s", (int)len, (const char *)data);
	if (len == 4 && memcmp(data, "echo", 4) == 0)
		conn_ws_send(c, "{\"echo\":true}", 13);
	if (len == 5 && memcmp(data, "close", 5) == 0)
		conn_ws_close(c, 4000, "asked");
}

static void stub_ws_pong(struct conn *c)
{
	((struct seen *)conn_owner(c))->pongs++;
}

static void stub_ws_deadline(struct conn *c)
{
	((struct seen *)conn_owner(c))->deadlines++;
	conn_ws_close(c, WS_CLOSE_POLICY, "deadline");
}

static void stub_released(struct conn *c)
{
	((struct seen *)conn_owner(c))->released++;
}

/* Counted through the user pointer: a travelling connection has no owner. */
static int freed_total;
static void stub_freed(struct conn *c)
{
	if (conn_user(c))
		(*(int *)conn_user(c))++;
	freed_total++;
}

static const struct conn_ops stub_ops = {
	.http_request = stub_http,
	.ws_open = stub_ws_open,
	.ws_message = stub_ws_message,
	.ws_pong = stub_ws_pong,
	.ws_deadline = stub_ws_deadline,
	.released = stub_released,
	.freed = stub_freed,
};

/* ---- the harness ---------------------------------------------------------- */

struct rig {
	struct config cfg;
	struct event_base *base;
	struct conntab tab;
	struct seen seen;
	int peer; /* the test's end of the socketpair */
};

static void rig_open(struct rig *r)
{
	memset(r, 0, sizeof(*r));
	thread_set_role(THREAD_WORKER, 0);
	char err[256];
	ck_assert_int_eq(config_load(&r->cfg, 1, (char *[]){ "meshd", NULL }, stdout, err,
				     sizeof(err)),
			 CONFIG_OK);
	r->base = event_base_new();
	ck_assert_ptr_nonnull(r->base);
	conntab_init(&r->tab, 0, r->base, &r->cfg, &r->seen);
	int sv[2];
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
	r->peer = sv[1];
	conn_open(&r->tab, sv[0], "test:1", &stub_ops);
	ck_assert_uint_eq(conntab_count(&r->tab), 1);
}

/* One loop iteration and what the worker does after it. */
static void rig_turn(struct rig *r)
{
	event_base_loop(r->base, EVLOOP_NONBLOCK);
	conntab_uncork_all(&r->tab);
	conntab_free_closed(&r->tab);
}

static void rig_close(struct rig *r)
{
	conntab_abort_all(&r->tab);
	conntab_free_closed(&r->tab);
	conntab_destroy(&r->tab);
	if (r->peer >= 0)
		close(r->peer);
	event_base_free(r->base);
	config_free(&r->cfg);
}

static void peer_write(struct rig *r, const void *p, size_t n)
{
	ck_assert_int_eq(write(r->peer, p, n), (ssize_t)n);
}

static void peer_puts(struct rig *r, const char *s)
{
	peer_write(r, s, strlen(s));
}

/* Turns the loop until `want` bytes came back (or EOF, or 3 s). */
static size_t peer_read(struct rig *r, char *buf, size_t cap, size_t want)
{
	size_t got = 0;
	int64_t until = clock_mono_ms() + 3000;
	while (got < want && clock_mono_ms() < until) {
		rig_turn(r);
		ssize_t n = read(r->peer, buf + got, cap - 1 - got);
		if (n == 0)
			break;
		if (n > 0)
			got += (size_t)n;
		else if (errno == EAGAIN)
			poll(NULL, 0, 2);
	}
	buf[got] = '\0';
	return got;
}

/* True once the peer sees EOF (everything before it discarded). */
static bool peer_sees_eof(struct rig *r)
{
	char buf[4096];
	int64_t until = clock_mono_ms() + 3000;
	while (clock_mono_ms() < until) {
		rig_turn(r);
		ssize_t n = read(r->peer, buf, sizeof(buf));
		if (n == 0)
			return true;
		if (n < 0 && errno != EAGAIN)
			return true; /* reset */
		if (n < 0)
			poll(NULL, 0, 2);
	}
	return false;
}

static void turn_until(struct rig *r, const int *counter, int want)
{
	int64_t until = clock_mono_ms() + 3000;
	while (*counter < want && clock_mono_ms() < until) {
		rig_turn(r);
		poll(NULL, 0, 1);
	}
	ck_assert_int_ge(*counter, want);
}

static const char upgrade_req[] =
	"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
	"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
static const char upgrade_resp[] =
	"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
	"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";

/* A masked client frame (payload < 126 bytes). */
static size_t client_frame(uint8_t *out, uint8_t opcode, const char *payload, size_t len)
{
	const uint8_t mask[4] = { 9, 8, 7, 6 };
	out[0] = (uint8_t)(0x80 | opcode);
	out[1] = (uint8_t)(0x80 | len);
	memcpy(out + 2, mask, 4);
	for (size_t i = 0; i < len; i++)
		out[6 + i] = (uint8_t)payload[i] ^ mask[i % 4];
	return 6 + len;
}

static void upgrade(struct rig *r)
{
	char buf[512];
	peer_puts(r, upgrade_req);
	size_t n = peer_read(r, buf, sizeof(buf), strlen(upgrade_resp));
	ck_assert_uint_eq(n, strlen(upgrade_resp));
	ck_assert_str_eq(buf, upgrade_resp);
	ck_assert_int_eq(r->seen.ws_opens, 1);
}

/* ---- HTTP ------------------------------------------------------------------- */

#define OK_RESPONSE_LEN(body) (strlen(ok_head) + (body))
static const char ok_head[] =
	"HTTP/1.1 200 OK\r\n"
	"Access-Control-Allow-Origin: *\r\n"
	"Access-Control-Allow-Methods: POST, GET, OPTIONS\r\n"
	"Access-Control-Allow-Headers: Content-Type, X-Mesh-Id, X-Member-Id, X-File-Name, "
	"X-Tags, X-Persistent, X-Target-Spec\r\n"
	"Content-Type: text/plain\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\n";

START_TEST(keep_alive_answers_requests_one_after_another)
{
	struct rig r;
	rig_open(&r);
	char buf[2048];
	for (int i = 0; i < 3; i++) {
		peer_puts(&r, "GET /one HTTP/1.1\r\nHost: x\r\n\r\n");
		size_t n = peer_read(&r, buf, sizeof(buf), OK_RESPONSE_LEN(2));
		ck_assert_uint_eq(n, OK_RESPONSE_LEN(2));
		ck_assert(strncmp(buf, ok_head, strlen(ok_head)) == 0);
		ck_assert_str_eq(buf + strlen(ok_head), "ok");
	}
	ck_assert_int_eq(r.seen.requests, 3);
	ck_assert_int_eq(r.seen.released, 0);
	ck_assert_uint_eq(conntab_count(&r.tab), 1);
	rig_close(&r);
}
END_TEST

START_TEST(pipelined_requests_and_skipped_bodies_in_order)
{
	struct rig r;
	rig_open(&r);
	/* The body "GET /x HTTP/1.1..." of the POST must be skipped, not parsed. */
	peer_puts(&r, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
		      "POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 18\r\n\r\nGET /x HTTP/1.1\r\n\r\n"
		      "GET /c HTTP/1.1\r\nHost: x\r\n\r\n");
	char buf[4096];
	size_t n = peer_read(&r, buf, sizeof(buf), 3 * OK_RESPONSE_LEN(2));
	ck_assert_uint_eq(n, 3 * OK_RESPONSE_LEN(2));
	ck_assert_int_eq(r.seen.requests, 3);
	ck_assert_str_eq(r.seen.targets[0], "/a");
	ck_assert_str_eq(r.seen.targets[1], "/b");
	ck_assert_str_eq(r.seen.targets[2], "/c");
	rig_close(&r);
}
END_TEST

START_TEST(connection_close_is_answered_then_closed)
{
	struct rig r;
	rig_open(&r);
	peer_puts(&r, "GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
	char buf[2048];
	peer_read(&r, buf, sizeof(buf), sizeof(buf) - 1);
	ck_assert(strstr(buf, "Connection: close\r\n") != NULL);
	ck_assert(strstr(buf, "\r\n\r\nok") != NULL);
	ck_assert_int_eq(r.seen.released, 1);
	ck_assert_uint_eq(conntab_count(&r.tab), 0);
	rig_close(&r);
}
END_TEST

/* The transport's own answers never reach the ops. */
static void expect_refusal(const char *request, const char *status_line)
{
	struct rig r;
	rig_open(&r);
	peer_puts(&r, request);
	char buf[4096];
	peer_read(&r, buf, sizeof(buf), sizeof(buf) - 1); /* until EOF */
	ck_assert_msg(strncmp(buf, status_line, strlen(status_line)) == 0, "got %s", buf);
	ck_assert(strstr(buf, "Connection: close\r\n") != NULL);
	ck_assert_int_eq(r.seen.requests, 0);
	ck_assert_int_eq(r.seen.released, 1);
	rig_close(&r);
}

START_TEST(refusals_close_without_calling_the_ops)
{
	expect_refusal("GARBAGE\r\n\r\n", "HTTP/1.1 400 ");
	expect_refusal("GET / HTTP/2.0\r\n\r\n", "HTTP/1.1 505 ");
	expect_refusal("POST /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
		       "HTTP/1.1 405 ");
	expect_refusal("GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
		       "Sec-WebSocket-Key: short\r\nSec-WebSocket-Version: 13\r\n\r\n",
		       "HTTP/1.1 400 ");
	char big[HTTP_MAX_HEAD + 64];
	memset(big, 'a', sizeof(big));
	memcpy(big, "GET /", 5);
	big[sizeof(big) - 1] = '\0';
	expect_refusal(big, "HTTP/1.1 431 ");
}
END_TEST

START_TEST(bodies_are_read_whole_and_handed_over)
{
	struct rig r;
	rig_open(&r);
	char buf[4096];
	peer_puts(&r, "POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n01234");
	/* Half a body: not answered yet. */
	for (int i = 0; i < 20; i++)
		rig_turn(&r);
	ck_assert_int_eq(r.seen.requests, 0);
	peer_puts(&r, "56789");
	ck_assert_uint_eq(peer_read(&r, buf, sizeof(buf), OK_RESPONSE_LEN(2)), OK_RESPONSE_LEN(2));
	ck_assert_int_eq(r.seen.body_len, 10);
	ck_assert_str_eq(r.seen.last_body, "0123456789");
	peer_puts(&r, "GET /c HTTP/1.1\r\n\r\n");
	ck_assert_uint_eq(peer_read(&r, buf, sizeof(buf), OK_RESPONSE_LEN(2)), OK_RESPONSE_LEN(2));
	ck_assert_int_eq(r.seen.body_len, -1);
	rig_close(&r);
}
END_TEST

START_TEST(too_large_body_is_not_read_and_the_answer_closes)
{
	struct rig r;
	rig_open(&r);
	r.cfg.max_message_bytes = 16;
	peer_puts(&r, "POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: 17\r\n\r\n0123456789abcdefg"
		      "GET /never HTTP/1.1\r\n\r\n");
	char buf[4096];
	peer_read(&r, buf, sizeof(buf), sizeof(buf) - 1); /* until EOF */
	ck_assert_int_eq(r.seen.requests, 1);             /* the ops answer it (413 is theirs) */
	ck_assert_int_eq(r.seen.body_len, -1);
	ck_assert(strstr(buf, "Connection: close\r\n") != NULL);
	ck_assert_int_eq(r.seen.released, 1);
	rig_close(&r);
}
END_TEST

START_TEST(deferred_answer_holds_pipelined_requests)
{
	struct rig r;
	rig_open(&r);
	r.seen.defer = true;
	peer_puts(&r, "GET /first HTTP/1.1\r\n\r\nGET /second HTTP/1.1\r\n\r\n");
	for (int i = 0; i < 20; i++)
		rig_turn(&r);
	ck_assert_int_eq(r.seen.requests, 1); /* the second waits, unread */
	char buf[4096];
	ck_assert_int_eq(read(r.peer, buf, sizeof(buf)), -1);
	r.seen.defer = false;
	conn_http_respond(r.seen.last, 200, "text/plain", "ok", 2, false); /* later, as a reply */
	ck_assert_uint_eq(peer_read(&r, buf, sizeof(buf), 2 * OK_RESPONSE_LEN(2)),
			  2 * OK_RESPONSE_LEN(2));
	ck_assert_int_eq(r.seen.requests, 2);
	ck_assert_str_eq(r.seen.targets[1], "/second");
	rig_close(&r);
}
END_TEST

START_TEST(upgrade_elsewhere_drops_the_socket_silently)
{
	struct rig r;
	rig_open(&r);
	peer_puts(&r, "GET /other HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
		      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n");
	char buf[64];
	ck_assert_uint_eq(peer_read(&r, buf, sizeof(buf), 1), 0); /* EOF, no byte */
	ck_assert_int_eq(r.seen.released, 1);
	ck_assert_int_eq(r.seen.ws_opens, 0);
	rig_close(&r);
}
END_TEST

START_TEST(idle_keep_alive_is_dropped_at_its_deadline)
{
	struct rig r;
	rig_open(&r);
	r.cfg.hello_deadline_seconds = 1; /* read when the next request's limit is set */
	peer_puts(&r, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n");
	char buf[2048];
	peer_read(&r, buf, sizeof(buf), OK_RESPONSE_LEN(2));
	/* Blocking turns: the connection's own timer must end it. */
	int64_t until = clock_mono_ms() + 5000;
	while (r.seen.released == 0 && clock_mono_ms() < until) {
		event_base_loop(r.base, EVLOOP_ONCE);
		conntab_free_closed(&r.tab);
	}
	ck_assert_int_eq(r.seen.released, 1);
	ck_assert(peer_sees_eof(&r));
	rig_close(&r);
}
END_TEST

START_TEST(output_past_the_bound_drops_the_peer)
{
	struct rig r;
	rig_open(&r);
	r.cfg.conn_max_output_bytes = 4096;
	r.seen.respond_body = 64 * 1024;
	int64_t drops = metrics_get(METRIC_OUTPUT_DROPS, 0);
	peer_puts(&r, "GET /big HTTP/1.1\r\nHost: x\r\n\r\n");
	turn_until(&r, &r.seen.released, 1);
	ck_assert_int_eq(metrics_get(METRIC_OUTPUT_DROPS, 0), drops + 1);
	ck_assert_int_eq(r.seen.requests, 1);
	ck_assert_uint_eq(conntab_count(&r.tab), 0);
	ck_assert(peer_sees_eof(&r));
	rig_close(&r);
}
END_TEST

/* ---- WebSocket ------------------------------------------------------------- */

START_TEST(upgrade_then_frames_both_ways)
{
	struct rig r;
	rig_open(&r);
	/* The first frame rides in the same write as the upgrade head. */
	uint8_t frames[256];
	size_t head = strlen(upgrade_req);
	memcpy(frames, upgrade_req, head);
	size_t n = head + client_frame(frames + head, 0x1, "hello", 5);
	peer_write(&r, frames, n);
	char buf[512];
	ck_assert_uint_eq(peer_read(&r, buf, sizeof(buf), strlen(upgrade_resp)), strlen(upgrade_resp));
	turn_until(&r, &r.seen.messages, 1);
	ck_assert_str_eq(r.seen.last_message, "hello");
	ck_assert(!r.seen.binary);

	/* A binary message, and one the stub answers. */
	n = client_frame(frames, 0x2, "bin", 3);
	n += client_frame(frames + n, 0x1, "echo", 4);
	peer_write(&r, frames, n);
	uint8_t want[] = { 0x81, 13, '{', '"', 'e', 'c', 'h', 'o', '"', ':', 't', 'r', 'u', 'e', '}' };
	ck_assert_uint_eq(peer_read(&r, buf, sizeof(buf), sizeof(want)), sizeof(want));
	ck_assert(memcmp(buf, want, sizeof(want)) == 0);
	ck_assert_int_eq(r.seen.messages, 3);

	/* A client ping is answered by a pong; a client pong reaches the ops. */
	n = client_frame(frames, 0x9, "p", 1);
	n += client_frame(frames + n, 0xA, "", 0);
	peer_write(&r, frames, n);
	ck_assert_uint_eq(peer_read(&r, buf, sizeof(buf), 3), 3);
	ck_assert_int_eq((uint8_t)buf[0], 0x8A);
	ck_assert_int_eq(buf[1], 1);
	ck_assert_int_eq(buf[2], 'p');
	turn_until(&r, &r.seen.pongs, 1);
	rig_close(&r);
}
END_TEST

START_TEST(server_close_handshake_then_released)
{
	struct rig r;
	rig_open(&r);
	upgrade(&r);
	uint8_t f[64];
	peer_write(&r, f, client_frame(f, 0x1, "close", 5));
	char buf[64];
	/* 0x88, length 2 + "asked", code 4000. */
	ck_assert_uint_eq(peer_read(&r, buf, sizeof(buf), 9), 9);
	ck_assert_int_eq((uint8_t)buf[0], 0x88);
	ck_assert_int_eq(buf[1], 7);
	ck_assert_int_eq(((uint8_t)buf[2] << 8) | (uint8_t)buf[3], 4000);
	ck_assert(memcmp(buf + 4, "asked", 5) == 0);
	ck_assert_int_eq(r.seen.released, 0); /* waits for the peer's close */
	const char code[2] = { 0x0f, (char)0xa0 };
	peer_write(&r, f, client_frame(f, 0x8, code, 2));
	turn_until(&r, &r.seen.released, 1);
	ck_assert_int_eq(r.seen.user_token, 1); /* freed, through conn_user */
	rig_close(&r);
}
END_TEST

START_TEST(peer_hangup_releases_once_and_frees_after_the_iteration)
{
	struct rig r;
	rig_open(&r);
	upgrade(&r);
	struct conn *c = r.seen.last;
	uint32_t slot = c->slot, gen = c->gen;
	ck_assert_ptr_eq(conntab_get(&r.tab, slot, gen), c);
	close(r.peer);
	r.peer = -1;
	turn_until(&r, &r.seen.released, 1);
	ck_assert_int_eq(r.seen.released, 1);
	ck_assert_int_eq(r.seen.user_token, 1);
	ck_assert_ptr_null(conntab_get(&r.tab, slot, gen));
	rig_close(&r);
	ck_assert_int_eq(r.seen.released, 1);
}
END_TEST

START_TEST(session_deadline_reaches_the_ops)
{
	struct rig r;
	rig_open(&r);
	r.seen.deadline_in_ms = 50;
	upgrade(&r);
	int64_t until = clock_mono_ms() + 3000;
	while (r.seen.deadlines == 0 && clock_mono_ms() < until) {
		event_base_loop(r.base, EVLOOP_ONCE);
		conntab_uncork_all(&r.tab);
	}
	ck_assert_int_eq(r.seen.deadlines, 1);
	char buf[64];
	ck_assert_uint_eq(peer_read(&r, buf, sizeof(buf), 4 + 8), 12);
	ck_assert_int_eq((uint8_t)buf[0], 0x88);
	ck_assert_int_eq(((uint8_t)buf[2] << 8) | (uint8_t)buf[3], WS_CLOSE_POLICY);
	ck_assert(memcmp(buf + 4, "deadline", 8) == 0);
	rig_close(&r);
}
END_TEST

START_TEST(cleared_deadline_never_fires)
{
	struct rig r;
	rig_open(&r);
	r.seen.deadline_in_ms = 100;
	upgrade(&r);
	conn_ws_set_deadline(r.seen.last, 0);
	int64_t until = clock_mono_ms() + 400;
	while (clock_mono_ms() < until) {
		rig_turn(&r);
		poll(NULL, 0, 5);
	}
	ck_assert_int_eq(r.seen.deadlines, 0);
	ck_assert_int_eq(r.seen.released, 0);
	rig_close(&r);
}
END_TEST

START_TEST(slots_are_reused_with_a_new_generation)
{
	struct rig r;
	rig_open(&r);
	char buf[2048];
	peer_puts(&r, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n");
	peer_read(&r, buf, sizeof(buf), OK_RESPONSE_LEN(2));
	struct conn *c = r.seen.last;
	uint32_t slot = c->slot, gen = c->gen;
	conn_abort(c);
	rig_turn(&r);
	ck_assert_ptr_null(conntab_get(&r.tab, slot, gen));
	int sv[2];
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	conn_open(&r.tab, sv[0], "test:2", &stub_ops);
	close(r.peer);
	r.peer = sv[1];
	peer_puts(&r, "GET /b HTTP/1.1\r\nHost: x\r\n\r\n");
	peer_read(&r, buf, sizeof(buf), OK_RESPONSE_LEN(2));
	ck_assert_uint_eq(r.seen.last->slot, slot);
	ck_assert_uint_ne(r.seen.last->gen, gen);
	ck_assert_ptr_null(conntab_get(&r.tab, slot, gen));
	ck_assert_ptr_eq(conntab_get(&r.tab, slot, r.seen.last->gen), r.seen.last);
	ck_assert_ptr_null(conntab_get(&r.tab, 1u << 30, 1));
	rig_close(&r);
}
END_TEST

START_TEST(migrated_connection_keeps_its_bytes_and_user)
{
	struct rig a;
	rig_open(&a);
	upgrade(&a);
	struct conn *c = a.seen.last;
	conn_migrate(c, 1);
	/* A frame that arrives before the hand-over travels unread. */
	uint8_t f[64];
	peer_write(&a, f, client_frame(f, 0x1, "early", 5));
	poll(NULL, 0, 20);
	ck_assert_ptr_eq(conntab_take_migrating(&a.tab), c);
	ck_assert_ptr_null(conntab_take_migrating(&a.tab));
	ck_assert(conn_detach(c));
	ck_assert_uint_eq(conntab_count(&a.tab), 0);
	ck_assert_ptr_null(conn_owner(c));

	/* The other table: its own base and owner. */
	struct seen other = { 0 };
	struct event_base *base2 = event_base_new();
	struct conntab tab2;
	conntab_init(&tab2, 0, base2, &a.cfg, &other);
	ck_assert(conn_attach(&tab2, c));
	ck_assert_ptr_eq(conn_owner(c), &other);
	ck_assert_ptr_eq(conn_user(c), &a.seen.user_token);
	conn_resume_input(c);
	peer_write(&a, f, client_frame(f, 0x1, "late", 4));
	int64_t until = clock_mono_ms() + 3000;
	while (other.messages < 2 && clock_mono_ms() < until) {
		event_base_loop(base2, EVLOOP_NONBLOCK);
		conntab_uncork_all(&tab2);
		poll(NULL, 0, 1);
	}
	ck_assert_int_eq(other.messages, 2);
	ck_assert_str_eq(other.last_message, "late");
	ck_assert_int_eq(a.seen.messages, 0);
	conntab_abort_all(&tab2);
	ck_assert_int_eq(other.released, 1);
	conntab_free_closed(&tab2);
	ck_assert_int_eq(a.seen.user_token, 1);
	conntab_destroy(&tab2);
	event_base_free(base2);
	rig_close(&a);
}
END_TEST

START_TEST(travelling_connection_is_freed_through_its_ops)
{
	struct rig r;
	rig_open(&r);
	upgrade(&r);
	struct conn *c = r.seen.last;
	conn_migrate(c, 1);
	ck_assert_ptr_eq(conntab_take_migrating(&r.tab), c);
	ck_assert(conn_detach(c));
	int before = freed_total;
	conn_free(c); /* as a worker does with an adoption it cannot take */
	ck_assert_int_eq(freed_total, before + 1);
	ck_assert_int_eq(r.seen.user_token, 1);
	ck_assert(peer_sees_eof(&r));
	rig_close(&r);
}
END_TEST

START_TEST(shutdown_closes_websockets_with_1001_and_drops_http)
{
	struct rig r;
	rig_open(&r);
	upgrade(&r);
	int sv[2];
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	conn_open(&r.tab, sv[0], "test:2", &stub_ops);
	ck_assert_uint_eq(conntab_count(&r.tab), 2);
	conntab_shutdown_all(&r.tab);
	rig_turn(&r);
	ck_assert_int_eq(r.seen.released, 1); /* the HTTP one, at once */
	char buf[64];
	ck_assert_uint_eq(peer_read(&r, buf, sizeof(buf), 4 + 13), 17);
	ck_assert_int_eq(((uint8_t)buf[2] << 8) | (uint8_t)buf[3], WS_CLOSE_GOING_AWAY);
	ck_assert(memcmp(buf + 4, "shutting down", 13) == 0);
	close(sv[1]);
	rig_close(&r);
}
END_TEST

static Suite *conn_suite(void)
{
	Suite *s = suite_create("conn");
	TCase *http = tcase_create("http");
	tcase_add_test(http, keep_alive_answers_requests_one_after_another);
	tcase_add_test(http, pipelined_requests_and_skipped_bodies_in_order);
	tcase_add_test(http, connection_close_is_answered_then_closed);
	tcase_add_test(http, refusals_close_without_calling_the_ops);
	tcase_add_test(http, bodies_are_read_whole_and_handed_over);
	tcase_add_test(http, too_large_body_is_not_read_and_the_answer_closes);
	tcase_add_test(http, deferred_answer_holds_pipelined_requests);
	tcase_add_test(http, upgrade_elsewhere_drops_the_socket_silently);
	tcase_add_test(http, idle_keep_alive_is_dropped_at_its_deadline);
	tcase_add_test(http, output_past_the_bound_drops_the_peer);
	suite_add_tcase(s, http);
	TCase *ws = tcase_create("websocket");
	tcase_add_test(ws, upgrade_then_frames_both_ways);
	tcase_add_test(ws, server_close_handshake_then_released);
	tcase_add_test(ws, peer_hangup_releases_once_and_frees_after_the_iteration);
	tcase_add_test(ws, session_deadline_reaches_the_ops);
	tcase_add_test(ws, cleared_deadline_never_fires);
	tcase_add_test(ws, shutdown_closes_websockets_with_1001_and_drops_http);
	suite_add_tcase(s, ws);
	TCase *tab = tcase_create("table");
	tcase_add_test(tab, slots_are_reused_with_a_new_generation);
	tcase_add_test(tab, migrated_connection_keeps_its_bytes_and_user);
	tcase_add_test(tab, travelling_connection_is_freed_through_its_ops);
	suite_add_tcase(s, tab);
	return s;
}

int main(void)
{
	return check_run(conn_suite());
}
