/* Unit tests: the JavaScript-compatibility helpers (src/jscompat.c). */
#include "config.h"

#include <check.h>

#include "check_run.h"

#include <math.h>
#include <string.h>

#include "meshd/jscompat.h"

START_TEST(number_to_string_as_javascript)
{
	static const struct {
		double v;
		const char *s;
	} cases[] = {
		{ 1767225600000.0, "1767225600000" }, { 0.0, "0" }, { -0.0, "0" }, { 1.5, "1.5" },
		{ -2.0, "-2" }, { 1767225600000.5, "1767225600000.5" }, { 0.1, "0.1" },
		{ 1e21, "1e+21" }, { 1e20, "100000000000000000000" }, { 123456789012345680000.0,
		  "123456789012345680000" }, { 1.5e21, "1.5e+21" }, { 1e-6, "0.000001" },
		{ 1e-7, "1e-7" }, { 1.23e-18, "1.23e-18" }, { 9007199254740993.0, "9007199254740992" },
		{ 5e-324, "5e-324" }, { 1.7976931348623157e308, "1.7976931348623157e+308" },
		{ -1.2345e-8, "-1.2345e-8" }, { 0.000123, "0.000123" },
	};
	char out[JS_NUMBER_MAX];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t n = js_number_to_string(cases[i].v, out);
		ck_assert_str_eq(out, cases[i].s);
		ck_assert_uint_eq(n, strlen(cases[i].s));
	}
}
END_TEST

START_TEST(number_to_string_non_finite_and_neighbours)
{
	char out[JS_NUMBER_MAX];
	ck_assert_uint_eq(js_number_to_string(NAN, out), 3);
	ck_assert_str_eq(out, "NaN");
	js_number_to_string(INFINITY, out);
	ck_assert_str_eq(out, "Infinity");
	js_number_to_string(-INFINITY, out);
	ck_assert_str_eq(out, "-Infinity");
	/* Powers of two whose correctly rounded short form does not read back,
	 * but its neighbour does (what V8 prints; a correctly-rounded-only
	 * search gives one digit more: "5.3169119831396635e+36"). */
	js_number_to_string(ldexp(1.0, 122), out);
	ck_assert_str_eq(out, "5.316911983139664e+36");
	js_number_to_string(ldexp(1.0, -509), out);
	ck_assert_str_eq(out, "5.966672584960166e-154");
	js_number_to_string(9007199254740992.0 * 1024, out); /* 2^63 */
	ck_assert_str_eq(out, "9223372036854776000");
	js_number_to_string(5e-324 * 2, out);
	ck_assert_str_eq(out, "1e-323");
	js_number_to_string(-1.7976931348623157e308, out);
	ck_assert_str_eq(out, "-1.7976931348623157e+308");
	ck_assert_uint_lt(strlen(out), JS_NUMBER_MAX);
}
END_TEST

START_TEST(utf16_length_as_javascript_counts)
{
	ck_assert_uint_eq(js_utf16_length(""), 0);
	ck_assert_uint_eq(js_utf16_length("abc"), 3);
	ck_assert_uint_eq(js_utf16_length("\xc3\xa9"), 1);           /* é */
	ck_assert_uint_eq(js_utf16_length("\xe2\x82\xac"), 1);       /* € */
	ck_assert_uint_eq(js_utf16_length("\xf0\x9f\x98\x80"), 2);   /* 😀: a surrogate pair */
	ck_assert_uint_eq(js_utf16_length("a\xf0\x9f\x98\x80\xc3\xa9z"), 5);
}
END_TEST

static Suite *jscompat_suite(void)
{
	Suite *s = suite_create("jscompat");
	TCase *tc = tcase_create("jscompat");
	tcase_add_test(tc, number_to_string_as_javascript);
	tcase_add_test(tc, number_to_string_non_finite_and_neighbours);
	tcase_add_test(tc, utf16_length_as_javascript_counts);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return check_run(jscompat_suite());
}
