/* fuzz_conn — libFuzzer harness for a connection's byte handling
 * (src/conn.c with src/http.c and src/ws.c), bound to stub ops: no mesh
 * protocol, no database.
 *
 * Build: clang -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude -I build \
 *        tests/fuzz/fuzz_conn.c src/conn.c src/conntab.c src/http.c src/ws.c \
 *        src/config.c src/log.c src/alloc.c src/metrics.c src/thread.c \
 *        -levent_core -lwslay -lcrypto -lsodium -o /tmp/fuzz_conn
 * Run:   /tmp/fuzz_conn tests/fuzz/corpus/conn
 *
 * The input is what a client sends on one connection.  Besides memory
 * safety it checks what the layer above relies on: the requests and
 * messages handed to the ops, and every byte sent back, do not depend on
 * how the input was split across reads (it is fed whole, then again in two
 * parts at a point the input's length picks), and a connection released
 * is released exactly once and freed exactly once.
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "meshd/config.h"
#include "meshd/conn.h"
#include "meshd/conntab.h"
#include "meshd/http.h"
#include "meshd/thread.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define require(cond) require_at((cond), #cond, __LINE__)
static void require_at(int cond, const char *what, int line)
{
	if (!cond) {
		fprintf(stderr, "fuzz_conn: %d: %s\n", line, what);
		abort();
	}
}

/* Everything observable, in order: what the ops were given, and the bytes
 * the peer read back (two streams: how they interleave depends on when the
 * peer happened to read). */
#define OUT_MAX (1 << 20)
struct trace {
	uint64_t events;         /* FNV-1a over what the ops were given */
	unsigned char *out;      /* the bytes sent back, the first OUT_MAX */
	size_t out_bytes;
	int released, freed;
	int opened;
};

static void mix(uint64_t *h, const void *p, size_t n)
{
	const unsigned char *b = p;
	for (size_t i = 0; i < n; i++) {
		*h ^= b[i];
		*h *= 1099511628211ULL;
	}
}

static void ev(struct trace *t, char kind, const void *p, size_t n)
{
	mix(&t->events, &kind, 1);
	mix(&t->events, &n, sizeof(n));
	mix(&t->events, p, n);
}

static void on_http(struct conn *c, const struct http_request *req, const char *body,
		    size_t body_len)
{
	struct trace *t = conn_owner(c);
	ev(t, 'H', req->target, req->target_len);
	ev(t, 'M', req->method_str, req->method_len);
	ev(t, 'D', body ? body : "", body ? body_len : 0);
	conn_http_respond(c, 200, "text/plain", "ok", 2, false);
}

static void on_ws_open(struct conn *c)
{
	struct trace *t = conn_owner(c);
	t->opened++;
	ev(t, 'O', "", 0);
}

static void on_message(struct conn *c, const uint8_t *data, size_t len, bool binary)
{
	struct trace *t = conn_owner(c);
	ev(t, binary ? 'B' : 'T', data, len);
	/* Answer some, so output and corking are exercised too. */
	if (len > 0 && data[0] == '{')
		conn_ws_send(c, (const char *)data, len);
	if (len > 0 && data[0] == '!')
		conn_ws_close(c, 4000, "bye");
}

static void on_pong(struct conn *c)
{
	ev(conn_owner(c), 'P', "", 0);
}

static void on_released(struct conn *c)
{
	struct trace *t = conn_owner(c);
	t->released++;
	require(t->released == 1);
}

static struct trace *freed_into;
static void on_freed(struct conn *c)
{
	(void)c;
	freed_into->freed++;
}

static const struct conn_ops ops = {
	.http_request = on_http,
	.ws_open = on_ws_open,
	.ws_message = on_message,
	.ws_pong = on_pong,
	.released = on_released,
	.freed = on_freed,
};

static struct config cfg;

static void setup_once(void)
{
	static bool done;
	if (done)
		return;
	done = true;
	char err[256];
	require(config_load(&cfg, 1, (char *[]){ "fuzz", NULL }, stdout, err, sizeof(err)) ==
		CONFIG_OK);
	cfg.max_message_bytes = 1024;      /* small bounds, so inputs reach them */
	cfg.ws_max_message_bytes = 4096;
	cfg.ws_hello_max_message_bytes = 4096; /* the stub ops never raise it */
	cfg.conn_max_output_bytes = 64 * 1024;
	thread_set_role(THREAD_WORKER, 0);
}

struct run {
	struct event_base *base;
	struct conntab tab;
	int peer, fd;
	struct trace t;
};

/* Turns the loop, reading back, until nothing moves for a few turns. */
static void settle(struct run *r)
{
	unsigned char buf[8192];
	int quiet = 0;
	for (int turn = 0; turn < 200 && quiet < 3; turn++) {
		event_base_loop(r->base, EVLOOP_NONBLOCK);
		conntab_uncork_all(&r->tab);
		conntab_free_closed(&r->tab);
		bool moved = false;
		ssize_t n;
		while ((n = read(r->peer, buf, sizeof(buf))) > 0) {
			size_t keep = OUT_MAX - r->t.out_bytes < (size_t)n ? OUT_MAX - r->t.out_bytes
									    : (size_t)n;
			memcpy(r->t.out + r->t.out_bytes, buf, keep);
			r->t.out_bytes += keep;
			moved = true;
		}
		int pending = 0;
		if (conntab_count(&r->tab) > 0 && ioctl(r->fd, FIONREAD, &pending) == 0 && pending > 0)
			moved = true;
		quiet = moved ? 0 : quiet + 1;
	}
}

static void feed(struct run *r, const uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(r->peer, p, n, MSG_NOSIGNAL);
		if (w > 0) {
			p += w;
			n -= (size_t)w;
		} else if (w < 0 && errno != EAGAIN) {
			return; /* the connection is gone: the rest is moot */
		}
		settle(r);
	}
	settle(r);
}

static struct trace run_once(const uint8_t *data, size_t size, size_t split)
{
	struct run r = { 0 };
	r.t.events = 1469598103934665603ULL;
	r.t.out = malloc(OUT_MAX);
	require(r.t.out != NULL);
	freed_into = &r.t;
	r.base = event_base_new();
	require(r.base != NULL);
	conntab_init(&r.tab, 0, r.base, &cfg, &r.t);
	int sv[2];
	require(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
	r.fd = sv[0];
	r.peer = sv[1];
	conn_open(&r.tab, sv[0], "fuzz:1", &ops);
	feed(&r, data, split);
	feed(&r, data + split, size - split);
	conntab_abort_all(&r.tab);
	conntab_free_closed(&r.tab);
	require(conntab_count(&r.tab) == 0);
	require(r.t.released == 1 && r.t.freed == 1);
	conntab_destroy(&r.tab);
	close(r.peer);
	event_base_free(r.base);
	return r.t;
}

/* The output with the WebSocket control frames left out.  wslay queues
 * those itself (pongs, its own close) and decides alone which still go out
 * when a protocol error in the same read makes it close: a pong answered
 * before the bad frame arrived is sent, one queued in the same read is not.
 * HTTP responses and data frames must not depend on the split. */
static size_t strip_control(unsigned char *b, size_t n)
{
	static const char up[] = "HTTP/1.1 101 ";
	unsigned char *head = memmem(b, n, up, sizeof(up) - 1);
	if (!head)
		return n;
	unsigned char *end = memmem(head, n - (size_t)(head - b), "\r\n\r\n", 4);
	if (!end)
		return n;
	size_t i = (size_t)(end + 4 - b), o = i;
	while (i + 2 <= n) {
		size_t len = b[i + 1] & 0x7f, hdr = 2;
		if (len == 126 && i + 4 <= n) {
			len = (size_t)b[i + 2] << 8 | b[i + 3];
			hdr = 4;
		} else if (len == 127 && i + 10 <= n) {
			len = 0;
			for (int k = 0; k < 8; k++)
				len = len << 8 | b[i + 2 + k];
			hdr = 10;
		} else if (len >= 126) {
			break;
		}
		if (len > n - i - hdr)
			break; /* cut short by OUT_MAX or the abort: keep as is */
		bool control = (b[i] & 0x0f) >= 0x8;
		if (!control) {
			memmove(b + o, b + i, hdr + len);
			o += hdr + len;
		}
		i += hdr + len;
	}
	memmove(b + o, b + i, n - i);
	return o + (n - i);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	setup_once();
	if (size > 64 * 1024)
		return 0;
	struct trace whole = run_once(data, size, size);
	struct trace parts = run_once(data, size, size / 3);
	require(whole.events == parts.events);
	size_t nw = strip_control(whole.out, whole.out_bytes);
	size_t np = strip_control(parts.out, parts.out_bytes);
	require(nw == np && memcmp(whole.out, parts.out, nw) == 0);
	free(whole.out);
	free(parts.out);
	require(whole.opened == parts.opened && whole.opened <= 1);
	return 0;
}
