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
#define WORKER_SLOTS 256 /* BROKER_WORKERS' bound */
#define MAX_LABELS WORKER_SLOTS

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
	"http_body_budget",
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
	[METRIC_OUTPUT_DROPS] = { "meshd_output_overflow_drops_total", "counter",
		"Connections dropped because their unsent output passed CONN_MAX_OUTPUT_BYTES",
		NULL, NULL, 0 },
	[METRIC_WORKER_CONNECTIONS] = { "meshd_worker_connections", "gauge",
		"Open connections (HTTP and WebSocket) per worker", "worker", NULL, WORKER_SLOTS },
	[METRIC_WORKER_MESHES] = { "meshd_worker_meshes", "gauge",
		"Meshes with a presence per worker (its shard)", "worker", NULL, WORKER_SLOTS },
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

void metrics_gauge_add_label(enum metric_id id, int label, int64_t delta)
{
	struct slot *s = slot_of(id, label);
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

/* ---- histograms ------------------------------------------------------ */

#define HIST_MAX_BUCKETS 16

static const double seconds_buckets[] = { 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
					  0.1, 0.25, 0.5, 1, 2.5, 5, 10 };
static const double rows_buckets[] = { 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096 };
static const char *const lane_labels[LANE_LABEL__COUNT] = { "queue", "state" };

struct histogram_def {
	const char *name;
	const char *help;
	const double *le;
	int nle;
	double scale;                /* the sum is kept as an integer of value × scale */
	const char *label_key;       /* NULL: unlabelled */
	const char *const *labels;
	int nlabels;
};

#define N(a) (int)(sizeof(a) / sizeof((a)[0]))
static const struct histogram_def histograms[HIST__COUNT] = {
	[HIST_SEND_COMMIT] = { "meshd_send_commit_seconds",
		"Time from a send's arrival to the commit of its row", seconds_buckets,
		N(seconds_buckets), 1e9, NULL, NULL, 1 },
	[HIST_DB_BATCH_ROWS] = { "meshd_db_batch_rows", "Rows written or read per database pipeline",
		rows_buckets, N(rows_buckets), 1, "lane", lane_labels, LANE_LABEL__COUNT },
	[HIST_DB_ROUND_TRIP] = { "meshd_db_round_trip_seconds",
		"Time from sending a database pipeline to its last result", seconds_buckets,
		N(seconds_buckets), 1e9, "lane", lane_labels, LANE_LABEL__COUNT },
	[HIST_INBOX_TAKE] = { "meshd_inbox_take_messages",
		"Messages a thread (worker, db, acceptor) finds in its inbox per wake-up: its queue depth",
		rows_buckets, N(rows_buckets), 1, NULL, NULL, 1 },
};

struct histogram_slot {
	_Atomic uint64_t buckets[HIST_MAX_BUCKETS + 1]; /* per bucket, the last is +Inf */
	_Atomic uint64_t count;
	_Atomic int64_t sum;
};

static struct histogram_slot hist_slots[HIST__COUNT][LANE_LABEL__COUNT];

void metrics_observe(enum histogram_id id, int label, double value)
{
	const struct histogram_def *h = &histograms[id];
	if (label < 0 || label >= h->nlabels)
		abort(); /* a caller bug */
	struct histogram_slot *s = &hist_slots[id][label];
	int b = 0;
	while (b < h->nle && value > h->le[b])
		b++;
	atomic_fetch_add_explicit(&s->buckets[b], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&s->count, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&s->sum, (int64_t)(value * h->scale + 0.5), memory_order_relaxed);
}

static void render_labels(struct evbuffer *out, const struct histogram_def *h, int label,
			  const char *le)
{
	bool any = h->label_key || le;
	if (!any)
		return;
	evbuffer_add(out, "{", 1);
	if (h->label_key)
		evbuffer_add_printf(out, "%s=\"%s\"%s", h->label_key, h->labels[label], le ? "," : "");
	if (le)
		evbuffer_add_printf(out, "le=\"%s\"", le);
	evbuffer_add(out, "}", 1);
}

/* Each slot is read bucket by bucket while others may add: a scrape can
 * see a count one ahead of a bucket, as with any lock-free exporter. */
static void render_histogram(struct evbuffer *out, enum histogram_id id)
{
	const struct histogram_def *h = &histograms[id];
	evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s histogram\n", h->name, h->help, h->name);
	for (int l = 0; l < h->nlabels; l++) {
		struct histogram_slot *s = &hist_slots[id][l];
		uint64_t cum = 0;
		for (int b = 0; b <= h->nle; b++) {
			cum += atomic_load_explicit(&s->buckets[b], memory_order_relaxed);
			char le[32];
			if (b < h->nle)
				snprintf(le, sizeof(le), "%g", h->le[b]);
			else
				snprintf(le, sizeof(le), "+Inf");
			evbuffer_add_printf(out, "%s_bucket", h->name);
			render_labels(out, h, l, le);
			evbuffer_add_printf(out, " %llu\n", (unsigned long long)cum);
		}
		int64_t sum = atomic_load_explicit(&s->sum, memory_order_relaxed);
		evbuffer_add_printf(out, "%s_sum", h->name);
		render_labels(out, h, l, NULL);
		if (h->scale == 1)
			evbuffer_add_printf(out, " %lld\n", (long long)sum);
		else
			evbuffer_add_printf(out, " %.9f\n", (double)sum / h->scale);
		evbuffer_add_printf(out, "%s_count", h->name);
		render_labels(out, h, l, NULL);
		evbuffer_add_printf(out, " %llu\n",
				    (unsigned long long)atomic_load_explicit(&s->count,
									    memory_order_relaxed));
	}
}

static char build_version[32], build_sha[48];

void metrics_set_build_info(const char *version, const char *git_sha)
{
	snprintf(build_version, sizeof(build_version), "%s", version);
	snprintf(build_sha, sizeof(build_sha), "%s", git_sha);
}

void metrics_render(struct evbuffer *out)
{
	for (int id = 0; id < METRIC__COUNT; id++)
		render_series(out, (enum metric_id)id);
	for (int id = 0; id < HIST__COUNT; id++)
		render_histogram(out, (enum histogram_id)id);
	/* Label values are ours (the version, git's short sha or GIT_SHA): no
	 * quote to escape in the first two; GIT_SHA's are dropped. */
	evbuffer_add_printf(out, "# HELP meshd_build_info meshd's version and git revision\n"
				 "# TYPE meshd_build_info gauge\n"
				 "meshd_build_info{version=\"%s\",git_sha=\"", build_version);
	for (const char *p = build_sha; *p; p++)
		if (*p != '"' && *p != '\\' && *p != '\n')
			evbuffer_add(out, p, 1);
	evbuffer_add_printf(out, "\"} 1\n");
}

void metrics_reset(void)
{
	memset(hist_slots, 0, sizeof(hist_slots)); /* single-threaded: unit tests */
	for (int id = 0; id < METRIC__COUNT; id++) {
		for (int i = 0; i < MAX_LABELS; i++) {
			atomic_store(&slots[id][i].value, 0);
			atomic_store(&slots[id][i].first_touch, 0);
		}
	}
	atomic_store(&touch_seq, 0);
}
