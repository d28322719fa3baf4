/* fuzz_hello — libFuzzer harness for the stateless handshake checks
 * (hello_check() of src/hello.c, `hello` and `session_hello`).
 *
 * Build: clang -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude -I build \
 *        tests/fuzz/fuzz_hello.c src/hello.c src/jscompat.c src/strbuf.c \
 *        src/limits.c src/metrics.c src/alloc.c src/log.c \
 *        -ljansson -lsodium -levent_core -o /tmp/fuzz_hello
 * Run:   /tmp/fuzz_hello tests/fuzz/corpus/hello
 *
 * Input: one mode byte, then one JSON frame, parsed as dispatch.c parses a
 * WebSocket message (JSON_DECODE_ANY | JSON_ALLOW_NUL).  The kind follows
 * the frame's "type" as dispatch.c picks it ("hello" / "session_hello"),
 * else mode bit 0.  Mode bit 1 picks the wall clock: the PROTOCOL.md §12
 * vectors' 1767225600000, else SEMANTICS.md §C.7's 1700000000000.
 *
 * Mode bit 2 makes the harness re-sign the frame with the unit tests' keys
 * (seeds 0x01 / 0x02, check_hello.c) before checking it: the keys are set to
 * those keys and every signature is computed over the canonical string as
 * this file renders it from the frame's own fields (a template string's
 * `${v}` of any JSON value, written here independently of hello.c).  So the
 * fuzzer reaches what lies past the Ed25519 checks for any meshId, memberId
 * and timestamp, and the verdict must then never be a signature or key
 * rejection: that is a differential check of the canonical strings.
 *
 * Always checked: no crash or leak; a repeated hello_check() gives the same
 * verdict and the same fields; a rejection leaves *h empty and has a row in
 * hello_rejection(); HELLO_OK fills what hello.h promises with the frame's
 * own strings, groups within limits.h's bounds; hello_format_message() is
 * NUL-terminated and sized right.
 */
#include "config.h"

#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "meshd/alloc.h"
#include "meshd/hello.h"
#include "meshd/jscompat.h"
#include "meshd/limits.h"
#include "meshd/strbuf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MPK "8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c"
#define SPK "8139770ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b394"

static unsigned char msk[crypto_sign_SECRETKEYBYTES], ssk[crypto_sign_SECRETKEYBYTES];

static void require(int cond)
{
	if (!cond)
		abort();
}

static void keys_init(void)
{
	unsigned char seed[crypto_sign_SEEDBYTES], pk[crypto_sign_PUBLICKEYBYTES];
	char hex[65];

	require(sodium_init() >= 0);
	memset(seed, 0x01, sizeof(seed));
	crypto_sign_seed_keypair(pk, msk, seed);
	sodium_bin2hex(hex, sizeof(hex), pk, sizeof(pk));
	require(strcmp(hex, MPK) == 0);
	memset(seed, 0x02, sizeof(seed));
	crypto_sign_seed_keypair(pk, ssk, seed);
	sodium_bin2hex(hex, sizeof(hex), pk, sizeof(pk));
	require(strcmp(hex, SPK) == 0);
}

/* ---- the harness's own rendering of `${v}` ---- */

static void js_number(struct strbuf *b, double d)
{
	char t[JS_NUMBER_MAX];
	strbuf_add(b, t, js_number_to_string(d, t));
}

/* String(v) in JavaScript for a value JSON.parse can produce (undefined
 * for a missing one): arrays join their elements' String() with ",",
 * null (and undefined) elements as "". */
static void js_render(struct strbuf *b, const json_t *v, bool in_array)
{
	if (!v) {
		strbuf_adds(b, in_array ? "" : "undefined");
		return;
	}
	switch (json_typeof(v)) {
	case JSON_STRING:
		strbuf_add(b, json_string_value(v), json_string_length(v));
		break;
	case JSON_INTEGER:
		js_number(b, (double)json_integer_value(v));
		break;
	case JSON_REAL:
		js_number(b, json_real_value(v));
		break;
	case JSON_TRUE:
		strbuf_adds(b, "true");
		break;
	case JSON_FALSE:
		strbuf_adds(b, "false");
		break;
	case JSON_NULL:
		strbuf_adds(b, in_array ? "" : "null");
		break;
	case JSON_ARRAY:
		for (size_t i = 0; i < json_array_size(v); i++) {
			if (i)
				strbuf_addc(b, ',');
			js_render(b, json_array_get(v, i), true);
		}
		break;
	case JSON_OBJECT:
		strbuf_adds(b, "[object Object]");
		break;
	}
}

/* The number a field holds, as JavaScript holds it; false unless finite. */
static bool number_field(const json_t *o, const char *key, double *out)
{
	const json_t *v = json_object_get(o, key);
	if (!json_is_number(v))
		return false;
	*out = json_number_value(v);
	return isfinite(*out);
}

static void sign_into(json_t *o, const char *key, const struct strbuf *msg,
		      const unsigned char *sk)
{
	unsigned char sig[crypto_sign_BYTES];
	char hex[2 * crypto_sign_BYTES + 1];

	crypto_sign_detached(sig, NULL, (const unsigned char *)msg->p, msg->len, sk);
	sodium_bin2hex(hex, sizeof(hex), sig, sizeof(sig));
	json_object_set_new(o, key, json_string(hex));
}

/* §5.1: the member key signs meshId|memberId|pubkey|timestamp.  False if
 * the timestamp is not a number (nothing can be signed over it). */
static bool resign_member(json_t *m)
{
	struct strbuf b = { 0 };
	double ts;

	if (!number_field(m, "timestamp", &ts))
		return false;
	json_object_set_new(m, "pubkey", json_string(MPK));
	js_render(&b, json_object_get(m, "meshId"), false);
	strbuf_addc(&b, '|');
	js_render(&b, json_object_get(m, "memberId"), false);
	strbuf_adds(&b, "|" MPK "|");
	js_number(&b, ts);
	sign_into(m, "signature", &b, msk);
	xfree(b.p);
	return true;
}

/* §5.2: the parent attests the session key, the session key signs the
 * session hello.  False if a number needed is missing. */
static bool resign_session(json_t *m)
{
	struct strbuf b = { 0 };
	json_t *att = json_object_get(m, "parentAttestation");
	double expires, ts;

	if (!json_is_object(att) || !number_field(att, "expiresAt", &expires) ||
	    !number_field(m, "timestamp", &ts))
		return false;
	json_object_set_new(m, "sessionPubkey", json_string(SPK));
	json_object_set_new(m, "parentMemberPubkey", json_string(MPK));
	json_object_set_new(att, "sessionPubkey", json_string(SPK));
	json_object_set_new(att, "parentMemberPubkey", json_string(MPK));
	strbuf_adds(&b, "claudemesh-session-attest|" MPK "|" SPK "|");
	js_number(&b, expires);
	sign_into(att, "signature", &b, msk);
	b.len = 0;
	strbuf_adds(&b, "claudemesh-session-hello|");
	js_render(&b, json_object_get(m, "meshId"), false);
	strbuf_adds(&b, "|" MPK "|" SPK "|");
	js_number(&b, ts);
	sign_into(m, "signature", &b, ssk);
	xfree(b.p);
	return true;
}

/* ---- the checks ---- */

static bool str_eq(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static void same_hello(const struct hello *a, const struct hello *b)
{
	require(a->kind == b->kind);
	require(str_eq(a->mesh_id, b->mesh_id) && str_eq(a->member_id, b->member_id));
	require(a->member_id_truthy == b->member_id_truthy);
	require(str_eq(a->pubkey, b->pubkey) && str_eq(a->session_pubkey, b->session_pubkey));
	require(str_eq(a->session_id, b->session_id) && str_eq(a->cwd, b->cwd));
	require(a->pid == b->pid && str_eq(a->display_name, b->display_name));
	require(str_eq(a->hostname, b->hostname) && str_eq(a->peer_type, b->peer_type));
	require(str_eq(a->channel, b->channel) && str_eq(a->model, b->model));
	require(a->groups_present == b->groups_present && a->ngroups == b->ngroups);
	for (size_t i = 0; i < a->ngroups; i++)
		require(str_eq(a->groups[i].name, b->groups[i].name) &&
			str_eq(a->groups[i].role, b->groups[i].role));
	/* Both parsed from the same numbers: bitwise equal. */
	require(memcmp(&a->timestamp, &b->timestamp, sizeof(double)) == 0);
	require(memcmp(&a->expires_at, &b->expires_at, sizeof(double)) == 0);
}

static bool is_empty(const struct hello *h)
{
	return !h->mesh_id && !h->member_id && !h->pubkey && !h->session_pubkey &&
	       !h->session_id && !h->cwd && !h->display_name && !h->hostname && !h->peer_type &&
	       !h->channel && !h->model && !h->groups && h->ngroups == 0;
}

static bool is_lower_hex64(const char *s)
{
	if (!s || strlen(s) != 64)
		return false;
	for (size_t i = 0; i < 64; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

static void check_ok(const json_t *msg, const struct hello *h, enum hello_kind kind)
{
	require(h->mesh_id && h->pubkey && h->session_id && h->cwd);
	require(str_eq(h->mesh_id, js_field(msg, "meshId")));
	require(str_eq(h->session_id, js_field(msg, "sessionId")));
	require(str_eq(h->cwd, js_field(msg, "cwd")));
	require(strlen(h->pubkey) == 64);
	require(!h->session_pubkey || is_lower_hex64(h->session_pubkey));
	require(!h->display_name || *h->display_name);
	if (kind == HELLO_MEMBER) {
		require(h->member_id && str_eq(h->member_id, js_field(msg, "memberId")));
		require(hello_member_id_matches(h, h->member_id));
	} else {
		require(is_lower_hex64(h->pubkey) && h->session_pubkey);
		require(!h->member_id || *h->member_id);
		if (!h->member_id_truthy)
			require(hello_member_id_matches(h, "anyone"));
	}
	const json_t *g = json_object_get(msg, "groups");
	require(h->ngroups <= json_array_size(g) && h->ngroups <= GROUPS_MAX);
	for (size_t i = 0; i < h->ngroups; i++) {
		const char *name = h->groups[i].name, *role = h->groups[i].role;
		require(name && limit_text_ok(name, strlen(name), GROUP_NAME_MAX_BYTES));
		require(!role || (*role && limit_text_ok(role, strlen(role), GROUP_ROLE_MAX_BYTES)));
	}
}

static void check_row(enum hello_reject r)
{
	const struct hello_rejection *row = hello_rejection(r);
	char small[8], *big;
	size_t n;

	require(r > HELLO_OK && r < HR__COUNT && row != NULL);
	require(row->name && row->code && row->message && row->close_reason);
	require(row->close_code == 1008 || row->close_code == 4002);
	n = hello_format_message(r, "mesh", small, sizeof(small));
	require(strlen(small) == (n < sizeof(small) ? n : sizeof(small) - 1));
	big = xmalloc(n + 1);
	require(hello_format_message(r, NULL, big, n + 1) <= n);
	xfree(big);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool init;
	if (!init) {
		keys_init();
		init = true;
	}
	if (size < 1)
		return 0;

	uint8_t mode = data[0];
	json_t *msg = json_loadb((const char *)data + 1, size - 1,
				 JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
	if (!msg)
		return 0;
	const char *type = js_field(msg, "type");
	enum hello_kind kind = (mode & 1) ? HELLO_SESSION : HELLO_MEMBER;
	if (type && strcmp(type, "hello") == 0)
		kind = HELLO_MEMBER;
	else if (type && strcmp(type, "session_hello") == 0)
		kind = HELLO_SESSION;
	int64_t now = (mode & 2) ? 1700000000000LL : 1767225600000LL;
	bool resigned = false;
	if ((mode & 4) && json_is_object(msg))
		resigned = kind == HELLO_SESSION ? resign_session(msg) : resign_member(msg);

	struct hello h1, h2;
	enum hello_reject r1 = hello_check(msg, kind, now, &h1);
	enum hello_reject r2 = hello_check(msg, kind, now, &h2);
	require(r1 == r2);
	require(h1.kind == kind && h2.kind == kind);
	same_hello(&h1, &h2);
	if (r1 == HELLO_OK) {
		check_ok(msg, &h1, kind);
	} else {
		require(is_empty(&h1));
		check_row(r1);
	}
	if (resigned) {
		/* Keys and signatures are right by construction: what is left is
		 * the clock, the attestation's lifetime and the Q11 fields. */
		if (kind == HELLO_MEMBER)
			require(r1 != HR_MALFORMED && r1 != HR_BAD_SIGNATURE);
		else
			require(r1 != HR_BAD_SESSION_PUBKEY && r1 != HR_BAD_PARENT_PUBKEY &&
				r1 != HR_ATTESTATION_MISMATCH && r1 != HR_ATT_BAD_SIGNATURE &&
				r1 != HR_SESSION_MALFORMED && r1 != HR_SESSION_BAD_SIGNATURE);
	}
	hello_free(&h1);
	hello_free(&h2);
	require(is_empty(&h1));
	hello_free(&h1); /* twice is safe */
	json_decref(msg);
	return 0;
}
