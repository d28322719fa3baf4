/* invite — canonical strings, signatures, tokens and sealing; see include/meshd/invite.h. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "meshd/alloc.h"
#include "meshd/hello.h"
#include "meshd/invite.h"
#include "meshd/jscompat.h"
#include "meshd/strbuf.h"

#define B64URL sodium_base64_VARIANT_URLSAFE_NO_PADDING

static bool b64url_char(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_';
}

bool b64url_decode(const char *s, unsigned char *out, size_t cap, size_t *len)
{
	const char *end = NULL;
	size_t n = strlen(s);
	/* libsodium 1.0.18 decodes every byte 0x80-0xff as '_' (found by
	 * tests/fuzz/fuzz_invite.c): the alphabet is checked here first, so a
	 * token or key has no non-ASCII aliases. */
	for (size_t i = 0; i < n; i++)
		if (!b64url_char((unsigned char)s[i]))
			return false;
	/* libsodium refuses padding and non-zero trailing bits; a string it
	 * stops short of is refused here. */
	if (sodium_base642bin(out, cap, s, n, NULL, len, &end, B64URL) != 0)
		return false;
	return end == s + n;
}

char *b64url_encode(const unsigned char *data, size_t len)
{
	size_t n = sodium_base64_encoded_len(len, B64URL);
	char *out = xmalloc(n);
	sodium_bin2base64(out, n, data, len, B64URL);
	return out;
}

/* A field of the canonical string: a string as it is, a number as
 * JavaScript's String() writes it. */
static bool add_field(struct strbuf *b, const json_t *payload, const char *key, bool last)
{
	const json_t *v = json_object_get(payload, key);
	if (json_is_string(v)) {
		strbuf_add(b, json_string_value(v), json_string_length(v));
	} else if (json_is_number(v)) {
		char num[JS_NUMBER_MAX];
		size_t n = js_number_to_string(json_number_value(v), num);
		strbuf_add(b, num, n);
	} else {
		return false;
	}
	if (!last)
		strbuf_addc(b, '|');
	return true;
}

char *invite_v1_canonical(const json_t *payload)
{
	static const char *const keys[] = { "v", "mesh_id", "mesh_slug", "broker_url", "expires_at",
					    "mesh_root_key", "role", "owner_pubkey" };
	const size_t n = sizeof(keys) / sizeof(keys[0]);
	struct strbuf b = { 0 };
	for (size_t i = 0; i < n; i++) {
		if (!add_field(&b, payload, keys[i], i + 1 == n)) {
			xfree(b.p);
			return NULL;
		}
	}
	return b.p; /* strbuf keeps it NUL-terminated */
}

char *invite_v2_canonical(const char *mesh_id, const char *invite_id, long long expires_at_unix,
			  const char *role, const char *owner_pubkey_hex)
{
	int n = snprintf(NULL, 0, "v=2|%s|%s|%lld|%s|%s", mesh_id, invite_id, expires_at_unix, role,
			 owner_pubkey_hex);
	char *out = xmalloc((size_t)n + 1);
	snprintf(out, (size_t)n + 1, "v=2|%s|%s|%lld|%s|%s", mesh_id, invite_id, expires_at_unix,
		 role, owner_pubkey_hex);
	return out;
}

char *invite_v2_capability(const char *canonical, const char *signature_hex)
{
	json_t *o = json_object();
	json_object_set_new(o, "canonical", json_string(canonical));
	json_object_set_new(o, "signature", json_string(signature_hex));
	char *text = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return text;
}

void invite_sign(const char *msg, const unsigned char sk[64], char sig_hex[129])
{
	unsigned char sig[crypto_sign_BYTES];
	crypto_sign_detached(sig, NULL, (const unsigned char *)msg, strlen(msg), sk);
	sodium_bin2hex(sig_hex, 129, sig, sizeof(sig));
}

bool invite_verify(const char *msg, const char *sig_hex, const char *pubkey_hex)
{
	/* The one Ed25519 check of the project (the reference's verifyEd25519). */
	return hello_verify(msg, sig_hex, pubkey_hex);
}

char *invite_v1_token(const json_t *payload)
{
	char *text = json_dumps(payload, JSON_COMPACT);
	char *token = b64url_encode((const unsigned char *)text, strlen(text));
	free(text);
	return token;
}

json_t *invite_v1_token_payload(const char *token)
{
	size_t n = strlen(token);
	if (n == 0 || n > INVITE_TOKEN_MAX)
		return NULL;
	unsigned char *raw = xmalloc(n);
	size_t len = 0;
	json_t *payload = NULL;
	if (b64url_decode(token, raw, n, &len))
		payload = json_loadb((const char *)raw, len, 0, NULL);
	xfree(raw);
	if (payload && !json_is_object(payload)) {
		json_decref(payload);
		payload = NULL;
	}
	return payload;
}

bool invite_recipient_key_ok(const char *recipient_b64url)
{
	unsigned char pk[crypto_box_PUBLICKEYBYTES + 1];
	size_t len = 0;
	return recipient_b64url && b64url_decode(recipient_b64url, pk, sizeof(pk), &len) &&
	       len == crypto_box_PUBLICKEYBYTES;
}

char *invite_seal_root_key(const char *root_key_b64url, const char *recipient_b64url)
{
	unsigned char pk[crypto_box_PUBLICKEYBYTES + 1];
	size_t pklen = 0, n = strlen(root_key_b64url);
	if (!b64url_decode(recipient_b64url, pk, sizeof(pk), &pklen) ||
	    pklen != crypto_box_PUBLICKEYBYTES || n > INVITE_TOKEN_MAX)
		return NULL;
	unsigned char *root = xmalloc(n + 1);
	size_t rootlen = 0;
	char *out = NULL;
	if (b64url_decode(root_key_b64url, root, n + 1, &rootlen)) {
		unsigned char *sealed = xmalloc(rootlen + crypto_box_SEALBYTES);
		if (crypto_box_seal(sealed, root, rootlen, pk) == 0)
			out = b64url_encode(sealed, rootlen + crypto_box_SEALBYTES);
		xfree(sealed);
	}
	sodium_memzero(root, n + 1);
	xfree(root);
	return out;
}
