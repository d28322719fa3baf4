/* proto — WebSocket messages: JSON envelopes in, envelopes out (PROTOCOL.md §2.4, §4).
 *
 * One message holds one JSON document.  Malformed JSON and bare `null` are
 * counted (parse_or_handler) and ignored; before the handshake anything that
 * is not a hello gets `no_hello`; after it, unknown types are ignored and
 * `unknown_message_type` is never sent.
 * Worker thread, owner of the connection.
 */
#ifndef MESHD_PROTO_H
#define MESHD_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct conn;

void proto_on_message(struct conn *c, const uint8_t *data, size_t len);

/* Serialises obj compactly (key order as built) and sends it; takes the reference. */
void proto_send_json(struct conn *c, json_t *obj);

/* {"type":"error","code":…,"message":…[,"_reqId":…]} */
void proto_send_error(struct conn *c, const char *code, const char *message, const char *req_id);

#endif
