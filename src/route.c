/* route — send, ack, push, drains, client_ack, message_status; see include/meshd/route.h. */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <libpq-fe.h>

#include "meshd/alloc.h"
#include "meshd/audit.h"
#include "meshd/clock.h"
#include "meshd/config.h"
#include "meshd/conn.h"
#include "meshd/conntab.h"
#include "meshd/db.h"
#include "meshd/dbjob.h"
#include "meshd/dbstream.h"
#include "meshd/id.h"
#include "meshd/jsonl.h"
#include "meshd/jsonw.h"
#include "meshd/log.h"
#include "meshd/metrics.h"
#include "meshd/presence.h"
#include "meshd/proto.h"
#include "meshd/route.h"
#include "meshd/session.h"
#include "meshd/shard.h"
#include "meshd/status.h"
#include "meshd/strbuf.h"
#include "meshd/thread.h"

#define ISO_SQL(col) "to_char(" col ", 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

/* One iteration's sends of a worker, as one statement.  A direct row whose
 * recipient can take it now is inserted already claimed for that presence
 * (the claim a drain would have made), and pushed from the completion:
 * one statement per message instead of an insert plus a drain. */
static const char insert_many_sql[] =
	"INSERT INTO mesh.message_queue (id, mesh_id, sender_member_id, sender_session_pubkey,"
	" target_spec, priority, nonce, ciphertext, client_message_id, request_fingerprint,"
	" delivered_at, claimed_at, claim_id, claim_expires_at)"
	" SELECT r.id, r.mesh, r.sender, r.spk, r.target, r.prio::mesh.message_priority, r.nonce,"
	" r.ct, r.cmid, r.fp, CASE WHEN r.delivered THEN now() END,"
	" CASE WHEN r.claim IS NOT NULL THEN now() END, r.claim,"
	" CASE WHEN r.claim IS NOT NULL THEN now() + make_interval(secs => $2::int) END"
	" FROM jsonb_to_recordset($1::jsonb) AS r(id text, mesh text, sender text, spk text,"
	" target text, prio text, nonce text, ct text, cmid text, fp text, delivered boolean,"
	" claim text)"
	/* A batch resent after a lost connection may hold rows that did
	 * commit: the ids are ours, so a second insert is a no-op. */
	" ON CONFLICT (id) DO NOTHING"
	" RETURNING " "to_char(created_at, 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')";

/* Claims, in order, what p may receive now (§6.6 step 2–3).  Multicast rows
 * are never selected: they are inserted delivered (Q14). */
static const char drain_sql[] =
	"WITH cand AS ("
	" SELECT q.id FROM mesh.message_queue q"
	" WHERE q.mesh_id = $1 AND q.delivered_at IS NULL"
	" AND (q.claimed_at IS NULL OR q.claim_expires_at IS NULL OR q.claim_expires_at < now())"
	" AND q.priority::text = ANY (string_to_array($2, ','))"
	/* One array, so the target is an index condition (meshd_message_queue_pending_idx). */
	" AND q.target_spec = ANY (ARRAY[$3, $4]::text[] ||"
	" ARRAY(SELECT '#' || tm.topic_id FROM mesh.topic_member tm WHERE tm.member_id = $5))"
	" ORDER BY q.created_at, q.id FOR UPDATE SKIP LOCKED),"
	" upd AS (UPDATE mesh.message_queue mq SET claimed_at = now(), claim_id = $6,"
	" claim_expires_at = now() + make_interval(secs => $7::int)"
	" FROM cand WHERE mq.id = cand.id"
	" RETURNING mq.id, mq.priority::text AS priority, mq.nonce, mq.ciphertext, mq.created_at,"
	" mq.client_message_id, mq.request_fingerprint, mq.sender_member_id,"
	" mq.sender_session_pubkey)"
	" SELECT upd.id, upd.priority, upd.nonce, upd.ciphertext, " ISO_SQL("upd.created_at") ","
	" upd.client_message_id, upd.request_fingerprint,"
	" COALESCE(upd.sender_session_pubkey, m.peer_pubkey)"
	" FROM upd JOIN mesh.member m ON m.id = upd.sender_member_id"
	" ORDER BY upd.created_at, upd.id";

/* One iteration's client_acks of a worker.  Each ack matches by id or by
 * client_message_id (a union, so each side is an index condition), within
 * the acker's mesh and targets (§6.7).
 *
 * No clause here may imply meshd_message_queue_pending_idx's predicate
 * (delivered_at IS NULL): its statistics count the few live pending rows,
 * not the dead entries every ack leaves until vacuum, so the planner
 * thinks scanning all of it is free and picks it over the primary key
 * (a full scan of the index per batch, 30 µs per ack at 100 000 rows).
 * Hence "pending" is a column of a MATERIALIZED t (a plain CTE would have
 * the filter pushed down into its branches), and the update keeps the
 * first delivered_at should a concurrent writer have set it meanwhile. */
static const char ack_many_sql[] =
	"WITH a AS (SELECT * FROM jsonb_to_recordset($1::jsonb)"
	" AS a(mesh text, bid text, cid text, mpk text, spk text)),"
	" t AS MATERIALIZED ("
	" SELECT q.id, q.delivered_at IS NULL AS pending, q.target_spec, a.mpk, a.spk"
	" FROM a JOIN mesh.message_queue q ON q.id = a.bid AND q.mesh_id = a.mesh"
	" UNION SELECT q.id, q.delivered_at IS NULL, q.target_spec, a.mpk, a.spk"
	" FROM a JOIN mesh.message_queue q ON q.mesh_id = a.mesh AND q.client_message_id = a.cid)"
	" UPDATE mesh.message_queue q SET delivered_at = coalesce(q.delivered_at, now()) FROM t"
	" WHERE q.id = t.id AND t.pending"
	" AND (t.target_spec = t.mpk OR t.target_spec = t.spk OR t.target_spec = '*'"
	" OR t.target_spec LIKE '@%' OR t.target_spec LIKE '#%')";

static const char status_exact_sql[] =
	"SELECT id, target_spec, delivered_at IS NOT NULL, " ISO_SQL("delivered_at")
	" FROM mesh.message_queue WHERE mesh_id = $1 AND id = $2";
static const char status_prefix_sql[] =
	"SELECT id, target_spec, delivered_at IS NOT NULL, " ISO_SQL("delivered_at")
	" FROM mesh.message_queue WHERE mesh_id = $1 AND id LIKE $2 || '%' LIMIT 2";

enum target_class { TARGET_DIRECT, TARGET_BROADCAST, TARGET_GROUP, TARGET_TOPIC };

static const struct config *cfg_of(const struct conn *c)
{
	return ((const struct shard *)conn_owner(c))->cfg;
}

/* ---- replies --------------------------------------------------------------- */

/* Through jansson, not jsonw: an error text may carry a PostgreSQL message,
 * whose bytes jsonw would not check (json_string refuses invalid UTF-8). */
static void ack_error(struct conn *c, const char *id, const char *error)
{
	json_t *o = json_object();
	json_object_set_new(o, "type", json_string("ack"));
	json_object_set_new(o, "id", json_string(id));
	json_object_set_new(o, "messageId", json_string(""));
	json_object_set_new(o, "queued", json_false());
	json_object_set_new(o, "error", json_string(error));
	proto_send_json(c, o);
}

static void ack_ok(struct conn *c, const char *id, const char *message_id)
{
	struct strbuf b = { 0 };
	struct jsonw w;
	jsonw_begin(&w, &b);
	jsonw_str(&w, "type", "ack");
	jsonw_str(&w, "id", id);
	jsonw_str(&w, "messageId", message_id);
	jsonw_bool(&w, "queued", true);
	jsonw_end(&w);
	conn_ws_send(c, b.p, b.len);
	xfree(b.p);
}

/* ---- grants (§6.4) ----------------------------------------------------------- */

static const char *const default_caps[] = { "read", "dm", "broadcast", "state-read" };

static bool caps_allow(const json_t *caps, const char *cap)
{
	if (!caps) {
		for (size_t i = 0; i < sizeof(default_caps) / sizeof(default_caps[0]); i++)
			if (strcmp(default_caps[i], cap) == 0)
				return true;
		return false;
	}
	size_t i;
	json_t *v;
	json_array_foreach(caps, i, v) if (json_is_string(v) && strcmp(json_string_value(v), cap) == 0)
		return true;
	return false;
}

/* Does recipient member `to` let this sender use `cap`?  The member pubkey's
 * entry decides; without one, the session pubkey's; without either, the defaults. */
static bool grant_allows(const struct member *to, const struct presence *from, const char *cap,
			 bool member_key_only)
{
	const json_t *caps = json_object_get(to->peer_grants, from->member->pubkey);
	if (!caps && !member_key_only && from->session_pubkey)
		caps = json_object_get(to->peer_grants, from->session_pubkey);
	if (caps && !json_is_array(caps))
		caps = NULL;
	return caps_allow(caps, cap);
}

/* ---- send (§6.1) ------------------------------------------------------------ */

/* A send waiting for this iteration's insert. */
struct send_row {
	char id[ID_LEN + 1];
	char sender[ID_LEN + 1];       /* presence id */
	char claim[ID_LEN + 1];        /* fast path: the presence it is claimed for, or "" */
	char *mesh_id;
	/* The sender as it was at the send: the row and its audit entry need
	 * them even if the presence is gone by the flush or the commit. */
	char *member_id, *session_pubkey, *display_name;
	uint32_t slot, gen;            /* the sender's connection */
	char *req_id;                  /* send.id, "" when absent */
	char *reply_to_id;             /* echoed on multicast pushes */
	char *client_message_id, *request_fingerprint;
	char *target, *priority, *nonce, *ciphertext;
	bool priority_given;
	enum target_class cls;
};

struct route_batch {
	struct send_row *rows;
	size_t n, cap;
	struct db_stream inserts; /* its own rows unused: sends carry more than JSON */
	struct db_stream acks;
};

struct route_batch *route_batch_new(struct shard *s)
{
	struct route_batch *b = xcalloc(1, sizeof(*b));
	db_stream_init(&b->inserts, s->id, insert_many_sql,
		       DB_JOB_WRITE | DB_JOB_CUSTOM_PLAN | DB_JOB_LANE_QUEUE, s->db, &s->reply);
	db_stream_init(&b->acks, s->id, ack_many_sql, DB_JOB_WRITE, s->db, &s->reply);
	return b;
}

static void row_free(struct send_row *r)
{
	xfree(r->mesh_id);
	xfree(r->member_id);
	xfree(r->session_pubkey);
	xfree(r->display_name);
	xfree(r->req_id);
	xfree(r->reply_to_id);
	xfree(r->client_message_id);
	xfree(r->request_fingerprint);
	xfree(r->target);
	xfree(r->priority);
	xfree(r->nonce);
	xfree(r->ciphertext);
}

/* A flushed batch of rows, owned by its insert job. */
struct sent {
	struct send_row *rows;
	size_t n;
	struct db_stream *stream;
};

static void sent_free(void *arg)
{
	struct sent *s = arg;
	for (size_t i = 0; i < s->n; i++)
		row_free(&s->rows[i]);
	xfree(s->rows);
	xfree(s);
}

void route_batch_free(struct route_batch *b)
{
	if (!b)
		return;
	for (size_t i = 0; i < b->n; i++)
		row_free(&b->rows[i]);
	xfree(b->rows);
	db_stream_free(&b->inserts);
	db_stream_free(&b->acks);
	xfree(b);
}

/* JavaScript string length: UTF-16 code units of the UTF-8 text. */
static size_t js_length(const char *s)
{
	size_t n = 0;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if ((*p & 0xC0) != 0x80)
			n += (*p >= 0xF0) ? 2 : 1;
	}
	return n;
}

static enum target_class classify(const char *t)
{
	if (strcmp(t, "*") == 0 || strcmp(t, "@all") == 0)
		return TARGET_BROADCAST;
	if (t[0] == '@')
		return TARGET_GROUP;
	if (t[0] == '#')
		return TARGET_TOPIC;
	return TARGET_DIRECT;
}

static bool valid_priority(const char *p)
{
	return strcmp(p, "now") == 0 || strcmp(p, "next") == 0 || strcmp(p, "low") == 0;
}

static int priority_label(const char *p)
{
	if (strcmp(p, "now") == 0)
		return ROUTE_NOW;
	if (strcmp(p, "low") == 0)
		return ROUTE_LOW;
	return ROUTE_NEXT;
}

static unsigned priority_bit(const char *p)
{
	if (strcmp(p, "now") == 0)
		return PRIO_NOW;
	if (strcmp(p, "low") == 0)
		return PRIO_LOW;
	return PRIO_NEXT;
}

/* The direct pre-flight: is anyone else there, and does one of them let us DM? */
static const char *preflight(struct conn *c, const char *target)
{
	struct presence *me = session_presence(c);
	const struct plist *l = mesh_find(me->mesh, target);
	bool found = false, allowed = false;
	for (size_t i = 0; i < l->n; i++) {
		struct presence *q = l->v[i];
		if (q == me)
			continue;
		found = true;
		if (grant_allows(q->member, me, "dm", true))
			allowed = true;
	}
	if (!found) {
		metrics_inc_label(METRIC_MESSAGES_REJECTED, MSG_REJECT_NO_RECIPIENT);
		return "no connected peer for target (not online, or targetSpec is your own key without another session)";
	}
	if (!allowed) {
		metrics_inc_label(METRIC_MESSAGES_DROPPED_BY_GRANT, GRANT_DM);
		return "blocked by recipient grants (sender lacks dm capability)";
	}
	return NULL;
}

static const char *opt_string(const json_t *msg, const char *key)
{
	const char *v = json_string_value(json_object_get(msg, key));
	return v && *v ? v : NULL;
}

static char *dup_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

static enum peer_status effective_status(struct presence *p, const struct config *cfg);

/* The presence a direct row can be claimed for right now, or NULL: one whose
 * socket is open, that has nothing queued before it (no backlog, no drain in
 * flight), lets the sender DM it, and whose status admits the priority.
 * Anything else takes the drain path, which keeps the order. */
static struct presence *fast_recipient(struct presence *from, const char *target,
				       const char *priority, const struct config *cfg)
{
	const struct plist *l = mesh_find(from->mesh, target);
	for (size_t i = 0; i < l->n; i++) {
		struct presence *q = l->v[i];
		if (q == from || q->backlog || q->drain_inflight || !presence_handshaken(q))
			continue;
		if (!grant_allows(q->member, from, "dm", false))
			continue;
		if (status_deliverable(effective_status(q, cfg)) & priority_bit(priority))
			return q;
	}
	return NULL;
}

/* Everything a slow-path row may be drained by is marked: later rows to the
 * same peers must not overtake it through the fast path. */
static void mark_backlog(struct presence *from, const char *target)
{
	const struct plist *l = mesh_find(from->mesh, target);
	for (size_t i = 0; i < l->n; i++) {
		const struct plist *mine = mesh_find(from->mesh, l->v[i]->member->pubkey);
		for (size_t k = 0; k < mine->n; k++)
			mine->v[k]->backlog = true;
		l->v[i]->backlog = true;
	}
}

void route_send(struct conn *c, const json_t *msg)
{
	struct presence *me = session_presence(c);
	const struct config *cfg = cfg_of(c);
	const char *id = json_string_value(json_object_get(msg, "id"));
	if (!id)
		id = "";

	/* 1. Rate limit per member; the token is spent even if a later step rejects. */
	if (!bucket_take(&me->member->send_bucket, cfg->send_rate_burst,
			 cfg->send_rate_limit_per_min, clock_mono_ms())) {
		char text[128];
		snprintf(text, sizeof(text), "rate_limit: max %d msg/min (burst %d) \xe2\x80\x94 slow down",
			 cfg->send_rate_limit_per_min, cfg->send_rate_burst);
		metrics_inc_label(METRIC_MESSAGES_REJECTED, MSG_REJECT_RATE_LIMIT);
		ack_error(c, id, text);
		return;
	}
	/* Q11: what the reference fails on silently gets an error ack the
	 * daemon treats as permanent. */
	const char *target = json_string_value(json_object_get(msg, "targetSpec"));
	const char *nonce = json_string_value(json_object_get(msg, "nonce"));
	const char *ciphertext = json_string_value(json_object_get(msg, "ciphertext"));
	const json_t *prio_v = json_object_get(msg, "priority");
	const char *priority = json_string_value(prio_v);
	const char *bad = !target ? "targetSpec" : !nonce ? "nonce" : !ciphertext ? "ciphertext"
		: (prio_v && !json_is_null(prio_v) && (!priority || !valid_priority(priority))) ? "priority"
		: NULL;
	if (bad) {
		char text[64];
		snprintf(text, sizeof(text), "invalid: %s", bad);
		metrics_inc_label(METRIC_MESSAGES_REJECTED, MSG_REJECT_PARSE_OR_HANDLER);
		ack_error(c, id, text);
		return;
	}
	/* 2. Size, counted as the reference counts (JavaScript string length). */
	size_t len = js_length(ciphertext) + js_length(nonce) + js_length(target);
	if (len > cfg->max_message_bytes) {
		char text[128];
		snprintf(text, sizeof(text), "payload too large: %zu bytes > MAX_MESSAGE_BYTES=%zu", len,
			 cfg->max_message_bytes);
		metrics_inc_label(METRIC_MESSAGES_REJECTED, MSG_REJECT_TOO_LARGE);
		ack_error(c, id, text);
		return;
	}
	/* 3. Direct targets must have someone to go to. */
	enum target_class cls = classify(target);
	if (cls == TARGET_DIRECT) {
		const char *err = preflight(c, target);
		if (err) {
			ack_error(c, id, err);
			return;
		}
	}
	/* 4. Queue, with this iteration's other sends: the ack waits for the commit. */
	struct route_batch *b = me->mesh->shard->route_batch;
	if (b->n == b->cap) {
		b->cap = b->cap ? b->cap * 2 : 64;
		b->rows = xrealloc(b->rows, b->cap * sizeof(*b->rows));
	}
	struct send_row *r = &b->rows[b->n++];
	memset(r, 0, sizeof(*r));
	id_new(r->id);
	memcpy(r->sender, me->id, sizeof(me->id));
	r->mesh_id = xstrdup(me->mesh->id);
	r->member_id = xstrdup(me->member->id);
	r->session_pubkey = dup_or_null(me->session_pubkey);
	r->display_name = dup_or_null(me->display_name);
	r->slot = c->slot;
	r->gen = c->gen;
	r->req_id = xstrdup(id);
	r->reply_to_id = dup_or_null(json_string_value(json_object_get(msg, "replyToId")));
	r->client_message_id = dup_or_null(opt_string(msg, "client_message_id"));
	r->request_fingerprint = dup_or_null(opt_string(msg, "request_fingerprint"));
	r->target = xstrdup(target);
	r->priority = xstrdup(priority ? priority : "next");
	r->nonce = xstrdup(nonce);
	r->ciphertext = xstrdup(ciphertext);
	r->priority_given = priority != NULL;
	r->cls = cls;
	if (cls == TARGET_DIRECT) {
		struct presence *q = fast_recipient(me, target, r->priority, cfg);
		if (q)
			memcpy(r->claim, q->id, sizeof(q->id));
		else
			mark_backlog(me, target);
	}

}

static void push_claimed(struct presence *p, const struct send_row *r, const char *sender_pubkey,
			 const char *created_at);
static void arm_redelivery(struct presence *p);

/* `@name` reaches a peer in group `name` or in any group below it
 * (`name/…`): the hierarchy the reference's drains mean (§6.3), applied to
 * the push itself since multicast rows are never drained (Q14). */
static bool in_group(const struct presence *p, const char *name)
{
	size_t i, len = strlen(name);
	json_t *g;
	json_array_foreach(p->groups, i, g) {
		const char *n = json_string_value(json_object_get(g, "name"));
		if (n && strncmp(n, name, len) == 0 && (n[len] == '\0' || n[len] == '/'))
			return true;
	}
	return false;
}

/* §6.5.2: pushed at once, whatever the recipients' status; one serialisation. */
static void fan_out_multicast(struct presence *from, const struct send_row *r)
{
	char iso[32];
	log_iso8601(iso, clock_wall_ms());
	struct strbuf b = { 0 };
	struct jsonw w;
	jsonw_begin(&w, &b);
	jsonw_str(&w, "type", "push");
	jsonw_str(&w, "messageId", r->id);
	jsonw_str(&w, "meshId", from->mesh->id);
	jsonw_str(&w, "senderPubkey", presence_pubkey(from));
	jsonw_str(&w, "senderMemberPubkey", from->member->pubkey);
	jsonw_str(&w, "senderMemberId", from->member->id);
	jsonw_str(&w, "senderName", from->display_name);
	if (r->priority_given)
		jsonw_str(&w, "priority", r->priority);
	jsonw_str(&w, "nonce", r->nonce);
	jsonw_str(&w, "ciphertext", r->ciphertext);
	jsonw_str(&w, "createdAt", iso);
	if (r->reply_to_id)
		jsonw_str(&w, "replyToId", r->reply_to_id);
	jsonw_end(&w);
	const char *text = b.p;
	size_t len = b.len;
	const char *group = r->cls == TARGET_GROUP ? r->target + 1 : NULL;
	int label = priority_label(r->priority);
	for (struct presence *to = from->mesh->head; to; to = to->next) {
		if (to->member == from->member || !to->visible)
			continue;
		if (group && !in_group(to, group))
			continue;
		if (!grant_allows(to->member, from, "broadcast", false)) {
			metrics_inc_label(METRIC_MESSAGES_DROPPED_BY_GRANT, GRANT_BROADCAST);
			continue;
		}
		if (presence_send(to, text, len))
			metrics_inc_label(METRIC_MESSAGES_ROUTED, label);
	}
	xfree(b.p);
}

/* Direct: every connection of every member the target resolves to is
 * asked to drain; the one whose key matches the row claims it. */
static void fan_out_direct(struct presence *from, const char *target)
{
	struct mesh *m = from->mesh;
	const struct plist *l = mesh_find(m, target);
	struct member *seen[16];
	size_t nseen = 0;
	for (size_t i = 0; i < l->n && nseen < 16; i++) {
		struct member *mb = l->v[i]->member;
		bool dup = false;
		for (size_t k = 0; k < nseen; k++)
			dup |= seen[k] == mb;
		if (!dup)
			seen[nseen++] = mb;
	}
	for (size_t k = 0; k < nseen; k++) {
		const struct plist *mine = mesh_find(m, seen[k]->pubkey);
		for (size_t i = 0; i < mine->n; i++) {
			struct presence *q = mine->v[i];
			if (q == from)
				continue;
			if (!grant_allows(q->member, from, "dm", false)) {
				metrics_inc_label(METRIC_MESSAGES_DROPPED_BY_GRANT, GRANT_DM);
				continue;
			}
			route_drain(q);
		}
	}
	/* A session key that is not an index of its member's list (another
	 * member's session key) was matched above through `l` itself. */
	for (size_t i = 0; i < l->n; i++) {
		struct presence *q = l->v[i];
		if (q != from && strcmp(q->member->pubkey, target) != 0 &&
		    grant_allows(q->member, from, "dm", false))
			route_drain(q);
	}
}

/* SEMANTICS §D: message_sent, once the row is queued (write-behind: the
 * send's ack does not wait for it). */
static void audit_sent(struct shard *s, const struct send_row *r)
{
	json_t *payload = json_object();
	json_object_set_new(payload, "targetSpec", json_string(r->target));
	json_object_set_new(payload, "priority", json_string(r->priority));
	shard_audit(s, audit_entry(r->mesh_id, "message_sent", r->member_id, r->display_name,
				   payload, clock_wall_ms()));
	json_decref(payload);
}

/* The batch committed (or failed): ack each send, then fan out. */
static void sent_done(struct db_job *j, void *owner)
{
	struct sent *batch = j->arg;
	struct shard *sh = owner;
	db_stream_done(batch->stream);
	char now_iso[32];
	log_iso8601(now_iso, clock_wall_ms());
	/* created_at is the transaction's now(), the same for every row. */
	const char *created = j->ok && PQntuples(j->res) > 0 ? PQgetvalue(j->res, 0, 0) : now_iso;
	for (size_t i = 0; i < batch->n; i++) {
		const struct send_row *r = &batch->rows[i];
		struct conn *c = conntab_get(sh->conns, r->slot, r->gen);
		struct presence *from = shard_presence(sh, r->mesh_id, r->sender);
		bool live = c && from && session_presence(c) == from;
		if (!j->ok) {
			metrics_inc_label(METRIC_MESSAGES_REJECTED, MSG_REJECT_PARSE_OR_HANDLER);
			if (live) {
				char text[256];
				/* Not a "permanent" pattern for the daemon: it retries. */
				snprintf(text, sizeof(text), "internal: %s", j->error);
				ack_error(c, r->req_id, text);
			}
			continue;
		}
		if (live)
			ack_ok(c, r->req_id, r->id);
		audit_sent(sh, r);
		if (!from)
			continue;
		if (r->cls == TARGET_BROADCAST || r->cls == TARGET_GROUP) {
			mesh_remember_multicast(from->mesh, r->id);
			fan_out_multicast(from, r);
		} else if (r->cls == TARGET_DIRECT) {
			struct presence *to = r->claim[0] ? shard_presence(sh, r->mesh_id, r->claim) : NULL;
			if (to)
				push_claimed(to, r, presence_pubkey(from), created);
			else if (!r->claim[0])
				fan_out_direct(from, r->target);
			/* Claimed for a presence that left: its lease runs out and a
			 * later drain delivers it. */
		}
	}
}

void route_flush(struct shard *s, bool force)
{
	MESHD_ASSERT_ON_WORKER(s);
	struct route_batch *b = s->route_batch;
	db_stream_flush(&b->acks, force);
	if (!db_stream_may_send(&b->inserts, b->n, force))
		return;
	struct strbuf text = { 0 };
	strbuf_addc(&text, '[');
	for (size_t i = 0; i < b->n; i++) {
		const struct send_row *r = &b->rows[i];
		struct jsonw o;
		if (i > 0)
			strbuf_addc(&text, ',');
		jsonw_begin(&o, &text);
		jsonw_str(&o, "id", r->id);
		jsonw_str(&o, "mesh", r->mesh_id);
		jsonw_str(&o, "sender", r->member_id);
		jsonw_str(&o, "spk", r->session_pubkey);
		jsonw_str(&o, "target", r->target);
		jsonw_str(&o, "prio", r->priority);
		jsonw_str(&o, "nonce", r->nonce);
		jsonw_str(&o, "ct", r->ciphertext);
		jsonw_str(&o, "cmid", r->client_message_id);
		jsonw_str(&o, "fp", r->request_fingerprint);
		jsonw_bool(&o, "delivered", r->cls == TARGET_BROADCAST || r->cls == TARGET_GROUP);
		jsonw_str(&o, "claim", r->claim[0] ? r->claim : NULL);
		jsonw_end(&o);
	}
	strbuf_addc(&text, ']');
	struct sent *batch = xcalloc(1, sizeof(*batch));
	batch->rows = b->rows;
	batch->n = b->n;
	batch->stream = &b->inserts;
	b->rows = NULL;
	b->n = b->cap = 0;
	struct db_job *j = db_job_new(b->inserts.sql, b->inserts.flags, &s->reply, sent_done, batch);
	j->rows = (unsigned)batch->n;
	j->free_arg = sent_free;
	db_job_param(j, text.p);
	db_job_paramf(j, "%d", s->cfg->claim_lease_seconds);
	xfree(text.p);
	db_stream_send(&b->inserts, j);
}

/* ---- drains (§6.6) ------------------------------------------------------------ */

static void drain_done(struct db_job *j, void *owner);

static void redeliver_cb(evutil_socket_t fd, short what, void *arg)
{
	route_drain(arg);
}

/* The status a drain gates on (§6.6): dnd; a fresh hook status; else what
 * the transcript says, written back with source jsonl. */
static enum peer_status effective_status(struct presence *p, const struct config *cfg)
{
	if (p->status == STATUS_DND)
		return STATUS_DND;
	int64_t now = clock_wall_ms();
	struct status_state st = { p->status, p->source, p->status_updated_ms };
	int64_t window = (int64_t)cfg->hook_fresh_window_seconds * 1000;
	if (status_is_hook_fresh(&st, now, window))
		return p->status;
	enum peer_status inferred = jsonl_infer(cfg->claude_projects_dir, p->cwd);
	if (inferred != p->status || p->source != SOURCE_JSONL)
		presence_write_status(p, inferred, SOURCE_JSONL);
	return p->status;
}

void route_drain(struct presence *p)
{
	struct conn *c = p->conn;
	if (!presence_handshaken(p) || c->state != CONN_WS)
		return; /* Q2: never claim for a socket that is not open */
	if (p->drain_inflight) {
		p->drain_again = true;
		return;
	}
	struct shard *s = p->mesh->shard;
	MESHD_ASSERT_ON_WORKER(s);
	const struct config *cfg = s->cfg;
	p->drain_inflight = true;
	p->drain_again = false;
	unsigned gate = status_deliverable(effective_status(p, cfg));
	p->drain_gate = gate;
	char prios[32] = "";
	if (gate & PRIO_NOW)
		strcat(prios, "now,");
	if (gate & PRIO_NEXT)
		strcat(prios, "next,");
	if (gate & PRIO_LOW)
		strcat(prios, "low,");
	prios[strlen(prios) - 1] = '\0';

	struct db_job *j = db_job_new(drain_sql, DB_JOB_WRITE | DB_JOB_CUSTOM_PLAN | DB_JOB_LANE_QUEUE,
				      &s->reply, drain_done, NULL);
	db_job_param(j, p->mesh->id);
	db_job_param(j, prios);
	db_job_param(j, p->member->pubkey);
	db_job_param(j, p->session_pubkey);
	db_job_param(j, p->member->id);
	db_job_param(j, p->id);
	db_job_paramf(j, "%d", cfg->claim_lease_seconds);
	j->conn_slot = c->slot;
	j->conn_gen = c->gen;
	j->mesh_id = xstrdup(p->mesh->id);
	memcpy(j->presence_id, p->id, sizeof(p->id));
	db_submit(s->db, j);
}

/* §6.5.1, the drained push. */
static void push_direct(struct presence *p, const char *message_id, const char *sender_pubkey,
			const char *priority, const char *nonce, const char *ciphertext,
			const char *created_at, const char *client_message_id,
			const char *request_fingerprint)
{
	struct strbuf b = { 0 };
	struct jsonw w;
	jsonw_begin(&w, &b);
	jsonw_str(&w, "type", "push");
	jsonw_str(&w, "messageId", message_id);
	jsonw_str(&w, "meshId", p->mesh->id);
	jsonw_str(&w, "senderPubkey", sender_pubkey);
	jsonw_str(&w, "priority", priority);
	jsonw_str(&w, "nonce", nonce);
	jsonw_str(&w, "ciphertext", ciphertext);
	jsonw_str(&w, "createdAt", created_at);
	if (client_message_id)
		jsonw_str(&w, "client_message_id", client_message_id);
	if (request_fingerprint)
		jsonw_str(&w, "request_fingerprint", request_fingerprint);
	jsonw_end(&w);
	if (presence_send(p, b.p, b.len))
		metrics_inc_label(METRIC_MESSAGES_ROUTED, priority_label(priority));
	xfree(b.p);
}

static void push_claimed(struct presence *p, const struct send_row *r, const char *sender_pubkey,
			 const char *created_at)
{
	push_direct(p, r->id, sender_pubkey, r->priority, r->nonce, r->ciphertext, created_at,
		    r->client_message_id, r->request_fingerprint);
	arm_redelivery(p);
}

/* Not acked within the lease: claim again then (the reference waits for an
 * unrelated trigger; we don't). */
static void arm_redelivery(struct presence *p)
{
	struct shard *s = p->mesh->shard;
	if (!p->redeliver_timer)
		p->redeliver_timer = evtimer_new(s->base, redeliver_cb, p);
	if (!p->redeliver_timer) {
		/* Without it the rows wait for the next trigger (a hello, a send). */
		log_error("presence_timer_failed", "mesh=%s presence=%s", p->mesh->id, p->id);
		return;
	}
	struct timeval tv = { s->cfg->claim_lease_seconds, 100 * 1000 };
	evtimer_add(p->redeliver_timer, &tv);
}

static const char *value_or_null(PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? NULL : PQgetvalue(res, row, col);
}

static void drain_done(struct db_job *j, void *owner)
{
	struct shard *s = owner;
	struct presence *p = shard_presence(s, j->mesh_id, j->presence_id);
	if (!p) {
		/* Gone meanwhile: what it claimed comes back when the lease ends. */
		shard_count_stale(s);
		return;
	}
	p->drain_inflight = false;
	if (!j->ok) {
		log_warn("drain_failed", "mesh=%s presence=%s error=%s", j->mesh_id, p->id, j->error);
		p->backlog = true;
	} else {
		PGresult *res = j->res;
		int n = PQntuples(res);
		for (int i = 0; i < n; i++)
			push_direct(p, PQgetvalue(res, i, 0), PQgetvalue(res, i, 7), PQgetvalue(res, i, 1),
				    PQgetvalue(res, i, 2), PQgetvalue(res, i, 3), PQgetvalue(res, i, 4),
				    value_or_null(res, i, 5), value_or_null(res, i, 6));
		/* The first drain of a presence re-drains once too, for rows a
		 * previous process (or socket) claimed and never saw acked. */
		if (n > 0 || !p->drained_once) {
			p->drained_once = true;
			arm_redelivery(p);
		}
		/* Everything eligible is claimed: new rows may take the fast path,
		 * unless the status held some back or more came meanwhile. */
		p->backlog = p->drain_again || p->drain_gate != (PRIO_NOW | PRIO_NEXT | PRIO_LOW);
	}
	if (p->drain_again)
		route_drain(p);
}

/* ---- client_ack (§6.7) --------------------------------------------------------- */

void route_client_ack(struct conn *c, const json_t *msg)
{
	struct presence *p = session_presence(c);
	const char *cid = opt_string(msg, "clientMessageId");
	const char *bid = opt_string(msg, "brokerMessageId");
	if (!cid && !bid)
		return;
	/* The daemon acks multicast pushes too (by messageId, which it also
	 * sends as clientMessageId): those rows are delivered already. */
	if (mesh_is_recent_multicast(p->mesh, bid ? bid : cid))
		return;
	json_t *a = json_object();
	json_object_set_new(a, "mesh", json_string(p->mesh->id));
	json_object_set_new(a, "bid", bid ? json_string(bid) : json_null());
	json_object_set_new(a, "cid", cid ? json_string(cid) : json_null());
	json_object_set_new(a, "mpk", json_string(p->member->pubkey));
	json_object_set_new(a, "spk", p->session_pubkey ? json_string(p->session_pubkey) : json_null());
	db_stream_add(&p->mesh->shard->route_batch->acks, a);
}

/* ---- message_status (§6.9) ------------------------------------------------------- */

struct status_ctx {
	char *message_id; /* as given */
	char *req_id;
};

static bool base62(const char *s)
{
	for (; *s; s++)
		if (!isalnum((unsigned char)*s))
			return false;
	return true;
}

/* The length of String(value) in JavaScript, for the error text. */
static size_t js_string_length(const json_t *v)
{
	if (!v)
		return 0;
	if (json_is_string(v))
		return js_length(json_string_value(v));
	char buf[64];
	if (json_is_integer(v))
		return (size_t)snprintf(buf, sizeof(buf), "%lld", (long long)json_integer_value(v));
	if (json_is_true(v))
		return 4;
	if (json_is_false(v))
		return 5;
	if (json_is_null(v))
		return 4;
	if (json_is_object(v))
		return 15; /* "[object Object]" */
	char *t = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	size_t n = t ? strlen(t) : 0;
	free(t);
	return n;
}

static void status_error(struct conn *c, const char *code, const char *message, const char *req_id)
{
	proto_send_error(c, code, message, req_id);
}

static void status_done(struct db_job *j, void *owner);

void route_message_status(struct conn *c, const json_t *msg)
{
	const json_t *v = json_object_get(msg, "messageId");
	const char *id = json_string_value(v);
	const char *req_id = json_string_value(json_object_get(msg, "_reqId"));
	size_t len = id ? strlen(id) : 0;
	if (!id || len < 8 || len > 32 || !base62(id)) {
		char text[96];
		snprintf(text, sizeof(text), "messageId must be 8-32 base62 chars (got %zu)",
			 js_string_length(v));
		status_error(c, "invalid_argument", text, req_id);
		return;
	}
	struct presence *me = session_presence(c);
	struct shard *s = me->mesh->shard;
	struct status_ctx *ctx = xcalloc(1, sizeof(*ctx));
	ctx->message_id = xstrdup(id);
	ctx->req_id = req_id ? xstrdup(req_id) : NULL;
	struct db_job *j = db_job_new(len == 32 ? status_exact_sql : status_prefix_sql,
				      DB_JOB_FAIL_FAST, &s->reply, status_done, ctx);
	db_job_param(j, me->mesh->id);
	db_job_param(j, id);
	j->conn_slot = c->slot;
	j->conn_gen = c->gen;
	db_submit(s->db, j);
}

static json_t *recipient(const struct presence *p, const char *status)
{
	json_t *r = json_object();
	json_object_set_new(r, "name", json_string(p->hello_display_name ? p->hello_display_name
									: p->member->display_name));
	json_object_set_new(r, "pubkey", json_string(presence_pubkey(p)));
	json_object_set_new(r, "status", json_string(status));
	return r;
}

static json_t *recipients(struct mesh *m, const char *target, bool delivered)
{
	const char *st = delivered ? "delivered" : "held";
	json_t *a = json_array();
	enum target_class cls = classify(target);
	int64_t now = clock_mono_ms();
	for (struct presence *p = m->head; p; p = p->next) {
		if (!presence_listed(p, now))
			continue; /* not a listed (non-disconnected) presence */
		if (cls == TARGET_BROADCAST) {
			json_array_append_new(a, recipient(p, st));
		} else if (cls == TARGET_GROUP) {
			if (in_group(p, target + 1))
				json_array_append_new(a, recipient(p, st));
		} else if (strcmp(presence_pubkey(p), target) == 0) {
			json_array_append_new(a, recipient(p, st));
			return a;
		}
	}
	if (cls != TARGET_BROADCAST && cls != TARGET_GROUP) {
		char prefix[17];
		snprintf(prefix, sizeof(prefix), "%s", target);
		json_t *r = json_object();
		json_object_set_new(r, "name", json_string("unknown"));
		json_object_set_new(r, "pubkey", json_string(prefix));
		json_object_set_new(r, "status", json_string("disconnected"));
		json_array_append_new(a, r);
	}
	return a;
}

static void status_done(struct db_job *j, void *owner)
{
	struct status_ctx *ctx = j->arg;
	struct conn *c = shard_conn(owner, j->conn_slot, j->conn_gen);
	if (!c || !session_presence(c)) {
		/* gone */
	} else if (!j->ok) {
		metrics_inc_label(METRIC_MESSAGES_REJECTED, MSG_REJECT_PARSE_OR_HANDLER);
	} else if (PQntuples(j->res) == 0) {
		status_error(c, "not_found", "message not found", ctx->req_id);
	} else if (PQntuples(j->res) > 1) {
		status_error(c, "ambiguous_prefix",
			     "prefix matched 2 messages \xe2\x80\x94 use a longer id", ctx->req_id);
	} else {
		PGresult *r = j->res;
		bool delivered = strcmp(PQgetvalue(r, 0, 2), "t") == 0;
		json_t *o = json_object();
		json_object_set_new(o, "type", json_string("message_status_result"));
		json_object_set_new(o, "messageId", json_string(ctx->message_id));
		json_object_set_new(o, "targetSpec", json_string(PQgetvalue(r, 0, 1)));
		json_object_set_new(o, "delivered", json_boolean(delivered));
		json_object_set_new(o, "deliveredAt",
				    delivered ? json_string(PQgetvalue(r, 0, 3)) : json_null());
		json_object_set_new(o, "recipients",
				    recipients(session_presence(c)->mesh, PQgetvalue(r, 0, 1), delivered));
		if (ctx->req_id)
			json_object_set_new(o, "_reqId", json_string(ctx->req_id));
		proto_send_json(c, o);
	}
	xfree(ctx->message_id);
	xfree(ctx->req_id);
	xfree(ctx);
}
