/* Unit tests: WebSocket handshake key and the wslay glue (src/ws.c). */
#include "config.h"

#include <check.h>

#include "check_run.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "meshd/ws.h"

START_TEST(accept_key_rfc6455_example)
{
	/* RFC 6455 §1.3: the server's answer to this exact key. */
	const char *key = "dGhlIHNhbXBsZSBub25jZQ==";
	char out[WS_ACCEPT_KEY_LEN + 1];
	ws_accept_key(key, strlen(key), out);
	ck_assert_str_eq(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}
END_TEST

START_TEST(client_key_validation)
{
	ck_assert(ws_client_key_valid("dGhlIHNhbXBsZSBub25jZQ==", 24));
	ck_assert(!ws_client_key_valid("dGhlIHNhbXBsZSBub25jZQ=", 23));   /* short */
	ck_assert(!ws_client_key_valid("dGhlIHNhbXBsZSBub25jZQ!!", 24));  /* not base64 */
	ck_assert(!ws_client_key_valid("dGhlIHNhbXBsZSBub25jZXh4", 24));  /* 18 bytes */
	ck_assert(!ws_client_key_valid("", 0));
	ck_assert(!ws_client_key_valid("dGhlIHNhbXBsZSBub25jZQ\x80=", 24)); /* not ASCII */
}
END_TEST

struct seen {
	int messages;
	int pongs;
	char last[64];
	bool binary;
};

static void on_message(void *ud, const uint8_t *data, size_t len, bool binary)
{
	struct seen *s = ud;
	s->messages++;
	s->binary = binary;
	snprintf(s->last, sizeof(s->last), "%.*s", (int)len, (const char *)data);
}

static void on_pong(void *ud)
{
	((struct seen *)ud)->pongs++;
}

static const struct ws_handlers handlers = { on_message, on_pong };

/* A masked client frame (payload < 126 bytes), built by hand for the test
 * (the server side is wslay's). */
static void client_frame_fin(struct evbuffer *b, bool fin, uint8_t opcode, const char *payload,
			     size_t len)
{
	uint8_t head[2] = { (uint8_t)((fin ? 0x80 : 0) | opcode), (uint8_t)(0x80 | len) };
	const uint8_t mask[4] = { 1, 2, 3, 4 };
	evbuffer_add(b, head, 2);
	evbuffer_add(b, mask, 4);
	for (size_t i = 0; i < len; i++) {
		uint8_t c = (uint8_t)payload[i] ^ mask[i % 4];
		evbuffer_add(b, &c, 1);
	}
}

static void client_frame(struct evbuffer *b, uint8_t opcode, const char *payload, size_t len)
{
	client_frame_fin(b, true, opcode, payload, len);
}

/* The close code and reason of the close frame at the head of out. */
static uint16_t close_frame(struct evbuffer *out, char reason[126])
{
	unsigned char f[2 + 125];
	size_t n = evbuffer_remove(out, f, sizeof(f));
	ck_assert_uint_ge(n, 4);
	ck_assert_int_eq(f[0], 0x88);
	ck_assert_uint_eq(f[1] & 0x7f, n - 2);
	snprintf(reason, 126, "%.*s", (int)(n - 4), (const char *)f + 4);
	return (uint16_t)(f[2] << 8 | f[3]);
}

START_TEST(pump_delivers_messages_split_anywhere)
{
	struct evbuffer *wire = evbuffer_new();
	client_frame(wire, 0x1, "{\"type\":\"x\"}", 12);
	client_frame(wire, 0x2, "bin", 3);
	client_frame(wire, 0xA, "", 0); /* pong */
	size_t total = evbuffer_get_length(wire);
	unsigned char *bytes = malloc(total);
	evbuffer_remove(wire, bytes, total);

	for (size_t split = 0; split <= total; split++) {
		struct evbuffer *in = evbuffer_new(), *out = evbuffer_new();
		struct seen s = { 0 };
		struct ws *ws = ws_new(in, out, 1 << 20, &handlers, &s);
		evbuffer_add(in, bytes, split);
		ck_assert(ws_pump(ws));
		evbuffer_add(in, bytes + split, total - split);
		ck_assert(ws_pump(ws));
		ck_assert_int_eq(s.messages, 2);
		ck_assert_str_eq(s.last, "bin");
		ck_assert(s.binary);
		ck_assert_int_eq(s.pongs, 1);
		ws_free(ws);
		evbuffer_free(in);
		evbuffer_free(out);
	}
	free(bytes);
	evbuffer_free(wire);
}
END_TEST

START_TEST(oversize_message_closes_1009)
{
	struct evbuffer *in = evbuffer_new(), *out = evbuffer_new();
	struct seen s = { 0 };
	struct ws *ws = ws_new(in, out, 8, &handlers, &s);
	client_frame(in, 0x1, "0123456789", 10);
	ck_assert(ws_pump(ws));
	ck_assert_int_eq(s.messages, 0);
	ck_assert(ws_close_sent(ws));
	/* Server frame: FIN|close, length 2, status 1009 big-endian. */
	unsigned char frame[4];
	ck_assert_int_eq(evbuffer_remove(out, frame, 4), 4);
	ck_assert_int_eq(frame[0], 0x88);
	ck_assert_int_eq(frame[1] & 0x7f, 2);
	ck_assert_int_eq(frame[2] << 8 | frame[3], 1009);
	ws_free(ws);
	evbuffer_free(in);
	evbuffer_free(out);
}
END_TEST

/* The cap can be raised (the handshake is done): a message refused at
 * 8 bytes passes at 1 MiB. */
START_TEST(max_message_raised_after_open)
{
	struct evbuffer *in = evbuffer_new(), *out = evbuffer_new();
	struct seen s = { 0 };
	struct ws *ws = ws_new(in, out, 8, &handlers, &s);
	ws_set_max_message(ws, 1 << 20);
	client_frame(in, 0x1, "0123456789", 10);
	ck_assert(ws_pump(ws));
	ck_assert_int_eq(s.messages, 1);
	ck_assert_str_eq(s.last, "0123456789");
	ck_assert(!ws_close_sent(ws));
	ws_free(ws);
	evbuffer_free(in);
	evbuffer_free(out);
}
END_TEST

/* Sessions sharing a budget of 100 bytes of unfinished messages: 60 held
 * by one, then 60 by another crosses it, which is closed with 1009
 * message_budget; the first, over the budget too, finishes its message in
 * that read and is not refused; freeing the second returns what it held. */
START_TEST(partial_budget_refuses_the_crossing_message)
{
	struct ws_budget budget = { .limit = 100 };
	struct evbuffer *in1 = evbuffer_new(), *out1 = evbuffer_new();
	struct evbuffer *in2 = evbuffer_new(), *out2 = evbuffer_new();
	struct seen s1 = { 0 }, s2 = { 0 };
	struct ws *w1 = ws_new(in1, out1, 1 << 20, &handlers, &s1);
	struct ws *w2 = ws_new(in2, out2, 1 << 20, &handlers, &s2);
	ws_set_budget(w1, &budget);
	ws_set_budget(w2, &budget);
	char sixty[60];
	memset(sixty, 'x', sizeof(sixty));
	client_frame_fin(in1, false, 0x1, sixty, sizeof(sixty));
	ck_assert(ws_pump(w1));
	ck_assert_uint_eq(budget.used, 60);
	ck_assert(!ws_close_sent(w1));

	client_frame_fin(in2, false, 0x1, sixty, sizeof(sixty));
	ck_assert(ws_pump(w2));
	ck_assert(ws_close_sent(w2));
	char reason[126];
	ck_assert_uint_eq(close_frame(out2, reason), 1009);
	ck_assert_str_eq(reason, "message_budget");
	ck_assert_uint_eq(budget.refused, 1);
	/* Reading is over for it: more bytes are discarded, not held. */
	client_frame_fin(in2, true, 0x0, sixty, sizeof(sixty));
	ck_assert(ws_pump(w2));
	ck_assert_uint_eq(evbuffer_get_length(in2), 0);
	ck_assert_uint_eq(budget.used, 120);
	ck_assert_int_eq(s2.messages, 0);

	client_frame_fin(in1, true, 0x0, "end", 3);
	ck_assert(ws_pump(w1));
	ck_assert_int_eq(s1.messages, 1);
	ck_assert(!ws_close_sent(w1));
	ck_assert_uint_eq(budget.refused, 1);
	ck_assert_uint_eq(budget.used, 60);
	ws_free(w2);
	ck_assert_uint_eq(budget.used, 0);
	/* Moving a session between budgets moves what it holds. */
	struct ws_budget other = { .limit = 0 };
	client_frame_fin(in1, false, 0x2, "abc", 3);
	ck_assert(ws_pump(w1));
	ck_assert_uint_eq(budget.used, 3);
	ws_set_budget(w1, NULL);
	ws_set_budget(w1, &other);
	ck_assert_uint_eq(budget.used, 0);
	ck_assert_uint_eq(other.used, 3);
	ws_free(w1);
	ck_assert_uint_eq(other.used, 0);
	evbuffer_free(in1);
	evbuffer_free(out1);
	evbuffer_free(in2);
	evbuffer_free(out2);
}
END_TEST

START_TEST(text_and_close_frames_are_unmasked_server_frames)
{
	struct evbuffer *in = evbuffer_new(), *out = evbuffer_new();
	struct seen s = { 0 };
	struct ws *ws = ws_new(in, out, 1 << 20, &handlers, &s);
	/* wslay sends queued control frames ahead of data frames, so a message
	 * that must precede a close (an error, then 1008) is flushed first;
	 * conn_ws_send() always does. */
	ck_assert(ws_send_text(ws, "hi", 2));
	ck_assert(ws_flush(ws));
	ck_assert(ws_send_close(ws, 1001, "shutting down"));
	ck_assert(ws_flush(ws));
	unsigned char f[32];
	size_t n = evbuffer_remove(out, f, sizeof(f));
	ck_assert_uint_eq(n, 4 + 2 + 2 + 13);
	ck_assert_int_eq(f[0], 0x81);
	ck_assert_int_eq(f[1], 2);
	ck_assert(memcmp(f + 2, "hi", 2) == 0);
	ck_assert_int_eq(f[4], 0x88);
	ck_assert_int_eq(f[5], 15);
	ck_assert_int_eq(f[6] << 8 | f[7], 1001);
	ck_assert(memcmp(f + 8, "shutting down", 13) == 0);
	ck_assert(!ws_send_text(ws, "late", 4)); /* nothing after a close */
	ws_free(ws);
	evbuffer_free(in);
	evbuffer_free(out);
}
END_TEST

/* Parking frees wslay only between frames and resumes transparently. */
START_TEST(park_between_frames_only)
{
	struct evbuffer *in = evbuffer_new(), *out = evbuffer_new();
	struct seen s = { 0 };
	struct ws *ws = ws_new(in, out, 1 << 20, &handlers, &s);
	ck_assert(ws_park(ws)); /* fresh: between frames */
	ck_assert(ws_parked(ws));

	struct evbuffer *wire = evbuffer_new();
	client_frame(wire, 0x1, "{\"type\":\"a\"}", 12);
	unsigned char frame[64];
	size_t len = evbuffer_remove(wire, frame, sizeof(frame));
	/* Half a frame: wslay holds it, so it must not be parked. */
	evbuffer_add(in, frame, 5);
	ck_assert(ws_pump(ws));
	ck_assert(!ws_parked(ws));
	ck_assert(!ws_park(ws));
	evbuffer_add(in, frame + 5, len - 5);
	ck_assert(ws_pump(ws));
	ck_assert_int_eq(s.messages, 1);
	ck_assert(ws_park(ws));

	/* A fragmented message open across frames: not parkable until it ends. */
	uint8_t first[2 + 4 + 2] = { 0x01, 0x80 | 2, 0, 0, 0, 0, 'h', 'i' };
	evbuffer_add(in, first, sizeof(first));
	ck_assert(ws_pump(ws));
	ck_assert(!ws_park(ws));
	uint8_t last[2 + 4 + 1] = { 0x80, 0x80 | 1, 0, 0, 0, 0, '!' };
	evbuffer_add(in, last, sizeof(last));
	ck_assert(ws_pump(ws));
	ck_assert_int_eq(s.messages, 2);
	ck_assert_str_eq(s.last, "hi!");
	ck_assert(ws_park(ws));

	/* Sending from a parked session works (it is made again). */
	ck_assert(ws_send_ping(ws));
	ck_assert(ws_flush(ws));
	unsigned char ping[2];
	ck_assert_int_eq(evbuffer_remove(out, ping, 2), 2);
	ck_assert_int_eq(ping[0], 0x89);
	ck_assert(ws_park(ws));
	ws_free(ws);
	evbuffer_free(in);
	evbuffer_free(out);
	evbuffer_free(wire);
}
END_TEST

/* Corking: with a socket, frames flushed while `out` is empty wait in the
 * cork and go out in one write at ws_uncork; behind queued bytes they wait
 * in `out`, in order; without a socket nothing is corked. */
START_TEST(cork_sends_one_write_only_when_out_is_empty)
{
	int sv[2];
	/* Non-blocking, as every broker socket is (accept4 SOCK_NONBLOCK). */
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	struct evbuffer *in = evbuffer_new(), *out = evbuffer_new();
	struct seen s = { 0 };
	struct ws *ws = ws_new(in, out, 1 << 20, &handlers, &s);
	ws_rebind(ws, in, out, sv[0]);

	ck_assert(ws_send_text(ws, "hello", 5));
	ck_assert(ws_flush(ws));
	ck_assert(ws_send_text(ws, "again", 5));
	ck_assert(ws_flush(ws));
	ck_assert(ws_corked(ws));
	unsigned char got[32];
	ck_assert_int_eq(recv(sv[1], got, sizeof(got), MSG_DONTWAIT), -1); /* corked */
	ck_assert_int_eq(errno, EAGAIN);
	ws_uncork(ws);
	ck_assert(!ws_corked(ws));
	ck_assert_uint_eq(evbuffer_get_length(out), 0);
	ck_assert_int_eq(recv(sv[1], got, sizeof(got), MSG_DONTWAIT), 14); /* both frames */
	ck_assert_int_eq(got[0], 0x81);
	ck_assert_int_eq(got[1], 5);
	ck_assert_int_eq(memcmp(got + 2, "hello", 5), 0);
	ck_assert_int_eq(got[7], 0x81);
	ck_assert_int_eq(memcmp(got + 9, "again", 5), 0);

	/* Bytes already queued: the frame queues behind them, uncorked. */
	evbuffer_add(out, "X", 1);
	ck_assert(ws_send_text(ws, "abc", 3));
	ck_assert(ws_flush(ws));
	ck_assert(!ws_corked(ws));
	ck_assert_uint_eq(evbuffer_get_length(out), 1 + 2 + 3);
	ck_assert_int_eq(evbuffer_remove(out, got, sizeof(got)), 6);
	ck_assert_int_eq(got[0], 'X');
	ck_assert_int_eq(got[1], 0x81);
	ck_assert_int_eq(memcmp(got + 3, "abc", 3), 0);

	/* More than the socket takes: the rest waits in `out`, in order. */
	int small = 4096;
	ck_assert_int_eq(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)), 0);
	size_t big = 1 << 20;
	char *payload = malloc(big);
	memset(payload, 'p', big);
	ck_assert(ws_send_text(ws, payload, big));
	ck_assert(ws_flush(ws));
	ws_uncork(ws);
	ssize_t n = recv(sv[1], got, 2, MSG_DONTWAIT);
	ck_assert_int_eq(n, 2);
	ck_assert_int_eq(got[0], 0x81);
	ck_assert_int_eq(got[1], 127); /* 64-bit length follows */
	size_t on_socket = 2;
	unsigned char *sink = malloc(big);
	while ((n = recv(sv[1], sink, big, MSG_DONTWAIT)) > 0)
		on_socket += (size_t)n;
	ck_assert_uint_lt(on_socket, 2 + 8 + big);
	ck_assert_uint_eq(on_socket + evbuffer_get_length(out), 2 + 8 + big);

	/* Without a socket (a connection in transit), nothing is corked. */
	evbuffer_drain(out, evbuffer_get_length(out));
	ws_rebind(ws, in, out, -1);
	ck_assert(ws_send_text(ws, "q", 1));
	ck_assert(ws_flush(ws));
	ck_assert(!ws_corked(ws));
	ck_assert_uint_eq(evbuffer_get_length(out), 3);

	free(payload);
	free(sink);
	ws_free(ws);
	evbuffer_free(in);
	evbuffer_free(out);
	close(sv[0]);
	close(sv[1]);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("ws");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, accept_key_rfc6455_example);
	tcase_add_test(tc, client_key_validation);
	tcase_add_test(tc, pump_delivers_messages_split_anywhere);
	tcase_add_test(tc, oversize_message_closes_1009);
	tcase_add_test(tc, max_message_raised_after_open);
	tcase_add_test(tc, partial_budget_refuses_the_crossing_message);
	tcase_add_test(tc, text_and_close_frames_are_unmasked_server_frames);
	tcase_add_test(tc, park_between_frames_only);
	tcase_add_test(tc, cork_sends_one_write_only_when_out_is_empty);
	suite_add_tcase(s, tc);
	return check_run(s);
}
