/* handshake — hello / session_hello to hello_ack; see include/meshd/handshake.h. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "meshd/alloc.h"
#include "meshd/audit.h"
#include "meshd/clock.h"
#include "meshd/config.h"
#include "meshd/conn.h"
#include "meshd/conntab.h"
#include "meshd/db.h"
#include "meshd/dbjob.h"
#include "meshd/drain.h"
#include "meshd/handshake.h"
#include "meshd/hello.h"
#include "meshd/hook.h"
#include "meshd/log.h"
#include "meshd/metrics.h"
#include "meshd/peerstate.h"
#include "meshd/presence.h"
#include "meshd/proto.h"
#include "meshd/session.h"
#include "meshd/shard.h"
#include "meshd/thread.h"
#include "meshd/ws.h"

/* One row: the mesh, the member with that exact pubkey, an active row
 * preferred over a revoked one (there is no unique index on the pair),
 * whether the sessionPubkey a member hello names ($3) belongs to another
 * member (it is one's pubkey, or one's presence row ever held it), and the
 * member's saved peer state (§5.5). */
#define MEMBER_SQL_KEY_TAKEN 11
#define MEMBER_SQL_PEERSTATE 12
static const char member_sql[] =
	"SELECT ms.name, ms.slug, ms.archived_at IS NOT NULL, ms.self_editable::text,"
	" m.id, m.display_name, m.role_tag, m.default_groups::text, m.message_mode,"
	" m.peer_grants::text, m.revoked_at IS NOT NULL,"
	" $3::text IS NOT NULL AND $3::text <> $2 AND ("
	"  EXISTS (SELECT 1 FROM mesh.member o WHERE o.mesh_id = $1 AND o.peer_pubkey = $3)"
	"  OR EXISTS (SELECT 1 FROM mesh.presence pr JOIN mesh.member o ON o.id = pr.member_id"
	"   WHERE pr.session_pubkey = $3 AND o.mesh_id = $1 AND o.peer_pubkey <> $2)),"
	" " PEERSTATE_SQL_COLUMNS
	" FROM mesh.mesh ms LEFT JOIN mesh.member m ON m.mesh_id = ms.id AND m.peer_pubkey = $2"
	" LEFT JOIN mesh.peer_state ps ON ps.mesh_id = ms.id AND ps.member_id = m.id"
	" WHERE ms.id = $1"
	" ORDER BY (m.revoked_at IS NULL) DESC LIMIT 1";

static const char presence_insert_sql[] =
	"INSERT INTO mesh.presence (id, member_id, session_id, session_pubkey, display_name, pid,"
	" cwd, status, status_source, status_updated_at, connected_at, last_ping_at, groups, role)"
	" VALUES ($1, $2, $3, $4, $5, $6::int, $7, 'idle', 'jsonl',"
	" ($8::timestamptz AT TIME ZONE 'UTC'), ($8::timestamptz AT TIME ZONE 'UTC'),"
	" ($8::timestamptz AT TIME ZONE 'UTC'), $9::jsonb, $10)"
	" ON CONFLICT (id) DO NOTHING";

static void reject(struct conn *c, enum hello_reject r, const char *label)
{
	const struct hello_rejection *rj = hello_rejection(r);
	/* Sized from the label: a long mesh name must not be cut mid-character. */
	size_t need = hello_format_message(r, label, NULL, 0) + 1;
	char *message = xmalloc(need);
	hello_format_message(r, label, message, need);
	metrics_inc_label(METRIC_CONNECTIONS_REJECTED, (int)rj->metric);
	log_info("hello_rejected", "worker=%d conn=%u reason=%s", c->tab->id, c->slot, rj->name);
	/* The hello stays with the session: `label` may point into it. */
	session_of(c)->handshaking = false;
	proto_send_error(c, rj->code, message, NULL);
	xfree(message);
	conn_ws_close(c, rj->close_code, rj->close_reason);
}

void handshake_begin(struct conn *c, const json_t *msg, const char *type)
{
	struct session *ss = session_of(c);
	struct shard *s = conn_owner(c);
	MESHD_ASSERT_ON_WORKER(s);
	if (ss->handshaking)
		return; /* one hello at a time; the first one decides */
	enum hello_kind kind = strcmp(type, "session_hello") == 0 ? HELLO_SESSION : HELLO_MEMBER;
	struct hello *h = xcalloc(1, sizeof(*h));
	enum hello_reject r = hello_check(msg, kind, clock_wall_ms(), h);
	if (r != HELLO_OK) {
		hello_free(h);
		xfree(h);
		reject(c, r, NULL);
		return;
	}
	session_end_handshake(ss);
	ss->hello = h;
	ss->handshaking = true;
	int owner = shard_owner(h->mesh_id, s->nshards);
	if (owner == s->id)
		handshake_adopted(c);
	else
		conn_migrate(c, owner);
}

static void lookup_done(struct db_job *j, void *owner);

void handshake_adopted(struct conn *c)
{
	struct shard *s = conn_owner(c);
	MESHD_ASSERT_ON_WORKER(s);
	struct hello *h = session_of(c)->hello;
	struct db_job *j = db_job_new(member_sql, DB_JOB_FAIL_FAST, &s->reply, lookup_done, NULL);
	db_job_param(j, h->mesh_id);
	db_job_param(j, h->pubkey);
	db_job_param(j, h->kind == HELLO_MEMBER ? h->session_pubkey : NULL);
	j->conn_slot = c->slot;
	j->conn_gen = c->gen;
	db_submit(s->db, j);
	conn_resume_input(c);
}

static json_t *json_col(PGresult *res, int i)
{
	const char *v = db_value(res, i);
	return v ? json_loads(v, JSON_DECODE_ANY, NULL) : NULL;
}

/* `<label>` of the revoked message: name, else slug, else the id. */
static const char *mesh_label(PGresult *res, const char *mesh_id)
{
	const char *name = db_value(res, 0), *slug = db_value(res, 1);
	if (name && *name)
		return name;
	if (slug && *slug)
		return slug;
	return mesh_id;
}

static json_t *hello_groups(const struct hello *h)
{
	json_t *a = json_array();
	for (size_t i = 0; i < h->ngroups; i++) {
		json_t *g = json_object();
		json_object_set_new(g, "name", json_string(h->groups[i].name));
		if (h->groups[i].role)
			json_object_set_new(g, "role", json_string(h->groups[i].role));
		json_array_append_new(a, g);
	}
	return a;
}

/* Initial groups (§5.5).  Member hello: non-empty hello groups, else the
 * saved ones if non-empty, else the member's defaults.  session_hello: the
 * hello's groups whenever the key is there (even []), else the defaults. */
static json_t *initial_groups(const struct hello *h, const struct member *mb,
			      const struct peer_saved *saved)
{
	if (h->kind == HELLO_SESSION)
		return h->groups_present ? hello_groups(h) : json_deep_copy(mb->default_groups);
	if (h->ngroups > 0)
		return hello_groups(h);
	if (saved && json_array_size(saved->groups) > 0)
		return json_deep_copy(saved->groups);
	return json_deep_copy(mb->default_groups);
}

/* hello_ack's restored fields, in the reference's key order. */
static void add_restored(json_t *o, const struct hello *h, const struct peer_saved *saved)
{
	json_object_set_new(o, "restored", json_true());
	if (saved->last_summary)
		json_object_set_new(o, "lastSummary", json_string(saved->last_summary));
	if (saved->last_seen_at)
		json_object_set_new(o, "lastSeenAt", json_string(saved->last_seen_at));
	if (h->ngroups == 0 && json_array_size(saved->groups) > 0)
		json_object_set(o, "restoredGroups", saved->groups);
	json_object_set_new(o, "restoredStats", peerstate_stats_json(saved));
}

static void send_ack(struct conn *c, struct presence *p, bool reattach,
		     const struct peer_saved *saved)
{
	const struct hello *h = session_of(c)->hello;
	struct member *mb = p->member;
	json_t *o = json_object();
	json_object_set_new(o, "type", json_string("hello_ack"));
	json_object_set_new(o, "presenceId", json_string(p->id));
	json_object_set_new(o, "memberDisplayName", json_string(p->display_name));
	if (!(reattach && h->kind == HELLO_SESSION)) {
		json_t *prof = json_object();
		json_object_set_new(prof, "roleTag", mb->role_tag ? json_string(mb->role_tag) : json_null());
		json_object_set(prof, "groups", mb->default_groups);
		json_object_set_new(prof, "messageMode", json_string(mb->message_mode));
		json_object_set_new(o, "memberProfile", prof);
	}
	if (p->mesh->self_editable) {
		json_t *pol = json_object();
		json_object_set(pol, "selfEditable", p->mesh->self_editable);
		json_object_set_new(o, "meshPolicy", pol);
	}
	if (saved)
		add_restored(o, h, saved);
	if (h->kind == HELLO_MEMBER)
		json_object_set_new(o, "services", json_array()); /* managed services: out of scope */
	proto_send_json(c, o);
}

/* The handshake is over for this connection: frames are now requests. */
static void finish(struct conn *c, struct presence *p, bool reattach,
		   const struct peer_saved *saved)
{
	struct session *ss = session_of(c);
	send_ack(c, p, reattach, saved);
	ss->hello_done = true;
	session_end_handshake(ss);
	conn_ws_set_deadline(c, 0);
	conn_ws_set_max_message(c, p->mesh->shard->cfg->ws_max_message_bytes);
	log_info(reattach ? "presence_reattached" : "presence_created",
		 "worker=%d conn=%u mesh=%s presence=%s", c->tab->id, c->slot, p->mesh->id, p->id);
}

static void created_done(struct db_job *j, void *owner)
{
	struct shard *s = owner;
	struct presence *p = shard_presence(s, j->mesh_id, j->presence_id);
	if (!p) {
		shard_count_stale(s);
		return; /* gone meanwhile (its connection closed and it was evicted) */
	}
	struct conn *c = conntab_get(s->conns, j->conn_slot, j->conn_gen);
	if (!j->ok) {
		log_error("presence_insert_failed", "mesh=%s presence=%s error=%s", j->mesh_id,
			  j->presence_id, j->error);
		if (c && session_presence(c) == p) {
			session_of(c)->presence = NULL;
			conn_ws_close(c, 1011, "internal error");
		}
		presence_remove(p, false);
		return;
	}
	p->stored = true;
	/* §B.5: a hook that came first; its row update follows the insert. */
	hook_apply_pending(p);
	if (!c || session_presence(c) != p)
		return; /* its socket closed meanwhile: the lease is in grace */
	struct session *ss = session_of(c);
	bool session = ss->hello->kind == HELLO_SESSION;
	struct peer_saved *saved = ss->saved; /* restored: kept past finish() for the announce */
	ss->saved = NULL;
	finish(c, p, false, saved);
	presence_announce_joined(p, session, saved);
	peerstate_free(saved);
	drain_presence(p);
}

static void submit_created(struct conn *c, struct presence *p)
{
	const struct hello *h = session_of(c)->hello;
	struct shard *s = p->mesh->shard;
	char iso[32];
	log_iso8601(iso, p->connected_ms);
	char *groups = json_dumps(p->groups, JSON_COMPACT);

	struct db_job *j = db_job_new(presence_insert_sql, DB_JOB_WRITE, &s->reply, created_done, NULL);
	db_job_param(j, p->id);
	db_job_param(j, p->member->id);
	db_job_param(j, p->session_id);
	db_job_param(j, p->session_pubkey);
	db_job_param(j, p->hello_display_name);
	db_job_paramf(j, "%lld", p->pid);
	db_job_param(j, p->cwd);
	db_job_param(j, iso);
	db_job_param(j, groups);
	db_job_param(j, p->role == ROLE_SESSION ? "session" : "control-plane");
	j->conn_slot = c->slot;
	j->conn_gen = c->gen;
	j->mesh_id = xstrdup(p->mesh->id);
	memcpy(j->presence_id, p->id, sizeof(p->id));
	free(groups);

	/* SEMANTICS.md §D: peer_joined, written behind through the worker's audit
	 * stream (the same lane as the presence row, so never before it). */
	json_t *payload = json_object();
	json_object_set_new(payload, "pubkey", json_string(p->member->pubkey));
	if (h->kind == HELLO_SESSION)
		json_object_set_new(payload, "session_pubkey", json_string(p->session_pubkey));
	json_object_set(payload, "groups", p->groups);
	if (h->kind == HELLO_SESSION) {
		json_object_set_new(payload, "via", json_string("session_hello"));
		json_object_set_new(payload, "role", json_string("session"));
	} else {
		json_object_set_new(payload, "restored", json_boolean(session_of(c)->saved != NULL));
		json_object_set_new(payload, "role", json_string("control-plane"));
	}
	db_submit(s->db, j);
	shard_audit(s, audit_entry(p->mesh->id, "peer_joined", p->member->id, p->display_name,
				   payload, p->connected_ms));
	json_decref(payload);
}

/* Another member's presence here answers to `key` (as its member key or
 * its session key). */
static bool key_held_by_other(struct mesh *m, const char *key, const struct member *mb)
{
	const struct plist *l = mesh_find(m, key);
	for (size_t i = 0; i < l->n; i++)
		if (l->v[i]->member != mb)
			return true;
	return false;
}

/* A session_hello proves its key (it is signed with it): presences of
 * other members that named it in a member hello lose it. */
static void take_session_key(struct mesh *m, const char *key, const struct member *mb)
{
	const struct plist *l;
	for (;;) {
		l = mesh_find(m, key);
		size_t i = 0;
		while (i < l->n && (l->v[i]->member == mb || !l->v[i]->session_pubkey ||
				    strcmp(l->v[i]->session_pubkey, key) != 0))
			i++;
		if (i == l->n)
			return;
		struct presence *q = l->v[i];
		char *old = q->session_pubkey;
		q->session_pubkey = NULL;
		mesh_presence_reindex(m, q, old);
		log_info("session_key_taken_back", "mesh=%s presence=%s", m->id, q->id);
		xfree(old);
	}
}

/* The presence's session key, when it may have it.  A member hello's
 * sessionPubkey is not signed (§5.1): one another member holds (its
 * member key, its presence's key here, or any presence row of its in the
 * database) is ignored, and the presence answers to its member key only
 * (README "Limits"). */
static void set_session_key(struct conn *c, struct mesh *m, struct presence *p)
{
	const struct hello *h = session_of(c)->hello;
	if (!h->session_pubkey)
		return;
	if (h->kind == HELLO_SESSION) {
		take_session_key(m, h->session_pubkey, p->member);
	} else if (session_of(c)->session_key_taken ||
		   key_held_by_other(m, h->session_pubkey, p->member)) {
		metrics_inc_label(METRIC_LIMIT_REFUSALS, LIMIT_SESSION_KEY);
		log_info("session_key_ignored", "worker=%d conn=%u mesh=%s presence=%s",
			 c->tab->id, c->slot, m->id, p->id);
		return;
	}
	p->session_pubkey = xstrdup(h->session_pubkey);
	mesh_presence_reindex(m, p, NULL);
}

static struct presence *create(struct conn *c, struct mesh *m, struct member *mb)
{
	const struct hello *h = session_of(c)->hello;
	struct presence *p = mesh_presence_new(m, mb);
	p->role = h->kind == HELLO_SESSION ? ROLE_SESSION : ROLE_CONTROL_PLANE;
	p->session_id = xstrdup(h->session_id);
	set_session_key(c, m, p);
	p->hello_display_name = h->display_name ? xstrdup(h->display_name) : NULL;
	p->display_name = xstrdup(h->display_name ? h->display_name : mb->display_name);
	p->cwd = xstrdup(h->cwd);
	p->pid = h->pid;
	p->hostname = h->hostname ? xstrdup(h->hostname) : NULL;
	p->peer_type = h->peer_type ? xstrdup(h->peer_type) : NULL;
	p->channel = h->channel ? xstrdup(h->channel) : NULL;
	p->model = h->model ? xstrdup(h->model) : NULL;
	const struct peer_saved *saved = session_of(c)->saved;
	json_decref(p->groups);
	p->groups = initial_groups(h, mb, saved);
	if (saved) {
		p->visible = saved->visible;
		json_decref(p->profile);
		p->profile = json_deep_copy(saved->profile);
	}
	p->status = STATUS_IDLE;
	p->source = SOURCE_JSONL;
	p->connected_ms = p->status_updated_ms = clock_wall_ms();
	presence_attach(p, c);
	return p;
}

/* §7.8: hello reattaches only to an offline lease of the same member (Q4)
 * with the same session pubkey, or — neither having one — the same
 * sessionId; session_hello to the lease holding its session pubkey,
 * online or not. */
static struct presence *find_reattach(struct mesh *m, const struct hello *h,
				      const struct member *mb)
{
	for (struct presence *p = m->head; p; p = p->next) {
		if (p->member != mb)
			continue;
		if (h->kind == HELLO_SESSION) {
			if (p->session_pubkey && strcmp(p->session_pubkey, h->session_pubkey) == 0)
				return p;
			continue;
		}
		if (p->online)
			continue;
		if (h->session_pubkey && p->session_pubkey &&
		    strcmp(h->session_pubkey, p->session_pubkey) == 0)
			return p;
		if (!h->session_pubkey && !p->session_pubkey &&
		    strcmp(h->session_id, p->session_id) == 0)
			return p;
	}
	return NULL;
}

static void reattach(struct conn *c, struct presence *p)
{
	const struct hello *h = session_of(c)->hello;
	if (p->conn && p->conn != c) {
		struct conn *old = p->conn;
		presence_detach(p);
		conn_ws_close(old, WS_CLOSE_NORMAL, "session_replaced");
	}
	xfree(p->cwd);
	p->cwd = xstrdup(h->cwd);
	if (h->display_name) {
		xfree(p->display_name);
		p->display_name = xstrdup(h->display_name);
	}
	if (h->kind == HELLO_SESSION) {
		xfree(p->session_id);
		p->session_id = xstrdup(h->session_id);
	}
	presence_attach(p, c);
	presence_store_restore(p);
	finish(c, p, true, NULL); /* a reattach is never "restored" (§7.8) */
	drain_presence(p);
}

static void admit(struct shard *s, struct conn *c, struct member *mb)
{
	const struct hello *h = session_of(c)->hello;
	struct mesh *m = shard_mesh(s, h->mesh_id, false);
	struct presence *old = find_reattach(m, h, mb);
	if (old) {
		reattach(c, old);
		return;
	}
	if (m->npresences >= (size_t)s->cfg->max_connections_per_mesh) {
		reject(c, HR_CAPACITY, NULL);
		shard_mesh_maybe_free(s, m);
		return;
	}
	/* The new presence first: it keeps the mesh and the member alive while
	 * the §7.9 session-id dedup (scoped to the same member, Q8) removes
	 * what it replaces, possibly the member's last other presence. */
	struct presence *p = create(c, m, mb);
	for (struct presence *q = m->head, *next; q; q = next) {
		next = q->next;
		if (q != p && q->member == mb && strcmp(q->session_id, h->session_id) == 0)
			presence_replace(q);
	}
	submit_created(c, p);
}

static void lookup_done(struct db_job *j, void *owner)
{
	struct shard *s = owner;
	struct conn *c = shard_conn(s, j->conn_slot, j->conn_gen);
	if (!c || !session_of(c)->handshaking || c->state != CONN_WS)
		return;
	struct session *ss = session_of(c);
	const struct hello *h = ss->hello;
	bool session = h->kind == HELLO_SESSION;
	if (!j->ok) {
		/* The database is unreachable: the client retries with backoff. */
		metrics_inc_label(METRIC_MESSAGES_REJECTED, MSG_REJECT_PARSE_OR_HANDLER);
		log_warn("hello_lookup_failed", "worker=%d conn=%u error=%s", s->id, c->slot, j->error);
		ss->handshaking = false;
		conn_ws_close(c, 1011, "database unavailable");
		return;
	}
	PGresult *res = j->res;
	if (PQntuples(res) == 0 || PQgetisnull(res, 0, 4)) {
		reject(c, session ? HR_PARENT_UNAUTHORIZED : HR_UNAUTHORIZED, NULL);
		return;
	}
	if (strcmp(PQgetvalue(res, 0, 10), "t") == 0) {
		reject(c, HR_REVOKED, mesh_label(res, h->mesh_id));
		return;
	}
	if (strcmp(PQgetvalue(res, 0, 2), "t") == 0) {
		reject(c, session ? HR_PARENT_MESH_ARCHIVED : HR_MESH_ARCHIVED, NULL);
		return;
	}
	const char *member_id = PQgetvalue(res, 0, 4);
	if (!hello_member_id_matches(h, member_id)) {
		reject(c, session ? HR_PARENT_MEMBER_ID_MISMATCH : HR_MEMBER_ID_MISMATCH, NULL);
		return;
	}
	struct mesh *m = shard_mesh(s, h->mesh_id, true);
	json_decref(m->self_editable);
	m->self_editable = json_col(res, 3);
	json_t *defaults = json_col(res, 7), *grants = json_col(res, 9);
	struct member *mb = mesh_member_upsert(m, member_id, h->pubkey, db_value(res, 5), db_value(res, 6),
					       db_value(res, 8), defaults, grants);
	json_decref(defaults);
	json_decref(grants);
	ss->session_key_taken = strcmp(PQgetvalue(res, 0, MEMBER_SQL_KEY_TAKEN), "t") == 0;
	if (!session)
		ss->saved = peerstate_from_row(res, MEMBER_SQL_PEERSTATE);
	admit(s, c, mb);
}
