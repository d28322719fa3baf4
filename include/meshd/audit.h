/* audit — the per-mesh SHA-256 hash chain of mesh.audit_log (SEMANTICS.md §D).
 *
 * Every audited event is one row whose hash covers the previous row's hash
 * of the same mesh ("genesis" for the first):
 *
 *   hash = hex(SHA-256(prev|meshId|eventType|actor|canonicalJson(payload)|createdAt))
 *
 * where actor is the member id or the literal "null" and createdAt is the
 * ISO-8601 UTC string with milliseconds ("2026-04-15T12:00:00.000Z").
 *
 * The broker itself never hashes in C: a worker renders the canonical
 * payload with audit_canonical_json() and submits AUDIT_SQL_LOCK and
 * AUDIT_SQL_INSERT as two consecutive write jobs of one batch (one
 * transaction); PostgreSQL reads the chain's tail and computes the hash.
 * audit_hash() is the same computation in C, for verification and tests.
 *
 * Payload contents are never logged (STYLE.md §9).
 */
#ifndef MESHD_AUDIT_H
#define MESHD_AUDIT_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>
#include <libpq-fe.h>

/* Length of a hash in lowercase hex, without the terminating NUL. */
#define AUDIT_HASH_HEX_LEN 64

/* Deepest array/object nesting audit_canonical_json() accepts (the same
 * bound jansson's parser has, so anything jansson parsed is accepted). */
#define AUDIT_MAX_DEPTH 2048

/*
 * The two statements of one audit write, sent in this order inside one
 * transaction.
 *
 * The advisory lock serialises writers of the same mesh (also across broker
 * instances) so the chain cannot fork.  It must be a statement of its own,
 * sent BEFORE the insert: under READ COMMITTED each statement takes its
 * snapshot when it starts, so an INSERT ... SELECT that took the lock itself
 * would already hold a snapshot older than the lock and could read a stale
 * tail.  Starting the insert after the lock is held makes it see every row
 * committed by the previous holder.  The lock is released at COMMIT/ROLLBACK.
 *
 * AUDIT_SQL_LOCK:    $1 audit_lock_key(mesh_id) in decimal.
 */
#define AUDIT_SQL_LOCK "SELECT pg_advisory_xact_lock($1::bigint)"

/*
 * AUDIT_SQL_INSERT:  $1 mesh_id, $2 event_type, $3 actor_member_id (NULL
 * allowed: hashed as "null"), $4 actor_display_name (NULL allowed), $5 the
 * canonical payload (audit_canonical_json(); hashed verbatim and stored as
 * jsonb), $6 created_at as "YYYY-MM-DDTHH:MM:SS.sssZ" (stored as the UTC
 * wall time in the timestamp-without-time-zone column, whatever the session
 * TimeZone).  prev_hash is the hash of the mesh's latest row by id, else
 * "genesis"; the hash is computed by PostgreSQL's sha256() exactly like
 * audit_hash().  Returns one row: id, hash.
 */
#define AUDIT_SQL_INSERT \
	"INSERT INTO mesh.audit_log (mesh_id, event_type, actor_member_id," \
	" actor_display_name, payload, prev_hash, hash, created_at)" \
	" SELECT $1::text, $2::text, $3::text, $4::text, $5::text::jsonb, t.prev," \
	" encode(sha256(convert_to(t.prev || '|' || $1::text || '|' || $2::text" \
	" || '|' || coalesce($3::text, 'null') || '|' || $5::text || '|' || $6::text," \
	" 'UTF8')), 'hex')," \
	" ($6::text::timestamptz AT TIME ZONE 'UTC')" \
	" FROM (SELECT coalesce((SELECT a.hash FROM mesh.audit_log a" \
	" WHERE a.mesh_id = $1::text ORDER BY a.id DESC LIMIT 1), 'genesis') AS prev) t" \
	" RETURNING id, hash"

/*
 * AUDIT_SQL_VERIFY_ROWS: $1 mesh_id.  One row per entry, by id ascending:
 * id, prev_hash, hash, mesh_id, event_type, actor_member_id, payload::text,
 * created_at as "YYYY-MM-DDTHH:MM:SS.sssZ".  jsonb normalises the payload
 * text (key order, spacing, number spelling), so a verifier must parse it
 * and render it again with audit_canonical_json() before hashing.
 */
#define AUDIT_SQL_VERIFY_ROWS \
	"SELECT id, prev_hash, hash, mesh_id, event_type, actor_member_id," \
	" payload::text, to_char(created_at, 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')" \
	" FROM mesh.audit_log WHERE mesh_id = $1::text ORDER BY id"

/*
 * canonicalJson of §D: JavaScript JSON.stringify for scalars (strings with
 * JSON escapes, other controls as \u00xx, non-ASCII raw; numbers in JS
 * shortest form, -0 as 0, non-finite as null), arrays in order, object keys
 * sorted by UTF-16 code units, no whitespace.  Integers beyond ±2^53 are
 * printed as the double JavaScript would hold.  Returns a string from
 * xmalloc() (xfree() it), or NULL for NULL input, invalid UTF-8 or nesting
 * deeper than AUDIT_MAX_DEPTH.  Any thread.
 */
char *audit_canonical_json(const json_t *v) __attribute__((warn_unused_result));

/*
 * Lowercase hex SHA-256 of prev|mesh|event|actor|payload|createdAt into
 * out_hex (NUL-terminated).  actor_member_id NULL hashes as "null";
 * canonical_payload is audit_canonical_json() output.  sodium_init() must
 * have run.  Any thread.
 */
void audit_hash(const char *prev_hash, const char *mesh_id, const char *event_type,
		const char *actor_member_id, const char *canonical_payload,
		const char *created_at_iso, char out_hex[AUDIT_HASH_HEX_LEN + 1]);

/*
 * Advisory-lock key of a mesh's chain: the first 8 bytes of
 * SHA-256("audit:" + mesh_id) as a big-endian integer, top bit cleared
 * (mesh "m1" -> 3574534591299229875).  Any thread.
 */
int64_t audit_lock_key(const char *mesh_id);

/*
 * verifyChain of §D over a blocking libpq connection: for tests and tools
 * only, never on a worker or the db thread.  Returns true when the chain is
 * intact (also when empty).  *entries is the number of rows; on a broken
 * link or hash *broken_at is the first bad row's id (else -1).  A query
 * failure returns false with both set to -1 (logged, without payloads).
 */
bool audit_verify_chain(PGconn *pg, const char *mesh_id, long long *entries,
			long long *broken_at) __attribute__((warn_unused_result));

struct db;

/* What the broker runs: mesh.meshd_audit_append() (src/sql/0002), which
 * takes the lock, reads the latest row with a fresh snapshot and inserts,
 * in one statement.  $1 lock key, then AUDIT_SQL_INSERT's $1..$6. */
#define AUDIT_SQL_APPEND \
	"SELECT mesh.meshd_audit_append($1::bigint, $2, $3, $4, $5, $6, $7)"

/* Appends one row to mesh_id's chain through the db thread, as a write job
 * in the same group-commit transaction as the change it records.  payload is canonicalised here
 * (the caller keeps its reference).  Any thread. */
void audit_submit(struct db *db, const char *mesh_id, const char *event_type,
		  const char *actor_member_id, const char *actor_display_name,
		  const json_t *payload, int64_t created_ms);

#endif
