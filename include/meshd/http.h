/* http — a bounded, stateless HTTP/1.1 request-head parser (PROTOCOL.md §2).
 *
 * The connection keeps the bytes it has read in one buffer and calls
 * http_parse_head() with the whole buffer every time more arrive; bytes may
 * be split across reads anywhere.  Nothing is kept between calls and nothing
 * is allocated: the parsed request points into the caller's buffer, so the
 * buffer must stay put while the request is in use.
 *
 * The parser looks at no more than HTTP_MAX_HEAD bytes, which keeps the
 * result the same however the input was split: once a call returns anything
 * but HTTP_PARSE_INCOMPLETE, every longer buffer with the same prefix returns
 * the same thing.  A buffer of HTTP_MAX_HEAD bytes that still holds no
 * complete head is already HTTP_PARSE_TOO_LARGE, so a connection never needs
 * to buffer more than HTTP_MAX_HEAD bytes of head.
 *
 * Bytes after the head (a body, or the first WebSocket frames) are the
 * caller's: they start at buf + head_len.
 *
 * All functions here are pure and may be called from any thread.
 */
#ifndef MESHD_HTTP_H
#define MESHD_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#define HTTP_MAX_HEAD 8192      /* request line + headers + final blank line */
#define HTTP_MAX_HEADERS 64

enum http_method {
	HTTP_GET,
	HTTP_HEAD,
	HTTP_POST,
	HTTP_PUT,
	HTTP_DELETE,
	HTTP_PATCH,
	HTTP_OPTIONS,
	HTTP_OTHER,             /* any other token, including lower-case "get" */
};

/* Name and value point into the caller's buffer and are not NUL-terminated.
 * The value has its leading and trailing whitespace trimmed. */
struct http_header {
	const char *name;
	size_t name_len;
	const char *value;
	size_t value_len;
};

struct http_request {
	enum http_method method;
	const char *method_str;
	size_t method_len;
	const char *target;     /* raw request-target, never normalised or decoded */
	size_t target_len;
	int version_minor;      /* 0 or 1 (HTTP/1.0, HTTP/1.1) */
	struct http_header headers[HTTP_MAX_HEADERS];
	size_t nheaders;
	size_t head_len;        /* bytes of the head, including the blank line */
	long long content_length; /* -1 when absent */
	bool chunked;           /* Transfer-Encoding ends in chunked */
	bool keep_alive;        /* 1.1: unless Connection: close; 1.0: only with Connection: keep-alive */
	bool upgrade;           /* HTTP/1.1 and a Connection header has the token "upgrade" */
	bool upgrade_websocket; /* upgrade and an Upgrade header has the token "websocket" */
};

enum http_parse_result {
	HTTP_PARSE_OK = 0,
	HTTP_PARSE_INCOMPLETE,  /* need more bytes (len < HTTP_MAX_HEAD so far) */
	HTTP_PARSE_TOO_LARGE,   /* head over HTTP_MAX_HEAD or over HTTP_MAX_HEADERS headers: 431 */
	HTTP_PARSE_BAD_REQUEST, /* malformed or ambiguous (smuggling-prone) head: 400 */
	HTTP_PARSE_BAD_VERSION, /* HTTP/x.y other than 1.0 and 1.1: 505 */
};

/* Parses the request head at the start of buf[0..len).  On HTTP_PARSE_OK all
 * of *req is filled in; on any other result *req holds nothing useful.
 *
 * Beyond the syntax of RFC 9112, these are refused with BAD_REQUEST because
 * they let two parsers disagree about where a request ends: whitespace
 * before a header's colon, obs-fold, control characters in a value,
 * Content-Length that is not plain digits (or over 2^53) or that differs
 * between repeats, Transfer-Encoding together with Content-Length, a
 * Transfer-Encoding whose last coding is not chunked, Transfer-Encoding in
 * an HTTP/1.0 request, and more than one Host header.  Empty lines before
 * the request line are skipped (RFC 9112 §2.2); bare LF ends a line as CRLF
 * does.  An HTTP/1.0 request never upgrades (RFC 9110 §7.8). */
enum http_parse_result http_parse_head(const char *buf, size_t len, struct http_request *req)
	__attribute__((warn_unused_result));

/* The first header whose name equals `name` ignoring ASCII case, or NULL. */
const struct http_header *http_find_header(const struct http_request *req, const char *name);

/* Whether h's value, read as a comma-separated list, has an element equal to
 * `token` ignoring ASCII case, with whitespace around elements ignored.
 * False when h is NULL (so the result of http_find_header can be passed
 * straight in) or token is empty. */
bool http_header_has_token(const struct http_header *h, const char *token);

/* Reason phrase for the statuses meshd sends; "Unknown" for any other. */
const char *http_status_text(int status);

#endif
