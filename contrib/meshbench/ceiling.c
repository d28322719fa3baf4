/* ceiling — what this machine can do at best, measured the way the broker
 * is measured:
 *   (a) a WebSocket echo server (wslay + libevent, no broker logic) in a
 *       forked child on its own port, driven like dm-burst: P clients, a
 *       window of W, the same encrypted send frames; each echoed send counts
 *       as ack and push (decrypted), and is answered by a client_ack frame
 *       that is echoed too, so both sides move the frames dm-burst moves;
 *   (b) PostgreSQL row inserts into a table shaped like mesh.message_queue
 *       (LIKE … INCLUDING DEFAULTS INCLUDING INDEXES), libpq pipeline mode,
 *       batches of N INSERTs in one transaction each, for a logged table
 *       (what the broker pays: WAL and fsync at COMMIT) and a temp table.
 * Thread: main (the echo server: the child's main thread).
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "meshbench.h"

static double cpu_now(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru) != 0)
		return 0;
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* ------------------------------------------------------------ echo server */

static void echo_msg(struct mb_ws *ws, const char *data, size_t len, uint64_t rx)
{
	(void)mb_ws_send(ws, data, len);
}

static const struct mb_ws_ops echo_server_ops = {
	.msg = echo_msg,
};

static void echo_accept(evutil_socket_t lfd, short what, void *arg)
{
	struct event_base *base = arg;

	for (;;) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0)
			return;
		if (!mb_ws_accept(base, fd, &echo_server_ops, NULL))
			close(fd);
	}
}

static void echo_stop(evutil_socket_t fd, short what, void *arg)
{
	event_base_loopbreak(arg);
}

/* Child: serve until the control pipe closes.  The connections are left
 * to _exit (the kernel closes them). */
static void echo_server_main(int lfd, int ctl)
{
	struct event_base *base = event_base_new();
	struct event *a, *c;

	if (!base)
		_exit(2);
	a = event_new(base, lfd, EV_READ | EV_PERSIST, echo_accept, base);
	c = event_new(base, ctl, EV_READ, echo_stop, base);
	if (!a || !c)
		_exit(2);
	event_add(a, NULL);
	event_add(c, NULL);
	event_base_dispatch(base);
	_exit(0);
}

/* -------------------------------------------------------------- echo load */

struct echo_msg {
	uint64_t t_send;
	uint32_t to;
	bool back;
};

struct echo_client {
	struct echo *e;
	uint32_t idx;
	struct mb_ws *ws;
	unsigned sent, inflight;
	bool open;
};

struct echo {
	const struct mb_opts *o;
	struct event_base *base;
	struct mb_mesh mesh;
	struct mb_crypto *crypto;
	struct mb_rng rng;
	struct echo_client *c;
	unsigned peers, per_peer, window, open, gone;
	struct echo_msg *msgs;
	size_t total, next, echoed, bad;
	struct mb_samples lat;
	uint64_t t0, t_done;
	double cpu0;
	bool started;
	char run_id[9];
};

static void echo_send(struct echo *e, struct echo_client *c)
{
	while (c->sent < e->per_peer && c->inflight < e->window) {
		uint32_t to = mb_rng_below(&e->rng, e->peers - 1);
		char plain[4096], id[24], cmid[48], *nonce = NULL, *ct = NULL, *frame;
		size_t seq = e->next, len;
		uint64_t now = mb_now_ns();
		int n;

		if (to >= c->idx)
			to++;
		n = snprintf(plain, sizeof(plain), "mb1 %zu %llu %u ", seq,
			     (unsigned long long)now, c->idx);
		len = (size_t)n;
		while (len < e->o->payload && len + 1 < sizeof(plain))
			plain[len++] = 'x';
		plain[len] = '\0';
		if (!mb_seal(e->crypto, c->idx, to, plain, len, &nonce, &ct))
			return;
		snprintf(id, sizeof(id), "%zu", seq);
		snprintf(cmid, sizeof(cmid), "mb-%s-%zu", e->run_id, seq);
		frame = mc_send(&(struct mc_send_opts){
			.id = id, .client_message_id = cmid,
			.target_spec = e->mesh.m[to].key.pk_hex, .priority = e->o->priority,
			.nonce = nonce, .ciphertext = ct,
		});
		free(nonce);
		free(ct);
		if (!frame || !mb_ws_send(c->ws, frame, strlen(frame))) {
			free(frame);
			return;
		}
		free(frame);
		e->msgs[seq] = (struct echo_msg){ .t_send = now, .to = to };
		e->next++;
		c->sent++;
		c->inflight++;
	}
}

static void echo_client_open(struct mb_ws *ws)
{
	struct echo_client *c = mb_ws_user(ws);
	struct echo *e = c->e;

	c->open = true;
	if (++e->open == e->peers)
		event_base_loopbreak(e->base);
}

static void echo_client_msg(struct mb_ws *ws, const char *data, size_t len, uint64_t rx)
{
	struct echo_client *c = mb_ws_user(ws);
	struct echo *e = c->e;
	struct mc_frame f;
	const char *id, *nonce, *ct, *cmid;
	unsigned char *plain = NULL;
	size_t plen;
	unsigned long long seq;
	char *end;

	if (!mc_parse(data, len, &f)) {
		e->bad++;
		return;
	}
	if (strcmp(f.type_str, "send") != 0)
		goto out;       /* our echoed client_ack */
	id = json_string_value(json_object_get(f.json, "id"));
	nonce = json_string_value(json_object_get(f.json, "nonce"));
	ct = json_string_value(json_object_get(f.json, "ciphertext"));
	cmid = json_string_value(json_object_get(f.json, "client_message_id"));
	seq = id ? strtoull(id, &end, 10) : 0;
	if (!id || *end || seq >= e->next || e->msgs[seq].back || !nonce || !ct) {
		e->bad++;
		goto out;
	}
	/* what a recipient does with a push: open it, acknowledge it */
	if (!mb_open(e->crypto, e->msgs[seq].to, c->idx, nonce, ct, &plain, &plen)) {
		e->bad++;
		goto out;
	}
	free(plain);
	{
		char *ack = mc_client_ack(cmid, id);

		if (ack)
			(void)mb_ws_send(ws, ack, strlen(ack));
		free(ack);
	}
	e->msgs[seq].back = true;
	e->echoed++;
	mb_samples_add(&e->lat, rx > e->msgs[seq].t_send ? rx - e->msgs[seq].t_send : 0);
	c->inflight--;
	echo_send(e, c);
	if (e->echoed == e->total) {
		e->t_done = rx;
		event_base_loopbreak(e->base);
	}
out:
	mc_frame_free(&f);
}

static void echo_client_closed(struct mb_ws *ws, const char *why)
{
	struct echo_client *c = mb_ws_user(ws);

	c->ws = NULL;
	c->open = false;
	c->e->gone++;
	fprintf(stderr, "meshbench: echo client %u: %s\n", c->idx, why);
	event_base_loopbreak(c->e->base);
}

static const struct mb_ws_ops echo_client_ops = {
	.open = echo_client_open,
	.msg = echo_client_msg,
	.closed = echo_client_closed,
};

static void loop_for(struct event_base *base, double seconds)
{
	struct timeval tv = { (time_t)seconds,
			      (suseconds_t)((seconds - (double)(time_t)seconds) * 1e6) };

	event_base_loopexit(base, &tv);
	event_base_dispatch(base);
}

/* Forks the echo server on a free loopback port (into *addr); *ctl_w is
 * the pipe end whose closing stops it.  The child's pid, or -1. */
static pid_t echo_server_start(struct sockaddr_in *addr, int *ctl_w)
{
	socklen_t alen = sizeof(*addr);
	int lfd, ctl[2];
	pid_t pid;

	*addr = (struct sockaddr_in){ .sin_family = AF_INET };
	addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)addr, sizeof(*addr)) != 0 ||
	    listen(lfd, 4096) != 0 || getsockname(lfd, (struct sockaddr *)addr, &alen) != 0 ||
	    pipe(ctl) != 0) {
		perror("meshbench: echo server socket");
		if (lfd >= 0)
			close(lfd);
		return -1;
	}
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		close(ctl[1]);
		echo_server_main(lfd, ctl[0]);
	}
	if (pid < 0)
		perror("meshbench: fork");
	close(ctl[0]);
	close(lfd);
	if (pid < 0)
		close(ctl[1]);
	else
		*ctl_w = ctl[1];
	return pid;
}

static json_t *echo_report(struct echo *e)
{
	uint64_t wall = (e->t_done ? e->t_done : mb_now_ns()) - e->t0;
	double cpu = cpu_now() - e->cpu0, w = (double)wall / 1e9;
	double rate = wall ? (double)e->echoed / w : 0.0;

	printf("  (a) WebSocket echo, %u clients x %u messages, window %u: %s, %zu echoed in"
	       " %.3f s = %.0f msg/s\n", e->peers, e->per_peer, e->window,
	       e->t_done ? "completed" : "INCOMPLETE", e->echoed, w, rate);
	mb_samples_header();
	mb_samples_row(&e->lat, "send->echo");
	printf("  loadgen CPU %.2f s over %.2f s wall (%.0f %% of one core: at 100 %% the"
	       " load generator itself is the limit)\n", cpu, w, wall ? 100.0 * cpu / w : 0.0);
	if (e->o->plot_path) {
		struct mb_samples *series[] = { &e->lat };
		const char *names[] = { "echo send->echo" };

		mb_plot(e->o->plot_path, "ceiling: WebSocket echo", series, names, 1);
	}
	return json_pack("{s:b, s:i, s:i, s:i, s:I, s:I, s:f, s:f, s:f, s:o}",
			 "completed", e->t_done != 0, "peers", e->peers, "per_peer", e->per_peer,
			 "window", e->window, "messages", (json_int_t)e->total,
			 "echoed", (json_int_t)e->echoed, "wall_s", w, "msgs_per_s", rate,
			 "loadgen_cpu_s", cpu, "send_echo_ms", mb_samples_json(&e->lat));
}

/* Runs the echo measurement; fills *res; false on set-up failure. */
static bool echo_run(const struct mb_opts *o, unsigned peers, unsigned per_peer, json_t **res)
{
	struct echo e = { .o = o, .peers = peers, .per_peer = per_peer,
			  .window = o->window ? o->window : 1 };
	struct sockaddr_in addr;
	int ctl = -1;
	pid_t pid;
	uint64_t deadline;
	bool ok = false;

	e.rng.s = o->seed;
	e.total = (size_t)peers * per_peer;
	mc_random_id(e.run_id, sizeof(e.run_id));
	pid = echo_server_start(&addr, &ctl);
	if (pid < 0)
		goto out;
	if (!mb_mesh_generate(&e.mesh, peers) ||
	    !(e.crypto = mb_crypto_new(&e.mesh, o->full_crypto)) ||
	    !(e.base = event_base_new()) || !(e.c = calloc(peers, sizeof(*e.c))) ||
	    !(e.msgs = calloc(e.total ? e.total : 1, sizeof(*e.msgs)))) {
		fprintf(stderr, "meshbench: out of memory\n");
		goto out;
	}
	for (unsigned i = 0; i < peers; i++) {
		e.c[i] = (struct echo_client){ .e = &e, .idx = i };
		e.c[i].ws = mb_ws_connect(e.base, &addr, NULL, "127.0.0.1", &echo_client_ops,
					  &e.c[i], !o->user_rx_clock);
		if (!e.c[i].ws) {
			perror("meshbench: echo connect");
			goto out;
		}
	}
	deadline = mb_now_ns() + (uint64_t)(o->timeout_s * 1e9);
	while (e.open < peers && !e.gone && mb_now_ns() < deadline)
		loop_for(e.base, 0.5);
	if (e.open < peers) {
		fprintf(stderr, "meshbench: only %u of %u echo clients connected\n", e.open, peers);
		goto out;
	}
	e.cpu0 = cpu_now();
	e.t0 = mb_now_ns();
	for (unsigned i = 0; i < peers; i++)
		echo_send(&e, &e.c[i]);
	while (!e.t_done && !e.gone && mb_now_ns() < deadline)
		loop_for(e.base, 0.5);
	*res = echo_report(&e);
	ok = e.t_done != 0;
out:
	for (unsigned i = 0; e.c && i < peers; i++)
		mb_ws_close(e.c[i].ws, true);
	if (ctl >= 0)
		close(ctl);
	if (pid > 0)
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
	free(e.c);
	free(e.msgs);
	mb_crypto_free(e.crypto);
	mb_mesh_free(&e.mesh);
	mb_samples_free(&e.lat);
	if (e.base)
		event_base_free(e.base);
	if (!ok && !*res)
		*res = json_pack("{s:b}", "completed", false);
	return ok;
}

/* ------------------------------------------------------------- postgres */

static bool pg_cmd(PGconn *c, const char *sql)
{
	PGresult *res = PQexec(c, sql);
	bool ok = PQresultStatus(res) == PGRES_COMMAND_OK;

	if (!ok)
		fprintf(stderr, "meshbench: %s: %s", sql, PQresultErrorMessage(res));
	PQclear(res);
	return ok;
}

static const char shape_sql[] =
	" (id text PRIMARY KEY, mesh_id text NOT NULL, sender_member_id text NOT NULL,"
	" target_spec text NOT NULL, priority text NOT NULL DEFAULT 'next',"
	" nonce text NOT NULL, ciphertext text NOT NULL,"
	" created_at timestamp NOT NULL DEFAULT now(), delivered_at timestamp,"
	" expires_at timestamp, sender_session_pubkey text, client_message_id text,"
	" request_fingerprint text, claimed_at timestamp, claim_id text,"
	" claim_expires_at timestamp)";

/* Creates the table (LIKE mesh.message_queue when it exists). */
static bool pg_table(PGconn *c, const char *name, bool temp)
{
	char sql[1024];
	PGresult *res = PQexec(c, "SELECT to_regclass('mesh.message_queue') IS NOT NULL");
	bool like = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 &&
		    strcmp(PQgetvalue(res, 0, 0), "t") == 0;

	PQclear(res);
	if (like)
		snprintf(sql, sizeof(sql), "CREATE %sTABLE %s (LIKE mesh.message_queue"
			 " INCLUDING DEFAULTS INCLUDING INDEXES)", temp ? "TEMP " : "", name);
	else
		snprintf(sql, sizeof(sql), "CREATE %sTABLE %s%s", temp ? "TEMP " : "", name,
			 shape_sql);
	return pg_cmd(c, sql);
}

/* Inserts batches of n rows for the given time; rows/s, or -1 on error. */
static double pg_batches(PGconn *c, const char *table, unsigned n, double seconds,
			 const char *ct)
{
	char sql[512], id[40], prefix[9], cmid[48];
	const char *params[7];
	uint64_t t0 = mb_now_ns(), end = t0 + (uint64_t)(seconds * 1e9), rows = 0, seq = 0;
	bool ok = true;

	mc_random_id(prefix, sizeof(prefix));
	snprintf(sql, sizeof(sql), "INSERT INTO %s (id, mesh_id, sender_member_id, target_spec,"
		 " priority, nonce, ciphertext, client_message_id) VALUES ($1, $2, $3, $4, 'next',"
		 " $5, $6, $7)", table);
	params[1] = "meshbenchceilingmeshid0000000000";
	params[2] = "meshbenchceilingmember0000000000";
	params[3] = "8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c";
	params[4] = "q83vEjRWeJq83vEjRWeJq83vEjRWeJq8";
	params[5] = ct;
	params[0] = id;
	params[6] = cmid;
	if (PQenterPipelineMode(c) != 1)
		return -1;
	while (ok && mb_now_ns() < end) {
		unsigned want = n + 2;
		PGresult *res;

		ok = PQsendQueryParams(c, "BEGIN", 0, NULL, NULL, NULL, NULL, 0) == 1;
		for (unsigned i = 0; ok && i < n; i++) {
			snprintf(id, sizeof(id), "%s%024llu", prefix, (unsigned long long)seq++);
			snprintf(cmid, sizeof(cmid), "c%s", id);
			ok = PQsendQueryParams(c, sql, 7, NULL, params, NULL, NULL, 0) == 1;
		}
		ok = ok && PQsendQueryParams(c, "COMMIT", 0, NULL, NULL, NULL, NULL, 0) == 1 &&
		     PQpipelineSync(c) == 1;
		if (!ok) {
			fprintf(stderr, "meshbench: pipeline send: %s", PQerrorMessage(c));
			break;
		}
		/* n + 2 queries, each: its result then NULL; then the sync */
		for (unsigned q = 0; q < want; q++) {
			unsigned nres = 0;

			while ((res = PQgetResult(c))) {
				nres++;
				if (PQresultStatus(res) != PGRES_COMMAND_OK) {
					if (ok)
						fprintf(stderr, "meshbench: pipeline: %s",
							PQresultErrorMessage(res));
					ok = false;
				}
				PQclear(res);
			}
			if (!nres) {
				fprintf(stderr, "meshbench: pipeline: %s", PQerrorMessage(c));
				ok = false;
				break;
			}
		}
		res = ok ? PQgetResult(c) : NULL;
		if (ok && (!res || PQresultStatus(res) != PGRES_PIPELINE_SYNC))
			ok = false;
		PQclear(res);
		if (ok)
			rows += n;
	}
	(void)PQexitPipelineMode(c);
	if (!ok)
		return -1;
	return (double)rows / ((double)(mb_now_ns() - t0) / 1e9);
}

static const unsigned pg_sizes[] = { 1, 16, 128, 1024 };
#define PG_NSIZES (sizeof(pg_sizes) / sizeof(pg_sizes[0]))

static bool pg_run(const struct mb_opts *o, json_t **res, double *best)
{
	PGconn *c = PQconnectdb(o->db_url);
	char table[64], tmp[64], rid[9], *ct = NULL;
	unsigned char blob[256];
	json_t *logged = json_object(), *temp = json_object();
	unsigned best_n = 0;
	bool ok = false;

	*best = 0;
	if (PQstatus(c) != CONNECTION_OK) {
		fprintf(stderr, "meshbench: database: %s", PQerrorMessage(c));
		goto out;
	}
	mc_random_id(rid, sizeof(rid));
	snprintf(table, sizeof(table), "meshbench_ceiling_%s", rid);
	snprintf(tmp, sizeof(tmp), "meshbench_ceiling_tmp_%s", rid);
	/* a ciphertext as long as a dm-burst one */
	memset(blob, 'x', sizeof(blob));
	ct = mc_b64(blob, o->payload + 16 < sizeof(blob) ? o->payload + 16 : sizeof(blob));
	if (!ct || !pg_table(c, table, false) || !pg_table(c, tmp, true))
		goto out;
	printf("  (b) PostgreSQL inserts, pipelined, one transaction per batch (%.1f s each):\n",
	       o->pg_seconds);
	printf("  %-10s %16s %16s\n", "batch", "logged rows/s", "temp rows/s");
	for (size_t i = 0; i < PG_NSIZES; i++) {
		double a = pg_batches(c, table, pg_sizes[i], o->pg_seconds, ct);
		double b = pg_batches(c, tmp, pg_sizes[i], o->pg_seconds, ct);
		char key[16];

		if (a < 0 || b < 0)
			goto drop;
		snprintf(key, sizeof(key), "%u", pg_sizes[i]);
		json_object_set_new(logged, key, json_real(a));
		json_object_set_new(temp, key, json_real(b));
		printf("  %-10u %16.0f %16.0f\n", pg_sizes[i], a, b);
		if (a > *best) {
			*best = a;
			best_n = pg_sizes[i];
		}
	}
	ok = true;
drop:
	{
		char sql[128];

		snprintf(sql, sizeof(sql), "DROP TABLE IF EXISTS %s", table);
		(void)pg_cmd(c, sql);
	}
out:
	*res = json_pack("{s:b, s:o, s:o, s:f, s:i, s:f}", "completed", ok, "logged", logged,
			 "temp", temp, "best_rows_per_s", *best, "best_batch", best_n,
			 "seconds_per_size", o->pg_seconds);
	free(ct);
	PQfinish(c);
	return ok;
}

int mb_ceiling(const struct mb_opts *o, unsigned peers, unsigned per_peer, json_t **out)
{
	json_t *echo = NULL, *pg = NULL, *params;
	double pg_best = 0, echo_rate, ceiling;
	bool ok_echo, ok_pg;

	if (peers < 2 || !per_peer) {
		fprintf(stderr, "meshbench: ceiling needs P >= 2 and M >= 1\n");
		return 2;
	}
	printf("\n== meshbench ceiling\n  machine: %s\n", mb_machine_line());
	ok_echo = echo_run(o, peers, per_peer, &echo);
	ok_pg = pg_run(o, &pg, &pg_best);
	echo_rate = json_real_value(json_object_get(echo, "msgs_per_s"));
	ceiling = echo_rate < pg_best || pg_best <= 0 ? echo_rate : pg_best;
	printf("  ceiling (slower of the two): %.0f msg/s (%s)\n", ceiling,
	       ceiling == echo_rate ? "WebSocket echo" : "PostgreSQL inserts");
	params = json_pack("{s:i, s:i, s:i, s:i, s:f, s:s}", "peers", peers, "per_peer", per_peer,
			   "window", o->window ? o->window : 1, "payload", o->payload,
			   "pg_seconds", o->pg_seconds,
			   "crypto", o->full_crypto ? "full" : "precomputed");
	*out = json_pack("{s:s, s:o, s:{s:b, s:o, s:o, s:f, s:s}}", "scenario", "ceiling",
			 "params", params, "results", "completed", ok_echo && ok_pg,
			 "echo", echo, "pg", pg, "ceiling_msgs_per_s", ceiling,
			 "limited_by", ceiling == echo_rate ? "websocket" : "postgresql");
	return ok_echo && ok_pg ? 0 : 1;
}
