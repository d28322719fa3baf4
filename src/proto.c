/* proto — WebSocket JSON envelopes; see include/meshd/proto.h. */
#include "config.h"

#include <string.h>

#include <jansson.h>

#include "meshd/alloc.h"
#include "meshd/conn.h"
#include "meshd/handshake.h"
#include "meshd/presence.h"
#include "meshd/route.h"
#include "meshd/log.h"
#include "meshd/metrics.h"
#include "meshd/proto.h"
#include "meshd/worker.h"

/* Serialises compactly, in insertion order, as JSON.stringify does, and sends. */
void proto_send_json(struct conn *c, json_t *obj)
{
	char *text = json_dumps(obj, JSON_COMPACT);
	if (text) {
		conn_ws_send(c, text, strlen(text));
		free(text); /* jansson allocates with malloc */
	}
	json_decref(obj);
}

void proto_send_error(struct conn *c, const char *code, const char *message, const char *req_id)
{
	json_t *o = json_object();
	json_object_set_new(o, "type", json_string("error"));
	json_object_set_new(o, "code", json_string(code));
	json_object_set_new(o, "message", json_string(message));
	if (req_id)
		json_object_set_new(o, "_reqId", json_string(req_id));
	proto_send_json(c, o);
}

struct handler {
	const char *type;
	void (*fn)(struct conn *c, const json_t *msg);
};

/* Requests after the handshake.  Anything else is ignored (D7). */
static const struct handler handlers[] = {
	{ "send", route_send },
	{ "client_ack", route_client_ack },
	{ "message_status", route_message_status },
	{ "list_peers", presence_list_peers },
	{ "set_status", presence_set_status },
	{ "set_summary", presence_set_summary },
	{ "join_group", presence_join_group },
	{ "leave_group", presence_leave_group },
};

static void dispatch(struct conn *c, const json_t *msg, const char *type)
{
	if (!type || !c->presence)
		return; /* replaced or evicted while the socket was open: silent (§4.3) */
	for (size_t i = 0; i < sizeof(handlers) / sizeof(handlers[0]); i++) {
		if (strcmp(handlers[i].type, type) == 0) {
			handlers[i].fn(c, msg);
			return;
		}
	}
}

void proto_on_message(struct conn *c, const uint8_t *data, size_t len)
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
	const char *type = json_string_value(json_object_get(msg, "type"));
	if (!c->hello_done) {
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
	dispatch(c, msg, type);
	json_decref(msg);
}
