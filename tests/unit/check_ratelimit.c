/* Unit tests: the token bucket (src/ratelimit.c, SEMANTICS.md §E.2). */
#include "config.h"

#include <check.h>

#include "check_run.h"
#include <stdint.h>
#include <stdio.h>

#include "meshd/ratelimit.h"

/* A clock reading far from zero, as the broker's monotonic clock gives. */
#define T0 INT64_C(1700000000000)

/* Takes until refused at now_ms; returns how many were granted (at most
 * limit, so an unlimited bucket cannot loop forever). */
static int drain(struct bucket *b, int capacity, int per_minute, int64_t now_ms, int limit)
{
	int n = 0;
	while (n < limit && bucket_take(b, capacity, per_minute, now_ms))
		n++;
	return n;
}

START_TEST(burst_of_capacity_then_refusal)
{
	static const int caps[] = { 1, 5, 1000 };
	for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
		struct bucket b = { 0 };
		ck_assert_int_eq(drain(&b, caps[i], 60, T0, 1000000), caps[i]);
		ck_assert(!bucket_take(&b, caps[i], 60, T0));
		ck_assert(!bucket_take(&b, caps[i], 60, T0));
	}
}
END_TEST

START_TEST(refill_after_one_interval_gives_exactly_one)
{
	/* per_minute → interval 60000 / per_minute ms. */
	static const struct { int per_minute; int64_t interval; } cases[] = {
		{ 60, 1000 }, { 6, 10000 }, { 1, 60000 }, { 60000, 1 }, { 7, 8572 /* ⌈8571.4⌉ */ },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int pm = cases[i].per_minute;
		struct bucket b = { 0 };
		ck_assert_int_eq(drain(&b, 3, pm, T0, 10), 3);
		ck_assert_msg(drain(&b, 3, pm, T0 + cases[i].interval, 10) == 1,
			      "per_minute %d after %lld ms", pm, (long long)cases[i].interval);
		/* And again for the next interval: the refill is steady. */
		ck_assert_int_eq(drain(&b, 3, pm, T0 + 2 * cases[i].interval, 10), 1);
	}
	/* One ms short of the interval is not enough (single look, no retries). */
	struct bucket b = { 0 };
	ck_assert_int_eq(drain(&b, 3, 60, T0, 10), 3);
	ck_assert(!bucket_take(&b, 3, 60, T0 + 999));
}
END_TEST

START_TEST(half_interval_gives_none)
{
	struct bucket b = { 0 };
	ck_assert_int_eq(drain(&b, 4, 60, T0, 10), 4);
	ck_assert(!bucket_take(&b, 4, 60, T0 + 500));
	/* Continuous refill: the half already earned counts towards the next. */
	ck_assert_int_eq(drain(&b, 4, 60, T0 + 1000, 10), 1);
	ck_assert(!bucket_take(&b, 4, 60, T0 + 1499));
	ck_assert_int_eq(drain(&b, 4, 60, T0 + 2000, 10), 1);
}
END_TEST

START_TEST(long_idle_refills_to_capacity_only)
{
	struct bucket b = { 0 };
	ck_assert_int_eq(drain(&b, 5, 60, T0, 100), 5);
	/* A day of silence earns 86 400 tokens at this rate; the bucket holds 5. */
	int64_t later = T0 + INT64_C(86400000);
	ck_assert_int_eq(drain(&b, 5, 60, later, 100), 5);
	ck_assert(!bucket_take(&b, 5, 60, later));
	/* A bucket that was never drained does not overfill either. */
	struct bucket full = { 0 };
	ck_assert(bucket_take(&full, 5, 60, T0));
	ck_assert_int_eq(drain(&full, 5, 60, later, 100), 5);
}
END_TEST

START_TEST(unlimited_when_capacity_or_rate_is_zero)
{
	struct bucket b = { 0 };
	ck_assert_int_eq(drain(&b, 0, 60, T0, 10000), 10000);
	ck_assert_int_eq(drain(&b, 5, 0, T0, 10000), 10000);
	ck_assert_int_eq(drain(&b, 0, 0, T0, 10000), 10000);
	/* An unlimited take leaves the bucket as it was: a later limit starts full. */
	ck_assert(!b.started);
	ck_assert_int_eq(drain(&b, 5, 60, T0, 100), 5);
}
END_TEST

START_TEST(clock_going_backwards_adds_nothing)
{
	struct bucket b = { 0 };
	ck_assert_int_eq(drain(&b, 3, 60, T0, 10), 3);
	/* Earlier than the last take: no tokens, no crash. */
	ck_assert(!bucket_take(&b, 3, 60, T0 - 5000));
	ck_assert(!bucket_take(&b, 3, 60, INT64_MIN / 2));
	ck_assert(!bucket_take(&b, 3, 60, 0));
	/* Back at the last time: still nothing (the step back gave no credit). */
	ck_assert(!bucket_take(&b, 3, 60, T0));
	/* Refill is measured from the latest time seen, not from the step back. */
	ck_assert_int_eq(drain(&b, 3, 60, T0 + 1000, 10), 1);

	/* A partly full bucket keeps what it had across a step back. */
	struct bucket p = { 0 };
	ck_assert(bucket_take(&p, 3, 60, T0));
	ck_assert_int_eq(drain(&p, 3, 60, T0 - 60000, 10), 2);
}
END_TEST

START_TEST(retries_do_not_delay_the_refill)
{
	/* A client that keeps trying while refused must get its token when the
	 * interval is up, exactly as one that waited: the refill is continuous,
	 * so how often it was looked at must not matter. */
	static const struct { int per_minute; int64_t step; } cases[] = {
		{ 60, 100 },    /* 10 tries a second against 1/s */
		{ 1, 6000 },    /* every 6 s against 1/min */
		{ 1, 10000 },
		{ 6, 1000 },
		{ 1, 1 },       /* every ms */
	};
	char report[512] = "";
	size_t used = 0;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int pm = cases[i].per_minute;
		int64_t interval = 60000 / pm, step = cases[i].step, t;
		struct bucket b = { 0 };
		ck_assert(bucket_take(&b, 1, pm, T0));
		for (t = step; t < 2 * interval; t += step)
			if (bucket_take(&b, 1, pm, T0 + t))
				break;
		if (t != interval && used < sizeof(report))
			used += (size_t)snprintf(report + used, sizeof(report) - used,
						 "; per_minute %d tried every %lld ms: token after %lld ms, want %lld",
						 pm, (long long)step, (long long)t, (long long)interval);
	}
	ck_assert_msg(report[0] == '\0', "late refill%s", report);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("ratelimit");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, burst_of_capacity_then_refusal);
	tcase_add_test(tc, refill_after_one_interval_gives_exactly_one);
	tcase_add_test(tc, half_interval_gives_none);
	tcase_add_test(tc, long_idle_refills_to_capacity_only);
	tcase_add_test(tc, unlimited_when_capacity_or_rate_is_zero);
	tcase_add_test(tc, clock_going_backwards_adds_nothing);
	tcase_add_test(tc, retries_do_not_delay_the_refill);
	suite_add_tcase(s, tc);
	return check_run(s);
}
