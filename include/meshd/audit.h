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
 * The broker itself never hashes in C: a worker renders each canonical
 * payload with audit_canonical_json() (audit_entry) and, once per loop
 * iteration, submits its entries as one AUDIT_SQL_APPEND_MANY write job;
 * PostgreSQL takes each mesh's advisory lock, reads the chain's tail and
 * computes the hash.  audit_hash() is the same computation in C, for
 * verification and tests.
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


/* What the broker runs: mesh.meshd_audit_append_many() (src/sql/0004) with
 * the entries a worker gathered during one loop iteration: for each mesh it
 * takes the advisory lock, reads the chain's head with a fresh snapshot and
 * appends, all in one statement of the group-commit batch. */
#define AUDIT_SQL_APPEND_MANY "SELECT mesh.meshd_audit_append_many($1::jsonb)"

/* One entry for AUDIT_SQL_APPEND_MANY: the lock key, the ids, the canonical
 * payload text and the ISO createdAt the hash covers.  NULL if the payload
 * cannot be canonicalised (logged).  Any thread. */
json_t *audit_entry(const char *mesh_id, const char *event_type, const char *actor_member_id,
		    const char *actor_display_name, const json_t *payload, int64_t created_ms);

#endif
