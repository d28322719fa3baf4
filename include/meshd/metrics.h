/* metrics — the Prometheus series of PROTOCOL.md §10, in its exact order.
 *
 * Values are process-wide C11 atomics (relaxed): any thread may bump them and
 * /metrics, served by whichever worker holds the request, sums nothing and
 * locks nothing.  Labelled series have a fixed set of label values; each
 * records when it was first touched so the text lists them in first-touch
 * order, as the reference does.
 */
#ifndef MESHD_METRICS_H
#define MESHD_METRICS_H

#include <stdint.h>

struct evbuffer;

enum metric_id {
	METRIC_CONNECTIONS_TOTAL,
	METRIC_CONNECTIONS_REJECTED,   /* label: enum reject_reason */
	METRIC_CONNECTIONS_ACTIVE,     /* gauge */
	METRIC_MESSAGES_ROUTED,        /* label: enum route_priority */
	METRIC_MESSAGES_REJECTED,      /* label: enum msg_reject_reason */
	METRIC_MESSAGES_DROPPED_BY_GRANT, /* label: enum grant_cap */
	METRIC_LEGACY_AUTH_HITS,
	METRIC_QUEUE_DEPTH,            /* gauge */
	METRIC_TTL_SWEEPS,             /* label: flipped count, see metrics_inc_ttl_sweep */
	METRIC_HOOK_REQUESTS,
	METRIC_HOOK_RATE_LIMITED,
	METRIC_DB_HEALTHY,             /* gauge */
	/* meshd's own, after the reference's twelve: */
	METRIC_STALE_COMPLETIONS,      /* database completions whose conn or presence had gone */
	METRIC_LIMIT_REFUSALS,         /* label: enum limit_kind */
	METRIC_OUTPUT_DROPS,           /* connections dropped for a full output buffer */
	METRIC_WORKER_CONNECTIONS,     /* gauge, label: the worker's index */
	METRIC_WORKER_MESHES,          /* gauge, label: the worker's index */
	METRIC__COUNT
};

/* broker_connections_rejected_total{reason}: the labels of PROTOCOL.md §5.3. */
enum reject_reason {
	REJECT_BAD_SESSION_PUBKEY, REJECT_CAPACITY, REJECT_TIMESTAMP_SKEW, REJECT_MALFORMED,
	REJECT_BAD_SIGNATURE, REJECT_REVOKED, REJECT_UNAUTHORIZED, REJECT_BAD_PARENT_PUBKEY,
	REJECT_ATTESTATION_MISMATCH, REJECT_ATTESTATION_MALFORMED, REJECT_ATTESTATION_EXPIRED,
	REJECT_ATTESTATION_TTL_TOO_LONG, REJECT_ATTESTATION_BAD_SIGNATURE,
	REJECT_SESSION_TIMESTAMP_SKEW, REJECT_SESSION_MALFORMED, REJECT_SESSION_BAD_SIGNATURE,
	REJECT_PARENT_MEMBER_ID_MISMATCH,
	REJECT__COUNT
};

enum route_priority { ROUTE_NOW, ROUTE_NEXT, ROUTE_LOW, ROUTE_STREAM, ROUTE__COUNT };
/* The label of a message priority's name ("now", "next", "low"): ROUTE_NEXT
 * for anything else, as an absent priority means next.  Any thread (pure). */
enum route_priority metrics_priority_label(const char *priority);

enum msg_reject_reason {
	MSG_REJECT_RATE_LIMIT, MSG_REJECT_TOO_LARGE, MSG_REJECT_NO_RECIPIENT,
	MSG_REJECT_PARSE_OR_HANDLER, MSG_REJECT__COUNT
};

/* meshd_limit_refusals_total{limit}: input refused for a bound of meshd's
 * own (README "Limits"), whatever the answer was (a close, an error). */
enum limit_kind {
	LIMIT_WS_MESSAGE,      /* a message over the cap of its phase: 1009 */
	LIMIT_WS_BUDGET,       /* a worker's unfinished messages over budget: 1009 */
	LIMIT_DB_ROWS,         /* DB_MAX_PENDING_JOBS: the write fails */
	LIMIT_DB_BYTES,        /* DB_MAX_PENDING_BYTES: the write fails */
	LIMIT_GROUP,           /* a group name or role: refused (or dropped from a hello) */
	LIMIT_GROUPS,          /* groups per presence */
	LIMIT_SUMMARY,
	LIMIT_PROFILE,
	LIMIT_PEERS_LIST,      /* a peers_list cut short at its byte bound */
	LIMIT_SESSION_KEY,     /* a member hello's sessionPubkey held by another member: ignored */
	LIMIT_HTTP_BODY_BUDGET, /* an HTTP body crossing the unfinished-input budget: 503 */
	LIMIT__COUNT
};

enum grant_cap { GRANT_DM, GRANT_BROADCAST, GRANT__COUNT };

/* meshd's histograms (_bucket, _sum, _count), rendered after the counters
 * and gauges with meshd_build_info. */
enum histogram_id {
	HIST_SEND_COMMIT,      /* seconds from a send's arrival to its row's commit */
	HIST_DB_BATCH_ROWS,    /* rows per pipeline, label: enum db_lane_label */
	HIST_DB_ROUND_TRIP,    /* seconds per pipeline, label: enum db_lane_label */
	HIST_INBOX_TAKE,       /* messages a thread finds in its inbox per wake-up */
	HIST__COUNT
};
enum db_lane_label { LANE_LABEL_QUEUE, LANE_LABEL_STATE, LANE_LABEL__COUNT };

/* Any thread. */
void metrics_observe(enum histogram_id id, int label, double value);
/* meshd_build_info{version,git_sha} 1.  Once, at start-up. */
void metrics_set_build_info(const char *version, const char *git_sha);
void metrics_gauge_add_label(enum metric_id id, int label, int64_t delta);

void metrics_inc(enum metric_id id);
void metrics_inc_label(enum metric_id id, int label);
void metrics_gauge_add(enum metric_id id, int64_t delta);
void metrics_gauge_set(enum metric_id id, int64_t value);
/* broker_ttl_sweeps_total{flipped="<n>"}: one sweep that flipped n presences. */
void metrics_inc_ttl_sweep(unsigned flipped);

/* Current value (unlabelled: label is ignored).  For tests and /health. */
int64_t metrics_get(enum metric_id id, int label);

/* Appends the whole exposition text (Content-Type text/plain; version=0.0.4). */
void metrics_render(struct evbuffer *out);

/* Back to all-zero, untouched.  Unit tests only. */
void metrics_reset(void);

#endif
