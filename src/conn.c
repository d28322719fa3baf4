/* conn — one client connection: HTTP/1.1, then maybe a WebSocket; see include/meshd/conn.h. */
#include "config.h"

#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "meshd/alloc.h"
#include "meshd/clock.h"
#include "meshd/config.h"
#include "meshd/conn.h"
#include "meshd/conntab.h"
#include "meshd/http.h"
#include "meshd/log.h"
#include "meshd/metrics.h"
#include "meshd/thread.h"
#include "meshd/ws.h"

/* How long a closing connection may take to flush its last bytes or to
 * answer our close frame before it is dropped. */
#define CLOSE_LINGER_MS 2000
/* A WebSocket with no data message for this long gives its wslay context
 * back between frames (ws_park): idle peers then cost a few hundred bytes
 * of user memory instead of ~9 KiB. */
#define PARK_IDLE_MS 2000
/* Input beyond this is left in the kernel until we have consumed what we hold:
 * it bounds per-connection input buffering (wslay keeps its own, capped by
 * WS_MAX_MESSAGE_BYTES, for a message being reassembled).  An HTTP request
 * is read whole before it is answered, so while a connection speaks HTTP
 * the bound is at least a head and a body of MAX_MESSAGE_BYTES. */
#define READ_HIGH_WATERMARK (64 * 1024)

static size_t http_read_bound(const struct config *cfg)
{
	size_t need = HTTP_MAX_HEAD + cfg->max_message_bytes;
	return need > READ_HIGH_WATERMARK ? need : READ_HIGH_WATERMARK;
}

static const char cors_headers[] =
	"Access-Control-Allow-Origin: *\r\n"
	"Access-Control-Allow-Methods: POST, GET, OPTIONS\r\n"
	"Access-Control-Allow-Headers: Content-Type, X-Mesh-Id, X-Member-Id, X-File-Name, "
	"X-Tags, X-Persistent, X-Target-Spec\r\n";

static void read_cb(struct bufferevent *bev, void *arg);
static void write_cb(struct bufferevent *bev, void *arg);
static void uncork_later(struct conn *c);
static void ws_input(struct conn *c);
static void event_cb(struct bufferevent *bev, short what, void *arg);
static void timer_cb(evutil_socket_t fd, short what, void *arg);
static void ws_on_message(void *ud, const uint8_t *data, size_t len, bool binary);
static void ws_on_pong(void *ud);

static const struct ws_handlers ws_handlers = {
	.on_message = ws_on_message,
	.on_pong = ws_on_pong,
};

static const struct config *cfg_of(const struct conn *c)
{
	return c->tab->cfg;
}

void *conn_owner(const struct conn *c)
{
	return c->tab ? c->tab->owner : NULL;
}

static void arm_timer(struct conn *c, int64_t at_ms)
{
	int64_t delta = at_ms - clock_mono_ms();
	if (delta < 0)
		delta = 0;
	struct timeval tv = { .tv_sec = delta / 1000, .tv_usec = (delta % 1000) * 1000 };
	evtimer_add(c->timer, &tv);
}

/* The next moment this connection's timer must look at it. */
static void rearm(struct conn *c)
{
	switch (c->state) {
	case CONN_HTTP:
	case CONN_CLOSING:
		arm_timer(c, c->deadline_ms);
		break;
	case CONN_WS: {
		int64_t at = c->next_ping_ms;
		if (c->ws_deadline_ms && c->ws_deadline_ms < at)
			at = c->ws_deadline_ms;
		if (!ws_parked(c->ws) && c->park_at_ms < at)
			at = c->park_at_ms;
		arm_timer(c, at);
		break;
	}
	case CONN_CLOSED:
		break;
	}
}

void conn_open(struct conntab *t, int fd, const char *addr, const struct conn_ops *ops)
{
	MESHD_ASSERT_ON_WORKER(t);
	struct conn *c = xcalloc(1, sizeof(*c));
	c->tab = t;
	c->ops = ops;
	c->state = CONN_HTTP;
	snprintf(c->addr, sizeof(c->addr), "%s", addr);
	c->fd = fd;
	c->migrate_to = -1;
	/* The conn owns the fd (not the bufferevent): it outlives the
	 * bufferevent when the connection moves to another worker. */
	c->bev = bufferevent_socket_new(t->base, fd, 0);
	c->timer = evtimer_new(t->base, timer_cb, c);
	if (!c->bev || !c->timer) {
		log_error("conn_open_failed", "addr=%s", addr);
		if (c->bev)
			bufferevent_free(c->bev);
		close(fd);
		if (c->timer)
			event_free(c->timer);
		xfree(c);
		return;
	}
	c->slot = conntab_add(t, c, &c->gen);
	bufferevent_setcb(c->bev, read_cb, write_cb, event_cb, c);
	bufferevent_setwatermark(c->bev, EV_READ, 0, http_read_bound(t->cfg));
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	/* Keep-alive idle limit: a connection must send a request within the
	 * hello deadline, which also stops slow-loris heads. */
	c->deadline_ms = clock_mono_ms() + (int64_t)cfg_of(c)->hello_deadline_seconds * 1000;
	rearm(c);
	log_debug("conn_open", "worker=%d conn=%u addr=%s", t->id, c->slot, c->addr);
}

static bool hold_body(struct conn *c, size_t bytes);

/* Releases the connection: no more callbacks; memory is freed after the
 * loop iteration, so callers up the stack may still look at c->state. */
static void release(struct conn *c)
{
	if (c->state == CONN_CLOSED)
		return;
	(void)hold_body(c, 0);
	bool was_ws = c->ws != NULL;
	c->state = CONN_CLOSED;
	if (c->ops->released)
		c->ops->released(c);
	bufferevent_disable(c->bev, EV_READ | EV_WRITE);
	evtimer_del(c->timer);
	conntab_remove(c->tab, c->slot);
	conntab_defer_free(c->tab, c);
	log_debug("conn_close", "worker=%d conn=%u ws=%d", c->tab->id, c->slot, was_ws);
}

void conn_free(struct conn *c)
{
	if (c->ops->freed)
		c->ops->freed(c);
	ws_free(c->ws);
	if (c->bev)
		bufferevent_free(c->bev);
	if (c->timer)
		event_free(c->timer);
	if (c->carry_in)
		evbuffer_free(c->carry_in);
	if (c->carry_out)
		evbuffer_free(c->carry_out);
	if (c->fd >= 0)
		close(c->fd);
	xfree(c);
}

void conn_abort(struct conn *c)
{
	release(c);
}

/* Closes once the output buffer has drained (or the linger time passed). */
static void close_when_flushed(struct conn *c)
{
	if (c->state == CONN_CLOSED)
		return;
	c->state = CONN_CLOSING;
	bufferevent_disable(c->bev, EV_READ);
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0) {
		release(c);
		return;
	}
	c->deadline_ms = clock_mono_ms() + CLOSE_LINGER_MS;
	rearm(c);
}

/* A peer that stops reading must not grow our memory (DESIGN.md §4). */
static bool output_within_bound(struct conn *c)
{
	size_t len = evbuffer_get_length(bufferevent_get_output(c->bev));
	if (len <= cfg_of(c)->conn_max_output_bytes)
		return true;
	log_warn("conn_output_overflow", "worker=%d conn=%u bytes=%zu", c->tab->id, c->slot, len);
	metrics_inc(METRIC_OUTPUT_DROPS);
	release(c);
	return false;
}

static void http_process(struct conn *c);

/* The next request may be read: its idle limit starts now. */
static void http_next(struct conn *c)
{
	c->deadline_ms = clock_mono_ms() + (int64_t)cfg_of(c)->hello_deadline_seconds * 1000;
	rearm(c);
}

void conn_http_defer(struct conn *c)
{
	c->http_deferred = true;
}

void conn_http_respond(struct conn *c, int status, const char *content_type,
		       const char *body, size_t len, bool close)
{
	if (c->state != CONN_HTTP)
		return; /* closed meanwhile, or shutting down */
	bool deferred = c->http_deferred;
	c->http_deferred = false;
	close = close || c->http_close;
	struct evbuffer *out = bufferevent_get_output(c->bev);
	evbuffer_add_printf(out, "HTTP/1.1 %d %s\r\n", status, http_status_text(status));
	evbuffer_add(out, cors_headers, sizeof(cors_headers) - 1);
	if (content_type)
		evbuffer_add_printf(out, "Content-Type: %s\r\n", content_type);
	if (status != 204)
		evbuffer_add_printf(out, "Content-Length: %zu\r\n", len);
	evbuffer_add_printf(out, "Connection: %s\r\n\r\n", close ? "close" : "keep-alive");
	if (body && len && status != 204)
		evbuffer_add(out, body, len);
	if (close) {
		close_when_flushed(c);
	} else if (output_within_bound(c) && deferred) {
		/* The answer came later (from another thread's reply): requests
		 * pipelined behind it waited, unread, until now. */
		http_next(c);
		http_process(c);
	}
}

/* ---- HTTP ------------------------------------------------------------ */

static bool target_is(const struct http_request *req, const char *path)
{
	size_t n = strlen(path);
	return req->target_len == n && memcmp(req->target, path, n) == 0;
}

/* A valid upgrade on exactly /ws (PROTOCOL.md §2.3). */
static void ws_upgrade(struct conn *c, const struct http_request *req)
{
	if (req->method != HTTP_GET) {
		conn_http_respond(c, 405, "application/json", "{\"error\":\"method not allowed\"}", 30, true);
		return;
	}
	const struct http_header *key = http_find_header(req, "Sec-WebSocket-Key");
	const struct http_header *ver = http_find_header(req, "Sec-WebSocket-Version");
	if (!req->upgrade_websocket || !key || !ws_client_key_valid(key->value, key->value_len) ||
	    !ver || ver->value_len != 2 || memcmp(ver->value, "13", 2) != 0) {
		conn_http_respond(c, 400, "application/json", "{\"error\":\"bad websocket upgrade\"}",
				  33, true);
		return;
	}
	char accept[WS_ACCEPT_KEY_LEN + 1];
	ws_accept_key(key->value, key->value_len, accept);

	struct evbuffer *out = bufferevent_get_output(c->bev);
	evbuffer_add_printf(out,
			    "HTTP/1.1 101 Switching Protocols\r\n"
			    "Upgrade: websocket\r\n"
			    "Connection: Upgrade\r\n"
			    "Sec-WebSocket-Accept: %s\r\n",
			    accept);
	/* No subprotocol is required; like the reference, echo the first one offered.
	 * Extensions (permessage-deflate) are declined by not answering them. */
	const struct http_header *proto = http_find_header(req, "Sec-WebSocket-Protocol");
	if (proto && proto->value_len) {
		size_t n = 0;
		while (n < proto->value_len && proto->value[n] != ',' && proto->value[n] != ' ')
			n++;
		evbuffer_add(out, "Sec-WebSocket-Protocol: ", 24);
		evbuffer_add(out, proto->value, n);
		evbuffer_add(out, "\r\n", 2);
	}
	evbuffer_add(out, "\r\n", 2);

	/* Until the layer above says the handshake is done (conn_ws_set_max_message),
	 * a message may be only as large as a hello needs: an unauthenticated
	 * socket does not pin 16 MiB. */
	c->ws = ws_new(bufferevent_get_input(c->bev), out, cfg_of(c)->ws_hello_max_message_bytes,
		       &ws_handlers, c);
	if (!c->ws) {
		release(c);
		return;
	}
	ws_set_budget(c->ws, &c->tab->ws_budget);
	ws_rebind(c->ws, bufferevent_get_input(c->bev), out, c->fd);
	c->state = CONN_WS;
	int64_t now = clock_mono_ms();
	c->park_at_ms = now + PARK_IDLE_MS;
	/* Ping and pong timers start at the upgrade: a pre-hello socket is
	 * watched too (the reference pings only registered presences). */
	c->last_pong_ms = now;
	c->ws_deadline_ms = 0;
	c->next_ping_ms = now + (int64_t)cfg_of(c)->ping_interval_seconds * 1000;
	metrics_inc(METRIC_CONNECTIONS_TOTAL);
	log_debug("ws_open", "worker=%d conn=%u addr=%s", c->tab->id, c->slot, c->addr);
	if (c->ops->ws_open)
		c->ops->ws_open(c);
	rearm(c);
}

static bool is_ws_upgrade(const struct http_request *req)
{
	return target_is(req, "/ws") && (req->upgrade || req->method == HTTP_GET);
}

/* How much body to read before the request is answered: its Content-Length,
 * when within MAX_MESSAGE_BYTES (a larger one is not read: its answer
 * closes).  An upgrade's following bytes are frames, not a body. */
static size_t body_to_read(const struct conn *c, const struct http_request *req)
{
	if (is_ws_upgrade(req) || req->upgrade_websocket || req->content_length <= 0 ||
	    req->content_length > (long long)cfg_of(c)->max_message_bytes)
		return 0;
	return (size_t)req->content_length;
}

/* Handles one parsed request and its body; returns false when the
 * connection stops reading requests (closed, closing, upgraded, or waiting
 * for a deferred answer). */
static bool http_request(struct conn *c, const struct http_request *req, const char *body,
			 size_t body_len)
{
	if (is_ws_upgrade(req)) {
		ws_upgrade(c, req);
		return false;
	}
	if (req->upgrade_websocket) {
		/* Upgrades anywhere else: socket destroyed, no response (§2.3);
		 * the answers to requests pipelined before it still go out first,
		 * whether or not they were sent already (fuzz_conn). */
		close_when_flushed(c);
		return false;
	}
	/* A chunked body is not read: answer, then close rather than guess
	 * where the next request starts.  Nor is one past MAX_MESSAGE_BYTES
	 * (the answer is the layer above's: 413, in the shape of its route). */
	bool too_large = req->content_length > (long long)cfg_of(c)->max_message_bytes;
	bool close = !req->keep_alive || req->chunked || too_large;
	c->http_close = close;
	if (c->ops->http_request)
		c->ops->http_request(c, req, body, body_len);
	else
		conn_http_respond(c, 404, NULL, "not found", 9, false);
	if (c->state != CONN_HTTP || c->http_deferred)
		return false;
	if (close) {
		close_when_flushed(c);
		return false;
	}
	http_next(c);
	return true;
}

static void http_fail(struct conn *c, int status)
{
	char body[64];
	int n = snprintf(body, sizeof(body), "{\"error\":\"%s\"}", http_status_text(status));
	conn_http_respond(c, status, "application/json", body, (size_t)n, true);
}

/* The input of an HTTP body still arriving counts against the worker's
 * budget for unfinished input, as a WebSocket message's does (README
 * "Limits"): bodies are at most MAX_MESSAGE_BYTES each, but without this
 * their sum over every socket had no bound.  False when this request
 * crosses the budget. */
static bool hold_body(struct conn *c, size_t bytes)
{
	if (c->body_held == 0 && bytes == 0)
		return true; /* the common case, and a connection between tables */
	struct ws_budget *b = &c->tab->ws_budget;
	b->used = b->used - c->body_held + bytes;
	c->body_held = bytes;
	return !(b->limit && bytes > 0 && b->used > b->limit);
}

static void http_process(struct conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	while (c->state == CONN_HTTP && !c->http_deferred) {
		size_t len = evbuffer_get_length(in);
		if (len == 0)
			return;
		size_t look = len < HTTP_MAX_HEAD ? len : HTTP_MAX_HEAD;
		const char *buf = (const char *)evbuffer_pullup(in, (ev_ssize_t)look);
		struct http_request req;
		switch (http_parse_head(buf, look, &req)) {
		case HTTP_PARSE_INCOMPLETE:
			return;
		case HTTP_PARSE_TOO_LARGE:
			http_fail(c, 431);
			return;
		case HTTP_PARSE_BAD_REQUEST:
			http_fail(c, 400);
			return;
		case HTTP_PARSE_BAD_VERSION:
			http_fail(c, 505);
			return;
		case HTTP_PARSE_OK:
			break;
		}
		size_t head_len = req.head_len, body_len = body_to_read(c, &req);
		if (body_len) {
			if (len < head_len + body_len) {
				/* The rest of the body (http_read_bound lets it in). */
				if (!hold_body(c, len)) {
					(void)hold_body(c, 0);
					metrics_inc_label(METRIC_LIMIT_REFUSALS, LIMIT_HTTP_BODY_BUDGET);
					http_fail(c, 503);
				}
				return;
			}
			(void)hold_body(c, 0);
			/* The longer pullup may move the bytes: parse them again there. */
			buf = (const char *)evbuffer_pullup(in, (ev_ssize_t)(head_len + body_len));
			if (http_parse_head(buf, look, &req) != HTTP_PARSE_OK) {
				http_fail(c, 400); /* cannot happen: the same bytes parsed before */
				return;
			}
		}
		/* req and the body point into `buf`: handle them before draining. */
		bool more = http_request(c, &req, body_len ? buf + head_len : NULL, body_len);
		if (c->state == CONN_CLOSED)
			return;
		evbuffer_drain(in, head_len + body_len);
		if (!more) {
			/* Bytes after an upgrade head are already WebSocket frames. */
			if (c->state == CONN_WS)
				ws_input(c);
			return;
		}
	}
}

/* ---- WebSocket ------------------------------------------------------- */

/* Parks the session once it has been PARK_IDLE_MS without a data message;
 * if wslay is mid-frame then, it tries again a while later. */
static void maybe_park(struct conn *c)
{
	int64_t now = clock_mono_ms();
	if (c->state != CONN_WS || ws_parked(c->ws) || now < c->park_at_ms)
		return;
	if (!ws_park(c->ws))
		c->park_at_ms = now + PARK_IDLE_MS;
}

static void ws_on_message(void *ud, const uint8_t *data, size_t len, bool binary)
{
	struct conn *c = ud;
	c->park_at_ms = clock_mono_ms() + PARK_IDLE_MS;
	if (c->state != CONN_WS)
		return; /* closing: the rest of what the peer sent is moot */
	if (c->ops->ws_message)
		c->ops->ws_message(c, data, len, binary);
}

static void ws_on_pong(void *ud)
{
	struct conn *c = ud;
	c->last_pong_ms = clock_mono_ms();
	if (c->ops->ws_pong)
		c->ops->ws_pong(c);
}

/* Frames a flush corked are sent after the loop iteration. */
static void uncork_later(struct conn *c)
{
	if (c->ws && ws_corked(c->ws))
		conntab_defer_uncork(c->tab, c);
}

void conn_ws_set_max_message(struct conn *c, size_t bytes)
{
	ws_set_max_message(c->ws, bytes);
}

void conn_ws_set_deadline(struct conn *c, int64_t at_ms)
{
	c->ws_deadline_ms = at_ms;
	if (c->state == CONN_WS && c->timer)
		rearm(c);
}

size_t conn_output_bytes(const struct conn *c)
{
	size_t n = evbuffer_get_length(bufferevent_get_output(c->bev));
	return c->ws ? n + ws_corked_bytes(c->ws) : n;
}

/* ops->ws_writable, once the output is down to the mark.  The write
 * watermark makes the bufferevent call write_cb at that mark, not only
 * when the output is empty. */
static void check_writable(struct conn *c)
{
	if (!c->want_writable || c->state != CONN_WS || conn_output_bytes(c) > c->writable_low)
		return;
	c->want_writable = false;
	bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
	if (c->ops->ws_writable)
		c->ops->ws_writable(c);
}

void conn_ws_notify_writable(struct conn *c, size_t low)
{
	if (c->state != CONN_WS)
		return;
	c->want_writable = true;
	c->writable_low = low;
	bufferevent_setwatermark(c->bev, EV_WRITE, low, 0);
	conntab_defer_uncork(c->tab, c); /* checked there, after this iteration's sends */
}

void conn_uncork(struct conn *c)
{
	c->uncork_listed = false;
	if (c->state == CONN_CLOSED || !c->ws)
		return;
	ws_uncork(c->ws);
	if (output_within_bound(c))
		check_writable(c);
}

void conn_ws_send(struct conn *c, const char *json, size_t len)
{
	if (c->state != CONN_WS)
		return;
	if (!ws_send_text(c->ws, json, len) || !ws_flush(c->ws)) {
		release(c);
		return;
	}
	uncork_later(c);
	output_within_bound(c);
}

void conn_ws_close(struct conn *c, uint16_t code, const char *reason)
{
	if (c->state != CONN_WS)
		return;
	c->state = CONN_CLOSING;
	if (!ws_send_close(c->ws, code, reason) || !ws_flush(c->ws)) {
		release(c);
		return;
	}
	ws_uncork(c->ws); /* now: closing waits on the output buffer draining */
	c->deadline_ms = clock_mono_ms() + CLOSE_LINGER_MS;
	rearm(c);
	log_debug("ws_close_sent", "worker=%d conn=%u code=%u reason=%s", c->tab->id, c->slot,
		  (unsigned)code, reason);
}

/* The WebSocket is over and its output is out.  After a close handshake
 * the socket closes now.  After a close the peer has not answered (the
 * broker stopped reading: a message over the cap or the budget) it may
 * still be sending, and closing on unread bytes would reset the
 * connection, which can destroy the close frame on its way to the peer
 * (RFC 6455 §7.1.1; nginx's lingering close).  So the write side is shut,
 * the session's memory freed, and what arrives is discarded until the
 * peer's EOF or the linger deadline. */
static void ws_over(struct conn *c)
{
	if (ws_close_received(c->ws) || c->fd < 0) {
		release(c);
		return;
	}
	if (!c->write_shut) {
		c->write_shut = true;
		(void)shutdown(c->fd, SHUT_WR);
		ws_discard(c->ws); /* what it held goes back to the budget now */
	}
}

/* After wslay consumed input: the close handshake may be over, or wslay may
 * have queued a close of its own (1009 for an oversize message). */
static void ws_after_pump(struct conn *c)
{
	if (c->state == CONN_WS && ws_close_sent(c->ws)) {
		c->state = CONN_CLOSING;
		c->deadline_ms = clock_mono_ms() + CLOSE_LINGER_MS;
		rearm(c);
	}
	if (!ws_finished(c->ws)) {
		uncork_later(c);
		return;
	}
	ws_uncork(c->ws);
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
		ws_over(c);
}

/* Feeds what the WebSocket read to wslay.  When wslay gives up (a callback
 * failed, or it could not go on after a protocol error) what was queued
 * before still goes out — the 101, frames, wslay's own close frame — and
 * then the socket closes: what the peer sees does not depend on how its
 * bytes were split across reads (tests/fuzz/fuzz_conn.c). */
static void ws_input(struct conn *c)
{
	if (!ws_pump(c->ws)) {
		if (!ws_flush(c->ws))
			log_debug("ws_flush_failed", "worker=%d conn=%u", c->tab->id, c->slot);
		ws_uncork(c->ws);
		close_when_flushed(c);
		return;
	}
	if (c->state != CONN_CLOSED && output_within_bound(c))
		ws_after_pump(c);
	if (c->state == CONN_WS)
		maybe_park(c);
}

static void ws_tick(struct conn *c)
{
	const struct config *cfg = cfg_of(c);
	int64_t now = clock_mono_ms();
	if (c->ws_deadline_ms && now >= c->ws_deadline_ms) {
		c->ws_deadline_ms = 0;
		if (c->ops->ws_deadline)
			c->ops->ws_deadline(c);
		if (c->state != CONN_WS)
			return;
	}
	if (now >= c->next_ping_ms) {
		if (now - c->last_pong_ms > (int64_t)cfg->pong_timeout_seconds * 1000) {
			/* §7.6: terminate, no close frame. */
			log_info("ws_pong_timeout", "worker=%d conn=%u", c->tab->id, c->slot);
			release(c);
			return;
		}
		if (!ws_send_ping(c->ws) || !ws_flush(c->ws)) {
			release(c);
			return;
		}
		uncork_later(c);
		c->next_ping_ms = now + (int64_t)cfg->ping_interval_seconds * 1000;
		if (!output_within_bound(c))
			return;
	}
	maybe_park(c);
	rearm(c);
}

void conn_shutdown(struct conn *c)
{
	switch (c->state) {
	case CONN_WS:
		conn_ws_close(c, WS_CLOSE_GOING_AWAY, "shutting down");
		break;
	case CONN_HTTP:
		release(c);
		break;
	case CONN_CLOSING:
	case CONN_CLOSED:
		break;
	}
}

/* ---- libevent callbacks ---------------------------------------------- */

static void read_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	switch (c->state) {
	case CONN_HTTP:
		http_process(c);
		break;
	case CONN_WS:
	case CONN_CLOSING:
		if (!c->ws) {
			evbuffer_drain(bufferevent_get_input(bev),
				       evbuffer_get_length(bufferevent_get_input(bev)));
			break;
		}
		ws_input(c);
		break;
	case CONN_CLOSED:
		break;
	}
}

/* The output buffer drained. */
static void write_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	if (c->state == CONN_WS)
		check_writable(c);
	if (c->state != CONN_CLOSING)
		return;
	if (evbuffer_get_length(bufferevent_get_output(bev)) > 0)
		return; /* a write watermark was set: not drained yet */
	if (!c->ws)
		release(c);
	else if (ws_finished(c->ws))
		ws_over(c);
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct conn *c = arg;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
		release(c);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	switch (c->state) {
	case CONN_HTTP:
		if (clock_mono_ms() >= c->deadline_ms) {
			release(c); /* idle keep-alive or a head that never completed */
			return;
		}
		rearm(c);
		break;
	case CONN_WS:
		ws_tick(c);
		break;
	case CONN_CLOSING:
		if (clock_mono_ms() >= c->deadline_ms) {
			release(c);
			return;
		}
		rearm(c);
		break;
	case CONN_CLOSED:
		break;
	}
}

/* ---- moving to the owner worker ------------------------------------------ */

void conn_migrate(struct conn *c, int worker_id)
{
	c->migrate_to = worker_id;
	conntab_defer_migrate(c->tab, c);
}

bool conn_detach(struct conn *c)
{
	struct conntab *t = c->tab;
	MESHD_ASSERT_ON_WORKER(t);
	c->carry_in = evbuffer_new();
	c->carry_out = evbuffer_new();
	if (!c->carry_in || !c->carry_out) {
		log_error("conn_detach_failed", "worker=%d conn=%u", t->id, c->slot);
		release(c); /* stays in the table's closing list, freed with it */
		return false;
	}
	evbuffer_add_buffer(c->carry_in, bufferevent_get_input(c->bev));
	evbuffer_add_buffer(c->carry_out, bufferevent_get_output(c->bev));
	bufferevent_free(c->bev);
	c->bev = NULL;
	event_free(c->timer);
	c->timer = NULL;
	ws_rebind(c->ws, c->carry_in, c->carry_out, -1);
	ws_set_budget(c->ws, NULL);
	conntab_remove(t, c->slot);
	c->tab = NULL;
	return true;
}

bool conn_attach(struct conntab *t, struct conn *c)
{
	MESHD_ASSERT_ON_WORKER(t);
	c->migrate_to = -1;
	c->bev = bufferevent_socket_new(t->base, c->fd, 0);
	c->timer = evtimer_new(t->base, timer_cb, c);
	if (!c->bev || !c->timer || !c->carry_in || !c->carry_out) {
		/* conn_free() takes what was made; the fd closes with it. */
		log_error("conn_attach_failed", "worker=%d addr=%s", t->id, c->addr);
		return false;
	}
	c->tab = t;
	c->slot = conntab_add(t, c, &c->gen);
	evbuffer_add_buffer(bufferevent_get_input(c->bev), c->carry_in);
	evbuffer_add_buffer(bufferevent_get_output(c->bev), c->carry_out);
	evbuffer_free(c->carry_in);
	evbuffer_free(c->carry_out);
	c->carry_in = c->carry_out = NULL;
	ws_rebind(c->ws, bufferevent_get_input(c->bev), bufferevent_get_output(c->bev), c->fd);
	ws_set_budget(c->ws, &t->ws_budget);
	bufferevent_setcb(c->bev, read_cb, write_cb, event_cb, c);
	bufferevent_setwatermark(c->bev, EV_READ, 0, READ_HIGH_WATERMARK);
	if (c->want_writable)
		bufferevent_setwatermark(c->bev, EV_WRITE, c->writable_low, 0);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	rearm(c);
	return true;
}

/* After conn_attach and the handshake step: frames that arrived behind the
 * hello are processed here, on the owner. */
void conn_resume_input(struct conn *c)
{
	if (c->state == CONN_WS && evbuffer_get_length(bufferevent_get_input(c->bev)) > 0)
		read_cb(c->bev, c);
}
