/* meshbench — load generator and benchmark harness for claudemesh brokers.
 *
 * One process, one libevent event_base, single-threaded (the idle scenario
 * and the echo server of the ceiling scenario fork; each child has its own
 * base).  Every function here runs on the thread that owns the base it is
 * given; nothing is shared between threads.
 *
 * Modules:
 *   wsconn.c     WebSocket over a raw non-blocking socket: HTTP upgrade, wslay
 *                client (and, for the echo ceiling, server) framing, kernel
 *                receive timestamps
 *   mesh.c       seeding meshes and members through SQL, PostgreSQL counters,
 *                DM crypto with a per-pair key cache
 *   peers.c      a run's peers: bounded connects, hello, frame dispatch, loop
 *   proc.c       the broker from outside: /proc (RSS, CPU per thread, fds),
 *                the database's CPU, GET /metrics
 *   stats.c      latency samples and percentiles, machine description,
 *                JSON results, gnuplot CDF
 *   scenario.c   what the scenarios share (base, set-up, plaintext, report)
 *   dm.c broadcast.c joinstorm.c idle.c   the scenarios
 *   hook.c       POST /hook/set-status over keep-alive HTTP, beside dm-rate
 *   ceiling.c    WebSocket echo and PostgreSQL pipelined insert ceilings
 *   report.c     a results file against the targets (issue 6; issue 12: hook)
 *   meshbench.c  command line
 */
#ifndef MESHBENCH_H
#define MESHBENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/time.h>
#include <sys/types.h>
#include <netinet/in.h>

#include <event2/event.h>
#include <jansson.h>

#include "meshclient.h"

#define MB_NS_PER_MS 1000000ULL
#define MB_NS_PER_S 1000000000ULL

/* ------------------------------------------------------------- options */

struct mb_opts {
	const char *db_url;
	const char *host;
	int port;
	pid_t broker_pid;       /* 0: no /proc sampling */
	pid_t db_pid;           /* postmaster: CPU of it and its children */
	const char *json_path;
	const char *plot_path;
	uint64_t seed;
	unsigned window;        /* dm-burst, ceiling: un-acked sends per peer */
	double timeout_s;
	unsigned payload;       /* DM plaintext bytes */
	const char *priority;
	unsigned interval_ms;   /* broadcast: 0 = next one on ack */
	bool client_ack;        /* client_ack every push (the daemon does) */
	bool full_crypto;       /* mc_encrypt_dm/mc_decrypt_dm per message */
	bool user_rx_clock;     /* receive time = when we read, not the kernel's */
	double hold_s;          /* idle: how long the peers stay */
	unsigned mesh_size;     /* idle: peers per mesh (0: one mesh) */
	bool no_hello;          /* idle: upgrade only (the transport's memory) */
	unsigned per_child;     /* idle: connections per forked child */
	unsigned linger_ms;     /* after completion, keep listening for duplicates */
	double pg_seconds;      /* ceiling: seconds per pipeline batch size */
	double settle_s;        /* dm: wait this long for the queue to be all delivered */
	bool cleanup;           /* delete the seeded mesh at the end */
	bool full_parse;        /* mc_parse system pushes too (no fast path) */
	unsigned hook_conns;    /* hook: keep-alive HTTP connections, one request each */
	bool quiet;
};

/* ---------------------------------------------------------------- time */

uint64_t mb_now_ns(void);       /* CLOCK_MONOTONIC */

/* xoshiro-style PRNG for the workload (targets, jitter). */
struct mb_rng {
	uint64_t s;
};
uint64_t mb_rng_next(struct mb_rng *r);
uint32_t mb_rng_below(struct mb_rng *r, uint32_t n);

/* ------------------------------------------------------------ websocket */

struct mb_ws;

struct mb_ws_ops {
	/* The 101 was checked (client) or sent (server); frames can flow. */
	void (*open)(struct mb_ws *ws);
	/* One complete text or binary message.  rx_ns: CLOCK_MONOTONIC estimate
	 * of when its last bytes reached our socket (kernel timestamp unless
	 * --user-rx-clock). */
	void (*msg)(struct mb_ws *ws, const char *data, size_t len, uint64_t rx_ns);
	/* The connection is gone (why: short reason); ws is freed right after. */
	void (*closed)(struct mb_ws *ws, const char *why);
};

/* Starts a client connection to dst (src: bind() first, NULL for none). */
struct mb_ws *mb_ws_connect(struct event_base *base, const struct sockaddr_in *dst,
			    const struct sockaddr_in *src, const char *host_hdr,
			    const struct mb_ws_ops *ops, void *user, bool kernel_ts);
/* Serves an accepted socket (the echo ceiling). */
struct mb_ws *mb_ws_accept(struct event_base *base, int fd, const struct mb_ws_ops *ops,
			   void *user);
/* Queues one text message (copied) and sends what the socket takes. */
bool mb_ws_send(struct mb_ws *ws, const char *text, size_t len);
/* recv() into buf; *rx_ns: CLOCK_MONOTONIC estimate of when the bytes
 * reached the socket (the kernel's SO_TIMESTAMPNS when kernel_ts and the
 * socket has it on, else now).  Returns recv()'s value, errno as it left it. */
ssize_t mb_recv_stamped(int fd, void *buf, size_t len, bool kernel_ts, uint64_t *rx_ns);
/* The value of header `name` (case-insensitive) in an HTTP response head
 * (CRLF lines, up to the empty line or the NUL), trimmed; NULL if absent. */
const char *mb_http_header(const char *head, const char *name, size_t *vlen);
/* Closes without a close frame and without calling ops->closed; safe inside
 * any callback of ws (the memory is released when the callback returns).
 * abort_rst: RST instead of FIN (no TIME_WAIT on our side). */
void mb_ws_close(struct mb_ws *ws, bool abort_rst);
void *mb_ws_user(const struct mb_ws *ws);

/* --------------------------------------------------------------- samples */

struct mb_samples {
	uint64_t *v;
	size_t n, cap;
	bool sorted;
};
void mb_samples_add(struct mb_samples *s, uint64_t v);
/* Exact percentile (nearest rank) over every sample; p in [0, 100]. */
uint64_t mb_samples_pct(struct mb_samples *s, double p);
double mb_samples_mean(const struct mb_samples *s);
void mb_samples_free(struct mb_samples *s);
/* {"n","p50","p95","p99","p999","max","mean"} in milliseconds. */
json_t *mb_samples_json(struct mb_samples *s);
/* One table row: label, n, p50 p95 p99 p99.9 max (ms). */
void mb_samples_row(struct mb_samples *s, const char *label);
void mb_samples_header(void);

/* ------------------------------------------------------ broker process */

struct mb_proc {
	pid_t pid;
	bool ok;                /* /proc/<pid> readable at start */
	bool exited;            /* gone (or a zombie) since: figures are the last seen */
	uint64_t hwm_kb_start, rss_kb_start, hwm_kb, rss_kb, rss_kb_max;
	double cpu_start, cpu;  /* utime + stime, seconds */
	unsigned fds_start, fds, fds_max;
	pid_t db_pid;           /* 0: not measured */
	double db_cpu_start, db_cpu;
	struct mb_thread {      /* the broker's threads, CPU over the run */
		pid_t tid;
		char comm[20];
		double cpu0, cpu1;
	} threads[64];
	unsigned nthreads;
	struct event *timer;
};
/* Reads once and starts sampling every 100 ms on base (no-op when pid 0);
 * db_pid: the postmaster, whose CPU (with its children's) is read at start
 * and stop. */
void mb_proc_start(struct mb_proc *p, struct event_base *base, pid_t pid, pid_t db_pid);
void mb_proc_sample(struct mb_proc *p);
/* CPU (broker and database) counts from now on. */
void mb_proc_mark(struct mb_proc *p);
/* Samples a last time and stops the timer. */
void mb_proc_stop(struct mb_proc *p);
json_t *mb_proc_json(const struct mb_proc *p);
void mb_proc_print(const struct mb_proc *p);

/* GET /metrics; value of the sample line that starts with prefix (for
 * example `broker_messages_rejected_total{reason="rate_limit"}`); -1 when the
 * endpoint or the line is missing. */
long long mb_metric(const struct mb_opts *o, const char *prefix);

/* ----------------------------------------------------------------- mesh */

struct mb_member {
	char id[33];
	struct mc_identity key;
	unsigned char xpk[32], xsk[32];  /* X25519 forms for crypto_box */
};

struct mb_mesh {
	char id[33];            /* the first (usually only) mesh */
	size_t per_mesh;        /* members per mesh; 0: all in one */
	size_t nmeshes;
	char (*ids)[33];        /* every mesh id; ids[0] == id */
	size_t n;
	struct mb_member *m;
	/* pubkey → index (open addressing on the first 8 key bytes) */
	uint32_t *slots;
	size_t nslots;
};

/* Generates n members and inserts a user, ceil(n / per_mesh) meshes (one
 * when per_mesh is 0) and the members (COPY), member i in mesh i / per_mesh.
 * err gets a one-line reason on failure. */
bool mb_mesh_seed(const char *url, size_t n, size_t per_mesh, struct mb_mesh *m, char *err,
		  size_t errlen) __attribute__((warn_unused_result));
/* The mesh of member i. */
const char *mb_mesh_id_of(const struct mb_mesh *m, size_t i);
/* n members with fresh keys, not stored anywhere (the echo ceiling). */
bool mb_mesh_generate(struct mb_mesh *m, size_t n) __attribute__((warn_unused_result));
/* DELETE the meshes (cascades to members, presences, queue rows). */
bool mb_mesh_delete(const char *url, const struct mb_mesh *m);
void mb_mesh_free(struct mb_mesh *m);
/* Index of the member whose pubkey is the 64 hex characters at pk_hex (no
 * NUL needed; the caller guarantees 64 readable bytes), or -1. */
long mb_mesh_find(const struct mb_mesh *m, const char *pk_hex);

/* DM crypto between members a and b.  Precomputed crypto_box_beforenm keys
 * (cached per pair) unless full is set, then mc_encrypt_dm/mc_decrypt_dm.
 * Both produce and accept exactly the same wire format. */
struct mb_crypto;
struct mb_crypto *mb_crypto_new(const struct mb_mesh *m, bool full);
void mb_crypto_free(struct mb_crypto *c);
bool mb_seal(struct mb_crypto *c, uint32_t from, uint32_t to, const void *plain, size_t len,
	     char **nonce_b64, char **ct_b64) __attribute__((warn_unused_result));
/* *plain is malloc'd and NUL-terminated. */
bool mb_open(struct mb_crypto *c, uint32_t to, uint32_t from, const char *nonce_b64,
	     const char *ct_b64, unsigned char **plain, size_t *len)
	__attribute__((warn_unused_result));
/* Cross-checks both paths against meshclient's; false if they disagree. */
bool mb_crypto_selftest(const struct mb_mesh *m) __attribute__((warn_unused_result));

/* PostgreSQL's own counters for the database (pg_stat_database, WAL
 * position): commits and rows written per message tell how the broker
 * batches.  The counters are flushed by each backend about once a second,
 * so deltas over a run are approximate. */
struct mb_dbstat {
	bool ok;
	long long commits, rollbacks, inserted, updated, deleted;
	double wal_bytes;
};
bool mb_dbstat_read(const char *url, struct mb_dbstat *s);
/* after - before, per message when n > 0 */
json_t *mb_dbstat_json(const struct mb_dbstat *before, const struct mb_dbstat *after,
		       double n);
void mb_dbstat_print(const struct mb_dbstat *before, const struct mb_dbstat *after, double n);
/* Undelivered queue rows of the mesh (delivered_at IS NULL), -1 on error. */
long long mb_queue_pending(const char *url, const struct mb_mesh *m);

/* ---------------------------------------------------------------- peers */

struct mb_run;

enum mb_peer_state { PEER_NEW, PEER_CONNECTING, PEER_HELLO, PEER_READY, PEER_GONE };

struct mb_peer {
	struct mb_run *run;
	uint32_t idx;
	enum mb_peer_state state;
	struct mb_ws *ws;
	uint64_t t_start_ns, t_ack_ns;
	uint32_t ack_order;     /* 1-based rank of its hello_ack among all peers */
	char presence_id[40];   /* from its hello_ack ("" if none) */
	/* scenario counters */
	uint32_t sent, acked, inflight;
};

/* What a scenario does with the peers' events. */
struct mb_peer_ops {
	void (*ready)(struct mb_peer *p);       /* hello_ack received */
	void (*frame)(struct mb_peer *p, struct mc_frame *f, uint64_t rx_ns);
	/* Optional fast path on a ready peer's raw message (not with
	 * --full-parse); false: not handled, the frame is parsed and goes to
	 * frame(). */
	bool (*raw)(struct mb_peer *p, const char *data, size_t len, uint64_t rx_ns);
	/* A system push (peer_joined, peer_left …): event name and
	 * eventData.pubkey (64 hex, not NUL-terminated; NULL if absent). */
	void (*system)(struct mb_peer *p, const char *event, size_t event_len,
		       const char *pubkey, uint64_t rx_ns);
	void (*gone)(struct mb_peer *p, const char *why);
};

struct mb_run {
	const struct mb_opts *o;
	struct event_base *base;
	struct mb_mesh mesh;
	struct mb_crypto *crypto;
	struct mb_peer *peers;
	size_t npeers;
	const struct mb_peer_ops *ops;
	void *scenario;
	struct mb_rng rng;
	struct sockaddr_in dst;
	char host_hdr[300];
	char run_id[9];

	size_t connecting, ready, gone, hello_errors, capacity_errors;
	size_t max_inflight_connects;   /* bounded connect burst (0 = all at once) */
	size_t next_connect, connect_to;
	uint32_t ack_rank;
	size_t want_ready;              /* > 0: stop the loop once ready + gone reach it */
	uint32_t per_src;               /* > 0: bind peer i to 127.0.0.(2 + i / per_src) */
	bool own_mesh;                  /* seeded by mb_run_init (else the caller's) */
	struct mb_samples hello_lat;    /* connect start → hello_ack */
	struct mb_samples rx_lag;       /* handled − kernel receive time */
	uint64_t frames_in, frames_out, bytes_in, system_in;
	uint64_t parse_errors;
	bool done;
	bool timed_out;
	struct event *deadline;
	struct mb_proc proc;
	char first_error[256];
};

/* base, mesh and options must be set; allocates the peers (not connected). */
bool mb_run_init(struct mb_run *r, const struct mb_opts *o, struct event_base *base,
		 size_t npeers, const struct mb_peer_ops *ops, void *scenario)
	__attribute__((warn_unused_result));
/* Connects peers [from, to) (hello on open); ops->ready per hello_ack. */
void mb_run_connect(struct mb_run *r, size_t from, size_t to, size_t max_inflight);
/* What peer idx says in its hello, distinct per peer and per run: the
 * session id, cwd and pid POST /hook/set-status matches a presence on. */
#define MB_PEER_PID_BASE 100000
struct mb_peer_id {
	char session_id[64];
	char cwd[64];
	long long pid;
};
void mb_peer_identity(const struct mb_run *r, uint32_t idx, struct mb_peer_id *id);
/* Sends one frame (malloc'd text, consumed) on a ready peer. */
bool mb_peer_send(struct mb_peer *p, char *frame);
/* Runs the loop until r->done or the deadline (seconds from now). */
void mb_run_loop(struct mb_run *r, double seconds);
void mb_run_stop(struct mb_run *r);
/* Closes every connection (RST) and frees the peers. */
void mb_run_free(struct mb_run *r);

/* ------------------------------------------------------------- results */

/* The machine: nproc, CPU model, MemTotal, kernel. */
json_t *mb_machine_json(void);
const char *mb_machine_line(void);
/* Adds machine, time and options to obj and appends one line to path. */
bool mb_json_append(const char *path, json_t *obj);
/* Draws CDFs of the named series with gnuplot into path (svg). */
void mb_plot(const char *path, const char *title, struct mb_samples *const *series,
	     const char *const *names, size_t n);

/* ------------------------------------------------- shared by the scenarios */

#define MB_CONNECT_INFLIGHT 256 /* set-up connects in progress at once */

/* An event base with a precise timer and two priorities (0: handshakes
 * and timers, 1: reads of open connections). */
struct event_base *mb_base_new(void);
/* getrusage(who) user + system seconds. */
double mb_cpu_self(int who);
struct timeval mb_tv_ms(unsigned ms);
double mb_secs(uint64_t ns);
/* params every scenario reports (host, port, seed, crypto, rx clock, acks) */
json_t *mb_params_common(const struct mb_opts *o);
json_t *mb_loadgen_json(struct mb_run *r, double cpu);
void mb_print_title(const char *title);
void mb_print_loadgen(struct mb_run *r, double cpu);
/* Connects every peer of r (at most inflight at once) and waits for the
 * hello_acks; false (with the reason printed) unless all got one. */
bool mb_connect_all(struct mb_run *r, double timeout_s, size_t inflight, uint64_t *took);
/* "<tag> <seq> <t_ns> <from> " padded with 'x' to payload bytes. */
size_t mb_make_plain(char *buf, size_t cap, const char *tag, uint64_t seq, uint64_t t_ns,
		     uint32_t from, unsigned payload);
bool mb_parse_plain(const char *p, const char *tag, uint64_t *seq, uint64_t *t_ns,
		    uint32_t *from);
/* Timer callback: mb_run_stop(arg). */
void mb_stop_cb(evutil_socket_t fd, short what, void *arg);

/* ------------------------------------------------------------- scenarios */

/* Each returns the exit status: 0 completed, 1 timed out or lost messages,
 * 2 set-up failure; *out gets the scenario's JSON object (caller's). */
int mb_dm_burst(const struct mb_opts *o, unsigned peers, unsigned per_peer, json_t **out);
int mb_dm_rate(const struct mb_opts *o, unsigned peers, unsigned rate, double seconds,
	       json_t **out);
/* A second load run beside dm-rate's, on the same base and peers (the hook
 * scenario).  dm.c calls prepare once every peer has its hello_ack (false:
 * set-up failed), start when the DM grid starts, waits for finished (see
 * mb_dm_side_finished) before it ends the measured phase, stop after that
 * phase (and the settle), then ok (false fails the scenario), print (rows
 * of the latency table, then lines of its own) and json (its fields into
 * the results object); release before the base is freed, whatever
 * happened before. */
struct mb_side_ops {
	bool (*prepare)(void *side, struct mb_run *r);
	void (*start)(void *side, uint64_t t0);
	bool (*finished)(void *side);
	void (*stop)(void *side);
	bool (*ok)(void *side);
	void (*print)(void *side);
	void (*json)(void *side, json_t *results);
	void (*release)(void *side);
};
/* dm-rate P R T with side running beside it; the JSON says scenario name
 * with params (the caller's, not consumed). */
int mb_dm_rate_side(const struct mb_opts *o, unsigned peers, unsigned rate, double seconds,
		    const char *name, json_t *params, const struct mb_side_ops *ops, void *side,
		    json_t **out);
/* The side load of r's dm-rate has finished: the run may end. */
void mb_dm_side_finished(struct mb_run *r);
/* hook R T beside dm-rate P D T (hook.c). */
int mb_hook(const struct mb_opts *o, unsigned hook_rate, double seconds, unsigned peers,
	    unsigned dm_rate, json_t **out);
int mb_broadcast(const struct mb_opts *o, unsigned peers, unsigned count, json_t **out);
int mb_join_storm(const struct mb_opts *o, unsigned peers, json_t **out);
int mb_idle(const struct mb_opts *o, unsigned conns, json_t **out);
int mb_ceiling(const struct mb_opts *o, unsigned peers, unsigned per_peer, json_t **out);

/* Prints a results file's scenarios against issue 6's (and issue 12's hook) targets; 0, or 2 when
 * the file cannot be read. */
int mb_report(const char *path);

/* Resolves o->host:o->port into dst and the Host header. */
bool mb_resolve(const struct mb_opts *o, struct sockaddr_in *dst, char *host_hdr, size_t len)
	__attribute__((warn_unused_result));

/* Prints the SEND_RATE_LIMIT_PER_MIN=0 reminder and the rate_limit count
 * found in /metrics (a loud warning when it is not zero). */
long long mb_rate_limit_check(const struct mb_opts *o, const char *when);

#endif
