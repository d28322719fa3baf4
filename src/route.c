/* route — send: validation, batch insert, ack, fan-out; see include/meshd/route.h. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include <libpq-fe.h>

#include "meshd/alloc.h"
#include "meshd/audit.h"
#include "meshd/clock.h"
#include "meshd/config.h"
#include "meshd/conn.h"
#include "meshd/conntab.h"
#include "meshd/dbjob.h"
#include "meshd/dbstream.h"
#include "meshd/drain.h"
#include "meshd/grant.h"
#include "meshd/id.h"
#include "meshd/jscompat.h"
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
	" RETURNING " SQL_ISO8601("created_at");

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

/* ---- send (§6.1) ------------------------------------------------------------ */

/* A send waiting for this iteration's insert. */
struct send_row {
	char id[ID_LEN + 1];
	char sender[ID_LEN + 1];       /* presence id */
	char claim[ID_LEN + 1];        /* fast path: the presence it is claimed for, or "" */
	uint32_t claim_slot, claim_gen; /* ... and its socket then */
	char *mesh_id;
	/* The sender as it was at the send: the row and its audit entry need
	 * them even if the presence is gone by the flush or the commit. */
	char *member_id, *session_pubkey, *display_name;
	uint32_t slot, gen;            /* the sender's connection */
	int64_t arrived_ns;            /* meshd_send_commit_seconds */
	char *req_id;                  /* send.id, "" when absent */
	char *reply_to_id;             /* echoed on multicast pushes */
	char *client_message_id, *request_fingerprint;
	char *target, *priority, *nonce, *ciphertext;
	bool priority_given;
	enum route_target cls;
};

/* A batch is sent at this many bytes of ciphertext too, whatever is in
 * flight (like DB_STREAM_ROWS_MAX for rows): a stalled database then meets
 * DB_MAX_PENDING_BYTES, not the worker's memory. */
#define ROUTE_BATCH_BYTES_MAX (1u << 20)

struct route_batch {
	struct send_row *rows;
	size_t n, cap;
	size_t bytes;             /* the rows' ciphertexts and nonces */
	struct db_stream inserts; /* its own rows unused: sends carry more than JSON */
};

struct route_batch *route_batch_new(struct shard *s)
{
	struct route_batch *b = xcalloc(1, sizeof(*b));
	db_stream_init(&b->inserts, s->id, insert_many_sql,
		       DB_JOB_WRITE | DB_JOB_CUSTOM_PLAN | DB_JOB_LANE_QUEUE, s->db, &s->reply);
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
	xfree(b);
}

enum route_target route_target_class(const char *t)
{
	if (strcmp(t, "*") == 0 || strcmp(t, "@all") == 0)
		return ROUTE_TARGET_BROADCAST;
	if (t[0] == '@')
		return ROUTE_TARGET_GROUP;
	if (t[0] == '#')
		return ROUTE_TARGET_TOPIC;
	return ROUTE_TARGET_DIRECT;
}

static bool valid_priority(const char *p)
{
	return strcmp(p, "now") == 0 || strcmp(p, "next") == 0 || strcmp(p, "low") == 0;
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

static char *dup_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

/* The presence a direct row can be claimed for right now, or NULL: one whose
 * socket is open, that has nothing queued before it (no backlog, no drain in
 * flight), lets the sender DM it, and whose status admits the priority.
 * Anything else takes the drain path, which keeps the order. */
static struct presence *fast_recipient(struct presence *from, const char *target,
				       const char *priority)
{
	const struct plist *l = mesh_find(from->mesh, target);
	for (size_t i = 0; i < l->n; i++) {
		struct presence *q = l->v[i];
		if (q == from || q->backlog || q->drain_inflight || !presence_handshaken(q) ||
		    drain_needed(q))
			continue;
		if (!grant_allows(q->member, from, "dm", false))
			continue;
		if (status_deliverable(presence_effective_status(q)) & priority_bit(priority))
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
	const char *id = js_field(msg, "id");
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
	const char *target = js_field(msg, "targetSpec");
	const char *nonce = js_field(msg, "nonce");
	const char *ciphertext = js_field(msg, "ciphertext");
	const json_t *prio_v = json_object_get(msg, "priority");
	const char *priority = js_string(prio_v);
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
	size_t len = js_utf16_length(ciphertext) + js_utf16_length(nonce) +
		     js_utf16_length(target);
	if (len > cfg->max_message_bytes) {
		char text[128];
		snprintf(text, sizeof(text), "payload too large: %zu bytes > MAX_MESSAGE_BYTES=%zu", len,
			 cfg->max_message_bytes);
		metrics_inc_label(METRIC_MESSAGES_REJECTED, MSG_REJECT_TOO_LARGE);
		ack_error(c, id, text);
		return;
	}
	/* 3. Direct targets must have someone to go to. */
	enum route_target cls = route_target_class(target);
	if (cls == ROUTE_TARGET_DIRECT) {
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
	r->arrived_ns = clock_mono_ns();
	r->req_id = xstrdup(id);
	r->reply_to_id = dup_or_null(js_field(msg, "replyToId"));
	r->client_message_id = dup_or_null(js_field_truthy(msg, "client_message_id"));
	r->request_fingerprint = dup_or_null(js_field_truthy(msg, "request_fingerprint"));
	r->target = xstrdup(target);
	r->priority = xstrdup(priority ? priority : "next");
	r->nonce = xstrdup(nonce);
	r->ciphertext = xstrdup(ciphertext);
	b->bytes += strlen(ciphertext) + strlen(nonce);
	r->priority_given = priority != NULL;
	r->cls = cls;
	if (cls == ROUTE_TARGET_DIRECT) {
		struct presence *q = fast_recipient(me, target, r->priority);
		if (q) {
			memcpy(r->claim, q->id, sizeof(q->id));
			r->claim_slot = q->conn->slot;
			r->claim_gen = q->conn->gen;
		} else {
			mark_backlog(me, target);
		}
	}

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
	const char *group = r->cls == ROUTE_TARGET_GROUP ? r->target + 1 : NULL;
	int label = metrics_priority_label(r->priority);
	for (struct presence *to = from->mesh->head; to; to = to->next) {
		if (to->member == from->member || !to->visible)
			continue;
		if (group && !presence_in_group(to, group))
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
			drain_presence(q);
		}
	}
	/* A session key that is not an index of its member's list (another
	 * member's session key) was matched above through `l` itself. */
	for (size_t i = 0; i < l->n; i++) {
		struct presence *q = l->v[i];
		if (q != from && strcmp(q->member->pubkey, target) != 0 &&
		    grant_allows(q->member, from, "dm", false))
			drain_presence(q);
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
/* The acks of a committed batch, each to its sender if it is still there. */
static void ack_batch(struct shard *sh, const struct sent *batch, const struct db_job *j)
{
	for (size_t i = 0; i < batch->n; i++) {
		const struct send_row *r = &batch->rows[i];
		struct conn *c = conntab_get(sh->conns, r->slot, r->gen);
		struct presence *from = shard_presence(sh, r->mesh_id, r->sender);
		if (!j->ok)
			metrics_inc_label(METRIC_MESSAGES_REJECTED, MSG_REJECT_PARSE_OR_HANDLER);
		if (!c || !from || session_presence(c) != from)
			continue;
		if (j->ok) {
			ack_ok(c, r->req_id, r->id);
		} else {
			char text[256];
			/* Not a "permanent" pattern for the daemon: it retries. */
			snprintf(text, sizeof(text), "internal: %s", j->error);
			ack_error(c, r->req_id, text);
		}
	}
}

/* The batch committed (or failed): ack each send, then fan out.  Every ack
 * is handed to the kernel before the first push of the batch (§6.1 step 6):
 * a client holding both sockets matches a push to its send by the ack's
 * messageId, so a push that overtakes its ack is lost to it until the
 * redelivery. */
static void sent_done(struct db_job *j, void *owner)
{
	struct sent *batch = j->arg;
	struct shard *sh = owner;
	db_stream_done(batch->stream);
	ack_batch(sh, batch, j);
	if (!j->ok)
		return;
	conntab_uncork_all(sh->conns);
	int64_t now_ns = clock_mono_ns();
	for (size_t i = 0; i < batch->n; i++)
		metrics_observe(HIST_SEND_COMMIT, 0, (double)(now_ns - batch->rows[i].arrived_ns) / 1e9);
	char now_iso[32];
	log_iso8601(now_iso, clock_wall_ms());
	/* created_at is the transaction's now(), the same for every row. */
	const char *created = PQntuples(j->res) > 0 ? PQgetvalue(j->res, 0, 0) : now_iso;
	for (size_t i = 0; i < batch->n; i++) {
		const struct send_row *r = &batch->rows[i];
		struct presence *from = shard_presence(sh, r->mesh_id, r->sender);
		audit_sent(sh, r);
		if (!from)
			continue;
		if (r->cls == ROUTE_TARGET_BROADCAST || r->cls == ROUTE_TARGET_GROUP) {
			mesh_remember_multicast(from->mesh, r->id);
			fan_out_multicast(from, r);
		} else if (r->cls == ROUTE_TARGET_DIRECT) {
			struct presence *to = r->claim[0] ? shard_presence(sh, r->mesh_id, r->claim) : NULL;
			if (to) {
				struct drain_row row = {
					.message_id = r->id, .sender_pubkey = presence_pubkey(from),
					.priority = r->priority, .nonce = r->nonce,
					.ciphertext = r->ciphertext, .created_at = created,
					.client_message_id = r->client_message_id,
					.request_fingerprint = r->request_fingerprint,
				};
				drain_push_claimed(to, r->claim_slot, r->claim_gen, &row);
			} else {
				/* Claimed for a presence that left: its detach
				 * released the row, which the others may take. */
				fan_out_direct(from, r->target);
			}
		}
	}
}

/* The socket a fast-path row is claimed for is still the presence's. */
static bool claim_holds(struct shard *s, const struct send_row *r)
{
	struct presence *q = shard_presence(s, r->mesh_id, r->claim);
	return q && q->conn && q->conn->slot == r->claim_slot && q->conn->gen == r->claim_gen;
}

void route_flush(struct shard *s, bool force)
{
	MESHD_ASSERT_ON_WORKER(s);
	struct route_batch *b = s->route_batch;
	if (!db_stream_may_send(&b->inserts, b->n, force) &&
	    !(b->n > 0 && b->bytes >= ROUTE_BATCH_BYTES_MAX))
		return;
	size_t kept = 0; /* ciphertexts kept for the pushes after the commit */
	struct strbuf text = { 0 };
	strbuf_addc(&text, '[');
	for (size_t i = 0; i < b->n; i++) {
		struct send_row *r = &b->rows[i];
		if (r->claim[0] && !claim_holds(s, r)) {
			/* Its socket closed before the insert: the release went
			 * first, so the row goes in unclaimed. */
			r->claim[0] = '\0';
		}
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
		jsonw_bool(&o, "delivered",
			   r->cls == ROUTE_TARGET_BROADCAST || r->cls == ROUTE_TARGET_GROUP);
		jsonw_str(&o, "claim", r->claim[0] ? r->claim : NULL);
		jsonw_end(&o);
		if (r->cls == ROUTE_TARGET_DIRECT && !r->claim[0]) {
			/* Nobody is pushed it at the commit: a drain reads it. */
			xfree(r->ciphertext);
			r->ciphertext = NULL;
		} else {
			kept += strlen(r->ciphertext) + strlen(r->nonce);
		}
	}
	strbuf_addc(&text, ']');
	struct sent *batch = xcalloc(1, sizeof(*batch));
	batch->rows = b->rows;
	batch->n = b->n;
	batch->stream = &b->inserts;
	b->rows = NULL;
	b->n = b->cap = 0;
	b->bytes = 0;
	struct db_job *j = db_job_new(b->inserts.sql, b->inserts.flags, &s->reply, sent_done, batch);
	j->rows = (unsigned)batch->n;
	j->free_arg = sent_free;
	j->bytes = kept + batch->n * sizeof(struct send_row);
	/* Trimmed: a strbuf's capacity may be twice its text. */
	db_job_param_take(j, xrealloc(text.p, text.len + 1), text.len);
	db_job_paramf(j, "%d", s->cfg->claim_lease_seconds);
	db_stream_send(&b->inserts, j);
}
