/* hello — the stateless half of the handshake (PROTOCOL.md §5.1–5.3).
 *
 * hello_check() parses a `hello` or `session_hello` object and runs, in the
 * exact order of §5.3, every check that needs neither the database nor the
 * mesh state: key shapes, attestation binding, expiry, clock skew, and the
 * Ed25519 signatures.  It returns the first rejection.  What is left to the
 * caller, in this order, after a HELLO_OK:
 *
 *   member lookup by (mesh_id, pubkey) — exact string match on `pubkey`:
 *     revoked row → HR_REVOKED; none → HR_UNAUTHORIZED / HR_PARENT_UNAUTHORIZED;
 *     archived mesh (Q6) → HR_MESH_ARCHIVED / HR_PARENT_MESH_ARCHIVED;
 *     !hello_member_id_matches() → HR_MEMBER_ID_MISMATCH (Q5) /
 *     HR_PARENT_MEMBER_ID_MISMATCH;
 *   reattach match (§7.8), else capacity → HR_CAPACITY (Q7: only when a new
 *   presence would be created), dedup and presence creation.
 *
 * Every rejection, including the caller's, has a row in one table:
 * hello_rejection() gives its error code, message, close code/reason and
 * metric label.
 *
 * meshd's choices where the reference leaves a gap (D5):
 *  - Q11: meshId, sessionId and cwd must be strings, pid an integer in
 *    int32 range (a JSON integer or an integral real), and for `hello` also
 *    memberId a string.  Checked right after the signatures pass; failure is
 *    HR_MISSING_FIELDS / HR_SESSION_MISSING_FIELDS ("malformed", 1008),
 *    where the reference would go silent.
 *  - Canonical strings render every value as JavaScript's template string
 *    would: a missing value is "undefined", null "null", a number as
 *    String(number) (so any finite number works, not only integers).  A
 *    missing meshId/memberId thus makes the signature fail (bad_signature).
 *  - sessionPubkey (hello) counts as given when JavaScript-truthy: "",
 *    null, false and 0 mean none; any other non-string is bad_session_pubkey.
 *  - groups: entries that are not objects with a string `name` are skipped;
 *    a `role` that is not a non-empty string is dropped.  A `groups` value
 *    that is not an array is treated as absent.
 *  - hostname, peerType, channel, model: kept only when strings.
 *  - Strings with an embedded NUL (only possible with JSON_ALLOW_NUL) are
 *    treated as non-strings.
 *
 * Everything here is pure: any thread may call it.  sodium_init() must have
 * run (main does it at start-up).
 */
#ifndef MESHD_HELLO_H
#define MESHD_HELLO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "meshd/metrics.h"

#define HELLO_SKEW_MS 60000
#define HELLO_ATTESTATION_MAX_TTL_MS 86400000

enum hello_kind { HELLO_MEMBER, HELLO_SESSION };

enum hello_reject {
	HELLO_OK = 0,
	/* hello, §5.3 first table (capacity and revoked serve both kinds) */
	HR_BAD_SESSION_PUBKEY,
	HR_CAPACITY,                 /* caller */
	HR_TIMESTAMP_SKEW,
	HR_MALFORMED,
	HR_BAD_SIGNATURE,
	HR_REVOKED,                  /* caller */
	HR_UNAUTHORIZED,             /* caller */
	/* session_hello, §5.3 second table */
	HR_BAD_PARENT_PUBKEY,
	HR_ATTESTATION_MISMATCH,
	HR_ATT_MALFORMED,
	HR_ATT_EXPIRED,
	HR_ATT_TTL_TOO_LONG,
	HR_ATT_BAD_SIGNATURE,
	HR_SESSION_TIMESTAMP_SKEW,
	HR_SESSION_MALFORMED,
	HR_SESSION_BAD_SIGNATURE,
	HR_PARENT_UNAUTHORIZED,      /* caller */
	HR_PARENT_MEMBER_ID_MISMATCH, /* caller */
	/* meshd's fixes (D5); on the wire they look like the rows they copy */
	HR_MISSING_FIELDS,           /* Q11, hello: as HR_MALFORMED */
	HR_SESSION_MISSING_FIELDS,   /* Q11, session_hello: as HR_SESSION_MALFORMED */
	HR_MEMBER_ID_MISMATCH,       /* Q5, caller: as HR_UNAUTHORIZED */
	HR_MESH_ARCHIVED,            /* Q6, caller: as HR_UNAUTHORIZED */
	HR_PARENT_MESH_ARCHIVED,     /* Q6, caller: as HR_PARENT_UNAUTHORIZED */
	HR__COUNT
};

struct hello_rejection {
	const char *name;          /* distinct per row, for logs ("member_id_mismatch") */
	const char *code;          /* the error frame's `code` */
	const char *message;       /* the error frame's `message`; HR_REVOKED's holds
	                            * one "%s" for the mesh label: use hello_format_message() */
	uint16_t close_code;       /* 1008, or 4002 for revoked */
	const char *close_reason;  /* = code, or "banned" for revoked */
	enum reject_reason metric; /* broker_connections_rejected_total{reason} */
};

/* The row of r; NULL for HELLO_OK or out of range. */
const struct hello_rejection *hello_rejection(enum hello_reject r);

/* Writes r's message into out (snprintf semantics: always NUL-terminated when
 * cap > 0) and returns its full length; size out by the return value, since
 * a cut label could split a UTF-8 sequence.  label (HR_REVOKED only) is
 * mesh.name, else mesh.slug, else the meshId; NULL prints as "". */
size_t hello_format_message(enum hello_reject r, const char *label, char *out, size_t cap);

struct hello_group {
	char *name;
	char *role;                /* NULL when absent, empty or not a string */
};

struct hello {
	enum hello_kind kind;
	char *mesh_id;
	/* hello: memberId.  session_hello: parentMemberId when a non-empty
	 * string, else NULL; compare with hello_member_id_matches(). */
	char *member_id;
	bool member_id_truthy;     /* session_hello: parentMemberId JS-truthy */
	/* Member key for the lookup, exactly as sent (hello.pubkey, any hex case)
	 * or parentMemberPubkey (lowercase). */
	char *pubkey;
	char *session_pubkey;      /* lowercase hex, or NULL (hello without one) */
	char *session_id;
	char *cwd;
	int32_t pid;
	char *display_name;        /* non-empty, or NULL */
	char *hostname, *peer_type, *channel, *model; /* NULL when absent */
	/* Whether these groups replace the restored/default ones: hello, a
	 * non-empty array (§5.5, even if every entry was skipped); session_hello,
	 * an array at all, even [] (§5.2). */
	bool groups_present;
	struct hello_group *groups;
	size_t ngroups;
	double timestamp;
	double expires_at;         /* session_hello: parentAttestation.expiresAt */
};

/* Parses msg as `kind` and checks it against the wall clock now_ms.  On
 * HELLO_OK *h is filled (mesh_id, pubkey, session_id and cwd are non-NULL,
 * member_id too for hello); on a rejection *h is left empty.  Either way
 * hello_free() is safe.  Runs the Ed25519 verifications (CPU work on the
 * reading worker).  Any thread. */
enum hello_reject hello_check(const json_t *msg, enum hello_kind kind, int64_t now_ms,
			      struct hello *h) __attribute__((warn_unused_result));
void hello_free(struct hello *h);

/* Q5 / §5.3 #9, given the id of the member the lookup resolved: hello
 * needs memberId equal; session_hello needs parentMemberId falsy or equal. */
bool hello_member_id_matches(const struct hello *h, const char *resolved_member_id) __attribute__((warn_unused_result));

/* The canonical strings of §5.1 and §5.2, xmalloc'd (xfree them).  Any thread. */
char *hello_canonical_member(const char *mesh_id, const char *member_id, const char *pubkey,
			     double timestamp);
char *hello_canonical_attestation(const char *parent_pubkey, const char *session_pubkey,
				  double expires_at);
char *hello_canonical_session(const char *mesh_id, const char *parent_pubkey,
			      const char *session_pubkey, double timestamp);

/* Ed25519 detached verification as SEMANTICS.md §C.1: false unless pubkey is
 * 64 and signature 128 hex characters (either case).  Any thread. */
bool hello_verify(const char *canonical, const char *signature_hex, const char *pubkey_hex) __attribute__((warn_unused_result));

#endif
