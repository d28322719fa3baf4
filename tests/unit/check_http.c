/* check_http — unit tests for the request-head parser (src/http.c).
 *
 * Every input is copied into a heap block of exactly its length before it is
 * parsed, so ASan reports any read past `len`.
 */
#include "config.h"

#include <check.h>

#include "check_run.h"
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "meshd/alloc.h"
#include "meshd/http.h"

static const char *result_name(enum http_parse_result r)
{
	switch (r) {
	case HTTP_PARSE_OK: return "OK";
	case HTTP_PARSE_INCOMPLETE: return "INCOMPLETE";
	case HTTP_PARSE_TOO_LARGE: return "TOO_LARGE";
	case HTTP_PARSE_BAD_REQUEST: return "BAD_REQUEST";
	case HTTP_PARSE_BAD_VERSION: return "BAD_VERSION";
	}
	return "?";
}

/* Parses a heap copy of exactly n bytes; *copy keeps it for the caller,
 * who must xfree() it (the request points into it). */
static enum http_parse_result parse_copy(const char *in, size_t n, struct http_request *req,
					 char **copy)
{
	enum http_parse_result r;

	*copy = xmalloc(n);
	memcpy(*copy, in, n);
	r = http_parse_head(*copy, n, req);
	return r;
}

static void expect_n(const char *in, size_t n, enum http_parse_result want)
{
	struct http_request req;
	char *copy;
	enum http_parse_result r = parse_copy(in, n, &req, &copy);

	xfree(copy);
	/* Check cannot carry long messages: echo only the start of the input. */
	ck_assert_msg(r == want, "input (%zu bytes) %.*s: got %s, want %s", n,
		      (int)(n < 80 ? n : 80), in, result_name(r), result_name(want));
}

static void expect(const char *in, enum http_parse_result want)
{
	expect_n(in, strlen(in), want);
}

/* For literals with a NUL inside, where strlen() would stop short. */
#define EXPECT_LITERAL(lit, want) expect_n(lit, sizeof(lit) - 1, want)

/* Parses a complete, valid request into *req; the caller frees *copy. */
static void parse_ok(const char *in, struct http_request *req, char **copy)
{
	enum http_parse_result r = parse_copy(in, strlen(in), req, copy);

	ck_assert_msg(r == HTTP_PARSE_OK, "input %s: got %s", in, result_name(r));
}

static void assert_span(const char *p, size_t n, const char *want)
{
	ck_assert_uint_eq(n, strlen(want));
	ck_assert_mem_eq(p, want, n);
}

static void assert_header(const struct http_request *req, size_t i, const char *name,
			  const char *value)
{
	ck_assert_uint_lt(i, req->nheaders);
	assert_span(req->headers[i].name, req->headers[i].name_len, name);
	assert_span(req->headers[i].value, req->headers[i].value_len, value);
}

/* Two parses of equal bytes at different addresses must agree, offset for offset. */
static void assert_same_request(const struct http_request *a, const char *abuf,
				const struct http_request *b, const char *bbuf)
{
	ck_assert_int_eq(a->method, b->method);
	ck_assert_int_eq(a->method_str - abuf, b->method_str - bbuf);
	ck_assert_uint_eq(a->method_len, b->method_len);
	ck_assert_int_eq(a->target - abuf, b->target - bbuf);
	ck_assert_uint_eq(a->target_len, b->target_len);
	ck_assert_int_eq(a->version_minor, b->version_minor);
	ck_assert_uint_eq(a->nheaders, b->nheaders);
	for (size_t i = 0; i < a->nheaders; i++) {
		ck_assert_int_eq(a->headers[i].name - abuf, b->headers[i].name - bbuf);
		ck_assert_uint_eq(a->headers[i].name_len, b->headers[i].name_len);
		ck_assert_int_eq(a->headers[i].value - abuf, b->headers[i].value - bbuf);
		ck_assert_uint_eq(a->headers[i].value_len, b->headers[i].value_len);
	}
	ck_assert_uint_eq(a->head_len, b->head_len);
	ck_assert_int_eq(a->content_length, b->content_length);
	ck_assert_int_eq(a->chunked, b->chunked);
	ck_assert_int_eq(a->keep_alive, b->keep_alive);
	ck_assert_int_eq(a->upgrade, b->upgrade);
	ck_assert_int_eq(a->upgrade_websocket, b->upgrade_websocket);
}

/* Feeds every prefix as a fresh read buffer would hold it: all but the full
 * input are INCOMPLETE, and the full input parses as in one go. */
static void check_every_prefix(const char *in)
{
	size_t n = strlen(in);
	struct http_request whole, part;
	char *wcopy, *pcopy;

	parse_ok(in, &whole, &wcopy);
	ck_assert_uint_eq(whole.head_len, n);
	for (size_t k = 0; k < n; k++) {
		enum http_parse_result r = parse_copy(in, k, &part, &pcopy);
		xfree(pcopy);
		ck_assert_msg(r == HTTP_PARSE_INCOMPLETE, "prefix %zu of %zu: got %s", k, n,
			      result_name(r));
	}
	parse_ok(in, &part, &pcopy);
	assert_same_request(&whole, wcopy, &part, pcopy);
	xfree(pcopy);
	xfree(wcopy);
}

START_TEST(test_get_with_headers)
{
	const char *in = "GET /ws HTTP/1.1\r\n"
			 "Host: broker.example:7900\r\n"
			 "User-Agent: meshd-test/1.0\r\n"
			 "Accept: */*\r\n"
			 "X-Empty:\r\n"
			 "X-Spaced: \t inner  value \t\r\n"
			 "\r\n";
	struct http_request req;
	char *copy;

	parse_ok(in, &req, &copy);
	ck_assert_int_eq(req.method, HTTP_GET);
	assert_span(req.method_str, req.method_len, "GET");
	ck_assert_ptr_eq(req.method_str, copy);
	assert_span(req.target, req.target_len, "/ws");
	ck_assert_int_eq(req.version_minor, 1);
	ck_assert_uint_eq(req.nheaders, 5);
	assert_header(&req, 0, "Host", "broker.example:7900");
	assert_header(&req, 1, "User-Agent", "meshd-test/1.0");
	assert_header(&req, 2, "Accept", "*/*");
	assert_header(&req, 3, "X-Empty", "");
	assert_header(&req, 4, "X-Spaced", "inner  value");
	ck_assert_uint_eq(req.head_len, strlen(in));
	ck_assert_int_eq(req.content_length, -1);
	ck_assert(!req.chunked);
	ck_assert(req.keep_alive);
	ck_assert(!req.upgrade);
	ck_assert(!req.upgrade_websocket);
	xfree(copy);
}
END_TEST

START_TEST(test_no_headers_http10)
{
	struct http_request req;
	char *copy;

	parse_ok("HEAD /health HTTP/1.0\r\n\r\n", &req, &copy);
	ck_assert_int_eq(req.method, HTTP_HEAD);
	ck_assert_int_eq(req.version_minor, 0);
	ck_assert_uint_eq(req.nheaders, 0);
	ck_assert(!req.keep_alive);
	xfree(copy);
}
END_TEST

START_TEST(test_methods)
{
	static const struct {
		const char *line;
		enum http_method method;
		const char *str;
	} cases[] = {
		{ "GET / HTTP/1.1\r\n\r\n", HTTP_GET, "GET" },
		{ "HEAD / HTTP/1.1\r\n\r\n", HTTP_HEAD, "HEAD" },
		{ "POST / HTTP/1.1\r\n\r\n", HTTP_POST, "POST" },
		{ "PUT / HTTP/1.1\r\n\r\n", HTTP_PUT, "PUT" },
		{ "DELETE / HTTP/1.1\r\n\r\n", HTTP_DELETE, "DELETE" },
		{ "PATCH / HTTP/1.1\r\n\r\n", HTTP_PATCH, "PATCH" },
		{ "OPTIONS * HTTP/1.1\r\n\r\n", HTTP_OPTIONS, "OPTIONS" },
		/* Methods are case-sensitive (RFC 9110 §9.1). */
		{ "get / HTTP/1.1\r\n\r\n", HTTP_OTHER, "get" },
		{ "Get / HTTP/1.1\r\n\r\n", HTTP_OTHER, "Get" },
		{ "GETS / HTTP/1.1\r\n\r\n", HTTP_OTHER, "GETS" },
		{ "GE / HTTP/1.1\r\n\r\n", HTTP_OTHER, "GE" },
		{ "M-SEARCH * HTTP/1.1\r\n\r\n", HTTP_OTHER, "M-SEARCH" },
		{ "!#$%&'*+-.^_`|~09az / HTTP/1.1\r\n\r\n", HTTP_OTHER, "!#$%&'*+-.^_`|~09az" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct http_request req;
		char *copy;

		parse_ok(cases[i].line, &req, &copy);
		ck_assert_msg(req.method == cases[i].method, "case %zu", i);
		assert_span(req.method_str, req.method_len, cases[i].str);
		xfree(copy);
	}
}
END_TEST

START_TEST(test_raw_target)
{
	static const char *const targets[] = {
		"/health?x=1", "/a%20b", "//x/../y/./z", "/invites/%41bc/claim", "*",
		"http://example.com:80/p?q#f", "/caf\xc3\xa9",
	};

	for (size_t i = 0; i < sizeof(targets) / sizeof(targets[0]); i++) {
		char in[256];
		struct http_request req;
		char *copy;

		strcpy(in, "GET ");
		strcat(in, targets[i]);
		strcat(in, " HTTP/1.1\r\nHost: x\r\n\r\n");
		parse_ok(in, &req, &copy);
		assert_span(req.target, req.target_len, targets[i]);
		xfree(copy);
	}
}
END_TEST

START_TEST(test_split_every_prefix)
{
	check_every_prefix("GET /ws HTTP/1.1\r\n"
			   "Host: localhost:7900\r\n"
			   "Connection: keep-alive, Upgrade\r\n"
			   "Upgrade: websocket\r\n"
			   "Sec-WebSocket-Version: 13\r\n"
			   "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
			   "\r\n");
	check_every_prefix("POST /hook/set-status HTTP/1.1\r\n"
			   "Content-Type: application/json\r\n"
			   "Content-Length: 42\r\n"
			   "\r\n");
	check_every_prefix("\r\n\nGET / HTTP/1.0\nConnection: keep-alive\r\nX-A: b\n\n");
}
END_TEST

START_TEST(test_bytes_after_head)
{
	static const char head[] = "POST /hook/set-status HTTP/1.1\r\n"
				   "Content-Length: 5\r\n"
				   "\r\n";
	static const char ws[] = "GET /ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
				 "\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58";
	static const char pipelined[] = "GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n";
	char in[256];
	struct http_request req;
	char *copy;

	strcpy(in, head);
	strcat(in, "hello");
	parse_ok(in, &req, &copy);
	ck_assert_uint_eq(req.head_len, sizeof(head) - 1);
	ck_assert_int_eq(req.content_length, 5);
	ck_assert_mem_eq(copy + req.head_len, "hello", 5);
	xfree(copy);

	/* A WebSocket frame sent right behind the handshake stays the caller's. */
	ck_assert_int_eq(parse_copy(ws, sizeof(ws) - 1, &req, &copy), HTTP_PARSE_OK);
	ck_assert_uint_eq(req.head_len, sizeof(ws) - 1 - 11);
	ck_assert(req.upgrade_websocket);
	xfree(copy);

	/* A pipelined request is not looked at. */
	parse_ok(pipelined, &req, &copy);
	ck_assert_uint_eq(req.head_len, strlen("GET /a HTTP/1.1\r\n\r\n"));
	assert_span(req.target, req.target_len, "/a");
	xfree(copy);

	/* Garbage after the head does not matter either. */
	EXPECT_LITERAL("GET / HTTP/1.1\r\n\r\n\0\x01\xff", HTTP_PARSE_OK);
}
END_TEST

START_TEST(test_leading_empty_lines)
{
	struct http_request req;
	char *copy;

	parse_ok("\r\n\r\n\nGET / HTTP/1.1\r\n\r\n", &req, &copy);
	ck_assert_ptr_eq(req.method_str, copy + 5);
	ck_assert_uint_eq(req.head_len, 5 + 18);
	xfree(copy);
	expect("\r\n", HTTP_PARSE_INCOMPLETE);
	expect("\r\n\r\n\r", HTTP_PARSE_INCOMPLETE);
	/* Whitespace-only lines are not empty lines. */
	expect(" \r\nGET / HTTP/1.1\r\n\r\n", HTTP_PARSE_BAD_REQUEST);
}
END_TEST

START_TEST(test_bare_lf)
{
	struct http_request req;
	char *copy;

	parse_ok("GET / HTTP/1.1\nHost: x\n\n", &req, &copy);
	ck_assert_uint_eq(req.head_len, 24);
	assert_header(&req, 0, "Host", "x");
	xfree(copy);
	parse_ok("GET / HTTP/1.1\r\nHost: x\n\r\n", &req, &copy);
	ck_assert_uint_eq(req.head_len, 26);
	xfree(copy);
	/* A bare CR is not a line end. */
	expect("GET / HTTP/1.1\rHost: x\r\n\r\n", HTTP_PARSE_BAD_REQUEST);
	expect("GET / HTTP/1.1\r\nHost: x\r\r\n\r\n", HTTP_PARSE_BAD_REQUEST);
	expect("GET / HTTP/1.1\r\nHost: x\r\n\r\r\n", HTTP_PARSE_BAD_REQUEST);
}
END_TEST

/* "GET / HTTP/1.1\r\nX-Pad: aaa...\r\n\r\n" with a head of exactly `total` bytes;
 * returns its length.  buf must hold total + extra bytes. */
static size_t build_padded(char *buf, size_t total)
{
	static const char pre[] = "GET / HTTP/1.1\r\nX-Pad: ";
	static const char post[] = "\r\n\r\n";
	size_t pad = total - (sizeof(pre) - 1) - (sizeof(post) - 1);

	memcpy(buf, pre, sizeof(pre) - 1);
	memset(buf + sizeof(pre) - 1, 'a', pad);
	memcpy(buf + sizeof(pre) - 1 + pad, post, sizeof(post) - 1);
	return total;
}

static char big[3 * HTTP_MAX_HEAD];

START_TEST(test_head_at_limit)
{
	size_t n = build_padded(big, HTTP_MAX_HEAD);
	struct http_request req;
	char *copy;

	ck_assert_int_eq(parse_copy(big, n, &req, &copy), HTTP_PARSE_OK);
	ck_assert_uint_eq(req.head_len, HTTP_MAX_HEAD);
	ck_assert_uint_eq(req.headers[0].value_len, HTTP_MAX_HEAD - 27);
	xfree(copy);
	/* Body bytes behind a head at the limit are fine. */
	memcpy(big + n, "body", 4);
	ck_assert_int_eq(parse_copy(big, n + 4, &req, &copy), HTTP_PARSE_OK);
	ck_assert_uint_eq(req.head_len, HTTP_MAX_HEAD);
	xfree(copy);
	for (size_t k = n - 4; k < n; k++)
		expect_n(big, k, HTTP_PARSE_INCOMPLETE);
}
END_TEST

START_TEST(test_head_over_limit)
{
	size_t n = build_padded(big, HTTP_MAX_HEAD + 1);

	expect_n(big, n, HTTP_PARSE_TOO_LARGE);
	expect_n(big, n + 100, HTTP_PARSE_TOO_LARGE);
	/* Incomplete and already past the limit. */
	expect_n(big, HTTP_MAX_HEAD + 1, HTTP_PARSE_TOO_LARGE);
	expect_n(big, HTTP_MAX_HEAD - 1, HTTP_PARSE_INCOMPLETE);
	/* A full buffer without a complete head can only end past the limit. */
	expect_n(big, HTTP_MAX_HEAD, HTTP_PARSE_TOO_LARGE);

	/* One endless request line, and one endless stream of headers. */
	memcpy(big, "GET /", 5);
	memset(big + 5, 'a', sizeof(big) - 5);
	expect_n(big, HTTP_MAX_HEAD + 1, HTTP_PARSE_TOO_LARGE);
	expect_n(big, sizeof(big), HTTP_PARSE_TOO_LARGE);
	memcpy(big, "GET / HTTP/1.1\r\n", 16);
	for (size_t i = 16; i + 8 <= sizeof(big); i += 8)
		memcpy(big + i, "X-A: b\r\n", 8);
	expect_n(big, HTTP_MAX_HEAD + 1, HTTP_PARSE_TOO_LARGE);
}
END_TEST

static size_t build_headers(char *buf, size_t count)
{
	size_t n = 0;

	memcpy(buf, "GET / HTTP/1.1\r\n", 16);
	n = 16;
	for (size_t i = 0; i < count; i++) {
		memcpy(buf + n, "X-H: v\r\n", 8);
		n += 8;
	}
	memcpy(buf + n, "\r\n", 2);
	return n + 2;
}

START_TEST(test_header_count)
{
	struct http_request req;
	char *copy;
	size_t n = build_headers(big, HTTP_MAX_HEADERS);

	ck_assert_int_eq(parse_copy(big, n, &req, &copy), HTTP_PARSE_OK);
	ck_assert_uint_eq(req.nheaders, HTTP_MAX_HEADERS);
	assert_header(&req, HTTP_MAX_HEADERS - 1, "X-H", "v");
	xfree(copy);
	n = build_headers(big, HTTP_MAX_HEADERS + 1);
	expect_n(big, n, HTTP_PARSE_TOO_LARGE);
	/* Known as soon as the 65th header line is complete. */
	expect_n(big, n - 2, HTTP_PARSE_TOO_LARGE);
}
END_TEST

START_TEST(test_bad_method)
{
	static const char *const bad[] = {
		"G@T / HTTP/1.1\r\n\r\n", "GE(T / HTTP/1.1\r\n\r\n", "[GET] / HTTP/1.1\r\n\r\n",
		"GET\x7f / HTTP/1.1\r\n\r\n", "G\x80T / HTTP/1.1\r\n\r\n", "GE\"T / HTTP/1.1\r\n\r\n",
		"GET\t/ HTTP/1.1\r\n\r\n", " GET / HTTP/1.1\r\n\r\n", "GET/ HTTP/1.1\r\n\r\n",
		"GET:/ HTTP/1.1\r\n\r\n", "/ HTTP/1.1\r\n\r\n",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect(bad[i], HTTP_PARSE_BAD_REQUEST);
	EXPECT_LITERAL("G\0T / HTTP/1.1\r\n\r\n", HTTP_PARSE_BAD_REQUEST);
	/* A method that cannot become a token is refused before its line ends
	 * (a TLS ClientHello on the plain port, say). */
	expect("\x16\x03\x01\x02\x00\x01", HTTP_PARSE_BAD_REQUEST);
	expect("G{", HTTP_PARSE_BAD_REQUEST);
	expect(" ", HTTP_PARSE_BAD_REQUEST);
	expect("GET\r", HTTP_PARSE_BAD_REQUEST);
	expect("\r\r", HTTP_PARSE_BAD_REQUEST);
	expect("GE", HTTP_PARSE_INCOMPLETE);
	expect("GET /\x01", HTTP_PARSE_INCOMPLETE);
	expect("\r", HTTP_PARSE_INCOMPLETE);
}
END_TEST

START_TEST(test_bad_request_line)
{
	static const char *const bad[] = {
		"GET  / HTTP/1.1\r\n\r\n",      /* two SP */
		"GET /  HTTP/1.1\r\n\r\n",
		"GET / HTTP/1.1 \r\n\r\n",      /* trailing SP */
		"GET /a b HTTP/1.1\r\n\r\n",    /* SP in target */
		"GET /\r\n\r\n",                /* HTTP/0.9 style */
		"GET / \r\n\r\n",
		"GET\r\n\r\n",
		"GET /\x01 HTTP/1.1\r\n\r\n",
		"GET /\x7f HTTP/1.1\r\n\r\n",
		"GET /\t HTTP/1.1\r\n\r\n",
		"GET /\r HTTP/1.1\r\n\r\n",
		"GET /\tx HTTP/1.1\r\n\r\n",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect(bad[i], HTTP_PARSE_BAD_REQUEST);
	EXPECT_LITERAL("GET /\0 HTTP/1.1\r\n\r\n", HTTP_PARSE_BAD_REQUEST);
}
END_TEST

START_TEST(test_bad_version)
{
	static const char *const unsupported[] = {
		"GET / HTTP/2.0\r\n\r\n", "GET / HTTP/0.9\r\n\r\n", "GET / HTTP/1.2\r\n\r\n",
		"GET / HTTP/1.9\r\n\r\n", "GET / HTTP/3.1\r\n\r\n", "GET / HTTP/9.9\r\n\r\n",
	};
	static const char *const garbage[] = {
		"GET / HTTP/1.x\r\n\r\n", "GET / HTTP/x.1\r\n\r\n", "GET / HTTP/1.1x\r\n\r\n",
		"GET / HTTP/1.10\r\n\r\n", "GET / HTTP/11\r\n\r\n", "GET / HTTP/1\r\n\r\n",
		"GET / HTTP/2\r\n\r\n", "GET / http/1.1\r\n\r\n", "GET / Http/1.1\r\n\r\n",
		"GET / FOO/1.1\r\n\r\n", "GET / HTTP 1.1\r\n\r\n", "GET / HTTP/1,1\r\n\r\n",
		"GET / HTTP/\r\n\r\n", "GET / /1.1\r\n\r\n", "GET / HTTP/1.1\x01\r\n\r\n",
	};

	for (size_t i = 0; i < sizeof(unsupported) / sizeof(unsupported[0]); i++)
		expect(unsupported[i], HTTP_PARSE_BAD_VERSION);
	for (size_t i = 0; i < sizeof(garbage) / sizeof(garbage[0]); i++)
		expect(garbage[i], HTTP_PARSE_BAD_REQUEST);
	/* Known once the request line is complete, before the headers are. */
	expect("GET / HTTP/2.0\r\nHost: x", HTTP_PARSE_BAD_VERSION);
}
END_TEST

START_TEST(test_space_before_colon)
{
	expect("GET / HTTP/1.1\r\nHost : x\r\n\r\n", HTTP_PARSE_BAD_REQUEST);
	expect("GET / HTTP/1.1\r\nHost\t: x\r\n\r\n", HTTP_PARSE_BAD_REQUEST);
	expect("POST / HTTP/1.1\r\nContent-Length : 5\r\n\r\n", HTTP_PARSE_BAD_REQUEST);
	expect("POST / HTTP/1.1\r\nTransfer-Encoding :chunked\r\n\r\n", HTTP_PARSE_BAD_REQUEST);
	/* Detected as soon as the line is complete. */
	expect("GET / HTTP/1.1\r\nHost : x\r\n", HTTP_PARSE_BAD_REQUEST);
}
END_TEST

START_TEST(test_obs_fold)
{
	expect("GET / HTTP/1.1\r\nX-A: a\r\n b\r\n\r\n", HTTP_PARSE_BAD_REQUEST);
	expect("GET / HTTP/1.1\r\nX-A: a\r\n\tb\r\n\r\n", HTTP_PARSE_BAD_REQUEST);
	expect("GET / HTTP/1.1\n X-A: a\n\n", HTTP_PARSE_BAD_REQUEST);
	expect("GET / HTTP/1.1\r\n \r\n\r\n", HTTP_PARSE_BAD_REQUEST);
}
END_TEST

START_TEST(test_header_syntax)
{
	struct http_request req;
	char *copy;

	expect("GET / HTTP/1.1\r\n: x\r\n\r\n", HTTP_PARSE_BAD_REQUEST);
	expect("GET / HTTP/1.1\r\nNoColon\r\n\r\n", HTTP_PARSE_BAD_REQUEST);
	expect("GET / HTTP/1.1\r\nX(A): b\r\n\r\n", HTTP_PARSE_BAD_REQUEST);
	expect("GET / HTTP/1.1\r\nX/A: b\r\n\r\n", HTTP_PARSE_BAD_REQUEST);
	expect("GET / HTTP/1.1\r\nX-A: a\rb\r\n\r\n", HTTP_PARSE_BAD_REQUEST);
	expect("GET / HTTP/1.1\r\nX-A: \x7f\r\n\r\n", HTTP_PARSE_BAD_REQUEST);
	expect("GET / HTTP/1.1\r\nX-A: \x1b[0m\r\n\r\n", HTTP_PARSE_BAD_REQUEST);
	EXPECT_LITERAL("GET / HTTP/1.1\r\nX-A: a\0b\r\n\r\n", HTTP_PARSE_BAD_REQUEST);

	parse_ok("GET / HTTP/1.1\r\n"
		 "X-A: a:b\r\n"
		 "X-B:\tc\td\t\r\n"
		 "X-C:   \r\n"
		 "X-D: caf\xc3\xa9\r\n"
		 "x-lower!#$%&'*+.^_`|~: 1\r\n"
		 "\r\n",
		 &req, &copy);
	ck_assert_uint_eq(req.nheaders, 5);
	assert_header(&req, 0, "X-A", "a:b");
	assert_header(&req, 1, "X-B", "c\td");
	assert_header(&req, 2, "X-C", "");
	assert_header(&req, 3, "X-D", "caf\xc3\xa9");
	assert_header(&req, 4, "x-lower!#$%&'*+.^_`|~", "1");
	xfree(copy);
}
END_TEST

START_TEST(test_duplicate_host)
{
	expect("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", HTTP_PARSE_BAD_REQUEST);
	expect("GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n", HTTP_PARSE_BAD_REQUEST);
	/* A missing Host is the caller's business. */
	expect("GET / HTTP/1.1\r\n\r\n", HTTP_PARSE_OK);
}
END_TEST

static long long content_length_of(const char *in)
{
	struct http_request req;
	char *copy;
	long long cl;

	parse_ok(in, &req, &copy);
	cl = req.content_length;
	xfree(copy);
	return cl;
}

START_TEST(test_content_length)
{
	static const char *const bad[] = {
		"", "+5", "-1", "5 5", "5,5", "5, 5", "0x10", "5a", "1e3", "\xd9\xa5",
		"9007199254740993", "99999999999999999999", "18446744073709551621",
	};

	ck_assert_int_eq(content_length_of("POST / HTTP/1.1\r\n\r\n"), -1);
	ck_assert_int_eq(content_length_of("POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n"), 0);
	ck_assert_int_eq(content_length_of("POST / HTTP/1.1\r\ncontent-length:42\r\n\r\n"), 42);
	ck_assert_int_eq(content_length_of("POST / HTTP/1.1\r\nContent-Length:  7 \t\r\n\r\n"), 7);
	ck_assert_int_eq(content_length_of("POST / HTTP/1.1\r\nContent-Length: 007\r\n\r\n"), 7);
	ck_assert_int_eq(content_length_of("POST / HTTP/1.1\r\n"
					   "Content-Length: 9007199254740992\r\n\r\n"),
			 9007199254740992LL);
	ck_assert_int_eq(content_length_of("POST / HTTP/1.0\r\nContent-Length: 3\r\n\r\n"), 3);
	/* Repeats of one value are harmless (RFC 9112 §6.3). */
	ck_assert_int_eq(content_length_of("POST / HTTP/1.1\r\n"
					   "Content-Length: 5\r\nX: y\r\nCONTENT-LENGTH: 5\r\n\r\n"),
			 5);
	expect("POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
	       HTTP_PARSE_BAD_REQUEST);
	expect("POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 0\r\n\r\n",
	       HTTP_PARSE_BAD_REQUEST);
	expect("POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: x\r\n\r\n",
	       HTTP_PARSE_BAD_REQUEST);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char in[128];

		strcpy(in, "POST / HTTP/1.1\r\nContent-Length: ");
		strcat(in, bad[i]);
		strcat(in, "\r\n\r\n");
		expect(in, HTTP_PARSE_BAD_REQUEST);
	}
}
END_TEST

START_TEST(test_chunked)
{
	static const char *const ok[] = {
		"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
		"POST / HTTP/1.1\r\ntransfer-encoding: Chunked\r\n\r\n",
		"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
		"POST / HTTP/1.1\r\nTransfer-Encoding: gzip,chunked ,\r\n\r\n",
		"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n",
	};
	static const char *const bad[] = {
		/* Both framings: a smuggling attempt (RFC 9112 §6.1). */
		"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
		"POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
		"POST / HTTP/1.1\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n",
		/* Final coding not chunked: no knowable length (RFC 9112 §6.3). */
		"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
		"POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
		"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n",
		"POST / HTTP/1.1\r\nTransfer-Encoding: chunked;x=1\r\n\r\n",
		"POST / HTTP/1.1\r\nTransfer-Encoding: xchunked\r\n\r\n",
		"POST / HTTP/1.1\r\nTransfer-Encoding:\r\n\r\n",
		"POST / HTTP/1.1\r\nTransfer-Encoding: ,\r\n\r\n",
		/* Transfer-Encoding in HTTP/1.0 is faulty framing (RFC 9112 §6.1). */
		"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
	};

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		struct http_request req;
		char *copy;

		parse_ok(ok[i], &req, &copy);
		ck_assert_msg(req.chunked, "case %zu", i);
		ck_assert_int_eq(req.content_length, -1);
		xfree(copy);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect(bad[i], HTTP_PARSE_BAD_REQUEST);
}
END_TEST

START_TEST(test_keep_alive)
{
	static const struct {
		const char *in;
		bool keep_alive;
	} cases[] = {
		{ "GET / HTTP/1.1\r\n\r\n", true },
		{ "GET / HTTP/1.1\r\nConnection: keep-alive\r\n\r\n", true },
		{ "GET / HTTP/1.1\r\nConnection: close\r\n\r\n", false },
		{ "GET / HTTP/1.1\r\nConnection: Close\r\n\r\n", false },
		{ "GET / HTTP/1.1\r\nConnection: foo, CLOSE\r\n\r\n", false },
		{ "GET / HTTP/1.1\r\nConnection: closed\r\n\r\n", true },
		{ "GET / HTTP/1.1\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n", false },
		{ "GET / HTTP/1.0\r\n\r\n", false },
		{ "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", true },
		{ "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", true },
		{ "GET / HTTP/1.0\r\nConnection: x, keep-alive\r\n\r\n", true },
		{ "GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", false },
		{ "GET / HTTP/1.0\r\nConnection: keepalive\r\n\r\n", false },
		{ "GET / HTTP/1.0\r\nKeep-Alive: timeout=5\r\n\r\n", false },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct http_request req;
		char *copy;

		parse_ok(cases[i].in, &req, &copy);
		ck_assert_msg(req.keep_alive == cases[i].keep_alive, "case %zu: %s", i, cases[i].in);
		xfree(copy);
	}
}
END_TEST

START_TEST(test_websocket_upgrade)
{
	static const struct {
		const char *headers;
		bool upgrade;
		bool websocket;
	} cases[] = {
		{ "Connection: Upgrade\r\nUpgrade: websocket\r\n", true, true },
		{ "Connection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n", true, true },
		{ "connection: keep-alive,upgrade\r\nupgrade: WebSocket\r\n", true, true },
		{ "Upgrade: websocket\r\nConnection: UPGRADE\r\n", true, true },
		{ "Connection: keep-alive\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n", true, true },
		{ "Connection: Upgrade\r\nUpgrade: h2c, websocket\r\n", true, true },
		{ "Connection: Upgrade\r\nUpgrade: h2c\r\n", true, false },
		{ "Connection: Upgrade\r\n", true, false },
		{ "Connection: Upgrade\r\nUpgrade: websockets\r\n", true, false },
		{ "Connection: keep-alive\r\nUpgrade: websocket\r\n", false, false },
		{ "Upgrade: websocket\r\n", false, false },
		{ "Connection: upgraded\r\nUpgrade: websocket\r\n", false, false },
		{ "Connection: keep-alive Upgrade\r\nUpgrade: websocket\r\n", false, false },
		{ "Connection: \"Upgrade\"\r\nUpgrade: websocket\r\n", false, false },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char in[256];
		struct http_request req;
		char *copy;

		strcpy(in, "GET /ws HTTP/1.1\r\nHost: x\r\n");
		strcat(in, cases[i].headers);
		strcat(in, "\r\n");
		parse_ok(in, &req, &copy);
		ck_assert_msg(req.upgrade == cases[i].upgrade, "case %zu: upgrade", i);
		ck_assert_msg(req.upgrade_websocket == cases[i].websocket, "case %zu: websocket", i);
		xfree(copy);
	}
}
END_TEST

START_TEST(test_no_upgrade_in_http10)
{
	struct http_request req;
	char *copy;

	/* RFC 9110 §7.8: a server ignores Upgrade in an HTTP/1.0 request. */
	parse_ok("GET /ws HTTP/1.0\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", &req,
		 &copy);
	ck_assert(!req.upgrade);
	ck_assert(!req.upgrade_websocket);
	xfree(copy);
}
END_TEST

START_TEST(test_find_header)
{
	struct http_request req;
	char *copy;
	const struct http_header *h;

	parse_ok("GET / HTTP/1.1\r\n"
		 "Host: one\r\n"
		 "X-Dup: first\r\n"
		 "x-dup: second\r\n"
		 "Sec-WebSocket-Key: k\r\n"
		 "\r\n",
		 &req, &copy);
	h = http_find_header(&req, "host");
	ck_assert_ptr_nonnull(h);
	assert_span(h->value, h->value_len, "one");
	ck_assert_ptr_eq(http_find_header(&req, "HOST"), h);
	ck_assert_ptr_eq(http_find_header(&req, "Host"), h);
	h = http_find_header(&req, "X-DUP");
	ck_assert_ptr_eq(h, &req.headers[1]);
	h = http_find_header(&req, "sec-websocket-key");
	ck_assert_ptr_eq(h, &req.headers[3]);
	ck_assert_ptr_null(http_find_header(&req, "Hos"));
	ck_assert_ptr_null(http_find_header(&req, "Hostx"));
	ck_assert_ptr_null(http_find_header(&req, ""));
	ck_assert_ptr_null(http_find_header(&req, "Content-Length"));
	xfree(copy);
}
END_TEST

static bool has_token(const char *value, size_t value_len, const char *token)
{
	struct http_header h = { "X", 1, value, value_len };

	return http_header_has_token(&h, token);
}

static bool has(const char *value, const char *token)
{
	return has_token(value, strlen(value), token);
}

START_TEST(test_header_has_token)
{
	ck_assert(has("a", "a"));
	ck_assert(has("A", "a"));
	ck_assert(has("a", "A"));
	ck_assert(has(" a ", "a"));
	ck_assert(has("x,a", "a"));
	ck_assert(has("a,x", "a"));
	ck_assert(has("x , \ta\t, y", "a"));
	ck_assert(has(",,a,,", "a"));
	ck_assert(has("keep-alive, Upgrade", "upgrade"));
	ck_assert(!has("", "a"));
	ck_assert(!has(" , ,,\t", "a"));
	ck_assert(!has("ab", "a"));
	ck_assert(!has("a", "ab"));
	ck_assert(!has("b a", "a"));
	ck_assert(!has("upgrade-insecure-requests", "upgrade"));
	ck_assert(!has("a;q=1", "a"));
	ck_assert(!has("a", ""));
	ck_assert(!has(",", ""));
	ck_assert(!has("", ""));
	ck_assert(!http_header_has_token(NULL, "a"));
	/* The value is a counted span, not a C string. */
	ck_assert(has_token("closeXYZ", 5, "close"));
	ck_assert(!has_token("closeXYZ", 4, "close"));
	ck_assert(!has_token("close", 0, "close"));
}
END_TEST

START_TEST(test_status_text)
{
	static const struct {
		int status;
		const char *text;
	} cases[] = {
		{ 101, "Switching Protocols" },
		{ 200, "OK" },
		{ 204, "No Content" },
		{ 400, "Bad Request" },
		{ 404, "Not Found" },
		{ 405, "Method Not Allowed" },
		{ 408, "Request Timeout" },
		{ 411, "Length Required" },
		{ 413, "Payload Too Large" },
		{ 426, "Upgrade Required" },
		{ 429, "Too Many Requests" },
		{ 431, "Request Header Fields Too Large" },
		{ 500, "Internal Server Error" },
		{ 501, "Not Implemented" },
		{ 503, "Service Unavailable" },
		{ 505, "HTTP Version Not Supported" },
		{ 0, "Unknown" },
		{ -1, "Unknown" },
		{ 201, "Unknown" },
		{ 302, "Unknown" },
		{ 999, "Unknown" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		ck_assert_str_eq(http_status_text(cases[i].status), cases[i].text);
}
END_TEST

/* Deterministic pseudo-random mutations of valid requests.  Whatever the
 * bytes, an OK result points inside the head, and the result never depends
 * on how the input was split: a prefix is INCOMPLETE or gives the same
 * answer as the whole. */
static uint32_t rng_state;

static uint32_t rng(void)
{
	/* xorshift32: a fixed seed gives the same inputs on every run. */
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 17;
	rng_state ^= rng_state << 5;
	return rng_state;
}

static void check_invariants(const char *buf, size_t n)
{
	struct http_request whole, part;
	char *wcopy, *pcopy;
	enum http_parse_result r = parse_copy(buf, n, &whole, &wcopy);

	if (r == HTTP_PARSE_OK) {
		const char *lo = wcopy, *hi = wcopy + whole.head_len;

		ck_assert_uint_le(whole.head_len, n);
		ck_assert_uint_le(whole.head_len, HTTP_MAX_HEAD);
		ck_assert_uint_le(whole.nheaders, HTTP_MAX_HEADERS);
		ck_assert(whole.method_str >= lo && whole.method_str + whole.method_len <= hi);
		ck_assert(whole.target >= lo && whole.target + whole.target_len <= hi);
		for (size_t i = 0; i < whole.nheaders; i++) {
			const struct http_header *h = &whole.headers[i];
			ck_assert(h->name >= lo && h->name + h->name_len <= hi);
			ck_assert(h->value >= lo && h->value + h->value_len <= hi);
		}
	}
	for (size_t k = 0; k < n; k++) {
		enum http_parse_result pr = parse_copy(buf, k, &part, &pcopy);
		xfree(pcopy);
		if (pr == HTTP_PARSE_INCOMPLETE)
			continue;
		ck_assert_msg(pr == r, "prefix %zu of %zu: %s vs %s", k, n, result_name(pr),
			      result_name(r));
		if (r == HTTP_PARSE_OK)
			ck_assert_uint_eq(part.head_len, whole.head_len);
	}
	xfree(wcopy);
}

START_TEST(test_mutations)
{
	static const char *const seeds[] = {
		"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
		"POST /hook/set-status HTTP/1.1\r\nContent-Length: 12\r\n\r\n{\"a\":1}",
		"\nPUT /x HTTP/1.0\nTransfer-Encoding: chunked\nA: b\n\n",
	};
	static const char alphabet[] = "\r\n :,\t\0aA1/.HTTP";
	char buf[256];

	rng_state = 12345;
	for (int iter = 0; iter < 600; iter++) {
		const char *seed = seeds[iter % 3];
		size_t n = strlen(seed);
		int edits = 1 + (int)(rng() % 4);

		memcpy(buf, seed, n);
		for (int e = 0; e < edits; e++) {
			size_t at = rng() % n;
			switch (rng() % 3) {
			case 0: /* replace */
				buf[at] = (rng() & 1) ? (char)(rng() & 0xff)
						       : alphabet[rng() % (sizeof(alphabet) - 1)];
				break;
			case 1: /* delete */
				memmove(buf + at, buf + at + 1, n - at - 1);
				n--;
				break;
			default: /* insert */
				if (n + 1 < sizeof(buf)) {
					memmove(buf + at + 1, buf + at, n - at);
					buf[at] = alphabet[rng() % (sizeof(alphabet) - 1)];
					n++;
				}
				break;
			}
			if (n == 0)
				break;
		}
		check_invariants(buf, n);
	}
}
END_TEST

static Suite *http_suite(void)
{
	Suite *s = suite_create("http");
	TCase *parse = tcase_create("parse");
	TCase *limits = tcase_create("limits");
	TCase *reject = tcase_create("reject");
	TCase *semantics = tcase_create("semantics");
	TCase *helpers = tcase_create("helpers");

	tcase_add_test(parse, test_get_with_headers);
	tcase_add_test(parse, test_no_headers_http10);
	tcase_add_test(parse, test_methods);
	tcase_add_test(parse, test_raw_target);
	tcase_add_test(parse, test_split_every_prefix);
	tcase_add_test(parse, test_bytes_after_head);
	tcase_add_test(parse, test_leading_empty_lines);
	tcase_add_test(parse, test_bare_lf);
	tcase_add_test(parse, test_mutations);
	suite_add_tcase(s, parse);

	tcase_add_test(limits, test_head_at_limit);
	tcase_add_test(limits, test_head_over_limit);
	tcase_add_test(limits, test_header_count);
	suite_add_tcase(s, limits);

	tcase_add_test(reject, test_bad_method);
	tcase_add_test(reject, test_bad_request_line);
	tcase_add_test(reject, test_bad_version);
	tcase_add_test(reject, test_space_before_colon);
	tcase_add_test(reject, test_obs_fold);
	tcase_add_test(reject, test_header_syntax);
	tcase_add_test(reject, test_duplicate_host);
	suite_add_tcase(s, reject);

	tcase_add_test(semantics, test_content_length);
	tcase_add_test(semantics, test_chunked);
	tcase_add_test(semantics, test_keep_alive);
	tcase_add_test(semantics, test_websocket_upgrade);
	tcase_add_test(semantics, test_no_upgrade_in_http10);
	suite_add_tcase(s, semantics);

	tcase_add_test(helpers, test_find_header);
	tcase_add_test(helpers, test_header_has_token);
	tcase_add_test(helpers, test_status_text);
	suite_add_tcase(s, helpers);
	return s;
}

int main(void)
{
	return check_run(http_suite());
}
