/* shard — the meshes one worker owns (hash(meshId) % BROKER_WORKERS), and
 * inside each mesh its members, presences and routing indexes.
 *
 * Everything here belongs to the owning worker thread: no locks, and
 * nothing in it is ever touched by another thread (DESIGN.md §1).  Memory
 * is the working copy; PostgreSQL gets the durable record through the db
 * thread (DESIGN.md §3).
 *
 * A mesh exists in memory while it has at least one presence (online or in
 * its lease grace).  A member is cached from the database lookup of the
 * latest hello that resolved to it; a hello always looks it up again, so a
 * member added or revoked in the database is seen by the next hello.
 */
#ifndef MESHD_SHARD_H
#define MESHD_SHARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "meshd/claims.h"
#include "meshd/dbstream.h"
#include "meshd/id.h"
#include "meshd/map.h"
#include "meshd/ratelimit.h"
#include "meshd/strbuf.h"

struct config;
struct conn;
struct conntab;
struct db;
struct event;
struct event_base;
struct hook_wait;
struct hookrate;
struct inbox;
struct jsonl_cache;
struct pending;
struct route_batch;

enum peer_status { STATUS_IDLE = 0, STATUS_WORKING, STATUS_DND };
enum status_source { SOURCE_JSONL = 1, SOURCE_MANUAL = 2, SOURCE_HOOK = 3 }; /* value = rank */
enum peer_role { ROLE_CONTROL_PLANE, ROLE_SESSION };

struct member {
	char *id;
	char *pubkey;
	char *display_name;
	char *role_tag;           /* NULL = null */
	char *message_mode;       /* "push" when unset */
	json_t *default_groups;   /* array, never NULL */
	json_t *peer_grants;      /* object, never NULL */
	struct bucket send_bucket;/* per-member send rate limit (§6.1) */
	int refs;                 /* presences holding it */
};

/* A list of presences (index values). */
struct plist {
	struct presence **v;
	size_t n;
	size_t cap;
};

struct presence {
	char id[ID_LEN + 1];
	struct mesh *mesh;
	struct member *member;
	struct conn *conn;        /* NULL while offline (in grace) */
	enum peer_role role;
	char *session_id;
	char *session_pubkey;     /* NULL: none */
	char *hello_display_name; /* the hello's displayName (stored), NULL if none */
	char *display_name;       /* effective: hello's, else the member's */
	char *cwd;
	long long pid;
	char *hostname, *peer_type, *channel, *model; /* NULL when the hello had none */
	char *summary;            /* NULL = null */
	json_t *groups;           /* array of {name, role?} */
	bool visible;             /* set_visible; false: skipped by * and @g, unlisted */
	json_t *profile;          /* set_profile's object, {} by default */
	json_t *stats;            /* set_stats' object, NULL until one came */

	enum peer_status status;
	enum status_source source;
	int64_t status_updated_ms;    /* wall clock */

	int64_t connected_ms;         /* wall clock, creation (not reset by reattach) */
	int64_t last_pong_mono_ms;    /* heartbeat: lease liveness for list_peers */
	bool online;                  /* lease online */
	struct event *grace_timer;
	struct event *redeliver_timer;   /* drain.c: the redeliveries a timer makes */

	bool stored;                  /* its row is committed */
	bool announced;               /* peer_joined went out: peer_left may follow */
	bool drain_inflight;
	bool drain_again;
	bool backlog;                 /* rows may wait for it in the queue: no fast path */
	unsigned drain_gate;          /* priorities the drain in flight admits */
	int64_t drain_started_ms;     /* mono, of the drain in flight */
	/* Redelivery (drain.h): what it was pushed and has not acked, whether
	 * this socket acks at all, and where the timer's schedule stands. */
	struct claims claims;
	bool acks_seen;               /* a client_ack came on this socket */
	unsigned redeliver_round;     /* timer redeliveries since all was acked */
	unsigned char drain_kind;     /* drain.c: what the drain in flight is for */
	bool others_pending;          /* the one drain, a lease after the attach,
				       * of rows other sockets claimed */
	int64_t others_due_ms;        /* mono */
	int64_t last_heartbeat_write_ms; /* mono: last last_ping_at write */
	/* Flow control (drain.h): a drain page, or rows a send claimed for
	 * it, wait for its socket's output to fall; those rows' ids, "a,b",
	 * are taken by id by the drain that resumes. */
	bool drain_paused;
	struct strbuf unpushed;

	struct presence *prev, *next; /* mesh list, in connected order */
};

struct mesh {
	char *id;
	struct shard *shard;
	struct presence *head, *tail;
	size_t npresences;            /* online + grace: the capacity count */
	struct map by_key;            /* member or session pubkey -> struct plist* */
	struct map by_id;             /* presence id -> struct presence* */
	struct map members;           /* member id -> struct member* */
	json_t *self_editable;        /* mesh.self_editable, NULL when null */
	/* Ids of the latest multicast rows (inserted delivered, Q14): a
	 * client_ack for one of them cannot change anything and is dropped
	 * here instead of costing the database a lookup per recipient. */
	struct map recent_multicast;
	char (*recent_ids)[ID_LEN + 1];
	unsigned recent_next;
};

#define MESH_RECENT_MULTICAST 256

/* What a shard runs on: its worker's loop, connections and inbox, and the
 * process-wide configuration and database. */
struct shard_env {
	int id;                       /* the worker's index */
	int nshards;                  /* BROKER_WORKERS */
	const struct config *cfg;
	struct db *db;
	struct inbox *inbox;          /* the worker's: database completions come back here */
	struct event_base *base;
	struct conntab *conns;
	const char *git_sha;          /* for /health */
	int64_t started_mono_ms;
	struct inbox *const *inboxes; /* every worker's, by index (hook.h asks them all) */
	struct hookrate *hookrate;    /* process-wide, locked: the hook endpoint's buckets */
	struct pending *pending;      /* process-wide, locked: hook statuses awaiting a presence */
};

/* A worker's per-loop state for the mesh protocol: the meshes it owns and
 * what every mesh module of that worker shares (the db streams, the send
 * batch), so none of them calls back into the worker (DESIGN.md §1). */
struct shard {
	int id;
	int nshards;
	const struct config *cfg;
	struct db *db;
	struct db_reply reply;        /* {worker's inbox, this shard}: every job's completion */
	struct event_base *base;
	struct conntab *conns;
	const char *git_sha;
	int64_t started_mono_ms;
	struct inbox *const *inboxes;
	struct hookrate *hookrate;
	struct pending *pending;

	struct map meshes;            /* id -> struct mesh* */
	size_t npresences;            /* over all meshes, for broker_connections_active */
	struct db_stream audit;       /* AUDIT_SQL_APPEND_MANY, write-behind */
	struct db_stream acks;        /* CLIENTACK_SQL_MANY, write-behind (clientack.c) */
	struct route_batch *route_batch; /* route.c's sends */
	bool draining;                /* MSG_SHUTDOWN received: presences are not kept in
				       * grace, the worker stops once no connection is left */
	struct jsonl_cache *jsonl;    /* transcript inference, remembered (jsonlcache.h) */
	struct hook_wait *hook_waits; /* hook requests of this worker's, in flight (hook.c) */
	uint64_t hook_next_id;
};

/* Worker thread, owner, for everything below but shard_owner. */
void shard_init(struct shard *s, const struct shard_env *env);
void shard_free(struct shard *s);

/* Queues an audit entry (audit_entry(); NULL is ignored) on the shard's stream. */
void shard_audit(struct shard *s, json_t *entry);
/* The connection a completion is for, by id; NULL when it closed meanwhile
 * (counted in meshd_stale_completions_total). */
struct conn *shard_conn(struct shard *s, uint32_t slot, uint32_t gen);
/* A completion found nothing to complete (its presence had gone): counted. */
void shard_count_stale(struct shard *s);

/* Which worker owns meshId (any thread: pure). */
int shard_owner(const char *mesh_id, int nworkers);

struct mesh *shard_mesh(struct shard *s, const char *mesh_id, bool create);
/* Frees the mesh once it has no presence.  Database completions therefore
 * find their mesh and presence again by id (shard_presence), never by a
 * pointer kept across the round trip. */
void shard_mesh_maybe_free(struct shard *s, struct mesh *m);

/* Inserts or refreshes the member cache entry from a lookup (takes the
 * strings/json given, copying). */
struct member *mesh_member_upsert(struct mesh *m, const char *id, const char *pubkey,
				  const char *display_name, const char *role_tag,
				  const char *message_mode, json_t *default_groups,
				  json_t *peer_grants);

/* Presences with `key` as member pubkey or session pubkey (never NULL). */
const struct plist *mesh_find(const struct mesh *m, const char *key);

/* Adds a new presence at the tail (online, no conn yet) and indexes it. */
struct presence *mesh_presence_new(struct mesh *m, struct member *mb);
/* Unlinks, unindexes and frees p (and its mesh, if it was the last). */
void mesh_presence_remove(struct mesh *m, struct presence *p);
/* The live presence with that id in that mesh, or NULL. */
struct presence *shard_presence(struct shard *s, const char *mesh_id, const char *presence_id);
/* Re-index after session_pubkey changes. */
void mesh_presence_reindex(struct mesh *m, struct presence *p, const char *old_session_pubkey);

/* Remembers a multicast row id (a ring of MESH_RECENT_MULTICAST). */
void mesh_remember_multicast(struct mesh *m, const char *id);
bool mesh_is_recent_multicast(const struct mesh *m, const char *id);

/* The pubkey peers route DMs to: session pubkey if set, else member pubkey. */
const char *presence_pubkey(const struct presence *p);

#endif
