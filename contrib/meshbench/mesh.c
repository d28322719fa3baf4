/* mesh — a seeded mesh, its peers and their hellos, DM crypto, and the
 * broker's /proc and /metrics.  Thread: the one running the run's base.
 */
#include "config.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <sodium.h>

#include "meshbench.h"

/* ------------------------------------------------------------------ rng */

uint64_t mb_rng_next(struct mb_rng *r)
{
	/* splitmix64: good enough to pick targets, and seedable */
	uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

uint32_t mb_rng_below(struct mb_rng *r, uint32_t n)
{
	return n ? (uint32_t)(((mb_rng_next(r) >> 32) * (uint64_t)n) >> 32) : 0;
}

/* ---------------------------------------------------------------- seeding */

static bool exec_ok(PGconn *c, const char *sql, int n, const char *const *params,
		    char *err, size_t errlen)
{
	PGresult *res = PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);
	ExecStatusType st = PQresultStatus(res);
	bool ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;

	if (!ok)
		snprintf(err, errlen, "%s", PQresultErrorMessage(res));
	PQclear(res);
	return ok;
}

static uint64_t key_hash(const unsigned char pk[32])
{
	uint64_t h;

	memcpy(&h, pk, sizeof(h));
	return h;
}

static bool index_keys(struct mb_mesh *m)
{
	size_t n = 16;

	while (n < 2 * m->n)
		n <<= 1;
	m->slots = calloc(n, sizeof(*m->slots));
	if (!m->slots)
		return false;
	m->nslots = n;
	for (size_t i = 0; i < m->n; i++) {
		size_t s = key_hash(m->m[i].key.pk) & (n - 1);

		while (m->slots[s])
			s = (s + 1) & (n - 1);
		m->slots[s] = (uint32_t)i + 1;
	}
	return true;
}

long mb_mesh_find(const struct mb_mesh *m, const char *pk_hex)
{
	unsigned char pk8[8];
	size_t got = 0, s;
	uint64_t h;

	if (!pk_hex || !m->nslots || strlen(pk_hex) != MC_PK_HEX_LEN ||
	    sodium_hex2bin(pk8, sizeof(pk8), pk_hex, 16, NULL, &got, NULL) != 0 || got != 8)
		return -1;
	memcpy(&h, pk8, sizeof(h));
	for (s = h & (m->nslots - 1); m->slots[s]; s = (s + 1) & (m->nslots - 1)) {
		uint32_t i = m->slots[s] - 1;

		if (strcmp(m->m[i].key.pk_hex, pk_hex) == 0)
			return (long)i;
	}
	return -1;
}

static bool gen_members(struct mb_mesh *m, size_t n)
{
	m->m = calloc(n ? n : 1, sizeof(*m->m));
	if (!m->m)
		return false;
	m->n = n;
	for (size_t i = 0; i < n; i++) {
		struct mb_member *x = &m->m[i];

		mc_random_id(x->id, sizeof(x->id));
		if (!mc_identity_random(&x->key) ||
		    crypto_sign_ed25519_pk_to_curve25519(x->xpk, x->key.pk) != 0 ||
		    crypto_sign_ed25519_sk_to_curve25519(x->xsk, x->key.sk) != 0)
			return false;
	}
	return index_keys(m);
}

bool mb_mesh_seed(const char *url, size_t n, struct mb_mesh *m, char *err, size_t errlen)
{
	PGconn *c;
	char name[64], slug[64];
	const char *mp[3];
	bool ok = false;

	memset(m, 0, sizeof(*m));
	if (!gen_members(m, n)) {
		snprintf(err, errlen, "cannot generate %zu key pairs", n);
		return false;
	}
	mc_random_id(m->id, sizeof(m->id));
	c = PQconnectdb(url);
	if (PQstatus(c) != CONNECTION_OK) {
		snprintf(err, errlen, "database: %s", PQerrorMessage(c));
		goto out;
	}
	/* Only the columns that are NOT NULL without a default (SEMANTICS.md
	 * §A.2), so any broker on the reference schema accepts the rows. */
	if (!exec_ok(c, "INSERT INTO public.\"user\"(id, name, email)"
		     " VALUES ('meshbench', 'meshbench', 'meshbench@meshbench.invalid')"
		     " ON CONFLICT DO NOTHING", 0, NULL, err, errlen))
		goto out;
	snprintf(name, sizeof(name), "meshbench-%.8s", m->id);
	snprintf(slug, sizeof(slug), "meshbench-%.8s", m->id);
	mp[0] = m->id;
	mp[1] = name;
	mp[2] = slug;
	if (!exec_ok(c, "INSERT INTO mesh.mesh(id, name, slug, owner_user_id)"
		     " VALUES ($1, $2, $3, 'meshbench')", 3, mp, err, errlen))
		goto out;
	{
		PGresult *res = PQexec(c, "COPY mesh.member(id, mesh_id, peer_pubkey, display_name)"
				       " FROM STDIN");
		bool copy = PQresultStatus(res) == PGRES_COPY_IN;

		if (!copy)
			snprintf(err, errlen, "COPY: %s", PQresultErrorMessage(res));
		PQclear(res);
		if (!copy)
			goto out;
	}
	for (size_t i = 0; i < n; i++) {
		char line[200];
		int len = snprintf(line, sizeof(line), "%s\t%s\t%s\tmb-%zu\n", m->m[i].id, m->id,
				   m->m[i].key.pk_hex, i);

		if (PQputCopyData(c, line, len) != 1) {
			snprintf(err, errlen, "COPY: %s", PQerrorMessage(c));
			goto out;
		}
	}
	if (PQputCopyEnd(c, NULL) != 1) {
		snprintf(err, errlen, "COPY: %s", PQerrorMessage(c));
		goto out;
	}
	{
		PGresult *res;

		ok = true;
		while ((res = PQgetResult(c))) {
			if (PQresultStatus(res) != PGRES_COMMAND_OK) {
				snprintf(err, errlen, "COPY: %s", PQresultErrorMessage(res));
				ok = false;
			}
			PQclear(res);
		}
	}
out:
	PQfinish(c);
	if (!ok)
		mb_mesh_free(m);
	return ok;
}

bool mb_mesh_delete(const char *url, const struct mb_mesh *m)
{
	PGconn *c = PQconnectdb(url);
	const char *p[1] = { m->id };
	char err[256];
	bool ok = PQstatus(c) == CONNECTION_OK &&
		  exec_ok(c, "DELETE FROM mesh.mesh WHERE id = $1", 1, p, err, sizeof(err));

	PQfinish(c);
	return ok;
}

void mb_mesh_free(struct mb_mesh *m)
{
	if (m->m)
		sodium_memzero(m->m, m->n * sizeof(*m->m));
	free(m->m);
	free(m->slots);
	m->m = NULL;
	m->slots = NULL;
	m->n = m->nslots = 0;
}

/* ----------------------------------------------------------------- crypto */

#define CACHE_SLOTS 65536

struct mb_crypto {
	const struct mb_mesh *m;
	bool full;
	struct pair_key {
		uint64_t pair;  /* 0: empty */
		unsigned char k[crypto_box_BEFORENMBYTES];
	} *cache;
};

struct mb_crypto *mb_crypto_new(const struct mb_mesh *m, bool full)
{
	struct mb_crypto *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->m = m;
	c->full = full;
	if (!full) {
		c->cache = calloc(CACHE_SLOTS, sizeof(*c->cache));
		if (!c->cache) {
			free(c);
			return NULL;
		}
	}
	return c;
}

void mb_crypto_free(struct mb_crypto *c)
{
	if (!c)
		return;
	if (c->cache)
		sodium_memzero(c->cache, CACHE_SLOTS * sizeof(*c->cache));
	free(c->cache);
	free(c);
}

/* The crypto_box shared key of members a and b (X25519 is symmetric, so one
 * key serves both directions); cached, direct-mapped. */
static const unsigned char *pair_key(struct mb_crypto *c, uint32_t a, uint32_t b)
{
	uint32_t lo = a < b ? a : b, hi = a < b ? b : a;
	uint64_t pair = ((uint64_t)(lo + 1) << 32) | (hi + 1);
	struct pair_key *e = &c->cache[(pair * 0x9e3779b97f4a7c15ULL) >> 48];

	if (e->pair != pair) {
		if (crypto_box_beforenm(e->k, c->m->m[hi].xpk, c->m->m[lo].xsk) != 0)
			return NULL;
		e->pair = pair;
	}
	return e->k;
}

bool mb_seal(struct mb_crypto *c, uint32_t from, uint32_t to, const void *plain, size_t len,
	     char **nonce_b64, char **ct_b64)
{
	unsigned char nonce[crypto_box_NONCEBYTES];
	const unsigned char *k;
	unsigned char *ct;

	if (c->full)
		return mc_encrypt_dm(&c->m->m[from].key, c->m->m[to].key.pk_hex, plain, len,
				     nonce_b64, ct_b64);
	k = pair_key(c, from, to);
	ct = malloc(len + crypto_box_MACBYTES);
	if (!k || !ct) {
		free(ct);
		return false;
	}
	randombytes_buf(nonce, sizeof(nonce));
	crypto_box_easy_afternm(ct, plain, len, nonce, k);
	*nonce_b64 = mc_b64(nonce, sizeof(nonce));
	*ct_b64 = mc_b64(ct, len + crypto_box_MACBYTES);
	free(ct);
	if (!*nonce_b64 || !*ct_b64) {
		free(*nonce_b64);
		free(*ct_b64);
		return false;
	}
	return true;
}

bool mb_open(struct mb_crypto *c, uint32_t to, uint32_t from, const char *nonce_b64,
	     const char *ct_b64, unsigned char **plain, size_t *len)
{
	unsigned char *nonce = NULL, *ct = NULL, *m = NULL;
	size_t nlen, clen;
	const unsigned char *k;
	bool ok = false;

	if (c->full)
		return mc_decrypt_dm(&c->m->m[to].key, c->m->m[from].key.pk_hex, nonce_b64,
				     ct_b64, plain, len);
	k = pair_key(c, from, to);
	if (!k || !mc_unb64(nonce_b64, &nonce, &nlen))
		return false;
	if (nlen != crypto_box_NONCEBYTES || !mc_unb64(ct_b64, &ct, &clen) ||
	    clen < crypto_box_MACBYTES)
		goto out;
	m = malloc(clen - crypto_box_MACBYTES + 1);
	if (!m || crypto_box_open_easy_afternm(m, ct, clen, nonce, k) != 0)
		goto out;
	m[clen - crypto_box_MACBYTES] = '\0';
	*plain = m;
	*len = clen - crypto_box_MACBYTES;
	m = NULL;
	ok = true;
out:
	free(m);
	free(ct);
	free(nonce);
	return ok;
}

bool mb_crypto_selftest(const struct mb_mesh *unused)
{
	static const char msg[] = "meshbench crypto self-test";
	struct mb_mesh m = { 0 };
	struct mb_crypto *fast = NULL;
	char *n64 = NULL, *c64 = NULL;
	unsigned char *p = NULL;
	size_t len;
	bool ok = false;

	(void)unused;
	if (!gen_members(&m, 2) || !(fast = mb_crypto_new(&m, false)))
		goto out;
	/* meshclient seals, we open */
	if (!mc_encrypt_dm(&m.m[0].key, m.m[1].key.pk_hex, msg, sizeof(msg) - 1, &n64, &c64) ||
	    !mb_open(fast, 1, 0, n64, c64, &p, &len) || len != sizeof(msg) - 1 ||
	    memcmp(p, msg, len) != 0)
		goto out;
	free(n64);
	free(c64);
	free(p);
	n64 = c64 = NULL;
	p = NULL;
	/* we seal, meshclient opens */
	if (!mb_seal(fast, 1, 0, msg, sizeof(msg) - 1, &n64, &c64) ||
	    !mc_decrypt_dm(&m.m[0].key, m.m[1].key.pk_hex, n64, c64, &p, &len) ||
	    len != sizeof(msg) - 1 || memcmp(p, msg, len) != 0)
		goto out;
	ok = true;
out:
	free(n64);
	free(c64);
	free(p);
	mb_crypto_free(fast);
	mb_mesh_free(&m);
	return ok;
}

/* ------------------------------------------------------------------ peers */

static void peer_open(struct mb_ws *ws);
static void peer_msg(struct mb_ws *ws, const char *data, size_t len, uint64_t rx_ns);
static void peer_closed(struct mb_ws *ws, const char *why);

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

		if (!mb_mesh_seed(o->db_url, npeers, &r->mesh, err, sizeof(err))) {
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
	char sid[64], name[32];
	char *hello;

	snprintf(sid, sizeof(sid), "meshbench-%s-%u", r->run_id, p->idx);
	snprintf(name, sizeof(name), "mb-%u", p->idx);
	hello = mc_hello(&m->key, &(struct mc_hello_opts){
		.mesh_id = r->mesh.id, .member_id = m->id, .display_name = name,
		.session_id = sid, .pid = (long long)getpid(), .cwd = "/nonexistent/meshbench",
		.hostname = "meshbench", .peer_type = "ai", .channel = "meshbench",
	});
	p->state = PEER_HELLO;
	if (!hello || !mb_ws_send(ws, hello, strlen(hello))) {
		free(hello);
		mb_ws_close(ws, true);
		p->ws = NULL;
		peer_closed_now(p, "hello failed");
		return;
	}
	r->frames_out++;
	free(hello);
}

bool mb_peer_send(struct mb_peer *p, char *frame)
{
	bool ok = frame && p->state == PEER_READY && mb_ws_send(p->ws, frame, strlen(frame));

	if (ok)
		p->run->frames_out++;
	free(frame);
	return ok;
}

static void hello_done(struct mb_run *r, struct mb_peer *p, struct mc_frame *f, uint64_t rx_ns)
{
	if (f->type == MC_HELLO_ACK) {
		p->state = PEER_READY;
		p->t_ack_ns = rx_ns;
		p->ack_order = ++r->ack_rank;
		r->connecting--;
		r->ready++;
		mb_samples_add(&r->hello_lat, rx_ns > p->t_start_ns ? rx_ns - p->t_start_ns : 0);
		if (r->ops->ready)
			r->ops->ready(p);
		start_more(r);
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

static void peer_msg(struct mb_ws *ws, const char *data, size_t len, uint64_t rx_ns)
{
	struct mb_peer *p = mb_ws_user(ws);
	struct mb_run *r = p->run;
	uint64_t now = mb_now_ns();
	struct mc_frame f;

	r->frames_in++;
	r->bytes_in += len;
	mb_samples_add(&r->rx_lag, now > rx_ns ? now - rx_ns : 0);
	if (!mc_parse(data, len, &f)) {
		r->parse_errors++;
		return;
	}
	if (p->state == PEER_HELLO && (f.type == MC_HELLO_ACK || f.type == MC_ERROR))
		hello_done(r, p, &f, rx_ns);
	else if (r->ops->frame)
		r->ops->frame(p, &f, rx_ns);
	mc_frame_free(&f);
}

void peer_closed_now(struct mb_peer *p, const char *why)
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
}

static void peer_closed(struct mb_ws *ws, const char *why)
{
	peer_closed_now(mb_ws_user(ws), why);
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

/* ------------------------------------------------------- broker process */

static long clk_tck(void)
{
	static long t;

	if (!t)
		t = sysconf(_SC_CLK_TCK);
	return t > 0 ? t : 100;
}

static bool read_status(pid_t pid, uint64_t *hwm, uint64_t *rss)
{
	char path[64], line[256];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return false;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long v;

		if (sscanf(line, "VmHWM: %llu", &v) == 1)
			*hwm = v;
		else if (sscanf(line, "VmRSS: %llu", &v) == 1)
			*rss = v;
	}
	fclose(f);
	return true;
}

static bool read_cpu(pid_t pid, double *cpu)
{
	char path[64], buf[2048];
	unsigned long long ut, st;
	const char *p;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return false;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	p = strrchr(buf, ')');      /* comm may hold spaces and parentheses */
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
			 &ut, &st) != 2)
		return false;
	*cpu = (double)(ut + st) / (double)clk_tck();
	return true;
}

static unsigned count_fds(pid_t pid)
{
	char path[64];
	struct dirent *e;
	unsigned n = 0;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	d = opendir(path);
	if (!d)
		return 0;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

void mb_proc_sample(struct mb_proc *p)
{
	uint64_t hwm = 0, rss = 0;
	double cpu;
	unsigned fds;

	if (!p->ok)
		return;
	if (read_status(p->pid, &hwm, &rss)) {
		p->hwm_kb = hwm;
		p->rss_kb = rss;
		if (rss > p->rss_kb_max)
			p->rss_kb_max = rss;
	}
	if (read_cpu(p->pid, &cpu))
		p->cpu = cpu;
	fds = count_fds(p->pid);
	if (fds) {
		p->fds = fds;
		if (fds > p->fds_max)
			p->fds_max = fds;
	}
}

static void proc_tick(evutil_socket_t fd, short what, void *arg)
{
	mb_proc_sample(arg);
}

void mb_proc_start(struct mb_proc *p, struct event_base *base, pid_t pid)
{
	static const struct timeval every = { 0, 100000 };

	memset(p, 0, sizeof(*p));
	p->pid = pid;
	if (pid <= 0)
		return;
	p->ok = read_status(pid, &p->hwm_kb_start, &p->rss_kb_start) &&
		read_cpu(pid, &p->cpu_start);
	if (!p->ok) {
		fprintf(stderr, "meshbench: cannot read /proc/%d: broker figures omitted\n", (int)pid);
		return;
	}
	p->fds_start = count_fds(pid);
	mb_proc_sample(p);
	p->timer = event_new(base, -1, EV_PERSIST, proc_tick, p);
	if (p->timer)
		event_add(p->timer, &every);
}

void mb_proc_stop(struct mb_proc *p)
{
	mb_proc_sample(p);
	if (p->timer)
		event_free(p->timer);
	p->timer = NULL;
}

json_t *mb_proc_json(const struct mb_proc *p)
{
	if (!p->ok)
		return json_null();
	return json_pack("{s:i, s:f, s:f, s:f, s:f, s:f, s:i, s:i}",
			 "pid", (json_int_t)p->pid,
			 "peak_rss_mb", (double)p->hwm_kb / 1024.0,
			 "rss_start_mb", (double)p->rss_kb_start / 1024.0,
			 "rss_end_mb", (double)p->rss_kb / 1024.0,
			 "rss_max_sampled_mb", (double)p->rss_kb_max / 1024.0,
			 "cpu_s", p->cpu - p->cpu_start,
			 "fds_start", (json_int_t)p->fds_start,
			 "fds_max", (json_int_t)p->fds_max);
}

void mb_proc_print(const struct mb_proc *p)
{
	if (!p->ok) {
		printf("  broker: (no --broker-pid: RSS, CPU and fds not measured)\n");
		return;
	}
	printf("  broker pid %d: peak RSS %.1f MB (VmHWM; start %.1f, end %.1f), CPU %.2f s,"
	       " open fds max %u (start %u)\n", (int)p->pid, (double)p->hwm_kb / 1024.0,
	       (double)p->rss_kb_start / 1024.0, (double)p->rss_kb / 1024.0,
	       p->cpu - p->cpu_start, p->fds_max, p->fds_start);
}

/* ---------------------------------------------------------------- metrics */

long long mb_metric(const struct mb_opts *o, const char *prefix)
{
	struct sockaddr_in dst;
	char host[300], req[512], *buf = NULL, *body, *line;
	size_t len = 0, cap = 0;
	struct timeval tv = { 2, 0 };
	long long v = -1;
	int fd;

	if (!mb_resolve(o, &dst, host, sizeof(host)))
		return -1;
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	snprintf(req, sizeof(req), "GET /metrics HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n",
		 host);
	if (connect(fd, (struct sockaddr *)&dst, sizeof(dst)) != 0 ||
	    send(fd, req, strlen(req), MSG_NOSIGNAL) < 0)
		goto out;
	for (;;) {
		ssize_t r;

		if (cap - len < 4096) {
			char *nb;

			if (cap > (4u << 20))
				break;
			nb = realloc(buf, cap + 65536);
			if (!nb)
				break;
			buf = nb;
			cap += 65536;
		}
		r = recv(fd, buf + len, cap - len - 1, 0);
		if (r <= 0)
			break;
		len += (size_t)r;
	}
	if (!buf)
		goto out;
	buf[len] = '\0';
	body = strstr(buf, "\r\n\r\n");
	if (!body || strncmp(buf, "HTTP/1.1 200", 12) != 0)
		goto out;
	for (line = body + 4; line && *line; line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
		size_t pl = strlen(prefix);

		if (strncmp(line, prefix, pl) == 0 && line[pl] == ' ') {
			v = strtoll(line + pl + 1, NULL, 10);
			break;
		}
	}
	if (v < 0 && strstr(body, "# TYPE"))
		v = 0;  /* the endpoint answered; the line is just not there yet */
out:
	free(buf);
	close(fd);
	return v;
}

long long mb_rate_limit_check(const struct mb_opts *o, const char *when)
{
	long long n = mb_metric(o, "broker_messages_rejected_total{reason=\"rate_limit\"}");

	if (n > 0)
		fprintf(stderr,
			"\nmeshbench: !!! /metrics %s shows %lld sends rejected by the rate limit:\n"
			"meshbench: !!! the broker must run with SEND_RATE_LIMIT_PER_MIN=0 for these"
			" numbers to mean anything\n\n", when, n);
	return n;
}
