#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "httpc.h"

#define HEAD_MAX (64 * 1024)
#define BODY_MAX (64 * 1024 * 1024)
#define LINE_MAX_LEN 4096

long long httpc_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int httpc_wait_fd(int fd, short events, long long deadline, short *revents)
{
	for (;;) {
		struct pollfd p = { .fd = fd, .events = events };
		long long left = deadline - httpc_now_ms();
		int n;

		if (left < 0)
			left = 0;
		n = poll(&p, 1, (int)(left > 1000000 ? 1000000 : left));
		if (n > 0) {
			if (revents)
				*revents = p.revents;
			return 1;
		}
		if (n == 0) {
			if (httpc_now_ms() >= deadline)
				return 0;
			continue;
		}
		if (errno != EINTR)
			return -1;
	}
}

int httpc_connect(int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int one = 1;
	int fd;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		fprintf(stderr, "httpc: socket: %s\n", strerror(errno));
		return -1;
	}
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		fprintf(stderr, "httpc: connect 127.0.0.1:%d: %s\n", port, strerror(errno));
		close(fd);
		return -1;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

bool httpc_send(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				if (httpc_wait_fd(fd, POLLOUT, httpc_now_ms() + HTTPC_TIMEOUT_MS, NULL) <= 0) {
					fprintf(stderr, "httpc: send timed out\n");
					return false;
				}
				continue;
			}
			fprintf(stderr, "httpc: send: %s\n", strerror(errno));
			return false;
		}
		p += n;
		len -= (size_t)n;
	}
	return true;
}

bool httpc_send_str(int fd, const char *s)
{
	return httpc_send(fd, s, strlen(s));
}

/* ---- parsing ---------------------------------------------------------- */

static const char *find_blank_line(const char *buf, size_t len)
{
	for (size_t i = 0; i + 4 <= len; i++)
		if (memcmp(buf + i, "\r\n\r\n", 4) == 0)
			return buf + i;
	return NULL;
}

static char *dup_range(const char *p, size_t n)
{
	char *s = malloc(n + 1);

	if (!s)
		return NULL;
	memcpy(s, p, n);
	s[n] = '\0';
	return s;
}

static bool is_tchar(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c && strchr("!#$%&'*+-.^_`|~", c));
}

static bool add_header(struct http_response *r, const char *line, size_t len)
{
	const char *colon = memchr(line, ':', len);
	const char *v, *end = line + len;
	struct httpc_header *h;

	if (!colon || colon == line)
		return false;
	for (const char *p = line; p < colon; p++)
		if (!is_tchar(*p))
			return false;
	v = colon + 1;
	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	h = realloc(r->headers, (r->nheaders + 1) * sizeof(*h));
	if (!h)
		return false;
	r->headers = h;
	h = &r->headers[r->nheaders];
	h->name = dup_range(line, (size_t)(colon - line));
	h->value = dup_range(v, (size_t)(end - v));
	if (!h->name || !h->value) {
		free(h->name);
		free(h->value);
		return false;
	}
	r->nheaders++;
	return true;
}

static bool parse_status_line(struct http_response *r, const char *line, size_t len)
{
	const char *p = line;

	/* HTTP/1.x SP 3DIGIT [SP reason] */
	if (len < 12 || memcmp(p, "HTTP/1.", 7) != 0 || p[7] < '0' || p[7] > '9' || p[8] != ' ')
		return false;
	r->minor_version = p[7] - '0';
	for (int i = 9; i < 12; i++)
		if (p[i] < '0' || p[i] > '9')
			return false;
	r->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
	if (len == 12)
		r->reason = dup_range("", 0);
	else if (p[12] == ' ')
		r->reason = dup_range(p + 13, len - 13);
	else
		return false;
	return r->reason != NULL;
}

long httpc_parse_head(const char *buf, size_t len, struct http_response *r)
{
	const char *blank = find_blank_line(buf, len);
	const char *line, *end, *eol;
	size_t head_len;

	if (!blank)
		return len > HEAD_MAX ? -1 : 0;
	head_len = (size_t)(blank - buf) + 4;
	r->head = dup_range(buf, head_len);
	if (!r->head)
		return -1;
	r->head_len = head_len;
	end = blank + 2;        /* just past the last header line's CRLF */
	line = buf;
	eol = memmem(buf, head_len, "\r\n", 2);
	if (!parse_status_line(r, line, (size_t)(eol - line)))
		return -1;
	for (line = eol + 2; line < end; line = eol + 2) {
		eol = line;
		while (eol + 1 < end && !(eol[0] == '\r' && eol[1] == '\n'))
			eol++;
		if (memchr(line, '\n', (size_t)(eol - line)) || memchr(line, '\r', (size_t)(eol - line)))
			return -1;  /* bare CR or LF inside a line */
		if (!add_header(r, line, (size_t)(eol - line)))
			return -1;
	}
	return (long)head_len;
}

const char *httpc_header(const struct http_response *r, const char *name)
{
	for (size_t i = 0; i < r->nheaders; i++)
		if (strcasecmp(r->headers[i].name, name) == 0)
			return r->headers[i].value;
	return NULL;
}

size_t httpc_header_count(const struct http_response *r, const char *name)
{
	size_t n = 0;

	for (size_t i = 0; i < r->nheaders; i++)
		if (strcasecmp(r->headers[i].name, name) == 0)
			n++;
	return n;
}

void httpc_response_free(struct http_response *r)
{
	for (size_t i = 0; i < r->nheaders; i++) {
		free(r->headers[i].name);
		free(r->headers[i].value);
	}
	free(r->headers);
	free(r->reason);
	free(r->head);
	free(r->body);
	memset(r, 0, sizeof(*r));
}

/* ---- reading ---------------------------------------------------------- */

/* recv() that waits until the deadline; returns bytes, 0 on EOF, -1 on error/timeout. */
static ssize_t recv_wait(int fd, void *buf, size_t len, int flags, long long deadline)
{
	for (;;) {
		ssize_t n;
		int w = httpc_wait_fd(fd, POLLIN, deadline, NULL);

		if (w == 0) {
			fprintf(stderr, "httpc: timed out waiting for the response\n");
			return -1;
		}
		if (w < 0) {
			fprintf(stderr, "httpc: poll: %s\n", strerror(errno));
			return -1;
		}
		n = recv(fd, buf, len, flags | MSG_DONTWAIT);
		if (n >= 0)
			return n;
		if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
			continue;
		if (errno == ECONNRESET)
			return 0;
		fprintf(stderr, "httpc: recv: %s\n", strerror(errno));
		return -1;
	}
}

/* Reads exactly the head, peeking so that nothing after it is consumed. */
static bool read_head(int fd, struct http_response *r, long long deadline)
{
	char *buf = malloc(HEAD_MAX + 4);
	size_t have = 0;
	bool ok = false;

	if (!buf)
		return false;
	for (;;) {
		size_t room = HEAD_MAX - have, from, take;
		const char *blank;
		ssize_t n;

		if (room == 0) {
			fprintf(stderr, "httpc: response head larger than %d bytes\n", HEAD_MAX);
			goto out;
		}
		n = recv_wait(fd, buf + have, room, MSG_PEEK, deadline);
		if (n < 0)
			goto out;
		if (n == 0) {
			fprintf(stderr, "httpc: connection closed %s\n",
				have ? "in the middle of the response head" : "before any response");
			goto out;
		}
		from = have > 3 ? have - 3 : 0;
		blank = find_blank_line(buf + from, have + (size_t)n - from);
		take = blank ? (size_t)(blank + 4 - (buf + have)) : (size_t)n;
		/* Consume what belongs to the head; it is already in the socket buffer. */
		if (recv(fd, buf + have, take, MSG_DONTWAIT) != (ssize_t)take) {
			fprintf(stderr, "httpc: short read of peeked data\n");
			goto out;
		}
		have += take;
		if (blank)
			break;
	}
	if (httpc_parse_head(buf, have, r) <= 0) {
		fprintf(stderr, "httpc: malformed response head:\n%.*s\n", (int)have, buf);
		goto out;
	}
	ok = true;
out:
	free(buf);
	return ok;
}

static bool body_reserve(struct http_response *r, size_t extra)
{
	char *b;

	if (r->body_len + extra > BODY_MAX) {
		fprintf(stderr, "httpc: response body larger than %d bytes\n", BODY_MAX);
		return false;
	}
	b = realloc(r->body, r->body_len + extra + 1);
	if (!b)
		return false;
	r->body = b;
	return true;
}

static bool read_exact(int fd, struct http_response *r, size_t n, long long deadline)
{
	if (!body_reserve(r, n))
		return false;
	while (n > 0) {
		ssize_t got = recv_wait(fd, r->body + r->body_len, n, 0, deadline);

		if (got <= 0) {
			if (got == 0)
				fprintf(stderr, "httpc: connection closed with %zu body bytes missing\n", n);
			return false;
		}
		r->body_len += (size_t)got;
		n -= (size_t)got;
	}
	return true;
}

static bool read_until_close(int fd, struct http_response *r, long long deadline)
{
	for (;;) {
		ssize_t got;

		if (!body_reserve(r, 16384))
			return false;
		got = recv_wait(fd, r->body + r->body_len, 16384, 0, deadline);
		if (got < 0)
			return false;
		if (got == 0)
			return true;
		r->body_len += (size_t)got;
	}
}

/* One CRLF-terminated line, byte by byte (chunk sizes and trailers are short). */
static bool read_line(int fd, char *line, size_t cap, long long deadline)
{
	size_t n = 0;

	for (;;) {
		char c;
		ssize_t got = recv_wait(fd, &c, 1, 0, deadline);

		if (got <= 0) {
			if (got == 0)
				fprintf(stderr, "httpc: connection closed inside chunked body\n");
			return false;
		}
		if (n + 1 >= cap) {
			fprintf(stderr, "httpc: chunk line too long\n");
			return false;
		}
		line[n++] = c;
		if (n >= 2 && line[n - 2] == '\r' && line[n - 1] == '\n') {
			line[n - 2] = '\0';
			return true;
		}
	}
}

static bool read_chunked(int fd, struct http_response *r, long long deadline)
{
	char line[LINE_MAX_LEN];

	for (;;) {
		char *end;
		unsigned long long size;

		if (!read_line(fd, line, sizeof(line), deadline))
			return false;
		errno = 0;
		size = strtoull(line, &end, 16);
		if (end == line || errno || (*end && *end != ';' && *end != ' ' && *end != '\t')) {
			fprintf(stderr, "httpc: bad chunk size line '%s'\n", line);
			return false;
		}
		if (size == 0)
			break;
		if (size > BODY_MAX || !read_exact(fd, r, (size_t)size, deadline))
			return false;
		if (!read_line(fd, line, sizeof(line), deadline))
			return false;
		if (line[0]) {
			fprintf(stderr, "httpc: chunk not followed by CRLF\n");
			return false;
		}
	}
	do {    /* trailer section up to the blank line */
		if (!read_line(fd, line, sizeof(line), deadline))
			return false;
	} while (line[0]);
	return true;
}

static bool token_in_list(const char *list, const char *token)
{
	size_t tl = strlen(token);

	for (const char *p = list; *p;) {
		const char *e, *t;

		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		for (e = p; *e && *e != ','; e++)
			;
		t = e;
		while (t > p && (t[-1] == ' ' || t[-1] == '\t'))
			t--;
		if ((size_t)(t - p) == tl && strncasecmp(p, token, tl) == 0)
			return true;
		p = e;
	}
	return false;
}

static bool read_response(int fd, struct http_response *r, int timeout_ms, bool head_req)
{
	long long deadline = httpc_now_ms() + timeout_ms;
	const char *te, *cl;

	memset(r, 0, sizeof(*r));
	if (!read_head(fd, r, deadline))
		return false;
	if (!body_reserve(r, 0))
		return false;
	r->body[0] = '\0';
	if (head_req || r->status < 200 || r->status == 204 || r->status == 304)
		return true;

	te = httpc_header(r, "Transfer-Encoding");
	cl = httpc_header(r, "Content-Length");
	if (te) {
		if (token_in_list(te, "chunked")) {
			r->chunked = true;
			if (!read_chunked(fd, r, deadline))
				goto fail;
		} else {
			r->until_close = true;
			if (!read_until_close(fd, r, deadline))
				goto fail;
		}
	} else if (cl) {
		char *end;
		unsigned long long n;

		for (size_t i = 0; i < r->nheaders; i++) {
			if (strcasecmp(r->headers[i].name, "Content-Length") == 0 &&
			    strcmp(r->headers[i].value, cl) != 0) {
				fprintf(stderr, "httpc: conflicting Content-Length headers\n");
				goto fail;
			}
		}
		errno = 0;
		n = strtoull(cl, &end, 10);
		if (!*cl || *end || errno || cl[0] < '0' || cl[0] > '9') {
			fprintf(stderr, "httpc: bad Content-Length '%s'\n", cl);
			goto fail;
		}
		if (n > BODY_MAX || !read_exact(fd, r, (size_t)n, deadline))
			goto fail;
	} else {
		r->until_close = true;
		if (!read_until_close(fd, r, deadline))
			goto fail;
	}
	r->body[r->body_len] = '\0';
	return true;
fail:
	if (r->body)
		r->body[r->body_len] = '\0';
	return false;
}

bool httpc_read_response(int fd, struct http_response *r, int timeout_ms)
{
	return read_response(fd, r, timeout_ms, false);
}

bool httpc_read_head_response(int fd, struct http_response *r, int timeout_ms)
{
	return read_response(fd, r, timeout_ms, true);
}

bool httpc_request(int port, const char *raw, struct http_response *r)
{
	int fd = httpc_connect(port);
	bool ok;

	memset(r, 0, sizeof(*r));
	if (fd < 0)
		return false;
	ok = httpc_send_str(fd, raw) &&
	     read_response(fd, r, HTTPC_TIMEOUT_MS, strncmp(raw, "HEAD ", 5) == 0);
	close(fd);
	return ok;
}

bool httpc_peer_closed(int fd, int timeout_ms)
{
	long long deadline = httpc_now_ms() + timeout_ms;

	for (;;) {
		char c;
		ssize_t n;
		int w = httpc_wait_fd(fd, POLLIN, deadline, NULL);

		if (w <= 0)
			return false;
		n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
		if (n == 0)
			return true;
		if (n > 0)
			return false;
		if (errno == ECONNRESET)
			return true;
		if (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK)
			return false;
	}
}
