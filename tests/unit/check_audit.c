/* Unit tests: canonical JSON, hash and lock key of the audit chain
 * (SEMANTICS.md §D; src/audit.c). */
#include "config.h"

#include <check.h>

#include "check_run.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "meshd/alloc.h"
#include "meshd/audit.h"

#define AT "2026-04-15T12:00:00.000Z"

/* Canonical form of v; takes the reference. */
static char *canon(json_t *v)
{
	ck_assert_ptr_nonnull(v);
	char *s = audit_canonical_json(v);
	json_decref(v);
	return s;
}

static void expect_canon(json_t *v, const char *want)
{
	char *s = canon(v);
	ck_assert_ptr_nonnull(s);
	ck_assert_str_eq(s, want);
	xfree(s);
}

static void expect_real(double d, const char *want)
{
	expect_canon(json_real(d), want);
}

/* Canonicalises payload and checks it and the row hash of §D's vectors. */
static void expect_vector(const char *prev, const char *mesh, const char *event,
			  const char *actor, json_t *payload, const char *want_canon,
			  const char *want_hash)
{
	char hex[AUDIT_HASH_HEX_LEN + 1];
	char *c = canon(payload);

	ck_assert_ptr_nonnull(c);
	ck_assert_str_eq(c, want_canon);
	audit_hash(prev, mesh, event, actor, c, AT, hex);
	ck_assert_str_eq(hex, want_hash);
	xfree(c);
}

START_TEST(vector_peer_joined_any_key_order)
{
	const char *want = "{\"groups\":[],\"pubkey\":\"abc\",\"restored\":true}";
	const char *h = "ecb1d2585ccb0bc56dca23f87a65374f23ebe30baafc4ceb9b2695c91da1d965";

	expect_vector("prev", "mesh1", "peer_joined", "actor",
		      json_pack("{s:b, s:s, s:[]}", "restored", 1, "pubkey", "abc", "groups"),
		      want, h);
	expect_vector("prev", "mesh1", "peer_joined", "actor",
		      json_pack("{s:s, s:[], s:b}", "pubkey", "abc", "groups", "restored", 1),
		      want, h);
	/* as jsonb hands it back: other order, whitespace */
	expect_vector("prev", "mesh1", "peer_joined", "actor",
		      json_loads("{\"pubkey\": \"abc\", \"groups\": [], \"restored\": true}",
				 JSON_DECODE_INT_AS_REAL, NULL),
		      want, h);
}
END_TEST

START_TEST(vector_nested_objects_null_actor)
{
	expect_vector("x", "m", "e", NULL,
		      json_pack("{s:{s:{s:i, s:i}}}", "outer", "inner", "b", 2, "a", 1),
		      "{\"outer\":{\"inner\":{\"a\":1,\"b\":2}}}",
		      "bc2ae56d03d42ac39e0f6aceae9ebce530cf9c35c74aec02eb21f5284b79960d");
}
END_TEST

START_TEST(vector_arrays_keep_order)
{
	expect_vector("x", "m", "e", NULL, json_pack("{s:[i,i,i]}", "list", 1, 2, 3),
		      "{\"list\":[1,2,3]}",
		      "d46a269e316ac4b04adce65573c70c28429b6d7753b9d3aeb79827f094fcba2a");
	expect_vector("x", "m", "e", NULL, json_pack("{s:[i,i,i]}", "list", 3, 2, 1),
		      "{\"list\":[3,2,1]}",
		      "d052b974a0e2472bd31e5b276beee45e074b9f620f6540e8159be341c02523a6");
	/* numbers read back from jsonb as doubles print the same */
	expect_vector("x", "m", "e", NULL,
		      json_loads("{\"list\": [3, 2, 1]}", JSON_DECODE_INT_AS_REAL, NULL),
		      "{\"list\":[3,2,1]}",
		      "d052b974a0e2472bd31e5b276beee45e074b9f620f6540e8159be341c02523a6");
}
END_TEST

START_TEST(vector_values_change_hash)
{
	expect_vector("x", "m", "e", NULL, json_pack("{s:s}", "k", "v1"), "{\"k\":\"v1\"}",
		      "0359e4c9fa575851a815770ede6e6c50da88a8f24cae8abbb0fbd4830625df80");
	expect_vector("x", "m", "e", NULL, json_pack("{s:s}", "k", "v2"), "{\"k\":\"v2\"}",
		      "32982d003c415fcd1d26c8bfb61fe534b24b92a16b976ce5e298eb35bf67983c");
}
END_TEST

START_TEST(vector_genesis_peer_left)
{
	expect_vector("genesis", "m", "peer_left", "mem1", json_object(), "{}",
		      "ced870c8437829102ad06f3d2806264ecfb0fa8ed8f5f5df77265c4e6c517f95");
}
END_TEST

START_TEST(null_actor_is_literal_null)
{
	char a[AUDIT_HASH_HEX_LEN + 1], b[AUDIT_HASH_HEX_LEN + 1];

	audit_hash("x", "m", "e", NULL, "{}", AT, a);
	audit_hash("x", "m", "e", "null", "{}", AT, b);
	ck_assert_str_eq(a, b);
	ck_assert_uint_eq(strlen(a), AUDIT_HASH_HEX_LEN);
	for (size_t i = 0; i < AUDIT_HASH_HEX_LEN; i++)
		ck_assert(strchr("0123456789abcdef", a[i]) != NULL);
}
END_TEST

START_TEST(lock_key_vector)
{
	ck_assert(audit_lock_key("m1") == INT64_C(3574534591299229875));
	for (const char *m = "abcdefgh"; *m; m++)
		ck_assert(audit_lock_key(m) >= 0);
	ck_assert(audit_lock_key("m1") != audit_lock_key("m2"));
}
END_TEST

START_TEST(string_escapes)
{
	expect_canon(json_stringn("\"\\\b\f\n\r\t/", 8), "\"\\\"\\\\\\b\\f\\n\\r\\t/\"");
	expect_canon(json_stringn("\x01\x1f\x7f", 3), "\"\\u0001\\u001f\x7f\"");
	expect_canon(json_stringn("a\0b\x0b\x1b", 5), "\"a\\u0000b\\u000b\\u001b\"");
	expect_canon(json_string(""), "\"\"");
	/* non-ASCII raw, U+2028/U+2029 too (JSON.stringify leaves them) */
	expect_canon(json_string("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xe2\x80\xa8\xe2\x80\xa9"),
		     "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xe2\x80\xa8\xe2\x80\xa9\"");
	/* escapes in keys too */
	expect_canon(json_pack("{s:s}", "a\"\n", "\x1f"), "{\"a\\\"\\n\":\"\\u001f\"}");
}
END_TEST

START_TEST(scalars_and_containers)
{
	expect_canon(json_true(), "true");
	expect_canon(json_false(), "false");
	expect_canon(json_null(), "null");
	expect_canon(json_array(), "[]");
	expect_canon(json_object(), "{}");
	expect_canon(json_pack("[s,n,b,{},[]]", "x", 0), "[\"x\",null,false,{},[]]");
}
END_TEST

START_TEST(nested_sort)
{
	expect_canon(json_pack("{s:{s:n, s:[{s:i, s:i}, {}], s:s}, s:b}",
			       "b", "d", "c", "z", 1, "y", 2, "a", "", "a", 0),
		     "{\"a\":false,\"b\":{\"a\":\"\",\"c\":[{\"y\":2,\"z\":1},{}],\"d\":null}}");
}
END_TEST

START_TEST(key_order_is_utf16_code_units)
{
	/* U+1F600 is D83D DE00 in UTF-16, below U+FFFD; UTF-8 bytes say the
	 * opposite (F0 > EF). */
	expect_canon(json_pack("{s:i, s:i}", "\xef\xbf\xbd", 2, "\xf0\x9f\x98\x80", 1),
		     "{\"\xf0\x9f\x98\x80\":1,\"\xef\xbf\xbd\":2}");
	expect_canon(json_pack("{s:i, s:i}", "\xee\x80\x80", 2, "\xf0\x90\x80\x80", 1),
		     "{\"\xf0\x90\x80\x80\":1,\"\xee\x80\x80\":2}");
	/* prefix first, upper case before lower case, empty key first */
	expect_canon(json_pack("{s:i, s:i, s:i, s:i, s:i}", "b", 1, "ab", 2, "a", 3, "Z", 4, "", 5),
		     "{\"\":5,\"Z\":4,\"a\":3,\"ab\":2,\"b\":1}");
	/* BMP order: U+00E9 < U+20AC */
	expect_canon(json_pack("{s:i, s:i}", "\xe2\x82\xac", 1, "\xc3\xa9", 2),
		     "{\"\xc3\xa9\":2,\"\xe2\x82\xac\":1}");
}
END_TEST

START_TEST(numbers_js_form)
{
	expect_canon(json_integer(1), "1");
	expect_canon(json_integer(100), "100");
	expect_canon(json_integer(-42), "-42");
	expect_canon(json_integer(0), "0");
	expect_canon(json_integer(1700000000000LL), "1700000000000");
	expect_canon(json_integer(9007199254740992LL), "9007199254740992");
	/* beyond 2^53: the double JavaScript would hold */
	expect_canon(json_integer(9007199254740993LL), "9007199254740992");
	expect_canon(json_integer(INT64_MAX), "9223372036854776000");
	expect_canon(json_integer(INT64_MIN), "-9223372036854776000");

	expect_real(1.0, "1");
	expect_real(100.0, "100");
	expect_real(-0.0, "0");
	expect_real(0.0, "0");
	expect_real(1.5, "1.5");
	expect_real(-1.5, "-1.5");
	expect_real(1e21, "1e+21");
	expect_real(1e20, "100000000000000000000");
	expect_real(123456789012345680000.0, "123456789012345680000");
	expect_real(1.5e21, "1.5e+21");
	expect_real(1e-7, "1e-7");
	expect_real(1.25e-7, "1.25e-7");
	expect_real(0.000001, "0.000001");
	expect_real(0.0000012345, "0.0000012345");
	expect_real(0.1 + 0.2, "0.30000000000000004");
	expect_real(0.1, "0.1");
	expect_real(1e300, "1e+300");
	expect_real(-1e-300, "-1e-300");
	expect_real(123.456, "123.456");
	expect_real(5e-324, "5e-324");
	expect_real(1.7976931348623157e308, "1.7976931348623157e+308");
	expect_real(2.2250738585072014e-308, "2.2250738585072014e-308");
	expect_real(9007199254740993.0, "9007199254740992");
	expect_real(1.0 / 3.0, "0.3333333333333333");
	/* powers of two: the shortest digits lie on the far side of the value */
	expect_real(0x1p-1022, "2.2250738585072014e-308");
	expect_real(0x1p54, "18014398509481984");
	expect_real(0x1p-44, "5.684341886080802e-14");
	expect_real(0x1p+976, "6.386688990511104e+293");
	expect_real(0x1p-24, "5.960464477539063e-8");
	/* correctly rounded to 16 digits is ...094, which reads back as
	 * another double; JavaScript prints the neighbour ...095 */
	expect_real(0x1p-97, "6.310887241768095e-30");
	expect_real(0x1p-77, "6.617444900424222e-24");
}
END_TEST

START_TEST(jsonb_number_spellings_read_back)
{
	/* jsonb prints numerics in plain decimal; read as doubles they render
	 * as JavaScript wrote them before the insert */
	expect_canon(json_loads("[1000000000000000000000, 0.0000001, 100, 1.50, -0]",
				JSON_DECODE_INT_AS_REAL, NULL),
		     "[1e+21,1e-7,100,1.5,0]");
}
END_TEST

START_TEST(unsupported_input)
{
	ck_assert_ptr_null(audit_canonical_json(NULL));
	ck_assert_ptr_null(canon(json_stringn_nocheck("\xff", 1)));
	ck_assert_ptr_null(canon(json_stringn_nocheck("\xc0\x80", 2)));          /* overlong */
	ck_assert_ptr_null(canon(json_stringn_nocheck("\xed\xa0\x80", 3)));      /* surrogate */
	ck_assert_ptr_null(canon(json_stringn_nocheck("\xe2\x82", 2)));          /* truncated */

	json_t *o = json_object();
	json_object_set_new_nocheck(o, "\xfe", json_true());
	ck_assert_ptr_null(canon(o));

	o = json_object();
	json_object_set_new(o, "ok", json_pack("[s]", "fine"));
	json_object_set_new(o, "bad", json_stringn_nocheck("\xff", 1));
	ck_assert_ptr_null(canon(o));
}
END_TEST

static json_t *nest(int depth)
{
	json_t *v = json_integer(7);
	for (int i = 1; i < depth; i++) {
		json_t *a = json_array();
		json_array_append_new(a, v);
		v = a;
	}
	return v;
}

START_TEST(depth_bound)
{
	char *s = canon(nest(AUDIT_MAX_DEPTH));
	ck_assert_ptr_nonnull(s);
	ck_assert_uint_eq(strlen(s), 2 * (AUDIT_MAX_DEPTH - 1) + 1);
	xfree(s);
	ck_assert_ptr_null(canon(nest(AUDIT_MAX_DEPTH + 1)));
}
END_TEST

START_TEST(meshd_payloads)
{
	const char *pk = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
	char want[256];

	expect_canon(json_pack("{s:s, s:s}", "targetSpec", "*", "priority", "next"),
		     "{\"priority\":\"next\",\"targetSpec\":\"*\"}");

	snprintf(want, sizeof(want),
		 "{\"groups\":[{\"name\":\"a\",\"role\":\"lead\"}],\"pubkey\":\"%s\","
		 "\"restored\":false,\"role\":\"control-plane\"}", pk);
	expect_canon(json_pack("{s:s, s:b, s:s, s:[{s:s, s:s}]}", "role", "control-plane",
			       "restored", 0, "pubkey", pk, "groups", "role", "lead", "name", "a"),
		     want);

	snprintf(want, sizeof(want),
		 "{\"groups\":[],\"pubkey\":\"%s\",\"role\":\"session\",\"session_pubkey\":\"%s\","
		 "\"via\":\"session_hello\"}", pk, pk);
	expect_canon(json_pack("{s:s, s:s, s:s, s:s, s:[]}", "via", "session_hello",
			       "session_pubkey", pk, "role", "session", "pubkey", pk, "groups"),
		     want);

	expect_canon(json_pack("{s:{s:[i,b]}, s:s}", "value", "y", 1, 1, "key", "x"),
		     "{\"key\":\"x\",\"value\":{\"y\":[1,true]}}");
}
END_TEST

START_TEST(chain_links)
{
	char h1[AUDIT_HASH_HEX_LEN + 1], h2[AUDIT_HASH_HEX_LEN + 1];

	audit_hash("genesis", "m", "peer_left", "mem1", "{}", AT, h1);
	ck_assert_str_eq(h1, "ced870c8437829102ad06f3d2806264ecfb0fa8ed8f5f5df77265c4e6c517f95");
	audit_hash(h1, "m", "peer_left", "mem1", "{}", AT, h2);
	ck_assert_str_ne(h1, h2);
}
END_TEST

int main(void)
{
	if (sodium_init() < 0)
		return EXIT_FAILURE;
	Suite *s = suite_create("audit");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, vector_peer_joined_any_key_order);
	tcase_add_test(tc, vector_nested_objects_null_actor);
	tcase_add_test(tc, vector_arrays_keep_order);
	tcase_add_test(tc, vector_values_change_hash);
	tcase_add_test(tc, vector_genesis_peer_left);
	tcase_add_test(tc, null_actor_is_literal_null);
	tcase_add_test(tc, lock_key_vector);
	tcase_add_test(tc, string_escapes);
	tcase_add_test(tc, scalars_and_containers);
	tcase_add_test(tc, nested_sort);
	tcase_add_test(tc, key_order_is_utf16_code_units);
	tcase_add_test(tc, numbers_js_form);
	tcase_add_test(tc, jsonb_number_spellings_read_back);
	tcase_add_test(tc, unsupported_input);
	tcase_add_test(tc, depth_bound);
	tcase_add_test(tc, meshd_payloads);
	tcase_add_test(tc, chain_links);
	suite_add_tcase(s, tc);
	return check_run(s);
}
