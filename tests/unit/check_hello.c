/* Unit tests: stateless handshake checks (src/hello.c) against PROTOCOL.md
 * §5.1–5.3 and the Ed25519 vectors of PROTOCOL.md §12 and SEMANTICS.md §C.7. */
#include "config.h"

#include <check.h>

#include "check_run.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "meshd/alloc.h"
#include "meshd/hello.h"

#define MESH "B2VSzwbq1pgBvrOxDIucib5u6rkYchCt"
#define MEMBER "0YHiR976xIM8QwdBYbpHER6Rh2afWiIP"
#define MPK "8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c"
#define SPK "8139770ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b394"
#define TS 1767225600000LL
#define EXP 1767268800000LL /* TS + 12 h */
#define DAY 86400000LL

#define SIG_HELLO "cc154ce78b8a453c6741462db9eece1bc39aae1e1021a80d2d4925d9665c12e4" \
		  "b36e3f45fd22dad7530f687e10711da68ce939579725db52875371d8abe24f0e"
#define SIG_ATTEST "3ad78faf29024a57427648c00163d9a741d34d8ba946192e5bdc7a00133b7c34" \
		   "11c458a353e98054b94037ec441d39657485d4a0e8b47fb6070197a18fdc010b"
#define SIG_SESSION "5bd7a0d2cbf5eb19cfa12ddbd8419a0c00fb83269da9a68e3671336e23cbf8da" \
		    "9e04ae672b233ae8a03b947c541e8c38d98455ca8f6f8a5eced8806ea13c1007"

static unsigned char mpk[crypto_sign_PUBLICKEYBYTES], msk[crypto_sign_SECRETKEYBYTES];
static unsigned char spk[crypto_sign_PUBLICKEYBYTES], ssk[crypto_sign_SECRETKEYBYTES];

static void keys_init(void)
{
	unsigned char seed[crypto_sign_SEEDBYTES];
	if (sodium_init() < 0)
		abort();
	memset(seed, 0x01, sizeof(seed));
	crypto_sign_seed_keypair(mpk, msk, seed);
	memset(seed, 0x02, sizeof(seed));
	crypto_sign_seed_keypair(spk, ssk, seed);
}

static void sign_hex(const char *msg, const unsigned char *sk, char out[129])
{
	unsigned char sig[crypto_sign_BYTES];
	crypto_sign_detached(sig, NULL, (const unsigned char *)msg, strlen(msg), sk);
	sodium_bin2hex(out, 129, sig, sizeof(sig));
}

/* obj[key] = signature by sk over canonical; frees canonical. */
static void sign_into(json_t *obj, const char *key, char *canonical, const unsigned char *sk)
{
	char sig[129];
	sign_hex(canonical, sk, sig);
	xfree(canonical);
	json_object_set_new(obj, key, json_string(sig));
}

static void resign_member(json_t *m, long long ts)
{
	sign_into(m, "signature", hello_canonical_member(MESH, MEMBER, MPK, (double)ts), msk);
}

/* A complete, valid member hello (the example of §5.1) signed at ts. */
static json_t *member_hello(long long ts)
{
	json_t *m = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:s, s:s, s:s, s:s, s:s,"
			      " s:[{s:s, s:s}], s:I}",
			      "type", "hello", "meshId", MESH, "memberId", MEMBER, "pubkey", MPK,
			      "sessionPubkey", SPK, "displayName", "Mou", "sessionId", "daemon-4242",
			      "pid", 4242, "cwd", "/home/mou/project", "hostname", "mou-laptop",
			      "peerType", "ai", "channel", "claudemesh-daemon", "model", "opus-4",
			      "groups", "name", "backend", "role", "lead",
			      "timestamp", (json_int_t)ts);
	ck_assert_ptr_nonnull(m);
	resign_member(m, ts);
	return m;
}

static void resign_session(json_t *m, long long ts)
{
	sign_into(m, "signature", hello_canonical_session(MESH, MPK, SPK, (double)ts), ssk);
}

static json_t *attestation(long long expires, const unsigned char *sk)
{
	json_t *att = json_pack("{s:s, s:s, s:I}", "sessionPubkey", SPK, "parentMemberPubkey", MPK,
				"expiresAt", (json_int_t)expires);
	sign_into(att, "signature", hello_canonical_attestation(MPK, SPK, (double)expires), sk);
	return att;
}

/* A complete, valid session_hello (the example of §5.2). */
static json_t *session_hello(long long ts, long long expires)
{
	json_t *m = json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:s, s:s, s:i, s:s, s:s, s:s, s:s,"
			      " s:[{s:s}], s:s, s:I}",
			      "type", "session_hello", "meshId", MESH, "parentMemberId", MEMBER,
			      "parentMemberPubkey", MPK, "sessionPubkey", SPK,
			      "parentAttestation", attestation(expires, msk), "displayName", "Mou",
			      "sessionId", "7f1c2d9e-claude-session-uuid", "pid", 5151,
			      "cwd", "/home/mou/project", "hostname", "mou-laptop", "peerType", "ai",
			      "channel", "claudemesh-session", "groups", "name", "backend",
			      "role", "reviewer", "timestamp", (json_int_t)ts);
	ck_assert_ptr_nonnull(m);
	resign_session(m, ts);
	return m;
}

/* Checks m (consumed) and returns the verdict. */
static enum hello_reject run(json_t *m, enum hello_kind kind, long long now)
{
	struct hello h;
	enum hello_reject r = hello_check(m, kind, now, &h);
	if (r != HELLO_OK)
		ck_assert_ptr_null(h.mesh_id);
	hello_free(&h);
	json_decref(m);
	return r;
}

static json_t *att_of(json_t *m)
{
	return json_object_get(m, "parentAttestation");
}

/* ---- vectors ---- */

START_TEST(vectors_protocol_12)
{
	char hex[65], sig[129];
	char *c;

	sodium_bin2hex(hex, sizeof(hex), mpk, sizeof(mpk));
	ck_assert_str_eq(hex, MPK);
	sodium_bin2hex(hex, sizeof(hex), spk, sizeof(spk));
	ck_assert_str_eq(hex, SPK);

	c = hello_canonical_member(MESH, MEMBER, MPK, (double)TS);
	ck_assert_str_eq(c, MESH "|" MEMBER "|" MPK "|1767225600000");
	sign_hex(c, msk, sig);
	ck_assert_str_eq(sig, SIG_HELLO);
	ck_assert(hello_verify(c, SIG_HELLO, MPK));
	xfree(c);

	c = hello_canonical_attestation(MPK, SPK, (double)EXP);
	ck_assert_str_eq(c, "claudemesh-session-attest|" MPK "|" SPK "|1767268800000");
	sign_hex(c, msk, sig);
	ck_assert_str_eq(sig, SIG_ATTEST);
	ck_assert(hello_verify(c, SIG_ATTEST, MPK));
	ck_assert(!hello_verify(c, SIG_ATTEST, SPK));
	xfree(c);

	c = hello_canonical_session(MESH, MPK, SPK, (double)TS);
	ck_assert_str_eq(c, "claudemesh-session-hello|" MESH "|" MPK "|" SPK "|1767225600000");
	sign_hex(c, ssk, sig);
	ck_assert_str_eq(sig, SIG_SESSION);
	ck_assert(hello_verify(c, SIG_SESSION, SPK));
	xfree(c);
}
END_TEST

START_TEST(vectors_semantics_c7)
{
	char sig[129];
	char *c;

	c = hello_canonical_member("mesh-x", "member-y", MPK, 1700000000000.0);
	sign_hex(c, msk, sig);
	ck_assert_str_eq(sig, "dbe9527b025bb11b63bca143ede7eebd54b7960b54e712f58dbcfdea4aee75db"
			      "9703d33cf7bcfb40d2ee04c9a45de4ec56d5b0824381c5627075d1a1b950a002");
	xfree(c);
	c = hello_canonical_attestation(MPK, SPK, 1700003600000.0);
	sign_hex(c, msk, sig);
	ck_assert_str_eq(sig, "bef1e7751aa923b022c5896f2f64d390e5d097db0e5fea1efe438c68a08ebf4e"
			      "63aae906fb2ebd63172a64b22214dbdef1f02390f8bd0365fe5577db00370900");
	xfree(c);
	c = hello_canonical_session("mesh-x", MPK, SPK, 1700000000000.0);
	sign_hex(c, ssk, sig);
	ck_assert_str_eq(sig, "5ec30605bcb5624c2850b890acec1ee39134d1cf3983d920141affb2656e5aa4"
			      "6dac0a992c4dca0bad53f9f85d729e2cc6d97ea9ae322ed9232d8a79a47b9801");
	xfree(c);
}
END_TEST

START_TEST(c7_frames_pass_hello_check)
{
	json_t *m = json_pack("{s:s, s:s, s:s, s:s, s:s, s:i, s:s, s:I}", "type", "hello",
			      "meshId", "mesh-x", "memberId", "member-y", "pubkey", MPK,
			      "sessionId", "s", "pid", 1, "cwd", "/", "timestamp",
			      (json_int_t)1700000000000LL);
	sign_into(m, "signature", hello_canonical_member("mesh-x", "member-y", MPK,
							 1700000000000.0), msk);
	ck_assert_int_eq(run(m, HELLO_MEMBER, 1700000000000LL), HELLO_OK);

	json_t *att = json_pack("{s:s, s:s, s:I, s:s}", "sessionPubkey", SPK,
				"parentMemberPubkey", MPK, "expiresAt", (json_int_t)1700003600000LL,
				"signature",
				"bef1e7751aa923b022c5896f2f64d390e5d097db0e5fea1efe438c68a08ebf4e"
				"63aae906fb2ebd63172a64b22214dbdef1f02390f8bd0365fe5577db00370900");
	m = json_pack("{s:s, s:s, s:s, s:s, s:o, s:s, s:i, s:s, s:I, s:s}", "type", "session_hello",
		      "meshId", "mesh-x", "parentMemberPubkey", MPK, "sessionPubkey", SPK,
		      "parentAttestation", att, "sessionId", "s", "pid", 1, "cwd", "/",
		      "timestamp", (json_int_t)1700000000000LL, "signature",
		      "5ec30605bcb5624c2850b890acec1ee39134d1cf3983d920141affb2656e5aa4"
		      "6dac0a992c4dca0bad53f9f85d729e2cc6d97ea9ae322ed9232d8a79a47b9801");
	ck_assert_int_eq(run(m, HELLO_SESSION, 1700000000000LL), HELLO_OK);
}
END_TEST

START_TEST(hello_vector_frame_and_fields)
{
	json_t *m = member_hello(TS);
	struct hello h;

	ck_assert_str_eq(json_string_value(json_object_get(m, "signature")), SIG_HELLO);
	ck_assert_int_eq(hello_check(m, HELLO_MEMBER, TS, &h), HELLO_OK);
	ck_assert_int_eq(h.kind, HELLO_MEMBER);
	ck_assert_str_eq(h.mesh_id, MESH);
	ck_assert_str_eq(h.member_id, MEMBER);
	ck_assert_str_eq(h.pubkey, MPK);
	ck_assert_str_eq(h.session_pubkey, SPK);
	ck_assert_str_eq(h.session_id, "daemon-4242");
	ck_assert_int_eq(h.pid, 4242);
	ck_assert_str_eq(h.cwd, "/home/mou/project");
	ck_assert_str_eq(h.display_name, "Mou");
	ck_assert_str_eq(h.hostname, "mou-laptop");
	ck_assert_str_eq(h.peer_type, "ai");
	ck_assert_str_eq(h.channel, "claudemesh-daemon");
	ck_assert_str_eq(h.model, "opus-4");
	ck_assert(h.groups_present);
	ck_assert_uint_eq(h.ngroups, 1);
	ck_assert_str_eq(h.groups[0].name, "backend");
	ck_assert_str_eq(h.groups[0].role, "lead");
	ck_assert(h.timestamp == (double)TS);
	ck_assert(hello_member_id_matches(&h, MEMBER));
	ck_assert(!hello_member_id_matches(&h, "someone-else")); /* Q5 */
	hello_free(&h);
	ck_assert_ptr_null(h.mesh_id);
	hello_free(&h); /* twice is harmless */
	json_decref(m);
}
END_TEST

START_TEST(session_vector_frame_and_fields)
{
	json_t *m = session_hello(TS, EXP);
	struct hello h;

	ck_assert_str_eq(json_string_value(json_object_get(m, "signature")), SIG_SESSION);
	ck_assert_str_eq(json_string_value(json_object_get(att_of(m), "signature")), SIG_ATTEST);
	ck_assert_int_eq(hello_check(m, HELLO_SESSION, TS, &h), HELLO_OK);
	ck_assert_int_eq(h.kind, HELLO_SESSION);
	ck_assert_str_eq(h.mesh_id, MESH);
	ck_assert_str_eq(h.member_id, MEMBER);
	ck_assert(h.member_id_truthy);
	ck_assert_str_eq(h.pubkey, MPK);
	ck_assert_str_eq(h.session_pubkey, SPK);
	ck_assert_str_eq(h.session_id, "7f1c2d9e-claude-session-uuid");
	ck_assert_int_eq(h.pid, 5151);
	ck_assert_ptr_null(h.model);
	ck_assert(h.groups_present);
	ck_assert_uint_eq(h.ngroups, 1);
	ck_assert_ptr_null(h.groups[0].role);
	ck_assert(h.expires_at == (double)EXP);
	ck_assert(hello_member_id_matches(&h, MEMBER));
	ck_assert(!hello_member_id_matches(&h, "other"));
	hello_free(&h);
	json_decref(m);
}
END_TEST

/* ---- hello: boundaries and precedence ---- */

START_TEST(hello_skew_boundaries)
{
	ck_assert_int_eq(run(member_hello(TS), HELLO_MEMBER, TS + 60000), HELLO_OK);
	ck_assert_int_eq(run(member_hello(TS), HELLO_MEMBER, TS - 60000), HELLO_OK);
	ck_assert_int_eq(run(member_hello(TS), HELLO_MEMBER, TS + 60001), HR_TIMESTAMP_SKEW);
	ck_assert_int_eq(run(member_hello(TS), HELLO_MEMBER, TS - 60001), HR_TIMESTAMP_SKEW);
}
END_TEST

START_TEST(hello_timestamp_types)
{
	json_t *m = member_hello(TS);
	json_object_set_new(m, "timestamp", json_string("1767225600000"));
	ck_assert_int_eq(run(m, HELLO_MEMBER, TS), HR_TIMESTAMP_SKEW);

	m = member_hello(TS);
	json_object_del(m, "timestamp");
	ck_assert_int_eq(run(m, HELLO_MEMBER, TS), HR_TIMESTAMP_SKEW);

	m = member_hello(TS);
	json_object_set_new(m, "timestamp", json_null());
	ck_assert_int_eq(run(m, HELLO_MEMBER, TS), HR_TIMESTAMP_SKEW);

	/* 1767225600000.0 is the same number: JavaScript prints it without ".0". */
	m = member_hello(TS);
	json_object_set_new(m, "timestamp", json_real((double)TS));
	ck_assert_int_eq(run(m, HELLO_MEMBER, TS), HELLO_OK);

	/* A fractional timestamp is signed as JavaScript prints it. */
	m = member_hello(TS);
	json_object_set_new(m, "timestamp", json_real((double)TS + 0.5));
	sign_into(m, "signature", xstrdup(MESH "|" MEMBER "|" MPK "|1767225600000.5"), msk);
	ck_assert_int_eq(run(m, HELLO_MEMBER, TS), HELLO_OK);

	/* From text: "1.7672256e12" reads as the same double, as in JavaScript. */
	m = member_hello(TS);
	char *text = json_dumps(m, JSON_COMPACT);
	json_decref(m);
	char *at = strstr(text, "\"timestamp\":1767225600000");
	ck_assert_ptr_nonnull(at);
	char *edited = xmalloc(strlen(text) + 8);
	at += strlen("\"timestamp\":");
	sprintf(edited, "%.*s1.7672256e12%s", (int)(at - text), text, at + 13);
	free(text);
	m = json_loads(edited, 0, NULL);
	xfree(edited);
	ck_assert(json_is_real(json_object_get(m, "timestamp")));
	ck_assert_int_eq(run(m, HELLO_MEMBER, TS), HELLO_OK);
}
END_TEST

START_TEST(hello_session_pubkey_rules)
{
	json_t *m;

	/* "" , null, false, 0: no session key at all. */
	const char *none[] = { "\"\"", "null", "false", "0" };
	for (size_t i = 0; i < 4; i++) {
		struct hello h;
		m = member_hello(TS);
		json_object_set_new(m, "sessionPubkey", json_loads(none[i], JSON_DECODE_ANY, NULL));
		ck_assert_int_eq(hello_check(m, HELLO_MEMBER, TS, &h), HELLO_OK);
		ck_assert_ptr_null(h.session_pubkey);
		hello_free(&h);
		json_decref(m);
	}
	m = member_hello(TS);
	json_object_del(m, "sessionPubkey");
	ck_assert_int_eq(run(m, HELLO_MEMBER, TS), HELLO_OK);

	/* Uppercase, short, non-hex, non-string: rejected. */
	char upper[] = SPK;
	for (char *p = upper; *p; p++)
		if (*p >= 'a' && *p <= 'f')
			*p = (char)(*p - 'a' + 'A');
	const char *bad[] = { upper, SPK "0", "8139770ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b39",
			      "g139770ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b394" };
	for (size_t i = 0; i < 4; i++) {
		m = member_hello(TS);
		json_object_set_new(m, "sessionPubkey", json_string(bad[i]));
		ck_assert_int_eq(run(m, HELLO_MEMBER, TS), HR_BAD_SESSION_PUBKEY);
	}
	m = member_hello(TS);
	json_object_set_new(m, "sessionPubkey", json_integer(7));
	ck_assert_int_eq(run(m, HELLO_MEMBER, TS), HR_BAD_SESSION_PUBKEY);
}
END_TEST

START_TEST(hello_precedence)
{
	json_t *m;

	/* 1 before 3, 4, 5: bad key + stale timestamp + malformed pubkey + bad signature. */
	m = member_hello(TS);
	json_object_set_new(m, "sessionPubkey", json_string("nope"));
	json_object_set_new(m, "pubkey", json_string("xyz"));
	json_object_set_new(m, "signature", json_string("00"));
	ck_assert_int_eq(run(m, HELLO_MEMBER, TS + 999999), HR_BAD_SESSION_PUBKEY);

	/* 3 before 4. */
	m = member_hello(TS);
	json_object_set_new(m, "pubkey", json_string("xyz"));
	ck_assert_int_eq(run(m, HELLO_MEMBER, TS + 60001), HR_TIMESTAMP_SKEW);

	/* 4: pubkey shape, signature shape, either one missing. */
	m = member_hello(TS);
	json_object_set_new(m, "pubkey", json_string(MPK "00"));
	ck_assert_int_eq(run(m, HELLO_MEMBER, TS), HR_MALFORMED);
	m = member_hello(TS);
	char zpk[] = MPK;
	zpk[0] = 'z';
	json_object_set_new(m, "pubkey", json_string(zpk));
	ck_assert_int_eq(run(m, HELLO_MEMBER, TS), HR_MALFORMED);
	m = member_hello(TS);
	json_object_del(m, "pubkey");
	ck_assert_int_eq(run(m, HELLO_MEMBER, TS), HR_MALFORMED);
	m = member_hello(TS);
	json_object_set_new(m, "signature", json_string(SIG_HELLO "0"));
	ck_assert_int_eq(run(m, HELLO_MEMBER, TS), HR_MALFORMED);
	m = member_hello(TS);
	json_object_set_new(m, "signature", json_integer(1));
	ck_assert_int_eq(run(m, HELLO_MEMBER, TS), HR_MALFORMED);

	/* 4 before 5 and Q11. */
	m = member_hello(TS);
	json_object_set_new(m, "signature", json_string("abc"));
	json_object_del(m, "pid");
	ck_assert_int_eq(run(m, HELLO_MEMBER, TS), HR_MALFORMED);

	/* 5: another memberId, another mesh, the session key's signature. */
	m = member_hello(TS);
	json_object_set_new(m, "memberId", json_string("x" MEMBER));
	ck_assert_int_eq(run(m, HELLO_MEMBER, TS), HR_BAD_SIGNATURE);
	m = member_hello(TS);
	json_object_set_new(m, "meshId", json_string("other"));
	ck_assert_int_eq(run(m, HELLO_MEMBER, TS), HR_BAD_SIGNATURE);
	m = member_hello(TS);
	sign_into(m, "signature", hello_canonical_member(MESH, MEMBER, MPK, (double)TS), ssk);
	ck_assert_int_eq(run(m, HELLO_MEMBER, TS), HR_BAD_SIGNATURE);
	/* The signature covers the timestamp. */
	m = member_hello(TS);
	json_object_set_new(m, "timestamp", json_integer(TS + 1));
	ck_assert_int_eq(run(m, HELLO_MEMBER, TS), HR_BAD_SIGNATURE);

	/* 5 before Q11: missing memberId signs as "undefined". */
	m = member_hello(TS);
	json_object_del(m, "memberId");
	json_object_del(m, "cwd");
	ck_assert_int_eq(run(m, HELLO_MEMBER, TS), HR_BAD_SIGNATURE);
}
END_TEST

START_TEST(hello_hex_case)
{
	char upper[] = SIG_HELLO;
	struct hello h;
	json_t *m;

	for (char *p = upper; *p; p++)
		if (*p >= 'a' && *p <= 'f')
			*p = (char)(*p - 'a' + 'A');
	m = member_hello(TS);
	json_object_set_new(m, "signature", json_string(upper));
	ck_assert_int_eq(run(m, HELLO_MEMBER, TS), HELLO_OK);

	/* An uppercase member pubkey is fine when it is what was signed; the
	 * lookup key is kept exactly as sent. */
	char upk[] = MPK;
	for (char *p = upk; *p; p++)
		if (*p >= 'a' && *p <= 'f')
			*p = (char)(*p - 'a' + 'A');
	m = member_hello(TS);
	json_object_set_new(m, "pubkey", json_string(upk));
	sign_into(m, "signature", hello_canonical_member(MESH, MEMBER, upk, (double)TS), msk);
	ck_assert_int_eq(hello_check(m, HELLO_MEMBER, TS, &h), HELLO_OK);
	ck_assert_str_eq(h.pubkey, upk);
	hello_free(&h);
	json_decref(m);
}
END_TEST

START_TEST(hello_q11_missing_fields)
{
	const char *keys[] = { "sessionId", "pid", "cwd" };
	json_t *m;

	for (size_t i = 0; i < 3; i++) {
		m = member_hello(TS);
		json_object_del(m, keys[i]);
		ck_assert_int_eq(run(m, HELLO_MEMBER, TS), HR_MISSING_FIELDS);
	}
	json_t *bad_pid[] = { json_string("4242"), json_real(42.5), json_integer(2147483648LL),
			      json_integer(-2147483649LL), json_null(), json_true() };
	for (size_t i = 0; i < 6; i++) {
		m = member_hello(TS);
		json_object_set_new(m, "pid", bad_pid[i]);
		ck_assert_int_eq(run(m, HELLO_MEMBER, TS), HR_MISSING_FIELDS);
	}
	m = member_hello(TS);
	json_object_set_new(m, "cwd", json_integer(1));
	ck_assert_int_eq(run(m, HELLO_MEMBER, TS), HR_MISSING_FIELDS);
	m = member_hello(TS);
	json_object_set_new(m, "sessionId", json_null());
	ck_assert_int_eq(run(m, HELLO_MEMBER, TS), HR_MISSING_FIELDS);

	/* Integral reals and the int32 edges are pids. */
	json_t *good_pid[] = { json_real(4242.0), json_integer(2147483647), json_integer(-2147483648LL),
			       json_integer(0) };
	for (size_t i = 0; i < 4; i++) {
		m = member_hello(TS);
		json_object_set_new(m, "pid", good_pid[i]);
		ck_assert_int_eq(run(m, HELLO_MEMBER, TS), HELLO_OK);
	}

	/* A missing memberId signed as JavaScript would ("undefined") passes the
	 * signature and is then malformed; likewise a missing meshId. */
	m = member_hello(TS);
	json_object_del(m, "memberId");
	sign_into(m, "signature", xstrdup(MESH "|undefined|" MPK "|1767225600000"), msk);
	ck_assert_int_eq(run(m, HELLO_MEMBER, TS), HR_MISSING_FIELDS);
	m = member_hello(TS);
	json_object_del(m, "meshId");
	sign_into(m, "signature", xstrdup("undefined|" MEMBER "|" MPK "|1767225600000"), msk);
	ck_assert_int_eq(run(m, HELLO_MEMBER, TS), HR_MISSING_FIELDS);
	/* A numeric meshId is rendered as a number in the canonical string. */
	m = member_hello(TS);
	json_object_set_new(m, "meshId", json_integer(42));
	sign_into(m, "signature", xstrdup("42|" MEMBER "|" MPK "|1767225600000"), msk);
	ck_assert_int_eq(run(m, HELLO_MEMBER, TS), HR_MISSING_FIELDS);

	/* The row: code malformed, 1008, metric malformed. */
	const struct hello_rejection *row = hello_rejection(HR_MISSING_FIELDS);
	ck_assert_str_eq(row->code, "malformed");
	ck_assert_str_eq(row->message, "hello rejected: malformed");
	ck_assert_int_eq(row->close_code, 1008);
	ck_assert_int_eq(row->metric, REJECT_MALFORMED);
}
END_TEST

START_TEST(hello_optional_fields_and_groups)
{
	struct hello h;
	json_error_t err;
	json_t *m = member_hello(TS);

	json_object_set_new(m, "displayName", json_string(""));
	json_object_set_new(m, "hostname", json_integer(3));
	json_object_del(m, "model");
	json_object_set_new(m, "groups",
			    json_loads("[{\"name\":\"a\",\"role\":\"lead\"},{\"name\":\"b\"},"
				       "{\"role\":\"x\"},\"str\",{\"name\":5},"
				       "{\"name\":\"c\",\"role\":\"\"},{\"name\":\"d\",\"role\":7},"
				       "null,[]]", 0, &err));
	ck_assert_int_eq(hello_check(m, HELLO_MEMBER, TS, &h), HELLO_OK);
	ck_assert_ptr_null(h.display_name);
	ck_assert_ptr_null(h.hostname);
	ck_assert_ptr_null(h.model);
	ck_assert(h.groups_present);
	ck_assert_uint_eq(h.ngroups, 4);
	ck_assert_str_eq(h.groups[0].name, "a");
	ck_assert_str_eq(h.groups[0].role, "lead");
	ck_assert_str_eq(h.groups[1].name, "b");
	ck_assert_ptr_null(h.groups[1].role);
	ck_assert_str_eq(h.groups[2].name, "c");
	ck_assert_ptr_null(h.groups[2].role);
	ck_assert_str_eq(h.groups[3].name, "d");
	ck_assert_ptr_null(h.groups[3].role);
	hello_free(&h);

	/* hello: [] does not count (§5.5); a non-empty array counts even when
	 * no entry survives; a non-array is absent. */
	json_object_set_new(m, "groups", json_array());
	ck_assert_int_eq(hello_check(m, HELLO_MEMBER, TS, &h), HELLO_OK);
	ck_assert(!h.groups_present);
	ck_assert_uint_eq(h.ngroups, 0);
	hello_free(&h);
	json_object_set_new(m, "groups", json_pack("[i]", 42));
	ck_assert_int_eq(hello_check(m, HELLO_MEMBER, TS, &h), HELLO_OK);
	ck_assert(h.groups_present);
	ck_assert_uint_eq(h.ngroups, 0);
	hello_free(&h);
	json_object_set_new(m, "groups", json_string("backend"));
	ck_assert_int_eq(hello_check(m, HELLO_MEMBER, TS, &h), HELLO_OK);
	ck_assert(!h.groups_present);
	hello_free(&h);
	json_decref(m);
}
END_TEST

/* ---- session_hello: boundaries and precedence ---- */

START_TEST(session_pubkey_checks)
{
	char upper[] = SPK;
	json_t *m;

	for (char *p = upper; *p; p++)
		if (*p >= 'a' && *p <= 'f')
			*p = (char)(*p - 'a' + 'A');

	/* 1 before everything: even with a bad parent key and no attestation. */
	m = session_hello(TS, EXP);
	json_object_del(m, "sessionPubkey");
	json_object_set_new(m, "parentMemberPubkey", json_string("x"));
	json_object_del(m, "parentAttestation");
	ck_assert_int_eq(run(m, HELLO_SESSION, TS), HR_BAD_SESSION_PUBKEY);
	m = session_hello(TS, EXP);
	json_object_set_new(m, "sessionPubkey", json_string(upper));
	ck_assert_int_eq(run(m, HELLO_SESSION, TS), HR_BAD_SESSION_PUBKEY);
	m = session_hello(TS, EXP);
	json_object_set_new(m, "sessionPubkey", json_string(""));
	ck_assert_int_eq(run(m, HELLO_SESSION, TS), HR_BAD_SESSION_PUBKEY);

	/* 2 before 3. */
	m = session_hello(TS, EXP);
	json_object_set_new(m, "parentMemberPubkey", json_string(upper));
	json_object_del(m, "parentAttestation");
	ck_assert_int_eq(run(m, HELLO_SESSION, TS), HR_BAD_PARENT_PUBKEY);
	m = session_hello(TS, EXP);
	json_object_del(m, "parentMemberPubkey");
	ck_assert_int_eq(run(m, HELLO_SESSION, TS), HR_BAD_PARENT_PUBKEY);
}
END_TEST

START_TEST(session_attestation_mismatch)
{
	json_t *m;

	m = session_hello(TS, EXP);
	json_object_del(m, "parentAttestation");
	ck_assert_int_eq(run(m, HELLO_SESSION, TS), HR_ATTESTATION_MISMATCH);
	m = session_hello(TS, EXP);
	json_object_set_new(m, "parentAttestation", json_string("{}"));
	ck_assert_int_eq(run(m, HELLO_SESSION, TS), HR_ATTESTATION_MISMATCH);
	m = session_hello(TS, EXP);
	json_object_set_new(att_of(m), "sessionPubkey", json_string(MPK));
	ck_assert_int_eq(run(m, HELLO_SESSION, TS), HR_ATTESTATION_MISMATCH);
	m = session_hello(TS, EXP);
	json_object_set_new(att_of(m), "parentMemberPubkey", json_string(SPK));
	ck_assert_int_eq(run(m, HELLO_SESSION, TS), HR_ATTESTATION_MISMATCH);
	m = session_hello(TS, EXP);
	json_object_del(att_of(m), "parentMemberPubkey");
	ck_assert_int_eq(run(m, HELLO_SESSION, TS), HR_ATTESTATION_MISMATCH);

	/* 3 before 5: a mismatch with an expired attestation. */
	m = session_hello(TS, TS - 1);
	json_object_set_new(att_of(m), "sessionPubkey", json_string(MPK));
	ck_assert_int_eq(run(m, HELLO_SESSION, TS), HR_ATTESTATION_MISMATCH);
}
END_TEST

START_TEST(session_attestation_expiry_boundaries)
{
	json_t *m;

	ck_assert_int_eq(run(session_hello(TS, TS), HELLO_SESSION, TS), HR_ATT_EXPIRED);
	ck_assert_int_eq(run(session_hello(TS, TS - 1000), HELLO_SESSION, TS), HR_ATT_EXPIRED);
	ck_assert_int_eq(run(session_hello(TS, TS + 1), HELLO_SESSION, TS), HELLO_OK);
	ck_assert_int_eq(run(session_hello(TS, TS + DAY), HELLO_SESSION, TS), HELLO_OK);
	ck_assert_int_eq(run(session_hello(TS, TS + DAY + 1), HELLO_SESSION, TS),
			 HR_ATT_TTL_TOO_LONG);

	/* 5a: expiresAt not a number. */
	m = session_hello(TS, EXP);
	json_object_set_new(att_of(m), "expiresAt", json_string("1767268800000"));
	ck_assert_int_eq(run(m, HELLO_SESSION, TS), HR_ATT_MALFORMED);
	m = session_hello(TS, EXP);
	json_object_del(att_of(m), "expiresAt");
	ck_assert_int_eq(run(m, HELLO_SESSION, TS), HR_ATT_MALFORMED);

	/* 5b/5c before 5d and 5e. */
	m = session_hello(TS, TS);
	json_object_set_new(att_of(m), "signature", json_string("zz"));
	ck_assert_int_eq(run(m, HELLO_SESSION, TS), HR_ATT_EXPIRED);
	m = session_hello(TS, TS + DAY + 1);
	json_object_set_new(att_of(m), "signature", json_string("zz"));
	ck_assert_int_eq(run(m, HELLO_SESSION, TS), HR_ATT_TTL_TOO_LONG);
}
END_TEST

START_TEST(session_attestation_signature)
{
	json_t *m;

	/* 5d: shape, before the session timestamp. */
	m = session_hello(TS, EXP);
	json_object_set_new(att_of(m), "signature", json_string(SIG_ATTEST "00"));
	ck_assert_int_eq(run(m, HELLO_SESSION, TS + 999999), HR_ATT_MALFORMED);
	m = session_hello(TS, EXP);
	json_object_del(att_of(m), "signature");
	ck_assert_int_eq(run(m, HELLO_SESSION, TS), HR_ATT_MALFORMED);

	/* 5e: signed by the session key instead of the parent; covers expiresAt. */
	m = session_hello(TS, EXP);
	json_object_set_new(m, "parentAttestation", attestation(EXP, ssk));
	ck_assert_int_eq(run(m, HELLO_SESSION, TS), HR_ATT_BAD_SIGNATURE);
	m = session_hello(TS, EXP);
	json_object_set_new(att_of(m), "expiresAt", json_integer(EXP + 1));
	ck_assert_int_eq(run(m, HELLO_SESSION, TS), HR_ATT_BAD_SIGNATURE);

	/* 5e before 6: bad attestation and a stale timestamp. */
	m = session_hello(TS, EXP);
	json_object_set_new(m, "parentAttestation", attestation(EXP, ssk));
	ck_assert_int_eq(run(m, HELLO_SESSION, TS + 60001), HR_ATT_BAD_SIGNATURE);

	/* Uppercase attestation signature is accepted. */
	char upper[] = SIG_ATTEST;
	for (char *p = upper; *p; p++)
		if (*p >= 'a' && *p <= 'f')
			*p = (char)(*p - 'a' + 'A');
	m = session_hello(TS, EXP);
	json_object_set_new(att_of(m), "signature", json_string(upper));
	ck_assert_int_eq(run(m, HELLO_SESSION, TS), HELLO_OK);
}
END_TEST

START_TEST(session_signature_checks)
{
	json_t *m;

	/* 6a, exactly 60 s either way is fine. */
	ck_assert_int_eq(run(session_hello(TS, EXP), HELLO_SESSION, TS + 60000), HELLO_OK);
	ck_assert_int_eq(run(session_hello(TS, EXP), HELLO_SESSION, TS - 60000), HELLO_OK);
	ck_assert_int_eq(run(session_hello(TS, EXP), HELLO_SESSION, TS + 60001),
			 HR_SESSION_TIMESTAMP_SKEW);
	ck_assert_int_eq(run(session_hello(TS, EXP), HELLO_SESSION, TS - 60001),
			 HR_SESSION_TIMESTAMP_SKEW);
	m = session_hello(TS, EXP);
	json_object_set_new(m, "timestamp", json_string("1767225600000"));
	ck_assert_int_eq(run(m, HELLO_SESSION, TS), HR_SESSION_TIMESTAMP_SKEW);

	/* 6a before 6b. */
	m = session_hello(TS, EXP);
	json_object_set_new(m, "signature", json_string("q"));
	ck_assert_int_eq(run(m, HELLO_SESSION, TS + 60001), HR_SESSION_TIMESTAMP_SKEW);

	/* 6b. */
	m = session_hello(TS, EXP);
	json_object_set_new(m, "signature", json_string("q"));
	ck_assert_int_eq(run(m, HELLO_SESSION, TS), HR_SESSION_MALFORMED);
	m = session_hello(TS, EXP);
	json_object_del(m, "signature");
	ck_assert_int_eq(run(m, HELLO_SESSION, TS), HR_SESSION_MALFORMED);

	/* 6c: the parent's key, another mesh, another timestamp. */
	m = session_hello(TS, EXP);
	sign_into(m, "signature", hello_canonical_session(MESH, MPK, SPK, (double)TS), msk);
	ck_assert_int_eq(run(m, HELLO_SESSION, TS), HR_SESSION_BAD_SIGNATURE);
	m = session_hello(TS, EXP);
	json_object_set_new(m, "meshId", json_string("other"));
	ck_assert_int_eq(run(m, HELLO_SESSION, TS), HR_SESSION_BAD_SIGNATURE);
	m = session_hello(TS, EXP);
	json_object_set_new(m, "timestamp", json_integer(TS + 1));
	ck_assert_int_eq(run(m, HELLO_SESSION, TS), HR_SESSION_BAD_SIGNATURE);

	/* 6c before Q11. */
	m = session_hello(TS, EXP);
	json_object_set_new(m, "timestamp", json_integer(TS + 1));
	json_object_del(m, "sessionId");
	ck_assert_int_eq(run(m, HELLO_SESSION, TS), HR_SESSION_BAD_SIGNATURE);
}
END_TEST

START_TEST(session_q11_and_parent_member_id)
{
	const char *keys[] = { "sessionId", "pid", "cwd" };
	struct hello h;
	json_t *m;

	for (size_t i = 0; i < 3; i++) {
		m = session_hello(TS, EXP);
		json_object_del(m, keys[i]);
		ck_assert_int_eq(run(m, HELLO_SESSION, TS), HR_SESSION_MISSING_FIELDS);
	}
	const struct hello_rejection *row = hello_rejection(HR_SESSION_MISSING_FIELDS);
	ck_assert_str_eq(row->code, "malformed");
	ck_assert_str_eq(row->message, "session_hello rejected: malformed");
	ck_assert_int_eq(row->metric, REJECT_SESSION_MALFORMED);

	/* parentMemberId: absent, "" or null always match; a truthy non-string never. */
	json_t *falsy[] = { NULL, json_string(""), json_null(), json_integer(0) };
	for (size_t i = 0; i < 4; i++) {
		m = session_hello(TS, EXP);
		if (falsy[i])
			json_object_set_new(m, "parentMemberId", falsy[i]);
		else
			json_object_del(m, "parentMemberId");
		ck_assert_int_eq(hello_check(m, HELLO_SESSION, TS, &h), HELLO_OK);
		ck_assert(!h.member_id_truthy);
		ck_assert_ptr_null(h.member_id);
		ck_assert(hello_member_id_matches(&h, "anyone"));
		hello_free(&h);
		json_decref(m);
	}
	m = session_hello(TS, EXP);
	json_object_set_new(m, "parentMemberId", json_integer(5));
	ck_assert_int_eq(hello_check(m, HELLO_SESSION, TS, &h), HELLO_OK);
	ck_assert(h.member_id_truthy);
	ck_assert(!hello_member_id_matches(&h, "5"));
	hello_free(&h);
	json_decref(m);
}
END_TEST

START_TEST(session_groups)
{
	struct hello h;
	json_t *m = session_hello(TS, EXP);

	json_object_set_new(m, "groups", json_array());
	ck_assert_int_eq(hello_check(m, HELLO_SESSION, TS, &h), HELLO_OK);
	ck_assert(h.groups_present); /* §5.2: [] is used as is */
	ck_assert_uint_eq(h.ngroups, 0);
	hello_free(&h);
	json_object_set_new(m, "groups", json_null());
	ck_assert_int_eq(hello_check(m, HELLO_SESSION, TS, &h), HELLO_OK);
	ck_assert(!h.groups_present);
	hello_free(&h);
	json_object_del(m, "groups");
	ck_assert_int_eq(hello_check(m, HELLO_SESSION, TS, &h), HELLO_OK);
	ck_assert(!h.groups_present);
	hello_free(&h);
	json_decref(m);
}
END_TEST

START_TEST(not_an_object)
{
	struct hello h;
	json_t *m = json_array();
	ck_assert_int_eq(hello_check(m, HELLO_MEMBER, TS, &h), HR_TIMESTAMP_SKEW);
	hello_free(&h);
	ck_assert_int_eq(hello_check(m, HELLO_SESSION, TS, &h), HR_BAD_SESSION_PUBKEY);
	hello_free(&h);
	json_decref(m);
}
END_TEST

/* ---- the rejection table ---- */

struct expect {
	enum hello_reject r;
	const char *code, *message;
	uint16_t close;
	const char *reason;
	enum reject_reason metric;
};

START_TEST(rejection_table)
{
	static const struct expect rows[] = {
		{ HR_BAD_SESSION_PUBKEY, "bad_session_pubkey",
		  "sessionPubkey must be 64 lowercase hex chars", 1008, "bad_session_pubkey",
		  REJECT_BAD_SESSION_PUBKEY },
		{ HR_CAPACITY, "capacity", "mesh at connection capacity", 1008, "capacity",
		  REJECT_CAPACITY },
		{ HR_TIMESTAMP_SKEW, "timestamp_skew", "hello rejected: timestamp_skew", 1008,
		  "timestamp_skew", REJECT_TIMESTAMP_SKEW },
		{ HR_MALFORMED, "malformed", "hello rejected: malformed", 1008, "malformed",
		  REJECT_MALFORMED },
		{ HR_BAD_SIGNATURE, "bad_signature", "hello rejected: bad_signature", 1008,
		  "bad_signature", REJECT_BAD_SIGNATURE },
		{ HR_REVOKED, "revoked",
		  "You've been removed from \"%s\". Contact the mesh owner to rejoin.", 4002, "banned",
		  REJECT_REVOKED },
		{ HR_UNAUTHORIZED, "unauthorized", "pubkey not found in mesh", 1008, "unauthorized",
		  REJECT_UNAUTHORIZED },
		{ HR_BAD_PARENT_PUBKEY, "bad_parent_pubkey",
		  "parentMemberPubkey must be 64 lowercase hex chars", 1008, "bad_parent_pubkey",
		  REJECT_BAD_PARENT_PUBKEY },
		{ HR_ATTESTATION_MISMATCH, "attestation_mismatch",
		  "parentAttestation does not bind the claimed session+parent pubkeys", 1008,
		  "attestation_mismatch", REJECT_ATTESTATION_MISMATCH },
		{ HR_ATT_MALFORMED, "malformed", "attestation rejected: malformed", 1008, "malformed",
		  REJECT_ATTESTATION_MALFORMED },
		{ HR_ATT_EXPIRED, "expired", "attestation rejected: expired", 1008, "expired",
		  REJECT_ATTESTATION_EXPIRED },
		{ HR_ATT_TTL_TOO_LONG, "ttl_too_long", "attestation rejected: ttl_too_long", 1008,
		  "ttl_too_long", REJECT_ATTESTATION_TTL_TOO_LONG },
		{ HR_ATT_BAD_SIGNATURE, "bad_signature", "attestation rejected: bad_signature", 1008,
		  "bad_signature", REJECT_ATTESTATION_BAD_SIGNATURE },
		{ HR_SESSION_TIMESTAMP_SKEW, "timestamp_skew", "session_hello rejected: timestamp_skew",
		  1008, "timestamp_skew", REJECT_SESSION_TIMESTAMP_SKEW },
		{ HR_SESSION_MALFORMED, "malformed", "session_hello rejected: malformed", 1008,
		  "malformed", REJECT_SESSION_MALFORMED },
		{ HR_SESSION_BAD_SIGNATURE, "bad_signature", "session_hello rejected: bad_signature",
		  1008, "bad_signature", REJECT_SESSION_BAD_SIGNATURE },
		{ HR_PARENT_UNAUTHORIZED, "unauthorized", "parent pubkey not found in mesh", 1008,
		  "unauthorized", REJECT_UNAUTHORIZED },
		{ HR_PARENT_MEMBER_ID_MISMATCH, "parent_member_id_mismatch",
		  "parentMemberId does not match parentMemberPubkey", 1008,
		  "parent_member_id_mismatch", REJECT_PARENT_MEMBER_ID_MISMATCH },
		{ HR_MISSING_FIELDS, "malformed", "hello rejected: malformed", 1008, "malformed",
		  REJECT_MALFORMED },
		{ HR_SESSION_MISSING_FIELDS, "malformed", "session_hello rejected: malformed", 1008,
		  "malformed", REJECT_SESSION_MALFORMED },
		{ HR_MEMBER_ID_MISMATCH, "unauthorized", "pubkey not found in mesh", 1008,
		  "unauthorized", REJECT_UNAUTHORIZED },
		{ HR_MESH_ARCHIVED, "unauthorized", "pubkey not found in mesh", 1008, "unauthorized",
		  REJECT_UNAUTHORIZED },
		{ HR_PARENT_MESH_ARCHIVED, "unauthorized", "parent pubkey not found in mesh", 1008,
		  "unauthorized", REJECT_UNAUTHORIZED },
	};
	size_t n = sizeof(rows) / sizeof(rows[0]);

	ck_assert_uint_eq(n, HR__COUNT - 1);
	ck_assert_ptr_null(hello_rejection(HELLO_OK));
	ck_assert_ptr_null(hello_rejection(HR__COUNT));
	for (size_t i = 0; i < n; i++) {
		const struct hello_rejection *row = hello_rejection(rows[i].r);
		ck_assert_ptr_nonnull(row);
		ck_assert_ptr_nonnull(row->name);
		ck_assert_str_eq(row->code, rows[i].code);
		ck_assert_str_eq(row->message, rows[i].message);
		ck_assert_int_eq(row->close_code, rows[i].close);
		ck_assert_str_eq(row->close_reason, rows[i].reason);
		ck_assert_int_eq(row->metric, rows[i].metric);
		for (size_t j = 0; j < i; j++)
			ck_assert_str_ne(row->name, hello_rejection(rows[j].r)->name);
	}
}
END_TEST

START_TEST(format_messages)
{
	char buf[128];
	size_t n;

	n = hello_format_message(HR_REVOKED, "Team \"A\"", buf, sizeof(buf));
	ck_assert_str_eq(buf, "You've been removed from \"Team \"A\"\". Contact the mesh owner to rejoin.");
	ck_assert_uint_eq(n, strlen(buf));
	n = hello_format_message(HR_REVOKED, NULL, buf, sizeof(buf));
	ck_assert_str_eq(buf, "You've been removed from \"\". Contact the mesh owner to rejoin.");
	n = hello_format_message(HR_ATT_EXPIRED, "ignored", buf, sizeof(buf));
	ck_assert_str_eq(buf, "attestation rejected: expired");
	ck_assert_uint_eq(n, 29);
	/* Sized by the return value. */
	n = hello_format_message(HR_REVOKED, "a-rather-long-mesh-name", NULL, 0);
	ck_assert_uint_eq(n, strlen("You've been removed from \"a-rather-long-mesh-name\". "
				    "Contact the mesh owner to rejoin."));
	n = hello_format_message(HR_CAPACITY, NULL, buf, 5);
	ck_assert_str_eq(buf, "mesh");
	ck_assert_uint_eq(n, strlen("mesh at connection capacity"));
}
END_TEST

/* ---- helpers ---- */

START_TEST(verify_shapes)
{
	char *c = hello_canonical_member(MESH, MEMBER, MPK, (double)TS);
	ck_assert(hello_verify(c, SIG_HELLO, MPK));
	ck_assert(!hello_verify(c, SIG_HELLO "0", MPK));
	ck_assert(!hello_verify(c, SIG_HELLO, MPK "0"));
	ck_assert(!hello_verify(c, "zz", MPK));
	ck_assert(!hello_verify(NULL, SIG_HELLO, MPK));
	ck_assert(!hello_verify("tampered", SIG_HELLO, MPK));
	xfree(c);
}
END_TEST

int main(void)
{
	keys_init();

	Suite *s = suite_create("hello");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, vectors_protocol_12);
	tcase_add_test(tc, vectors_semantics_c7);
	tcase_add_test(tc, c7_frames_pass_hello_check);
	tcase_add_test(tc, hello_vector_frame_and_fields);
	tcase_add_test(tc, session_vector_frame_and_fields);
	tcase_add_test(tc, hello_skew_boundaries);
	tcase_add_test(tc, hello_timestamp_types);
	tcase_add_test(tc, hello_session_pubkey_rules);
	tcase_add_test(tc, hello_precedence);
	tcase_add_test(tc, hello_hex_case);
	tcase_add_test(tc, hello_q11_missing_fields);
	tcase_add_test(tc, hello_optional_fields_and_groups);
	tcase_add_test(tc, session_pubkey_checks);
	tcase_add_test(tc, session_attestation_mismatch);
	tcase_add_test(tc, session_attestation_expiry_boundaries);
	tcase_add_test(tc, session_attestation_signature);
	tcase_add_test(tc, session_signature_checks);
	tcase_add_test(tc, session_q11_and_parent_member_id);
	tcase_add_test(tc, session_groups);
	tcase_add_test(tc, not_an_object);
	tcase_add_test(tc, rejection_table);
	tcase_add_test(tc, format_messages);
	tcase_add_test(tc, verify_shapes);
	suite_add_tcase(s, tc);
	return check_run(s);
}
