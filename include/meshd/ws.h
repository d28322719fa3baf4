/* ws — one WebSocket session on top of a connection's byte buffers.
 *
 * Framing, masking, fragmentation, control frames and the close handshake are
 * wslay's (RFC 6455); this module only pumps bytes between the connection's
 * input/output evbuffers and wslay, enforces the message-size cap (wslay
 * closes with 1009), and hands complete text/binary messages to a callback.
 * Owner worker thread only, like the connection it belongs to.
 */
#ifndef MESHD_WS_H
#define MESHD_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct evbuffer;
struct ws;

#define WS_ACCEPT_KEY_LEN 28 /* base64 of a 20-byte SHA-1 */

enum ws_close_code {
	WS_CLOSE_NORMAL = 1000,
	WS_CLOSE_GOING_AWAY = 1001,
	WS_CLOSE_POLICY = 1008,
	WS_CLOSE_TOO_BIG = 1009,
	WS_CLOSE_BANNED = 4002,
};

struct ws_handlers {
	/* A complete text or binary message (binary = true for opcode 0x2). */
	void (*on_message)(void *ud, const uint8_t *data, size_t len, bool binary);
	/* A pong arrived (the heartbeat). */
	void (*on_pong)(void *ud);
};

/* Sec-WebSocket-Accept for a client key: base64(SHA-1(key ++ RFC 6455 GUID)).
 * out receives WS_ACCEPT_KEY_LEN chars plus a NUL.  Any thread (pure). */
void ws_accept_key(const char *key, size_t key_len, char out[WS_ACCEPT_KEY_LEN + 1]);
/* A valid Sec-WebSocket-Key is base64 of exactly 16 bytes (RFC 6455 §4.1). */
bool ws_client_key_valid(const char *key, size_t key_len);

/* Bytes of unfinished messages that one worker's sessions may hold
 * together (wslay keeps a message's frames until its last one).  The
 * worker owns it; limit 0 is no limit.  A session whose data crosses the
 * limit is closed with 1009 "message_budget" and `refused` counts it. */
struct ws_budget {
	uint64_t used;
	uint64_t limit;
	uint64_t refused;
};

struct ws *ws_new(struct evbuffer *in, struct evbuffer *out, uint64_t max_message,
		  const struct ws_handlers *h, void *ud);
void ws_free(struct ws *ws);
/* Parks an idle session: wslay's context (~9 KiB: its frame buffers) is
 * freed when it sits exactly between frames with nothing queued, and made
 * again by the next byte in or frame out.  What keeps an idle peer cheap.
 * False (nothing done) when it is not at such a point. */
/* The message-size cap from now on (a handshake allows less than a peer). */
void ws_set_max_message(struct ws *ws, uint64_t max_message);
/* Counts this session's unfinished message against `budget` (NULL: none),
 * moving what it holds now from the budget it had: a connection that moves
 * worker calls it with NULL on the old worker, then with the new one's. */
void ws_set_budget(struct ws *ws, struct ws_budget *budget);
bool ws_park(struct ws *ws) __attribute__((warn_unused_result));
bool ws_parked(const struct ws *ws);
/* The session is over (its close is out, reading stopped): wslay's context
 * and any message it held are freed now, input is discarded from here on,
 * and it counts as finished with its close sent. */
void ws_discard(struct ws *ws);

/* Points the session at other buffers (the connection moved workers) and
 * at the socket `out` drains to (-1: none; new sessions start with none),
 * uncorking first. */
void ws_rebind(struct ws *ws, struct evbuffer *in, struct evbuffer *out, int fd);

/* Corking.  With a socket, frames flushed while `out` is empty wait in a
 * cork until ws_uncork(), which writes them all with one writev() and
 * leaves in `out` only what the socket did not take.  The owner uncorks
 * once per loop iteration: a burst to one peer (a join storm's
 * peer_joined) is one syscall, and a peer that keeps up never needs the
 * bufferevent's write event (arming and disarming it costs two epoll_ctl
 * per message per socket: ~15 % of a worker's CPU in a 5 000-peer
 * broadcast).  Frames flushed while something is corked are corked too,
 * so the order holds.  Only the thread that owns the connection may
 * flush or uncork. */
bool ws_corked(const struct ws *ws);
size_t ws_corked_bytes(const struct ws *ws);
void ws_uncork(struct ws *ws);

/* Feeds every byte waiting in `in` to wslay (callbacks run from here), then
 * flushes queued frames to `out`.  False on a fatal protocol or callback
 * error: the caller drops the connection. */
bool ws_pump(struct ws *ws) __attribute__((warn_unused_result));

/* Queue a frame; call ws_pump() or ws_flush() to move it to `out`.
 * False when the session no longer accepts frames (close already queued). */
bool ws_send_text(struct ws *ws, const char *data, size_t len) __attribute__((warn_unused_result));
bool ws_send_ping(struct ws *ws) __attribute__((warn_unused_result));
bool ws_send_close(struct ws *ws, uint16_t code, const char *reason) __attribute__((warn_unused_result));
bool ws_flush(struct ws *ws) __attribute__((warn_unused_result));

/* The close handshake is complete (or reading and writing are both over):
 * nothing more will be read or written. */
bool ws_finished(const struct ws *ws);
bool ws_close_sent(const struct ws *ws);
bool ws_close_received(const struct ws *ws);

#endif
