/* drain — claiming and pushing a presence's direct rows; see include/meshd/drain.h. */
#include "config.h"

#include <string.h>

#include <event2/event.h>
#include <libpq-fe.h>

#include "meshd/alloc.h"
#include "meshd/config.h"
#include "meshd/conn.h"
#include "meshd/db.h"
#include "meshd/dbjob.h"
#include "meshd/drain.h"
#include "meshd/jsonw.h"
#include "meshd/log.h"
#include "meshd/metrics.h"
#include "meshd/presence.h"
#include "meshd/shard.h"
#include "meshd/status.h"
#include "meshd/strbuf.h"
#include "meshd/thread.h"

#define ISO_SQL(col) "to_char(" col ", 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

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

static void drain_done(struct db_job *j, void *owner);

static void redeliver_cb(evutil_socket_t fd, short what, void *arg)
{
	drain_presence(arg);
}

void drain_presence(struct presence *p)
{
	struct shard *s = p->mesh->shard;
	MESHD_ASSERT_ON_WORKER(s);
	struct conn *c = p->conn;
	if (!presence_handshaken(p) || c->state != CONN_WS)
		return; /* Q2: never claim for a socket that is not open */
	if (p->drain_inflight) {
		p->drain_again = true;
		return;
	}
	const struct config *cfg = s->cfg;
	p->drain_inflight = true;
	p->drain_again = false;
	unsigned gate = status_deliverable(presence_effective_status(p));
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
		metrics_inc_label(METRIC_MESSAGES_ROUTED, metrics_priority_label(priority));
	xfree(b.p);
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

void drain_push_claimed(struct presence *p, const char *message_id, const char *sender_pubkey,
			const char *priority, const char *nonce, const char *ciphertext,
			const char *created_at, const char *client_message_id,
			const char *request_fingerprint)
{
	MESHD_ASSERT_ON_WORKER(p->mesh->shard);
	push_direct(p, message_id, sender_pubkey, priority, nonce, ciphertext, created_at,
		    client_message_id, request_fingerprint);
	arm_redelivery(p);
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
		drain_presence(p);
}
