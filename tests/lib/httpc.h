/* httpc — a tiny blocking HTTP/1.1 client for integration tests.
 *
 * Talks to 127.0.0.1:port.  Requests are raw bytes, so tests can send
 * malformed ones and assert the exact reply.  One response is read at a
 * time and nothing past its end is consumed, so several requests can share
 * one connection (keep-alive, pipelining).  Test code only; single thread.
 */
#ifndef MESHD_TEST_HTTPC_H
#define MESHD_TEST_HTTPC_H

#include <stdbool.h>
#include <stddef.h>

/* Default receive timeout of httpc_request(). */
#define HTTPC_TIMEOUT_MS 10000

struct httpc_header {
	char *name;
	char *value;            /* optional whitespace around it removed */
};

struct http_response {
	int status;             /* 0 until a status line was parsed */
	int minor_version;      /* HTTP/1.<minor_version> */
	char *reason;           /* reason phrase, "" if none */
	char *head;             /* the raw head, status line to blank line, NUL-terminated */
	size_t head_len;
	struct httpc_header *headers;
	size_t nheaders;
	char *body;             /* NUL-terminated (not counted in body_len); never NULL after success */
	size_t body_len;
	bool chunked;           /* body came with Transfer-Encoding: chunked */
	bool until_close;       /* no length: the body ran until the server closed */
};

/* Connects to 127.0.0.1:port; returns the fd or -1 (printed). */
int httpc_connect(int port) __attribute__((warn_unused_result));
/* Writes all of buf (MSG_NOSIGNAL); false on error, e.g. the peer closed. */
bool httpc_send(int fd, const void *buf, size_t len) __attribute__((warn_unused_result));
bool httpc_send_str(int fd, const char *s) __attribute__((warn_unused_result));

/* Reads one response within timeout_ms.  The body is read by Content-Length,
 * chunked coding, or until close; 1xx, 204 and 304 have none.  False (with
 * a message on stderr) on timeout, EOF, or a malformed response; *r then
 * holds whatever was parsed and must still be freed. */
bool httpc_read_response(int fd, struct http_response *r, int timeout_ms)
	__attribute__((warn_unused_result));
/* The same for the response to a HEAD request (never has a body). */
bool httpc_read_head_response(int fd, struct http_response *r, int timeout_ms)
	__attribute__((warn_unused_result));
void httpc_response_free(struct http_response *r);

/* Connects, sends raw (a C string), reads one response (as for HEAD when raw
 * starts with "HEAD "), closes.  Timeout HTTPC_TIMEOUT_MS. */
bool httpc_request(int port, const char *raw, struct http_response *r)
	__attribute__((warn_unused_result));

/* The first header named `name` (case-insensitive), or NULL. */
const char *httpc_header(const struct http_response *r, const char *name);
/* How many headers are named `name`. */
size_t httpc_header_count(const struct http_response *r, const char *name);

/* True if the server closed the connection (read gives EOF or ECONNRESET)
 * within timeout_ms without sending a single byte.  False if bytes arrived
 * or the connection stayed open. */
bool httpc_peer_closed(int fd, int timeout_ms) __attribute__((warn_unused_result));

/* Parses a response head in buf[0..len).  Returns the head's length
 * (through the blank line) on success, 0 if buf holds no complete head yet,
 * -1 if it is malformed.  Fills status, reason, headers, head; no body.
 * Used by wsc for the 101 response. */
long httpc_parse_head(const char *buf, size_t len, struct http_response *r)
	__attribute__((warn_unused_result));

/* Waits until fd is ready for `events` (or has an error or hang-up) before
 * the CLOCK_MONOTONIC deadline (httpc_now_ms()): 1 ready (*revents, if
 * given, says how), 0 timeout, -1 error. */
int httpc_wait_fd(int fd, short events, long long deadline, short *revents);

/* Milliseconds on CLOCK_MONOTONIC, for deadlines. */
long long httpc_now_ms(void);

#endif
