/* conn — one client TCP connection, owned by one worker.
 *
 * A connection speaks HTTP/1.1 (keep-alive, pipelined requests answered in
 * order) until a valid upgrade on exactly /ws turns it into a WebSocket
 * (PROTOCOL.md §2).  Its bytes live in a libevent bufferevent; its output is
 * bounded by CONN_MAX_OUTPUT_BYTES (a peer that stops reading is dropped,
 * never buffered without limit).  One timer per connection serves every
 * deadline: the keep-alive idle limit, the first-hello deadline, the ping
 * interval with its pong timeout, and the close-handshake linger.
 *
 * Worker thread, owner worker only, for every function here.
 */
#ifndef MESHD_CONN_H
#define MESHD_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct worker;
struct bufferevent;
struct evbuffer;
struct event;
struct ws;
struct hello;
struct presence;

enum conn_state {
	CONN_HTTP,     /* reading requests */
	CONN_WS,       /* WebSocket open */
	CONN_CLOSING,  /* flushing a last response or finishing the close handshake */
	CONN_CLOSED,   /* released; freed after this loop iteration */
};

struct conn {
	struct worker *w;
	uint32_t slot;
	uint32_t gen;
	struct bufferevent *bev;
	struct event *timer;
	enum conn_state state;
	struct ws *ws;

	int64_t deadline_ms;       /* CONN_HTTP idle limit / CONN_CLOSING linger (monotonic) */
	int64_t hello_deadline_ms; /* CONN_WS before hello */
	int64_t next_ping_ms;
	int64_t last_pong_ms;
	int64_t park_at_ms;        /* when the WebSocket may park (PARK_IDLE_MS after its last message) */
	bool hello_done;
	long long body_skip;       /* request-body bytes still to discard */
	bool http_close;           /* the request being answered ends the connection */

	int fd;

	/* Handshake: set while a hello is being checked, looked up or
	 * migrated; then the presence this connection carries. */
	struct hello *hello;
	bool handshaking;
	struct presence *presence;

	/* While travelling to the owner worker (MSG_ADOPT_CONN): the bytes
	 * read or queued but not yet processed or sent. */
	struct evbuffer *carry_in;
	struct evbuffer *carry_out;
	int migrate_to;            /* worker id, or -1 */

	struct conn *next_closing;
	struct conn *next_migrating;
	struct conn *next_uncork;
	bool uncork_listed;        /* on the worker's uncork list */
	char addr[64];
};

/* Takes ownership of an accepted, non-blocking fd. */
void conn_open(struct worker *w, int fd, const char *addr);

/* Sends an HTTP response (CORS headers always; body may be NULL).  `close`
 * adds "Connection: close" and closes once it is flushed. */
void conn_http_respond(struct conn *c, int status, const char *content_type,
		       const char *body, size_t len, bool close);

/* Sends one WebSocket text message (a JSON document). */
void conn_ws_send(struct conn *c, const char *json, size_t len);
/* Starts the close handshake with code/reason, then drops the socket when it
 * completes or the linger time passes. */
void conn_ws_close(struct conn *c, uint16_t code, const char *reason);

/* Drops the TCP connection now, no close frame (PROTOCOL.md §16.1 "TCP drop"). */
void conn_abort(struct conn *c);

/* Graceful shutdown: WebSockets get 1001 "shutting down", idle HTTP is dropped. */
void conn_shutdown(struct conn *c);
/* After the loop iteration: sends the WebSocket frames corked during it
 * (ws.h), one writev for all of them. */
void conn_uncork(struct conn *c);

/* Called by the worker after the loop iteration to free a released conn. */
void conn_free(struct conn *c);

/* Moves a WebSocket connection to the worker that owns its mesh (DESIGN.md
 * §1): conn_migrate() marks it; after the loop iteration the worker calls
 * conn_detach() (its bufferevent and timer are dropped, the fd and unread
 * bytes kept) and posts it; the owner calls conn_attach() and carries on. */
void conn_migrate(struct conn *c, int worker_id);
void conn_detach(struct conn *c);
void conn_attach(struct worker *w, struct conn *c);
/* Processes bytes already buffered (after an attach). */
void conn_resume_input(struct conn *c);

#endif
