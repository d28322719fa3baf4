/* presence — a peer's life in its mesh; see include/meshd/presence.h. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "meshd/alloc.h"
#include "meshd/audit.h"
#include "meshd/clock.h"
#include "meshd/config.h"
#include "meshd/conn.h"
#include "meshd/db.h"
#include "meshd/dbjob.h"
#include "meshd/drain.h"
#include "meshd/id.h"
#include "meshd/jsonlcache.h"
#include "meshd/jsonw.h"
#include "meshd/limits.h"
#include "meshd/log.h"
#include "meshd/metrics.h"
#include "meshd/peerstate.h"
#include "meshd/presence.h"
#include "meshd/proto.h"
#include "meshd/session.h"
#include "meshd/shard.h"
#include "meshd/status.h"
#include "meshd/thread.h"
#include "meshd/ws.h"
#include "meshd/jscompat.h"

static const struct config *cfg_of(const struct presence *p)
{
	return p->mesh->shard->cfg;
}

static struct db *db_of(const struct presence *p)
{
	return p->mesh->shard->db;
}

/* A fire-and-forget row update: the write rides the next group commit. */
static struct db_job *row_write(struct presence *p, const char *sql)
{
	struct db_job *j = db_job_new(sql, DB_JOB_WRITE, NULL, NULL, NULL);
	db_job_param(j, p->id);
	return j;
}

/* ---- socket and lease -------------------------------------------------- */

void presence_attach(struct presence *p, struct conn *c)
{
	MESHD_ASSERT_ON_WORKER(p->mesh->shard);
	p->conn = c;
	session_of(c)->presence = p;
	p->online = true;
	p->last_pong_mono_ms = clock_mono_ms();
	p->backlog = true;       /* until the first drain has claimed what waits for it */
	drain_attached(p);
	if (p->grace_timer)
		evtimer_del(p->grace_timer);
}

void presence_detach(struct presence *p)
{
	if (!p->conn)
		return;
	session_of(p->conn)->presence = NULL;
	p->conn = NULL;
	drain_detached(p);
}

static void grace_expired(evutil_socket_t fd, short what, void *arg)
{
	struct presence *p = arg;
	log_info("presence_evicted", "mesh=%s presence=%s", p->mesh->id, p->id);
	presence_remove(p, true);
}

void presence_conn_closed(struct presence *p)
{
	struct shard *s = p->mesh->shard;
	MESHD_ASSERT_ON_WORKER(s);
	/* §7.7 step 4, for a socket whose handshake completed (shutdown too:
	 * the reference's close handler runs then as well). */
	if (presence_handshaken(p))
		peerstate_save(p);
	presence_detach(p);
	if (s->draining)
		return; /* shutdown: presence_shutdown_shard() has the rows */
	if (!p->online) {
		presence_remove(p, true);
		return;
	}
	/* §7.7: offline for LEASE_GRACE_SECONDS, still a direct target, then evicted. */
	p->online = false;
	if (!p->grace_timer)
		p->grace_timer = evtimer_new(s->base, grace_expired, p);
	if (!p->grace_timer) {
		/* No timer, no grace: evicted now rather than never. */
		log_error("presence_timer_failed", "mesh=%s presence=%s", p->mesh->id, p->id);
		presence_remove(p, true);
		return;
	}
	struct timeval tv = { .tv_sec = cfg_of(p)->lease_grace_seconds, .tv_usec = 0 };
	evtimer_add(p->grace_timer, &tv);
}

void presence_heartbeat(struct presence *p)
{
	int64_t now = clock_mono_ms();
	p->last_pong_mono_ms = now;
	/* last_ping_at feeds the stale sweep (PRESENCE_STALE_SECONDS, at least
	 * two ping intervals: db.c).  At most one write per half ping interval,
	 * so every pong writes one, and 100k idle peers do not flood the db. */
	int64_t every = (int64_t)cfg_of(p)->ping_interval_seconds * 500;
	if (now - p->last_heartbeat_write_ms < every)
		return;
	p->last_heartbeat_write_ms = now;
	db_submit(db_of(p), row_write(p, "UPDATE mesh.presence SET last_ping_at = now() WHERE id = $1"));
}

static void store_disconnected(struct presence *p)
{
	db_submit(db_of(p), row_write(p, "UPDATE mesh.presence SET disconnected_at = now()"
					 " WHERE id = $1 AND disconnected_at IS NULL"));
}

void presence_store_restore(struct presence *p)
{
	db_submit(db_of(p), row_write(p, "UPDATE mesh.presence SET disconnected_at = NULL,"
					 " last_ping_at = now() WHERE id = $1"));
}

static bool other_member(const struct presence *to, const struct presence *subject)
{
	return strcmp(to->member->pubkey, subject->member->pubkey) != 0;
}

static bool anyone_else(const struct presence *to, const struct presence *subject)
{
	return to != subject;
}

static bool other_member_not_self(const struct presence *to, const struct presence *subject)
{
	return to != subject && other_member(to, subject);
}

void presence_remove(struct presence *p, bool announce)
{
	struct mesh *m = p->mesh;
	if (p->conn) {
		struct conn *c = p->conn;
		presence_detach(p);
		conn_abort(c);
	}
	if (announce) {
		/* Only a peer that was announced is announced leaving (its socket
		 * may have closed before its hello_ack). */
		if (p->announced) {
			json_t *data = json_object();
			json_object_set_new(data, "name", json_string(p->display_name));
			json_object_set_new(data, "pubkey", json_string(presence_pubkey(p)));
			presence_broadcast_system(p, "peer_left", data, other_member);
			json_decref(data);
		}
		json_t *payload = json_object();
		shard_audit(m->shard, audit_entry(m->id, "peer_left", p->member->id, p->display_name,
						  payload, clock_wall_ms()));
		json_decref(payload);
	}
	if (p->stored)
		store_disconnected(p);
	mesh_presence_remove(m, p);
}

void presence_replace(struct presence *p)
{
	log_info("presence_replaced", "mesh=%s presence=%s", p->mesh->id, p->id);
	if (p->conn) {
		struct conn *c = p->conn;
		presence_detach(p);
		conn_ws_close(c, WS_CLOSE_NORMAL, "session_replaced");
	}
	presence_remove(p, false);
}

/* ---- system pushes ----------------------------------------------------- */

bool presence_handshaken(const struct presence *p)
{
	return p->conn && session_of(p->conn)->hello_done;
}

bool presence_send(struct presence *p, const char *text, size_t len)
{
	struct conn *c = p->conn;
	if (!presence_handshaken(p) || session_presence(c) != p)
		return false;
	conn_ws_send(c, text, len);
	return true;
}

void presence_broadcast_system(struct presence *subject, const char *event, json_t *data,
			       bool (*want)(const struct presence *to, const struct presence *subject))
{
	char uuid[UUID_LEN + 1], iso[32];
	id_uuid4(uuid);
	log_iso8601(iso, clock_wall_ms());
	json_t *o = json_object();
	json_object_set_new(o, "type", json_string("push"));
	json_object_set_new(o, "subtype", json_string("system"));
	json_object_set_new(o, "event", json_string(event));
	json_object_set(o, "eventData", data);
	json_object_set_new(o, "messageId", json_string(uuid));
	json_object_set_new(o, "meshId", json_string(subject->mesh->id));
	json_object_set_new(o, "senderPubkey", json_string("system"));
	json_object_set_new(o, "priority", json_string("low"));
	json_object_set_new(o, "nonce", json_string(""));
	json_object_set_new(o, "ciphertext", json_string(""));
	json_object_set_new(o, "createdAt", json_string(iso));
	/* Serialised once; every recipient gets the same bytes. */
	char *text = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	size_t len = strlen(text);
	for (struct presence *to = subject->mesh->head; to; to = to->next)
		if (want(to, subject))
			presence_send(to, text, len);
	free(text);
}

void presence_announce_joined(struct presence *p, bool session, const struct peer_saved *saved)
{
	json_t *data = json_object();
	json_object_set_new(data, "name", json_string(p->display_name));
	json_object_set_new(data, "pubkey", json_string(presence_pubkey(p)));
	json_object_set(data, "groups", p->groups);
	if (saved && saved->last_seen_at)
		json_object_set_new(data, "lastSeenAt", json_string(saved->last_seen_at));
	if (saved && saved->last_summary)
		json_object_set_new(data, "summary", json_string(saved->last_summary));
	p->announced = true;
	presence_broadcast_system(p, saved ? "peer_returned" : "peer_joined", data,
				  session ? anyone_else : other_member_not_self);
	json_decref(data);
}

/* ---- requests ------------------------------------------------------------ */

static const char *req_id(const json_t *msg)
{
	return js_field(msg, "_reqId");
}

static void set_opt(json_t *o, const char *key, const char *v)
{
	if (v)
		json_object_set_new(o, key, json_string(v));
}

static json_t *peer_entry(const struct presence *p)
{
	char iso[32];
	log_iso8601(iso, p->connected_ms);
	json_t *e = json_object();
	json_object_set_new(e, "pubkey", json_string(presence_pubkey(p)));
	json_object_set_new(e, "memberPubkey", json_string(p->member->pubkey));
	json_object_set_new(e, "displayName", json_string(p->hello_display_name ? p->hello_display_name
										: p->member->display_name));
	json_object_set_new(e, "status", json_string(status_name(p->status)));
	json_object_set_new(e, "summary", p->summary ? json_string(p->summary) : json_null());
	json_object_set(e, "groups", p->groups);
	json_object_set_new(e, "sessionId", json_string(p->session_id));
	json_object_set_new(e, "connectedAt", json_string(iso));
	json_object_set_new(e, "cwd", json_string(p->cwd));
	json_object_set_new(e, "peerRole", json_string(p->role == ROLE_SESSION ? "session"
									  : "control-plane"));
	set_opt(e, "hostname", p->hostname);
	set_opt(e, "peerType", p->peer_type);
	set_opt(e, "channel", p->channel);
	set_opt(e, "model", p->model);
	if (p->stats)
		json_object_set(e, "stats", p->stats);
	json_object_set_new(e, "visible", json_boolean(p->visible));
	if (json_object_size(p->profile) > 0)
		json_object_set(e, "profile", p->profile);
	return e;
}

bool presence_listed(const struct presence *p, int64_t now_mono)
{
	int64_t stale = (int64_t)cfg_of(p)->presence_stale_seconds * 1000;
	return p->stored && (p->online || now_mono - p->last_pong_mono_ms <= stale);
}

/* A request past one of the bounds of limits.h: nothing is stored, and
 * the peer is told which (an error frame: the contract has no answer for
 * these requests, and clients pass over error codes they do not know). */
static void refuse(struct conn *c, const json_t *msg, enum limit_kind kind, const char *what)
{
	metrics_inc_label(METRIC_LIMIT_REFUSALS, kind);
	proto_send_error(c, "limit_exceeded", what, req_id(msg));
}

/* The reply is written entry by entry so that it can stop at half of the
 * caller's output bound: a mesh of large entries must not get the caller
 * disconnected for asking.  A reply cut short lists the peers that fit,
 * in the usual order, and carries "truncated": true (a field the
 * reference never sends, so a client that ignores it sees a shorter
 * list). */
void presence_list_peers(struct conn *c, const json_t *msg)
{
	struct presence *me = session_presence(c);
	size_t cap = cfg_of(me)->conn_max_output_bytes / 2;
	int64_t now = clock_mono_ms();
	struct strbuf b = { 0 };
	strbuf_adds(&b, "{\"type\":\"peers_list\",\"peers\":[");
	bool first = true, truncated = false;
	for (struct presence *p = me->mesh->head; p; p = p->next) {
		if (!presence_listed(p, now) && p != me)
			continue;
		if (!p->visible && p->member != me->member)
			continue;
		json_t *e = peer_entry(p);
		char *text = json_dumps(e, JSON_COMPACT);
		json_decref(e);
		if (!text)
			continue;
		size_t len = strlen(text);
		truncated = b.len + len + 1 > cap;
		if (!truncated) {
			if (!first)
				strbuf_addc(&b, ',');
			strbuf_add(&b, text, len);
			first = false;
		}
		free(text); /* jansson allocates with malloc */
		if (truncated)
			break;
	}
	strbuf_addc(&b, ']');
	struct jsonw w = { .b = &b, .more = true }; /* the rest of the reply object */
	if (req_id(msg))
		jsonw_str(&w, "_reqId", req_id(msg));
	if (truncated) {
		jsonw_bool(&w, "truncated", true);
		metrics_inc_label(METRIC_LIMIT_REFUSALS, LIMIT_PEERS_LIST);
	}
	jsonw_end(&w);
	conn_ws_send(c, b.p, b.len);
	xfree(b.p);
}

bool presence_write_status(struct presence *p, int status, int source)
{
	int64_t now = clock_wall_ms();
	struct status_state st = { p->status, p->source, p->status_updated_ms };
	status_write(&st, (enum peer_status)status, (enum status_source)source, now,
		     (int64_t)cfg_of(p)->hook_fresh_window_seconds * 1000);
	bool admits_more = status_deliverable(st.status) & ~status_deliverable(p->status);
	p->status = st.status;
	p->source = st.source;
	p->status_updated_ms = st.updated_ms;
	char iso[32];
	log_iso8601(iso, st.updated_ms);
	struct db_job *j = row_write(p, "UPDATE mesh.presence SET status = $2::mesh.presence_status,"
				       " status_source = $3::mesh.presence_status_source,"
				       " status_updated_at = ($4::timestamptz AT TIME ZONE 'UTC')"
				       " WHERE id = $1");
	db_job_param(j, status_name(st.status));
	db_job_param(j, status_source_name(st.source));
	db_job_param(j, iso);
	db_submit(db_of(p), j);
	return admits_more;
}

enum peer_status presence_effective_status(struct presence *p)
{
	MESHD_ASSERT_ON_WORKER(p->mesh->shard);
	const struct config *cfg = cfg_of(p);
	if (p->status == STATUS_DND)
		return STATUS_DND;
	int64_t now = clock_wall_ms();
	struct status_state st = { p->status, p->source, p->status_updated_ms };
	int64_t window = (int64_t)cfg->hook_fresh_window_seconds * 1000;
	if (status_is_hook_fresh(&st, now, window))
		return p->status;
	enum peer_status inferred = jsonl_cache_infer(p->mesh->shard->jsonl,
						      cfg->claude_projects_dir, p->cwd);
	if (inferred != p->status || p->source != SOURCE_JSONL) {
		/* No drain of its own: the caller gates on what this returns. */
		bool admits_more = presence_write_status(p, inferred, SOURCE_JSONL);
		(void)admits_more;
	}
	return p->status;
}

void presence_set_status(struct conn *c, const json_t *msg)
{
	enum peer_status st;
	const char *s = js_field(msg, "status");
	if (!s || !status_parse(s, &st))
		return; /* an invalid value is silent (§7.3) */
	/* D4: held messages go out as soon as the status admits them. */
	struct presence *p = session_presence(c);
	if (presence_write_status(p, st, SOURCE_MANUAL))
		drain_presence(p);
}

void presence_set_summary(struct conn *c, const json_t *msg)
{
	struct presence *p = session_presence(c);
	const char *s = js_field(msg, "summary");
	if (s && strlen(s) > SUMMARY_MAX_BYTES) {
		refuse(c, msg, LIMIT_SUMMARY, "set_summary: a summary is at most 4096 bytes");
		return;
	}
	xfree(p->summary);
	p->summary = xstrdup(s ? s : "");
	struct db_job *j = row_write(p, "UPDATE mesh.presence SET summary = $2 WHERE id = $1");
	db_job_param(j, p->summary);
	db_submit(db_of(p), j);
}

static void store_groups(struct presence *p)
{
	char *text = json_dumps(p->groups, JSON_COMPACT);
	struct db_job *j = row_write(p, "UPDATE mesh.presence SET groups = $2::jsonb WHERE id = $1");
	db_job_param(j, text);
	free(text);
	db_submit(db_of(p), j);
}

/* Removes every entry named `name`; returns the index of the first, or -1. */
static long drop_group(json_t *groups, const char *name)
{
	long first = -1;
	for (size_t i = json_array_size(groups); i-- > 0;) {
		const char *n = js_field(json_array_get(groups, i), "name");
		if (n && strcmp(n, name) == 0) {
			json_array_remove(groups, i);
			first = (long)i;
		}
	}
	return first;
}

bool presence_in_group(const struct presence *p, const char *name)
{
	MESHD_ASSERT_ON_WORKER(p->mesh->shard);
	size_t i;
	json_t *g;
	json_array_foreach(p->groups, i, g) {
		const char *n = js_field(g, "name");
		if (n && strcmp(n, name) == 0)
			return true;
	}
	return false;
}

void presence_join_group(struct conn *c, const json_t *msg)
{
	struct presence *p = session_presence(c);
	const char *name = js_field(msg, "name");
	const char *role = js_field(msg, "role");
	if (!name)
		return;
	if (!limit_group_ok(name, role)) {
		refuse(c, msg, LIMIT_GROUP, "join_group: a group name is at most 128 bytes and a"
					    " role 64, without control characters");
		return;
	}
	if (!presence_in_group(p, name) && json_array_size(p->groups) >= GROUPS_MAX) {
		refuse(c, msg, LIMIT_GROUPS, "join_group: at most 64 groups per peer");
		return;
	}
	json_t *g = json_object();
	json_object_set_new(g, "name", json_string(name));
	if (role && *role)
		json_object_set_new(g, "role", json_string(role));
	/* Upsert: an existing entry is replaced in place, entirely. */
	long at = drop_group(p->groups, name);
	if (at >= 0)
		json_array_insert_new(p->groups, (size_t)at, g);
	else
		json_array_append_new(p->groups, g);
	store_groups(p);
}

void presence_leave_group(struct conn *c, const json_t *msg)
{
	struct presence *p = session_presence(c);
	const char *name = js_field(msg, "name");
	if (!name)
		return;
	drop_group(p->groups, name);
	store_groups(p);
}

/* ---- extras (§7.12) --------------------------------------------------------- */

/* set_visible's and set_profile's reply: the ack shape with nothing queued. */
static void ack_empty(struct conn *c, const json_t *msg)
{
	const char *rid = req_id(msg);
	json_t *o = json_object();
	json_object_set_new(o, "type", json_string("ack"));
	json_object_set_new(o, "id", json_string(rid ? rid : ""));
	json_object_set_new(o, "messageId", json_string(""));
	json_object_set_new(o, "queued", json_false());
	set_opt(o, "_reqId", rid);
	proto_send_json(c, o);
}

/* The counters the clients send; anything else in `stats` is dropped, so a
 * peer cannot make others' peers_list carry what it likes. */
static const char *const stat_keys[] = { "messagesIn", "messagesOut", "toolCalls", "uptime",
					 "errors" };

void presence_set_stats(struct conn *c, const json_t *msg)
{
	struct presence *p = session_presence(c);
	const json_t *in = json_object_get(msg, "stats");
	if (!json_is_object(in))
		return; /* no reply either way (§7.12) */
	json_t *stats = json_object();
	for (size_t i = 0; i < sizeof(stat_keys) / sizeof(stat_keys[0]); i++) {
		json_t *v = json_object_get(in, stat_keys[i]);
		if (json_is_number(v))
			json_object_set(stats, stat_keys[i], v);
	}
	json_decref(p->stats);
	p->stats = stats;
}

/* A `visible` that is not a boolean is ignored, with no reply: the reference
 * has no answer for it, and guessing a value would hide or show a peer. */
void presence_set_visible(struct conn *c, const json_t *msg)
{
	struct presence *p = session_presence(c);
	const json_t *v = json_object_get(msg, "visible");
	if (!json_is_boolean(v))
		return;
	p->visible = json_is_true(v);
	ack_empty(c, msg);
	json_t *data = json_object();
	json_object_set_new(data, "name", json_string(p->display_name));
	json_object_set_new(data, "pubkey", json_string(presence_pubkey(p)));
	presence_broadcast_system(p, p->visible ? "peer_visible" : "peer_hidden", data, anyone_else);
	json_decref(data);
}

static bool all_strings(const json_t *a)
{
	size_t i;
	json_t *v;
	json_array_foreach(a, i, v)
		if (!json_is_string(v))
			return false;
	return true;
}

static const char *const profile_text_keys[] = { "avatar", "title", "bio" };

static bool profile_within_limits(const json_t *msg)
{
	for (size_t i = 0; i < sizeof(profile_text_keys) / sizeof(profile_text_keys[0]); i++) {
		json_t *v = json_object_get(msg, profile_text_keys[i]);
		if (json_is_string(v) && json_string_length(v) > PROFILE_TEXT_MAX_BYTES)
			return false;
	}
	json_t *caps = json_object_get(msg, "capabilities");
	if (!json_is_array(caps))
		return true;
	if (json_array_size(caps) > CAPABILITIES_MAX)
		return false;
	size_t i;
	json_t *v;
	json_array_foreach(caps, i, v)
		if (json_is_string(v) && json_string_length(v) > CAPABILITY_MAX_BYTES)
			return false;
	return true;
}

/* Merges the given fields; a field of the wrong type is left as it was. */
void presence_set_profile(struct conn *c, const json_t *msg)
{
	struct presence *p = session_presence(c);
	if (!profile_within_limits(msg)) {
		refuse(c, msg, LIMIT_PROFILE, "set_profile: avatar, title and bio are at most 2048"
					      " bytes, capabilities at most 32 of 64 bytes");
		return;
	}
	for (size_t i = 0; i < sizeof(profile_text_keys) / sizeof(profile_text_keys[0]); i++) {
		json_t *v = json_object_get(msg, profile_text_keys[i]);
		if (json_is_string(v))
			json_object_set(p->profile, profile_text_keys[i], v);
	}
	json_t *caps = json_object_get(msg, "capabilities");
	if (json_is_array(caps) && all_strings(caps))
		json_object_set_new(p->profile, "capabilities", json_deep_copy(caps));
	ack_empty(c, msg);
}

/* ---- sweeps ------------------------------------------------------------------ */

void presence_sweep_shard(struct shard *s)
{
	MESHD_ASSERT_ON_WORKER(s);
	const struct config *cfg = s->cfg;
	int64_t now = clock_wall_ms();
	int64_t ttl = (int64_t)cfg->status_ttl_seconds * 1000;
	unsigned flipped = 0;
	const char *k;
	void *v;
	for (size_t i = 0; map_next(&s->meshes, &i, &k, &v);) {
		struct mesh *m = v;
		for (struct presence *p = m->head, *next; p; p = next) {
			next = p->next;
			if (p->status == STATUS_WORKING && p->status_updated_ms < now - ttl) {
				flipped++;
				if (presence_write_status(p, STATUS_IDLE, SOURCE_JSONL))
					drain_presence(p);
			}
		}
	}
	metrics_inc_ttl_sweep(flipped);
}

/* ---- shutdown -------------------------------------------------------------- */

void presence_shutdown_shard(struct shard *s)
{
	MESHD_ASSERT_ON_WORKER(s);
	json_t *ids = json_array();
	const char *k;
	void *v;
	for (size_t i = 0; map_next(&s->meshes, &i, &k, &v);) {
		struct mesh *m = v;
		for (struct presence *p = m->head; p; p = p->next)
			if (p->stored)
				json_array_append_new(ids, json_string(p->id));
	}
	if (json_array_size(ids) > 0) {
		char *text = json_dumps(ids, JSON_COMPACT);
		struct db_job *j = db_job_new("UPDATE mesh.presence SET disconnected_at = now()"
					      " WHERE id IN (SELECT jsonb_array_elements_text($1::jsonb))"
					      " AND disconnected_at IS NULL",
					      DB_JOB_WRITE, NULL, NULL, NULL);
		db_job_param(j, text);
		free(text);
		db_submit(s->db, j);
	}
	json_decref(ids);
}
