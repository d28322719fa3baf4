/* handshake — hello and session_hello, from first frame to hello_ack
 * (PROTOCOL.md §5, §7.8–7.10).
 *
 *   reading worker   hello_check(): shape, timestamp, Ed25519 signatures
 *                    (CPU work stays where the frame was read); a rejection
 *                    is answered there.  Then the connection migrates to
 *                    the worker that owns the mesh.
 *   owner worker     member lookup through the db thread (every hello, so a
 *                    member added or revoked in the database is seen), then
 *                    reattach, capacity (Q7: only when a presence would be
 *                    created), session-id dedup, the presence row, hello_ack,
 *                    peer_joined and the first drain.
 */
#ifndef MESHD_HANDSHAKE_H
#define MESHD_HANDSHAKE_H

#include <jansson.h>

struct conn;

/* Reading worker: a hello or session_hello frame on a connection without one. */
void handshake_begin(struct conn *c, const json_t *msg, const char *type);
/* Owner worker: the connection just arrived (MSG_ADOPT_CONN). */
void handshake_adopted(struct conn *c);

#endif
