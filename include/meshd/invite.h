/* invite — what an invite is made of (SEMANTICS.md §C.4–C.7): the v1
 * payload and its canonical string and token, the v2 canonical string and
 * capability, Ed25519 signatures over them, strict base64url, and the root
 * key sealed to a claimer's X25519 key.
 *
 * Pure functions, any thread: the broker's /join and claim routes and the
 * meshctl tool share them, so a link meshctl prints verifies in the broker.
 */
#ifndef MESHD_INVITE_H
#define MESHD_INVITE_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

/* Bounds of what is decoded: a token longer than this is refused. */
#define INVITE_TOKEN_MAX 8192

/* base64url without padding (RFC 4648 §5), strict: no '=', '+', '/',
 * whitespace or other bytes, no impossible length, no non-zero trailing
 * bits.  Decodes into out (cap bytes); false on any of those or when it
 * does not fit. */
bool b64url_decode(const char *s, unsigned char *out, size_t cap, size_t *len)
	__attribute__((warn_unused_result));
char *b64url_encode(const unsigned char *data, size_t len); /* caller frees */

/* The v1 canonical string of a payload object (§C.4):
 * "<v>|<mesh_id>|<mesh_slug>|<broker_url>|<expires_at>|<mesh_root_key>|<role>|<owner_pubkey>",
 * numbers written as JavaScript writes them.  NULL when a field is missing
 * or of another type (nothing such can carry a valid signature). */
char *invite_v1_canonical(const json_t *payload);
/* "v=2|<mesh_id>|<invite_id>|<expires_at_unix>|<role>|<owner_pubkey_hex>" (§C.5). */
char *invite_v2_canonical(const char *mesh_id, const char *invite_id, long long expires_at_unix,
			  const char *role, const char *owner_pubkey_hex);
/* The v2 capability stored on the invite row: {"canonical","signature"}. */
char *invite_v2_capability(const char *canonical, const char *signature_hex);

/* Ed25519 over msg with a libsodium secret key (seed ‖ public key): the
 * 128 lowercase hex characters of the signature. */
void invite_sign(const char *msg, const unsigned char sk[64], char sig_hex[129]);
/* verifyEd25519(msg, signature hex, public key hex): false for any shape
 * that is not 128 and 64 hex characters. */
bool invite_verify(const char *msg, const char *sig_hex, const char *pubkey_hex)
	__attribute__((warn_unused_result));

/* The v1 token: base64url of the payload's compact JSON (keys in order). */
char *invite_v1_token(const json_t *payload);
/* The payload a token carries (an object), or NULL. */
json_t *invite_v1_token_payload(const char *token);

/* sealRootKeyToRecipient (§C.5): both keys strict base64url, the recipient
 * exactly 32 bytes; returns base64url of crypto_box_seal(root, recipient),
 * or NULL when either key does not decode. */
char *invite_seal_root_key(const char *root_key_b64url, const char *recipient_b64url);
/* The recipient key decodes to exactly 32 bytes (checked before a claim
 * consumes anything, D6). */
bool invite_recipient_key_ok(const char *recipient_b64url);

#endif
