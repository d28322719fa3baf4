/* Unit tests: invite canonical strings, signatures, tokens, strict base64url
 * and the sealed root key (src/invite.c), with SEMANTICS.md §C.7's vectors. */
#include "config.h"

#include <check.h>

#include "check_run.h"
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "meshd/invite.h"

#define OWNER_PK "8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c"
#define V2_SIG "8d653c618b7812c50c1bc5646a27a33c0becc7c8e4ba872e0004c0814031fd4c" \
	       "8f864aea592160abcd862dba8b1cee75783e59b4dbf1a5338ae15a855aeb180c"
#define V1_SIG "b5845c24e0e8689580d956a89c085ecce7c110a6f1a33164e9596abeeebc5f2b" \
	       "5c7dce2ff505ffbc435cfa2545b048c26e9dfebdd4b79f8604b2e0421a86d60f"

static unsigned char owner_sk[crypto_sign_SECRETKEYBYTES];

static void owner_key(void)
{
	unsigned char seed[crypto_sign_SEEDBYTES], pk[crypto_sign_PUBLICKEYBYTES];
	memset(seed, 0x01, sizeof(seed));
	ck_assert_int_eq(crypto_sign_seed_keypair(pk, owner_sk, seed), 0);
	char hex[65];
	sodium_bin2hex(hex, sizeof(hex), pk, sizeof(pk));
	ck_assert_str_eq(hex, OWNER_PK);
}

static json_t *v1_payload(void)
{
	return json_pack("{s:i, s:s, s:s, s:s, s:I, s:s, s:s, s:s}", "v", 1, "mesh_id", "mesh-x",
			 "mesh_slug", "test-slug", "broker_url", "ws://localhost:7900/ws",
			 "expires_at", (json_int_t)1700003600, "mesh_root_key",
			 "dGVzdC1tZXNoLXJvb3Qta2V5", "role", "member", "owner_pubkey", OWNER_PK);
}

START_TEST(v2_vector)
{
	owner_key();
	char *c = invite_v2_canonical("mesh-x", "inv-1", 1700003600, "member", OWNER_PK);
	ck_assert_str_eq(c, "v=2|mesh-x|inv-1|1700003600|member|" OWNER_PK);
	char sig[129];
	invite_sign(c, owner_sk, sig);
	ck_assert_str_eq(sig, V2_SIG);
	ck_assert(invite_verify(c, V2_SIG, OWNER_PK));
	c[4] = 'X';
	ck_assert(!invite_verify(c, V2_SIG, OWNER_PK));
	char *cap = invite_v2_capability("v=2|a", V2_SIG);
	ck_assert_str_eq(cap, "{\"canonical\":\"v=2|a\",\"signature\":\"" V2_SIG "\"}");
	free(cap);
	free(c);
}
END_TEST

START_TEST(v1_vector_and_token)
{
	owner_key();
	json_t *p = v1_payload();
	char *c = invite_v1_canonical(p);
	ck_assert_str_eq(c, "1|mesh-x|test-slug|ws://localhost:7900/ws|1700003600|"
			    "dGVzdC1tZXNoLXJvb3Qta2V5|member|" OWNER_PK);
	char sig[129];
	invite_sign(c, owner_sk, sig);
	ck_assert_str_eq(sig, V1_SIG);
	ck_assert(invite_verify(c, V1_SIG, OWNER_PK));
	json_object_set_new(p, "signature", json_string(sig));
	char *token = invite_v1_token(p);
	ck_assert_ptr_null(strpbrk(token, "=+/"));
	json_t *back = invite_v1_token_payload(token);
	ck_assert(json_equal(back, p));
	char *c2 = invite_v1_canonical(back);
	ck_assert_str_eq(c2, c);
	/* A number written as JavaScript does: 1.5, not 1.500000. */
	json_object_set_new(back, "v", json_real(1.5));
	free(c2);
	c2 = invite_v1_canonical(back);
	ck_assert_int_eq(strncmp(c2, "1.5|mesh-x|", 11), 0);
	/* A missing or mistyped field makes no canonical string. */
	json_object_del(back, "role");
	ck_assert_ptr_null(invite_v1_canonical(back));
	json_object_set_new(back, "role", json_null());
	ck_assert_ptr_null(invite_v1_canonical(back));
	free(c2);
	json_decref(back);
	free(token);
	free(c);
	json_decref(p);
}
END_TEST

START_TEST(malformed_tokens)
{
	ck_assert_ptr_null(invite_v1_token_payload(""));
	ck_assert_ptr_null(invite_v1_token_payload("!!!!"));
	ck_assert_ptr_null(invite_v1_token_payload("bnVsbA"));     /* "null" */
	ck_assert_ptr_null(invite_v1_token_payload("WzFd"));       /* "[1]" */
	ck_assert_ptr_null(invite_v1_token_payload("eyJ9"));       /* "{\"}" … cut */
	char *huge = malloc(INVITE_TOKEN_MAX + 2);
	memset(huge, 'A', INVITE_TOKEN_MAX + 1);
	huge[INVITE_TOKEN_MAX + 1] = '\0';
	ck_assert_ptr_null(invite_v1_token_payload(huge));
	free(huge);
	json_t *p = invite_v1_token_payload("e30"); /* "{}" */
	ck_assert(json_is_object(p));
	json_decref(p);
}
END_TEST

START_TEST(signature_shapes)
{
	ck_assert(!invite_verify("x", "zz", OWNER_PK));
	ck_assert(!invite_verify("x", V2_SIG "00", OWNER_PK));
	ck_assert(!invite_verify("x", V2_SIG, OWNER_PK "00"));
	ck_assert(!invite_verify(NULL, V2_SIG, OWNER_PK));
	ck_assert(!invite_verify("x", NULL, OWNER_PK));
}
END_TEST

START_TEST(base64url_is_strict)
{
	unsigned char out[64];
	size_t n = 0;
	ck_assert(b64url_decode("", out, sizeof(out), &n));
	ck_assert_uint_eq(n, 0);
	ck_assert(b64url_decode("_-8", out, sizeof(out), &n));
	ck_assert_uint_eq(n, 2);
	ck_assert_int_eq(out[0], 0xff);
	ck_assert_int_eq(out[1], 0xef);
	ck_assert(!b64url_decode("_-8=", out, sizeof(out), &n));  /* padding */
	ck_assert(!b64url_decode("/+8", out, sizeof(out), &n));   /* standard alphabet */
	ck_assert(!b64url_decode("_-8 ", out, sizeof(out), &n));  /* whitespace */
	/* libsodium alone reads 0x80-0xff as `_` (tests/fuzz/crashes/invite-*). */
	ck_assert(!b64url_decode("AAA\x80", out, sizeof(out), &n));
	ck_assert(!b64url_decode("AAA\xff", out, sizeof(out), &n));
	ck_assert(b64url_decode("AAA_", out, sizeof(out), &n));
	ck_assert(!b64url_decode(" _-8", out, sizeof(out), &n));
	ck_assert(!b64url_decode("_-8\n", out, sizeof(out), &n));
	ck_assert(!b64url_decode("A", out, sizeof(out), &n));     /* impossible length */
	ck_assert(!b64url_decode("AAAAA", out, sizeof(out), &n));
	ck_assert(!b64url_decode("_-9", out, sizeof(out), &n));   /* non-zero trailing bits */
	ck_assert(!b64url_decode("AAAA", out, 2, &n));             /* does not fit */
	unsigned char data[5] = { 0, 1, 0xfe, 0xff, 0x7f };
	char *s = b64url_encode(data, sizeof(data));
	ck_assert_str_eq(s, "AAH-_38");
	ck_assert(b64url_decode(s, out, sizeof(out), &n));
	ck_assert_uint_eq(n, sizeof(data));
	ck_assert_int_eq(memcmp(out, data, n), 0);
	free(s);
}
END_TEST

START_TEST(sealed_root_key_opens_with_the_recipient_key)
{
	unsigned char pk[crypto_box_PUBLICKEYBYTES], sk[crypto_box_SECRETKEYBYTES];
	crypto_box_keypair(pk, sk);
	unsigned char root[32];
	randombytes_buf(root, sizeof(root));
	char *root_b64 = b64url_encode(root, sizeof(root));
	char *pk_b64 = b64url_encode(pk, sizeof(pk));
	ck_assert(invite_recipient_key_ok(pk_b64));
	char *sealed = invite_seal_root_key(root_b64, pk_b64);
	ck_assert_ptr_nonnull(sealed);
	ck_assert_uint_eq(strlen(sealed), 107); /* 80 bytes */
	unsigned char box[128], opened[32];
	size_t n = 0;
	ck_assert(b64url_decode(sealed, box, sizeof(box), &n));
	ck_assert_uint_eq(n, 80);
	ck_assert_int_eq(crypto_box_seal_open(opened, box, n, pk, sk), 0);
	ck_assert_int_eq(memcmp(opened, root, sizeof(root)), 0);
	/* Recipient keys that are not 32 bytes of strict base64url. */
	ck_assert(!invite_recipient_key_ok(NULL));
	ck_assert(!invite_recipient_key_ok("AAAA"));
	char padded[64];
	snprintf(padded, sizeof(padded), "%s=", pk_b64);
	ck_assert(!invite_recipient_key_ok(padded));
	ck_assert_ptr_null(invite_seal_root_key(root_b64, padded));
	ck_assert_ptr_null(invite_seal_root_key(root_b64, "AAAA"));
	ck_assert_ptr_null(invite_seal_root_key("not base64!", pk_b64));
	free(sealed);
	free(root_b64);
	free(pk_b64);
}
END_TEST

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	Suite *s = suite_create("invite");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, v2_vector);
	tcase_add_test(tc, v1_vector_and_token);
	tcase_add_test(tc, malformed_tokens);
	tcase_add_test(tc, signature_shapes);
	tcase_add_test(tc, base64url_is_strict);
	tcase_add_test(tc, sealed_root_key_opens_with_the_recipient_key);
	suite_add_tcase(s, tc);
	return check_run(s);
}
