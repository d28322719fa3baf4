/* ws — wslay glue; see include/meshd/ws.h. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <openssl/evp.h>
#include <sodium.h>
#include <wslay/wslay.h>

#include "meshd/alloc.h"
#include "meshd/metrics.h"
#include "meshd/ws.h"

static const char ws_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

struct ws {
	wslay_event_context_ptr ctx;   /* NULL while parked (ws_park) */
	struct evbuffer *in;
	struct evbuffer *out;
	int fd;                        /* the socket out drains to, or -1 */
	struct evbuffer *cork;         /* frames waiting for ws_uncork, or NULL */
	const struct ws_handlers *h;
	void *ud;
	uint64_t max_message;
	/* Data bytes of the message being received, which wslay holds until
	 * its last frame; counted against the worker's budget. */
	struct ws_budget *budget;
	uint64_t partial;
	bool data_frame;               /* the current frame is text/binary/continuation */
	bool budget_refused;           /* the 1009 sent was ours, for the budget */
	bool over;                     /* ws_discard: no context, nothing in or out */
	/* Where wslay is in the byte stream, from its own frame callbacks: it
	 * may be parked only between frames, with nothing of a next frame
	 * buffered inside it and no fragmented message open. */
	uint64_t fed;                  /* bytes handed to wslay */
	uint64_t framed;               /* bytes of the frames it completed */
	uint64_t frame_len;            /* header + payload of the current frame */
	bool fragmented;               /* a data message continues in a later frame */
};

void ws_accept_key(const char *key, size_t key_len, char out[WS_ACCEPT_KEY_LEN + 1])
{
	unsigned char digest[EVP_MAX_MD_SIZE];
	unsigned int digest_len = 0;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	if (!md || !EVP_DigestInit_ex(md, EVP_sha1(), NULL) ||
	    !EVP_DigestUpdate(md, key, key_len) ||
	    !EVP_DigestUpdate(md, ws_guid, sizeof(ws_guid) - 1) ||
	    !EVP_DigestFinal_ex(md, digest, &digest_len))
		abort(); /* only on allocation failure inside libcrypto */
	EVP_MD_CTX_free(md);
	sodium_bin2base64(out, WS_ACCEPT_KEY_LEN + 1, digest, digest_len,
			  sodium_base64_VARIANT_ORIGINAL);
}

bool ws_client_key_valid(const char *key, size_t key_len)
{
	unsigned char raw[18];
	size_t raw_len = 0;
	if (key_len != 24)
		return false;
	/* libsodium 1.0.18 reads bytes 0x80-0xff as '/': the alphabet first. */
	for (size_t i = 0; i < key_len; i++) {
		unsigned char c = (unsigned char)key[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '+' || c == '/' || c == '='))
			return false;
	}
	if (sodium_base642bin(raw, sizeof(raw), key, key_len, NULL, &raw_len, NULL,
			      sodium_base64_VARIANT_ORIGINAL) != 0)
		return false;
	return raw_len == 16;
}

static ssize_t recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags,
		       void *user_data)
{
	struct ws *ws = user_data;
	int n = evbuffer_remove(ws->in, buf, len);
	if (n <= 0) {
		wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
		return -1;
	}
	ws->fed += (uint64_t)n;
	return n;
}

/* A client frame's header: 2 bytes, the extended length, the 4-byte mask
 * (wslay's server side refuses unmasked frames). */
static uint64_t client_header_len(uint64_t payload)
{
	return 2 + (payload > 65535 ? 8 : payload > 125 ? 2 : 0) + 4;
}

static void frame_start_cb(wslay_event_context_ptr ctx,
			   const struct wslay_event_on_frame_recv_start_arg *arg, void *user_data)
{
	struct ws *ws = user_data;
	ws->frame_len = client_header_len(arg->payload_length) + arg->payload_length;
	ws->data_frame = arg->opcode < 0x8;
	if (!ws->data_frame)
		return; /* control frames interleave */
	ws->fragmented = !arg->fin;
}

static void partial_release(struct ws *ws)
{
	if (ws->budget)
		ws->budget->used -= ws->partial;
	ws->partial = 0;
}

static void frame_chunk_cb(wslay_event_context_ptr ctx,
			   const struct wslay_event_on_frame_recv_chunk_arg *arg, void *user_data)
{
	struct ws *ws = user_data;
	if (!ws->data_frame)
		return; /* at most 125 bytes, never held across frames */
	ws->partial += arg->data_length;
	if (ws->budget)
		ws->budget->used += arg->data_length;
}

static void frame_end_cb(wslay_event_context_ptr ctx, void *user_data)
{
	struct ws *ws = user_data;
	ws->framed += ws->frame_len;
}

/* The output evbuffer (or the cork) takes everything; the connection
 * bounds its size. */
static ssize_t send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
		       void *user_data)
{
	struct ws *ws = user_data;
	if (evbuffer_add(ws->cork ? ws->cork : ws->out, data, len) != 0) {
		wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
		return -1;
	}
	return (ssize_t)len;
}

static void msg_cb(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg,
		   void *user_data)
{
	struct ws *ws = user_data;
	switch (arg->opcode) {
	case WSLAY_TEXT_FRAME:
	case WSLAY_BINARY_FRAME:
		partial_release(ws);
		ws->h->on_message(ws->ud, arg->msg, arg->msg_length,
				  arg->opcode == WSLAY_BINARY_FRAME);
		break;
	case WSLAY_PONG:
		ws->h->on_pong(ws->ud);
		break;
	default:
		/* Pings are answered and closes echoed by wslay itself. */
		break;
	}
}

static const struct wslay_event_callbacks callbacks = {
	.recv_callback = recv_cb,
	.send_callback = send_cb,
	.on_frame_recv_start_callback = frame_start_cb,
	.on_frame_recv_chunk_callback = frame_chunk_cb,
	.on_frame_recv_end_callback = frame_end_cb,
	.on_msg_recv_callback = msg_cb,
};

/* (Re)creates the wslay context of a new or parked session. */
static bool ensure(struct ws *ws)
{
	if (ws->ctx)
		return true;
	if (ws->over)
		return false;
	if (wslay_event_context_server_init(&ws->ctx, &callbacks, ws) != 0) {
		ws->ctx = NULL;
		return false;
	}
	wslay_event_config_set_max_recv_msg_length(ws->ctx, ws->max_message);
	ws->fed = ws->framed = ws->frame_len = 0;
	ws->fragmented = false;
	return true;
}

struct ws *ws_new(struct evbuffer *in, struct evbuffer *out, uint64_t max_message,
		  const struct ws_handlers *h, void *ud)
{
	struct ws *ws = xcalloc(1, sizeof(*ws));
	ws->in = in;
	ws->out = out;
	ws->fd = -1;
	ws->h = h;
	ws->ud = ud;
	ws->max_message = max_message;
	if (!ensure(ws)) {
		xfree(ws);
		return NULL;
	}
	return ws;
}

void ws_free(struct ws *ws)
{
	if (!ws)
		return;
	partial_release(ws);
	if (ws->ctx)
		wslay_event_context_free(ws->ctx);
	if (ws->cork)
		evbuffer_free(ws->cork);
	xfree(ws);
}

bool ws_park(struct ws *ws)
{
	if (!ws->ctx)
		return true;
	if (ws->fed != ws->framed || ws->fragmented || evbuffer_get_length(ws->in) > 0 ||
	    wslay_event_want_write(ws->ctx) || !wslay_event_want_read(ws->ctx) ||
	    wslay_event_get_close_sent(ws->ctx) || wslay_event_get_close_received(ws->ctx))
		return false;
	wslay_event_context_free(ws->ctx);
	ws->ctx = NULL;
	return true;
}

void ws_set_max_message(struct ws *ws, uint64_t max_message)
{
	ws->max_message = max_message;
	if (ws->ctx)
		wslay_event_config_set_max_recv_msg_length(ws->ctx, max_message);
}

void ws_set_budget(struct ws *ws, struct ws_budget *budget)
{
	if (ws->budget)
		ws->budget->used -= ws->partial;
	ws->budget = budget;
	if (budget)
		budget->used += ws->partial;
}

bool ws_parked(const struct ws *ws)
{
	return ws->ctx == NULL && !ws->over;
}

void ws_discard(struct ws *ws)
{
	partial_release(ws);
	if (ws->ctx)
		wslay_event_context_free(ws->ctx);
	ws->ctx = NULL;
	ws->over = true;
}

void ws_rebind(struct ws *ws, struct evbuffer *in, struct evbuffer *out, int fd)
{
	ws_uncork(ws);
	ws->in = in;
	ws->out = out;
	ws->fd = fd;
}

bool ws_flush(struct ws *ws)
{
	if (!ws->ctx || !wslay_event_want_write(ws->ctx))
		return true;
	/* A cork, once open, takes every frame until ws_uncork: the order holds. */
	if (!ws->cork && ws->fd >= 0 && evbuffer_get_length(ws->out) == 0)
		ws->cork = evbuffer_new();
	return wslay_event_send(ws->ctx) == 0;
}

bool ws_corked(const struct ws *ws)
{
	return ws->cork != NULL;
}

size_t ws_corked_bytes(const struct ws *ws)
{
	return ws->cork ? evbuffer_get_length(ws->cork) : 0;
}

void ws_uncork(struct ws *ws)
{
	if (!ws->cork)
		return;
	/* What the socket does not take now (EAGAIN, a short write, an error
	 * the bufferevent will report when it tries) waits in `out`. */
	if (ws->fd >= 0 && evbuffer_get_length(ws->out) == 0)
		(void)evbuffer_write(ws->cork, ws->fd);
	evbuffer_add_buffer(ws->out, ws->cork);
	evbuffer_free(ws->cork);
	ws->cork = NULL;
}

/* The worker holds more of unfinished messages than its budget, and this
 * session holds one of them: it is refused like an oversize message
 * (1009), reading stops, and what it holds is freed with the connection
 * after the close.  A session whose message completed in this read is
 * not: what it held is already released. */
static bool over_budget(const struct ws *ws)
{
	return ws->budget && ws->budget->limit && ws->budget->used > ws->budget->limit &&
	       ws->partial > 0;
}

static void refuse_over_budget(struct ws *ws)
{
	ws->budget_refused = true;
	ws->budget->refused++;
	metrics_inc_label(METRIC_LIMIT_REFUSALS, LIMIT_WS_BUDGET);
	(void)wslay_event_queue_close(ws->ctx, WS_CLOSE_TOO_BIG, (const uint8_t *)"message_budget",
				      14);
	wslay_event_shutdown_read(ws->ctx);
}

bool ws_pump(struct ws *ws)
{
	if (ws->over) {
		evbuffer_drain(ws->in, evbuffer_get_length(ws->in));
		return true;
	}
	if (!ws->ctx) {
		if (evbuffer_get_length(ws->in) == 0)
			return true;
		if (!ensure(ws))
			return false;
	}
	bool closed = ws_close_sent(ws);
	if (wslay_event_want_read(ws->ctx) && evbuffer_get_length(ws->in) > 0) {
		if (wslay_event_recv(ws->ctx) != 0)
			return false;
		if (over_budget(ws))
			refuse_over_budget(ws);
	} else if (!wslay_event_want_read(ws->ctx)) {
		/* Reading is over (close received or size cap hit): discard. */
		evbuffer_drain(ws->in, evbuffer_get_length(ws->in));
	}
	bool ok = ws_flush(ws);
	/* wslay's own 1009 (a message past the cap) is known once it is sent. */
	if (!closed && ws_close_sent(ws) && !ws->budget_refused &&
	    wslay_event_get_status_code_sent(ws->ctx) == WS_CLOSE_TOO_BIG)
		metrics_inc_label(METRIC_LIMIT_REFUSALS, LIMIT_WS_MESSAGE);
	return ok;
}

bool ws_send_text(struct ws *ws, const char *data, size_t len)
{
	if (!ensure(ws))
		return false;
	struct wslay_event_msg m = { WSLAY_TEXT_FRAME, (const uint8_t *)data, len };
	return wslay_event_queue_msg(ws->ctx, &m) == 0;
}

bool ws_send_ping(struct ws *ws)
{
	if (!ensure(ws))
		return false;
	struct wslay_event_msg m = { WSLAY_PING, NULL, 0 };
	return wslay_event_queue_msg(ws->ctx, &m) == 0;
}

bool ws_send_close(struct ws *ws, uint16_t code, const char *reason)
{
	if (!ensure(ws))
		return false;
	size_t len = reason ? strlen(reason) : 0;
	if (len > 123)
		len = 123;
	return wslay_event_queue_close(ws->ctx, code, (const uint8_t *)reason, len) == 0;
}

bool ws_finished(const struct ws *ws)
{
	if (!ws->ctx)
		return ws->over; /* else parked: open and idle */
	return !wslay_event_want_read(ws->ctx) && !wslay_event_want_write(ws->ctx);
}

bool ws_close_received(const struct ws *ws)
{
	return ws->ctx && wslay_event_get_close_received(ws->ctx) != 0;
}

bool ws_close_sent(const struct ws *ws)
{
	return ws->over || (ws->ctx && wslay_event_get_close_sent(ws->ctx) != 0);
}
