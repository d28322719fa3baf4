/* Integration: invites end to end (SEMANTICS.md §C.4–C.6, PROTOCOL.md §3.5,
 * D6): POST /join (v1) and POST /invites/<code>/claim (v2) against the real
 * broker and database — every answer with its status and exact body, the
 * sealed root key, and exactly-once consumption under concurrency. */
#include "config.h"

#include <check.h>

#include "check_run.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <sodium.h>

#include "itest.h"
#include "meshd/invite.h"
#include "meshtest.h"

#define CONCURRENT 64

static struct broker B;
static unsigned char owner_sk[crypto_sign_SECRETKEYBYTES];
static char owner_pk[65];
static char root_key[64];

static void start(bool v2)
{
	const char *on[] = { "BROKER_INVITE_V2_ENABLED=1", NULL };
	itest_broker_start(&B, v2 ? on : NULL);
	ck_assert(itest_wait_status(B.port, "/health", 200, 15000));
}

static void setup(void)
{
	start(true);
}

static void teardown(void)
{
	itest_broker_stop(&B);
}

static void sql(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sql(const char *fmt, ...)
{
	char q[4096];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(q, sizeof(q), fmt, ap);
	va_end(ap);
	ck_assert_msg(pgtest_exec(itest_db_url(), q), "%s", q);
}

static const char *scalar(const char *q)
{
	static char out[1024];
	ck_assert_msg(pgtest_scalar(itest_db_url(), q, out, sizeof(out)), "%s", q);
	return out;
}

/* A mesh owned by the seed-01 key, with a root key. */
static void seed_mesh(const char *mesh)
{
	unsigned char seed[crypto_sign_SEEDBYTES], pk[crypto_sign_PUBLICKEYBYTES], root[32];
	memset(seed, 0x01, sizeof(seed));
	crypto_sign_seed_keypair(pk, owner_sk, seed);
	sodium_bin2hex(owner_pk, sizeof(owner_pk), pk, sizeof(pk));
	randombytes_buf(root, sizeof(root));
	char *r = b64url_encode(root, sizeof(root));
	snprintf(root_key, sizeof(root_key), "%s", r);
	free(r);
	mt_seed_mesh(itest_db_url(), mesh, mesh);
	sql("UPDATE mesh.mesh SET owner_pubkey = '%s', root_key = '%s' WHERE id = '%s'", owner_pk,
	    root_key, mesh);
}

/* A v2 invite (a signed capability) with `code`; expires in an hour. */
static void seed_v2(const char *mesh, const char *id, const char *code, int max_uses)
{
	char exp[32];
	snprintf(exp, sizeof(exp), "%s",
		 scalar("SELECT floor(extract(epoch FROM date_trunc('second', now() AT TIME ZONE 'UTC')"
			" + interval '1 hour'))::bigint"));
	char *canonical = invite_v2_canonical(mesh, id, atoll(exp), "member", owner_pk);
	char sig[129];
	invite_sign(canonical, owner_sk, sig);
	char *cap = invite_v2_capability(canonical, sig);
	sql("INSERT INTO mesh.invite (id, mesh_id, token, max_uses, role, expires_at, created_by, code,"
	    " version, capability_v2) VALUES ('%s', '%s', 'tok-%s', %d, 'member',"
	    " to_timestamp(%s) AT TIME ZONE 'UTC', 'test-user', '%s', 2, '%s')",
	    id, mesh, id, max_uses, exp, code, cap);
	free(canonical);
	free(cap);
}

static char *post(const char *path, const char *body)
{
	size_t n = strlen(body) + 256;
	char *raw = malloc(n);
	snprintf(raw, n, "POST %s HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
		 "Content-Length: %zu\r\n\r\n%s", path, strlen(body), body);
	return raw;
}

/* One request; returns "<status> <body>" (static buffer). */
static const char *call(const char *path, const char *body)
{
	static char out[2048];
	char *raw = post(path, body);
	struct http_response r;
	ck_assert(httpc_request(B.port, raw, &r));
	snprintf(out, sizeof(out), "%d %s", r.status, r.body);
	httpc_response_free(&r);
	free(raw);
	return out;
}

struct x25519 {
	unsigned char pk[crypto_box_PUBLICKEYBYTES], sk[crypto_box_SECRETKEYBYTES];
	char b64[64];
};

static void x25519_new(struct x25519 *k)
{
	crypto_box_keypair(k->pk, k->sk);
	char *s = b64url_encode(k->pk, sizeof(k->pk));
	snprintf(k->b64, sizeof(k->b64), "%s", s);
	free(s);
}

static const char *claim(const char *code, const char *key)
{
	char path[128], body[256];
	snprintf(path, sizeof(path), "/invites/%s/claim", code);
	snprintf(body, sizeof(body), "{\"recipient_x25519_pubkey\":\"%s\"}", key);
	return call(path, body);
}

START_TEST(claim_answers_in_the_contracts_order)
{
	seed_mesh("meshC");
	struct x25519 k;
	x25519_new(&k);
	ck_assert_str_eq(call("/invites/x/claim", "{nope"), "400 {\"error\":\"malformed\"}");
	ck_assert_str_eq(call("/invites/x/claim", "{}"), "400 {\"error\":\"malformed\"}");
	ck_assert_str_eq(call("/invites/x/claim", "{\"recipient_x25519_pubkey\":7}"),
			 "400 {\"error\":\"malformed\"}");
	ck_assert_str_eq(claim("x", "short"), "400 {\"error\":\"malformed\"}");
	ck_assert_str_eq(claim("nope", k.b64), "404 {\"error\":\"not_found\"}");
	seed_v2("meshC", "inv-r", "c-rev", 1);
	sql("UPDATE mesh.invite SET revoked_at = now() WHERE id = 'inv-r'");
	ck_assert_str_eq(claim("c-rev", k.b64), "410 {\"error\":\"revoked\"}");
	seed_v2("meshC", "inv-e", "c-exp", 1);
	sql("UPDATE mesh.invite SET expires_at = now() - interval '1 s' WHERE id = 'inv-e'");
	ck_assert_str_eq(claim("c-exp", k.b64), "410 {\"error\":\"expired\"}");
	seed_v2("meshC", "inv-x", "c-exh", 2);
	sql("UPDATE mesh.invite SET used_count = 2 WHERE id = 'inv-x'");
	ck_assert_str_eq(claim("c-exh", k.b64), "410 {\"error\":\"exhausted\"}");
	/* Signature checks: a stored canonical that is not the broker's, a
	 * signature that does not verify, a capability that does not parse. */
	seed_v2("meshC", "inv-c", "c-can", 1);
	sql("UPDATE mesh.invite SET role = 'admin' WHERE id = 'inv-c'");
	ck_assert_str_eq(claim("c-can", k.b64), "400 {\"error\":\"bad_signature\"}");
	seed_v2("meshC", "inv-s", "c-sig", 1);
	sql("UPDATE mesh.invite SET capability_v2 = jsonb_set(capability_v2::jsonb, '{signature}',"
	    " to_jsonb(repeat('0', 128)))::text WHERE id = 'inv-s'");
	ck_assert_str_eq(claim("c-sig", k.b64), "400 {\"error\":\"bad_signature\"}");
	seed_v2("meshC", "inv-j", "c-json", 1);
	sql("UPDATE mesh.invite SET capability_v2 = '{oops' WHERE id = 'inv-j'");
	ck_assert_str_eq(claim("c-json", k.b64), "400 {\"error\":\"malformed\"}");
	sql("UPDATE mesh.invite SET capability_v2 = '{\"canonical\":\"x\"}' WHERE id = 'inv-j'");
	ck_assert_str_eq(claim("c-json", k.b64), "400 {\"error\":\"malformed\"}");
	/* D6: a recipient key that is not 32 bytes consumes nothing. */
	seed_v2("meshC", "inv-k", "c-key", 1);
	ck_assert_str_eq(claim("c-key", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
			 "400 {\"error\":\"malformed\"}");
	char padded[80];
	snprintf(padded, sizeof(padded), "%s=", k.b64);
	ck_assert_str_eq(claim("c-key", padded), "400 {\"error\":\"malformed\"}");
	ck_assert_str_eq(scalar("SELECT used_count || '/' || coalesce(claimed_by_pubkey, '-')"
				" FROM mesh.invite WHERE id = 'inv-k'"), "0/-");
	ck_assert_str_eq(scalar("SELECT count(*) FROM mesh.member WHERE mesh_id = 'meshC'"), "0");
	/* The mesh: archived is not found; without a root key, malformed. */
	sql("UPDATE mesh.mesh SET root_key = NULL WHERE id = 'meshC'");
	ck_assert_str_eq(claim("c-key", k.b64), "400 {\"error\":\"malformed\"}");
	sql("UPDATE mesh.mesh SET archived_at = now() WHERE id = 'meshC'");
	ck_assert_str_eq(claim("c-key", k.b64), "404 {\"error\":\"not_found\"}");
	ck_assert_str_eq(scalar("SELECT used_count FROM mesh.invite WHERE id = 'inv-k'"), "0");
	/* Too big a body. */
	char *big = malloc(70000);
	memset(big, ' ', 69999);
	big[69999] = '\0';
	big[0] = '{';
	big[69998] = '}';
	ck_assert_str_eq(call("/invites/x/claim", big), "413 {\"error\":\"payload too large\"}");
	free(big);
}
END_TEST

START_TEST(a_valid_claim_seals_the_root_key)
{
	seed_mesh("meshK");
	seed_v2("meshK", "inv-ok", "c-ok", 1);
	struct x25519 k;
	x25519_new(&k);
	const char *res = claim("c-ok", k.b64);
	ck_assert_int_eq(strncmp(res, "200 ", 4), 0);
	json_t *o = json_loads(res + 4, 0, NULL);
	ck_assert_ptr_nonnull(o);
	char keys[256] = "";
	const char *key;
	json_t *v;
	json_object_foreach(o, key, v) {
		strcat(keys, key);
		strcat(keys, ",");
	}
	ck_assert_str_eq(keys, "sealed_root_key,mesh_id,member_id,owner_pubkey,canonical_v2,");
	unsigned char box[128], root[64], want[64];
	size_t n = 0, wn = 0;
	ck_assert(b64url_decode(json_string_value(json_object_get(o, "sealed_root_key")), box,
				sizeof(box), &n));
	ck_assert_int_eq(crypto_box_seal_open(root, box, n, k.pk, k.sk), 0);
	ck_assert(b64url_decode(root_key, want, sizeof(want), &wn));
	ck_assert_uint_eq(n - crypto_box_SEALBYTES, wn);
	ck_assert_int_eq(memcmp(root, want, wn), 0);
	const char *canonical = json_string_value(json_object_get(o, "canonical_v2"));
	ck_assert_int_eq(strncmp(canonical, "v=2|meshK|inv-ok|", 17), 0);
	const char *sig = scalar("SELECT capability_v2::jsonb->>'signature' FROM mesh.invite"
				 " WHERE id = 'inv-ok'");
	ck_assert(invite_verify(canonical, sig, owner_pk));
	ck_assert_str_eq(json_string_value(json_object_get(o, "owner_pubkey")), owner_pk);
	char q[512];
	snprintf(q, sizeof(q), "SELECT peer_pubkey || ' ' || display_name || ' ' || role"
		 " FROM mesh.member WHERE id = '%s'", json_string_value(json_object_get(o, "member_id")));
	char want_row[256];
	snprintf(want_row, sizeof(want_row), "%s member-%.8s member", k.b64, k.b64);
	ck_assert_str_eq(scalar(q), want_row);
	snprintf(q, sizeof(q), "SELECT count(*) FROM mesh.topic_member tm JOIN mesh.topic t"
		 " ON t.id = tm.topic_id WHERE t.mesh_id = 'meshK' AND t.name = 'general'"
		 " AND t.visibility = 'public' AND tm.member_id = '%s' AND tm.role = 'member'",
		 json_string_value(json_object_get(o, "member_id")));
	ck_assert_str_eq(scalar(q), "1");
	snprintf(q, sizeof(q), "SELECT used_count || ' ' || claimed_by_pubkey FROM mesh.invite"
		 " WHERE id = 'inv-ok'");
	snprintf(want_row, sizeof(want_row), "1 %s", k.b64);
	ck_assert_str_eq(scalar(q), want_row);
	json_decref(o);
	/* Used up now. */
	x25519_new(&k);
	ck_assert_str_eq(claim("c-ok", k.b64), "410 {\"error\":\"exhausted\"}");
}
END_TEST

/* n requests sent on n sockets before any answer is read; counts the
 * answers equal to `win_prefix` and to `lose`. */
static void concurrently(char **raws, int n, const char *win_prefix, const char *lose,
			 int *wins, int *losses)
{
	int fds[CONCURRENT];
	*wins = *losses = 0;
	for (int i = 0; i < n; i++) {
		fds[i] = httpc_connect(B.port);
		ck_assert_int_ge(fds[i], 0);
	}
	for (int i = 0; i < n; i++)
		ck_assert(httpc_send_str(fds[i], raws[i]));
	for (int i = 0; i < n; i++) {
		struct http_response r;
		ck_assert(httpc_read_response(fds[i], &r, 20000));
		char got[1024];
		snprintf(got, sizeof(got), "%d %s", r.status, r.body);
		if (strncmp(got, win_prefix, strlen(win_prefix)) == 0)
			(*wins)++;
		else if (strcmp(got, lose) == 0)
			(*losses)++;
		else
			ck_abort_msg("unexpected answer %s", got);
		httpc_response_free(&r);
		close(fds[i]);
	}
}

static void race_claims(const char *mesh, const char *id, int max_uses)
{
	char code[32];
	snprintf(code, sizeof(code), "c-%s", id);
	seed_v2(mesh, id, code, max_uses);
	char *raws[CONCURRENT];
	for (int i = 0; i < CONCURRENT; i++) {
		struct x25519 k;
		x25519_new(&k);
		char path[64], body[128];
		snprintf(path, sizeof(path), "/invites/%s/claim", code);
		snprintf(body, sizeof(body), "{\"recipient_x25519_pubkey\":\"%s\"}", k.b64);
		raws[i] = post(path, body);
	}
	int wins, losses;
	concurrently(raws, CONCURRENT, "200 ", "410 {\"error\":\"exhausted\"}", &wins, &losses);
	for (int i = 0; i < CONCURRENT; i++)
		free(raws[i]);
	ck_assert_int_eq(wins, max_uses);
	ck_assert_int_eq(losses, CONCURRENT - max_uses);
	char q[256], want[16];
	snprintf(q, sizeof(q), "SELECT used_count FROM mesh.invite WHERE id = '%s'", id);
	snprintf(want, sizeof(want), "%d", max_uses);
	ck_assert_str_eq(scalar(q), want);
	snprintf(q, sizeof(q), "SELECT count(*) FROM mesh.member m JOIN mesh.topic_member tm"
		 " ON tm.member_id = m.id WHERE m.mesh_id = '%s'", mesh);
	ck_assert_str_eq(scalar(q), want);
}

START_TEST(concurrent_claims_consume_exactly_the_uses)
{
	seed_mesh("meshQ");
	race_claims("meshQ", "once", 1);
	seed_mesh("meshF");
	race_claims("meshF", "five", 5);
	ck_assert_str_eq(scalar("SELECT count(*) FROM mesh.topic WHERE name = 'general'"), "2");
}
END_TEST

START_TEST(claim_is_off_unless_enabled)
{
	teardown();
	start(false);
	struct x25519 k;
	x25519_new(&k);
	ck_assert_str_eq(claim("any", k.b64),
			 "501 {\"error\":\"invite_v2_disabled\",\"detail\":\"v2 claim flow is behind"
			 " BROKER_INVITE_V2_ENABLED=1 until the ed25519 binding step ships\"}");
	/* Before the switch: a body that is not JSON is still malformed. */
	ck_assert_str_eq(call("/invites/any/claim", "nope"), "400 {\"error\":\"malformed\"}");
}
END_TEST

/* ---- v1 ---- */

/* A v1 invite row and its signed payload, as meshctl or the web app make them. */
static json_t *seed_v1(const char *mesh, const char *id, int max_uses, char **token)
{
	json_t *p = json_pack("{s:i, s:s, s:s, s:s, s:I, s:s, s:s, s:s}", "v", 1, "mesh_id", mesh,
			      "mesh_slug", "slug", "broker_url", "ws://localhost:7900/ws",
			      "expires_at", (json_int_t)4000000000LL, "mesh_root_key", root_key,
			      "role", "member", "owner_pubkey", owner_pk);
	char *c = invite_v1_canonical(p);
	char sig[129];
	invite_sign(c, owner_sk, sig);
	free(c);
	json_object_set_new(p, "signature", json_string(sig));
	*token = invite_v1_token(p);
	sql("INSERT INTO mesh.invite (id, mesh_id, token, max_uses, role, expires_at, created_by)"
	    " VALUES ('%s', '%s', '%s', %d, 'member', now() + interval '1 day', 'test-user')",
	    id, mesh, *token, max_uses);
	return p;
}

static char *join_body(const char *token, const json_t *payload, const char *pk, const char *name)
{
	json_t *o = json_pack("{s:s, s:O, s:s, s:s}", "invite_token", token, "invite_payload",
			      payload, "peer_pubkey", pk, "display_name", name);
	char *s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return s;
}

static const char *join(const char *token, const json_t *payload, const char *pk)
{
	char *b = join_body(token, payload, pk, "Joiner");
	const char *r = call("/join", b);
	free(b);
	return r;
}

START_TEST(v1_join)
{
	seed_mesh("meshJ");
	char *token;
	json_t *p = seed_v1("meshJ", "v1-a", 3, &token);
	struct mc_identity id;
	ck_assert(mc_identity_random(&id));
	ck_assert_str_eq(call("/join", "{}"), "400 {\"ok\":false,\"error\":\"invite_token,"
			 " invite_payload, peer_pubkey, display_name required\"}");
	ck_assert_str_eq(call("/join", "nope"), "400 {\"ok\":false,\"error\":\"invite_token,"
			 " invite_payload, peer_pubkey, display_name required\"}");
	ck_assert_str_eq(join(token, p, "abc"),
			 "400 {\"ok\":false,\"error\":\"peer_pubkey must be 64 hex chars (32 bytes)\"}");
	json_t *bad = json_deep_copy(p);
	json_object_set_new(bad, "role", json_string("admin"));
	ck_assert_str_eq(join(token, bad, id.pk_hex),
			 "400 {\"ok\":false,\"error\":\"invite_bad_signature\"}");
	json_decref(bad);
	ck_assert_str_eq(join("no-such-token", p, id.pk_hex),
			 "400 {\"ok\":false,\"error\":\"invite_not_found\"}");

	const char *first = join(token, p, id.pk_hex);
	ck_assert_int_eq(strncmp(first, "200 {\"ok\":true,\"memberId\":\"", 27), 0);
	char member[64];
	snprintf(member, sizeof(member), "%.32s", first + 27);
	char want[256];
	snprintf(want, sizeof(want), "200 {\"ok\":true,\"memberId\":\"%s\",\"alreadyMember\":true}",
		 member);
	ck_assert_str_eq(join(token, p, id.pk_hex), want);
	ck_assert_str_eq(scalar("SELECT used_count FROM mesh.invite WHERE id = 'v1-a'"), "1");
	char q[256];
	snprintf(q, sizeof(q), "SELECT count(*) || ' ' || min(display_name) || ' ' || min(role::text)"
		 " FROM mesh.member WHERE mesh_id = 'meshJ' AND peer_pubkey = '%s'", id.pk_hex);
	ck_assert_str_eq(scalar(q), "1 Joiner member");
	/* The joined member can say hello. */
	struct mt_peer peer;
	ck_assert(mt_connect(&peer, B.port, "meshJ", member, &id, "j", NULL));
	mt_close(&peer);

	ck_assert(mc_identity_random(&id));
	sql("UPDATE mesh.invite SET revoked_at = now() WHERE id = 'v1-a'");
	ck_assert_str_eq(join(token, p, id.pk_hex), "400 {\"ok\":false,\"error\":\"invite_revoked\"}");
	sql("UPDATE mesh.invite SET revoked_at = NULL, expires_at = now() - interval '1 s'"
	    " WHERE id = 'v1-a'");
	ck_assert_str_eq(join(token, p, id.pk_hex), "400 {\"ok\":false,\"error\":\"invite_expired\"}");
	sql("UPDATE mesh.mesh SET owner_pubkey = NULL WHERE id = 'meshJ'");
	ck_assert_str_eq(join(token, p, id.pk_hex),
			 "400 {\"ok\":false,\"error\":\"mesh_missing_owner_key\"}");
	sql("UPDATE mesh.mesh SET archived_at = now() WHERE id = 'meshJ'");
	ck_assert_str_eq(join(token, p, id.pk_hex), "400 {\"ok\":false,\"error\":\"mesh_not_found\"}");
	free(token);
	json_decref(p);
}
END_TEST

START_TEST(concurrent_v1_joins_of_a_single_use_invite)
{
	seed_mesh("meshW");
	char *token;
	json_t *p = seed_v1("meshW", "v1-w", 1, &token);
	enum { N = 16 };
	char *raws[N];
	for (int i = 0; i < N; i++) {
		struct mc_identity id;
		ck_assert(mc_identity_random(&id));
		char *b = join_body(token, p, id.pk_hex, "racer");
		raws[i] = post("/join", b);
		free(b);
	}
	int wins, losses;
	concurrently(raws, N, "200 {\"ok\":true", "400 {\"ok\":false,\"error\":\"invite_exhausted\"}",
		     &wins, &losses);
	for (int i = 0; i < N; i++)
		free(raws[i]);
	ck_assert_int_eq(wins, 1);
	ck_assert_int_eq(losses, N - 1);
	ck_assert_str_eq(scalar("SELECT used_count FROM mesh.invite WHERE id = 'v1-w'"), "1");
	ck_assert_str_eq(scalar("SELECT count(*) FROM mesh.member WHERE mesh_id = 'meshW'"), "1");
	free(token);
	json_decref(p);
}
END_TEST

/* ---- meshctl ---- */

/* Runs meshctl (beside $MESHD_BIN) with args in `dir`, DATABASE_URL set
 * unless url is NULL; stdout to out; returns the exit status. */
static int meshctl(const char *dir, const char *url, const char *args, char *out, size_t cap)
{
	const char *bin = getenv("MESHD_BIN");
	char ctl[512], cmd[2048];
	snprintf(ctl, sizeof(ctl), "%s", bin ? bin : "./src/meshd");
	char *slash = strrchr(ctl, '/');
	snprintf(slash ? slash + 1 : ctl, sizeof(ctl) - (size_t)(slash ? slash + 1 - ctl : 0),
		 "meshctl");
	snprintf(cmd, sizeof(cmd), "cd %s && %s%s%s %s %s 2>/dev/null", dir, url ? "DATABASE_URL='" : "env -u DATABASE_URL",
		 url ? url : "", url ? "'" : "", ctl, args);
	FILE *f = popen(cmd, "r");
	ck_assert_ptr_nonnull(f);
	size_t n = fread(out, 1, cap - 1, f);
	out[n] = '\0';
	int st = pclose(f);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* An operator makes a mesh and invites with meshctl; the real join and
 * claim routes accept them. */
START_TEST(meshctl_mints_what_the_broker_accepts)
{
	char dir[] = "/tmp/meshctlXXXXXX", out[4096], args[512];
	ck_assert_ptr_nonnull(mkdtemp(dir));
	const char *url = itest_db_url();
	ck_assert_int_eq(meshctl(dir, url, "--help", out, sizeof(out)), 0);
	ck_assert_ptr_nonnull(strstr(out, "invite create MESH"));
	ck_assert_int_eq(meshctl(dir, url, "bogus", out, sizeof(out)), 2);
	ck_assert_int_eq(meshctl(dir, url, "invite create", out, sizeof(out)), 2);
	ck_assert_int_eq(meshctl(dir, NULL, "mesh list", out, sizeof(out)), 1);

	ck_assert_int_eq(meshctl(dir, url, "mesh create 'Team Ops'", out, sizeof(out)), 0);
	char mesh[64], slug[64], pk[80];
	ck_assert_int_eq(sscanf(out, "%63s %63s %79s", mesh, slug, pk), 3);
	ck_assert_str_eq(slug, "team-ops");
	struct stat st;
	char key[256];
	snprintf(key, sizeof(key), "%s/team-ops.owner.key", dir);
	ck_assert_int_eq(stat(key, &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0600);
	char q[256];
	snprintf(q, sizeof(q), "SELECT owner_pubkey || ' ' || (owner_secret_key IS NULL) || ' '"
		 " || length(root_key) FROM mesh.mesh WHERE id = '%s'", mesh);
	char want[256];
	snprintf(want, sizeof(want), "%s true 43", pk);
	ck_assert_str_eq(scalar(q), want);
	/* The key file is never overwritten. */
	ck_assert_int_eq(meshctl(dir, url, "mesh create 'Team Ops'", out, sizeof(out)), 1);
	ck_assert_int_eq(meshctl(dir, url, "mesh list", out, sizeof(out)), 0);
	ck_assert_ptr_nonnull(strstr(out, "team-ops"));

	/* v1: the printed link's token joins through POST /join. */
	snprintf(args, sizeof(args), "invite create team-ops --key-file team-ops.owner.key --max-uses 2");
	ck_assert_int_eq(meshctl(dir, url, args, out, sizeof(out)), 0);
	ck_assert_int_eq(strncmp(out, "ic://join/", 10), 0);
	out[strcspn(out, "\n")] = '\0';
	char *token = strdup(out + 10);
	json_t *payload = invite_v1_token_payload(token);
	ck_assert_ptr_nonnull(payload);
	struct mc_identity id;
	ck_assert(mc_identity_random(&id));
	const char *joined = join(token, payload, id.pk_hex);
	ck_assert_msg(strncmp(joined, "200 {\"ok\":true,\"memberId\":", 26) == 0, "%s", joined);
	ck_assert_int_eq(meshctl(dir, url, "member list team-ops", out, sizeof(out)), 0);
	ck_assert_ptr_nonnull(strstr(out, id.pk_hex));

	/* v2: the printed code claims. */
	snprintf(args, sizeof(args), "invite create %s --key-file team-ops.owner.key --v2 --expires 1h",
		 mesh);
	ck_assert_int_eq(meshctl(dir, url, args, out, sizeof(out)), 0);
	out[strcspn(out, "\n")] = '\0';
	char code[64];
	snprintf(code, sizeof(code), "%.63s", out);
	ck_assert_uint_eq(strlen(code), 12);
	struct x25519 k;
	x25519_new(&k);
	ck_assert_int_eq(strncmp(claim(code, k.b64), "200 {\"sealed_root_key\"", 21), 0);

	/* A key that is not the owner's mints nothing; revoking closes the v1 invite. */
	unsigned char other[crypto_sign_SECRETKEYBYTES], opk[crypto_sign_PUBLICKEYBYTES];
	crypto_sign_keypair(opk, other);
	char hex[2 * sizeof(other) + 1], path[300];
	sodium_bin2hex(hex, sizeof(hex), other, sizeof(other));
	snprintf(path, sizeof(path), "%s/other.key", dir);
	FILE *f = fopen(path, "w");
	fprintf(f, "%s\n", hex);
	fclose(f);
	ck_assert_int_eq(meshctl(dir, url, "invite create team-ops --key-file other.key", out,
				 sizeof(out)), 1);
	char *qt = malloc(strlen(token) + 64);
	sprintf(qt, "SELECT id FROM mesh.invite WHERE token = '%s'", token);
	char inv[64];
	snprintf(inv, sizeof(inv), "%.63s", scalar(qt));
	free(qt);
	snprintf(args, sizeof(args), "invite revoke %s", inv);
	ck_assert_int_eq(meshctl(dir, url, args, out, sizeof(out)), 0);
	ck_assert_int_eq(meshctl(dir, url, args, out, sizeof(out)), 1); /* already revoked */
	ck_assert(mc_identity_random(&id));
	ck_assert_str_eq(join(token, payload, id.pk_hex), "400 {\"ok\":false,\"error\":\"invite_revoked\"}");
	json_decref(payload);
	free(token);
	char rm[300];
	snprintf(rm, sizeof(rm), "rm -rf %s", dir);
	ck_assert_int_eq(system(rm), 0);
}
END_TEST

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	Suite *s = suite_create("invite");
	TCase *tc = tcase_create("invite");
	tcase_add_unchecked_fixture(tc, itest_cluster_setup, itest_cluster_teardown);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 90);
	tcase_add_test(tc, claim_answers_in_the_contracts_order);
	tcase_add_test(tc, a_valid_claim_seals_the_root_key);
	tcase_add_test(tc, concurrent_claims_consume_exactly_the_uses);
	tcase_add_test(tc, claim_is_off_unless_enabled);
	tcase_add_test(tc, v1_join);
	tcase_add_test(tc, concurrent_v1_joins_of_a_single_use_invite);
	tcase_add_test(tc, meshctl_mints_what_the_broker_accepts);
	suite_add_tcase(s, tc);
	return check_run(s);
}
