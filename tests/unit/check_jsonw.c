/* Unit tests: the compact JSON writer (src/jsonw.c). */
#include "config.h"

#include <check.h>

#include "check_run.h"
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "meshd/alloc.h"
#include "meshd/jsonw.h"

static char *string_literal(const char *s, size_t n)
{
	struct strbuf b = { 0 };
	jsonw_string(&b, s, n);
	return b.p;
}

START_TEST(escapes_as_json_stringify)
{
	/* The exact bytes JSON.stringify gives (SEMANTICS §D). */
	static const struct { const char *in; size_t n; const char *out; } cases[] = {
		{ "", 0, "\"\"" },
		{ "plain base64+/=", 15, "\"plain base64+/=\"" },
		{ "q\"b\\s", 5, "\"q\\\"b\\\\s\"" },
		{ "\b\f\n\r\t", 5, "\"\\b\\f\\n\\r\\t\"" },
		{ "\x01\x1f\x7f", 3, "\"\\u0001\\u001f\x7f\"" },
		{ "a\0b", 3, "\"a\\u0000b\"" },
		{ "h\xc3\xa9 \xe2\x80\xa8 \xf0\x9f\x98\x80", 12, "\"h\xc3\xa9 \xe2\x80\xa8 \xf0\x9f\x98\x80\"" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *got = string_literal(cases[i].in, cases[i].n);
		ck_assert_msg(strcmp(got, cases[i].out) == 0, "case %zu: %s", i, got);
		xfree(got);
	}
}
END_TEST

START_TEST(every_byte_round_trips_through_jansson)
{
	/* Each control and ASCII byte between two letters parses back to itself. */
	for (int c = 0; c < 0x80; c++) {
		char in[3] = { 'a', (char)c, 'z' };
		char *lit = string_literal(in, 3);
		json_error_t err;
		json_t *v = json_loads(lit, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
		ck_assert_msg(v && json_is_string(v), "byte %d: %s", c, lit);
		ck_assert_uint_eq(json_string_length(v), 3);
		ck_assert_int_eq(memcmp(json_string_value(v), in, 3), 0);
		json_decref(v);
		xfree(lit);
	}
}
END_TEST

START_TEST(flat_object_with_nulls_and_booleans)
{
	struct strbuf b = { 0 };
	struct jsonw w;
	jsonw_begin(&w, &b);
	jsonw_str(&w, "type", "push");
	jsonw_str(&w, "replyToId", NULL);
	jsonw_bool(&w, "queued", true);
	jsonw_bool(&w, "delivered", false);
	jsonw_str(&w, "text", "a\"b");
	jsonw_end(&w);
	ck_assert_str_eq(b.p, "{\"type\":\"push\",\"replyToId\":null,\"queued\":true,"
			      "\"delivered\":false,\"text\":\"a\\\"b\"}");
	/* An empty object, and a second one appended to the same buffer. */
	jsonw_begin(&w, &b);
	jsonw_end(&w);
	ck_assert_str_eq(b.p + b.len - 2, "{}");
	xfree(b.p);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("jsonw");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, escapes_as_json_stringify);
	tcase_add_test(tc, every_byte_round_trips_through_jansson);
	tcase_add_test(tc, flat_object_with_nulls_and_booleans);
	suite_add_tcase(s, tc);
	return check_run(s);
}
