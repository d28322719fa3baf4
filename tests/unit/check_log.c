/* Unit tests: JSON log lines (src/log.c). */
#include "config.h"

#include <check.h>

#include "check_run.h"
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "meshd/log.h"

/* Captures what one log call writes to stderr. */
static char *capture(void (*fn)(void))
{
	int fds[2];
	ck_assert_int_eq(pipe(fds), 0);
	int saved = dup(STDERR_FILENO);
	dup2(fds[1], STDERR_FILENO);
	fn();
	dup2(saved, STDERR_FILENO);
	close(saved);
	close(fds[1]);
	static char buf[8192];
	ssize_t n = read(fds[0], buf, sizeof(buf) - 1);
	close(fds[0]);
	buf[n > 0 ? n : 0] = '\0';
	return buf;
}

static void emit_fields(void)
{
	log_info("conn_open", "worker=%d conn=%u addr=%s big=%lld ok=%d size=%zu", 1, 7u,
		 "a\"b\\c\n", 1234567890123LL, 1, (size_t)42);
}

START_TEST(one_valid_json_line_with_typed_fields)
{
	char *line = capture(emit_fields);
	ck_assert(strchr(line, '\n') == line + strlen(line) - 1);
	json_error_t err;
	json_t *o = json_loads(line, 0, &err);
	ck_assert_msg(o != NULL, "not JSON: %s", line);
	ck_assert_str_eq(json_string_value(json_object_get(o, "level")), "info");
	ck_assert_str_eq(json_string_value(json_object_get(o, "event")), "conn_open");
	ck_assert_int_eq(json_integer_value(json_object_get(o, "worker")), 1);
	ck_assert_int_eq(json_integer_value(json_object_get(o, "conn")), 7);
	ck_assert_str_eq(json_string_value(json_object_get(o, "addr")), "a\"b\\c\n");
	ck_assert_int_eq(json_integer_value(json_object_get(o, "big")), 1234567890123LL);
	ck_assert_int_eq(json_integer_value(json_object_get(o, "ok")), 1);
	ck_assert_int_eq(json_integer_value(json_object_get(o, "size")), 42);
	const char *ts = json_string_value(json_object_get(o, "ts"));
	ck_assert_int_eq(strlen(ts), 24);
	ck_assert_int_eq(ts[23], 'Z');
	json_decref(o);
}
END_TEST

static void emit_huge(void)
{
	static char big[10000];
	memset(big, 'x', sizeof(big) - 1);
	log_warn("huge", "value=%s", big);
}

START_TEST(oversized_line_is_truncated_but_valid)
{
	char *line = capture(emit_huge);
	json_error_t err;
	json_t *o = json_loads(line, 0, &err);
	ck_assert_msg(o != NULL, "not JSON: %.200s", line);
	ck_assert(json_is_true(json_object_get(o, "truncated")));
	json_decref(o);
}
END_TEST

static void emit_debug(void)
{
	log_debug("hidden", "n=%d", 1);
}

START_TEST(level_threshold)
{
	log_set_level(LOG_INFO);
	ck_assert_str_eq(capture(emit_debug), "");
	enum log_level l;
	ck_assert(log_parse_level("warn", &l) && l == LOG_WARN);
	ck_assert(!log_parse_level("loud", &l));
}
END_TEST

START_TEST(iso8601_millis)
{
	char buf[32];
	log_iso8601(buf, 1767225600123LL);
	ck_assert_str_eq(buf, "2026-01-01T00:00:00.123Z");
	log_iso8601(buf, 5);
	ck_assert_str_eq(buf, "1970-01-01T00:00:00.005Z");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("log");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, one_valid_json_line_with_typed_fields);
	tcase_add_test(tc, oversized_line_is_truncated_but_valid);
	tcase_add_test(tc, level_threshold);
	tcase_add_test(tc, iso8601_millis);
	suite_add_tcase(s, tc);
	return check_run(s);
}
