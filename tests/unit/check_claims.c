/* Unit tests: a presence's un-acked claims (src/claims.c), which decide when
 * a direct send must drain and when the redelivery timer fires. */
#include "config.h"

#include <check.h>

#include "check_run.h"
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "meshd/claims.h"

#define LEASE 1000

static void add_id(struct claims *cl, int i, int64_t at)
{
	char id[16];
	snprintf(id, sizeof(id), "m%d", i);
	claims_add(cl, id, at);
}

static int64_t oldest(const struct claims *cl)
{
	int64_t t = -1;
	ck_assert(claims_oldest(cl, &t));
	return t;
}

START_TEST(empty_has_nothing_due)
{
	struct claims cl = { 0 };
	int64_t t;
	ck_assert(!claims_oldest(&cl, &t));
	ck_assert(!claims_due(&cl, 1000000, LEASE));
	ck_assert(!claims_ack(&cl, "m1"));
	claims_covered(&cl, 1000000, LEASE);
	claims_free(&cl);
}
END_TEST

/* Due exactly when the oldest claim's lease may have run out. */
START_TEST(due_after_the_lease_of_the_oldest)
{
	struct claims cl = { 0 };
	add_id(&cl, 1, 100);
	add_id(&cl, 2, 500);
	ck_assert_int_eq(oldest(&cl), 100);
	ck_assert(!claims_due(&cl, 100 + LEASE - 1, LEASE));
	ck_assert(claims_due(&cl, 100 + LEASE, LEASE));
	claims_free(&cl);
}
END_TEST

/* Acks remove their entry wherever it is; the oldest live one leads. */
START_TEST(acks_remove_entries_in_any_order)
{
	struct claims cl = { 0 };
	for (int i = 0; i < 5; i++)
		add_id(&cl, i, 100 * i);
	ck_assert(claims_ack(&cl, "m2"));
	ck_assert(!claims_ack(&cl, "m2"));
	ck_assert_int_eq(oldest(&cl), 0);
	ck_assert(claims_ack(&cl, "m0"));
	ck_assert_int_eq(oldest(&cl), 100);
	ck_assert(claims_ack(&cl, "m1"));
	ck_assert_int_eq(oldest(&cl), 300); /* m2 was acked already */
	ck_assert(claims_ack(&cl, "m4"));
	ck_assert(claims_ack(&cl, "m3"));
	int64_t t;
	ck_assert(!claims_oldest(&cl, &t));
	ck_assert(!claims_ack(&cl, ""));
	ck_assert(!claims_ack(&cl, NULL));
	claims_free(&cl);
}
END_TEST

/* An anonymous entry is never acked, only covered by a drain. */
START_TEST(anonymous_entries_wait_for_a_drain)
{
	struct claims cl = { 0 };
	claims_add(&cl, NULL, 50);
	claims_add(&cl, "", 60);
	ck_assert(!claims_ack(&cl, ""));
	ck_assert_int_eq(oldest(&cl), 50);
	claims_covered(&cl, 50 + LEASE + 1, LEASE);
	ck_assert_int_eq(oldest(&cl), 60);
	claims_covered(&cl, 60 + LEASE + 1, LEASE);
	int64_t t;
	ck_assert(!claims_oldest(&cl, &t));
	claims_free(&cl);
}
END_TEST

/* A drain covers the claims older than its start minus a lease, no others. */
START_TEST(a_drain_covers_only_expired_claims)
{
	struct claims cl = { 0 };
	add_id(&cl, 1, 0);
	add_id(&cl, 2, 400);
	add_id(&cl, 3, 900);
	claims_covered(&cl, 400 + LEASE, LEASE); /* m2: exactly a lease old, not expired */
	ck_assert_int_eq(oldest(&cl), 400);
	claims_covered(&cl, 400 + LEASE + 1, LEASE);
	ck_assert_int_eq(oldest(&cl), 900);
	ck_assert(claims_ack(&cl, "m3"));
	int64_t t;
	ck_assert(!claims_oldest(&cl, &t));
	claims_free(&cl);
}
END_TEST

/* A client that never acks: the ring fills, later claims are summarised,
 * and the summary still says when a send must drain. */
START_TEST(past_the_ring_claims_are_summarised)
{
	struct claims cl = { 0 };
	for (int i = 0; i < CLAIMS_TRACKED; i++)
		add_id(&cl, i, i);
	ck_assert_uint_eq(cl.n, CLAIMS_TRACKED);
	ck_assert(!cl.spilled);
	add_id(&cl, 9999, 5000);
	add_id(&cl, 10000, 6000);
	ck_assert(cl.spilled);
	ck_assert_uint_le(cl.cap, CLAIMS_TRACKED);
	ck_assert_int_eq(oldest(&cl), 0);
	/* A drain covers the ring; the spill is newer and stays. */
	claims_covered(&cl, CLAIMS_TRACKED + LEASE, LEASE);
	ck_assert_int_eq(oldest(&cl), 5000);
	ck_assert(!claims_due(&cl, 5000 + LEASE - 1, LEASE));
	ck_assert(claims_due(&cl, 5000 + LEASE, LEASE));
	/* Acks cannot name what was summarised. */
	ck_assert(!claims_ack(&cl, "m9999"));
	claims_covered(&cl, 6000 + LEASE, LEASE); /* 6000 is not expired yet */
	ck_assert(cl.spilled);
	claims_covered(&cl, 6000 + LEASE + 1, LEASE);
	int64_t t;
	ck_assert(!claims_oldest(&cl, &t));
	/* And the ring takes claims again. */
	add_id(&cl, 1, 7000);
	ck_assert(!cl.spilled);
	ck_assert_int_eq(oldest(&cl), 7000);
	claims_free(&cl);
}
END_TEST

/* Acked entries are squeezed out before anything spills. */
START_TEST(a_full_ring_of_acked_entries_is_reused)
{
	struct claims cl = { 0 };
	for (int round = 0; round < 10; round++)
		for (int i = 0; i < CLAIMS_TRACKED; i++) {
			int n = round * CLAIMS_TRACKED + i;
			bool tracked = !cl.spilled;
			add_id(&cl, n, n);
			tracked = tracked && !cl.spilled;
			if (i % 2 == 0) {
				char id[16];
				snprintf(id, sizeof(id), "m%d", n);
				ck_assert(claims_ack(&cl, id) == tracked);
			}
		}
	ck_assert(cl.spilled); /* half of 2 560 stayed un-acked: more than the ring */
	ck_assert_int_eq(oldest(&cl), 1);
	struct claims c2 = { 0 };
	for (int i = 0; i < 10 * CLAIMS_TRACKED; i++) {
		add_id(&c2, i, i);
		char id[16];
		snprintf(id, sizeof(id), "m%d", i);
		if (i >= 3)
			ck_assert(claims_ack(&c2, id));
	}
	ck_assert(!c2.spilled);
	ck_assert_uint_le(c2.cap, CLAIMS_TRACKED);
	ck_assert_int_eq(oldest(&c2), 0);
	ck_assert(claims_ack(&c2, "m0"));
	ck_assert(claims_ack(&c2, "m1"));
	ck_assert_int_eq(oldest(&c2), 2);
	ck_assert(claims_ack(&c2, "m2"));
	int64_t t;
	ck_assert(!claims_oldest(&c2, &t));
	claims_free(&cl);
	claims_free(&c2);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("claims");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, empty_has_nothing_due);
	tcase_add_test(tc, due_after_the_lease_of_the_oldest);
	tcase_add_test(tc, acks_remove_entries_in_any_order);
	tcase_add_test(tc, anonymous_entries_wait_for_a_drain);
	tcase_add_test(tc, a_drain_covers_only_expired_claims);
	tcase_add_test(tc, past_the_ring_claims_are_summarised);
	tcase_add_test(tc, a_full_ring_of_acked_entries_is_reused);
	suite_add_tcase(s, tc);
	return check_run(s);
}
