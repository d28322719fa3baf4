/* Unit tests: a shard's meshes, members, presences and indexes
 * (src/shard.c), built without a worker, a socket or a database: the
 * shard_env is filled in by hand, as a worker would.
 */
#include "config.h"

#include <check.h>

#include "check_run.h"

#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "meshd/alloc.h"
#include "meshd/conntab.h"
#include "meshd/metrics.h"
#include "meshd/shard.h"
#include "meshd/thread.h"

struct rig {
	struct conntab conns;
	struct inbox inbox;
	struct shard s;
};

static void rig_init(struct rig *r)
{
	memset(r, 0, sizeof(*r));
	metrics_reset();
	thread_set_role(THREAD_WORKER, 2);
	conntab_init(&r->conns, 2, NULL, NULL, &r->s);
	shard_init(&r->s, &(struct shard_env){ .id = 2, .nshards = 4, .inbox = &r->inbox,
					       .conns = &r->conns });
}

static void rig_free(struct rig *r)
{
	shard_free(&r->s);
	conntab_destroy(&r->conns);
}

static struct member *member(struct mesh *m, const char *id, const char *pubkey)
{
	return mesh_member_upsert(m, id, pubkey, "name", NULL, NULL, NULL, NULL);
}

START_TEST(owner_is_stable_and_in_range)
{
	char id[32];
	int seen[4] = { 0 };
	for (int i = 0; i < 400; i++) {
		snprintf(id, sizeof(id), "mesh-%d", i);
		int o = shard_owner(id, 4);
		ck_assert_int_ge(o, 0);
		ck_assert_int_lt(o, 4);
		ck_assert_int_eq(shard_owner(id, 4), o);
		ck_assert_int_eq(shard_owner(id, 1), 0);
		seen[o]++;
	}
	for (int i = 0; i < 4; i++)
		ck_assert_int_gt(seen[i], 50); /* FNV-1a spreads 400 ids over every shard */
}
END_TEST

START_TEST(mesh_lives_while_it_has_a_presence)
{
	struct rig r;
	rig_init(&r);
	ck_assert_ptr_null(shard_mesh(&r.s, "m1", false));
	struct mesh *m = shard_mesh(&r.s, "m1", true);
	ck_assert_ptr_eq(shard_mesh(&r.s, "m1", true), m);
	ck_assert_ptr_eq(m->shard, &r.s);
	struct member *mb = member(m, "mb1", "pk1");
	struct presence *p = mesh_presence_new(m, mb);
	struct presence *q = mesh_presence_new(m, mb);
	ck_assert_uint_eq(m->npresences, 2);
	ck_assert_uint_eq(r.s.npresences, 2);
	ck_assert_int_eq(metrics_get(METRIC_CONNECTIONS_ACTIVE, 0), 2);
	ck_assert_ptr_eq(m->head, p);
	ck_assert_ptr_eq(m->tail, q);
	ck_assert_ptr_eq(shard_presence(&r.s, "m1", p->id), p);
	ck_assert_ptr_null(shard_presence(&r.s, "m2", p->id));
	char id[ID_LEN + 1];
	memcpy(id, p->id, sizeof(id));
	mesh_presence_remove(m, p);
	ck_assert_ptr_null(shard_presence(&r.s, "m1", id));
	ck_assert_ptr_eq(m->head, q);
	ck_assert_int_eq(mb->refs, 1);
	mesh_presence_remove(m, q); /* the last: mesh and member go with it */
	ck_assert_ptr_null(shard_mesh(&r.s, "m1", false));
	ck_assert_uint_eq(r.s.npresences, 0);
	ck_assert_int_eq(metrics_get(METRIC_CONNECTIONS_ACTIVE, 0), 0);
	/* An empty mesh made by a lookup goes when asked. */
	m = shard_mesh(&r.s, "m3", true);
	shard_mesh_maybe_free(&r.s, m);
	ck_assert_ptr_null(shard_mesh(&r.s, "m3", false));
	rig_free(&r);
}
END_TEST

START_TEST(member_upsert_refreshes_in_place)
{
	struct rig r;
	rig_init(&r);
	struct mesh *m = shard_mesh(&r.s, "m1", true);
	json_t *groups = json_pack("[{s:s}]", "name", "backend");
	json_t *grants = json_pack("{s:[s]}", "pkX", "dm");
	struct member *mb = mesh_member_upsert(m, "mb1", "pk1", "Alice", "lead", "inbox", groups,
					       grants);
	ck_assert_str_eq(mb->display_name, "Alice");
	ck_assert_str_eq(mb->role_tag, "lead");
	ck_assert_str_eq(mb->message_mode, "inbox");
	ck_assert(json_equal(mb->default_groups, groups));
	struct member *again = mesh_member_upsert(m, "mb1", "pk1", NULL, NULL, NULL, NULL, NULL);
	ck_assert_ptr_eq(again, mb);
	ck_assert_str_eq(mb->display_name, "");
	ck_assert_ptr_null(mb->role_tag);
	ck_assert_str_eq(mb->message_mode, "push"); /* the default when unset */
	ck_assert(json_is_array(mb->default_groups) && json_array_size(mb->default_groups) == 0);
	ck_assert(json_is_object(mb->peer_grants) && json_object_size(mb->peer_grants) == 0);
	json_decref(groups);
	json_decref(grants);
	struct presence *p = mesh_presence_new(m, mb); /* so the mesh is freed with it */
	mesh_presence_remove(m, p);
	rig_free(&r);
}
END_TEST

START_TEST(index_by_member_and_session_pubkey)
{
	struct rig r;
	rig_init(&r);
	struct mesh *m = shard_mesh(&r.s, "m1", true);
	struct member *a = member(m, "mbA", "pkA"), *b = member(m, "mbB", "pkB");
	struct presence *a1 = mesh_presence_new(m, a), *a2 = mesh_presence_new(m, a);
	struct presence *b1 = mesh_presence_new(m, b);
	ck_assert_uint_eq(mesh_find(m, "pkA")->n, 2);
	ck_assert_uint_eq(mesh_find(m, "pkB")->n, 1);
	ck_assert_uint_eq(mesh_find(m, "nobody")->n, 0);
	ck_assert_uint_eq(mesh_find(m, NULL)->n, 0);
	ck_assert_str_eq(presence_pubkey(a1), "pkA");

	/* A session key of its own: found by it too, and routed to by it. */
	a2->session_pubkey = xstrdup("skA2");
	mesh_presence_reindex(m, a2, NULL);
	ck_assert_uint_eq(mesh_find(m, "skA2")->n, 1);
	ck_assert_ptr_eq(mesh_find(m, "skA2")->v[0], a2);
	ck_assert_str_eq(presence_pubkey(a2), "skA2");
	char *old = a2->session_pubkey;
	a2->session_pubkey = xstrdup("skA2b");
	mesh_presence_reindex(m, a2, old);
	xfree(old);
	ck_assert_uint_eq(mesh_find(m, "skA2")->n, 0);
	ck_assert_uint_eq(mesh_find(m, "skA2b")->n, 1);

	/* The list's key string belongs to a presence: removing the first one
	 * re-keys the list on a survivor's copy (ASan would see a dangling key). */
	mesh_presence_remove(m, a1);
	ck_assert_uint_eq(mesh_find(m, "pkA")->n, 1);
	ck_assert_ptr_eq(mesh_find(m, "pkA")->v[0], a2);
	mesh_presence_remove(m, a2);
	ck_assert_uint_eq(mesh_find(m, "pkA")->n, 0);
	ck_assert_uint_eq(mesh_find(m, "skA2b")->n, 0);
	ck_assert_ptr_eq(mesh_find(m, "pkB")->v[0], b1);
	mesh_presence_remove(m, b1);
	rig_free(&r);
}
END_TEST

START_TEST(recent_multicast_ring_forgets_the_oldest)
{
	struct rig r;
	rig_init(&r);
	struct mesh *m = shard_mesh(&r.s, "m1", true);
	char id[32];
	for (int i = 0; i < MESH_RECENT_MULTICAST + 10; i++) {
		snprintf(id, sizeof(id), "id%d", i);
		mesh_remember_multicast(m, id);
	}
	for (int i = 0; i < 10; i++) {
		snprintf(id, sizeof(id), "id%d", i);
		ck_assert(!mesh_is_recent_multicast(m, id));
	}
	for (int i = 10; i < MESH_RECENT_MULTICAST + 10; i++) {
		snprintf(id, sizeof(id), "id%d", i);
		ck_assert(mesh_is_recent_multicast(m, id));
	}
	ck_assert(!mesh_is_recent_multicast(m, NULL));
	shard_mesh_maybe_free(&r.s, m);
	rig_free(&r);
}
END_TEST

START_TEST(stale_connection_ids_are_counted)
{
	struct rig r;
	rig_init(&r);
	ck_assert_ptr_null(shard_conn(&r.s, 0, 1));
	ck_assert_ptr_null(shard_conn(&r.s, 77, 3));
	shard_count_stale(&r.s);
	ck_assert_int_eq(metrics_get(METRIC_STALE_COMPLETIONS, 0), 3);
	rig_free(&r);
}
END_TEST

START_TEST(audit_entries_gather_on_the_shard_stream)
{
	struct rig r;
	rig_init(&r);
	shard_audit(&r.s, json_pack("{s:s}", "e", "x"));
	shard_audit(&r.s, NULL); /* an entry that could not be made is ignored */
	ck_assert_uint_eq(json_array_size(r.s.audit.rows), 1);
	ck_assert_ptr_eq(r.s.audit.reply.inbox, &r.inbox);
	ck_assert_ptr_eq(r.s.audit.reply.owner, &r.s);
	rig_free(&r);
}
END_TEST

static Suite *shard_suite(void)
{
	Suite *s = suite_create("shard");
	TCase *tc = tcase_create("shard");
	tcase_add_test(tc, owner_is_stable_and_in_range);
	tcase_add_test(tc, mesh_lives_while_it_has_a_presence);
	tcase_add_test(tc, member_upsert_refreshes_in_place);
	tcase_add_test(tc, index_by_member_and_session_pubkey);
	tcase_add_test(tc, recent_multicast_ring_forgets_the_oldest);
	tcase_add_test(tc, stale_connection_ids_are_counted);
	tcase_add_test(tc, audit_entries_gather_on_the_shard_stream);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return check_run(shard_suite());
}
