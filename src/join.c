/* join — the v1 invite join; see include/meshd/join.h. */
#include "config.h"

#include <ctype.h>
#include <string.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "meshd/alloc.h"
#include "meshd/conn.h"
#include "meshd/db.h"
#include "meshd/dbjob.h"
#include "meshd/id.h"
#include "meshd/invite.h"
#include "meshd/join.h"
#include "meshd/log.h"
#include "meshd/shard.h"
#include "meshd/thread.h"
#include "meshd/jscompat.h"

#define JSON_TYPE "application/json"

/* Steps 2–4 of §C.4 in one read: the mesh, the invite by token, and a
 * live member with that key. */
static const char lookup_sql[] =
	"SELECT ms.id IS NOT NULL, ms.owner_pubkey, i.id, i.mesh_id, i.revoked_at IS NOT NULL,"
	" i.expires_at < now(),"
	" (SELECT m.id FROM mesh.member m WHERE m.mesh_id = $1 AND m.peer_pubkey = $3"
	" AND m.revoked_at IS NULL ORDER BY m.joined_at LIMIT 1)"
	" FROM (SELECT 1) one"
	" LEFT JOIN mesh.mesh ms ON ms.id = $1 AND ms.archived_at IS NULL"
	" LEFT JOIN mesh.invite i ON i.token = $2";

/* Steps 5–6 as one statement: $1 invite id, $2 mesh id, $3 peer pubkey,
 * $4 display name, $5 role, $6 the new member's id.  A statement sent
 * again after a lost connection finds its member instead of consuming a
 * second use. */
static const char consume_sql[] =
	"WITH inv AS (UPDATE mesh.invite SET used_count = used_count + 1"
	" WHERE id = $1 AND used_count < max_uses"
	" AND NOT EXISTS (SELECT 1 FROM mesh.member WHERE id = $6)"
	" RETURNING coalesce(preset, '{}'::jsonb) AS preset),"
	" mem AS (INSERT INTO mesh.member (id, mesh_id, peer_pubkey, display_name, role, role_tag,"
	" default_groups, message_mode)"
	" SELECT $6, $2, $3, coalesce(inv.preset->>'displayName', $4), $5::mesh.role,"
	" inv.preset->>'roleTag', coalesce(inv.preset->'groups', '[]'::jsonb),"
	" coalesce(inv.preset->>'messageMode', 'push') FROM inv RETURNING id)"
	" SELECT id FROM mem UNION ALL SELECT id FROM mesh.member WHERE id = $6";

struct join_req {
	char *mesh_id, *peer_pubkey, *display_name, *role, *token, *owner_pubkey;
	char member_id[ID_LEN + 1];
};

static void req_free(void *arg)
{
	struct join_req *r = arg;
	if (!r)
		return; /* handed over to the next job */
	xfree(r->mesh_id);
	xfree(r->peer_pubkey);
	xfree(r->display_name);
	xfree(r->role);
	xfree(r->token);
	xfree(r->owner_pubkey);
	xfree(r);
}

static void respond(struct conn *c, int status, json_t *o)
{
	char *body = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	conn_http_respond(c, status, JSON_TYPE, body, strlen(body), false);
	free(body);
}

static void fail(struct conn *c, int status, const char *error)
{
	respond(c, status, json_pack("{s:b, s:s}", "ok", 0, "error", error));
}

static void joined(struct conn *c, const char *member_id, bool already)
{
	json_t *o = json_pack("{s:b, s:s}", "ok", 1, "memberId", member_id);
	if (already)
		json_object_set_new(o, "alreadyMember", json_true());
	respond(c, 200, o);
}

static void consumed(struct db_job *j, void *owner)
{
	struct shard *s = owner;
	struct join_req *r = j->arg;
	struct conn *c = shard_conn(s, j->conn_slot, j->conn_gen);
	if (!j->ok) {
		/* The use was not consumed: the statement rolled back. */
		log_warn("invite_join_failed", "mesh=%s error=%s", r->mesh_id, j->error);
		if (c)
			fail(c, 400, "member_insert_failed");
		return;
	}
	if (PQntuples(j->res) == 0) {
		if (c)
			fail(c, 400, "invite_exhausted");
		return;
	}
	log_info("invite_joined", "mesh=%s member=%s", r->mesh_id, PQgetvalue(j->res, 0, 0));
	if (c)
		joined(c, PQgetvalue(j->res, 0, 0), false);
}

/* Steps 2–3, in order; NULL when the join may go on. */
static const char *check(PGresult *res, const struct join_req *r)
{
	if (!db_true(res, 0))
		return "mesh_not_found";
	if (!db_value(res, 1))
		return "mesh_missing_owner_key";
	if (strcmp(db_value(res, 1), r->owner_pubkey) != 0)
		return "invite_owner_mismatch";
	if (!db_value(res, 2))
		return "invite_not_found";
	if (strcmp(db_value(res, 3), r->mesh_id) != 0)
		return "invite_mesh_mismatch";
	if (db_true(res, 4))
		return "invite_revoked";
	if (db_true(res, 5))
		return "invite_expired";
	return NULL;
}

static void looked_up(struct db_job *j, void *owner)
{
	struct shard *s = owner;
	struct conn *c = shard_conn(s, j->conn_slot, j->conn_gen);
	if (!c)
		return;
	if (!j->ok) {
		respond(c, 500, json_pack("{s:b, s:s}", "ok", 0, "error", j->error));
		return;
	}
	PGresult *res = j->res;
	struct join_req *r = j->arg;
	const char *err = check(res, r);
	if (err) {
		fail(c, 400, err);
		return;
	}
	if (db_value(res, 6)) {
		joined(c, db_value(res, 6), true); /* step 4: no use consumed */
		return;
	}
	j->arg = NULL; /* handed to the next job */
	id_new(r->member_id);
	struct db_job *k = db_job_new(consume_sql, DB_JOB_WRITE | DB_JOB_FAIL_FAST, &s->reply,
				      consumed, r);
	k->free_arg = req_free;
	db_job_param(k, db_value(res, 2));
	db_job_param(k, r->mesh_id);
	db_job_param(k, r->peer_pubkey);
	db_job_param(k, r->display_name);
	db_job_param(k, r->role);
	db_job_param(k, r->member_id);
	k->conn_slot = j->conn_slot;
	k->conn_gen = j->conn_gen;
	db_submit(s->db, k);
}

/* JavaScript truthiness, for the "required" check of the reference. */
static bool truthy(const json_t *v)
{
	if (!v || json_is_null(v) || json_is_false(v))
		return false;
	if (json_is_string(v))
		return json_string_length(v) > 0;
	if (json_is_number(v))
		return json_number_value(v) != 0;
	return true;
}

static bool hex64(const char *s)
{
	if (strlen(s) != 64)
		return false;
	for (size_t i = 0; i < 64; i++)
		if (!isxdigit((unsigned char)s[i]))
			return false;
	return true;
}

static char *field(const json_t *o, const char *key)
{
	const char *v = js_field(o, key);
	return v ? xstrdup(v) : NULL;
}

void join_http(struct conn *c, const char *body, size_t body_len)
{
	struct shard *s = conn_owner(c);
	MESHD_ASSERT_ON_WORKER(s);
	json_t *o = json_loadb(body ? body : "", body_len, JSON_DECODE_ANY, NULL);
	const json_t *token = json_object_get(o, "invite_token");
	const json_t *payload = json_object_get(o, "invite_payload");
	const json_t *pk = json_object_get(o, "peer_pubkey");
	const json_t *name = json_object_get(o, "display_name");
	/* A body that is not a JSON object has none of the fields. */
	if (!truthy(token) || !truthy(payload) || !truthy(pk) || !truthy(name)) {
		fail(c, 400, "invite_token, invite_payload, peer_pubkey, display_name required");
	} else if (!json_is_string(pk) || !hex64(json_string_value(pk))) {
		fail(c, 400, "peer_pubkey must be 64 hex chars (32 bytes)");
	} else {
		char *canonical = invite_v1_canonical(payload);
		const char *sig = js_field(payload, "signature");
		const char *owner = js_field(payload, "owner_pubkey");
		bool ok = canonical && sig && owner && invite_verify(canonical, sig, owner) &&
			  json_is_string(token) && json_is_string(json_object_get(payload, "mesh_id"));
		xfree(canonical);
		if (!ok) {
			fail(c, 400, "invite_bad_signature");
		} else {
			struct join_req *r = xcalloc(1, sizeof(*r));
			r->mesh_id = field(payload, "mesh_id");
			r->owner_pubkey = xstrdup(owner);
			r->role = field(payload, "role");
			r->token = xstrdup(json_string_value(token));
			r->peer_pubkey = xstrdup(json_string_value(pk));
			/* A display name that is not a string is written as its JSON. */
			char *text = json_dumps(name, JSON_COMPACT | JSON_ENCODE_ANY);
			r->display_name = xstrdup(json_is_string(name) ? json_string_value(name) : text);
			free(text);
			struct db_job *j = db_job_new(lookup_sql, DB_JOB_FAIL_FAST, &s->reply, looked_up, r);
			j->free_arg = req_free;
			db_job_param(j, r->mesh_id);
			db_job_param(j, r->token);
			db_job_param(j, r->peer_pubkey);
			j->conn_slot = c->slot;
			j->conn_gen = c->gen;
			conn_http_defer(c);
			db_submit(s->db, j);
		}
	}
	json_decref(o);
}
