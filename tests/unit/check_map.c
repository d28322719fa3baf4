/* Unit tests: the string-keyed open-addressing hash map (src/map.c). */
#include "config.h"

#include <check.h>

#include "check_run.h"
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "meshd/alloc.h"
#include "meshd/map.h"

#define MANY 10000

/* Keys live as long as the map (the map borrows them): one array per test. */
struct keys {
	char k[MANY][16];
	int v[MANY];
};

static struct keys *keys_new(const char *prefix)
{
	struct keys *ks = xcalloc(1, sizeof(*ks));
	for (int i = 0; i < MANY; i++) {
		snprintf(ks->k[i], sizeof(ks->k[i]), "%s%d", prefix, i);
		ks->v[i] = i;
	}
	return ks;
}

/* The load bound map.c keeps: at least a quarter of the slots stay empty. */
static void assert_shape(const struct map *m)
{
	ck_assert(m->cap && (m->cap & (m->cap - 1)) == 0);
	ck_assert_uint_le(m->len, m->used);
	ck_assert_uint_le(m->used * 4, m->cap * 3);
}

START_TEST(empty_map_finds_nothing)
{
	struct map m;
	map_init(&m);
	ck_assert_ptr_null(map_get(&m, "x"));
	ck_assert_ptr_null(map_get(&m, ""));
	ck_assert_ptr_null(map_del(&m, "x"));
	ck_assert_uint_eq(m.len, 0);
	size_t i = 0;
	const char *k;
	void *v;
	ck_assert(!map_next(&m, &i, &k, &v));
	map_free(&m);
	map_free(&m); /* freeing twice is freeing an empty map */
}
END_TEST

START_TEST(put_then_get)
{
	struct map m;
	map_init(&m);
	int a = 1, b = 2, c = 3;
	ck_assert_ptr_null(map_put(&m, "alpha", &a));
	ck_assert_ptr_null(map_put(&m, "beta", &b));
	ck_assert_ptr_null(map_put(&m, "", &c)); /* the empty string is a key */
	ck_assert_uint_eq(m.len, 3);
	ck_assert_ptr_eq(map_get(&m, "alpha"), &a);
	ck_assert_ptr_eq(map_get(&m, "beta"), &b);
	ck_assert_ptr_eq(map_get(&m, ""), &c);
	ck_assert_ptr_null(map_get(&m, "gamma"));
	ck_assert_ptr_null(map_get(&m, "alph"));
	ck_assert_ptr_null(map_get(&m, "alphaa"));
	map_free(&m);
}
END_TEST

START_TEST(put_replacing_returns_old_value)
{
	struct map m;
	map_init(&m);
	int a = 1, b = 2;
	char k1[] = "same", k2[] = "same";
	ck_assert_ptr_null(map_put(&m, k1, &a));
	ck_assert_ptr_eq(map_put(&m, k2, &b), &a);
	ck_assert_uint_eq(m.len, 1);
	ck_assert_ptr_eq(map_get(&m, "same"), &b);
	/* The entry now borrows the newer key, so the old value (and the key
	 * inside it) may be freed by the caller. */
	size_t i = 0;
	const char *k;
	void *v;
	ck_assert(map_next(&m, &i, &k, &v));
	ck_assert_ptr_eq(k, k2);
	ck_assert_ptr_eq(v, &b);
	ck_assert(!map_next(&m, &i, &k, &v));
	map_free(&m);
}
END_TEST

START_TEST(del_returns_value_then_get_is_null)
{
	struct map m;
	map_init(&m);
	int a = 1, b = 2;
	map_put(&m, "a", &a);
	map_put(&m, "b", &b);
	ck_assert_ptr_eq(map_del(&m, "a"), &a);
	ck_assert_uint_eq(m.len, 1);
	ck_assert_ptr_null(map_get(&m, "a"));
	ck_assert_ptr_eq(map_get(&m, "b"), &b);
	ck_assert_ptr_null(map_del(&m, "a")); /* already gone */
	ck_assert_uint_eq(m.len, 1);
	/* Put back after delete. */
	ck_assert_ptr_null(map_put(&m, "a", &b));
	ck_assert_ptr_eq(map_get(&m, "a"), &b);
	ck_assert_uint_eq(m.len, 2);
	map_free(&m);
}
END_TEST

START_TEST(del_of_absent_key_changes_nothing)
{
	struct map m;
	map_init(&m);
	int a = 1;
	map_put(&m, "present", &a);
	size_t used = m.used;
	ck_assert_ptr_null(map_del(&m, "absent"));
	ck_assert_ptr_null(map_del(&m, "presen"));
	ck_assert_ptr_null(map_del(&m, ""));
	ck_assert_uint_eq(m.len, 1);
	ck_assert_uint_eq(m.used, used);
	ck_assert_ptr_eq(map_get(&m, "present"), &a);
	map_free(&m);
}
END_TEST

START_TEST(many_keys_force_growth_and_stay_retrievable)
{
	struct keys *ks = keys_new("key-");
	struct map m;
	map_init(&m);
	size_t grew = 0, cap = 0;
	for (int i = 0; i < MANY; i++) {
		ck_assert_ptr_null(map_put(&m, ks->k[i], &ks->v[i]));
		if (m.cap != cap) {
			grew++;
			cap = m.cap;
		}
		assert_shape(&m);
	}
	ck_assert_uint_eq(m.len, MANY);
	ck_assert_uint_gt(grew, 5); /* 16 … 16384 */
	ck_assert_uint_ge(m.cap * 3, (size_t)MANY * 4);
	for (int i = 0; i < MANY; i++) {
		int *v = map_get(&m, ks->k[i]);
		ck_assert_msg(v == &ks->v[i], "key %s", ks->k[i]);
	}
	ck_assert_ptr_null(map_get(&m, "key-10000"));
	ck_assert_ptr_null(map_get(&m, "key--1"));
	map_free(&m);
	xfree(ks);
}
END_TEST

START_TEST(delete_half_then_reinsert)
{
	struct keys *ks = keys_new("k");
	struct map m;
	map_init(&m);
	for (int i = 0; i < MANY; i++)
		map_put(&m, ks->k[i], &ks->v[i]);
	size_t cap = m.cap;
	for (int i = 0; i < MANY; i += 2)
		ck_assert_ptr_eq(map_del(&m, ks->k[i]), &ks->v[i]);
	ck_assert_uint_eq(m.len, MANY / 2);
	for (int i = 0; i < MANY; i++) {
		void *want = i % 2 ? &ks->v[i] : NULL;
		ck_assert_msg(map_get(&m, ks->k[i]) == want, "key %s", ks->k[i]);
	}
	for (int i = 0; i < MANY; i += 2)
		ck_assert_ptr_null(map_put(&m, ks->k[i], &ks->v[i]));
	ck_assert_uint_eq(m.len, MANY);
	ck_assert_uint_eq(m.cap, cap); /* same keys again: no growth needed */
	assert_shape(&m);
	for (int i = 0; i < MANY; i++)
		ck_assert_msg(map_get(&m, ks->k[i]) == &ks->v[i], "key %s", ks->k[i]);
	map_free(&m);
	xfree(ks);
}
END_TEST

/* Finds n keys "c<i>" whose hashes share their low four bits, so in a
 * 16-slot table they sit in one probe chain. */
static void colliding_keys(char out[][16], int n)
{
	uint32_t want = map_hash("c0") & 15;
	int found = 0;
	for (int i = 0; found < n; i++) {
		char k[16];
		snprintf(k, sizeof(k), "c%d", i);
		if ((map_hash(k) & 15) == want)
			memcpy(out[found++], k, sizeof(k));
	}
}

START_TEST(tombstone_keeps_probe_chain_and_is_reused)
{
	char k[4][16];
	colliding_keys(k, 4);
	int v[4] = { 0, 1, 2, 3 };
	struct map m;
	map_init(&m);
	for (int i = 0; i < 4; i++)
		map_put(&m, k[i], &v[i]);
	ck_assert_uint_eq(m.cap, 16);
	ck_assert_uint_eq(m.used, 4);
	/* Deleting the head of the chain must not hide the keys behind it. */
	ck_assert_ptr_eq(map_del(&m, k[0]), &v[0]);
	ck_assert_ptr_eq(map_del(&m, k[2]), &v[2]);
	ck_assert_ptr_null(map_get(&m, k[0]));
	ck_assert_ptr_eq(map_get(&m, k[1]), &v[1]);
	ck_assert_ptr_null(map_get(&m, k[2]));
	ck_assert_ptr_eq(map_get(&m, k[3]), &v[3]);
	ck_assert_uint_eq(m.len, 2);
	ck_assert_uint_eq(m.used, 4); /* two tombstones */
	/* Putting them back fills the tombstones instead of fresh slots. */
	map_put(&m, k[2], &v[2]);
	map_put(&m, k[0], &v[0]);
	ck_assert_uint_eq(m.len, 4);
	ck_assert_uint_eq(m.used, 4);
	for (int i = 0; i < 4; i++)
		ck_assert_ptr_eq(map_get(&m, k[i]), &v[i]);
	/* Replacing a key behind a tombstone finds it, not the tombstone. */
	map_del(&m, k[0]);
	ck_assert_ptr_eq(map_put(&m, k[3], &v[0]), &v[3]);
	ck_assert_uint_eq(m.len, 3);
	ck_assert_ptr_eq(map_get(&m, k[3]), &v[0]);
	map_free(&m);
}
END_TEST

START_TEST(churn_does_not_grow_the_table)
{
	/* 100 live keys, 10 000 distinct keys passing through: tombstones are
	 * swept by rehashing in place, not by doubling. */
	struct keys *ks = keys_new("churn");
	struct map m;
	map_init(&m);
	for (int i = 0; i < MANY; i++) {
		map_put(&m, ks->k[i], &ks->v[i]);
		if (i >= 100)
			ck_assert_ptr_eq(map_del(&m, ks->k[i - 100]), &ks->v[i - 100]);
		ck_assert_uint_le(m.len, 101);
		ck_assert_uint_le(m.cap, 256);
		assert_shape(&m);
	}
	ck_assert_uint_eq(m.len, 100);
	for (int i = 0; i < MANY; i++) {
		void *want = i >= MANY - 100 ? &ks->v[i] : NULL;
		ck_assert_msg(map_get(&m, ks->k[i]) == want, "key %s", ks->k[i]);
	}
	map_free(&m);
	xfree(ks);
}
END_TEST

START_TEST(iteration_visits_every_live_key_once)
{
	struct keys *ks = keys_new("it");
	static int seen[MANY];
	memset(seen, 0, sizeof(seen));
	struct map m;
	map_init(&m);
	for (int i = 0; i < MANY; i++)
		map_put(&m, ks->k[i], &ks->v[i]);
	for (int i = 0; i < MANY; i += 3)
		map_del(&m, ks->k[i]);
	size_t visits = 0;
	const char *k;
	void *v;
	for (size_t i = 0; map_next(&m, &i, &k, &v);) {
		int n = *(int *)v;
		ck_assert_ptr_eq(k, ks->k[n]); /* the key and value belong together */
		seen[n]++;
		visits++;
	}
	ck_assert_uint_eq(visits, m.len);
	for (int i = 0; i < MANY; i++)
		ck_assert_msg(seen[i] == (i % 3 ? 1 : 0), "key %d seen %d times", i, seen[i]);
	map_free(&m);
	xfree(ks);
}
END_TEST

START_TEST(deleting_current_key_during_iteration)
{
	struct keys *ks = keys_new("d");
	static int seen[MANY];
	memset(seen, 0, sizeof(seen));
	struct map m;
	map_init(&m);
	for (int i = 0; i < MANY; i++)
		map_put(&m, ks->k[i], &ks->v[i]);
	/* Delete every even key as it is visited; every key is still visited. */
	size_t visits = 0;
	const char *k;
	void *v;
	for (size_t i = 0; map_next(&m, &i, &k, &v);) {
		int n = *(int *)v;
		seen[n]++;
		visits++;
		if (n % 2 == 0)
			ck_assert_ptr_eq(map_del(&m, k), v);
	}
	ck_assert_uint_eq(visits, MANY);
	ck_assert_uint_eq(m.len, MANY / 2);
	for (int i = 0; i < MANY; i++) {
		ck_assert_msg(seen[i] == 1, "key %d seen %d times", i, seen[i]);
		void *want = i % 2 ? &ks->v[i] : NULL;
		ck_assert_msg(map_get(&m, ks->k[i]) == want, "key %s", ks->k[i]);
	}
	/* Deleting everything while iterating empties the map. */
	for (size_t i = 0; map_next(&m, &i, &k, &v);)
		map_del(&m, k);
	ck_assert_uint_eq(m.len, 0);
	size_t i = 0;
	ck_assert(!map_next(&m, &i, &k, &v));
	map_free(&m);
	xfree(ks);
}
END_TEST

START_TEST(hash_is_fnv1a_32)
{
	/* Reference vectors of 32-bit FNV-1a (offset 2166136261, prime 16777619). */
	ck_assert_uint_eq(map_hash(""), 0x811c9dc5u);
	ck_assert_uint_eq(map_hash("a"), 0xe40c292cu);
	ck_assert_uint_eq(map_hash("foobar"), 0xbf9cf968u);
	/* Bytes are unsigned: 0xff is xored in as 255, not as -1. */
	ck_assert_uint_eq(map_hash("\xff"), (0x811c9dc5u ^ 0xffu) * 16777619u);
	/* Deterministic and independent of where the string lives. */
	char copy[] = "foobar";
	ck_assert_uint_eq(map_hash(copy), map_hash("foobar"));
	ck_assert_uint_ne(map_hash("ab"), map_hash("ba"));
}
END_TEST

START_TEST(keys_are_borrowed_not_copied)
{
	struct map m;
	map_init(&m);
	int a = 1;
	char *stored = xstrdup("presence-42");
	map_put(&m, stored, &a);
	/* An equal string at another address finds the entry. */
	char probe[] = "presence-42";
	ck_assert_ptr_ne(probe, stored);
	ck_assert_ptr_eq(map_get(&m, probe), &a);
	/* The map hands back the very pointer it was given. */
	size_t i = 0;
	const char *k;
	void *v;
	ck_assert(map_next(&m, &i, &k, &v));
	ck_assert_ptr_eq(k, stored);
	/* Deleting through an equal copy works too. */
	ck_assert_ptr_eq(map_del(&m, probe), &a);
	ck_assert_uint_eq(m.len, 0);
	map_free(&m);
	xfree(stored);
}
END_TEST

START_TEST(free_then_reuse)
{
	struct map m;
	map_init(&m);
	int a = 1;
	map_put(&m, "x", &a);
	map_free(&m);
	ck_assert_uint_eq(m.len, 0);
	ck_assert_uint_eq(m.cap, 0);
	ck_assert_ptr_null(map_get(&m, "x"));
	ck_assert_ptr_null(map_put(&m, "x", &a));
	ck_assert_ptr_eq(map_get(&m, "x"), &a);
	map_free(&m);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("map");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, empty_map_finds_nothing);
	tcase_add_test(tc, put_then_get);
	tcase_add_test(tc, put_replacing_returns_old_value);
	tcase_add_test(tc, del_returns_value_then_get_is_null);
	tcase_add_test(tc, del_of_absent_key_changes_nothing);
	tcase_add_test(tc, many_keys_force_growth_and_stay_retrievable);
	tcase_add_test(tc, delete_half_then_reinsert);
	tcase_add_test(tc, tombstone_keeps_probe_chain_and_is_reused);
	tcase_add_test(tc, churn_does_not_grow_the_table);
	tcase_add_test(tc, iteration_visits_every_live_key_once);
	tcase_add_test(tc, deleting_current_key_during_iteration);
	tcase_add_test(tc, hash_is_fnv1a_32);
	tcase_add_test(tc, keys_are_borrowed_not_copied);
	tcase_add_test(tc, free_then_reuse);
	suite_add_tcase(s, tc);
	return check_run(s);
}
