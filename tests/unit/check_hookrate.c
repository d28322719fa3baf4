/* Unit tests: the hook endpoint's shared tables — the bounded bucket map
 * (src/hookrate.c) and the pending statuses (src/pending.c). */
#include "config.h"

#include <check.h>

#include "check_run.h"

#include <stdio.h>

#include "meshd/hookrate.h"
#include "meshd/pending.h"

#define T0 1000000

START_TEST(burst_then_refill_per_key)
{
	struct hookrate *r = hookrate_new(100);
	for (int i = 0; i < 30; i++)
		ck_assert(hookrate_take(r, "4242:/p", 30, T0));
	ck_assert(!hookrate_take(r, "4242:/p", 30, T0));
	ck_assert(hookrate_take(r, "4243:/p", 30, T0)); /* another key, its own bucket */
	ck_assert(hookrate_take(r, "0:/p", 30, T0));
	ck_assert(!hookrate_take(r, "4242:/p", 30, T0 + 1999)); /* 30/min: one per 2 s */
	ck_assert(hookrate_take(r, "4242:/p", 30, T0 + 2000));
	ck_assert(!hookrate_take(r, "4242:/p", 30, T0 + 2000));
	ck_assert(hookrate_take(r, "x", 0, T0)); /* 0: unlimited */
	ck_assert_uint_eq(hookrate_size(r), 3);
	hookrate_free(r);
}
END_TEST

START_TEST(table_is_bounded_and_forgets_full_buckets)
{
	struct hookrate *r = hookrate_new(3);
	char key[32];
	for (int i = 0; i < 3; i++) {
		snprintf(key, sizeof(key), "%d:/k", i);
		ck_assert(hookrate_take(r, key, 30, T0));
	}
	/* Full of live buckets: a new key is refused, the known ones still served. */
	ck_assert(!hookrate_take(r, "new:/k", 30, T0 + 1000));
	ck_assert(hookrate_take(r, "0:/k", 30, T0 + 1000));
	ck_assert_uint_eq(hookrate_size(r), 3);
	/* A minute later every bucket is full again, no different from a new
	 * one: they make room. */
	ck_assert(hookrate_take(r, "new:/k", 30, T0 + 61000));
	ck_assert_uint_le(hookrate_size(r), 3);
	for (int i = 0; i < 1000; i++) {
		snprintf(key, sizeof(key), "%d:/flood", i);
		(void)!hookrate_take(r, key, 30, T0 + 200000 + i);
	}
	ck_assert_uint_le(hookrate_size(r), 3);
	hookrate_free(r);
}
END_TEST

START_TEST(pending_exact_match_newest_wins_once)
{
	struct pending *p = pending_new(8, 10000);
	enum peer_status st = STATUS_IDLE;
	pending_put(p, 77, "/w", STATUS_WORKING, T0);
	pending_put(p, 77, "/w", STATUS_DND, T0 + 10);
	pending_put(p, 0, "/w", STATUS_WORKING, T0 + 20);
	ck_assert(!pending_take(p, 78, "/w", T0 + 100, &st));  /* pid is exact */
	ck_assert(!pending_take(p, 77, "/w/", T0 + 100, &st)); /* so is cwd */
	ck_assert(pending_take(p, 77, "/w", T0 + 100, &st));
	ck_assert_int_eq(st, STATUS_DND);
	ck_assert(!pending_take(p, 77, "/w", T0 + 100, &st)); /* applied once */
	ck_assert(pending_take(p, 0, "/w", T0 + 100, &st));  /* a hook without pid */
	ck_assert_int_eq(st, STATUS_WORKING);
	ck_assert_uint_eq(pending_size(p), 0);
	pending_free(p);
}
END_TEST

START_TEST(pending_expires_and_is_bounded)
{
	struct pending *p = pending_new(4, 10000);
	enum peer_status st;
	pending_put(p, 1, "/a", STATUS_WORKING, T0);
	ck_assert(pending_take(p, 1, "/a", T0 + 10000, &st)); /* exactly at the TTL: kept */
	pending_put(p, 1, "/a", STATUS_WORKING, T0);
	ck_assert(!pending_take(p, 1, "/a", T0 + 10001, &st));
	for (int i = 0; i < 10; i++)
		pending_put(p, i, "/b", STATUS_WORKING, T0 + 20000 + i);
	ck_assert_uint_eq(pending_size(p), 4);
	ck_assert(!pending_take(p, 0, "/b", T0 + 20010, &st)); /* the oldest went */
	ck_assert(pending_take(p, 9, "/b", T0 + 20010, &st));
	pending_free(p);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("hookrate");
	TCase *tc = tcase_create("hookrate");
	tcase_add_test(tc, burst_then_refill_per_key);
	tcase_add_test(tc, table_is_bounded_and_forgets_full_buckets);
	tcase_add_test(tc, pending_exact_match_newest_wins_once);
	tcase_add_test(tc, pending_expires_and_is_bounded);
	suite_add_tcase(s, tc);
	return check_run(s);
}
