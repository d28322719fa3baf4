/* dispatch — binds a connection to the mesh protocol (the layer above the
 * transport): the struct conn_ops every accepted connection gets, the HTTP
 * routes (endpoint.c), and the table of WebSocket request handlers.
 *
 * One WebSocket message holds one JSON document.  Malformed JSON and bare
 * `null` are counted (parse_or_handler) and ignored; before the handshake
 * anything that is not a hello gets `no_hello`; after it, unknown types are
 * ignored and `unknown_message_type` is never sent (PROTOCOL.md §2.4, §4,
 * D7).  Each handler answers or fails on its own, through proto.h's
 * envelope writers (Mosquitto's read_handle.c → handle_*.c).
 *
 * Worker thread, the connection's own.
 */
#ifndef MESHD_DISPATCH_H
#define MESHD_DISPATCH_H

struct conn;
struct conn_ops;

/* What conn_open() is given for every accepted connection. */
extern const struct conn_ops dispatch_conn_ops;

/* The connection arrived from another worker (MSG_ADOPT_CONN) and is
 * attached to this one: the handshake carries on here. */
void dispatch_adopted(struct conn *c);

#endif
