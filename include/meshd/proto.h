/* proto — the envelope writers: JSON documents out to a WebSocket
 * (PROTOCOL.md §4).  What comes in is dispatch.c's.
 * Worker thread, owner of the connection.
 */
#ifndef MESHD_PROTO_H
#define MESHD_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct conn;

/* Serialises obj compactly (key order as built) and sends it; takes the reference. */
void proto_send_json(struct conn *c, json_t *obj);

/* {"type":"error","code":…,"message":…[,"_reqId":…]} */
void proto_send_error(struct conn *c, const char *code, const char *message, const char *req_id);

#endif
