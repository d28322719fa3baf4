/* ws — wslay glue; see include/meshd/ws.h. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <openssl/evp.h>
#include <sodium.h>
#include <wslay/wslay.h>

#include "meshd/alloc.h"
#include "meshd/ws.h"

static const char ws_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

struct ws {
	wslay_event_context_ptr ctx;
	struct evbuffer *in;
	struct evbuffer *out;
	const struct ws_handlers *h;
	void *ud;
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
	return n;
}

/* The output evbuffer takes everything; the connection bounds its size. */
static ssize_t send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
		       void *user_data)
{
	struct ws *ws = user_data;
	if (evbuffer_add(ws->out, data, len) != 0) {
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
	.on_msg_recv_callback = msg_cb,
};

struct ws *ws_new(struct evbuffer *in, struct evbuffer *out, uint64_t max_message,
		  const struct ws_handlers *h, void *ud)
{
	struct ws *ws = xcalloc(1, sizeof(*ws));
	ws->in = in;
	ws->out = out;
	ws->h = h;
	ws->ud = ud;
	if (wslay_event_context_server_init(&ws->ctx, &callbacks, ws) != 0) {
		xfree(ws);
		return NULL;
	}
	wslay_event_config_set_max_recv_msg_length(ws->ctx, max_message);
	return ws;
}

void ws_free(struct ws *ws)
{
	if (!ws)
		return;
	wslay_event_context_free(ws->ctx);
	xfree(ws);
}

void ws_rebind(struct ws *ws, struct evbuffer *in, struct evbuffer *out)
{
	ws->in = in;
	ws->out = out;
}

bool ws_flush(struct ws *ws)
{
	if (!wslay_event_want_write(ws->ctx))
		return true;
	return wslay_event_send(ws->ctx) == 0;
}

bool ws_pump(struct ws *ws)
{
	if (wslay_event_want_read(ws->ctx) && evbuffer_get_length(ws->in) > 0) {
		if (wslay_event_recv(ws->ctx) != 0)
			return false;
	} else if (!wslay_event_want_read(ws->ctx)) {
		/* Reading is over (close received or size cap hit): discard. */
		evbuffer_drain(ws->in, evbuffer_get_length(ws->in));
	}
	return ws_flush(ws);
}

bool ws_send_text(struct ws *ws, const char *data, size_t len)
{
	struct wslay_event_msg m = { WSLAY_TEXT_FRAME, (const uint8_t *)data, len };
	return wslay_event_queue_msg(ws->ctx, &m) == 0;
}

bool ws_send_ping(struct ws *ws)
{
	struct wslay_event_msg m = { WSLAY_PING, NULL, 0 };
	return wslay_event_queue_msg(ws->ctx, &m) == 0;
}

bool ws_send_close(struct ws *ws, uint16_t code, const char *reason)
{
	size_t len = reason ? strlen(reason) : 0;
	if (len > 123)
		len = 123;
	return wslay_event_queue_close(ws->ctx, code, (const uint8_t *)reason, len) == 0;
}

bool ws_finished(const struct ws *ws)
{
	return !wslay_event_want_read(ws->ctx) && !wslay_event_want_write(ws->ctx);
}

bool ws_close_sent(const struct ws *ws)
{
	return wslay_event_get_close_sent(ws->ctx) != 0;
}
