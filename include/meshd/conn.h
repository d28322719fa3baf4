/* conn — one client TCP connection, owned by one worker's connection table.
 *
 * A connection speaks HTTP/1.1 (keep-alive, pipelined requests answered in
 * order) until a valid upgrade on exactly /ws turns it into a WebSocket
 * (PROTOCOL.md §2).  Its bytes live in a libevent bufferevent; its output is
 * bounded by CONN_MAX_OUTPUT_BYTES (a peer that stops reading is dropped,
 * never buffered without limit).  One timer per connection serves every
 * deadline: the keep-alive idle limit, the session's deadline (the first
 * hello's, set by the layer above), the ping interval with its pong timeout,
 * and the close-handshake linger.
 *
 * The transport knows nothing of meshes.  Its user (the dispatcher, or a
 * test) binds it to a protocol with a struct conn_ops given at conn_open(),
 * which travels with the connection when it moves to another worker, and
 * keeps its per-connection state behind conn_user() (pgbouncer's
 * sbuf_init(&sbuf, proto_fn), Redis's connSetReadHandler + private data).
 *
 * Worker thread, the thread of the connection's table, for every function
 * here.
 */
#ifndef MESHD_CONN_H
#define MESHD_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct conn;
struct conntab;
struct bufferevent;
struct evbuffer;
struct event;
struct http_request;
struct ws;

enum conn_state {
	CONN_HTTP,     /* reading requests */
	CONN_WS,       /* WebSocket open */
	CONN_CLOSING,  /* flushing a last response or finishing the close handshake */
	CONN_CLOSED,   /* released; freed after this loop iteration */
};

/* What the layer above is told.  Every callback is optional (NULL: nothing
 * to do) and runs on the connection's worker, from inside conn.c; it may
 * respond, send, close or abort the connection it is given. */
struct conn_ops {
	/* A complete request that is not the WebSocket upgrade, with its body
	 * (Content-Length bytes; NULL and 0 when it has none).  A body larger
	 * than MAX_MESSAGE_BYTES (req->content_length says how large) or
	 * chunked is not read, and the answer closes the connection.  Answer
	 * with conn_http_respond(), now or, after conn_http_defer(), later:
	 * requests pipelined behind it wait until then. */
	void (*http_request)(struct conn *c, const struct http_request *req, const char *body,
			     size_t body_len);
	/* The upgrade was answered with 101: a WebSocket session starts. */
	void (*ws_open)(struct conn *c);
	/* One complete message (binary: opcode 0x2). */
	void (*ws_message)(struct conn *c, const uint8_t *data, size_t len, bool binary);
	/* A pong arrived (the heartbeat). */
	void (*ws_pong)(struct conn *c);
	/* The deadline of conn_ws_set_deadline() passed (it is cleared first). */
	void (*ws_deadline)(struct conn *c);
	/* The output fell to the mark conn_ws_notify_writable() set.  Runs
	 * once per call of it. */
	void (*ws_writable)(struct conn *c);
	/* The connection closed: no more callbacks but freed.  Runs once. */
	void (*released)(struct conn *c);
	/* Its memory goes after this loop iteration (or at shutdown, also for a
	 * connection still travelling between workers): free conn_user(). */
	void (*freed)(struct conn *c);
};

struct conn {
	struct conntab *tab;       /* NULL while travelling between workers */
	uint32_t slot;
	uint32_t gen;
	const struct conn_ops *ops;
	void *user;                /* the layer above's, opaque here */
	struct bufferevent *bev;
	struct event *timer;
	enum conn_state state;
	struct ws *ws;

	int64_t deadline_ms;       /* CONN_HTTP idle limit / CONN_CLOSING linger (monotonic) */
	int64_t ws_deadline_ms;    /* CONN_WS: the user's deadline, 0 for none */
	int64_t next_ping_ms;
	int64_t last_pong_ms;
	int64_t park_at_ms;        /* when the WebSocket may park (PARK_IDLE_MS after its last message) */
	bool http_close;           /* the request being answered ends the connection */
	bool http_deferred;        /* its answer comes later (conn_http_defer) */
	bool want_writable;        /* conn_ws_notify_writable() is armed */
	size_t writable_low;       /* ... for this many bytes of output or fewer */
	bool write_shut;           /* lingering after a close the peer did not answer */
	size_t body_held;          /* input of an unfinished HTTP body, in the worker's budget */

	int fd;

	/* While travelling to the owner worker (MSG_ADOPT_CONN): the bytes
	 * read or queued but not yet processed or sent. */
	struct evbuffer *carry_in;
	struct evbuffer *carry_out;
	int migrate_to;            /* worker id, or -1 */

	/* The table's deferred lists (conntab.h). */
	struct conn *next_closing;
	struct conn *next_migrating;
	struct conn *next_uncork;
	bool uncork_listed;        /* on the table's uncork list */
	char addr[64];
};

/* Takes ownership of an accepted, non-blocking fd (closed on failure). */
void conn_open(struct conntab *t, int fd, const char *addr, const struct conn_ops *ops);

static inline void *conn_user(const struct conn *c)
{
	return c->user;
}

static inline void conn_set_user(struct conn *c, void *user)
{
	c->user = user;
}

/* The table's owner pointer (conntab_init): what the layer above keeps per
 * worker.  NULL while travelling. */
void *conn_owner(const struct conn *c);

/* Sends an HTTP response (CORS headers always; body may be NULL).  `close`
 * adds "Connection: close" and closes once it is flushed. */
void conn_http_respond(struct conn *c, int status, const char *content_type,
		       const char *body, size_t len, bool close);

/* From inside ops->http_request: the answer will come later, from this
 * thread (the connection is found again by {slot, gen}). */
void conn_http_defer(struct conn *c);

/* Sends one WebSocket text message (a JSON document). */
void conn_ws_send(struct conn *c, const char *json, size_t len);
/* Bytes sent and not yet taken by the kernel (the cork included). */
size_t conn_output_bytes(const struct conn *c);
/* Flow control for what the broker sends of its own accord (a drain's
 * pages): ops->ws_writable runs, once, after the loop iteration in which
 * the output is at most `low` bytes, from conn_uncork or the write event.
 * A connection that closes first never gets it. */
void conn_ws_notify_writable(struct conn *c, size_t low);
/* Starts the close handshake with code/reason, then drops the socket when it
 * completes or the linger time passes. */
void conn_ws_close(struct conn *c, uint16_t code, const char *reason);
/* The WebSocket message cap from now on: a connection opens with
 * WS_HELLO_MAX_MESSAGE_BYTES, the layer above raises it once the peer is
 * known. */
void conn_ws_set_max_message(struct conn *c, size_t bytes);
/* Arms (at_ms, monotonic) or clears (0) the session's deadline: ops->ws_deadline. */
void conn_ws_set_deadline(struct conn *c, int64_t at_ms);

/* Drops the TCP connection now, no close frame (PROTOCOL.md §16.1 "TCP drop"). */
void conn_abort(struct conn *c);

/* Graceful shutdown: WebSockets get 1001 "shutting down", idle HTTP is dropped. */
void conn_shutdown(struct conn *c);
/* After the loop iteration: sends the WebSocket frames corked during it
 * (ws.h), one writev for all of them. */
void conn_uncork(struct conn *c);

/* Frees a released (or travelling) conn: the table calls it after the loop
 * iteration. */
void conn_free(struct conn *c);

/* Moves a WebSocket connection to the worker that owns its mesh (DESIGN.md
 * §1): conn_migrate() marks it; after the loop iteration the worker takes
 * it from its table (conntab_take_migrating), calls conn_detach() (its
 * bufferevent and timer are dropped, the fd and unread bytes kept) and
 * posts it; the owner calls conn_attach() and carries on.  A detach that
 * fails releases the connection; an attach that fails leaves it to
 * conn_free(). */
void conn_migrate(struct conn *c, int worker_id);
bool conn_detach(struct conn *c) __attribute__((warn_unused_result));
bool conn_attach(struct conntab *t, struct conn *c) __attribute__((warn_unused_result));
/* Processes bytes already buffered (after an attach). */
void conn_resume_input(struct conn *c);

#endif
