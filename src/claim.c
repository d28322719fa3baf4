/* claim — the v2 invite claim; see include/meshd/claim.h. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "meshd/alloc.h"
#include "meshd/claim.h"
#include "meshd/config.h"
#include "meshd/conn.h"
#include "meshd/db.h"
#include "meshd/dbjob.h"
#include "meshd/id.h"
#include "meshd/invite.h"
#include "meshd/log.h"
#include "meshd/shard.h"
#include "meshd/thread.h"
#include "meshd/jscompat.h"

#define JSON_TYPE "application/json"
#define PREFIX "/invites/"
#define SUFFIX "/claim"

/* Steps 2–5 of §C.6 read in one go. */
static const char lookup_sql[] =
	"SELECT i.id, i.mesh_id, i.revoked_at IS NOT NULL, i.expires_at < now(),"
	" i.used_count >= i.max_uses, i.version, i.capability_v2, i.role::text,"
	" floor(extract(epoch FROM i.expires_at))::bigint,"
	" ms.id IS NOT NULL, ms.owner_pubkey, ms.root_key"
	" FROM mesh.invite i LEFT JOIN mesh.mesh ms ON ms.id = i.mesh_id AND ms.archived_at IS NULL"
	" WHERE i.code = $1 LIMIT 1";

/* Steps 6–8 as one statement (D6).  $1 invite id, $2 recipient key, $3 the
 * new member's id, $4 display name or NULL, $5 a topic id should #general
 * not exist.  The consume re-checks what the read saw (a revoke or the
 * expiry may have come between).  ON CONFLICT DO UPDATE returns #general
 * even when a concurrent claim created it after this statement's snapshot.
 * Sent again after a lost connection, the statement finds its member and
 * answers it instead of consuming a second use. */
static const char consume_sql[] =
	"WITH inv AS (UPDATE mesh.invite SET used_count = used_count + 1, claimed_by_pubkey = $2"
	" WHERE id = $1 AND used_count < max_uses AND revoked_at IS NULL AND expires_at >= now()"
	" AND NOT EXISTS (SELECT 1 FROM mesh.member WHERE id = $3)"
	" RETURNING mesh_id, role, coalesce(preset, '{}'::jsonb) AS preset),"
	" mem AS (INSERT INTO mesh.member (id, mesh_id, peer_pubkey, display_name, role, role_tag,"
	" default_groups, message_mode)"
	" SELECT $3, inv.mesh_id, $2, coalesce(inv.preset->>'displayName', $4, 'member-' || left($2, 8)),"
	" inv.role, inv.preset->>'roleTag', coalesce(inv.preset->'groups', '[]'::jsonb),"
	" coalesce(inv.preset->>'messageMode', 'push') FROM inv RETURNING id, mesh_id),"
	" top AS (INSERT INTO mesh.topic (id, mesh_id, name, description, visibility)"
	" SELECT $5, mem.mesh_id, 'general',"
	" 'Default mesh-wide channel. Every member can read and post.', 'public' FROM mem"
	" ON CONFLICT (mesh_id, name) DO UPDATE SET name = EXCLUDED.name RETURNING id),"
	" tm AS (INSERT INTO mesh.topic_member (topic_id, member_id, role)"
	" SELECT top.id, mem.id, 'member' FROM top, mem ON CONFLICT DO NOTHING RETURNING member_id)"
	" SELECT id FROM mem UNION ALL SELECT id FROM mesh.member WHERE id = $3";

struct claim_req {
	char *code, *recipient, *display_name;
	char *mesh_id, *owner_pubkey, *root_key, *canonical;
	char member_id[ID_LEN + 1];
};

static void req_free(void *arg)
{
	struct claim_req *r = arg;
	if (!r)
		return; /* handed over to the next job */
	xfree(r->code);
	xfree(r->recipient);
	xfree(r->display_name);
	xfree(r->mesh_id);
	xfree(r->owner_pubkey);
	xfree(r->root_key);
	xfree(r->canonical);
	xfree(r);
}

static void answer(struct conn *c, int status, const char *error)
{
	json_t *o = json_object();
	json_object_set_new(o, "error", json_string(error));
	char *body = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	conn_http_respond(c, status, JSON_TYPE, body, strlen(body), false);
	free(body);
}

const char *claim_code(const char *target, size_t len, size_t *code_len)
{
	size_t p = strlen(PREFIX), s = strlen(SUFFIX);
	if (len <= p + s || memcmp(target, PREFIX, p) != 0 || memcmp(target + len - s, SUFFIX, s) != 0)
		return NULL;
	const char *code = target + p;
	size_t n = len - p - s;
	if (memchr(code, '/', n))
		return NULL;
	*code_len = n;
	return code;
}

static void consumed(struct db_job *j, void *owner)
{
	struct shard *s = owner;
	struct claim_req *r = j->arg;
	struct conn *c = shard_conn(s, j->conn_slot, j->conn_gen);
	if (!j->ok) {
		log_warn("invite_claim_failed", "mesh=%s error=%s", r->mesh_id, j->error);
		if (c)
			answer(c, 500, j->error);
		return;
	}
	if (PQntuples(j->res) == 0) {
		if (c)
			answer(c, 410, "exhausted"); /* lost the race (step 15) */
		return;
	}
	log_info("invite_claimed", "mesh=%s member=%s", r->mesh_id, r->member_id);
	if (!c)
		return;
	char *sealed = invite_seal_root_key(r->root_key, r->recipient);
	json_t *o = json_object();
	json_object_set_new(o, "sealed_root_key", json_string(sealed ? sealed : ""));
	json_object_set_new(o, "mesh_id", json_string(r->mesh_id));
	json_object_set_new(o, "member_id", json_string(PQgetvalue(j->res, 0, 0)));
	json_object_set_new(o, "owner_pubkey", json_string(r->owner_pubkey));
	json_object_set_new(o, "canonical_v2", json_string(r->canonical));
	char *body = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	conn_http_respond(c, 200, JSON_TYPE, body, strlen(body), false);
	free(body);
	xfree(sealed);
}

/* Step 12–14: a v2 row's capability must be the canonical string the
 * broker computes, signed by the mesh owner.  NULL: fine; else the error. */
static const char *capability_error(PGresult *res, const char *canonical, const char *owner)
{
	const char *cap = db_value(res, 6);
	if (strcmp(PQgetvalue(res, 0, 5), "2") != 0 || !cap || !*cap)
		return NULL; /* a v1 row: no capability to check */
	json_t *o = json_loads(cap, 0, NULL);
	const char *stored = js_field(o, "canonical");
	const char *sig = js_field(o, "signature");
	const char *err = NULL;
	if (!stored || !sig)
		err = "malformed";
	else if (strcmp(stored, canonical) != 0 || !invite_verify(canonical, sig, owner))
		err = "bad_signature";
	json_decref(o);
	return err;
}

/* The checks of steps 6–14 on the read; NULL and *status 0 when it may
 * be consumed. */
static const char *check(PGresult *res, const struct claim_req *r, int *status)
{
	*status = 410;
	if (PQntuples(res) == 0)
		return *status = 404, "not_found";
	if (db_true(res, 2))
		return "revoked";
	if (db_true(res, 3))
		return "expired";
	if (db_true(res, 4))
		return "exhausted";
	if (!db_true(res, 9))
		return *status = 404, "not_found";
	*status = 400;
	if (!db_value(res, 10) || !db_value(res, 11))
		return "malformed";
	const char *err = capability_error(res, r->canonical, db_value(res, 10));
	if (err)
		return err;
	/* D6: what the seal needs is checked before anything is consumed. */
	if (!invite_recipient_key_ok(r->recipient))
		return "malformed";
	char *probe = invite_seal_root_key(db_value(res, 11), r->recipient);
	xfree(probe);
	if (!probe)
		return "malformed";
	*status = 0;
	return NULL;
}

static void looked_up(struct db_job *j, void *owner)
{
	struct shard *s = owner;
	struct conn *c = shard_conn(s, j->conn_slot, j->conn_gen);
	if (!c)
		return;
	if (!j->ok) {
		answer(c, 500, j->error);
		return;
	}
	struct claim_req *r = j->arg;
	j->arg = NULL; /* handed to the next job */
	PGresult *res = j->res;
	if (PQntuples(res) == 1) {
		r->mesh_id = xstrdup(PQgetvalue(res, 0, 1));
		long long exp = strtoll(PQgetvalue(res, 0, 8), NULL, 10);
		const char *owner_pk = db_value(res, 10) ? db_value(res, 10) : "";
		r->canonical = invite_v2_canonical(r->mesh_id, PQgetvalue(res, 0, 0), exp,
						   PQgetvalue(res, 0, 7), owner_pk);
	}
	int status;
	const char *err = check(res, r, &status);
	if (err) {
		answer(c, status, err);
		req_free(r);
		return;
	}
	r->owner_pubkey = xstrdup(db_value(res, 10));
	r->root_key = xstrdup(db_value(res, 11));
	id_new(r->member_id);
	char topic_id[ID_LEN + 1];
	id_new(topic_id);
	struct db_job *k = db_job_new(consume_sql, DB_JOB_WRITE | DB_JOB_FAIL_FAST, &s->reply,
				      consumed, r);
	k->free_arg = req_free;
	db_job_param(k, PQgetvalue(res, 0, 0));
	db_job_param(k, r->recipient);
	db_job_param(k, r->member_id);
	db_job_param(k, r->display_name);
	db_job_param(k, topic_id);
	k->conn_slot = j->conn_slot;
	k->conn_gen = j->conn_gen;
	db_submit(s->db, k);
}

void claim_http(struct conn *c, const char *code, size_t code_len, const char *body,
		size_t body_len)
{
	struct shard *s = conn_owner(c);
	MESHD_ASSERT_ON_WORKER(s);
	json_t *o = json_loadb(body ? body : "", body_len, JSON_DECODE_ANY, NULL);
	const json_t *key = json_object_get(o, "recipient_x25519_pubkey");
	if (!o || !json_is_string(key)) {
		answer(c, 400, "malformed");
	} else if (!s->cfg->invite_v2_enabled) {
		static const char off[] = "{\"error\":\"invite_v2_disabled\",\"detail\":\"v2 claim flow"
			" is behind BROKER_INVITE_V2_ENABLED=1 until the ed25519 binding step ships\"}";
		conn_http_respond(c, 501, JSON_TYPE, off, sizeof(off) - 1, false);
	} else if (json_string_length(key) < 32) {
		answer(c, 400, "malformed");
	} else {
		struct claim_req *r = xcalloc(1, sizeof(*r));
		r->code = xstrndup(code, code_len);
		r->recipient = xstrdup(json_string_value(key));
		const char *dn = js_field(o, "display_name");
		r->display_name = dn ? xstrdup(dn) : NULL;
		struct db_job *j = db_job_new(lookup_sql, DB_JOB_FAIL_FAST, &s->reply, looked_up, r);
		j->free_arg = req_free;
		db_job_param(j, r->code);
		j->conn_slot = c->slot;
		j->conn_gen = c->gen;
		conn_http_defer(c);
		db_submit(s->db, j);
	}
	json_decref(o);
}
