/* session — what the mesh protocol keeps per WebSocket connection: the
 * hello being checked, whether the handshake is over, and the presence the
 * connection carries once it is.
 *
 * The transport holds it as an opaque pointer (conn_user); the dispatcher
 * makes it when the WebSocket opens and frees it with the connection, so
 * it travels with the connection to its mesh's owner worker.
 *
 * Worker thread, the connection's own.
 */
#ifndef MESHD_SESSION_H
#define MESHD_SESSION_H

#include <stdbool.h>

#include "meshd/conn.h"

struct hello;
struct peer_saved;
struct presence;

struct session {
	/* Set while a hello is being checked, looked up or migrated. */
	struct hello *hello;
	struct peer_saved *saved;  /* a member hello's restored state, until the ack */
	bool handshaking;
	bool hello_done;           /* frames are requests from now on */
	bool session_key_taken;    /* the member hello's sessionPubkey is another member's */
	struct presence *presence; /* NULL before the ack, or once replaced or evicted */
};

struct session *session_new(void);
void session_free(struct session *s);

/* The session of a WebSocket connection (NULL for plain HTTP). */
static inline struct session *session_of(const struct conn *c)
{
	return conn_user(c);
}

/* The presence c carries, or NULL. */
static inline struct presence *session_presence(const struct conn *c)
{
	const struct session *s = session_of(c);
	return s ? s->presence : NULL;
}

/* Drops the hello and the saved state (the handshake ended, either way). */
void session_end_handshake(struct session *s);

#endif
