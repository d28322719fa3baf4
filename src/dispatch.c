/* dispatch — the mesh protocol's side of a connection; see include/meshd/dispatch.h. */
#include "config.h"

#include <string.h>

#include <jansson.h>

#include "meshd/clientack.h"
#include "meshd/clock.h"
#include "meshd/config.h"
#include "meshd/conn.h"
#include "meshd/dispatch.h"
#include "meshd/drain.h"
#include "meshd/endpoint.h"
#include "meshd/handshake.h"
#include "meshd/metrics.h"
#include "meshd/msgstatus.h"
#include "meshd/presence.h"
#include "meshd/proto.h"
#include "meshd/route.h"
#include "meshd/session.h"
#include "meshd/shard.h"
#include "meshd/ws.h"
#include "meshd/jscompat.h"

struct handler {
	const char *type;
	void (*fn)(struct conn *c, const json_t *msg);
};

/* Requests after the handshake.  Anything else is ignored (D7). */
static const struct handler handlers[] = {
	{ "send", route_send },
	{ "client_ack", clientack_handle },
	{ "message_status", msgstatus_handle },
	{ "list_peers", presence_list_peers },
	{ "set_status", presence_set_status },
	{ "set_summary", presence_set_summary },
	{ "join_group", presence_join_group },
	{ "leave_group", presence_leave_group },
	{ "set_stats", presence_set_stats },
	{ "set_visible", presence_set_visible },
	{ "set_profile", presence_set_profile },
};

static void dispatch_request(struct conn *c, const json_t *msg, const char *type)
{
	if (!type || !session_presence(c))
		return; /* replaced or evicted while the socket was open: silent (§4.3) */
	for (size_t i = 0; i < sizeof(handlers) / sizeof(handlers[0]); i++) {
		if (strcmp(handlers[i].type, type) == 0) {
			handlers[i].fn(c, msg);
			return;
		}
	}
}

/* One WebSocket message: one JSON document. */
static void dispatch_message(struct conn *c, const uint8_t *data, size_t len)
{
	json_error_t err;
	/* JSON_DECODE_ANY: a bare number or string is valid JSON, and gets
	 * no_hello before the handshake like any other non-hello frame. */
	json_t *msg = json_loadb((const char *)data, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
	if (!msg || json_is_null(msg)) {
		/* Malformed JSON, or `null` (which makes the reference throw). */
		metrics_inc_label(METRIC_MESSAGES_REJECTED, MSG_REJECT_PARSE_OR_HANDLER);
		json_decref(msg);
		return;
	}
	const char *type = js_field(msg, "type");
	if (!session_of(c)->hello_done) {
		/* A handshake still in progress does not count (§4.3). */
		if (type && (strcmp(type, "hello") == 0 || strcmp(type, "session_hello") == 0))
			handshake_begin(c, msg, type);
		else
			proto_send_error(c, "no_hello", "must send hello first", NULL);
		json_decref(msg);
		return;
	}
	/* After the handshake: unknown types, non-objects and objects without a
	 * type are ignored silently (§2.4, D7); never unknown_message_type. */
	dispatch_request(c, msg, type);
	json_decref(msg);
}

/* ---- the ops ------------------------------------------------------------- */

static void on_http_request(struct conn *c, const struct http_request *req, const char *body,
			    size_t body_len)
{
	endpoint_handle(c, req, body, body_len);
}

static void on_ws_open(struct conn *c)
{
	const struct shard *s = conn_owner(c);
	conn_set_user(c, session_new());
	/* Q15: a socket that never says hello does not stay open. */
	conn_ws_set_deadline(c, clock_mono_ms() + (int64_t)s->cfg->hello_deadline_seconds * 1000);
}

static void on_ws_message(struct conn *c, const uint8_t *data, size_t len, bool binary)
{
	(void)binary; /* a JSON document either way, as the reference reads it */
	dispatch_message(c, data, len);
}

static void on_ws_pong(struct conn *c)
{
	struct presence *p = session_presence(c);
	if (p)
		presence_heartbeat(p);
}

static void on_ws_writable(struct conn *c)
{
	struct presence *p = session_presence(c);
	if (p)
		drain_writable(p);
}

static void on_ws_deadline(struct conn *c)
{
	if (!session_of(c)->hello_done)
		conn_ws_close(c, WS_CLOSE_POLICY, "hello_timeout");
}

static void on_released(struct conn *c)
{
	struct presence *p = session_presence(c);
	if (p)
		presence_conn_closed(p);
}

static void on_freed(struct conn *c)
{
	session_free(session_of(c));
	conn_set_user(c, NULL);
}

const struct conn_ops dispatch_conn_ops = {
	.http_request = on_http_request,
	.ws_open = on_ws_open,
	.ws_message = on_ws_message,
	.ws_pong = on_ws_pong,
	.ws_writable = on_ws_writable,
	.ws_deadline = on_ws_deadline,
	.released = on_released,
	.freed = on_freed,
};

void dispatch_adopted(struct conn *c)
{
	handshake_adopted(c);
}
