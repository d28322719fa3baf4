/* proto — WebSocket JSON envelopes; see include/meshd/proto.h. */
#include "config.h"

#include <string.h>

#include <jansson.h>

#include "meshd/alloc.h"
#include "meshd/conn.h"
#include "meshd/log.h"
#include "meshd/metrics.h"
#include "meshd/proto.h"
#include "meshd/worker.h"

/* Serialises compactly, in insertion order, as JSON.stringify does, and sends. */
static void send_json(struct conn *c, json_t *obj)
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
	send_json(c, o);
}

static void on_hello(struct conn *c, json_t *msg, const char *type)
{
	/* The handshake (PROTOCOL.md §5) arrives with the mesh protocol core.
	 * Until then a hello gets what the reference gives a hello that fails
	 * at presence creation: no reply; the deadline closes the socket. */
	log_debug("hello_unhandled", "worker=%d conn=%u type=%s", c->w->id, c->slot, type);
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
		if (type && (strcmp(type, "hello") == 0 || strcmp(type, "session_hello") == 0))
			on_hello(c, msg, type);
		else
			proto_send_error(c, "no_hello", "must send hello first", NULL);
		json_decref(msg);
		return;
	}
	/* After the handshake: unknown types, non-objects and objects without a
	 * type are ignored silently (§2.4, D7); never unknown_message_type. */
	json_decref(msg);
}
