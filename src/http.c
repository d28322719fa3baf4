/* http — bounded, stateless request-head parser; see include/meshd/http.h. */
#include "config.h"

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "meshd/http.h"

/* Content-Length above this is refused: it is far beyond any body we accept
 * and every value up to it is exact in a double (JSON, metrics). */
#define CONTENT_LENGTH_MAX (1LL << 53)

static const struct {
	const char *name;
	size_t len;
	enum http_method method;
} methods[] = {
	{ "GET", 3, HTTP_GET },
	{ "HEAD", 4, HTTP_HEAD },
	{ "POST", 4, HTTP_POST },
	{ "PUT", 3, HTTP_PUT },
	{ "DELETE", 6, HTTP_DELETE },
	{ "PATCH", 5, HTTP_PATCH },
	{ "OPTIONS", 7, HTTP_OPTIONS },
};

/* RFC 9110 §5.6.2 tchar.  A switch rather than strchr(), which would also
 * match the terminating NUL. */
static bool is_tchar(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return true;
	switch (c) {
	case '!': case '#': case '$': case '%': case '&': case '\'': case '*':
	case '+': case '-': case '.': case '^': case '_': case '`': case '|': case '~':
		return true;
	default:
		return false;
	}
}

static bool is_ows(char c)
{
	return c == ' ' || c == '\t';
}

static bool is_token(const char *s, size_t n)
{
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!is_tchar((unsigned char)s[i]))
			return false;
	return true;
}

/* Locale-independent: header names and tokens are ASCII by definition. */
static char ascii_lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

static bool ascii_ieq(const char *a, size_t alen, const char *b, size_t blen)
{
	if (alen != blen)
		return false;
	for (size_t i = 0; i < alen; i++)
		if (ascii_lower(a[i]) != ascii_lower(b[i]))
			return false;
	return true;
}

static bool header_is(const struct http_header *h, const char *name)
{
	return ascii_ieq(h->name, h->name_len, name, strlen(name));
}

/* Steps to the next non-empty element of a comma-separated list in
 * [*pos, end), trimmed of OWS.  False when the list has no more elements. */
static bool list_next(const char **pos, const char *end, const char **elem, size_t *elem_len)
{
	const char *p = *pos;

	while (p < end) {
		const char *comma = memchr(p, ',', (size_t)(end - p));
		const char *stop = comma ? comma : end;
		const char *a = p, *b = stop;

		p = comma ? comma + 1 : end;
		while (a < b && is_ows(*a))
			a++;
		while (b > a && is_ows(b[-1]))
			b--;
		if (a < b) {
			*pos = p;
			*elem = a;
			*elem_len = (size_t)(b - a);
			return true;
		}
	}
	*pos = end;
	return false;
}

/* The next line in [*pos, end), without its LF or CRLF.  False when no LF
 * has arrived yet, i.e. the line is not complete. */
static bool line_next(const char **pos, const char *end, const char **line, size_t *line_len)
{
	const char *p = *pos;
	const char *lf = memchr(p, '\n', (size_t)(end - p));
	size_t n;

	if (!lf)
		return false;
	n = (size_t)(lf - p);
	if (n > 0 && p[n - 1] == '\r')
		n--;
	*line = p;
	*line_len = n;
	*pos = lf + 1;
	return true;
}

static enum http_method method_from(const char *s, size_t n)
{
	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
		if (methods[i].len == n && memcmp(methods[i].name, s, n) == 0)
			return methods[i].method;
	return HTTP_OTHER;
}

/* "HTTP/" DIGIT "." DIGIT and nothing else is a version; anything that does
 * not look like one is a bad request, not an unsupported version. */
static enum http_parse_result parse_version(const char *p, size_t n, int *minor)
{
	if (n != 8 || memcmp(p, "HTTP/", 5) != 0 || p[5] < '0' || p[5] > '9' || p[6] != '.' ||
	    p[7] < '0' || p[7] > '9')
		return HTTP_PARSE_BAD_REQUEST;
	if (p[5] != '1' || (p[7] != '0' && p[7] != '1'))
		return HTTP_PARSE_BAD_VERSION;
	*minor = p[7] - '0';
	return HTTP_PARSE_OK;
}

/* method SP request-target SP HTTP-version, exactly one SP each. */
static enum http_parse_result parse_request_line(const char *line, size_t n,
						 struct http_request *req)
{
	const char *end = line + n;
	const char *sp1 = memchr(line, ' ', n);
	const char *target, *sp2;

	if (!sp1 || !is_token(line, (size_t)(sp1 - line)))
		return HTTP_PARSE_BAD_REQUEST;
	target = sp1 + 1;
	sp2 = memchr(target, ' ', (size_t)(end - target));
	if (!sp2 || sp2 == target)
		return HTTP_PARSE_BAD_REQUEST;
	/* Routing compares the raw target, so anything that is not a visible
	 * byte (controls, DEL, a bare CR) is refused rather than passed on. */
	for (const char *p = target; p < sp2; p++) {
		unsigned char c = (unsigned char)*p;
		if (c <= 0x20 || c == 0x7f)
			return HTTP_PARSE_BAD_REQUEST;
	}
	req->method_str = line;
	req->method_len = (size_t)(sp1 - line);
	req->method = method_from(line, req->method_len);
	req->target = target;
	req->target_len = (size_t)(sp2 - target);
	return parse_version(sp2 + 1, (size_t)(end - sp2 - 1), &req->version_minor);
}

/* field-name ":" OWS field-value OWS (RFC 9112 §5). */
static enum http_parse_result parse_header_line(const char *line, size_t n, struct http_header *h)
{
	const char *end = line + n;
	const char *colon, *v, *ve;

	/* obs-fold: a continuation line.  Refused rather than unfolded, as
	 * RFC 9112 §5.2 allows, because proxies disagree about it. */
	if (is_ows(line[0]))
		return HTTP_PARSE_BAD_REQUEST;
	colon = memchr(line, ':', n);
	/* is_token() also refuses "Name :" — whitespace before the colon is a
	 * classic smuggling vector (RFC 9112 §5.1). */
	if (!colon || !is_token(line, (size_t)(colon - line)))
		return HTTP_PARSE_BAD_REQUEST;
	v = colon + 1;
	ve = end;
	while (v < ve && is_ows(*v))
		v++;
	while (ve > v && is_ows(ve[-1]))
		ve--;
	/* field-vchar, obs-text, SP and HTAB only: NUL, bare CR and the other
	 * controls are refused (RFC 9110 §5.5). */
	for (const char *p = v; p < ve; p++) {
		unsigned char c = (unsigned char)*p;
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return HTTP_PARSE_BAD_REQUEST;
	}
	h->name = line;
	h->name_len = (size_t)(colon - line);
	h->value = v;
	h->value_len = (size_t)(ve - v);
	return HTTP_PARSE_OK;
}

/* 1*DIGIT, no sign, no list, no whitespace inside. */
static bool parse_content_length(const struct http_header *h, long long *out)
{
	long long v = 0;

	if (h->value_len == 0)
		return false;
	for (size_t i = 0; i < h->value_len; i++) {
		char c = h->value[i];
		if (c < '0' || c > '9')
			return false;
		if (v > (CONTENT_LENGTH_MAX - (c - '0')) / 10)
			return false;
		v = v * 10 + (c - '0');
	}
	*out = v;
	return true;
}

/* Transfer-Encoding may be split over several header lines; the codings
 * then apply in order, so only the last element of the last non-empty one
 * decides whether the body is chunked.  Empty string when there is none. */
static void last_coding(const struct http_header *h, const char **last, size_t *last_len)
{
	const char *pos = h->value, *end = h->value + h->value_len;
	const char *e;
	size_t elen;

	while (list_next(&pos, end, &e, &elen)) {
		*last = e;
		*last_len = elen;
	}
}

/* What the headers mean for framing and the connection, once all are in. */
static enum http_parse_result interpret_headers(struct http_request *req)
{
	bool te = false, conn_close = false, conn_keep = false, conn_upgrade = false;
	bool want_ws = false;
	const char *coding = "";
	size_t coding_len = 0;
	int hosts = 0;

	for (size_t i = 0; i < req->nheaders; i++) {
		const struct http_header *h = &req->headers[i];
		long long cl;

		if (header_is(h, "content-length")) {
			if (!parse_content_length(h, &cl))
				return HTTP_PARSE_BAD_REQUEST;
			if (req->content_length >= 0 && req->content_length != cl)
				return HTTP_PARSE_BAD_REQUEST;
			req->content_length = cl;
		} else if (header_is(h, "transfer-encoding")) {
			te = true;
			last_coding(h, &coding, &coding_len);
		} else if (header_is(h, "connection")) {
			conn_close |= http_header_has_token(h, "close");
			conn_keep |= http_header_has_token(h, "keep-alive");
			conn_upgrade |= http_header_has_token(h, "upgrade");
		} else if (header_is(h, "upgrade")) {
			want_ws |= http_header_has_token(h, "websocket");
		} else if (header_is(h, "host")) {
			/* Two Hosts let a proxy and us route differently. */
			if (++hosts > 1)
				return HTTP_PARSE_BAD_REQUEST;
		}
	}

	/* RFC 9112 §6.1 and §6.3: Transfer-Encoding in 1.0 is faulty framing,
	 * alongside Content-Length it is a smuggling attempt, and a request
	 * whose final coding is not chunked has no knowable length. */
	if (te) {
		if (req->version_minor == 0 || req->content_length >= 0 ||
		    !ascii_ieq(coding, coding_len, "chunked", 7))
			return HTTP_PARSE_BAD_REQUEST;
		req->chunked = true;
	}

	if (req->version_minor == 1)
		req->keep_alive = !conn_close;
	else
		req->keep_alive = conn_keep && !conn_close;
	/* RFC 9110 §7.8: Upgrade in an HTTP/1.0 request is ignored. */
	req->upgrade = req->version_minor == 1 && conn_upgrade;
	req->upgrade_websocket = req->upgrade && want_ws;
	return HTTP_PARSE_OK;
}

/* Early refusal of a request line still arriving: if what we have of the
 * method is already not a token, no further byte can fix it, and a client
 * speaking something else (TLS, say) gets its 400 at once instead of after
 * 8 KiB or a timeout.  A lone CR may still become an empty line. */
static bool partial_method_ok(const char *p, const char *end)
{
	if (end - p == 1 && *p == '\r')
		return true;
	for (const char *q = p; q < end && *q != ' '; q++)
		if (!is_tchar((unsigned char)*q))
			return false;
	return !(p < end && *p == ' ');
}

static void request_init(struct http_request *req)
{
	memset(req, 0, sizeof(*req));
	req->method = HTTP_OTHER;
	req->content_length = -1;
}

enum http_parse_result http_parse_head(const char *buf, size_t len, struct http_request *req)
{
	/* Never look past HTTP_MAX_HEAD: that bounds the work per call and
	 * makes the result independent of how the bytes were split. */
	size_t window = len < HTTP_MAX_HEAD ? len : HTTP_MAX_HEAD;
	const char *pos, *end, *line;
	size_t n;
	bool have_request_line = false;
	enum http_parse_result r;

	request_init(req);
	if (len == 0)
		return HTTP_PARSE_INCOMPLETE;
	pos = buf;
	end = buf + window;
	while (line_next(&pos, end, &line, &n)) {
		if (!have_request_line) {
			if (n == 0)
				continue; /* RFC 9112 §2.2: empty lines before the request line */
			r = parse_request_line(line, n, req);
			if (r != HTTP_PARSE_OK)
				return r;
			have_request_line = true;
			continue;
		}
		if (n == 0) {
			req->head_len = (size_t)(pos - buf);
			return interpret_headers(req);
		}
		if (req->nheaders == HTTP_MAX_HEADERS)
			return HTTP_PARSE_TOO_LARGE;
		r = parse_header_line(line, n, &req->headers[req->nheaders]);
		if (r != HTTP_PARSE_OK)
			return r;
		req->nheaders++;
	}
	if (!have_request_line && !partial_method_ok(pos, end))
		return HTTP_PARSE_BAD_REQUEST;
	/* With HTTP_MAX_HEAD bytes and no complete head, the blank line can only
	 * end past the limit. */
	return len >= HTTP_MAX_HEAD ? HTTP_PARSE_TOO_LARGE : HTTP_PARSE_INCOMPLETE;
}

const struct http_header *http_find_header(const struct http_request *req, const char *name)
{
	size_t name_len = strlen(name);

	for (size_t i = 0; i < req->nheaders; i++) {
		const struct http_header *h = &req->headers[i];
		if (ascii_ieq(h->name, h->name_len, name, name_len))
			return h;
	}
	return NULL;
}

bool http_header_has_token(const struct http_header *h, const char *token)
{
	size_t token_len;
	const char *pos, *end, *e;
	size_t elen;

	if (!h || !h->value || !token || !*token)
		return false;
	token_len = strlen(token);
	pos = h->value;
	end = h->value + h->value_len;
	while (list_next(&pos, end, &e, &elen))
		if (ascii_ieq(e, elen, token, token_len))
			return true;
	return false;
}

const char *http_status_text(int status)
{
	switch (status) {
	case 101: return "Switching Protocols";
	case 200: return "OK";
	case 204: return "No Content";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 411: return "Length Required";
	case 413: return "Payload Too Large"; /* as Node/Bun, the reference */
	case 426: return "Upgrade Required";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 503: return "Service Unavailable";
	case 505: return "HTTP Version Not Supported";
	default: return "Unknown";
	}
}
