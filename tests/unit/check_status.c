/* Unit tests: the status engine's pure parts (src/status.c) — names, the
 * §7.1/§B.3 write rule and the §B.8 gate. */
#include "config.h"

#include <check.h>

#include "check_run.h"
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "meshd/alloc.h"
#include "meshd/status.h"

#define SEC 1000
#define WINDOW (30 * SEC) /* HOOK_FRESH_WINDOW_SECONDS default */

/* ---- names ---------------------------------------------------------- */

START_TEST(names)
{
	enum peer_status s = STATUS_DND;

	ck_assert_str_eq(status_name(STATUS_IDLE), "idle");
	ck_assert_str_eq(status_name(STATUS_WORKING), "working");
	ck_assert_str_eq(status_name(STATUS_DND), "dnd");
	ck_assert_str_eq(status_source_name(SOURCE_JSONL), "jsonl");
	ck_assert_str_eq(status_source_name(SOURCE_MANUAL), "manual");
	ck_assert_str_eq(status_source_name(SOURCE_HOOK), "hook");

	ck_assert(status_parse("idle", &s) && s == STATUS_IDLE);
	ck_assert(status_parse("working", &s) && s == STATUS_WORKING);
	ck_assert(status_parse("dnd", &s) && s == STATUS_DND);
	s = STATUS_WORKING;
	ck_assert(!status_parse("Idle", &s));
	ck_assert(!status_parse("idle ", &s));
	ck_assert(!status_parse("", &s));
	ck_assert(!status_parse("busy", &s));
	ck_assert(!status_parse(NULL, &s));
	ck_assert_int_eq(s, STATUS_WORKING); /* untouched on failure */
}
END_TEST

/* ---- freshness and the write rule ----------------------------------- */

static struct status_state st(enum peer_status s, enum status_source src, int64_t t)
{
	return (struct status_state){ .status = s, .source = src, .updated_ms = t };
}

#define ck_state(x, s, src, t)                                  \
	do {                                                    \
		ck_assert_int_eq((x).status, (s));              \
		ck_assert_int_eq((x).source, (src));            \
		ck_assert_int_eq((x).updated_ms, (t));          \
	} while (0)

START_TEST(freshness_edges)
{
	const int64_t t = 1700000000000LL;
	struct status_state h = st(STATUS_WORKING, SOURCE_HOOK, t);

	ck_assert(status_is_fresh(&h, t, WINDOW));               /* age 0 */
	ck_assert(status_is_fresh(&h, t + WINDOW, WINDOW));      /* exactly the window */
	ck_assert(!status_is_fresh(&h, t + WINDOW + 1, WINDOW)); /* window + 1 ms */
	ck_assert(!status_is_fresh(&h, t - 1, WINDOW));          /* future timestamp */

	/* §B.2 examples with defaults. */
	ck_assert(status_is_hook_fresh(&h, t + 10 * SEC, WINDOW));
	ck_assert(!status_is_hook_fresh(&h, t + 60 * SEC, WINDOW));
	ck_assert(status_is_hook_fresh(&h, t + WINDOW, WINDOW));
	ck_assert(!status_is_hook_fresh(&h, t + WINDOW + 1, WINDOW));
	ck_assert(!status_is_hook_fresh(&h, t - 1, WINDOW));
	struct status_state m = st(STATUS_WORKING, SOURCE_MANUAL, t);
	struct status_state j = st(STATUS_WORKING, SOURCE_JSONL, t);
	ck_assert(!status_is_hook_fresh(&m, t, WINDOW));
	ck_assert(!status_is_hook_fresh(&m, t + 10 * SEC, WINDOW));
	ck_assert(!status_is_hook_fresh(&j, t, WINDOW));
	ck_assert(!status_is_hook_fresh(&j, t + 10 * SEC, WINDOW));
}
END_TEST

START_TEST(write_rule_examples)
{
	const int64_t t = 1700000000000LL;
	struct status_state x;

	/* (working,hook,t) + write(working,jsonl,t+10 s): hook kept. */
	x = st(STATUS_WORKING, SOURCE_HOOK, t);
	status_write(&x, STATUS_WORKING, SOURCE_JSONL, t + 10 * SEC, WINDOW);
	ck_state(x, STATUS_WORKING, SOURCE_HOOK, t + 10 * SEC);

	/* (working,hook,t-120 s) + write(working,jsonl,t): honest downgrade. */
	x = st(STATUS_WORKING, SOURCE_HOOK, t - 120 * SEC);
	status_write(&x, STATUS_WORKING, SOURCE_JSONL, t, WINDOW);
	ck_state(x, STATUS_WORKING, SOURCE_JSONL, t);

	/* (idle,jsonl) + write(idle,hook): upgraded to hook. */
	x = st(STATUS_IDLE, SOURCE_JSONL, t - 5 * SEC);
	status_write(&x, STATUS_IDLE, SOURCE_HOOK, t, WINDOW);
	ck_state(x, STATUS_IDLE, SOURCE_HOOK, t);
}
END_TEST

START_TEST(write_rule_branches)
{
	const int64_t t = 1700000000000LL;
	struct status_state x;

	/* 1. A different status always wins, whatever the ranks. */
	x = st(STATUS_WORKING, SOURCE_HOOK, t);
	status_write(&x, STATUS_IDLE, SOURCE_JSONL, t + 1, WINDOW);
	ck_state(x, STATUS_IDLE, SOURCE_JSONL, t + 1);
	x = st(STATUS_IDLE, SOURCE_MANUAL, t);
	status_write(&x, STATUS_DND, SOURCE_HOOK, t + 1, WINDOW);
	ck_state(x, STATUS_DND, SOURCE_HOOK, t + 1);
	/* No DND guard here: only callers protect dnd. */
	x = st(STATUS_DND, SOURCE_MANUAL, t);
	status_write(&x, STATUS_IDLE, SOURCE_JSONL, t + 1, WINDOW);
	ck_state(x, STATUS_IDLE, SOURCE_JSONL, t + 1);

	/* 2. Same status, rank >= stored rank: source and time. */
	x = st(STATUS_IDLE, SOURCE_MANUAL, t);
	status_write(&x, STATUS_IDLE, SOURCE_MANUAL, t + 5, WINDOW);
	ck_state(x, STATUS_IDLE, SOURCE_MANUAL, t + 5);
	x = st(STATUS_WORKING, SOURCE_MANUAL, t - 600 * SEC);
	status_write(&x, STATUS_WORKING, SOURCE_HOOK, t, WINDOW);
	ck_state(x, STATUS_WORKING, SOURCE_HOOK, t);
	x = st(STATUS_WORKING, SOURCE_JSONL, t);
	status_write(&x, STATUS_WORKING, SOURCE_JSONL, t + 7, WINDOW);
	ck_state(x, STATUS_WORKING, SOURCE_JSONL, t + 7);

	/* 3. Lower rank, stored fresh: only the time moves.  Edge: exactly
	 * the window is still fresh. */
	x = st(STATUS_WORKING, SOURCE_MANUAL, t);
	status_write(&x, STATUS_WORKING, SOURCE_JSONL, t + WINDOW, WINDOW);
	ck_state(x, STATUS_WORKING, SOURCE_MANUAL, t + WINDOW);
	x = st(STATUS_IDLE, SOURCE_HOOK, t);
	status_write(&x, STATUS_IDLE, SOURCE_MANUAL, t, WINDOW);
	ck_state(x, STATUS_IDLE, SOURCE_HOOK, t);

	/* 4. Lower rank, stored stale (window + 1, or in the future). */
	x = st(STATUS_WORKING, SOURCE_MANUAL, t);
	status_write(&x, STATUS_WORKING, SOURCE_JSONL, t + WINDOW + 1, WINDOW);
	ck_state(x, STATUS_WORKING, SOURCE_JSONL, t + WINDOW + 1);
	x = st(STATUS_WORKING, SOURCE_HOOK, t + 1);
	status_write(&x, STATUS_WORKING, SOURCE_MANUAL, t, WINDOW);
	ck_state(x, STATUS_WORKING, SOURCE_MANUAL, t);
}
END_TEST

START_TEST(gate_table)
{
	ck_assert_uint_eq(status_deliverable(STATUS_IDLE), PRIO_NOW | PRIO_NEXT | PRIO_LOW);
	ck_assert_uint_eq(status_deliverable(STATUS_WORKING), PRIO_NOW);
	ck_assert_uint_eq(status_deliverable(STATUS_DND), PRIO_NOW);
	ck_assert_uint_eq(status_deliverable((enum peer_status)42), PRIO_NOW);
	ck_assert_uint_eq(PRIO_NOW, 1);
	ck_assert_uint_eq(PRIO_NEXT, 2);
	ck_assert_uint_eq(PRIO_LOW, 4);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("status");

	TCase *core = tcase_create("core");
	tcase_add_test(core, names);
	tcase_add_test(core, freshness_edges);
	tcase_add_test(core, write_rule_examples);
	tcase_add_test(core, write_rule_branches);
	tcase_add_test(core, gate_table);
	suite_add_tcase(s, core);

	return check_run(s);
}
