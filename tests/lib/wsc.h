/* wsc — a blocking WebSocket client for integration tests, on wslay's
 * client-side event API (framing and masking come from wslay).
 *
 * Pings are NOT answered by default: wsc_recv() hands them to the test as
 * WSC_PING, and the test decides (wsc_send_pong(), or wsc_set_auto_pong()).
 * wslay itself always queues a pong for a ping; wsc drops those queued
 * pongs on their way to the socket unless auto-pong is on.
 *
 * A close frame from the server is answered with the same status code (wslay
 * does that, RFC 6455 §5.5.1) when wsc_recv() returns WSC_CLOSE.  Sends that
 * fail because the server already closed (EPIPE, ECONNRESET) return false,
 * but everything the server sent before closing can still be read with
 * wsc_recv().  SIGPIPE is never raised (MSG_NOSIGNAL).
 * Test code only; one thread per struct wsc.
 */
#ifndef MESHD_TEST_WSC_H
#define MESHD_TEST_WSC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct http_response;

/* How long a send may block waiting for socket space before failing. */
#define WSC_SEND_TIMEOUT_MS 20000

enum wsc_type {
	WSC_ERROR = -1,         /* I/O error, or the server broke the protocol (printed) */
	WSC_TIMEOUT = 0,
	WSC_TEXT,
	WSC_BINARY,
	WSC_PING,
	WSC_PONG,
	WSC_CLOSE,              /* a close frame arrived: close_code, close_reason */
	WSC_EOF,                /* TCP closed without (or after) a close frame */
};

struct wsc_msg {
	int type;               /* enum wsc_type */
	char *data;             /* payload + NUL (not counted in len); "" when empty; NULL for
				 * WSC_TIMEOUT, WSC_EOF and WSC_ERROR */
	size_t len;
	int close_code;         /* WSC_CLOSE: status code, 0 when the frame had none */
	char *close_reason;     /* WSC_CLOSE: reason, NUL-terminated ("" when none) */
};

struct wsc;

/* Connects to 127.0.0.1:port, sends `GET path` with Upgrade: websocket and a
 * random Sec-WebSocket-Key, and checks the 101 answer (Upgrade, Connection,
 * Sec-WebSocket-Accept; no extension or subprotocol we did not offer).
 * NULL (reason printed) on failure. */
struct wsc *wsc_connect(int port, const char *path, int timeout_ms);
/* The same with extra request header lines (each ending in "\r\n", may be
 * NULL).  If resp is not NULL it receives the server's response head
 * whatever it was (status 0 when the server sent nothing); free it with
 * httpc_response_free(). */
struct wsc *wsc_connect_ex(int port, const char *path, const char *extra_headers,
			   int timeout_ms, struct http_response *resp);

/* Sends return false if the message could not be sent completely (server
 * closed, send timed out); a test may ignore that when it expects the
 * server to drop the connection mid-send. */
bool wsc_send_text(struct wsc *c, const char *s, size_t len);
bool wsc_send_binary(struct wsc *c, const void *data, size_t len);
/* One message split into frames of at most frag_size bytes (wslay caps a
 * fragment at 4096). */
bool wsc_send_fragmented(struct wsc *c, bool binary, const void *data, size_t len,
			 size_t frag_size);
bool wsc_send_ping(struct wsc *c, const void *payload, size_t len);
bool wsc_send_pong(struct wsc *c, const void *payload, size_t len);
/* code 0 sends a close frame with no payload (reason ignored).  reason <= 123 bytes. */
bool wsc_send_close(struct wsc *c, uint16_t code, const char *reason);
/* Raw bytes straight onto the socket after anything still queued (for
 * protocol-violation tests); wslay's framing state is not told. */
bool wsc_send_raw(struct wsc *c, const void *buf, size_t len);

/* Waits up to timeout_ms for the next message.  Fills m (free with
 * wsc_msg_free) and returns its type.  After WSC_CLOSE, later calls report WSC_EOF
 * once the server closes the TCP connection. */
int wsc_recv(struct wsc *c, struct wsc_msg *m, int timeout_ms);
void wsc_msg_free(struct wsc_msg *m);

/* Answer pings automatically (default off).  Affects pings received after the call. */
void wsc_set_auto_pong(struct wsc *c, bool on);
/* The server's 101 response. */
const struct http_response *wsc_handshake(const struct wsc *c);
int wsc_fd(const struct wsc *c);
/* Closes the socket without a close frame and frees everything. */
void wsc_free(struct wsc *c);

/* A name for a wsc_recv() result, for messages. */
const char *wsc_type_name(int type);

#endif
