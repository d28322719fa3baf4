/* wsconn — one WebSocket over a raw non-blocking socket, libevent + wslay.
 *
 * The HTTP/1.1 upgrade is done here (client: request and the 101 check with
 * the SHA-1 accept key; server: the 101 for the echo ceiling); framing,
 * masking, ping answers and close replies are wslay's.  Reads use recvmsg()
 * with SO_TIMESTAMPNS so a message's receive time is when the kernel got its
 * bytes, not when this (possibly busy) process got round to reading them.
 *
 * Thread: the one running the event_base the connection was made on.
 */
#include "config.h"

#include <errno.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <sodium.h>
#include <wslay/wslay.h>

#include "meshbench.h"

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define HS_MAX 4096
#define WS_MAX_MSG (16u << 20)

enum ws_state { WS_CONNECTING, WS_UPGRADE, WS_OPEN };

struct mb_ws {
	struct event_base *base;
	int fd;
	struct event *rev, *wev;
	enum ws_state state;
	bool server;
	bool kernel_ts;
	char *hs;               /* handshake bytes in (HS_MAX + 1; freed once open) */
	size_t hs_len;
	char *out;              /* handshake bytes out */
	size_t out_len, out_off;
	char accept[32];        /* client: the Sec-WebSocket-Accept we expect */
	char *host;             /* client: the Host header */
	unsigned char *pre;     /* bytes that followed the handshake head */
	size_t pre_len, pre_off;
	wslay_event_context_ptr ctx;
	const struct mb_ws_ops *ops;
	void *user;
	uint64_t rx_ns;
	int depth;              /* > 0 while inside one of our callbacks */
	bool dead;              /* closed: free when depth drops to 0 */
	bool reported;          /* ops->closed was called (or must not be) */
	bool rst;
	const char *err;        /* a failure found outside a callback */
};

uint64_t mb_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * MB_NS_PER_S + (uint64_t)ts.tv_nsec;
}

void *mb_ws_user(const struct mb_ws *ws)
{
	return ws->user;
}

static void ws_free(struct mb_ws *ws)
{
	if (ws->rev)
		event_free(ws->rev);
	if (ws->wev)
		event_free(ws->wev);
	if (ws->fd >= 0) {
		if (ws->rst) {
			struct linger l = { .l_onoff = 1, .l_linger = 0 };
			(void)setsockopt(ws->fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
		}
		close(ws->fd);
	}
	if (ws->ctx)
		wslay_event_context_free(ws->ctx);
	free(ws->out);
	free(ws->pre);
	free(ws->host);
	free(ws->hs);
	free(ws);
}

/* The connection failed or ended: tell the owner once, free when safe. */
static void ws_fail(struct mb_ws *ws, const char *why)
{
	if (ws->dead)
		return;
	ws->dead = true;
	if (!ws->reported) {
		ws->reported = true;
		if (ws->ops->closed)
			ws->ops->closed(ws, why);
	}
}

void mb_ws_close(struct mb_ws *ws, bool abort_rst)
{
	if (!ws)
		return;
	ws->reported = true;
	ws->rst = abort_rst;
	ws->dead = true;
	if (ws->depth == 0)
		ws_free(ws);
}

/* ------------------------------------------------------------ wslay glue */

/* CLOCK_MONOTONIC of a kernel receive timestamp (CLOCK_REALTIME); now when
 * there is none. */
static uint64_t rx_time(const struct timespec *kts)
{
	uint64_t now = mb_now_ns();

	if (kts) {
		struct timespec rt;
		int64_t age;

		clock_gettime(CLOCK_REALTIME, &rt);
		age = ((int64_t)rt.tv_sec - kts->tv_sec) * (int64_t)MB_NS_PER_S +
		      (rt.tv_nsec - kts->tv_nsec);
		/* A wall clock step makes age meaningless: keep "now" then. */
		if (age > 0 && (uint64_t)age < 60 * MB_NS_PER_S && (uint64_t)age < now)
			return now - (uint64_t)age;
	}
	return now;
}

static void stamp(struct mb_ws *ws, const struct timespec *kts)
{
	ws->rx_ns = rx_time(kts);
}

ssize_t mb_recv_stamped(int fd, void *buf, size_t len, bool kernel_ts, uint64_t *rx_ns)
{
	char cbuf[CMSG_SPACE(sizeof(struct timespec)) + 64];
	struct iovec iov = { .iov_base = buf, .iov_len = len };
	struct msghdr mh = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = cbuf, .msg_controllen = sizeof(cbuf),
	};
	const struct timespec *kts = NULL;
	ssize_t r;

	do
		r = recvmsg(fd, &mh, 0);
	while (r < 0 && errno == EINTR);
	if (r <= 0)
		return r;
	if (kernel_ts) {
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
			if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS)
				kts = (const struct timespec *)(const void *)CMSG_DATA(c);
	}
	*rx_ns = rx_time(kts);
	return r;
}

static ssize_t recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags,
		       void *user)
{
	struct mb_ws *ws = user;
	ssize_t r;

	if (ws->dead) {
		wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
		return -1;
	}
	if (ws->pre_off < ws->pre_len) {
		size_t n = ws->pre_len - ws->pre_off;

		if (n > len)
			n = len;
		memcpy(buf, ws->pre + ws->pre_off, n);
		ws->pre_off += n;
		return (ssize_t)n;
	}
	r = mb_recv_stamped(ws->fd, buf, len, ws->kernel_ts, &ws->rx_ns);
	if (r < 0) {
		wslay_event_set_error(ctx, errno == EAGAIN || errno == EWOULDBLOCK ?
				      WSLAY_ERR_WOULDBLOCK : WSLAY_ERR_CALLBACK_FAILURE);
		return -1;
	}
	if (r == 0) {
		wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
		return -1;
	}
	return r;
}

static ssize_t send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len,
		       int flags, void *user)
{
	struct mb_ws *ws = user;
	ssize_t r;

	do
		r = send(ws->fd, data, len,
			 MSG_NOSIGNAL | ((flags & WSLAY_MSG_MORE) ? MSG_MORE : 0));
	while (r < 0 && errno == EINTR);
	if (r < 0) {
		wslay_event_set_error(ctx, errno == EAGAIN || errno == EWOULDBLOCK ?
				      WSLAY_ERR_WOULDBLOCK : WSLAY_ERR_CALLBACK_FAILURE);
		return -1;
	}
	return r;
}

static int genmask_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, void *user)
{
	randombytes_buf(buf, len);
	return 0;
}

static void on_msg_cb(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg,
		      void *user)
{
	struct mb_ws *ws = user;

	if (ws->dead)
		return;
	if ((arg->opcode == WSLAY_TEXT_FRAME || arg->opcode == WSLAY_BINARY_FRAME) && ws->ops->msg)
		ws->ops->msg(ws, (const char *)arg->msg, arg->msg_length, ws->rx_ns);
}

static const struct wslay_event_callbacks wslay_cbs = {
	.recv_callback = recv_cb,
	.send_callback = send_cb,
	.genmask_callback = genmask_cb,
	.on_msg_recv_callback = on_msg_cb,
};

/* Sends what wslay holds; arms the write event for the rest.  False when the
 * connection is finished (error, or both directions closed). */
static bool ws_flush(struct mb_ws *ws, const char **why)
{
	if (wslay_event_want_write(ws->ctx) && wslay_event_send(ws->ctx) != 0) {
		*why = "send failed";
		return false;
	}
	if (wslay_event_want_write(ws->ctx)) {
		if (!event_pending(ws->wev, EV_WRITE, NULL))
			event_add(ws->wev, NULL);
	}
	if (!wslay_event_want_read(ws->ctx) && !wslay_event_want_write(ws->ctx)) {
		*why = "closed by peer";
		return false;
	}
	return true;
}

bool mb_ws_send(struct mb_ws *ws, const char *text, size_t len)
{
	struct wslay_event_msg m = {
		.opcode = WSLAY_TEXT_FRAME, .msg = (const uint8_t *)text, .msg_length = len,
	};
	const char *why = NULL;

	if (!ws || ws->dead || ws->state != WS_OPEN)
		return false;
	if (wslay_event_queue_msg(ws->ctx, &m) != 0)
		return false;
	if (ws->depth > 0)
		return true;    /* flushed when the callback returns */
	ws->depth++;
	if (!ws_flush(ws, &why) && !ws->err) {
		/* report from the loop, not from inside the caller's send */
		ws->err = why;
		event_active(ws->wev, EV_WRITE, 1);
	}
	ws->depth--;
	return true;
}

/* -------------------------------------------------------------- handshake */

static bool accept_key(const char *key, size_t key_len, char out[32])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	bool ok = c && EVP_DigestInit_ex(c, EVP_sha1(), NULL) &&
		  EVP_DigestUpdate(c, key, key_len) &&
		  EVP_DigestUpdate(c, WS_GUID, sizeof(WS_GUID) - 1) &&
		  EVP_DigestFinal_ex(c, md, &mdlen) && mdlen == 20;

	EVP_MD_CTX_free(c);
	if (!ok)
		return false;
	sodium_bin2base64(out, 32, md, mdlen, sodium_base64_VARIANT_ORIGINAL);
	return true;
}

const char *mb_http_header(const char *head, const char *name, size_t *vlen)
{
	size_t nl = strlen(name);

	for (const char *l = strstr(head, "\r\n"); l && l[2] != '\r'; l = strstr(l + 2, "\r\n")) {
		const char *s = l + 2, *e;

		if (strncasecmp(s, name, nl) != 0 || s[nl] != ':')
			continue;
		s += nl + 1;
		while (*s == ' ' || *s == '\t')
			s++;
		e = strstr(s, "\r\n");
		if (!e)
			return NULL;
		while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		*vlen = (size_t)(e - s);
		return s;
	}
	return NULL;
}

static bool out_flush(struct mb_ws *ws)
{
	while (ws->out_off < ws->out_len) {
		ssize_t r = send(ws->fd, ws->out + ws->out_off, ws->out_len - ws->out_off,
				 MSG_NOSIGNAL);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			event_add(ws->wev, NULL);
			return true;
		}
		if (r <= 0)
			return false;
		ws->out_off += (size_t)r;
	}
	free(ws->out);
	ws->out = NULL;
	ws->out_len = ws->out_off = 0;
	return true;
}

static bool start_wslay(struct mb_ws *ws, size_t head_len)
{
	int rc = ws->server ? wslay_event_context_server_init(&ws->ctx, &wslay_cbs, ws)
			    : wslay_event_context_client_init(&ws->ctx, &wslay_cbs, ws);

	if (rc != 0)
		return false;
	wslay_event_config_set_max_recv_msg_length(ws->ctx, WS_MAX_MSG);
	if (ws->hs_len > head_len) {
		ws->pre_len = ws->hs_len - head_len;
		ws->pre = malloc(ws->pre_len);
		if (!ws->pre)
			return false;
		memcpy(ws->pre, ws->hs + head_len, ws->pre_len);
		ws->pre_off = 0;
	}
	ws->state = WS_OPEN;
	/* Open connections' reads go to the low-priority queue, so a busy
	 * process still completes every pending handshake first (join-storm);
	 * receive times are kernel timestamps, so the wait does not count. */
	(void)event_priority_set(ws->rev, 1);
	return true;
}

/* After the head was parsed (start_wslay copied what followed it). */
static void drop_head(struct mb_ws *ws)
{
	free(ws->hs);
	ws->hs = NULL;
	ws->hs_len = 0;
}

/* The client's 101 check; NULL when done, else why it failed; *more when
 * the head is incomplete. */
static const char *client_head(struct mb_ws *ws, bool *more)
{
	char *end = strstr(ws->hs, "\r\n\r\n");
	const char *v;
	size_t vlen;

	*more = false;
	if (!end) {
		*more = ws->hs_len < HS_MAX;
		return *more ? NULL : "upgrade response head too long";
	}
	end[2] = '\0';  /* mb_http_header() stops at the terminating empty line */
	if (strncmp(ws->hs, "HTTP/1.1 101", 12) != 0)
		return "upgrade refused (no 101)";
	v = mb_http_header(ws->hs, "sec-websocket-accept", &vlen);
	if (!v || vlen != strlen(ws->accept) || memcmp(v, ws->accept, vlen) != 0)
		return "bad Sec-WebSocket-Accept";
	if (!start_wslay(ws, (size_t)(end + 4 - ws->hs)))
		return "out of memory";
	return NULL;
}

static const char *server_head(struct mb_ws *ws, bool *more)
{
	char *end = strstr(ws->hs, "\r\n\r\n");
	char acc[32];
	const char *key;
	size_t klen;
	int n;

	*more = false;
	if (!end) {
		*more = ws->hs_len < HS_MAX;
		return *more ? NULL : "request head too long";
	}
	end[2] = '\0';
	key = mb_http_header(ws->hs, "sec-websocket-key", &klen);
	if (!key || !accept_key(key, klen, acc))
		return "no Sec-WebSocket-Key";
	ws->out = malloc(256);
	if (!ws->out)
		return "out of memory";
	n = snprintf(ws->out, 256,
		     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
		     "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n", acc);
	ws->out_len = (size_t)n;
	ws->out_off = 0;
	if (!start_wslay(ws, (size_t)(end + 4 - ws->hs)))
		return "out of memory";
	if (!out_flush(ws))
		return "write failed";
	return NULL;
}

static const char *read_head(struct mb_ws *ws)
{
	for (;;) {
		ssize_t r = recv(ws->fd, ws->hs + ws->hs_len, HS_MAX - ws->hs_len, 0);
		const char *why;
		bool more;

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return NULL;
		if (r < 0)
			return "read failed";
		if (r == 0)
			return "EOF during upgrade";
		ws->hs_len += (size_t)r;
		ws->hs[ws->hs_len] = '\0';
		stamp(ws, NULL);
		why = ws->server ? server_head(ws, &more) : client_head(ws, &more);
		if (!why && ws->state == WS_OPEN)
			drop_head(ws);
		if (why || !more)
			return why;
	}
}

static const char *send_request(struct mb_ws *ws, const char *host_hdr)
{
	unsigned char raw[16];
	char key[32];
	int n;

	randombytes_buf(raw, sizeof(raw));
	sodium_bin2base64(key, sizeof(key), raw, sizeof(raw), sodium_base64_VARIANT_ORIGINAL);
	if (!accept_key(key, strlen(key), ws->accept))
		return "sha1 failed";
	ws->out = malloc(512);
	if (!ws->out)
		return "out of memory";
	n = snprintf(ws->out, 512,
		     "GET /ws HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
		     "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n", host_hdr, key);
	if (n < 0 || n >= 512)
		return "host too long";
	ws->out_len = (size_t)n;
	ws->out_off = 0;
	return out_flush(ws) ? NULL : "write failed";
}

/* ---------------------------------------------------------------- events */

static void on_event(evutil_socket_t fd, short what, void *arg)
{
	struct mb_ws *ws = arg;
	const char *why = NULL;

	ws->depth++;
	if (ws->err) {
		why = ws->err;
		goto out;
	}
	switch (ws->state) {
	case WS_CONNECTING: {
		int err = 0;
		socklen_t len = sizeof(err);

		if (getsockopt(ws->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
			err = errno;
		if (err) {
			why = strerror(err);
			break;
		}
		ws->state = WS_UPGRADE;
		why = send_request(ws, ws->host);
		if (!why)
			event_add(ws->rev, NULL);
		break;
	}
	case WS_UPGRADE:
		if ((what & EV_WRITE) && ws->out && !out_flush(ws)) {
			why = "write failed";
			break;
		}
		if (what & EV_READ)
			why = read_head(ws);
		if (why || ws->state != WS_OPEN)
			break;
		if (ws->ops->open)
			ws->ops->open(ws);
		if (ws->dead)
			break;
		/* frames that came with the head */
		if (ws->pre_len && wslay_event_recv(ws->ctx) != 0) {
			why = "EOF";
			break;
		}
		if (!ws->dead && !ws_flush(ws, &why))
			break;
		break;
	case WS_OPEN:
		if ((what & EV_WRITE) && ws->out && !out_flush(ws)) {
			why = "write failed";
			break;
		}
		if ((what & EV_READ) && wslay_event_recv(ws->ctx) != 0) {
			why = "EOF";
			break;
		}
		if (!ws->dead)
			(void)ws_flush(ws, &why);
		break;
	}
out:
	if (why)
		ws_fail(ws, why);
	if (--ws->depth == 0 && ws->dead)
		ws_free(ws);
}

static struct mb_ws *ws_new(struct event_base *base, int fd, const struct mb_ws_ops *ops,
			    void *user)
{
	struct mb_ws *ws = calloc(1, sizeof(*ws));

	if (!ws)
		return NULL;
	ws->base = base;
	ws->fd = fd;
	ws->ops = ops;
	ws->user = user;
	ws->hs = malloc(HS_MAX + 1);
	ws->rev = event_new(base, fd, EV_READ | EV_PERSIST, on_event, ws);
	ws->wev = event_new(base, fd, EV_WRITE, on_event, ws);
	if (!ws->hs || !ws->rev || !ws->wev) {
		ws->fd = -1;
		ws_free(ws);
		return NULL;
	}
	/* fails harmlessly on a base without two priorities */
	(void)event_priority_set(ws->rev, 0);
	(void)event_priority_set(ws->wev, 0);
	return ws;
}

struct mb_ws *mb_ws_connect(struct event_base *base, const struct sockaddr_in *dst,
			    const struct sockaddr_in *src, const char *host_hdr,
			    const struct mb_ws_ops *ops, void *user, bool kernel_ts)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1, saved;
	struct mb_ws *ws;

	if (fd < 0)
		return NULL;
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (kernel_ts)
		(void)setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof(one));
	if (src) {
#ifdef IP_BIND_ADDRESS_NO_PORT
		(void)setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
#endif
		if (bind(fd, (const struct sockaddr *)src, sizeof(*src)) != 0)
			goto fail;
	}
	if (connect(fd, (const struct sockaddr *)dst, sizeof(*dst)) != 0 && errno != EINPROGRESS)
		goto fail;
	ws = ws_new(base, fd, ops, user);
	if (!ws)
		goto fail;
	ws->kernel_ts = kernel_ts;
	ws->state = WS_CONNECTING;
	ws->host = strdup(host_hdr);
	if (!ws->host) {
		ws_free(ws);
		return NULL;
	}
	event_add(ws->wev, NULL);
	return ws;
fail:
	saved = errno;
	close(fd);
	errno = saved;
	return NULL;
}

struct mb_ws *mb_ws_accept(struct event_base *base, int fd, const struct mb_ws_ops *ops,
			   void *user)
{
	int one = 1;
	struct mb_ws *ws = ws_new(base, fd, ops, user);

	if (!ws)
		return NULL;
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	ws->server = true;
	ws->state = WS_UPGRADE;
	event_add(ws->rev, NULL);
	return ws;
}
