/* Unit tests: the client protocol library (contrib/meshclient).
 *
 * Signatures against PROTOCOL.md §12, DM crypto, every builder's exact text,
 * and the parser on the broker frames PROTOCOL.md shows.
 */
#include "config.h"

#include <check.h>

#include "check_run.h"
#include <stdlib.h>
#include <string.h>

#include "meshclient.h"

/* PROTOCOL.md §12 */
#define V_MESH "B2VSzwbq1pgBvrOxDIucib5u6rkYchCt"
#define V_MEMBER "0YHiR976xIM8QwdBYbpHER6Rh2afWiIP"
#define V_TS 1767225600000LL
#define V_EXP 1767268800000LL
#define V_MEMBER_PK "8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c"
#define V_SESSION_PK "8139770ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b394"
#define V_HELLO_SIG \
	"cc154ce78b8a453c6741462db9eece1bc39aae1e1021a80d2d4925d9665c12e4" \
	"b36e3f45fd22dad7530f687e10711da68ce939579725db52875371d8abe24f0e"
#define V_ATTEST_SIG \
	"3ad78faf29024a57427648c00163d9a741d34d8ba946192e5bdc7a00133b7c34" \
	"11c458a353e98054b94037ec441d39657485d4a0e8b47fb6070197a18fdc010b"
#define V_SESSION_SIG \
	"5bd7a0d2cbf5eb19cfa12ddbd8419a0c00fb83269da9a68e3671336e23cbf8da" \
	"9e04ae672b233ae8a03b947c541e8c38d98455ca8f6f8a5eced8806ea13c1007"

static struct mc_identity member, session;

static void load_vector_keys(void)
{
	unsigned char s1[32], s2[32];

	memset(s1, 0x01, sizeof(s1));
	memset(s2, 0x02, sizeof(s2));
	ck_assert(mc_identity_from_seed(s1, &member));
	ck_assert(mc_identity_from_seed(s2, &session));
}

/* Parses built (client-side) text back into a frame; it must be a JSON
 * object with a string type. */
static void parse_ok(const char *text, struct mc_frame *f)
{
	ck_assert_ptr_nonnull(text);
	ck_assert_msg(mc_parse(text, strlen(text), f), "does not parse: %s", text);
}

static const char *jstr(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

/* ------------------------------------------------------------------ keys */

START_TEST(vector_keys)
{
	load_vector_keys();
	ck_assert_str_eq(member.pk_hex, V_MEMBER_PK);
	ck_assert_str_eq(session.pk_hex, V_SESSION_PK);
	/* libsodium secret key = seed || public key */
	for (int i = 0; i < 32; i++)
		ck_assert_int_eq(member.sk[i], 0x01);
	ck_assert_mem_eq(member.sk + 32, member.pk, 32);

	struct mc_identity a, b;
	ck_assert(mc_identity_random(&a));
	ck_assert(mc_identity_random(&b));
	ck_assert_uint_eq(strlen(a.pk_hex), 64);
	ck_assert_str_ne(a.pk_hex, b.pk_hex);
	for (const char *p = a.pk_hex; *p; p++)
		ck_assert(strchr("0123456789abcdef", *p));
}
END_TEST

START_TEST(vector_hello)
{
	struct mc_frame f;
	char *s;

	load_vector_keys();
	s = mc_hello(&member, &(struct mc_hello_opts){
		.mesh_id = V_MESH, .member_id = V_MEMBER, .session_id = "daemon-4242",
		.pid = 4242, .cwd = "/home/mou/project", .timestamp = V_TS,
	});
	ck_assert_str_eq(s,
		"{\"type\":\"hello\",\"meshId\":\"" V_MESH "\",\"memberId\":\"" V_MEMBER "\","
		"\"pubkey\":\"" V_MEMBER_PK "\",\"sessionId\":\"daemon-4242\",\"pid\":4242,"
		"\"cwd\":\"/home/mou/project\",\"timestamp\":1767225600000,"
		"\"signature\":\"" V_HELLO_SIG "\"}");
	parse_ok(s, &f);
	ck_assert_int_eq(f.type, MC_OTHER);
	ck_assert_str_eq(f.type_str, "hello");
	ck_assert(mc_verify_hex(V_MEMBER_PK, V_MESH "|" V_MEMBER "|" V_MEMBER_PK "|1767225600000",
				jstr(f.json, "signature")));
	mc_frame_free(&f);
	free(s);

	/* mc_sign_hex on the canonical string gives the same bytes. */
	char sig[MC_SIG_HEX_LEN + 1];
	const char *canon = V_MESH "|" V_MEMBER "|" V_MEMBER_PK "|1767225600000";
	ck_assert(mc_sign_hex(&member, canon, strlen(canon), sig));
	ck_assert_str_eq(sig, V_HELLO_SIG);
}
END_TEST

START_TEST(vector_session_hello)
{
	struct mc_frame f;
	char *s;
	json_t *att;

	load_vector_keys();
	s = mc_session_hello(&member, &session, &(struct mc_session_hello_opts){
		.mesh_id = V_MESH, .parent_member_id = V_MEMBER, .display_name = "Mou",
		.session_id = "7f1c2d9e-claude-session-uuid", .pid = 5151,
		.cwd = "/home/mou/project", .hostname = "mou-laptop", .peer_type = "ai",
		.channel = "claudemesh-session",
		.groups = (struct mc_group[]){ { "backend", NULL }, { NULL, NULL } },
		.timestamp = V_TS, .expires_at = V_EXP,
	});
	ck_assert_str_eq(s,
		"{\"type\":\"session_hello\",\"meshId\":\"" V_MESH "\","
		"\"parentMemberId\":\"" V_MEMBER "\",\"parentMemberPubkey\":\"" V_MEMBER_PK "\","
		"\"sessionPubkey\":\"" V_SESSION_PK "\",\"parentAttestation\":{"
		"\"sessionPubkey\":\"" V_SESSION_PK "\",\"parentMemberPubkey\":\"" V_MEMBER_PK "\","
		"\"expiresAt\":1767268800000,\"signature\":\"" V_ATTEST_SIG "\"},"
		"\"displayName\":\"Mou\",\"sessionId\":\"7f1c2d9e-claude-session-uuid\","
		"\"pid\":5151,\"cwd\":\"/home/mou/project\",\"hostname\":\"mou-laptop\","
		"\"peerType\":\"ai\",\"channel\":\"claudemesh-session\","
		"\"groups\":[{\"name\":\"backend\"}],\"timestamp\":1767225600000,"
		"\"signature\":\"" V_SESSION_SIG "\"}");
	parse_ok(s, &f);
	att = json_object_get(f.json, "parentAttestation");
	ck_assert(mc_verify_hex(V_MEMBER_PK,
				"claudemesh-session-attest|" V_MEMBER_PK "|" V_SESSION_PK
				"|1767268800000", jstr(att, "signature")));
	ck_assert(mc_verify_hex(V_SESSION_PK,
				"claudemesh-session-hello|" V_MESH "|" V_MEMBER_PK "|" V_SESSION_PK
				"|1767225600000", jstr(f.json, "signature")));
	mc_frame_free(&f);
	free(s);
}
END_TEST

/* Without overrides: timestamp is now, expiresAt now + 12 h, and a fresh
 * frame still verifies. */
START_TEST(defaults_are_now)
{
	struct mc_frame f;
	long long before, after, ts, exp;
	char *canon, *s;

	load_vector_keys();
	before = mc_now_ms();
	s = mc_session_hello(&member, &session, &(struct mc_session_hello_opts){
		.mesh_id = V_MESH, .groups = (struct mc_group[]){ { NULL, NULL } },
	});
	after = mc_now_ms();
	parse_ok(s, &f);
	ts = json_integer_value(json_object_get(f.json, "timestamp"));
	exp = json_integer_value(json_object_get(json_object_get(f.json, "parentAttestation"),
						 "expiresAt"));
	ck_assert(ts >= before && ts <= after);
	ck_assert(exp >= before + MC_ATTEST_TTL_MS && exp <= after + MC_ATTEST_TTL_MS);
	/* groups {NULL} is an explicit [] (it means "no groups" to the broker) */
	ck_assert(json_is_array(json_object_get(f.json, "groups")));
	ck_assert_uint_eq(json_array_size(json_object_get(f.json, "groups")), 0);
	ck_assert_ptr_null(json_object_get(f.json, "parentMemberId"));
	canon = malloc(256);
	snprintf(canon, 256, "claudemesh-session-hello|%s|%s|%s|%lld", V_MESH, V_MEMBER_PK,
		 V_SESSION_PK, ts);
	ck_assert(mc_verify_hex(session.pk_hex, canon, jstr(f.json, "signature")));
	free(canon);
	mc_frame_free(&f);
	free(s);
	ck_assert(mc_now_ms() > 1700000000000LL);
}
END_TEST

START_TEST(signature_overrides)
{
	struct mc_frame f;
	const char *sig;
	char *s;

	load_vector_keys();
	s = mc_hello(&member, &(struct mc_hello_opts){
		.mesh_id = V_MESH, .member_id = V_MEMBER, .timestamp = V_TS,
		.corrupt_signature = true,
	});
	parse_ok(s, &f);
	sig = jstr(f.json, "signature");
	ck_assert_uint_eq(strlen(sig), 128);
	ck_assert_str_ne(sig, V_HELLO_SIG);
	ck_assert_str_eq(sig + 2, &V_HELLO_SIG[2]);     /* one bit of byte 0 */
	ck_assert(!mc_verify_hex(V_MEMBER_PK, V_MESH "|" V_MEMBER "|" V_MEMBER_PK "|1767225600000",
				 sig));
	mc_frame_free(&f);
	free(s);

	s = mc_hello(&member, &(struct mc_hello_opts){
		.mesh_id = V_MESH, .member_id = V_MEMBER, .signature = "zz",
		.pubkey = "ABC", .session_pubkey = "",
	});
	parse_ok(s, &f);
	ck_assert_str_eq(jstr(f.json, "signature"), "zz");
	ck_assert_str_eq(jstr(f.json, "pubkey"), "ABC");
	ck_assert_str_eq(jstr(f.json, "sessionPubkey"), "");
	mc_frame_free(&f);
	free(s);

	s = mc_session_hello(&member, &session, &(struct mc_session_hello_opts){
		.mesh_id = V_MESH, .timestamp = V_TS, .expires_at = V_EXP,
		.corrupt_attestation = true, .signature = "00",
	});
	parse_ok(s, &f);
	sig = jstr(json_object_get(f.json, "parentAttestation"), "signature");
	ck_assert_uint_eq(strlen(sig), 128);
	ck_assert_str_ne(sig, V_ATTEST_SIG);
	ck_assert_str_eq(jstr(f.json, "signature"), "00");
	mc_frame_free(&f);
	free(s);

	s = mc_session_hello(&member, &session, &(struct mc_session_hello_opts){
		.mesh_id = V_MESH, .timestamp = V_TS, .expires_at = V_EXP,
		.attestation_signature = "nothex", .corrupt_signature = true,
	});
	parse_ok(s, &f);
	ck_assert_str_eq(jstr(json_object_get(f.json, "parentAttestation"), "signature"), "nothex");
	sig = jstr(f.json, "signature");
	ck_assert_str_ne(sig, V_SESSION_SIG);
	ck_assert_str_eq(sig + 2, &V_SESSION_SIG[2]);
	mc_frame_free(&f);
	free(s);

	/* required arguments */
	ck_assert_ptr_null(mc_hello(&member, &(struct mc_hello_opts){ .mesh_id = V_MESH }));
	ck_assert_ptr_null(mc_session_hello(&member, &session, &(struct mc_session_hello_opts){ 0 }));
}
END_TEST

START_TEST(verify_rejects)
{
	const char *canon = V_MESH "|" V_MEMBER "|" V_MEMBER_PK "|1767225600000";
	char upper[129];

	ck_assert(mc_verify_hex(V_MEMBER_PK, canon, V_HELLO_SIG));
	/* hex case does not matter for the check */
	for (int i = 0; i < 129; i++)
		upper[i] = (char)(V_HELLO_SIG[i] >= 'a' ? V_HELLO_SIG[i] - 32 : V_HELLO_SIG[i]);
	ck_assert(mc_verify_hex(V_MEMBER_PK, canon, upper));
	ck_assert(!mc_verify_hex(V_SESSION_PK, canon, V_HELLO_SIG));
	ck_assert(!mc_verify_hex(V_MEMBER_PK, V_MESH "|" V_MEMBER "|" V_MEMBER_PK "|1767225600001",
				 V_HELLO_SIG));
	ck_assert(!mc_verify_hex(V_MEMBER_PK, canon, "cc15"));
	ck_assert(!mc_verify_hex("8a88", canon, V_HELLO_SIG));
	ck_assert(!mc_verify_hex(NULL, canon, V_HELLO_SIG));
}
END_TEST

/* --------------------------------------------------------------- crypto */

START_TEST(dm_round_trip)
{
	struct mc_identity a, b, c;
	const char *text = "hello B \xe2\x9c\x93";
	char *nonce, *ct, *nonce2, *ct2;
	unsigned char *plain, *raw;
	size_t len, rawlen;

	ck_assert(mc_identity_random(&a));
	ck_assert(mc_identity_random(&b));
	ck_assert(mc_identity_random(&c));
	ck_assert(mc_encrypt_dm(&a, b.pk_hex, text, strlen(text), &nonce, &ct));

	ck_assert(mc_unb64(nonce, &raw, &rawlen));
	ck_assert_uint_eq(rawlen, 24);
	free(raw);
	ck_assert(mc_unb64(ct, &raw, &rawlen));
	ck_assert_uint_eq(rawlen, strlen(text) + 16);   /* crypto_box MAC */
	free(raw);

	ck_assert(mc_decrypt_dm(&b, a.pk_hex, nonce, ct, &plain, &len));
	ck_assert_uint_eq(len, strlen(text));
	ck_assert_str_eq((char *)plain, text);
	free(plain);

	/* a third key, the wrong sender, a swapped nonce: all refused */
	ck_assert(!mc_decrypt_dm(&c, a.pk_hex, nonce, ct, &plain, &len));
	ck_assert(!mc_decrypt_dm(&b, c.pk_hex, nonce, ct, &plain, &len));
	ck_assert(mc_encrypt_dm(&a, b.pk_hex, text, strlen(text), &nonce2, &ct2));
	ck_assert_str_ne(nonce, nonce2);                /* random nonce */
	ck_assert(!mc_decrypt_dm(&b, a.pk_hex, nonce2, ct, &plain, &len));
	/* B can answer A over the same pair of keys */
	ck_assert(mc_decrypt_dm(&b, a.pk_hex, nonce2, ct2, &plain, &len));
	free(plain);

	/* garbage in */
	ck_assert(!mc_decrypt_dm(&b, a.pk_hex, "not base64!", ct, &plain, &len));
	ck_assert(!mc_decrypt_dm(&b, a.pk_hex, nonce, "AAAA", &plain, &len));
	ck_assert(!mc_decrypt_dm(&b, "xyz", nonce, ct, &plain, &len));
	ck_assert(!mc_encrypt_dm(&a, "xyz", text, 1, &nonce2, &ct2));

	free(nonce);
	free(ct);
	free(nonce2);
	free(ct2);

	/* an empty DM is legal */
	ck_assert(mc_encrypt_dm(&a, b.pk_hex, "", 0, &nonce, &ct));
	ck_assert(mc_decrypt_dm(&b, a.pk_hex, nonce, ct, &plain, &len));
	ck_assert_uint_eq(len, 0);
	ck_assert_str_eq((char *)plain, "");
	free(plain);
	free(nonce);
	free(ct);
}
END_TEST

START_TEST(base64)
{
	unsigned char *out;
	size_t len;
	char *s;

	s = mc_b64("hello mesh", 10);
	ck_assert_str_eq(s, "aGVsbG8gbWVzaA==");    /* standard alphabet, padded */
	ck_assert(mc_unb64(s, &out, &len));
	ck_assert_uint_eq(len, 10);
	ck_assert_str_eq((char *)out, "hello mesh");
	free(out);
	free(s);

	s = mc_b64("\xfb\xff", 2);
	ck_assert_str_eq(s, "+/8=");                    /* not the URL-safe variant */
	free(s);

	s = mc_b64("", 0);
	ck_assert_str_eq(s, "");
	ck_assert(mc_unb64(s, &out, &len));
	ck_assert_uint_eq(len, 0);
	free(out);
	free(s);

	ck_assert(!mc_unb64("-_8=", &out, &len));
	ck_assert(!mc_unb64("aGVsbG8", &out, &len));    /* padding required */
	ck_assert(!mc_unb64(NULL, &out, &len));
}
END_TEST

START_TEST(random_id)
{
	char a[33], b[33], tiny[1] = { 'x' };

	mc_random_id(a, sizeof(a));
	mc_random_id(b, sizeof(b));
	ck_assert_uint_eq(strlen(a), 32);
	ck_assert_uint_eq(strspn(a, "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
				    "abcdefghijklmnopqrstuvwxyz"), 32);
	ck_assert_str_ne(a, b);
	mc_random_id(tiny, 1);
	ck_assert_int_eq(tiny[0], '\0');
	mc_random_id(NULL, 0);
}
END_TEST

/* ------------------------------------------------------------- builders */

/* The exact compact text of every simple builder. */
START_TEST(builders_exact)
{
	static const char *const want[] = {
		"{\"type\":\"client_ack\",\"clientMessageId\":\"3f9c\",\"brokerMessageId\":\"Xk3\"}",
		"{\"type\":\"client_ack\",\"brokerMessageId\":\"Xk3\"}",
		"{\"type\":\"client_ack\"}",
		"{\"type\":\"list_peers\",\"_reqId\":\"pl-1\"}",
		"{\"type\":\"list_peers\"}",
		"{\"type\":\"set_status\",\"status\":\"dnd\"}",
		"{\"type\":\"set_summary\",\"summary\":\"Refactoring the scheduler\"}",
		"{\"type\":\"set_summary\"}",
		"{\"type\":\"join_group\",\"name\":\"backend\",\"role\":\"lead\"}",
		"{\"type\":\"join_group\",\"name\":\"a/b\"}",
		"{\"type\":\"leave_group\",\"name\":\"backend\"}",
		"{\"type\":\"message_status\",\"messageId\":\"Xk3vQ9aa\",\"_reqId\":\"r1\"}",
		"{\"type\":\"message_status\",\"messageId\":\"\"}",
		"{\"type\":\"send\",\"id\":\"3f9c\",\"client_message_id\":\"3f9c\","
			"\"request_fingerprint\":\"9b1d\",\"targetSpec\":\"" V_SESSION_PK "\","
			"\"priority\":\"next\",\"nonce\":\"q83v\",\"ciphertext\":\"w0Zk\"}",
		"{\"type\":\"send\",\"targetSpec\":\"*\",\"nonce\":\"\",\"ciphertext\":\"aGk=\"}",
		"{\"type\":\"send\"}",
	};
	char *built[] = {
		mc_client_ack("3f9c", "Xk3"),
		mc_client_ack(NULL, "Xk3"),
		mc_client_ack(NULL, NULL),
		mc_list_peers("pl-1"),
		mc_list_peers(NULL),
		mc_set_status("dnd"),
		mc_set_summary("Refactoring the scheduler"),
		mc_set_summary(NULL),
		mc_join_group("backend", "lead"),
		mc_join_group("a/b", NULL),
		mc_leave_group("backend"),
		mc_message_status("Xk3vQ9aa", "r1"),
		mc_message_status("", NULL),
		mc_send(&(struct mc_send_opts){
			.id = "3f9c", .client_message_id = "3f9c", .request_fingerprint = "9b1d",
			.target_spec = V_SESSION_PK, .priority = "next", .nonce = "q83v",
			.ciphertext = "w0Zk" }),
		mc_send(&(struct mc_send_opts){ .target_spec = "*", .nonce = "", .ciphertext = "aGk=" }),
		mc_send(&(struct mc_send_opts){ 0 }),
	};

	ck_assert_uint_eq(sizeof(built) / sizeof(built[0]), sizeof(want) / sizeof(want[0]));
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		ck_assert_msg(built[i] && strcmp(built[i], want[i]) == 0, "case %zu: %s", i,
			      built[i] ? built[i] : "(null)");
		free(built[i]);
	}
	ck_assert_ptr_null(mc_set_status(NULL));
	ck_assert_ptr_null(mc_join_group(NULL, "x"));
	ck_assert_ptr_null(mc_leave_group(NULL));
	ck_assert_ptr_null(mc_message_status(NULL, "r"));
}
END_TEST

START_TEST(escaping)
{
	const char *name = "Mou \"the\" dev\nline2\t\\ \x01 \xc3\xa9";
	struct mc_frame f;
	char *s;

	load_vector_keys();
	s = mc_hello(&member, &(struct mc_hello_opts){
		.mesh_id = V_MESH, .member_id = V_MEMBER, .display_name = name,
		.timestamp = V_TS,
	});
	ck_assert_ptr_nonnull(s);
	ck_assert_ptr_nonnull(strstr(s, "\"displayName\":\"Mou \\\"the\\\" dev\\nline2\\t\\\\ "
					"\\u0001 \xc3\xa9\""));
	ck_assert_ptr_null(strchr(s, '\n'));
	parse_ok(s, &f);
	ck_assert_str_eq(jstr(f.json, "displayName"), name);
	/* escaping does not touch the signed fields */
	ck_assert_str_eq(jstr(f.json, "signature"), V_HELLO_SIG);
	mc_frame_free(&f);
	free(s);

	s = mc_set_summary("a\"b\\c\r\n");
	ck_assert_str_eq(s, "{\"type\":\"set_summary\",\"summary\":\"a\\\"b\\\\c\\r\\n\"}");
	free(s);
	s = mc_join_group("q\"uote", "r\nole");
	ck_assert_str_eq(s, "{\"type\":\"join_group\",\"name\":\"q\\\"uote\",\"role\":\"r\\nole\"}");
	free(s);

	/* invalid UTF-8 is refused, never emitted */
	ck_assert_ptr_null(mc_set_summary("\xff\xfe"));
	ck_assert_ptr_null(mc_hello(&member, &(struct mc_hello_opts){
		.mesh_id = V_MESH, .member_id = V_MEMBER, .cwd = "\xc3" }));
}
END_TEST

START_TEST(hello_all_fields)
{
	struct mc_frame f;
	json_t *g;
	char *s;

	load_vector_keys();
	s = mc_hello(&member, &(struct mc_hello_opts){
		.mesh_id = V_MESH, .member_id = V_MEMBER, .session_pubkey = V_SESSION_PK,
		.display_name = "Mou", .session_id = "daemon-4242", .pid = 4242,
		.cwd = "/home/mou/project", .hostname = "mou-laptop", .peer_type = "ai",
		.channel = "claudemesh-daemon", .model = "opus-4",
		.groups = (struct mc_group[]){ { "backend", "lead" }, { "ops", NULL }, { NULL, NULL } },
		.timestamp = V_TS,
	});
	ck_assert_str_eq(s,
		"{\"type\":\"hello\",\"meshId\":\"" V_MESH "\",\"memberId\":\"" V_MEMBER "\","
		"\"pubkey\":\"" V_MEMBER_PK "\",\"sessionPubkey\":\"" V_SESSION_PK "\","
		"\"displayName\":\"Mou\",\"sessionId\":\"daemon-4242\",\"pid\":4242,"
		"\"cwd\":\"/home/mou/project\",\"hostname\":\"mou-laptop\",\"peerType\":\"ai\","
		"\"channel\":\"claudemesh-daemon\",\"model\":\"opus-4\","
		"\"groups\":[{\"name\":\"backend\",\"role\":\"lead\"},{\"name\":\"ops\"}],"
		"\"timestamp\":1767225600000,\"signature\":\"" V_HELLO_SIG "\"}");
	parse_ok(s, &f);
	g = json_object_get(f.json, "groups");
	ck_assert_uint_eq(json_array_size(g), 2);
	ck_assert_str_eq(jstr(json_array_get(g, 0), "role"), "lead");
	mc_frame_free(&f);
	free(s);
}
END_TEST

START_TEST(patch)
{
	const char *drop[] = { "pid", "parentAttestation.signature", "nosuch", "a.b.c", NULL };
	struct mc_frame f;
	char *s, *p;

	load_vector_keys();
	s = mc_session_hello(&member, &session, &(struct mc_session_hello_opts){
		.mesh_id = V_MESH, .pid = 1, .timestamp = V_TS, .expires_at = V_EXP,
	});
	p = mc_patch(s, "{\"timestamp\":\"1767225600000\",\"protocolVersion\":1,"
			"\"parentAttestation\":{\"sessionPubkey\":\"" V_MEMBER_PK "\"}}", drop);
	parse_ok(p, &f);
	ck_assert(json_is_string(json_object_get(f.json, "timestamp")));
	ck_assert_int_eq(json_integer_value(json_object_get(f.json, "protocolVersion")), 1);
	ck_assert_ptr_null(json_object_get(f.json, "pid"));
	json_t *att = json_object_get(f.json, "parentAttestation");
	ck_assert_str_eq(jstr(att, "sessionPubkey"), V_MEMBER_PK);      /* merged */
	ck_assert_str_eq(jstr(att, "parentMemberPubkey"), V_MEMBER_PK);  /* kept */
	ck_assert_int_eq(json_integer_value(json_object_get(att, "expiresAt")), V_EXP);
	ck_assert_ptr_null(json_object_get(att, "signature"));           /* dropped */
	ck_assert_str_eq(jstr(f.json, "signature"), V_SESSION_SIG);
	mc_frame_free(&f);
	free(p);

	p = mc_patch(s, "{\"parentAttestation\":null}", NULL);
	ck_assert_ptr_nonnull(strstr(p, "\"parentAttestation\":null"));
	free(p);
	ck_assert_ptr_null(mc_patch(s, "[1]", NULL));
	ck_assert_ptr_null(mc_patch("[1]", NULL, NULL));
	ck_assert_ptr_null(mc_patch("{", NULL, NULL));
	free(s);
}
END_TEST

/* --------------------------------------------------------------- parser */

static void parse_text(const char *text, struct mc_frame *f)
{
	ck_assert_msg(mc_parse(text, strlen(text), f), "does not parse: %s", text);
}

/* Each request that has a broker reply: build it, answer it the way
 * PROTOCOL.md says the broker does, and check the reply correlates. */
START_TEST(round_trips)
{
	struct mc_frame req, rep;
	char *s, reply[512];

	load_vector_keys();

	/* hello -> hello_ack */
	s = mc_hello(&member, &(struct mc_hello_opts){ .mesh_id = V_MESH, .member_id = V_MEMBER,
		.display_name = "Mou", .session_id = "s", .pid = 1, .cwd = "/" });
	parse_ok(s, &req);
	snprintf(reply, sizeof(reply),
		 "{\"type\":\"hello_ack\",\"presenceId\":\"P\",\"memberDisplayName\":\"%s\"}",
		 jstr(req.json, "displayName"));
	parse_text(reply, &rep);
	ck_assert_int_eq(rep.type, MC_HELLO_ACK);
	ck_assert_ptr_null(rep.bad_field);
	ck_assert_str_eq(rep.hello_ack.member_display_name, "Mou");
	mc_frame_free(&rep);
	mc_frame_free(&req);
	free(s);

	/* session_hello -> hello_ack */
	s = mc_session_hello(&member, &session, &(struct mc_session_hello_opts){
		.mesh_id = V_MESH, .display_name = "Sess" });
	parse_ok(s, &req);
	ck_assert_str_eq(req.type_str, "session_hello");
	mc_frame_free(&req);
	free(s);

	/* send -> ack echoing id */
	s = mc_send(&(struct mc_send_opts){ .id = "c-1", .target_spec = "*", .priority = "low",
		.nonce = "", .ciphertext = "aGk=" });
	parse_ok(s, &req);
	snprintf(reply, sizeof(reply),
		 "{\"type\":\"ack\",\"id\":\"%s\",\"messageId\":\"Xk3\",\"queued\":true}",
		 jstr(req.json, "id"));
	parse_text(reply, &rep);
	ck_assert_int_eq(rep.type, MC_ACK);
	ck_assert_ptr_null(rep.bad_field);
	ck_assert_str_eq(rep.ack.id, "c-1");
	ck_assert(rep.ack.queued);
	mc_frame_free(&rep);
	mc_frame_free(&req);
	free(s);

	/* list_peers -> peers_list echoing _reqId */
	s = mc_list_peers("pl-7");
	parse_ok(s, &req);
	ck_assert_str_eq(req.req_id, "pl-7");
	snprintf(reply, sizeof(reply), "{\"type\":\"peers_list\",\"peers\":[],\"_reqId\":\"%s\"}",
		 req.req_id);
	parse_text(reply, &rep);
	ck_assert_int_eq(rep.type, MC_PEERS_LIST);
	ck_assert_str_eq(rep.req_id, "pl-7");
	ck_assert_uint_eq(json_array_size(rep.peers_list.peers), 0);
	mc_frame_free(&rep);
	mc_frame_free(&req);
	free(s);

	/* message_status -> message_status_result and -> error, both echoing _reqId */
	s = mc_message_status("Xk3vQ9aa", "r1");
	parse_ok(s, &req);
	snprintf(reply, sizeof(reply),
		 "{\"type\":\"message_status_result\",\"messageId\":\"%s\",\"targetSpec\":\"*\","
		 "\"delivered\":true,\"deliveredAt\":\"2026-01-01T00:00:00.000Z\",\"recipients\":[],"
		 "\"_reqId\":\"%s\"}", jstr(req.json, "messageId"), req.req_id);
	parse_text(reply, &rep);
	ck_assert_int_eq(rep.type, MC_MESSAGE_STATUS_RESULT);
	ck_assert_ptr_null(rep.bad_field);
	ck_assert_str_eq(rep.message_status.message_id, "Xk3vQ9aa");
	ck_assert(rep.message_status.delivered);
	ck_assert_str_eq(rep.message_status.delivered_at, "2026-01-01T00:00:00.000Z");
	ck_assert_str_eq(rep.req_id, "r1");
	mc_frame_free(&rep);
	snprintf(reply, sizeof(reply),
		 "{\"type\":\"error\",\"code\":\"not_found\",\"message\":\"message not found\","
		 "\"_reqId\":\"%s\"}", req.req_id);
	parse_text(reply, &rep);
	ck_assert_int_eq(rep.type, MC_ERROR);
	ck_assert_str_eq(rep.error.code, "not_found");
	ck_assert_str_eq(rep.req_id, "r1");
	mc_frame_free(&rep);
	mc_frame_free(&req);
	free(s);

	/* fire-and-forget requests have no reply; they still parse back */
	char *ff[] = { mc_client_ack("a", "b"), mc_set_status("idle"), mc_set_summary("x"),
		       mc_join_group("g", "r"), mc_leave_group("g") };
	const char *types[] = { "client_ack", "set_status", "set_summary", "join_group",
				"leave_group" };
	for (size_t i = 0; i < 5; i++) {
		parse_ok(ff[i], &req);
		ck_assert_int_eq(req.type, MC_OTHER);
		ck_assert_str_eq(req.type_str, types[i]);
		mc_frame_free(&req);
		free(ff[i]);
	}
}
END_TEST

/* A DM end to end: A seals for B, the broker relays nonce/ciphertext as a
 * drained push, B opens it with senderPubkey. */
START_TEST(dm_through_push)
{
	struct mc_identity a, b;
	struct mc_frame req, push;
	unsigned char *plain;
	size_t len;
	char *nonce, *ct, *s, *reply;
	size_t cap;

	ck_assert(mc_identity_random(&a));
	ck_assert(mc_identity_random(&b));
	ck_assert(mc_encrypt_dm(&a, b.pk_hex, "ping", 4, &nonce, &ct));
	s = mc_send(&(struct mc_send_opts){ .id = "1", .client_message_id = "cm-1",
		.target_spec = b.pk_hex, .priority = "now", .nonce = nonce, .ciphertext = ct });
	parse_ok(s, &req);
	cap = strlen(s) + 512;
	reply = malloc(cap);
	snprintf(reply, cap,
		 "{\"type\":\"push\",\"messageId\":\"M\",\"meshId\":\"m\",\"senderPubkey\":\"%s\","
		 "\"priority\":\"now\",\"nonce\":\"%s\",\"ciphertext\":\"%s\","
		 "\"createdAt\":\"2026-01-01T00:00:00.123Z\",\"client_message_id\":\"%s\"}",
		 a.pk_hex, jstr(req.json, "nonce"), jstr(req.json, "ciphertext"),
		 jstr(req.json, "client_message_id"));
	parse_text(reply, &push);
	ck_assert_int_eq(push.type, MC_PUSH);
	ck_assert_ptr_null(push.bad_field);
	ck_assert(!push.push.system);
	ck_assert_str_eq(push.push.client_message_id, "cm-1");
	ck_assert(mc_decrypt_dm(&b, push.push.sender_pubkey, push.push.nonce, push.push.ciphertext,
				&plain, &len));
	ck_assert_str_eq((char *)plain, "ping");
	free(plain);
	mc_frame_free(&push);
	mc_frame_free(&req);
	free(reply);
	free(s);
	free(nonce);
	free(ct);
}
END_TEST

/* The broker frames PROTOCOL.md shows, verbatim. */
START_TEST(canned_hello_ack)
{
	struct mc_frame f;

	parse_text("{\"type\":\"hello_ack\",\"presenceId\":\"CmguE24kTaCkKNRhOI6P3OmZrYTi7Vvj\","
		   "\"memberDisplayName\":\"Mou\",\"memberProfile\":{\"roleTag\":null,\"groups\":[],"
		   "\"messageMode\":\"push\"},\"meshPolicy\":{\"selfEditable\":{\"displayName\":true,"
		   "\"roleTag\":true,\"groups\":true,\"messageMode\":true}},\"restored\":true,"
		   "\"lastSummary\":\"Refactoring the scheduler\",\"lastSeenAt\":"
		   "\"2026-01-01T00:00:00.000Z\",\"restoredGroups\":[{\"name\":\"backend\","
		   "\"role\":\"lead\"}],\"restoredStats\":{\"messagesIn\":3,\"messagesOut\":5,"
		   "\"toolCalls\":0,\"errors\":0},\"services\":[]}", &f);
	ck_assert_int_eq(f.type, MC_HELLO_ACK);
	ck_assert_str_eq(mc_frame_type_name(f.type), "hello_ack");
	ck_assert_ptr_null(f.bad_field);
	ck_assert_ptr_null(f.req_id);
	ck_assert_str_eq(f.hello_ack.presence_id, "CmguE24kTaCkKNRhOI6P3OmZrYTi7Vvj");
	ck_assert_str_eq(f.hello_ack.member_display_name, "Mou");
	ck_assert(json_is_true(json_object_get(f.json, "restored")));
	mc_frame_free(&f);
	ck_assert_ptr_null(f.json);
}
END_TEST

START_TEST(canned_acks)
{
	struct mc_frame f;

	parse_text("{\"type\":\"ack\",\"id\":\"3f9c2a7e1b0d4c55\","
		   "\"messageId\":\"Xk3vQ9aaXk3vQ9aaXk3vQ9aaXk3vQ9aa\",\"queued\":true}", &f);
	ck_assert_int_eq(f.type, MC_ACK);
	ck_assert_ptr_null(f.bad_field);
	ck_assert_str_eq(f.ack.id, "3f9c2a7e1b0d4c55");
	ck_assert_str_eq(f.ack.message_id, "Xk3vQ9aaXk3vQ9aaXk3vQ9aaXk3vQ9aa");
	ck_assert(f.ack.queued);
	ck_assert_ptr_null(f.ack.error);
	mc_frame_free(&f);

	parse_text("{\"type\":\"ack\",\"id\":\"\",\"messageId\":\"\",\"queued\":false,"
		   "\"error\":\"rate_limit: max 60 msg/min (burst 10) \xe2\x80\x94 slow down\"}", &f);
	ck_assert_int_eq(f.type, MC_ACK);
	ck_assert_ptr_null(f.bad_field);
	ck_assert_str_eq(f.ack.id, "");
	ck_assert_str_eq(f.ack.message_id, "");
	ck_assert(!f.ack.queued);
	ck_assert_str_eq(f.ack.error, "rate_limit: max 60 msg/min (burst 10) \xe2\x80\x94 slow down");
	mc_frame_free(&f);

	/* shape errors are reported, not fatal */
	parse_text("{\"type\":\"ack\",\"id\":\"\",\"messageId\":\"\"}", &f);
	ck_assert_str_eq(f.bad_field, "ack.queued");
	mc_frame_free(&f);
	parse_text("{\"type\":\"ack\",\"id\":7,\"messageId\":\"\",\"queued\":false}", &f);
	ck_assert_str_eq(f.bad_field, "ack.id");
	ck_assert_ptr_null(f.ack.id);
	mc_frame_free(&f);
	parse_text("{\"type\":\"ack\",\"id\":\"\",\"messageId\":\"m\",\"queued\":true,\"error\":\"x\"}",
		   &f);
	ck_assert_str_eq(f.bad_field, "ack.error");
	mc_frame_free(&f);
}
END_TEST

START_TEST(canned_push_drained)
{
	struct mc_frame f;

	parse_text("{\"type\":\"push\",\"messageId\":\"Xk3\xe2\x80\xa6(32)\",\"meshId\":\"B2VS\xe2\x80\xa6\","
		   "\"senderPubkey\":\"8139\xe2\x80\xa6" "b394\",\"priority\":\"next\",\"nonce\":\"\xe2\x80\xa6\","
		   "\"ciphertext\":\"\xe2\x80\xa6\",\"createdAt\":\"2026-01-01T00:00:00.123Z\","
		   "\"client_message_id\":\"3f9c2a7e1b0d4c55\",\"request_fingerprint\":\"9b1d\xe2\x80\xa6\"}",
		   &f);
	ck_assert_int_eq(f.type, MC_PUSH);
	ck_assert_ptr_null(f.bad_field);
	ck_assert(!f.push.system);
	ck_assert_str_eq(f.push.message_id, "Xk3\xe2\x80\xa6(32)");
	ck_assert_str_eq(f.push.mesh_id, "B2VS\xe2\x80\xa6");
	ck_assert_str_eq(f.push.sender_pubkey, "8139\xe2\x80\xa6" "b394");
	ck_assert_str_eq(f.push.priority, "next");
	ck_assert_str_eq(f.push.nonce, "\xe2\x80\xa6");
	ck_assert_str_eq(f.push.ciphertext, "\xe2\x80\xa6");
	ck_assert_str_eq(f.push.created_at, "2026-01-01T00:00:00.123Z");
	ck_assert_str_eq(f.push.client_message_id, "3f9c2a7e1b0d4c55");
	ck_assert_str_eq(f.push.request_fingerprint, "9b1d\xe2\x80\xa6");
	ck_assert_ptr_null(f.push.sender_member_pubkey);
	ck_assert_ptr_null(f.push.subtype);
	ck_assert_ptr_null(f.push.event_data);
	mc_frame_free(&f);
}
END_TEST

START_TEST(canned_push_multicast)
{
	struct mc_frame f;

	parse_text("{\"type\":\"push\",\"messageId\":\"Xk3\",\"meshId\":\"B2VS\",\"senderPubkey\":"
		   "\"8139b394\",\"senderMemberPubkey\":\"8a886f5c\",\"senderMemberId\":\"0YHi\","
		   "\"senderName\":\"Mou\",\"priority\":\"low\",\"nonce\":\"n\",\"ciphertext\":\"aGk=\","
		   "\"createdAt\":\"2026-01-01T00:00:00.456Z\"}", &f);
	ck_assert_int_eq(f.type, MC_PUSH);
	ck_assert_ptr_null(f.bad_field);
	ck_assert(!f.push.system);
	ck_assert_str_eq(f.push.sender_member_pubkey, "8a886f5c");
	ck_assert_str_eq(f.push.sender_member_id, "0YHi");
	ck_assert_str_eq(f.push.sender_name, "Mou");
	ck_assert_str_eq(f.push.priority, "low");
	ck_assert_ptr_null(f.push.client_message_id);
	ck_assert_ptr_null(f.push.request_fingerprint);

	unsigned char *text;
	size_t len;
	ck_assert(mc_unb64(f.push.ciphertext, &text, &len));
	ck_assert_str_eq((char *)text, "hi");
	free(text);
	mc_frame_free(&f);

	/* a send without priority: the key is absent, and that is well-formed */
	parse_text("{\"type\":\"push\",\"messageId\":\"X\",\"meshId\":\"B\",\"senderPubkey\":\"s\","
		   "\"senderMemberPubkey\":\"m\",\"senderMemberId\":\"i\",\"senderName\":\"Mou\","
		   "\"nonce\":\"n\",\"ciphertext\":\"c\",\"createdAt\":\"2026-01-01T00:00:00.456Z\","
		   "\"replyToId\":\"r\"}", &f);
	ck_assert_ptr_null(f.bad_field);
	ck_assert_ptr_null(f.push.priority);
	ck_assert_str_eq(f.push.reply_to_id, "r");
	mc_frame_free(&f);
}
END_TEST

START_TEST(canned_push_system)
{
	struct mc_frame f;
	json_t *g;

	parse_text("{\"type\":\"push\",\"subtype\":\"system\",\"event\":\"peer_joined\",\"eventData\":"
		   "{\"name\":\"Mou\",\"pubkey\":\"8139b394\",\"groups\":[{\"name\":\"backend\","
		   "\"role\":\"lead\"}]},\"messageId\":\"1b4e28ba-2fa1-41d2-883f-0016d3cca427\","
		   "\"meshId\":\"B2VS\",\"senderPubkey\":\"system\",\"priority\":\"low\",\"nonce\":\"\","
		   "\"ciphertext\":\"\",\"createdAt\":\"2026-01-01T00:00:00.789Z\"}", &f);
	ck_assert_int_eq(f.type, MC_PUSH);
	ck_assert_ptr_null(f.bad_field);
	ck_assert(f.push.system);
	ck_assert_str_eq(f.push.subtype, "system");
	ck_assert_str_eq(f.push.event, "peer_joined");
	ck_assert_str_eq(f.push.message_id, "1b4e28ba-2fa1-41d2-883f-0016d3cca427");
	ck_assert_str_eq(f.push.sender_pubkey, "system");
	ck_assert_str_eq(f.push.nonce, "");
	ck_assert(json_is_object(f.push.event_data));
	ck_assert_str_eq(jstr(f.push.event_data, "name"), "Mou");
	ck_assert_str_eq(jstr(f.push.event_data, "pubkey"), "8139b394");
	g = json_object_get(f.push.event_data, "groups");
	ck_assert_str_eq(jstr(json_array_get(g, 0), "role"), "lead");
	mc_frame_free(&f);

	/* a system push must carry its event */
	parse_text("{\"type\":\"push\",\"subtype\":\"system\",\"messageId\":\"u\",\"meshId\":\"B\","
		   "\"senderPubkey\":\"system\",\"priority\":\"low\",\"nonce\":\"\",\"ciphertext\":\"\","
		   "\"createdAt\":\"2026-01-01T00:00:00.789Z\",\"event\":\"peer_left\"}", &f);
	ck_assert(f.push.system);
	ck_assert_str_eq(f.bad_field, "push.eventData");
	mc_frame_free(&f);
}
END_TEST

START_TEST(canned_error)
{
	struct mc_frame f;

	parse_text("{\"type\":\"error\",\"code\":\"unauthorized\",\"message\":\"pubkey not found in mesh\"}",
		   &f);
	ck_assert_int_eq(f.type, MC_ERROR);
	ck_assert_ptr_null(f.bad_field);
	ck_assert_str_eq(f.error.code, "unauthorized");
	ck_assert_str_eq(f.error.message, "pubkey not found in mesh");
	ck_assert_ptr_null(f.error.id);
	ck_assert_ptr_null(f.req_id);
	mc_frame_free(&f);

	parse_text("{\"type\":\"error\",\"code\":\"no_hello\",\"message\":\"must send hello first\"}", &f);
	ck_assert_str_eq(f.error.code, "no_hello");
	mc_frame_free(&f);

	parse_text("{\"type\":\"error\",\"code\":\"ambiguous_prefix\",\"message\":\"prefix matched 2 "
		   "messages \xe2\x80\x94 use a longer id\",\"_reqId\":\"r1\"}", &f);
	ck_assert_ptr_null(f.bad_field);
	ck_assert_str_eq(f.req_id, "r1");
	mc_frame_free(&f);

	parse_text("{\"type\":\"error\",\"code\":\"x\"}", &f);
	ck_assert_str_eq(f.bad_field, "error.message");
	mc_frame_free(&f);
}
END_TEST

START_TEST(canned_peers_list)
{
	struct mc_frame f;
	json_t *p;

	parse_text("{\"type\":\"peers_list\",\"peers\":[{\"pubkey\":\"8139b394\",\"memberPubkey\":"
		   "\"8a886f5c\",\"displayName\":\"Mou\",\"status\":\"idle\",\"summary\":null,"
		   "\"groups\":[{\"name\":\"backend\",\"role\":\"lead\"}],\"sessionId\":\"7f1c\","
		   "\"connectedAt\":\"2026-01-01T00:00:00.000Z\",\"cwd\":\"/home/mou/project\","
		   "\"peerRole\":\"session\",\"hostname\":\"mou-laptop\",\"peerType\":\"ai\","
		   "\"channel\":\"claudemesh-session\",\"visible\":true}],\"_reqId\":\"pl-1\"}", &f);
	ck_assert_int_eq(f.type, MC_PEERS_LIST);
	ck_assert_ptr_null(f.bad_field);
	ck_assert_str_eq(f.req_id, "pl-1");
	ck_assert_uint_eq(json_array_size(f.peers_list.peers), 1);
	p = json_array_get(f.peers_list.peers, 0);
	ck_assert_str_eq(jstr(p, "peerRole"), "session");
	ck_assert(json_is_null(json_object_get(p, "summary")));
	mc_frame_free(&f);

	parse_text("{\"type\":\"peers_list\"}", &f);
	ck_assert_str_eq(f.bad_field, "peers_list.peers");
	ck_assert_ptr_null(f.peers_list.peers);
	mc_frame_free(&f);
}
END_TEST

START_TEST(canned_message_status_result)
{
	struct mc_frame f;

	parse_text("{\"type\":\"message_status_result\",\"messageId\":\"Xk3vQ9aa\",\"targetSpec\":"
		   "\"8139b394\",\"delivered\":false,\"deliveredAt\":null,\"recipients\":[{\"name\":"
		   "\"Mou\",\"pubkey\":\"8139b394\",\"status\":\"held\"}],\"_reqId\":\"r1\"}", &f);
	ck_assert_int_eq(f.type, MC_MESSAGE_STATUS_RESULT);
	ck_assert_ptr_null(f.bad_field);
	ck_assert_str_eq(f.message_status.message_id, "Xk3vQ9aa");
	ck_assert_str_eq(f.message_status.target_spec, "8139b394");
	ck_assert(!f.message_status.delivered);
	ck_assert_ptr_null(f.message_status.delivered_at);
	ck_assert_str_eq(jstr(json_array_get(f.message_status.recipients, 0), "status"), "held");
	ck_assert_str_eq(f.req_id, "r1");
	mc_frame_free(&f);

	parse_text("{\"type\":\"message_status_result\",\"messageId\":\"X\",\"targetSpec\":\"*\","
		   "\"delivered\":false,\"recipients\":[]}", &f);
	ck_assert_str_eq(f.bad_field, "message_status_result.deliveredAt");
	mc_frame_free(&f);
}
END_TEST

START_TEST(parse_rejects)
{
	static const char *const bad[] = {
		"", "{", "null", "[]", "[{\"type\":\"ack\"}]", "\"ack\"", "{}",
		"{\"type\":1}", "{\"type\":null}", "{\"type\":\"ack\"} trailing",
		"{\"type\":\"ack\",\"type\":\"push\"}",
	};
	struct mc_frame f;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_msg(!mc_parse(bad[i], strlen(bad[i]), &f), "accepted: %s", bad[i]);
		ck_assert_ptr_null(f.json);
		mc_frame_free(&f);      /* harmless after a failure */
	}
	ck_assert(!mc_parse(NULL, 0, &f));

	/* len bounds the input; no NUL needed */
	const char buf[] = "{\"type\":\"state_change\",\"key\":\"k\"}GARBAGE";
	ck_assert(mc_parse(buf, sizeof(buf) - 1 - 7, &f));
	ck_assert_int_eq(f.type, MC_OTHER);
	ck_assert_str_eq(f.type_str, "state_change");
	ck_assert_str_eq(mc_frame_type_name(f.type), "other");
	ck_assert_ptr_null(f.bad_field);
	mc_frame_free(&f);

	parse_text("{\"type\":\"peers_list\",\"peers\":[],\"_reqId\":5}", &f);
	ck_assert_ptr_null(f.req_id);
	ck_assert_str_eq(f.bad_field, "_reqId");
	mc_frame_free(&f);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("meshclient");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, vector_keys);
	tcase_add_test(tc, vector_hello);
	tcase_add_test(tc, vector_session_hello);
	tcase_add_test(tc, defaults_are_now);
	tcase_add_test(tc, signature_overrides);
	tcase_add_test(tc, verify_rejects);
	tcase_add_test(tc, dm_round_trip);
	tcase_add_test(tc, base64);
	tcase_add_test(tc, random_id);
	tcase_add_test(tc, builders_exact);
	tcase_add_test(tc, escaping);
	tcase_add_test(tc, hello_all_fields);
	tcase_add_test(tc, patch);
	tcase_add_test(tc, round_trips);
	tcase_add_test(tc, dm_through_push);
	tcase_add_test(tc, canned_hello_ack);
	tcase_add_test(tc, canned_acks);
	tcase_add_test(tc, canned_push_drained);
	tcase_add_test(tc, canned_push_multicast);
	tcase_add_test(tc, canned_push_system);
	tcase_add_test(tc, canned_error);
	tcase_add_test(tc, canned_peers_list);
	tcase_add_test(tc, canned_message_status_result);
	tcase_add_test(tc, parse_rejects);
	suite_add_tcase(s, tc);

	return check_run(s);
}
