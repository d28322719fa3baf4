/* hook — `hook R T [P D]`: POST /hook/set-status at R per second for T s,
 * beside dm-rate P D T on the same peers (dm.c runs that load and calls in
 * here through struct mb_side_ops).  Post i is scheduled at start + i/R for
 * peer i mod P and carries that peer's hello cwd, pid and session id, with
 * status "idle" every time: idle never holds a DM, so what the DM figures
 * show against a plain dm-rate run of the same P D T is the cost of the hook
 * path, not the gate's holding.
 *
 * HTTP: a small pool (--hook-conns, 4) of non-blocking keep-alive
 * connections on the run's base, one request in flight on each (no
 * pipelining).  A post goes out on an idle connection once its grid time
 * has come; one that finds none waits for the next answer ("scheduled->
 * sent" shows that wait, "scheduled->answer" counts it in).  The hook
 * latency is from the request's send() to the kernel receive time of the
 * answer's last bytes.  Every answer must be a 200 whose body is
 * {"ok":true,"presence_id":"<the peer's own presence>"}: a 429 (the broker
 * must run with an unreachable HOOK_RATE_LIMIT_PER_MIN), any other status,
 * a pending answer (no presence matched) or another presence fails the
 * scenario.
 *
 * Thread: main.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "meshbench.h"

#define HOOK_CONNS_MAX 64
#define HOOK_IN_MAX 4096        /* one answer's head and body */
#define HOOK_OUT_MAX 1024       /* one request */

static const char ok_prefix[] = "{\"ok\":true,\"presence_id\":\"";
static const char pending_body[] = "{\"ok\":true,\"pending\":true}";

enum hc_state { HC_DOWN, HC_CONNECTING, HC_IDLE, HC_BUSY };

struct hook;

struct hook_conn {
	struct hook *h;
	int fd;
	enum hc_state state;
	struct event *rev, *wev;
	char out[HOOK_OUT_MAX];
	size_t out_len, out_off;
	char in[HOOK_IN_MAX + 1];
	size_t in_len;
	size_t post;            /* the post in flight (HC_BUSY) */
	uint64_t t_sched, t_sent;
};

struct hook {
	struct mb_run *r;
	unsigned rate;
	size_t total, next, answered;
	uint64_t t0;
	bool started, setup, told, passed;
	struct hook_conn conns[HOOK_CONNS_MAX];
	unsigned nconns, connected;
	struct event *tick;
	struct mb_samples lat, sched_lat, lag;
	size_t ok, pending, non200, limited, bad_body, misrouted, lost, reconnects;
	long long req_before, req_after, rl_before, rl_after;
	char first_bad[200];
};

static void hook_dispatch(struct hook *h);

static uint64_t hook_sched(const struct hook *h, size_t i)
{
	return h->t0 + (uint64_t)((double)i * 1e9 / (double)h->rate);
}

/* Keeps the first failure: "what: detail". */
static void hook_bad(struct hook *h, const char *what, const char *detail, size_t len)
{
	if (!h->first_bad[0])
		snprintf(h->first_bad, sizeof(h->first_bad), "%s: %.*s", what, (int)len, detail);
}

/* All posts answered (or lost): dm-rate may end the run. */
static void hook_check_finished(struct hook *h)
{
	if (h->told || h->next < h->total || h->answered < h->total)
		return;
	h->told = true;
	mb_dm_side_finished(h->r);
}

/* ------------------------------------------------------------ connections */

/* Its events and socket go. */
static void hc_drop(struct hook_conn *c)
{
	if (c->rev)
		event_free(c->rev);
	if (c->wev)
		event_free(c->wev);
	c->rev = c->wev = NULL;
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

static void hc_close(struct hook_conn *c, const char *why)
{
	struct hook *h = c->h;

	hc_drop(c);
	if (c->state == HC_IDLE || c->state == HC_BUSY)
		h->connected--;
	if (c->state == HC_BUSY) {
		/* its post has no answer and never will */
		h->lost++;
		h->answered++;
		hook_bad(h, "connection lost with a post in flight", why, strlen(why));
	} else if (c->state == HC_CONNECTING) {
		hook_bad(h, "connect", why, strlen(why));
	}
	c->state = HC_DOWN;
	c->in_len = c->out_len = c->out_off = 0;
	if (h->setup)
		mb_run_stop(h->r);      /* prepare reports it */
	hook_check_finished(h);
}

/* The end: sockets and events go, nothing is counted. */
static void hc_release(struct hook_conn *c)
{
	hc_drop(c);
	c->state = HC_DOWN;
}

/* Writes what the socket takes; the write event for the rest. */
static bool hc_flush(struct hook_conn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			event_add(c->wev, NULL);
			return true;
		}
		if (n <= 0)
			return false;
		c->out_off += (size_t)n;
	}
	return true;
}

static bool hc_send(struct hook_conn *c, size_t post, uint64_t sched)
{
	struct hook *h = c->h;
	struct mb_run *r = h->r;
	struct mb_peer_id id;
	char body[256];
	int bn, n;

	/* the identity is digits and [0-9A-Za-z-/]: nothing to escape */
	mb_peer_identity(r, (uint32_t)(post % r->npeers), &id);
	bn = snprintf(body, sizeof(body),
		      "{\"cwd\":\"%s\",\"pid\":%lld,\"status\":\"idle\",\"session_id\":\"%s\"}",
		      id.cwd, id.pid, id.session_id);
	n = snprintf(c->out, sizeof(c->out),
		     "POST /hook/set-status HTTP/1.1\r\nHost: %s\r\n"
		     "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
		     r->host_hdr, bn, body);
	if (bn < 0 || (size_t)bn >= sizeof(body) || n < 0 || (size_t)n >= sizeof(c->out))
		return false;
	c->out_len = (size_t)n;
	c->out_off = 0;
	c->post = post;
	c->t_sched = sched;
	c->state = HC_BUSY;
	c->t_sent = mb_now_ns();
	mb_samples_add(&h->lag, c->t_sent - sched);
	if (!hc_flush(c)) {
		hc_close(c, "send failed");
		return false;
	}
	return true;
}

/* One whole answer in c->in: check it and count it. */
static void hc_answer(struct hook_conn *c, int status, const char *body, size_t blen,
		      uint64_t rx)
{
	struct hook *h = c->h;
	const struct mb_peer *p = &h->r->peers[c->post % h->r->npeers];
	size_t pl = sizeof(ok_prefix) - 1, il = strlen(p->presence_id);

	mb_samples_add(&h->lat, rx > c->t_sent ? rx - c->t_sent : 0);
	mb_samples_add(&h->sched_lat, rx > c->t_sched ? rx - c->t_sched : 0);
	h->answered++;
	if (status != 200) {
		h->non200++;
		if (status == 429)
			h->limited++;
		hook_bad(h, "non-200 answer", c->in, strcspn(c->in, "\r"));
	} else if (blen >= pl && memcmp(body, ok_prefix, pl) == 0) {
		if (il && blen == pl + il + 2 && memcmp(body + pl, p->presence_id, il) == 0 &&
		    memcmp(body + pl + il, "\"}", 2) == 0) {
			h->ok++;
		} else {
			h->misrouted++;
			hook_bad(h, "another presence", body, blen);
		}
	} else if (blen == sizeof(pending_body) - 1 && memcmp(body, pending_body, blen) == 0) {
		h->pending++;
		hook_bad(h, "no presence matched", body, blen);
	} else {
		h->bad_body++;
		hook_bad(h, "unexpected body", body, blen);
	}
}

/* Parses c->in; true when an answer was complete (handled) or the
 * connection was closed, false when more bytes are needed. */
static bool hc_parse(struct hook_conn *c, uint64_t rx)
{
	char *end = strstr(c->in, "\r\n\r\n"), *e = NULL;
	const char *v;
	size_t vlen, head, total;
	long status = 0;
	unsigned long long cl = ULLONG_MAX;
	bool close_after;

	if (!end)
		return false;
	if (strncmp(c->in, "HTTP/1.1 ", 9) == 0)
		status = strtol(c->in + 9, &e, 10);
	if (status < 100 || status > 599 || *e != ' ') {
		hc_close(c, "bad status line");
		return true;
	}
	end[2] = '\0';  /* mb_http_header stops at the empty line */
	v = mb_http_header(c->in, "content-length", &vlen);
	if (v && vlen && v[0] >= '0' && v[0] <= '9') {
		cl = strtoull(v, &e, 10);
		if (e != v + vlen)
			cl = ULLONG_MAX;
	}
	v = mb_http_header(c->in, "connection", &vlen);
	close_after = v && vlen == 5 && strncasecmp(v, "close", 5) == 0;
	end[2] = '\r';
	if (cl > HOOK_IN_MAX) {
		hc_close(c, "no usable Content-Length");
		return true;
	}
	head = (size_t)(end + 4 - c->in);
	total = head + (size_t)cl;
	if (c->in_len < total)
		return false;
	if (c->in_len > total) {
		hc_close(c, "bytes after the answer");
		return true;
	}
	hc_answer(c, (int)status, c->in + head, (size_t)cl, rx);
	c->in_len = 0;
	c->state = HC_IDLE;
	if (close_after)
		hc_close(c, "Connection: close");
	return true;
}

static void hc_read(struct hook_conn *c)
{
	struct hook *h = c->h;
	bool kernel_ts = !h->r->o->user_rx_clock;

	for (;;) {
		uint64_t rx = 0;
		ssize_t n;

		if (c->in_len >= HOOK_IN_MAX) {
			hc_close(c, "answer too long");
			return;
		}
		n = mb_recv_stamped(c->fd, c->in + c->in_len, HOOK_IN_MAX - c->in_len, kernel_ts,
				    &rx);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			hc_close(c, n ? "read failed" : "closed by the broker");
			return;
		}
		if (c->state != HC_BUSY) {
			h->bad_body++;
			hook_bad(h, "bytes without a request", c->in + c->in_len, (size_t)n);
			hc_close(c, "bytes without a request");
			return;
		}
		c->in_len += (size_t)n;
		c->in[c->in_len] = '\0';
		if (hc_parse(c, rx)) {
			/* the answer is in (or the connection gone): more posts */
			hook_dispatch(h);
			hook_check_finished(h);
			return;
		}
	}
}

static void hc_event(evutil_socket_t fd, short what, void *arg)
{
	struct hook_conn *c = arg;
	struct hook *h = c->h;

	if (c->state == HC_CONNECTING) {
		int err = 0;
		socklen_t len = sizeof(err);

		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
			err = errno;
		if (err) {
			hc_close(c, strerror(err));
			return;
		}
		c->state = HC_IDLE;
		h->connected++;
		event_add(c->rev, NULL);
		if (h->setup && h->connected == h->nconns)
			mb_run_stop(h->r);
		if (h->started)
			hook_dispatch(h);
		return;
	}
	if ((what & EV_WRITE) && c->state == HC_BUSY && !hc_flush(c)) {
		hc_close(c, "write failed");
		return;
	}
	if (what & EV_READ)
		hc_read(c);
}

static bool hc_connect(struct hook_conn *c)
{
	const struct mb_run *r = c->h->r;
	int one = 1;

	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return false;
	(void)setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (!r->o->user_rx_clock)
		(void)setsockopt(c->fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof(one));
	c->rev = event_new(r->base, c->fd, EV_READ | EV_PERSIST, hc_event, c);
	c->wev = event_new(r->base, c->fd, EV_WRITE, hc_event, c);
	c->state = HC_CONNECTING;
	if (!c->rev || !c->wev ||
	    (connect(c->fd, (const struct sockaddr *)&r->dst, sizeof(r->dst)) != 0 &&
	     errno != EINPROGRESS)) {
		hc_close(c, strerror(errno));
		return false;
	}
	/* reads as the peers' (kernel timestamps: the wait does not count) */
	(void)event_priority_set(c->rev, 1);
	(void)event_priority_set(c->wev, 0);
	event_add(c->wev, NULL);
	return true;
}

/* ------------------------------------------------------------- schedule */

/* An idle connection, else NULL (a lost one is reconnected meanwhile). */
static struct hook_conn *hook_idle_conn(struct hook *h)
{
	struct hook_conn *down = NULL;

	for (unsigned i = 0; i < h->nconns; i++) {
		if (h->conns[i].state == HC_IDLE)
			return &h->conns[i];
		if (h->conns[i].state == HC_DOWN && !down)
			down = &h->conns[i];
	}
	if (down && !h->told) {
		h->reconnects++;
		(void)hc_connect(down);
	}
	return NULL;
}

/* Sends every post whose grid time has come while a connection is idle,
 * then sleeps until the next grid point (or the next answer). */
static void hook_dispatch(struct hook *h)
{
	uint64_t now = mb_now_ns();

	while (h->next < h->total) {
		uint64_t sched = hook_sched(h, h->next);
		struct hook_conn *c;

		if (sched > now) {
			uint64_t wait = sched - now;
			struct timeval tv = { (time_t)(wait / MB_NS_PER_S),
					      (suseconds_t)(wait % MB_NS_PER_S / 1000) };

			evtimer_add(h->tick, &tv);
			return;
		}
		c = hook_idle_conn(h);
		if (!c)
			return;         /* the next answer (or connect) dispatches again */
		(void)hc_send(c, h->next++, sched);
		now = mb_now_ns();
	}
}

static void hook_tick(evutil_socket_t fd, short what, void *arg)
{
	struct hook *h = arg;

	hook_dispatch(h);
	hook_check_finished(h);
}

/* ------------------------------------------------------------ side ops */

static bool hook_prepare(void *side, struct mb_run *r)
{
	struct hook *h = side;
	const struct mb_opts *o = r->o;
	unsigned i;

	h->r = r;
	for (size_t k = 0; k < r->npeers; k++) {
		if (!r->peers[k].presence_id[0]) {
			fprintf(stderr, "meshbench: peer %zu's hello_ack has no presenceId\n", k);
			return false;
		}
	}
	h->tick = evtimer_new(r->base, hook_tick, h);
	if (!h->tick)
		return false;
	(void)event_priority_set(h->tick, 0);   /* the grid comes before reading */
	h->req_before = mb_metric(o, "broker_hook_requests_total");
	h->rl_before = mb_metric(o, "broker_hook_requests_rate_limited_total");
	/* connect the pool before the measured phase */
	h->setup = true;
	for (i = 0; i < h->nconns; i++)
		if (!hc_connect(&h->conns[i]))
			break;
	if (i == h->nconns)
		mb_run_loop(r, o->timeout_s);   /* until all are up or one failed */
	h->setup = false;
	r->done = false;
	if (h->connected < h->nconns) {
		fprintf(stderr, "meshbench: %u of %u hook connections up%s%s\n", h->connected,
			h->nconns, h->first_bad[0] ? ": " : "", h->first_bad);
		return false;
	}
	return true;
}

static void hook_start(void *side, uint64_t t0)
{
	struct hook *h = side;

	h->t0 = t0;
	h->started = true;
	hook_dispatch(h);
	hook_check_finished(h);         /* R x T may round to no post at all */
}

static bool hook_finished(void *side)
{
	const struct hook *h = side;

	return h->told;
}

/* After the measured phase: the broker's own count, and the verdict. */
static void hook_stop(void *side)
{
	struct hook *h = side;
	const struct mb_opts *o = h->r->o;

	for (unsigned i = 0; i < h->nconns; i++) {
		if (h->conns[i].state == HC_BUSY) {
			h->lost++;      /* still unanswered when the run ended */
			hook_bad(h, "no answer by the end", "", 0);
		}
	}
	h->req_after = mb_metric(o, "broker_hook_requests_total");
	h->rl_after = mb_metric(o, "broker_hook_requests_rate_limited_total");
	h->passed = h->told && h->ok == h->total && !h->non200 && !h->pending &&
		    !h->misrouted && !h->bad_body && !h->lost &&
		    (h->rl_before < 0 || h->rl_after < 0 || h->rl_after == h->rl_before);
}

static bool hook_ok(void *side)
{
	const struct hook *h = side;

	return h->passed;
}

static void hook_release(void *side)
{
	struct hook *h = side;

	for (unsigned i = 0; i < h->nconns; i++)
		hc_release(&h->conns[i]);
	if (h->tick)
		event_free(h->tick);
	h->tick = NULL;
}

static long long delta(long long before, long long after)
{
	return before < 0 || after < 0 ? -1 : after - before;
}

static void hook_print(void *side)
{
	struct hook *h = side;

	mb_samples_row(&h->lat, "hook sent->answer");
	mb_samples_row(&h->sched_lat, "hook scheduled->answer");
	mb_samples_row(&h->lag, "hook scheduled->sent");
	printf("  hooks: %s: posted %zu of %zu at %u/s over %u connections, answered %zu:"
	       " ok %zu, non-200 %zu (429: %zu), pending %zu, another presence %zu,"
	       " other bodies %zu, lost %zu; reconnects %zu\n",
	       h->passed ? "all ok" : "FAILED", h->next, h->total, h->rate,
	       h->nconns, h->answered, h->ok, h->non200, h->limited, h->pending, h->misrouted,
	       h->bad_body, h->lost, h->reconnects);
	printf("  broker should run with HOOK_RATE_LIMIT_PER_MIN above any peer's posts;"
	       " /metrics over the run: %lld hook requests, %lld rate limited\n",
	       delta(h->req_before, h->req_after), delta(h->rl_before, h->rl_after));
	if (h->first_bad[0])
		printf("  first hook failure: %s\n", h->first_bad);
}

static void hook_json(void *side, json_t *res)
{
	struct hook *h = side;

	json_object_set_new(res, "hook_n", json_integer((json_int_t)h->lat.n));
	json_object_set_new(res, "hook_p50_ms",
			    json_real((double)mb_samples_pct(&h->lat, 50) / 1e6));
	json_object_set_new(res, "hook_p99_ms",
			    json_real((double)mb_samples_pct(&h->lat, 99) / 1e6));
	json_object_set_new(res, "hook_ms", mb_samples_json(&h->lat));
	json_object_set_new(res, "hook_sched_ms", mb_samples_json(&h->sched_lat));
	json_object_set_new(res, "hook_lag_ms", mb_samples_json(&h->lag));
	json_object_set_new(res, "hook", json_pack(
		"{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
		"total", (json_int_t)h->total, "posted", (json_int_t)h->next,
		"answered", (json_int_t)h->answered, "ok", (json_int_t)h->ok,
		"non200", (json_int_t)h->non200, "rate_limited", (json_int_t)h->limited,
		"pending", (json_int_t)h->pending, "misrouted", (json_int_t)h->misrouted,
		"bad_body", (json_int_t)h->bad_body, "lost", (json_int_t)h->lost,
		"reconnects", (json_int_t)h->reconnects,
		"metric_requests", (json_int_t)delta(h->req_before, h->req_after)));
	json_object_set_new(json_object_get(res, "hook"), "metric_rate_limited",
			    json_integer(delta(h->rl_before, h->rl_after)));
}

static const struct mb_side_ops hook_side_ops = {
	.prepare = hook_prepare,
	.start = hook_start,
	.finished = hook_finished,
	.stop = hook_stop,
	.print = hook_print,
	.json = hook_json,
	.ok = hook_ok,
	.release = hook_release,
};

int mb_hook(const struct mb_opts *o, unsigned hook_rate, double seconds, unsigned peers,
	    unsigned dm_rate, json_t **out)
{
	struct hook *h = calloc(1, sizeof(*h));
	json_t *params;
	int st;

	if (!h)
		return 2;
	if (!hook_rate || seconds <= 0) {
		fprintf(stderr, "meshbench: hook needs R > 0 and T > 0\n");
		free(h);
		return 2;
	}
	h->rate = hook_rate;
	h->total = (size_t)((double)hook_rate * seconds);
	h->nconns = o->hook_conns < 1 ? 1 : o->hook_conns > HOOK_CONNS_MAX ? HOOK_CONNS_MAX :
		    o->hook_conns;
	for (unsigned i = 0; i < h->nconns; i++)
		h->conns[i] = (struct hook_conn){ .h = h, .fd = -1 };
	params = mb_params_common(o);
	json_object_set_new(params, "hook_rate", json_integer(hook_rate));
	json_object_set_new(params, "hook_conns", json_integer(h->nconns));
	json_object_set_new(params, "hook_status", json_string("idle"));
	st = mb_dm_rate_side(o, peers, dm_rate, seconds, "hook", params, &hook_side_ops, h, out);
	mb_samples_free(&h->lat);
	mb_samples_free(&h->sched_lat);
	mb_samples_free(&h->lag);
	json_decref(params);
	free(h);
	return st;
}
