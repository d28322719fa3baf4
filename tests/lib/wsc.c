#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/sha.h>
#include <sodium.h>
#include <wslay/wslay.h>

#include "httpc.h"
#include "wsc.h"

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define HANDSHAKE_MAX (64 * 1024)

struct wsc_node {
	struct wsc_msg m;
	struct wsc_node *next;
};

/* Where we are in our own outgoing frame stream (see send_cb). */
struct wsc_out {
	uint8_t hdr[14];
	size_t hdr_have;
	size_t hdr_need;        /* 0 until the second header byte is known */
	uint64_t payload_left;
	bool in_payload;
	bool drop;              /* this frame is an auto-pong being discarded */
};

struct wsc {
	int fd;
	wslay_event_context_ptr ctx;
	unsigned char *pre;     /* bytes that followed the 101 head */
	size_t pre_len, pre_off;
	struct wsc_node *head, *tail;
	bool eof;               /* the server closed TCP (EOF or ECONNRESET) */
	bool failed;            /* read error or protocol violation: recv gives WSC_ERROR */
	bool auto_pong;
	size_t pongs_to_drop;   /* pongs wslay queued for pings while auto-pong was off */
	int send_errno;
	bool send_dead;         /* a send failed or was abandoned mid-message: no more sends */
	struct wsc_out out;
	struct http_response hs;
	const unsigned char *frag_data;  /* wsc_send_fragmented source */
	size_t frag_len, frag_off, frag_size;
};

const char *wsc_type_name(int type)
{
	switch (type) {
	case WSC_ERROR: return "ERROR";
	case WSC_TIMEOUT: return "TIMEOUT";
	case WSC_TEXT: return "TEXT";
	case WSC_BINARY: return "BINARY";
	case WSC_PING: return "PING";
	case WSC_PONG: return "PONG";
	case WSC_CLOSE: return "CLOSE";
	case WSC_EOF: return "EOF";
	}
	return "?";
}

/* ---- wslay callbacks -------------------------------------------------- */

static ssize_t recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags,
		       void *user)
{
	struct wsc *c = user;
	ssize_t n;

	(void)flags;
	if (c->pre_off < c->pre_len) {
		size_t k = c->pre_len - c->pre_off;

		if (k > len)
			k = len;
		memcpy(buf, c->pre + c->pre_off, k);
		c->pre_off += k;
		return (ssize_t)k;
	}
	do
		n = recv(c->fd, buf, len, MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n > 0)
		return n;
	if (n == 0 || errno == ECONNRESET) {
		c->eof = true;
		wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
	} else if (errno == EAGAIN || errno == EWOULDBLOCK) {
		wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
	} else {
		fprintf(stderr, "wsc: recv: %s\n", strerror(errno));
		c->failed = true;
		wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
	}
	return -1;
}

/* Length of the frame header whose first bytes are known, or 0 if the
 * second byte has not been seen yet. */
static size_t out_header_need(const struct wsc *c, const uint8_t *data, size_t len)
{
	uint8_t b1;

	if (c->out.hdr_have >= 2)
		b1 = c->out.hdr[1];
	else if (len > 1 - c->out.hdr_have)
		b1 = data[1 - c->out.hdr_have];
	else
		return 0;
	return 2 + ((b1 & 0x7f) == 126 ? 2 : (b1 & 0x7f) == 127 ? 8 : 0) + (b1 & 0x80 ? 4 : 0);
}

static void out_advance(struct wsc *c, const uint8_t *data, size_t n)
{
	struct wsc_out *o = &c->out;

	if (o->in_payload) {
		o->payload_left -= n;
		if (o->payload_left == 0)
			memset(o, 0, sizeof(*o));
		return;
	}
	memcpy(o->hdr + o->hdr_have, data, n);
	o->hdr_have += n;
	if (o->hdr_have >= 2 && o->hdr_need == 0)
		o->hdr_need = out_header_need(c, NULL, 0);
	if (o->hdr_need == 0 || o->hdr_have < o->hdr_need)
		return;
	switch (o->hdr[1] & 0x7f) {
	case 126:
		o->payload_left = (uint64_t)o->hdr[2] << 8 | o->hdr[3];
		break;
	case 127:
		o->payload_left = 0;
		for (int i = 0; i < 8; i++)
			o->payload_left = o->payload_left << 8 | o->hdr[2 + i];
		break;
	default:
		o->payload_left = o->hdr[1] & 0x7f;
	}
	if (o->payload_left == 0) {
		memset(o, 0, sizeof(*o));
		return;
	}
	o->in_payload = true;
}

/*
 * wslay always queues a pong for every ping it receives (wslay 1.1.1 has no
 * switch for that).  To leave pings to the test, this callback follows the
 * frame boundaries of our own outgoing stream and swallows the pong frames
 * wslay queued on its own, while auto-pong is off.  Frames are only ever
 * parsed here, never built.
 */
static ssize_t send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
		       void *user)
{
	struct wsc *c = user;
	struct wsc_out *o = &c->out;
	size_t piece;
	ssize_t n;

	(void)flags;
	if (len == 0)
		return 0;
	if (!o->in_payload && o->hdr_have == 0) {
		o->drop = (data[0] & 0x0f) == WSLAY_PONG && c->pongs_to_drop > 0;
		if (o->drop)
			c->pongs_to_drop--;
	}
	if (o->in_payload) {
		piece = o->payload_left < len ? (size_t)o->payload_left : len;
	} else {
		size_t need = o->hdr_need ? o->hdr_need : out_header_need(c, data, len);

		piece = need ? need - o->hdr_have : 2 - o->hdr_have;
		if (piece > len)
			piece = len;
	}
	if (o->drop) {
		n = (ssize_t)piece;
	} else {
		do
			n = send(c->fd, data, piece, MSG_NOSIGNAL | MSG_DONTWAIT);
		while (n < 0 && errno == EINTR);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
			} else {
				c->send_errno = errno;
				wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
			}
			return -1;
		}
	}
	out_advance(c, data, (size_t)n);
	return n;
}

static int genmask_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, void *user)
{
	(void)ctx;
	(void)user;
	randombytes_buf(buf, len);
	return 0;
}

static char *dup_bytes(const uint8_t *p, size_t n)
{
	char *s = malloc(n + 1);

	if (!s)
		return NULL;
	if (n)
		memcpy(s, p, n);
	s[n] = '\0';
	return s;
}

static void on_msg_recv_cb(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg,
			   void *user)
{
	struct wsc *c = user;
	struct wsc_node *node = calloc(1, sizeof(*node));

	(void)ctx;
	if (!node) {
		c->failed = true;
		return;
	}
	switch (arg->opcode) {
	case WSLAY_TEXT_FRAME:
		node->m.type = WSC_TEXT;
		break;
	case WSLAY_BINARY_FRAME:
		node->m.type = WSC_BINARY;
		break;
	case WSLAY_PING:
		node->m.type = WSC_PING;
		/* wslay has queued a pong (or can never send one again). */
		if (!c->auto_pong)
			c->pongs_to_drop++;
		break;
	case WSLAY_PONG:
		node->m.type = WSC_PONG;
		break;
	case WSLAY_CONNECTION_CLOSE:
		node->m.type = WSC_CLOSE;
		node->m.close_code = arg->status_code;
		if (arg->msg_length > 2)
			node->m.close_reason = dup_bytes(arg->msg + 2, arg->msg_length - 2);
		else
			node->m.close_reason = dup_bytes(NULL, 0);
		break;
	default:
		free(node);
		return;
	}
	node->m.len = arg->msg_length;
	node->m.data = dup_bytes(arg->msg, arg->msg_length);
	if (!node->m.data || (node->m.type == WSC_CLOSE && !node->m.close_reason)) {
		wsc_msg_free(&node->m);
		free(node);
		c->failed = true;
		return;
	}
	if (c->tail)
		c->tail->next = node;
	else
		c->head = node;
	c->tail = node;
}

/* ---- pumping ---------------------------------------------------------- */

static void pump_recv(struct wsc *c, bool reply);

/* Sends everything wslay has queued.  With allow_read, also reads while
 * waiting for socket space, and gives up as soon as the server has closed:
 * a server that rejects a huge message stops reading, and its close frame
 * must not wait behind our send. */
static bool flush_once(struct wsc *c, bool allow_read)
{
	long long deadline = httpc_now_ms() + WSC_SEND_TIMEOUT_MS;

	while (wslay_event_want_write(c->ctx)) {
		short events = POLLOUT, rev = 0;
		int w;

		wslay_event_set_error(c->ctx, 0);
		if (wslay_event_send(c->ctx) != 0) {
			if (c->send_errno)
				fprintf(stderr, "wsc: send: %s\n", strerror(c->send_errno));
			return false;
		}
		if (!wslay_event_want_write(c->ctx))
			break;
		if (allow_read && (c->eof || wslay_event_get_close_received(c->ctx))) {
			fprintf(stderr, "wsc: the server closed while we were sending\n");
			return false;
		}
		if (allow_read && !c->eof && !c->failed && wslay_event_want_read(c->ctx))
			events |= POLLIN;
		w = httpc_wait_fd(c->fd, events, deadline, &rev);
		if (w == 0) {
			fprintf(stderr, "wsc: send blocked for %d ms\n", WSC_SEND_TIMEOUT_MS);
			return false;
		}
		if (w < 0)
			return false;
		if ((events & POLLIN) && (rev & (POLLIN | POLLHUP | POLLERR)) && !(rev & POLLOUT))
			pump_recv(c, false);
	}
	return true;
}

/* Our outgoing stream may stop inside a frame: after a failure, nothing
 * more is written (wslay would carry on with the rest of that frame). */
static bool flush(struct wsc *c, bool allow_read)
{
	if (c->send_dead) {
		if (wslay_event_want_write(c->ctx) && allow_read)
			fprintf(stderr, "wsc: not sending: an earlier send failed\n");
		return false;
	}
	if (!flush_once(c, allow_read)) {
		c->send_dead = true;
		return false;
	}
	return true;
}

static void report_protocol_error(struct wsc *c)
{
	if (c->failed)
		return;
	c->failed = true;
	fprintf(stderr, "wsc: the server broke the WebSocket protocol; wslay answered with close %u\n",
		wslay_event_get_close_sent(c->ctx) ? wslay_event_get_status_code_sent(c->ctx) : 0);
}

/* Lets wslay read what is there; with reply, then sends what it queued in
 * answer (close echo, pongs if auto-pong is on).  Inside flush() the
 * answers wait for the message being sent. */
static void pump_recv(struct wsc *c, bool reply)
{
	int r;

	wslay_event_set_error(c->ctx, 0);
	r = wslay_event_recv(c->ctx);
	if (r != 0 && !c->eof && !c->failed) {
		fprintf(stderr, "wsc: wslay_event_recv failed (%d)\n", r);
		c->failed = true;
	}
	if (reply && !c->eof)
		(void)flush(c, false);
	if (!c->eof && !wslay_event_want_read(c->ctx) && !wslay_event_get_close_received(c->ctx))
		report_protocol_error(c);
}

static bool queue_and_flush(struct wsc *c, uint8_t opcode, const void *data, size_t len)
{
	struct wslay_event_msg msg = { .opcode = opcode, .msg = data, .msg_length = len };
	int r = wslay_event_queue_msg(c->ctx, &msg);

	if (r != 0) {
		fprintf(stderr, "wsc: cannot queue message: %s\n",
			r == WSLAY_ERR_NO_MORE_MSG ? "connection closing or send failed" :
			r == WSLAY_ERR_INVALID_ARGUMENT ? "invalid (control payload > 125?)" : "no memory");
		return false;
	}
	return flush(c, true);
}

bool wsc_send_text(struct wsc *c, const char *s, size_t len)
{
	return queue_and_flush(c, WSLAY_TEXT_FRAME, s, len);
}

bool wsc_send_binary(struct wsc *c, const void *data, size_t len)
{
	return queue_and_flush(c, WSLAY_BINARY_FRAME, data, len);
}

bool wsc_send_ping(struct wsc *c, const void *payload, size_t len)
{
	return queue_and_flush(c, WSLAY_PING, payload, len);
}

bool wsc_send_pong(struct wsc *c, const void *payload, size_t len)
{
	/* Auto-pongs still queued ahead of this one are dropped first (FIFO). */
	return queue_and_flush(c, WSLAY_PONG, payload, len);
}

bool wsc_send_close(struct wsc *c, uint16_t code, const char *reason)
{
	size_t rlen = reason ? strlen(reason) : 0;
	int r = wslay_event_queue_close(c->ctx, code, (const uint8_t *)(reason ? reason : ""), rlen);

	if (r != 0) {
		fprintf(stderr, "wsc: cannot queue close: %s\n",
			r == WSLAY_ERR_NO_MORE_MSG ? "close already queued or send failed" :
			"invalid (reason > 123 bytes?)");
		return false;
	}
	return flush(c, true);
}

static ssize_t frag_read_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len,
			    const union wslay_event_msg_source *source, int *eof, void *user)
{
	struct wsc *c = user;
	size_t n = c->frag_len - c->frag_off;

	(void)ctx;
	(void)source;
	if (n > len)
		n = len;
	if (n > c->frag_size)
		n = c->frag_size;
	memcpy(buf, c->frag_data + c->frag_off, n);
	c->frag_off += n;
	if (c->frag_off == c->frag_len)
		*eof = 1;
	return (ssize_t)n;
}

bool wsc_send_fragmented(struct wsc *c, bool binary, const void *data, size_t len, size_t frag_size)
{
	struct wslay_event_fragmented_msg msg = {
		.opcode = binary ? WSLAY_BINARY_FRAME : WSLAY_TEXT_FRAME,
		.source = { .data = NULL },
		.read_callback = frag_read_cb,
	};
	bool ok;

	if (len == 0 || frag_size == 0) {
		fprintf(stderr, "wsc: fragmented send needs len > 0 and frag_size > 0\n");
		return false;
	}
	c->frag_data = data;
	c->frag_len = len;
	c->frag_off = 0;
	c->frag_size = frag_size;
	if (wslay_event_queue_fragmented_msg(c->ctx, &msg) != 0) {
		fprintf(stderr, "wsc: cannot queue fragmented message\n");
		return false;
	}
	ok = flush(c, true);
	c->frag_data = NULL;
	return ok;
}

bool wsc_send_raw(struct wsc *c, const void *buf, size_t len)
{
	long long deadline = httpc_now_ms() + WSC_SEND_TIMEOUT_MS;
	const unsigned char *p = buf;

	if (!flush(c, true))
		return false;
	while (len > 0) {
		ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if ((errno == EAGAIN || errno == EWOULDBLOCK) &&
			    httpc_wait_fd(c->fd, POLLOUT, deadline, NULL) > 0)
				continue;
			fprintf(stderr, "wsc: raw send: %s\n",
				errno == EAGAIN ? "timed out" : strerror(errno));
			return false;
		}
		p += n;
		len -= (size_t)n;
	}
	return true;
}

/* ---- receiving -------------------------------------------------------- */

void wsc_msg_free(struct wsc_msg *m)
{
	free(m->data);
	free(m->close_reason);
	memset(m, 0, sizeof(*m));
}

static bool pop_msg(struct wsc *c, struct wsc_msg *m)
{
	struct wsc_node *node = c->head;

	if (!node)
		return false;
	c->head = node->next;
	if (!c->head)
		c->tail = NULL;
	*m = node->m;
	free(node);
	return true;
}

/* After the close handshake wslay reads no more; watch the TCP connection. */
static int wait_tcp_close(struct wsc *c, long long deadline)
{
	size_t ignored = 0;

	for (;;) {
		unsigned char buf[4096];
		ssize_t n;
		int w;

		if (c->pre_off < c->pre_len) {
			ignored += c->pre_len - c->pre_off;
			c->pre_off = c->pre_len;
		}
		w = httpc_wait_fd(c->fd, POLLIN, deadline, NULL);
		if (w == 0)
			return WSC_TIMEOUT;
		if (w < 0)
			return WSC_ERROR;
		n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n > 0) {
			ignored += (size_t)n;
			continue;
		}
		if (n == 0 || errno == ECONNRESET) {
			if (ignored)
				fprintf(stderr, "wsc: %zu bytes after the close frame ignored\n", ignored);
			c->eof = true;
			return WSC_EOF;
		}
		if (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK) {
			fprintf(stderr, "wsc: recv: %s\n", strerror(errno));
			return WSC_ERROR;
		}
	}
}

int wsc_recv(struct wsc *c, struct wsc_msg *m, int timeout_ms)
{
	long long deadline = httpc_now_ms() + timeout_ms;

	memset(m, 0, sizeof(*m));
	for (;;) {
		if (pop_msg(c, m))
			return m->type;
		if (c->eof)
			return m->type = WSC_EOF;
		if (c->failed)
			return m->type = WSC_ERROR;
		if (!wslay_event_want_read(c->ctx)) {
			if (!wslay_event_get_close_received(c->ctx)) {
				report_protocol_error(c);
				continue;
			}
			return m->type = wait_tcp_close(c, deadline);
		}
		if (c->pre_off >= c->pre_len) {
			int w = httpc_wait_fd(c->fd, POLLIN, deadline, NULL);

			if (w == 0)
				return m->type = WSC_TIMEOUT;
			if (w < 0) {
				fprintf(stderr, "wsc: poll: %s\n", strerror(errno));
				c->failed = true;
				continue;
			}
		}
		pump_recv(c, true);
	}
}

/* ---- connecting ------------------------------------------------------- */

static bool header_is(const struct http_response *r, const char *name, const char *value)
{
	const char *v = httpc_header(r, name);

	return v && strcasecmp(v, value) == 0;
}

static bool connection_has_upgrade(const struct http_response *r)
{
	for (size_t i = 0; i < r->nheaders; i++)
		if (strcasecmp(r->headers[i].name, "Connection") == 0 &&
		    strcasestr(r->headers[i].value, "upgrade"))
			return true;
	return false;
}

/* Reads into buf until it holds a complete response head (possibly
 * followed by the first frames); *have is the byte count.  Returns the
 * head's length, 0 if the server closed before a complete head, -1 on
 * error, timeout or a malformed head. */
static long read_handshake(int fd, long long deadline, char *buf, size_t *have)
{
	*have = 0;
	for (;;) {
		struct http_response tmp = { 0 };
		long head;
		ssize_t n;
		int w = httpc_wait_fd(fd, POLLIN, deadline, NULL);

		if (w == 0) {
			fprintf(stderr, "wsc: timed out waiting for the handshake response\n");
			return -1;
		}
		if (w < 0)
			return -1;
		n = recv(fd, buf + *have, HANDSHAKE_MAX - *have, MSG_DONTWAIT);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n == 0 || (n < 0 && errno == ECONNRESET))
			return 0;
		if (n < 0) {
			fprintf(stderr, "wsc: recv: %s\n", strerror(errno));
			return -1;
		}
		*have += (size_t)n;
		buf[*have] = '\0';
		head = httpc_parse_head(buf, *have, &tmp);
		httpc_response_free(&tmp);
		if (head < 0)
			fprintf(stderr, "wsc: malformed handshake response:\n%s\n", buf);
		if (head != 0)
			return head;
		if (*have >= HANDSHAKE_MAX) {
			fprintf(stderr, "wsc: handshake response head too large\n");
			return -1;
		}
	}
}

static bool check_handshake(const struct http_response *r, const char *accept,
			    const char *extra_headers)
{
	const char *got = httpc_header(r, "Sec-WebSocket-Accept");

	if (r->status != 101) {
		fprintf(stderr, "wsc: expected 101, got %d %s\n", r->status, r->reason);
		return false;
	}
	if (!header_is(r, "Upgrade", "websocket")) {
		fprintf(stderr, "wsc: 101 without Upgrade: websocket\n");
		return false;
	}
	if (!connection_has_upgrade(r)) {
		fprintf(stderr, "wsc: 101 without Connection: Upgrade\n");
		return false;
	}
	if (!got || strcmp(got, accept) != 0) {
		fprintf(stderr, "wsc: Sec-WebSocket-Accept is '%s', expected '%s'\n",
			got ? got : "(missing)", accept);
		return false;
	}
	if (httpc_header(r, "Sec-WebSocket-Extensions")) {
		fprintf(stderr, "wsc: server accepted an extension we did not offer: %s\n",
			httpc_header(r, "Sec-WebSocket-Extensions"));
		return false;
	}
	if (httpc_header(r, "Sec-WebSocket-Protocol") &&
	    !(extra_headers && strcasestr(extra_headers, "Sec-WebSocket-Protocol"))) {
		fprintf(stderr, "wsc: server chose a subprotocol we did not offer\n");
		return false;
	}
	return true;
}

static bool setup_wslay(struct wsc *c)
{
	static const struct wslay_event_callbacks cbs = {
		.recv_callback = recv_cb,
		.send_callback = send_cb,
		.genmask_callback = genmask_cb,
		.on_msg_recv_callback = on_msg_recv_cb,
	};
	int fl = fcntl(c->fd, F_GETFL);

	if (fl < 0 || fcntl(c->fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return false;
	return wslay_event_context_client_init(&c->ctx, &cbs, c) == 0;
}

struct wsc *wsc_connect_ex(int port, const char *path, const char *extra_headers,
			   int timeout_ms, struct http_response *resp)
{
	long long deadline = httpc_now_ms() + timeout_ms;
	unsigned char nonce[16], digest[SHA_DIGEST_LENGTH];
	char key[sodium_base64_ENCODED_LEN(16, sodium_base64_VARIANT_ORIGINAL)];
	char accept[sodium_base64_ENCODED_LEN(SHA_DIGEST_LENGTH, sodium_base64_VARIANT_ORIGINAL)];
	char keyguid[sizeof(key) + sizeof(WS_GUID)];
	char *req = NULL, *buf = NULL;
	size_t have = 0;
	long head;
	struct wsc *c;
	int n;

	if (resp)
		memset(resp, 0, sizeof(*resp));
	if (sodium_init() < 0) {
		fprintf(stderr, "wsc: sodium_init failed\n");
		return NULL;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->fd = httpc_connect(port);
	if (c->fd < 0) {
		free(c);
		return NULL;
	}
	randombytes_buf(nonce, sizeof(nonce));
	sodium_bin2base64(key, sizeof(key), nonce, sizeof(nonce), sodium_base64_VARIANT_ORIGINAL);
	snprintf(keyguid, sizeof(keyguid), "%s%s", key, WS_GUID);
	SHA1((const unsigned char *)keyguid, strlen(keyguid), digest);
	sodium_bin2base64(accept, sizeof(accept), digest, sizeof(digest),
			  sodium_base64_VARIANT_ORIGINAL);

	n = asprintf(&req,
		     "GET %s HTTP/1.1\r\n"
		     "Host: 127.0.0.1:%d\r\n"
		     "Upgrade: websocket\r\n"
		     "Connection: Upgrade\r\n"
		     "Sec-WebSocket-Key: %s\r\n"
		     "Sec-WebSocket-Version: 13\r\n"
		     "%s\r\n",
		     path, port, key, extra_headers ? extra_headers : "");
	if (n < 0) {
		req = NULL;
		goto fail;
	}
	if (!httpc_send(c->fd, req, (size_t)n))
		goto fail;
	buf = malloc(HANDSHAKE_MAX + 1);
	if (!buf)
		goto fail;
	head = read_handshake(c->fd, deadline, buf, &have);
	if (head == 0) {
		fprintf(stderr, "wsc: server closed the connection %s (GET %s)\n",
			have ? "in the middle of the response head" : "without a response", path);
		goto fail;
	}
	if (head < 0 || httpc_parse_head(buf, have, &c->hs) <= 0)
		goto fail;
	if (resp && httpc_parse_head(buf, have, resp) <= 0)
		goto fail;
	if (!check_handshake(&c->hs, accept, extra_headers))
		goto fail;
	if ((size_t)head < have) {
		c->pre_len = have - (size_t)head;
		c->pre = malloc(c->pre_len);
		if (!c->pre)
			goto fail;
		memcpy(c->pre, buf + head, c->pre_len);
	}
	if (!setup_wslay(c))
		goto fail;
	free(req);
	free(buf);
	return c;
fail:
	free(req);
	free(buf);
	wsc_free(c);
	return NULL;
}

struct wsc *wsc_connect(int port, const char *path, int timeout_ms)
{
	return wsc_connect_ex(port, path, NULL, timeout_ms, NULL);
}

void wsc_set_auto_pong(struct wsc *c, bool on)
{
	c->auto_pong = on;
}

const struct http_response *wsc_handshake(const struct wsc *c)
{
	return &c->hs;
}

int wsc_fd(const struct wsc *c)
{
	return c->fd;
}

void wsc_free(struct wsc *c)
{
	struct wsc_msg m;

	if (!c)
		return;
	while (pop_msg(c, &m))
		wsc_msg_free(&m);
	if (c->ctx)
		wslay_event_context_free(c->ctx);
	if (c->fd >= 0)
		close(c->fd);
	httpc_response_free(&c->hs);
	free(c->pre);
	free(c);
}
