/* mesh — seeding meshes and members with SQL, PostgreSQL counters, and DM
 * crypto between members.  Any thread (each object is its caller's).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

	if (!pk_hex || !m->nslots ||
	    sodium_hex2bin(pk8, sizeof(pk8), pk_hex, 16, NULL, &got, NULL) != 0 || got != 8)
		return -1;
	memcpy(&h, pk8, sizeof(h));
	for (s = h & (m->nslots - 1); m->slots[s]; s = (s + 1) & (m->nslots - 1)) {
		uint32_t i = m->slots[s] - 1;

		if (memcmp(m->m[i].key.pk_hex, pk_hex, MC_PK_HEX_LEN) == 0)
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

static bool gen_meshes(struct mb_mesh *m, size_t n, size_t per_mesh)
{
	m->per_mesh = per_mesh && per_mesh < n ? per_mesh : 0;
	m->nmeshes = m->per_mesh ? (n + per_mesh - 1) / per_mesh : 1;
	m->ids = calloc(m->nmeshes, sizeof(*m->ids));
	if (!m->ids)
		return false;
	for (size_t i = 0; i < m->nmeshes; i++)
		mc_random_id(m->ids[i], sizeof(m->ids[i]));
	memcpy(m->id, m->ids[0], sizeof(m->id));
	return true;
}

const char *mb_mesh_id_of(const struct mb_mesh *m, size_t i)
{
	return m->ids[m->per_mesh ? i / m->per_mesh : 0];
}

bool mb_mesh_generate(struct mb_mesh *m, size_t n)
{
	memset(m, 0, sizeof(*m));
	if (gen_meshes(m, n, 0) && gen_members(m, n))
		return true;
	mb_mesh_free(m);
	return false;
}

/* The members, all at once: COPY … FROM STDIN. */
static bool copy_members(PGconn *c, const struct mb_mesh *m, char *err, size_t errlen)
{
	PGresult *res = PQexec(c, "COPY mesh.member(id, mesh_id, peer_pubkey, display_name)"
			       " FROM STDIN");
	bool ok = PQresultStatus(res) == PGRES_COPY_IN;

	PQclear(res);
	if (!ok) {
		snprintf(err, errlen, "COPY: %s", PQerrorMessage(c));
		return false;
	}
	for (size_t i = 0; ok && i < m->n; i++) {
		char line[200];
		int len = snprintf(line, sizeof(line), "%s\t%s\t%s\tmb-%zu\n", m->m[i].id,
				   mb_mesh_id_of(m, i), m->m[i].key.pk_hex, i);

		ok = PQputCopyData(c, line, len) == 1;
	}
	if (PQputCopyEnd(c, ok ? NULL : "meshbench gave up") != 1)
		ok = false;
	if (!ok)
		snprintf(err, errlen, "COPY: %s", PQerrorMessage(c));
	while ((res = PQgetResult(c))) {
		if (PQresultStatus(res) != PGRES_COMMAND_OK) {
			if (ok)
				snprintf(err, errlen, "COPY: %s", PQresultErrorMessage(res));
			ok = false;
		}
		PQclear(res);
	}
	return ok;
}

bool mb_mesh_seed(const char *url, size_t n, size_t per_mesh, struct mb_mesh *m, char *err,
		  size_t errlen)
{
	PGconn *c;
	char name[64];
	const char *mp[2] = { NULL, name };
	bool ok = false;

	memset(m, 0, sizeof(*m));
	*err = '\0';
	if (!gen_meshes(m, n, per_mesh) || !gen_members(m, n)) {
		snprintf(err, errlen, "cannot generate %zu key pairs", n);
		mb_mesh_free(m);
		return false;
	}
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
	for (size_t i = 0; i < m->nmeshes; i++) {
		snprintf(name, sizeof(name), "meshbench-%.8s", m->ids[i]);
		mp[0] = m->ids[i];
		if (!exec_ok(c, "INSERT INTO mesh.mesh(id, name, slug, owner_user_id)"
			     " VALUES ($1, $2, $2, 'meshbench')", 2, mp, err, errlen))
			goto out;
	}
	ok = copy_members(c, m, err, errlen);
out:
	PQfinish(c);
	if (!ok)
		mb_mesh_free(m);
	return ok;
}

bool mb_mesh_delete(const char *url, const struct mb_mesh *m)
{
	PGconn *c = PQconnectdb(url);
	char err[256], *arr = malloc(m->nmeshes * 33 + 3), *w = arr;
	const char *p[1] = { arr };
	bool ok;

	if (!arr) {
		PQfinish(c);
		return false;
	}
	/* ids are base62: a plain array literal */
	*w++ = '{';
	for (size_t i = 0; i < m->nmeshes; i++)
		w += sprintf(w, "%s%s", i ? "," : "", m->ids[i]);
	*w++ = '}';
	*w = '\0';
	ok = PQstatus(c) == CONNECTION_OK &&
	     exec_ok(c, "DELETE FROM mesh.mesh WHERE id = ANY($1::text[])", 1, p, err, sizeof(err));
	PQfinish(c);
	free(arr);
	return ok;
}

bool mb_dbstat_read(const char *url, struct mb_dbstat *s)
{
	PGconn *c = PQconnectdb(url);
	PGresult *res;

	memset(s, 0, sizeof(*s));
	if (PQstatus(c) != CONNECTION_OK) {
		PQfinish(c);
		return false;
	}
	res = PQexec(c, "SELECT xact_commit, xact_rollback, tup_inserted, tup_updated, tup_deleted,"
		     " pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')"
		     " FROM pg_stat_database WHERE datname = current_database()");
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
		s->commits = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
		s->rollbacks = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
		s->inserted = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
		s->updated = strtoll(PQgetvalue(res, 0, 3), NULL, 10);
		s->deleted = strtoll(PQgetvalue(res, 0, 4), NULL, 10);
		s->wal_bytes = strtod(PQgetvalue(res, 0, 5), NULL);
		s->ok = true;
	}
	PQclear(res);
	PQfinish(c);
	return s->ok;
}

json_t *mb_dbstat_json(const struct mb_dbstat *b, const struct mb_dbstat *a, double n)
{
	double d = n > 0 ? n : 1;

	if (!b->ok || !a->ok)
		return json_null();
	return json_pack("{s:I, s:I, s:I, s:I, s:f, s:f, s:f, s:f, s:f}",
			 "commits", (json_int_t)(a->commits - b->commits),
			 "rollbacks", (json_int_t)(a->rollbacks - b->rollbacks),
			 "rows_inserted", (json_int_t)(a->inserted - b->inserted),
			 "rows_updated", (json_int_t)(a->updated - b->updated),
			 "wal_mb", (a->wal_bytes - b->wal_bytes) / 1048576.0,
			 "commits_per_msg", (double)(a->commits - b->commits) / d,
			 "inserts_per_msg", (double)(a->inserted - b->inserted) / d,
			 "updates_per_msg", (double)(a->updated - b->updated) / d,
			 "wal_bytes_per_msg", (a->wal_bytes - b->wal_bytes) / d);
}

void mb_dbstat_print(const struct mb_dbstat *b, const struct mb_dbstat *a, double n)
{
	double d = n > 0 ? n : 1;

	if (!b->ok || !a->ok)
		return;
	printf("  database counters (approximate): %lld commits (%.3f per message), rows inserted"
	       " %.2f / updated %.2f per message, WAL %.1f MB (%.0f bytes per message)\n",
	       a->commits - b->commits, (double)(a->commits - b->commits) / d,
	       (double)(a->inserted - b->inserted) / d, (double)(a->updated - b->updated) / d,
	       (a->wal_bytes - b->wal_bytes) / 1048576.0, (a->wal_bytes - b->wal_bytes) / d);
}

long long mb_queue_pending(const char *url, const struct mb_mesh *m)
{
	PGconn *c = PQconnectdb(url);
	const char *p[1] = { m->id };
	long long n = -1;
	PGresult *res;

	if (PQstatus(c) == CONNECTION_OK) {
		res = PQexecParams(c, "SELECT count(*) FROM mesh.message_queue"
				   " WHERE mesh_id = $1 AND delivered_at IS NULL", 1, NULL, p, NULL,
				   NULL, 0);
		if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
			n = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
		PQclear(res);
	}
	PQfinish(c);
	return n;
}

void mb_mesh_free(struct mb_mesh *m)
{
	if (m->m)
		sodium_memzero(m->m, m->n * sizeof(*m->m));
	free(m->m);
	free(m->slots);
	free(m->ids);
	m->m = NULL;
	m->slots = NULL;
	m->ids = NULL;
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
