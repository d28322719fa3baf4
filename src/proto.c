/* proto — WebSocket JSON envelopes; see include/meshd/proto.h. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "meshd/conn.h"
#include "meshd/proto.h"

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
