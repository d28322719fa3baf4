/* fuzz_http — libFuzzer harness for the request-head parser (src/http.c).
 *
 * Build: clang -fsanitize=fuzzer,address,undefined -Iinclude -I<config.h dir>
 *        src/http.c tests/fuzz/fuzz_http.c
 * Run:   ./fuzz_http tests/fuzz/corpus/http
 *
 * Besides memory safety it checks what the callers rely on: an OK request
 * points only inside its head, the flags agree with each other, and the
 * result does not depend on how the bytes were split across reads.
 */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "meshd/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void require(int cond)
{
	if (!cond)
		abort();
}

static int inside(const char *p, size_t n, const char *lo, const char *hi)
{
	return p >= lo && p <= hi && n <= (size_t)(hi - p);
}

/* A prefix is either still INCOMPLETE or already says what the whole says. */
static void check_prefix(const char *buf, size_t k, enum http_parse_result whole,
			 const struct http_request *req)
{
	struct http_request part;
	enum http_parse_result r = http_parse_head(buf, k, &part);

	if (r == HTTP_PARSE_INCOMPLETE)
		return;
	require(r == whole);
	if (r == HTTP_PARSE_OK)
		require(part.head_len == req->head_len);
}

static void check_request(const char *buf, size_t size, const struct http_request *req)
{
	const char *lo = buf, *hi = buf + req->head_len;
	char name[HTTP_MAX_HEAD + 1];

	require(req->head_len <= size && req->head_len <= HTTP_MAX_HEAD);
	require(req->nheaders <= HTTP_MAX_HEADERS);
	require(req->version_minor == 0 || req->version_minor == 1);
	require(inside(req->method_str, req->method_len, lo, hi) && req->method_len > 0);
	require(inside(req->target, req->target_len, lo, hi) && req->target_len > 0);
	require(req->content_length >= -1);
	require(!req->chunked || req->content_length == -1);
	require(!req->upgrade_websocket || req->upgrade);

	for (size_t i = 0; i < req->nheaders; i++) {
		const struct http_header *h = &req->headers[i];
		const struct http_header *found;

		require(inside(h->name, h->name_len, lo, hi) && h->name_len > 0);
		require(inside(h->value, h->value_len, lo, hi));
		/* Header names are tokens, so they never hold a NUL. */
		memcpy(name, h->name, h->name_len);
		name[h->name_len] = '\0';
		found = http_find_header(req, name);
		require(found != NULL && found <= h);
		(void)http_header_has_token(h, "upgrade");
		(void)http_header_has_token(h, "websocket");
		(void)http_header_has_token(h, name);
	}
	(void)http_status_text((int)req->head_len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data;
	struct http_request req;
	enum http_parse_result r = http_parse_head(buf, size, &req);

	if (size > 0) {
		check_prefix(buf, size - 1, r, &req);
		check_prefix(buf, size / 2, r, &req);
	}
	if (r == HTTP_PARSE_OK)
		check_request(buf, size, &req);
	return 0;
}
