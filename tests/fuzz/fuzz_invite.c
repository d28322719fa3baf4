/* fuzz_invite — libFuzzer harness for invite parsing (src/invite.c) and
 * the pure parts of the routes that use it: the /join body's payload check
 * (src/join.c runs invite_v1_canonical + invite_verify on it) and the claim
 * route's target parser claim_code() (src/claim.c).
 *
 * Build: clang -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude -I build \
 *        -I/usr/include/postgresql -DFUZZ_CLAIM_CODE \
 *        tests/fuzz/fuzz_invite.c src/invite.c src/hello.c src/jscompat.c \
 *        src/strbuf.c src/limits.c src/metrics.c src/alloc.c src/log.c src/claim.c \
 *        build/src/libmeshd.a -levent_core -lpq -lsodium -ljansson -lcrypto \
 *        -lwslay -lm -o /tmp/fuzz_invite
 *        (claim.c needs the rest of the broker, taken uninstrumented from
 *        libmeshd.a; without -DFUZZ_CLAIM_CODE, claim.c and libmeshd.a can be
 *        left out and mode 3 does nothing.)
 * Run:   /tmp/fuzz_invite tests/fuzz/corpus/invite
 *
 * Input: one mode byte, then the bytes (cut at the first NUL where a C
 * string is needed).  Mode & 3:
 *   0  an invite token: invite_v1_token_payload(); a payload it gives
 *      re-encodes (invite_v1_token) to a token that decodes to an equal
 *      payload with the same canonical string;
 *   1  a /join body, parsed as join.c parses it (JSON_DECODE_ANY): the
 *      invite_payload's canonical string and signature check; with mode
 *      bit 2 the harness signs that canonical string with the unit tests'
 *      owner key (seed 0x01) and the check must then pass;
 *   2  a root key and a recipient key, cut where the second byte says:
 *      invite_seal_root_key() succeeds exactly when both decode and the
 *      recipient is 32 bytes, and gives root + 48 bytes (crypto_box_seal);
 *   3  a claim target: claim_code()'s code is the one segment between
 *      "/invites/" and "/claim".
 * Always, for the bytes as a string: strict base64url decoding is
 * canonical (what decodes re-encodes to the same text), a buffer one byte
 * short is refused, and invite_recipient_key_ok() agrees with it.
 *
 * Found by it, 2026-12-03: b64url_decode() accepted any byte 0x80-0xff as
 * '_' (libsodium 1.0.18's sodium_base642bin does); fixed in src/invite.c,
 * the reproducers are seeds (corpus/invite/regress-b64-high-byte*).
 *
 * Not reachable here: join_http(), claim_http() and hook_http() take a
 * connection on a shard and answer through the database; their JSON
 * handling is static.  The payload check above is the pure part of
 * join_http(); the claim route's only pure helper is claim_code().
 */
#include "config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "meshd/alloc.h"
#include "meshd/invite.h"
#ifdef FUZZ_CLAIM_CODE
#include "meshd/claim.h"
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define OWNER_PK "8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c"

static unsigned char owner_sk[crypto_sign_SECRETKEYBYTES];

static void require(int cond)
{
	if (!cond)
		abort();
}

static void init_once(void)
{
	static bool done;
	unsigned char seed[crypto_sign_SEEDBYTES], pk[crypto_sign_PUBLICKEYBYTES];
	char hex[65];

	if (done)
		return;
	require(sodium_init() >= 0);
	memset(seed, 0x01, sizeof(seed));
	crypto_sign_seed_keypair(pk, owner_sk, seed);
	sodium_bin2hex(hex, sizeof(hex), pk, sizeof(pk));
	require(strcmp(hex, OWNER_PK) == 0);
	done = true;
}

/* Strict base64url is canonical: decoding then encoding gives s back. */
static void check_b64url(const char *s)
{
	size_t n = strlen(s), len = 0;
	unsigned char *buf = xmalloc(n + 1);
	bool ok = b64url_decode(s, buf, n + 1, &len);

	if (ok) {
		char *again = b64url_encode(buf, len);
		require(len <= n && strcmp(again, s) == 0);
		xfree(again);
		if (len > 0) {
			size_t len2 = 0;
			require(!b64url_decode(s, buf, len - 1, &len2));
		}
	}
	require(invite_recipient_key_ok(s) == (ok && len == crypto_box_PUBLICKEYBYTES));
	xfree(buf);
}

static void check_token(const char *token)
{
	json_t *p = invite_v1_token_payload(token);
	if (!p)
		return;
	require(json_is_object(p) && strlen(token) <= INVITE_TOKEN_MAX);
	char *c = invite_v1_canonical(p);
	char *t2 = invite_v1_token(p);
	/* Re-encoding may grow the text (reals print with 17 digits). */
	if (strlen(t2) <= INVITE_TOKEN_MAX) {
		json_t *p2 = invite_v1_token_payload(t2);
		require(p2 != NULL && json_equal(p, p2));
		char *c2 = invite_v1_canonical(p2);
		require((!c && !c2) || (c && c2 && strcmp(c, c2) == 0));
		xfree(c2);
		json_decref(p2);
	}
	xfree(t2);
	xfree(c);
	json_decref(p);
}

/* The payload check of join_http(), and with sign its positive side. */
static void check_join_body(const char *body, size_t len, bool sign)
{
	json_t *o = json_loadb(body, len, JSON_DECODE_ANY, NULL);
	json_t *payload = json_object_get(o, "invite_payload");
	char *c = invite_v1_canonical(payload);

	if (c) {
		size_t bars = 0;
		for (const char *q = c; *q; q++)
			bars += *q == '|';
		require(bars >= 7);
		json_t *sig = json_object_get(payload, "signature");
		json_t *owner = json_object_get(payload, "owner_pubkey");
		if (json_is_string(sig) && json_is_string(owner)) {
			bool v1 = invite_verify(c, json_string_value(sig), json_string_value(owner));
			bool v2 = invite_verify(c, json_string_value(sig), json_string_value(owner));
			require(v1 == v2);
		}
		if (sign && json_is_string(json_object_get(payload, "owner_pubkey"))) {
			/* Sign what the payload says, with owner_pubkey set to the
			 * signer: the canonical string covers owner_pubkey, so
			 * compute it again after setting it. */
			char hex[129];
			json_object_set_new(payload, "owner_pubkey", json_string(OWNER_PK));
			xfree(c);
			c = invite_v1_canonical(payload);
			require(c != NULL);
			invite_sign(c, owner_sk, hex);
			require(invite_verify(c, hex, OWNER_PK));
			hex[0] = hex[0] == '0' ? '1' : '0';
			require(!invite_verify(c, hex, OWNER_PK));
		}
	}
	xfree(c);
	json_decref(o);
}

static void check_seal(const char *s, size_t cut)
{
	size_t n = strlen(s);
	if (cut > n)
		cut = n;
	char *root = xstrndup(s, cut);
	const char *recipient = s + cut;
	unsigned char *buf = xmalloc(n + 1);
	size_t rootlen = 0;
	bool root_ok = strlen(root) <= INVITE_TOKEN_MAX && b64url_decode(root, buf, n + 1, &rootlen);
	bool rec_ok = invite_recipient_key_ok(recipient);
	char *sealed = invite_seal_root_key(root, recipient);

	require((sealed != NULL) == (root_ok && rec_ok));
	if (sealed) {
		size_t slen = 0, cap = strlen(sealed) + 1;
		unsigned char *out = xmalloc(cap);
		require(b64url_decode(sealed, out, cap, &slen));
		require(slen == rootlen + crypto_box_SEALBYTES);
		xfree(out);
	}
	xfree(sealed);
	xfree(buf);
	xfree(root);
}

#ifdef FUZZ_CLAIM_CODE
static void check_claim_target(const char *t, size_t len)
{
	size_t code_len = 0;
	const char *code = claim_code(t, len, &code_len);
	if (!code)
		return;
	require(code == t + strlen("/invites/"));
	require(code_len > 0 && code_len + strlen("/invites/") + strlen("/claim") == len);
	require(memchr(code, '/', code_len) == NULL);
	require(memcmp(t, "/invites/", 9) == 0 && memcmp(code + code_len, "/claim", 6) == 0);
}
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	init_once();
	if (size < 1)
		return 0;
	uint8_t mode = data[0];
	const char *rest = (const char *)data + 1;
	size_t len = size - 1;
	/* The C-string view: up to the first NUL. */
	char *s = xstrndup(rest, len);

	check_b64url(s);
	switch (mode & 3) {
	case 0:
		check_token(s);
		break;
	case 1:
		check_join_body(rest, len, mode & 4);
		break;
	case 2:
		/* The first byte picks the cut; s is empty if it is a NUL. */
		check_seal(*s ? s + 1 : s, *s ? (unsigned char)s[0] : 0);
		break;
	case 3:
#ifdef FUZZ_CLAIM_CODE
		check_claim_target(rest, len);
#endif
		break;
	}
	xfree(s);
	return 0;
}
