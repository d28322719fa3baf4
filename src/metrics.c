/* metrics — Prometheus text for PROTOCOL.md §10; see include/meshd/metrics.h. */
#include "config.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "meshd/metrics.h"

/* broker_ttl_sweeps_total is labelled by a number; counts above this many
 * distinct values share the last slot's label ("<max>+" would break the
 * reference's format, so the largest value is clamped instead). */
#define TTL_FLIPPED_SLOTS 64
#define MAX_LABELS TTL_FLIPPED_SLOTS

struct series {
	const char *name;
	const char *type;
	const char *help;
	const char *label_key;       /* NULL: unlabelled */
	const char *const *labels;   /* label values, NULL for the ttl series */
	int nlabels;
};

static const char *const reject_labels[REJECT__COUNT] = {
	"bad_session_pubkey", "capacity", "timestamp_skew", "malformed", "bad_signature",
	"revoked", "unauthorized", "bad_parent_pubkey", "attestation_mismatch",
	"attestation_malformed", "attestation_expired", "attestation_ttl_too_long",
	"attestation_bad_signature", "session_timestamp_skew", "session_malformed",
	"session_bad_signature", "parent_member_id_mismatch",
};
static const char *const priority_labels[ROUTE__COUNT] = { "now", "next", "low", "stream" };
static const char *const msg_reject_labels[MSG_REJECT__COUNT] = {
	"rate_limit", "too_large", "no_recipient", "parse_or_handler",
};
static const char *const limit_labels[LIMIT__COUNT] = {
	"ws_message", "ws_message_budget", "db_pending_rows", "db_pending_bytes",
	"group", "groups", "summary", "profile", "peers_list", "session_key",
};
static const char *const cap_labels[GRANT__COUNT] = { "dm", "broadcast" };

/* Order, names and HELP texts are exact (PROTOCOL.md §10, SEMANTICS.md §E.1). */
static const struct series series[METRIC__COUNT] = {
	[METRIC_CONNECTIONS_TOTAL] = { "broker_connections_total", "counter",
		"Total WS connection attempts", NULL, NULL, 0 },
	[METRIC_CONNECTIONS_REJECTED] = { "broker_connections_rejected_total", "counter",
		"WS connections refused (auth failure, capacity, etc.)", "reason",
		reject_labels, REJECT__COUNT },
	[METRIC_CONNECTIONS_ACTIVE] = { "broker_connections_active", "gauge",
		"Currently connected peers", NULL, NULL, 0 },
	[METRIC_MESSAGES_ROUTED] = { "broker_messages_routed_total", "counter",
		"Messages successfully queued + routed", "priority", priority_labels, ROUTE__COUNT },
	[METRIC_MESSAGES_REJECTED] = { "broker_messages_rejected_total", "counter",
		"Messages rejected (size, auth, malformed)", "reason",
		msg_reject_labels, MSG_REJECT__COUNT },
	[METRIC_MESSAGES_DROPPED_BY_GRANT] = { "broker_messages_dropped_by_grant_total", "counter",
		"Messages silently dropped because recipient didn't grant sender the required capability",
		"cap", cap_labels, GRANT__COUNT },
	[METRIC_LEGACY_AUTH_HITS] = { "broker_legacy_auth_hits_total", "counter",
		"Pre-alpha.36 clients authenticating via body.user_id fallback (remove shim when near zero)",
		NULL, NULL, 0 },
	[METRIC_QUEUE_DEPTH] = { "broker_queue_depth", "gauge",
		"Undelivered messages currently in the queue", NULL, NULL, 0 },
	[METRIC_TTL_SWEEPS] = { "broker_ttl_sweeps_total", "counter",
		"TTL sweeper runs completed", "flipped", NULL, TTL_FLIPPED_SLOTS },
	[METRIC_HOOK_REQUESTS] = { "broker_hook_requests_total", "counter",
		"POST /hook/set-status requests received", NULL, NULL, 0 },
	[METRIC_HOOK_RATE_LIMITED] = { "broker_hook_requests_rate_limited_total", "counter",
		"POST /hook/set-status rejected by rate limit", NULL, NULL, 0 },
	[METRIC_DB_HEALTHY] = { "broker_db_healthy", "gauge",
		"1 if Postgres connection is up, 0 if not", NULL, NULL, 0 },
	/* meshd's own series come after the reference's, which keep their order. */
	[METRIC_STALE_COMPLETIONS] = { "meshd_stale_completions_total", "counter",
		"Database completions dropped because their connection or presence had gone",
		NULL, NULL, 0 },
	[METRIC_LIMIT_REFUSALS] = { "meshd_limit_refusals_total", "counter",
		"Input refused for one of meshd's own bounds", "limit", limit_labels, LIMIT__COUNT },
};

struct slot {
	_Atomic int64_t value;
	_Atomic uint64_t first_touch; /* 0: never touched; else a global sequence number */
};

static struct slot slots[METRIC__COUNT][MAX_LABELS];
static _Atomic uint64_t touch_seq;

static struct slot *slot_of(enum metric_id id, int label)
{
	if (!series[id].label_key)
		label = 0;
	if (label < 0 || label >= MAX_LABELS || (series[id].label_key && label >= series[id].nlabels))
		abort(); /* a caller bug, not an input: fail loudly */
	return &slots[id][label];
}

static void touch(struct slot *s)
{
	if (atomic_load_explicit(&s->first_touch, memory_order_relaxed) != 0)
		return;
	uint64_t expect = 0;
	uint64_t mine = atomic_fetch_add(&touch_seq, 1) + 1;
	atomic_compare_exchange_strong(&s->first_touch, &expect, mine);
}

void metrics_inc(enum metric_id id)
{
	metrics_inc_label(id, 0);
}

void metrics_inc_label(enum metric_id id, int label)
{
	struct slot *s = slot_of(id, label);
	touch(s);
	atomic_fetch_add_explicit(&s->value, 1, memory_order_relaxed);
}

void metrics_gauge_add(enum metric_id id, int64_t delta)
{
	struct slot *s = slot_of(id, 0);
	touch(s);
	atomic_fetch_add_explicit(&s->value, delta, memory_order_relaxed);
}

void metrics_gauge_set(enum metric_id id, int64_t value)
{
	struct slot *s = slot_of(id, 0);
	touch(s);
	atomic_store_explicit(&s->value, value, memory_order_relaxed);
}

enum route_priority metrics_priority_label(const char *priority)
{
	if (strcmp(priority, "now") == 0)
		return ROUTE_NOW;
	if (strcmp(priority, "low") == 0)
		return ROUTE_LOW;
	return ROUTE_NEXT;
}

void metrics_inc_ttl_sweep(unsigned flipped)
{
	int label = flipped < TTL_FLIPPED_SLOTS ? (int)flipped : TTL_FLIPPED_SLOTS - 1;
	metrics_inc_label(METRIC_TTL_SWEEPS, label);
}

int64_t metrics_get(enum metric_id id, int label)
{
	return atomic_load_explicit(&slot_of(id, label)->value, memory_order_relaxed);
}

struct touched {
	int label;
	uint64_t at;
};

static int by_first_touch(const void *a, const void *b)
{
	const struct touched *x = a, *y = b;
	return (x->at > y->at) - (x->at < y->at);
}

static void render_label_value(struct evbuffer *out, const struct series *s, int label)
{
	if (!s->labels) {
		evbuffer_add_printf(out, "%d", label);
		return;
	}
	/* Only `"` is escaped, as the reference does; our label values never hold one. */
	for (const char *p = s->labels[label]; *p; p++) {
		if (*p == '"')
			evbuffer_add(out, "\\\"", 2);
		else
			evbuffer_add(out, p, 1);
	}
}

static void render_series(struct evbuffer *out, enum metric_id id)
{
	const struct series *s = &series[id];
	evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s %s\n", s->name, s->help, s->name, s->type);
	if (!s->label_key) {
		evbuffer_add_printf(out, "%s %lld\n", s->name, (long long)metrics_get(id, 0));
		return;
	}
	struct touched t[MAX_LABELS];
	int n = 0;
	for (int i = 0; i < s->nlabels; i++) {
		uint64_t at = atomic_load_explicit(&slots[id][i].first_touch, memory_order_relaxed);
		if (at)
			t[n++] = (struct touched){ i, at };
	}
	if (n == 0) {
		evbuffer_add_printf(out, "%s 0\n", s->name);
		return;
	}
	qsort(t, (size_t)n, sizeof(t[0]), by_first_touch);
	for (int i = 0; i < n; i++) {
		evbuffer_add_printf(out, "%s{%s=\"", s->name, s->label_key);
		render_label_value(out, s, t[i].label);
		evbuffer_add_printf(out, "\"} %lld\n", (long long)metrics_get(id, t[i].label));
	}
}

void metrics_render(struct evbuffer *out)
{
	for (int id = 0; id < METRIC__COUNT; id++)
		render_series(out, (enum metric_id)id);
}

void metrics_reset(void)
{
	for (int id = 0; id < METRIC__COUNT; id++) {
		for (int i = 0; i < MAX_LABELS; i++) {
			atomic_store(&slots[id][i].value, 0);
			atomic_store(&slots[id][i].first_touch, 0);
		}
	}
	atomic_store(&touch_seq, 0);
}
