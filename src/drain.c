/* drain — claiming and pushing a presence's direct rows; see include/meshd/drain.h. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <libpq-fe.h>

#include "meshd/alloc.h"
#include "meshd/claims.h"
#include "meshd/clock.h"
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

/* A page: at most this many rows (and low_water() bytes of payload). */
#define DRAIN_PAGE_ROWS 256
/* A push's bytes besides its nonce and ciphertext, about (ids, keys, time). */
#define DRAIN_ROW_OVERHEAD_SQL "512"

/* The rows addressed to a presence: its member key $3, its session key $4,
 * the topics of member $5.  One array, so the target is an index condition
 * (meshd_message_queue_pending_idx). */
#define PRESENCE_TARGETS_SQL \
	" AND q.target_spec = ANY (ARRAY[$3, $4]::text[] ||" \
	" ARRAY(SELECT '#' || tm.topic_id FROM mesh.topic_member tm WHERE tm.member_id = $5))"

/* Claims, in order, a page of what p may receive now (§6.6 step 2–3):
 * at most $9 rows and about $11 bytes, the first row whatever its size.
 * Rows a send claimed for p and the broker has not pushed yet ($10) are
 * taken again by id.  Multicast rows are never selected: they are
 * inserted delivered (Q14).  Every row returned carries how many the page
 * found, so a page cut short by its byte budget is known to be one. */
static const char drain_sql[] =
	"WITH cand AS ("
	" SELECT q.id, q.created_at, octet_length(q.nonce) + octet_length(q.ciphertext) + "
	DRAIN_ROW_OVERHEAD_SQL " AS sz FROM mesh.message_queue q"
	" WHERE q.mesh_id = $1 AND q.delivered_at IS NULL"
	" AND (q.claimed_at IS NULL OR q.claim_expires_at IS NULL OR q.claim_expires_at < now()"
	" OR q.id = ANY ($10::text[]))"
	/* The drain for others' claims leaves this presence's own alone. */
	" AND ($8::text IS NULL OR q.claim_id IS DISTINCT FROM $8::text)"
	" AND q.priority::text = ANY (string_to_array($2, ','))"
	PRESENCE_TARGETS_SQL
	" ORDER BY q.created_at, q.id LIMIT $9::int FOR UPDATE SKIP LOCKED),"
	" page AS (SELECT id, count(*) OVER () AS found,"
	" sum(sz) OVER (ORDER BY created_at, id) - sz AS before FROM cand),"
	" upd AS (UPDATE mesh.message_queue mq SET claimed_at = now(), claim_id = $6,"
	" claim_expires_at = now() + make_interval(secs => $7::int)"
	" FROM page WHERE mq.id = page.id AND page.before < $11::bigint"
	" RETURNING mq.id, mq.priority::text AS priority, mq.nonce, mq.ciphertext, mq.created_at,"
	" mq.client_message_id, mq.request_fingerprint, mq.sender_member_id,"
	" mq.sender_session_pubkey, page.found)"
	" SELECT upd.id, upd.priority, upd.nonce, upd.ciphertext, " SQL_ISO8601("upd.created_at") ","
	" upd.client_message_id, upd.request_fingerprint,"
	" COALESCE(upd.sender_session_pubkey, m.peer_pubkey), upd.found"
	" FROM upd JOIN mesh.member m ON m.id = upd.sender_member_id"
	" ORDER BY upd.created_at, upd.id";

/* What a closed socket held is claimable again (drain_detached): the rows
 * claimed for its presence, found through the same index as a drain. */
static const char release_sql[] =
	"UPDATE mesh.message_queue q SET claimed_at = NULL, claim_id = NULL, claim_expires_at = NULL"
	" WHERE q.mesh_id = $1 AND q.delivered_at IS NULL AND q.claim_id = $2"
	PRESENCE_TARGETS_SQL;

static void drain_done(struct db_job *j, void *owner);

enum drain_kind {
	DRAIN_TRIGGER, /* §6.6's triggers, and held rows the status now admits (D4) */
	DRAIN_TIMER,   /* a redelivery for a socket that acks */
	DRAIN_OTHERS,  /* once, a lease after the attach: rows other sockets claimed */
};

/* Claims are made by the database before the completion comes back; the
 * timer waits this much past a lease so the claim has expired there too. */
#define LEASE_SLACK_MS 100

/* The output a drain may leave behind and still claim another page: a
 * page (about as many bytes) on top stays well inside the bound. */
static size_t low_water(const struct config *cfg)
{
	return cfg->conn_max_output_bytes / 4;
}

static int64_t lease_ms(const struct presence *p)
{
	return (int64_t)p->mesh->shard->cfg->claim_lease_seconds * 1000;
}

static void start(struct presence *p, enum drain_kind kind)
{
	struct shard *s = p->mesh->shard;
	struct conn *c = p->conn;
	p->drain_inflight = true;
	p->drain_again = false;
	p->drain_kind = kind;
	p->drain_started_ms = clock_mono_ms();
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
	db_job_paramf(j, "%d", s->cfg->claim_lease_seconds);
	db_job_param(j, kind == DRAIN_OTHERS ? p->id : NULL);
	db_job_paramf(j, "%d", DRAIN_PAGE_ROWS);
	db_job_paramf(j, "{%s}", p->unpushed.p ? p->unpushed.p : "");
	db_job_paramf(j, "%zu", low_water(s->cfg));
	j->conn_slot = c->slot;
	j->conn_gen = c->gen;
	j->mesh_id = xstrdup(p->mesh->id);
	memcpy(j->presence_id, p->id, sizeof(p->id));
	db_submit(s->db, j);
}

void drain_presence(struct presence *p)
{
	MESHD_ASSERT_ON_WORKER(p->mesh->shard);
	if (!presence_handshaken(p) || p->conn->state != CONN_WS)
		return; /* Q2: never claim for a socket that is not open */
	if (p->drain_inflight || p->drain_paused) {
		p->drain_again = true; /* drain_done or drain_writable goes on */
		return;
	}
	start(p, DRAIN_TRIGGER);
}

/* The drain goes on once the socket has taken most of what it was sent. */
static void pause_drain(struct presence *p)
{
	if (p->drain_paused)
		return;
	p->drain_paused = true;
	p->backlog = true;
	conn_ws_notify_writable(p->conn, low_water(p->mesh->shard->cfg));
}

void drain_writable(struct presence *p)
{
	MESHD_ASSERT_ON_WORKER(p->mesh->shard);
	if (!p->drain_paused)
		return;
	p->drain_paused = false;
	if (p->drain_inflight) {
		p->drain_again = true;
		return;
	}
	start(p, DRAIN_TRIGGER);
}

/* ---- redelivery ------------------------------------------------------------ */

/* When the timer's next redelivery is due (mono ms), or INT64_MAX: only for
 * a socket that acks, and at most REDELIVERY_MAX_ATTEMPTS times running,
 * each a lease × 2^round after the oldest claim it did not see acked. */
static int64_t redelivery_due(struct presence *p)
{
	int64_t oldest;
	if (!claims_oldest(&p->claims, &oldest)) {
		p->redeliver_round = 0; /* everything acked: a new schedule next time */
		return INT64_MAX;
	}
	unsigned round = p->redeliver_round;
	if (!p->acks_seen || round >= (unsigned)p->mesh->shard->cfg->redelivery_max_attempts)
		return INT64_MAX;
	return oldest + (lease_ms(p) << (round < 20 ? round : 20)) + LEASE_SLACK_MS;
}

static int64_t next_due(struct presence *p)
{
	int64_t due = redelivery_due(p);
	if (p->others_pending && p->others_due_ms < due)
		due = p->others_due_ms;
	return due;
}

static void redeliver_cb(evutil_socket_t fd, short what, void *arg);

/* (Re)arms p's one timer for whichever comes first: the drain of others'
 * claims, or the next timer redelivery. */
static void schedule(struct presence *p)
{
	struct shard *s = p->mesh->shard;
	int64_t due = next_due(p);
	if (due == INT64_MAX || !presence_handshaken(p)) {
		if (p->redeliver_timer)
			evtimer_del(p->redeliver_timer);
		return;
	}
	if (!p->redeliver_timer)
		p->redeliver_timer = evtimer_new(s->base, redeliver_cb, p);
	if (!p->redeliver_timer) {
		/* Without it the rows wait for the next trigger (a hello, a send). */
		log_error("presence_timer_failed", "mesh=%s presence=%s", p->mesh->id, p->id);
		return;
	}
	int64_t wait = due - clock_mono_ms();
	if (wait < 0)
		wait = 0;
	struct timeval tv = { (time_t)(wait / 1000), (suseconds_t)(wait % 1000) * 1000 };
	evtimer_add(p->redeliver_timer, &tv);
}

static void redeliver_cb(evutil_socket_t fd, short what, void *arg)
{
	struct presence *p = arg;
	if (p->drain_inflight || p->drain_paused || !presence_handshaken(p) ||
	    p->conn->state != CONN_WS)
		return; /* drain_done, drain_writable or the next attach schedules again */
	int64_t now = clock_mono_ms();
	if (p->others_pending && now >= p->others_due_ms) {
		p->others_pending = false;
		start(p, DRAIN_OTHERS);
	} else if (now >= redelivery_due(p)) {
		start(p, DRAIN_TIMER);
	} else {
		schedule(p);
	}
}

/* Rows other sockets or processes claimed may be p's to claim a lease
 * from now: drained then. */
static void drain_expect(struct presence *p)
{
	int64_t due = clock_mono_ms() + lease_ms(p) + LEASE_SLACK_MS;
	if (!p->others_pending || due < p->others_due_ms)
		p->others_due_ms = due;
	p->others_pending = true;
	schedule(p);
}

void drain_attached(struct presence *p)
{
	p->acks_seen = false;
	p->redeliver_round = 0;
	drain_expect(p);
}

void drain_acked(struct presence *p, const char *broker_id, const char *client_id)
{
	MESHD_ASSERT_ON_WORKER(p->mesh->shard);
	p->acks_seen = true;
	if (!claims_ack(&p->claims, broker_id))
		(void)claims_ack(&p->claims, client_id); /* the daemon's fallback id */
	if (!p->drain_inflight && !p->drain_paused)
		schedule(p);
}

bool drain_needed(const struct presence *p)
{
	int64_t now = clock_mono_ms();
	return claims_due(&p->claims, now, lease_ms(p)) ||
	       (p->others_pending && now >= p->others_due_ms);
}

/* §6.5.1, the drained push. */
static void push_direct(struct presence *p, const struct drain_row *r)
{
	struct strbuf b = { 0 };
	struct jsonw w;
	jsonw_begin(&w, &b);
	jsonw_str(&w, "type", "push");
	jsonw_str(&w, "messageId", r->message_id);
	jsonw_str(&w, "meshId", p->mesh->id);
	jsonw_str(&w, "senderPubkey", r->sender_pubkey);
	jsonw_str(&w, "priority", r->priority);
	jsonw_str(&w, "nonce", r->nonce);
	jsonw_str(&w, "ciphertext", r->ciphertext);
	jsonw_str(&w, "createdAt", r->created_at);
	if (r->client_message_id)
		jsonw_str(&w, "client_message_id", r->client_message_id);
	if (r->request_fingerprint)
		jsonw_str(&w, "request_fingerprint", r->request_fingerprint);
	jsonw_end(&w);
	if (presence_send(p, b.p, b.len))
		metrics_inc_label(METRIC_MESSAGES_ROUTED, metrics_priority_label(r->priority));
	xfree(b.p);
}

/* p's socket is still the one {slot, gen} named when a claim was made. */
static bool same_socket(const struct presence *p, uint32_t slot, uint32_t gen)
{
	return p->conn && p->conn->slot == slot && p->conn->gen == gen;
}

static void unpushed_clear(struct presence *p)
{
	xfree(p->unpushed.p);
	memset(&p->unpushed, 0, sizeof(p->unpushed));
}

void drain_push_claimed(struct presence *p, uint32_t slot, uint32_t gen, const struct drain_row *r)
{
	MESHD_ASSERT_ON_WORKER(p->mesh->shard);
	struct conn *c = p->conn;
	if (!same_socket(p, slot, gen) || c->state != CONN_WS) {
		/* The socket it was claimed on closed: drain_detached released
		 * the row (queue lane, after this insert), and whatever p has
		 * now drains it. */
		p->backlog = true;
		return;
	}
	if (p->drain_paused || p->unpushed.len > 0 ||
	    conn_output_bytes(c) > low_water(p->mesh->shard->cfg)) {
		/* Behind a paused page, or into a full buffer: the drain that
		 * resumes takes it, in order. */
		if (p->unpushed.len > 0)
			strbuf_addc(&p->unpushed, ',');
		strbuf_adds(&p->unpushed, r->message_id);
		pause_drain(p);
		return;
	}
	push_direct(p, r);
	claims_add(&p->claims, r->message_id, clock_mono_ms());
	if (!p->drain_inflight)
		schedule(p);
}

/* Drops from p->unpushed the ids a drain has now pushed. */
static void unpushed_remove(struct presence *p, PGresult *res)
{
	if (p->unpushed.len == 0)
		return;
	struct strbuf keep = { 0 };
	int n = PQntuples(res);
	for (char *id = strtok(p->unpushed.p, ","); id; id = strtok(NULL, ",")) {
		bool pushed = false;
		for (int i = 0; i < n && !pushed; i++)
			pushed = strcmp(PQgetvalue(res, i, 0), id) == 0;
		if (pushed)
			continue;
		if (keep.len > 0)
			strbuf_addc(&keep, ',');
		strbuf_adds(&keep, id);
	}
	xfree(p->unpushed.p);
	p->unpushed = keep;
}

void drain_detached(struct presence *p)
{
	struct shard *s = p->mesh->shard;
	MESHD_ASSERT_ON_WORKER(s);
	claims_free(&p->claims);
	unpushed_clear(p);
	p->drain_paused = false;
	p->backlog = true;
	if (s->draining)
		return; /* shutdown: the next process's drains take them after the lease */
	struct db_job *j = db_job_new(release_sql, DB_JOB_WRITE | DB_JOB_LANE_QUEUE, NULL, NULL, NULL);
	db_job_param(j, p->mesh->id);
	db_job_param(j, p->id);
	db_job_param(j, p->member->pubkey);
	db_job_param(j, p->session_pubkey);
	db_job_param(j, p->member->id);
	db_submit(s->db, j);
	/* The member's other sockets may take them now (after the release). */
	const struct plist *mine = mesh_find(p->mesh, p->member->pubkey);
	for (size_t i = 0; i < mine->n; i++)
		if (mine->v[i] != p && mine->v[i]->conn)
			drain_presence(mine->v[i]);
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
		/* Gone meanwhile: its detach released what this claimed. */
		shard_count_stale(s);
		return;
	}
	p->drain_inflight = false;
	enum drain_kind kind = p->drain_kind;
	struct conn *c = p->conn;
	if (!same_socket(p, j->conn_slot, j->conn_gen)) {
		/* Claimed for a socket that closed since: released with it. */
		if (c)
			drain_presence(p);
		return;
	}
	bool more = false;
	if (!j->ok) {
		log_warn("drain_failed", "mesh=%s presence=%s error=%s", j->mesh_id, p->id, j->error);
		p->backlog = true;
		if (kind == DRAIN_OTHERS)
			drain_expect(p); /* try that one again a lease on */
	} else {
		const unsigned all = PRIO_NOW | PRIO_NEXT | PRIO_LOW;
		PGresult *res = j->res;
		int n = PQntuples(res);
		long found = n > 0 ? atol(PQgetvalue(res, 0, 8)) : 0;
		/* A page cut short (rows or bytes): more may wait behind it. */
		more = n < found || found >= DRAIN_PAGE_ROWS;
		/* What this drain could see expired is claimed again now (or was
		 * acked or taken by another drain): those entries are settled. */
		if (kind != DRAIN_OTHERS && p->drain_gate == all && !more)
			claims_covered(&p->claims, p->drain_started_ms, lease_ms(p));
		int64_t now = clock_mono_ms();
		for (int i = 0; i < n && p->conn == c; i++) {
			struct drain_row r = {
				.message_id = PQgetvalue(res, i, 0), .sender_pubkey = PQgetvalue(res, i, 7),
				.priority = PQgetvalue(res, i, 1), .nonce = PQgetvalue(res, i, 2),
				.ciphertext = PQgetvalue(res, i, 3), .created_at = PQgetvalue(res, i, 4),
				.client_message_id = value_or_null(res, i, 5),
				.request_fingerprint = value_or_null(res, i, 6),
			};
			push_direct(p, &r);
			claims_add(&p->claims, r.message_id, now);
		}
		unpushed_remove(p, res);
		if (!more && kind != DRAIN_OTHERS && p->drain_gate == all && p->unpushed.len > 0) {
			/* Everything eligible came: ids left were not (acked or gone). */
			unpushed_clear(p);
		}
		if (kind == DRAIN_TIMER && n > 0)
			p->redeliver_round++;
		/* Everything eligible is claimed: new rows may take the fast path,
		 * unless the status held some back or more came meanwhile. */
		p->backlog = more || p->drain_again || p->drain_gate != all || p->unpushed.len > 0;
	}
	if (p->conn != c || c->state != CONN_WS)
		return; /* dropped while this page went out: released with it */
	if (more || p->unpushed.len > 0)
		pause_drain(p); /* the next page once the socket has taken this one */
	else if (p->drain_again)
		drain_presence(p);
	else
		schedule(p);
}
