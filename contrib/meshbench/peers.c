/* peers — a run's peers: connect (bounded), upgrade, member hello, frame
 * dispatch to the scenario, and the loop.  Thread: the one running the
 * run's base.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "meshbench.h"

static void peer_open(struct mb_ws *ws);
static void peer_msg(struct mb_ws *ws, const char *data, size_t len, uint64_t rx_ns);
static void peer_closed(struct mb_ws *ws, const char *why);
static void peer_gone(struct mb_peer *p, const char *why);
static void peer_ready(struct mb_run *r, struct mb_peer *p, uint64_t rx_ns);

static const struct mb_ws_ops peer_ws_ops = {
	.open = peer_open,
	.msg = peer_msg,
	.closed = peer_closed,
};

bool mb_resolve(const struct mb_opts *o, struct sockaddr_in *dst, char *host_hdr, size_t len)
{
	struct addrinfo hints = { .ai_family = AF_INET, .ai_socktype = SOCK_STREAM }, *ai = NULL;

	memset(dst, 0, sizeof(*dst));
	if (getaddrinfo(o->host, NULL, &hints, &ai) != 0 || !ai) {
		fprintf(stderr, "meshbench: cannot resolve %s (IPv4)\n", o->host);
		return false;
	}
	memcpy(dst, ai->ai_addr, sizeof(*dst));
	dst->sin_port = htons((uint16_t)o->port);
	freeaddrinfo(ai);
	snprintf(host_hdr, len, "%s:%d", o->host, o->port);
	return true;
}

static void deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	struct mb_run *r = arg;

	r->timed_out = true;
	event_base_loopbreak(r->base);
}

bool mb_run_init(struct mb_run *r, const struct mb_opts *o, struct event_base *base,
		 size_t npeers, const struct mb_peer_ops *ops, void *scenario)
{
	char err[512];
	bool seeded = r->mesh.n > 0;    /* the caller seeded (idle's children) */

	r->o = o;
	r->base = base;
	r->ops = ops;
	r->scenario = scenario;
	r->npeers = npeers;
	r->rng.s = o->seed;
	mc_random_id(r->run_id, sizeof(r->run_id));
	if (!mb_resolve(o, &r->dst, r->host_hdr, sizeof(r->host_hdr)))
		return false;
	if (!seeded) {
		uint64_t t0 = mb_now_ns();

		if (!mb_mesh_seed(o->db_url, npeers, 0, &r->mesh, err, sizeof(err))) {
			fprintf(stderr, "meshbench: seeding failed: %s\n", err);
			return false;
		}
		if (!o->quiet)
			fprintf(stderr, "meshbench: seeded mesh %s with %zu members (%.2f s)\n",
				r->mesh.id, npeers, (double)(mb_now_ns() - t0) / MB_NS_PER_S);
		r->own_mesh = true;
	}
	r->crypto = mb_crypto_new(&r->mesh, o->full_crypto);
	r->peers = calloc(npeers ? npeers : 1, sizeof(*r->peers));
	r->deadline = evtimer_new(base, deadline_cb, r);
	if (!r->crypto || !r->peers || !r->deadline) {
		fprintf(stderr, "meshbench: out of memory\n");
		return false;
	}
	(void)event_priority_set(r->deadline, 0);
	for (size_t i = 0; i < npeers; i++) {
		r->peers[i].run = r;
		r->peers[i].idx = (uint32_t)i;
	}
	return true;
}

static bool peer_start(struct mb_run *r, struct mb_peer *p)
{
	struct sockaddr_in src, *srcp = NULL;

	if (r->per_src) {
		memset(&src, 0, sizeof(src));
		src.sin_family = AF_INET;
		src.sin_addr.s_addr = htonl(0x7f000002u + (uint32_t)(p->idx / r->per_src));
		srcp = &src;
	}
	p->t_start_ns = mb_now_ns();
	p->ws = mb_ws_connect(r->base, &r->dst, srcp, r->host_hdr, &peer_ws_ops, p,
			      !r->o->user_rx_clock);
	if (!p->ws) {
		if (!r->first_error[0])
			snprintf(r->first_error, sizeof(r->first_error), "connect: %s",
				 strerror(errno));
		p->state = PEER_GONE;
		r->gone++;
		return false;
	}
	p->state = PEER_CONNECTING;
	r->connecting++;
	return true;
}

/* Starts connections until max_inflight are in progress. */
static void start_more(struct mb_run *r)
{
	while (r->next_connect < r->connect_to &&
	       (!r->max_inflight_connects || r->connecting < r->max_inflight_connects)) {
		struct mb_peer *p = &r->peers[r->next_connect++];

		if (!peer_start(r, p) && r->ops->gone)
			r->ops->gone(p, "connect failed");
	}
}

void mb_run_connect(struct mb_run *r, size_t from, size_t to, size_t max_inflight)
{
	r->next_connect = from;
	r->connect_to = to;
	r->max_inflight_connects = max_inflight;
	start_more(r);
}

static void peer_open(struct mb_ws *ws)
{
	struct mb_peer *p = mb_ws_user(ws);
	struct mb_run *r = p->run;
	struct mb_member *m = &r->mesh.m[p->idx];
	struct mb_peer_id id;
	char name[32];
	char *hello;

	if (r->o->no_hello) {   /* idle --no-hello: the transport's cost alone */
		p->state = PEER_HELLO;
		peer_ready(r, p, mb_now_ns());
		return;
	}
	mb_peer_identity(r, p->idx, &id);
	snprintf(name, sizeof(name), "mb-%u", p->idx);
	hello = mc_hello(&m->key, &(struct mc_hello_opts){
		.mesh_id = mb_mesh_id_of(&r->mesh, p->idx), .member_id = m->id, .display_name = name,
		.session_id = id.session_id, .pid = id.pid, .cwd = id.cwd,
		.hostname = "meshbench", .peer_type = "ai", .channel = "meshbench",
	});
	p->state = PEER_HELLO;
	if (!hello || !mb_ws_send(ws, hello, strlen(hello))) {
		free(hello);
		mb_ws_close(ws, true);
		p->ws = NULL;
		peer_gone(p, "hello failed");
		return;
	}
	r->frames_out++;
	free(hello);
}

/* Not a process: a number of the peer's own.  The cwd carries the run id,
 * so peers of two runs never share a (cwd, pid) nor a cwd. */
void mb_peer_identity(const struct mb_run *r, uint32_t idx, struct mb_peer_id *id)
{
	snprintf(id->session_id, sizeof(id->session_id), "meshbench-%s-%u", r->run_id, idx);
	snprintf(id->cwd, sizeof(id->cwd), "/nonexistent/meshbench/%s/%u", r->run_id, idx);
	id->pid = MB_PEER_PID_BASE + (long long)idx;
}

bool mb_peer_send(struct mb_peer *p, char *frame)
{
	bool ok = frame && p->state == PEER_READY && mb_ws_send(p->ws, frame, strlen(frame));

	if (ok)
		p->run->frames_out++;
	free(frame);
	return ok;
}

static void peer_ready(struct mb_run *r, struct mb_peer *p, uint64_t rx_ns)
{
	p->state = PEER_READY;
	p->t_ack_ns = rx_ns;
	p->ack_order = ++r->ack_rank;
	r->connecting--;
	r->ready++;
	mb_samples_add(&r->hello_lat, rx_ns > p->t_start_ns ? rx_ns - p->t_start_ns : 0);
	if (r->ops->ready)
		r->ops->ready(p);
	start_more(r);
	if (r->want_ready && r->ready + r->gone >= r->want_ready)
		mb_run_stop(r);
}

static void hello_done(struct mb_run *r, struct mb_peer *p, struct mc_frame *f, uint64_t rx_ns)
{
	if (f->type == MC_HELLO_ACK) {
		snprintf(p->presence_id, sizeof(p->presence_id), "%s",
			 f->hello_ack.presence_id ? f->hello_ack.presence_id : "");
		peer_ready(r, p, rx_ns);
		return;
	}
	if (f->type == MC_ERROR) {
		r->hello_errors++;
		if (f->error.code && strcmp(f->error.code, "capacity") == 0)
			r->capacity_errors++;
		if (!r->first_error[0])
			snprintf(r->first_error, sizeof(r->first_error), "hello refused: %s (%s)",
				 f->error.code ? f->error.code : "?",
				 f->error.message ? f->error.message : "");
	}
}

/* Fast path for system pushes, which are O(P^2) in a join and would make
 * the load generator, not the broker, the bottleneck if each went through
 * jansson: find the event name and eventData.pubkey in the raw bytes.  Our
 * own mesh's display names (mb-N) cannot fake the markers.  False when the
 * frame is not one (or does not look as expected): it is parsed fully then. */
static bool system_fast(struct mb_run *r, struct mb_peer *p, const char *data, size_t len,
			uint64_t rx_ns)
{
	static const char head[] = "{\"type\":\"push\"", sys[] = "\"subtype\":\"system\"",
			  ev[] = "\"event\":\"", pk[] = "\"pubkey\":\"";
	const char *e, *ee, *k;

	if (len < 40 || memcmp(data, head, sizeof(head) - 1) != 0 ||
	    !memmem(data, len, sys, sizeof(sys) - 1))
		return false;
	e = memmem(data, len, ev, sizeof(ev) - 1);
	if (!e)
		return false;
	e += sizeof(ev) - 1;
	ee = memchr(e, '"', len - (size_t)(e - data));
	if (!ee)
		return false;
	k = memmem(data, len, pk, sizeof(pk) - 1);
	if (k && (size_t)(data + len - (k + sizeof(pk) - 1)) > MC_PK_HEX_LEN &&
	    k[sizeof(pk) - 1 + MC_PK_HEX_LEN] == '"')
		k += sizeof(pk) - 1;
	else
		k = NULL;
	r->system_in++;
	if (r->ops->system)
		r->ops->system(p, e, (size_t)(ee - e), k, rx_ns);
	return true;
}

static void peer_msg(struct mb_ws *ws, const char *data, size_t len, uint64_t rx_ns)
{
	struct mb_peer *p = mb_ws_user(ws);
	struct mb_run *r = p->run;
	uint64_t now = mb_now_ns();
	struct mc_frame f;

	r->frames_in++;
	r->bytes_in += len;
	mb_samples_add(&r->rx_lag, now > rx_ns ? now - rx_ns : 0);
	if (!r->o->full_parse && system_fast(r, p, data, len, rx_ns))
		return;
	if (!r->o->full_parse && r->ops->raw && p->state == PEER_READY &&
	    r->ops->raw(p, data, len, rx_ns))
		return;
	if (!mc_parse(data, len, &f)) {
		r->parse_errors++;
		return;
	}
	if (p->state == PEER_HELLO && (f.type == MC_HELLO_ACK || f.type == MC_ERROR)) {
		hello_done(r, p, &f, rx_ns);
	} else if (f.type == MC_PUSH && f.push.system) {
		const char *k = NULL;
		json_t *v = f.push.event_data ? json_object_get(f.push.event_data, "pubkey") : NULL;

		if (json_is_string(v) && strlen(json_string_value(v)) == MC_PK_HEX_LEN)
			k = json_string_value(v);
		r->system_in++;
		if (r->ops->system)
			r->ops->system(p, f.push.event ? f.push.event : "",
				       f.push.event ? strlen(f.push.event) : 0, k, rx_ns);
	} else if (r->ops->frame) {
		r->ops->frame(p, &f, rx_ns);
	}
	mc_frame_free(&f);
}

static void peer_gone(struct mb_peer *p, const char *why)
{
	struct mb_run *r = p->run;
	enum mb_peer_state was = p->state;

	p->ws = NULL;
	if (was == PEER_GONE)
		return;
	p->state = PEER_GONE;
	r->gone++;
	if (was == PEER_CONNECTING || was == PEER_HELLO)
		r->connecting--;
	else if (was == PEER_READY)
		r->ready--;
	if (!r->first_error[0] && !r->done)
		snprintf(r->first_error, sizeof(r->first_error), "peer %u: %s", p->idx, why);
	if (r->ops->gone)
		r->ops->gone(p, why);
	if (was == PEER_CONNECTING || was == PEER_HELLO)
		start_more(r);
	if (r->want_ready && r->ready + r->gone >= r->want_ready)
		mb_run_stop(r);
	/* nobody left to wait for (the broker went away): stop now */
	if (!r->ready && !r->connecting && r->next_connect >= r->connect_to)
		mb_run_stop(r);
}

static void peer_closed(struct mb_ws *ws, const char *why)
{
	peer_gone(mb_ws_user(ws), why);
}

void mb_run_loop(struct mb_run *r, double seconds)
{
	struct timeval tv = {
		.tv_sec = (time_t)seconds,
		.tv_usec = (suseconds_t)((seconds - (double)(time_t)seconds) * 1e6),
	};

	r->timed_out = false;
	evtimer_add(r->deadline, &tv);
	while (!r->done && !r->timed_out)
		if (event_base_loop(r->base, EVLOOP_ONCE) < 0)
			break;
	evtimer_del(r->deadline);
}

void mb_run_stop(struct mb_run *r)
{
	r->done = true;
	event_base_loopbreak(r->base);
}

void mb_run_free(struct mb_run *r)
{
	r->done = true;
	for (size_t i = 0; r->peers && i < r->npeers; i++) {
		if (r->peers[i].ws)
			mb_ws_close(r->peers[i].ws, true);
		r->peers[i].ws = NULL;
	}
	free(r->peers);
	r->peers = NULL;
	if (r->deadline)
		event_free(r->deadline);
	r->deadline = NULL;
	mb_crypto_free(r->crypto);
	r->crypto = NULL;
	if (r->own_mesh) {
		if (r->o->cleanup && !mb_mesh_delete(r->o->db_url, &r->mesh))
			fprintf(stderr, "meshbench: could not delete mesh %s\n", r->mesh.id);
		mb_mesh_free(&r->mesh);
	}
	mb_samples_free(&r->hello_lat);
	mb_samples_free(&r->rx_lag);
}
