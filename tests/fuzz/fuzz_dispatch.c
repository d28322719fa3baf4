/* fuzz_dispatch — libFuzzer harness for the mesh protocol above the
 * transport: src/dispatch.c with every WebSocket handler (send, client_ack,
 * message_status, list_peers, set_*, join/leave_group) and every HTTP route
 * of endpoint.c (/hook/set-status, /join, /invites/:code/claim, /health,
 * /metrics, ...), on one real shard whose database is a stub.
 *
 * Build (every src/ file but main.c, meshctl.c and notify.c):
 *        clang -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude -I build \
 *        -Icontrib/meshclient -I/usr/include/postgresql tests/fuzz/fuzz_dispatch.c \
 *        contrib/meshclient/meshclient.c build/src/migrations_sql.c \
 *        src/[!mn]*.c src/map.c src/metrics.c src/migrate.c src/msgstatus.c \
 *        -levent_core -lpq -lsodium -ljansson -lwslay -lcrypto -lpthread -o /tmp/fuzz_dispatch
 * Run:   /tmp/fuzz_dispatch tests/fuzz/corpus/dispatch
 *
 * The world: one shard (worker 0 of 1) with its conntab, inbox, hook rate
 * table and pending table; connections over socketpairs through
 * dispatch_conn_ops, as the acceptor hands them over; and db_new_stub(),
 * whose jobs this file answers in submission order, a turn after they were
 * submitted, as the db thread would: the member lookup of a hello gets the
 * row of member A or B (by pubkey, SEMANTICS.md §B.11), every other job an
 * empty result -- or, while the input says the database fails, an error.  The loop turns as worker.c's does: events, inbox, then the
 * iteration's deferred work (flushes, uncorks, frees).
 *
 * Input: a mode byte, then lines ('\n'); each line's first byte is an action:
 *   a/b <json>   a WebSocket text message from peer A / B (A says hello
 *                before the first line, B before its own first one)
 *   A/B          peer A / B (re)connects with a fresh signed hello
 *   x/y          peer A / B's socket closes
 *   h <body>     POST /hook/set-status
 *   j <body>     POST /join
 *   c <body>     POST /invites/fuzzcode/claim
 *   g <target>   GET <target>
 *   d            the database starts (or stops) failing every job but the
 *                member lookup, as statements fail while PostgreSQL is down
 * Mode bits: 0 the database fails from the first line on (after A's
 * hello); 1 B's grants refuse A everything; 2 A's lookup has a saved peer
 * state (§5.5); 3 no hello unless a line asks for one (frames arrive
 * pre-handshake); 4 A says session_hello (a session key attested by A's
 * member key); 5 the lookup says A's sessionPubkey belongs to another
 * member.
 *
 * Checked, besides memory safety and leaks: each hello the harness sends
 * is accepted (hello_ack) unless the mode's stub state refuses it, so the
 * fuzzer always reaches the handlers; every frame the broker sends is a
 * JSON object with a string "type" and valid UTF-8; an error frame's code
 * is one the contract lists (PROTOCOL.md §16.2, limits.h's
 * limit_exceeded); an ack is one of a send's (queued true with a
 * messageId, or false with an error string) or of set_visible/set_profile,
 * and there are never more acks than such requests, nor more
 * message_status answers than message_status requests; every HTTP answer
 * has a status line and a JSON object body; and after every step the
 * shard's indexes agree with its lists (each presence in by_id and under
 * its keys in by_key, the counts right).
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <sodium.h>

#include "meshclient.h"
#include "meshd/config.h"
#include "meshd/conn.h"
#include "meshd/conntab.h"
#include "meshd/db.h"
#include "meshd/dbjob.h"
#include "meshd/dbstream.h"
#include "meshd/dispatch.h"
#include "meshd/hello.h"
#include "meshd/hook.h"
#include "meshd/hookrate.h"
#include "meshd/inbox.h"
#include "meshd/jscompat.h"
#include "meshd/log.h"
#include "meshd/map.h"
#include "meshd/pending.h"
#include "meshd/route.h"
#include "meshd/session.h"
#include "meshd/shard.h"
#include "meshd/thread.h"
#include "meshd/utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define require(cond) require_at((cond), #cond, __LINE__)
static void require_at(int cond, const char *what, int line)
{
	if (!cond) {
		fprintf(stderr, "fuzz_dispatch: %d: %s\n", line, what);
		abort();
	}
}

enum {
	MODE_DB_FAILS = 1 << 0,
	MODE_GRANTS_BLOCK = 1 << 1,
	MODE_SAVED_STATE = 1 << 2,
	MODE_NO_HELLO = 1 << 3,
	MODE_SESSION_HELLO = 1 << 4,
	MODE_KEY_TAKEN = 1 << 5,
};

#define MESH_ID "mesh-fuzz"
#define NPEERS 2

static struct config cfg;
static struct mc_identity ids[NPEERS], session_id_a;
static const char *const member_ids[NPEERS] = { "member-a", "member-b" };

static void setup_once(void)
{
	static bool done;
	if (done)
		return;
	done = true;
	char err[256];
	require(config_load(&cfg, 1, (char *[]){ "fuzz", NULL }, stdout, err, sizeof(err)) ==
		CONFIG_OK);
	cfg.workers = 1;
	cfg.max_message_bytes = 1024;        /* small bounds, so inputs reach them */
	cfg.max_connections_per_mesh = 3;
	cfg.conn_max_output_bytes = 256 * 1024;
	cfg.invite_v2_enabled = true;
	thread_set_role(THREAD_WORKER, 0);
	/* The broker's log lines would be most of the run's time and output;
	 * MESHD_FUZZ_LOG=1 keeps its errors. */
	log_set_level(getenv("MESHD_FUZZ_LOG") ? LOG_ERROR : (enum log_level)(LOG_ERROR + 1));
	unsigned char seed[32];
	for (int i = 0; i < NPEERS; i++) {
		memset(seed, 0x01 + i, sizeof(seed));
		require(mc_identity_from_seed(seed, &ids[i]));
	}
	memset(seed, 0x05, sizeof(seed));
	require(mc_identity_from_seed(seed, &session_id_a));
}

/* ---- the world ------------------------------------------------------------ */

struct peer {
	int fd;                   /* the client's end; -1 when closed */
	unsigned char *in;        /* bytes from the broker not yet parsed */
	size_t in_len, in_cap;
	bool upgraded;            /* past the 101 head */
	bool hello_acked;
	/* What this socket asked and was answered (the counting properties). */
	unsigned acks, ackable, statuses, status_asks;
};

struct world {
	unsigned mode;
	struct event_base *base;
	struct inbox inbox;
	struct inbox *inboxes[1];
	struct conntab tab;
	struct shard shard;
	struct db *db;
	struct hookrate *hookrate;
	struct pending *pending;
	struct db_jobq jobs;      /* submitted, not yet answered */
	bool db_failing;
	struct peer peers[NPEERS];
	bool started[NPEERS];     /* connected at least once */
};

static void stub_run(struct db_job *job, void *arg)
{
	struct world *w = arg;
	db_jobq_push(&w->jobs, job);
}

static void set(PGresult *res, int col, const char *v)
{
	if (v)
		require(PQsetvalue(res, 0, col, (char *)v, (int)strlen(v)));
}

/* The member lookup's row (handshake.c member_sql: 12 columns, then
 * PEERSTATE_SQL_COLUMNS' 7). */
static PGresult *member_row(const struct world *w, const char *pubkey)
{
	PGresult *res = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);
	PGresAttDesc att[19];
	memset(att, 0, sizeof(att));
	for (int i = 0; i < 19; i++)
		att[i].name = (char *)"c";
	require(PQsetResultAttrs(res, 19, att));
	int who = -1;
	for (int i = 0; i < NPEERS; i++)
		if (strcmp(pubkey, ids[i].pk_hex) == 0)
			who = i;
	if (who < 0)
		return res; /* no such member: 0 rows, unauthorized */
	char grants[200] = "{}";
	if (who == 1 && (w->mode & MODE_GRANTS_BLOCK))
		snprintf(grants, sizeof(grants), "{\"%s\": []}", ids[0].pk_hex);
	const char *const row[12] = {
		"Fuzz mesh", "fuzz", "f", "[\"summary\",\"groups\"]", member_ids[who],
		who ? "bob" : "alice", NULL, "[{\"name\":\"general\"}]", "push", grants, "f",
		who == 0 && (w->mode & MODE_KEY_TAKEN) ? "t" : "f",
	};
	for (int i = 0; i < 12; i++)
		set(res, i, row[i]);
	bool saved = who == 0 && (w->mode & MODE_SAVED_STATE);
	set(res, 12, saved ? "t" : "f");
	if (saved) {
		set(res, 13, "[{\"name\":\"ops\",\"role\":\"lead\"}]");
		set(res, 14, "{\"bio\":\"x\"}");
		set(res, 15, "t");
		set(res, 16, "was here");
		set(res, 17, "{\"messagesIn\":3,\"toolCalls\":1e300}");
		set(res, 18, "2026-01-01T00:00:00.000Z");
	}
	return res;
}

/* Answers every job submitted so far, in order, as the db thread would. */
static bool db_turn(struct world *w)
{
	struct db_jobq now = w->jobs;
	memset(&w->jobs, 0, sizeof(w->jobs));
	bool moved = false;
	struct db_job *j;
	while ((j = db_jobq_pop(&now))) {
		moved = true;
		bool lookup = strncmp(j->sql, "SELECT ms.name, ms.slug,", 24) == 0;
		if (lookup) {
			j->ok = true;
			j->res = member_row(w, j->params[1] ? j->params[1] : "");
		} else if (w->db_failing) {
			j->ok = false;
			snprintf(j->error, sizeof(j->error), "stub: database unavailable");
		} else {
			j->ok = true;
			j->res = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);
		}
		db_job_finish(j);
	}
	return moved;
}

static bool inbox_turn(struct world *w)
{
	struct msg *m = inbox_take_all(&w->inbox);
	bool moved = m != NULL;
	while (m) {
		struct msg *next = m->next;
		if (m->type == MSG_DB_DONE)
			db_job_finish((struct db_job *)m);
		else if (m->type >= MSG_HOOK_FIND && m->type <= MSG_HOOK_APPLIED)
			hook_on_message(&w->shard, (struct msg_hook *)m);
		else
			require(!"a message the harness does not expect");
		m = next;
	}
	return moved;
}

/* ---- what the broker sends ------------------------------------------------- */

static bool error_code_known(const char *code)
{
	static const char *const core[] = { "no_hello", "invalid_argument", "not_found",
					    "ambiguous_prefix", "limit_exceeded" };
	for (size_t i = 0; i < sizeof(core) / sizeof(core[0]); i++)
		if (strcmp(code, core[i]) == 0)
			return true;
	for (int r = HELLO_OK + 1; r < HR__COUNT; r++)
		if (strcmp(code, hello_rejection((enum hello_reject)r)->code) == 0)
			return true;
	return false;
}

static void check_frame(struct peer *p, const unsigned char *b, size_t n)
{
	require(utf8_valid((const char *)b, n));
	json_error_t err;
	json_t *f = json_loadb((const char *)b, n, JSON_ALLOW_NUL, &err);
	require(json_is_object(f));
	const char *type = js_field(f, "type");
	require(type != NULL);
	if (strcmp(type, "hello_ack") == 0) {
		require(!p->hello_acked);
		p->hello_acked = true;
	} else if (strcmp(type, "error") == 0) {
		const char *code = js_field(f, "code");
		require(code && error_code_known(code));
		if (strcmp(code, "invalid_argument") == 0 || strcmp(code, "not_found") == 0 ||
		    strcmp(code, "ambiguous_prefix") == 0)
			p->statuses++;
	} else if (strcmp(type, "ack") == 0) {
		const json_t *q = json_object_get(f, "queued");
		require(json_is_boolean(q));
		if (json_is_true(q))
			require(js_field(f, "messageId") != NULL);
		p->acks++;
	} else if (strcmp(type, "message_status_result") == 0) {
		p->statuses++;
	}
	require(p->acks <= p->ackable);
	require(p->statuses <= p->status_asks);
	json_decref(f);
}

/* Parses what arrived: the 101 head, then server frames (never masked). */
static void parse_input(struct peer *p)
{
	size_t i = 0;
	if (!p->upgraded) {
		unsigned char *end = memmem(p->in, p->in_len, "\r\n\r\n", 4);
		if (!end)
			return;
		require(p->in_len >= 13 && memcmp(p->in, "HTTP/1.1 101 ", 13) == 0);
		p->upgraded = true;
		i = (size_t)(end + 4 - p->in);
	}
	while (p->in_len - i >= 2) {
		const unsigned char *h = p->in + i;
		require((h[1] & 0x80) == 0);
		size_t len = h[1] & 0x7f, hdr = 2;
		if (len == 126) {
			if (p->in_len - i < 4)
				break;
			len = (size_t)h[2] << 8 | h[3];
			hdr = 4;
		} else if (len == 127) {
			if (p->in_len - i < 10)
				break;
			len = 0;
			for (int k = 0; k < 8; k++)
				len = len << 8 | h[2 + k];
			hdr = 10;
		}
		if (len > p->in_len - i - hdr)
			break;
		int op = h[0] & 0x0f;
		require(op == 0x1 || op == 0x8 || op == 0x9 || op == 0xa);
		require(h[0] & 0x80); /* the broker sends whole messages */
		if (op == 0x1)
			check_frame(p, h + hdr, len);
		i += hdr + len;
	}
	memmove(p->in, p->in + i, p->in_len - i);
	p->in_len -= i;
}

static bool read_peer(struct peer *p)
{
	if (p->fd < 0)
		return false;
	bool moved = false;
	for (;;) {
		if (p->in_cap - p->in_len < 4096) {
			p->in_cap = p->in_cap * 2 + 4096;
			p->in = realloc(p->in, p->in_cap);
			require(p->in != NULL);
		}
		ssize_t n = read(p->fd, p->in + p->in_len, p->in_cap - p->in_len);
		if (n <= 0)
			break;
		p->in_len += (size_t)n;
		moved = true;
	}
	if (moved)
		parse_input(p);
	return moved;
}

/* ---- the shard's own consistency ------------------------------------------- */

static bool listed_under(const struct mesh *m, const char *key, const struct presence *p)
{
	const struct plist *l = mesh_find(m, key);
	for (size_t i = 0; i < l->n; i++)
		if (l->v[i] == p)
			return true;
	return false;
}

static void check_shard(struct shard *s)
{
	const char *k;
	void *v;
	for (size_t i = 0; map_next(&s->meshes, &i, &k, &v);) {
		struct mesh *m = v;
		require(strcmp(k, m->id) == 0 && m->shard == s);
		size_t n = 0;
		for (struct presence *p = m->head; p; p = p->next, n++) {
			require(p->mesh == m && (p->prev ? p->prev->next == p : m->head == p));
			require(map_get(&m->by_id, p->id) == p);
			require(listed_under(m, p->member->pubkey, p));
			require(!p->session_pubkey || listed_under(m, p->session_pubkey, p));
			require(map_get(&m->members, p->member->id) == p->member);
			require(!p->conn || session_presence(p->conn) == p);
		}
		require(n == m->npresences);
	}
}

/* One turn of a worker's loop, then everything that turn made ready, until
 * nothing moves. */
static void settle(struct world *w)
{
	for (int turn = 0, quiet = 0; turn < 400 && quiet < 2; turn++) {
		event_base_loop(w->base, EVLOOP_NONBLOCK);
		bool moved = inbox_turn(w);
		moved |= db_turn(w);
		db_stream_flush(&w->shard.acks, false);
		route_flush(&w->shard, false);
		db_stream_flush(&w->shard.audit, false);
		conntab_uncork_all(&w->tab);
		conntab_free_closed(&w->tab);
		for (int i = 0; i < NPEERS; i++)
			moved |= read_peer(&w->peers[i]);
		moved |= w->jobs.head != NULL; /* the flushes submitted more */
		quiet = moved ? 0 : quiet + 1;
	}
	check_shard(&w->shard);
}

/* ---- what the clients send ------------------------------------------------- */

static void write_all(struct world *w, int fd, const void *data, size_t n)
{
	const unsigned char *b = data;
	while (n > 0) {
		ssize_t k = send(fd, b, n, MSG_NOSIGNAL);
		if (k > 0) {
			b += k;
			n -= (size_t)k;
		} else if (k < 0 && errno != EAGAIN) {
			return; /* closed by the broker: the rest is moot */
		} else {
			settle(w); /* the socket is full: let the broker read */
		}
	}
}

static int connect_fd(struct world *w)
{
	int sv[2];
	require(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
	conn_open(&w->tab, sv[0], "fuzz:1", &dispatch_conn_ops);
	return sv[1];
}

/* A client's text frame, masked with a zero key (RFC 6455 §5.3 allows any). */
static void ws_text(struct world *w, struct peer *p, const char *json, size_t n)
{
	if (p->fd < 0)
		return;
	unsigned char h[14];
	size_t hl;
	h[0] = 0x81;
	if (n < 126) {
		h[1] = 0x80 | (unsigned char)n;
		hl = 2;
	} else if (n < 65536) {
		h[1] = 0x80 | 126;
		h[2] = (unsigned char)(n >> 8);
		h[3] = (unsigned char)n;
		hl = 4;
	} else {
		h[1] = 0x80 | 127;
		for (int k = 0; k < 8; k++)
			h[2 + k] = (unsigned char)((uint64_t)n >> (56 - 8 * k));
		hl = 10;
	}
	memset(h + hl, 0, 4);
	write_all(w, p->fd, h, hl + 4);
	write_all(w, p->fd, json, n);
	settle(w);
}

/* Counts what the frame asks for the way dispatch.c reads it. */
static void count_request(struct peer *p, const char *json, size_t n)
{
	json_t *m = json_loadb(json, n, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
	const char *type = js_field(m, "type");
	if (type && (strcmp(type, "send") == 0 || strcmp(type, "set_visible") == 0 ||
		     strcmp(type, "set_profile") == 0))
		p->ackable++;
	if (type && strcmp(type, "message_status") == 0)
		p->status_asks++;
	json_decref(m);
}

static void peer_close(struct world *w, int i)
{
	struct peer *p = &w->peers[i];
	if (p->fd >= 0)
		close(p->fd);
	free(p->in);
	memset(p, 0, sizeof(*p));
	p->fd = -1;
	settle(w);
}

static char *sign_hello(int kind)
{
	char cwd[16], sid[16];
	int i = kind == 2 ? 0 : kind;
	snprintf(cwd, sizeof(cwd), "/work/%c", 'a' + i);
	snprintf(sid, sizeof(sid), "session-%c", 'a' + i);
	if (kind == 2)
		return mc_session_hello(&ids[0], &session_id_a,
					&(struct mc_session_hello_opts){ .mesh_id = MESH_ID,
									 .parent_member_id = member_ids[0],
									 .session_id = sid,
									 .pid = 4242, .cwd = cwd });
	return mc_hello(&ids[i], &(struct mc_hello_opts){
		.mesh_id = MESH_ID, .member_id = member_ids[i], .session_id = sid,
		.pid = 4242 + i, .cwd = cwd,
		.session_pubkey = i == 0 ? session_id_a.pk_hex : NULL });
}

/* Peer i's hello (A's a session_hello in MODE_SESSION_HELLO).  Signed
 * again every 20 s, well inside the broker's timestamp window, so the
 * signing is not most of an execution; the broker still verifies each. */
static const char *hello_frame(const struct world *w, int i)
{
	static char *frames[3];
	static long long signed_ms[3];
	int kind = i == 0 && (w->mode & MODE_SESSION_HELLO) ? 2 : i;
	long long now = mc_now_ms();
	if (!frames[kind] || now - signed_ms[kind] > 20000) {
		free(frames[kind]);
		frames[kind] = sign_hello(kind);
		signed_ms[kind] = now;
	}
	return frames[kind];
}

static void peer_connect(struct world *w, int i)
{
	w->started[i] = true;
	peer_close(w, i);
	struct peer *p = &w->peers[i];
	p->fd = connect_fd(w);
	static const char up[] = "GET /ws HTTP/1.1\r\nHost: fuzz\r\nUpgrade: websocket\r\n"
				 "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
				 "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
	write_all(w, p->fd, up, sizeof(up) - 1);
	settle(w);
	require(p->upgraded);
	const char *hello = hello_frame(w, i);
	ws_text(w, p, hello, strlen(hello));
	/* The stub's lookup admits both members: the handlers are reached.
	 * Only a full mesh (three presences) may refuse it, with `capacity`,
	 * or a failing database (the presence row is not written). */
	require(p->hello_acked || p->fd < 0 || w->shard.npresences >= 3 || w->db_failing);
}

/* One HTTP request on a fresh connection: the answer is a status line and,
 * for the JSON routes, a JSON object. */
static void http(struct world *w, const char *method, const char *target, const char *body,
		 size_t n)
{
	int fd = connect_fd(w);
	char head[512];
	int hl = snprintf(head, sizeof(head),
			  "%s %s HTTP/1.1\r\nHost: fuzz\r\nContent-Type: application/json\r\n"
			  "Content-Length: %zu\r\nConnection: close\r\n\r\n",
			  method, target, n);
	require(hl > 0 && (size_t)hl < sizeof(head));
	write_all(w, fd, head, (size_t)hl);
	write_all(w, fd, body, n);
	settle(w);
	static char r[(1 << 16) + 1]; /* every answer of the routes fits */
	size_t cap = sizeof(r) - 1, len = 0;
	ssize_t k;
	while (len < cap && (k = read(fd, r + len, cap - len)) > 0)
		len += (size_t)k;
	r[len] = '\0';
	close(fd);
	settle(w);
	require(len >= 13 && memcmp(r, "HTTP/1.1 ", 9) == 0);
	char *end = strstr(r, "\r\n\r\n");
	require(end != NULL);
	*end = '\0'; /* the head alone */
	if (strstr(r, "\r\nContent-Type: application/json")) {
		json_t *o = json_loads(end + 4, JSON_ALLOW_NUL, NULL);
		require(json_is_object(o));
		json_decref(o);
	}
}

/* ---- one input -------------------------------------------------------------- */

static void world_init(struct world *w, unsigned mode)
{
	memset(w, 0, sizeof(*w));
	w->mode = mode;
	w->base = event_base_new();
	require(w->base && inbox_init(&w->inbox));
	w->inboxes[0] = &w->inbox;
	w->db = db_new_stub(stub_run, w);
	w->hookrate = hookrate_new(16);
	w->pending = pending_new(16, 60000);
	conntab_init(&w->tab, 0, w->base, &cfg, &w->shard);
	shard_init(&w->shard, &(struct shard_env){
		.id = 0, .nshards = 1, .cfg = &cfg, .db = w->db, .inbox = &w->inbox,
		.base = w->base, .conns = &w->tab, .git_sha = "fuzz",
		.inboxes = w->inboxes, .hookrate = w->hookrate, .pending = w->pending });
	w->shard.route_batch = route_batch_new(&w->shard);
	for (int i = 0; i < NPEERS; i++)
		w->peers[i].fd = -1;
}

static void world_free(struct world *w)
{
	for (int i = 0; i < NPEERS; i++)
		peer_close(w, i);
	conntab_abort_all(&w->tab);
	conntab_free_closed(&w->tab);
	db_stream_flush(&w->shard.acks, true);
	route_flush(&w->shard, true);
	db_stream_flush(&w->shard.audit, true);
	settle(w);
	require(conntab_count(&w->tab) == 0);
	route_batch_free(w->shard.route_batch);
	hook_shard_free(&w->shard);
	shard_free(&w->shard);
	/* What the teardown itself submitted is answered by nobody. */
	struct db_job *j;
	while ((j = db_jobq_pop(&w->jobs)))
		db_job_free(j);
	require(inbox_take_all(&w->inbox) == NULL);
	conntab_destroy(&w->tab);
	db_free(w->db);
	hookrate_free(w->hookrate);
	pending_free(w->pending);
	inbox_destroy(&w->inbox);
	event_base_free(w->base);
}

static void step(struct world *w, const char *line, size_t n)
{
	const char *arg = n > 1 ? line + 1 : "";
	size_t an = n > 1 ? n - 1 : 0;
	if (an > 0 && *arg == ' ') {
		arg++;
		an--;
	}
	switch (n ? line[0] : 0) {
	case 'a':
	case 'b': {
		int i = line[0] - 'a';
		/* B says hello at its first line: each hello costs two Ed25519
		 * operations, most of an execution, and many inputs never need B. */
		if (!w->started[i] && !(w->mode & MODE_NO_HELLO))
			peer_connect(w, i);
		struct peer *p = &w->peers[i];
		if (p->fd >= 0 && p->hello_acked)
			count_request(p, arg, an);
		ws_text(w, p, arg, an);
		break;
	}
	case 'A':
	case 'B':
		peer_connect(w, line[0] - 'A');
		break;
	case 'd':
		w->db_failing = !w->db_failing;
		break;
	case 'x':
	case 'y':
		peer_close(w, line[0] - 'x');
		break;
	case 'h':
		http(w, "POST", "/hook/set-status", arg, an);
		break;
	case 'j':
		http(w, "POST", "/join", arg, an);
		break;
	case 'c':
		http(w, "POST", "/invites/fuzzcode/claim", arg, an);
		break;
	case 'g': {
		char target[256];
		size_t tn = an < sizeof(target) - 1 ? an : sizeof(target) - 1;
		memcpy(target, arg, tn);
		target[tn] = '\0';
		/* A target is one token of the request line. */
		if (tn == 0 || target[0] != '/' || strpbrk(target, " \r\n\t") || memchr(target, 0, tn))
			break;
		http(w, "GET", target, "", 0);
		break;
	}
	default:
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	setup_once();
	if (size < 1 || size > 64 * 1024)
		return 0;
	struct world w;
	world_init(&w, data[0]);
	if (!(w.mode & MODE_NO_HELLO))
		peer_connect(&w, 0);
	w.db_failing = (w.mode & MODE_DB_FAILS) != 0;
	const char *p = (const char *)data + 1, *end = (const char *)data + size;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
		step(&w, p, n);
		p += n + (nl != NULL);
	}
	world_free(&w);
	return 0;
}
