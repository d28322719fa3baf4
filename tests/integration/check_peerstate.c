/* Integration: a member's state between its connections (PROTOCOL.md §5.5,
 * §5.6, §7.7, §7.10) and the presence extras (§7.12): set_stats,
 * set_visible, set_profile.  Run with BROKER_WORKERS=4 and =1. */
#include "config.h"

#include <check.h>

#include "check_run.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "itest.h"
#include "meshtest.h"

static struct broker B;
static char workers_env[64];

static void setup(void)
{
	const char *w = getenv("MESHD_TEST_WORKERS");
	snprintf(workers_env, sizeof(workers_env), "BROKER_WORKERS=%s", w ? w : "4");
	/* A closed presence is evicted after a second, so a new hello is not
	 * a reattach and the mesh lists one presence per member. */
	const char *env[] = { workers_env, "LEASE_GRACE_SECONDS=1", NULL };
	itest_broker_start(&B, env);
	ck_assert(itest_wait_status(B.port, "/health", 200, 15000));
}

static void teardown(void)
{
	itest_broker_stop(&B);
}

static const char *const no_groups[] = { NULL }; /* sends "groups": [] */

static void send(struct mt_peer *p, const char *json)
{
	ck_assert_msg(mt_send_raw(p, json), "send %s", json);
}

/* The next frame is the system event `event` about `pubkey`; its
 * eventData goes to *data (a new reference). */
static void expect_event(struct mt_peer *p, const char *event, const char *pubkey, json_t **data)
{
	struct mc_frame f;
	ck_assert_msg(mt_next(p, &f, 5000), "no %s", event);
	ck_assert_msg(f.type == MC_PUSH && f.push.system && strcmp(f.push.event, event) == 0,
		      "expected %s, got %s", event, json_dumps(f.json, JSON_COMPACT));
	ck_assert_str_eq(json_string_value(json_object_get(f.push.event_data, "pubkey")), pubkey);
	if (data)
		*data = json_incref(f.push.event_data);
	mc_frame_free(&f);
}

/* The next frame, compact, must be exactly `text`. */
static void expect_frame(struct mt_peer *p, const char *text)
{
	struct mc_frame f;
	ck_assert(mt_next(p, &f, 5000));
	char *got = json_dumps(f.json, JSON_COMPACT);
	ck_assert_str_eq(got, text);
	free(got);
	mc_frame_free(&f);
}

/* The keys of o, comma-separated, in order. */
static void keys_of(const json_t *o, char *out, size_t cap)
{
	const char *k;
	json_t *v;
	out[0] = '\0';
	json_object_foreach((json_t *)o, k, v) {
		size_t n = strlen(out);
		snprintf(out + n, cap - n, "%s%s", n ? "," : "", k);
	}
}


static void assert_json(const json_t *v, const char *text)
{
	char *got = json_dumps(v, JSON_COMPACT);
	ck_assert_msg(got != NULL, "no value, expected %s", text);
	ck_assert_str_eq(got, text);
	free(got);
}

static char *scalar(const char *sql)
{
	static char out[1024];
	ck_assert_msg(pgtest_scalar(itest_db_url(), sql, out, sizeof(out)), "%s", sql);
	return out;
}

/* Rows written behind (peer state, audit) land a little after the frames
 * that follow them: sql's value is polled until it is `want`, for 5 s. */
static void expect_scalar(const char *sql, const char *want)
{
	const char *got = "";
	for (int i = 0; i < 50; i++, usleep(100 * 1000)) {
		got = scalar(sql);
		if (strcmp(got, want) == 0)
			return;
	}
	ck_assert_str_eq(got, want);
}

/* Closes p and waits for its eviction, seen by `observer` (peer_left). */
static void leave(struct mt_peer *p, struct mt_peer *observer)
{
	char pk[65];
	snprintf(pk, sizeof(pk), "%s", p->id.pk_hex);
	mt_close(p);
	expect_event(observer, "peer_left", pk, NULL);
}

/* A first hello is not restored; what the member set is saved at close
 * and comes back with the next hello: the exact hello_ack fields in the
 * reference's order, peer_returned with lastSeenAt and summary, and the
 * groups, profile and visibility. */
START_TEST(state_is_saved_at_close_and_restored_by_the_next_hello)
{
	struct mc_identity ids[2];
	mt_seed_members(itest_db_url(), "meshR", 2, ids);
	struct mt_peer a, b;
	struct mc_frame ack;
	ck_assert(mt_connect(&b, B.port, "meshR", "meshR-m1", &ids[1], "b", NULL));
	ck_assert(mt_connect_ack(&a, B.port, "meshR", "meshR-m0", &ids[0], "a", NULL, NULL, &ack));
	char keys[512];
	keys_of(ack.json, keys, sizeof(keys));
	ck_assert_str_eq(keys, "type,presenceId,memberDisplayName,memberProfile,meshPolicy,services");
	mc_frame_free(&ack);
	json_t *data;
	expect_event(&b, "peer_joined", ids[0].pk_hex, &data);
	ck_assert_ptr_null(json_object_get(data, "lastSeenAt"));
	json_decref(data);

	mt_send_owned(&a, mc_set_summary("Refactoring the scheduler"));
	mt_send_owned(&a, mc_join_group("backend", "lead"));
	send(&a, "{\"type\":\"set_stats\",\"stats\":{\"messagesIn\":3,\"messagesOut\":5,"
		 "\"toolCalls\":2,\"errors\":1,\"uptime\":99}}");
	send(&a, "{\"type\":\"set_profile\",\"title\":\"Scheduler\",\"capabilities\":[\"review\"]}");
	expect_frame(&a, "{\"type\":\"ack\",\"id\":\"\",\"messageId\":\"\",\"queued\":false}");
	send(&a, "{\"type\":\"set_visible\",\"visible\":false,\"_reqId\":\"v-1\"}");
	expect_frame(&a, "{\"type\":\"ack\",\"id\":\"v-1\",\"messageId\":\"\",\"queued\":false,"
			 "\"_reqId\":\"v-1\"}");
	expect_event(&b, "peer_hidden", ids[0].pk_hex, NULL);
	leave(&a, &b);

	expect_scalar("SELECT coalesce((SELECT groups::text || ' ' || profile::text || ' '"
		      " || visible || ' ' || last_summary || ' ' || last_display_name || ' '"
		      " || cumulative_stats::text || ' ' || (last_seen_at IS NOT NULL)"
		      " FROM mesh.peer_state WHERE member_id = 'meshR-m0'), '')",
		      "[{\"name\": \"backend\", \"role\": \"lead\"}] {\"title\": \"Scheduler\","
		      " \"capabilities\": [\"review\"]} false Refactoring the scheduler a"
		      " {\"errors\": 1, \"toolCalls\": 2, \"messagesIn\": 3, \"messagesOut\": 5}"
		      " true");

	ck_assert(mt_connect_ack(&a, B.port, "meshR", "meshR-m0", &ids[0], "a", NULL, NULL, &ack));
	keys_of(ack.json, keys, sizeof(keys));
	ck_assert_str_eq(keys, "type,presenceId,memberDisplayName,memberProfile,meshPolicy,restored,"
			       "lastSummary,lastSeenAt,restoredGroups,restoredStats,services");
	ck_assert(json_is_true(json_object_get(ack.json, "restored")));
	ck_assert_str_eq(json_string_value(json_object_get(ack.json, "lastSummary")),
			 "Refactoring the scheduler");
	const char *seen = json_string_value(json_object_get(ack.json, "lastSeenAt"));
	ck_assert_int_eq(strlen(seen), 24);
	ck_assert_int_eq(seen[23], 'Z');
	char last_seen[32];
	snprintf(last_seen, sizeof(last_seen), "%s", seen);
	assert_json(json_object_get(ack.json, "restoredGroups"), "[{\"name\":\"backend\",\"role\":\"lead\"}]");
	assert_json(json_object_get(ack.json, "restoredStats"),
		    "{\"messagesIn\":3,\"messagesOut\":5,\"toolCalls\":2,\"errors\":1}");
	mc_frame_free(&ack);
	/* Restored invisible: b hears of the return, but does not list it. */
	expect_event(&b, "peer_returned", ids[0].pk_hex, &data);
	char want[512];
	snprintf(want, sizeof(want), "{\"name\":\"a\",\"pubkey\":\"%s\",\"groups\":"
		 "[{\"name\":\"backend\",\"role\":\"lead\"}],\"lastSeenAt\":\"%s\","
		 "\"summary\":\"Refactoring the scheduler\"}", ids[0].pk_hex, last_seen);
	assert_json(data, want);
	json_decref(data);
	ck_assert_ptr_null(mt_peer_entry(&b, ids[0].pk_hex));
	json_t *own = mt_peer_entry(&a, ids[0].pk_hex);
	ck_assert_ptr_nonnull(own);
	ck_assert(json_is_false(json_object_get(own, "visible")));
	assert_json(json_object_get(own, "groups"), "[{\"name\":\"backend\",\"role\":\"lead\"}]");
	assert_json(json_object_get(own, "profile"),
		    "{\"title\":\"Scheduler\",\"capabilities\":[\"review\"]}");
	ck_assert_ptr_null(json_object_get(own, "stats")); /* this connection sent none */
	json_decref(own);
	/* Visible again: b is told and lists it, with the restored groups. */
	send(&a, "{\"type\":\"set_visible\",\"visible\":true}");
	expect_frame(&a, "{\"type\":\"ack\",\"id\":\"\",\"messageId\":\"\",\"queued\":false}");
	expect_event(&b, "peer_visible", ids[0].pk_hex, &data);
	snprintf(want, sizeof(want), "{\"name\":\"a\",\"pubkey\":\"%s\"}", ids[0].pk_hex);
	assert_json(data, want);
	json_decref(data);
	json_t *e = mt_peer_entry(&b, ids[0].pk_hex);
	ck_assert_ptr_nonnull(e);
	ck_assert(json_is_true(json_object_get(e, "visible")));
	assert_json(json_object_get(e, "groups"), "[{\"name\":\"backend\",\"role\":\"lead\"}]");
	json_decref(e);
	/* The audit trail says which joins were restored. */
	expect_scalar("SELECT coalesce(string_agg(payload->>'restored', ',' ORDER BY id), '')"
		      " FROM mesh.audit_log WHERE event_type = 'peer_joined'"
		      " AND actor_member_id = 'meshR-m0'", "false,true");
	mt_close(&a);
	mt_close(&b);
}
END_TEST

/* Each connection's set_stats is added to the cumulative stats at close. */
START_TEST(cumulative_stats_add_up_over_connections)
{
	struct mc_identity ids[2];
	mt_seed_members(itest_db_url(), "meshS", 2, ids);
	struct mt_peer a, b;
	struct mc_frame ack;
	ck_assert(mt_connect(&b, B.port, "meshS", "meshS-m1", &ids[1], "b", NULL));
	ck_assert(mt_connect(&a, B.port, "meshS", "meshS-m0", &ids[0], "a", NULL));
	expect_event(&b, "peer_joined", ids[0].pk_hex, NULL);
	send(&a, "{\"type\":\"set_stats\",\"stats\":{\"messagesIn\":2,\"toolCalls\":4}}");
	send(&a, "{\"type\":\"set_stats\",\"stats\":{\"messagesIn\":3}}"); /* replaces */
	leave(&a, &b);
	ck_assert(mt_connect(&a, B.port, "meshS", "meshS-m0", &ids[0], "a", NULL));
	expect_event(&b, "peer_returned", ids[0].pk_hex, NULL);
	send(&a, "{\"type\":\"set_stats\",\"stats\":{\"messagesIn\":5,\"errors\":1.7,"
		 "\"messagesOut\":-4}}");
	json_t *e = mt_peer_entry(&b, ids[0].pk_hex);
	assert_json(json_object_get(e, "stats"), "{\"messagesIn\":5,\"messagesOut\":-4,\"errors\":1.7}");
	json_decref(e);
	leave(&a, &b);
	ck_assert(mt_connect_ack(&a, B.port, "meshS", "meshS-m0", &ids[0], "a", NULL, NULL, &ack));
	/* 3 + 5 in; errors 1.7 counts 1; a negative count counts 0. */
	assert_json(json_object_get(ack.json, "restoredStats"),
		    "{\"messagesIn\":8,\"messagesOut\":0,\"toolCalls\":0,\"errors\":1}");
	ck_assert_ptr_null(json_object_get(ack.json, "lastSummary")); /* none was set */
	ck_assert_ptr_null(json_object_get(ack.json, "restoredGroups"));
	mc_frame_free(&ack);
	mt_close(&a);
	mt_close(&b);
}
END_TEST

/* A session_hello is never restored, and its peer_joined reaches the
 * member's own other connections too. */
START_TEST(session_hello_is_never_restored)
{
	struct mc_identity ids[2];
	mt_seed_members(itest_db_url(), "meshX", 2, ids);
	struct mt_peer a, b, s;
	struct mc_frame ack;
	ck_assert(mt_connect(&b, B.port, "meshX", "meshX-m1", &ids[1], "b", NULL));
	ck_assert(mt_connect(&a, B.port, "meshX", "meshX-m0", &ids[0], "a", NULL));
	expect_event(&b, "peer_joined", ids[0].pk_hex, NULL);
	leave(&a, &b);
	expect_scalar("SELECT count(*) FROM mesh.peer_state WHERE member_id = 'meshX-m0'", "1");
	ck_assert(mt_connect_session_ack(&s, B.port, "meshX", "meshX-m0", &ids[0], "s", NULL, NULL,
					 &ack));
	ck_assert_ptr_null(json_object_get(ack.json, "restored"));
	ck_assert_ptr_null(json_object_get(ack.json, "restoredStats"));
	mc_frame_free(&ack);
	expect_event(&b, "peer_joined", s.session.pk_hex, NULL);
	mt_close(&s);
	mt_close(&b);
}
END_TEST

static const char *own_groups(struct mt_peer *p)
{
	static char out[256];
	json_t *e = mt_peer_entry(p, p->is_session ? p->session.pk_hex : p->id.pk_hex);
	ck_assert_ptr_nonnull(e);
	char *text = json_dumps(json_object_get(e, "groups"), JSON_COMPACT);
	snprintf(out, sizeof(out), "%s", text);
	free(text);
	json_decref(e);
	return out;
}

/* §5.5: non-empty hello groups, else saved non-empty, else the member's
 * defaults; session_hello: the hello's groups whenever given (even []). */
START_TEST(initial_groups_precedence)
{
	struct mc_identity ids[2];
	mt_seed_members(itest_db_url(), "meshI", 2, ids);
	ck_assert(pgtest_exec(itest_db_url(), "UPDATE mesh.member SET default_groups ="
			      " '[{\"name\":\"dflt\"}]' WHERE id = 'meshI-m0'"));
	struct mt_peer a, b, s;
	struct mc_frame ack;
	ck_assert(mt_connect(&b, B.port, "meshI", "meshI-m1", &ids[1], "b", NULL));
	/* No state yet, `groups: []`: the defaults. */
	ck_assert(mt_connect(&a, B.port, "meshI", "meshI-m0", &ids[0], "a", no_groups));
	expect_event(&b, "peer_joined", ids[0].pk_hex, NULL);
	ck_assert_str_eq(own_groups(&a), "[{\"name\":\"dflt\"}]");
	mt_send_owned(&a, mc_join_group("kept", NULL));
	leave(&a, &b);
	/* Hello groups win over the saved ones, and restoredGroups is absent. */
	const char *x[] = { "x", NULL };
	ck_assert(mt_connect_ack(&a, B.port, "meshI", "meshI-m0", &ids[0], "a", x, NULL, &ack));
	ck_assert(json_is_true(json_object_get(ack.json, "restored")));
	ck_assert_ptr_null(json_object_get(ack.json, "restoredGroups"));
	mc_frame_free(&ack);
	expect_event(&b, "peer_returned", ids[0].pk_hex, NULL);
	ck_assert_str_eq(own_groups(&a), "[{\"name\":\"x\"}]");
	leave(&a, &b);
	/* `groups: []`: the saved ones (x, saved by the last close). */
	ck_assert(mt_connect_ack(&a, B.port, "meshI", "meshI-m0", &ids[0], "a", no_groups, NULL,
				 &ack));
	assert_json(json_object_get(ack.json, "restoredGroups"), "[{\"name\":\"x\"}]");
	mc_frame_free(&ack);
	expect_event(&b, "peer_returned", ids[0].pk_hex, NULL);
	ck_assert_str_eq(own_groups(&a), "[{\"name\":\"x\"}]");
	mt_send_owned(&a, mc_leave_group("x"));
	leave(&a, &b);
	/* Saved groups empty, no hello groups: the defaults again. */
	ck_assert(mt_connect_ack(&a, B.port, "meshI", "meshI-m0", &ids[0], "a", NULL, NULL, &ack));
	ck_assert_ptr_null(json_object_get(ack.json, "restoredGroups"));
	mc_frame_free(&ack);
	expect_event(&b, "peer_returned", ids[0].pk_hex, NULL);
	ck_assert_str_eq(own_groups(&a), "[{\"name\":\"dflt\"}]");
	/* session_hello: [] stays []; no key: the defaults. */
	ck_assert(mt_connect_session(&s, B.port, "meshI", "meshI-m0", &ids[0], "s", no_groups));
	ck_assert_str_eq(own_groups(&s), "[]");
	mt_close(&s);
	ck_assert(mt_connect_session(&s, B.port, "meshI", "meshI-m0", &ids[0], "s2", NULL));
	ck_assert_str_eq(own_groups(&s), "[{\"name\":\"dflt\"}]");
	mt_close(&s);
	mt_close(&a);
	mt_close(&b);
}
END_TEST

/* An invisible peer: skipped by `*` and `@group`, hidden from other
 * members' list_peers, listed for its own member; peer_hidden reaches the
 * member's own session too.  set_profile merges; bad input is ignored. */
START_TEST(extras_visibility_profile_and_bad_input)
{
	struct mc_identity ids[2];
	mt_seed_members(itest_db_url(), "meshV", 2, ids);
	struct mt_peer a, b, s;
	const char *g[] = { "ops", NULL };
	ck_assert(mt_connect(&b, B.port, "meshV", "meshV-m1", &ids[1], "b", NULL));
	ck_assert(mt_connect(&a, B.port, "meshV", "meshV-m0", &ids[0], "a", g));
	expect_event(&b, "peer_joined", ids[0].pk_hex, NULL);
	ck_assert(mt_connect_session(&s, B.port, "meshV", "meshV-m0", &ids[0], "s", NULL));
	expect_event(&b, "peer_joined", s.session.pk_hex, NULL);
	expect_event(&a, "peer_joined", s.session.pk_hex, NULL);

	/* Ignored, without a reply or a crash. */
	send(&a, "{\"type\":\"set_visible\",\"visible\":\"no\",\"_reqId\":\"bad\"}");
	send(&a, "{\"type\":\"set_visible\"}");
	send(&a, "{\"type\":\"set_stats\",\"stats\":[1,2]}");
	send(&a, "{\"type\":\"set_stats\"}");
	send(&a, "{\"type\":\"set_profile\",\"title\":7,\"capabilities\":[\"ok\",3]}");
	expect_frame(&a, "{\"type\":\"ack\",\"id\":\"\",\"messageId\":\"\",\"queued\":false}");
	ck_assert(mt_quiet(&a, 300, false));
	json_t *e = mt_peer_entry(&b, ids[0].pk_hex);
	ck_assert_ptr_null(json_object_get(e, "profile")); /* nothing valid was given */
	ck_assert_ptr_null(json_object_get(e, "stats"));
	ck_assert(json_is_true(json_object_get(e, "visible")));
	json_decref(e);

	send(&a, "{\"type\":\"set_profile\",\"title\":\"A\",\"_reqId\":\"p1\"}");
	expect_frame(&a, "{\"type\":\"ack\",\"id\":\"p1\",\"messageId\":\"\",\"queued\":false,"
			 "\"_reqId\":\"p1\"}");
	send(&a, "{\"type\":\"set_profile\",\"bio\":\"B\",\"avatar\":\"\\u263a\","
		 "\"capabilities\":[\"c\"],\"title\":5}");
	expect_frame(&a, "{\"type\":\"ack\",\"id\":\"\",\"messageId\":\"\",\"queued\":false}");
	send(&a, "{\"type\":\"set_stats\",\"stats\":{\"messagesIn\":1,\"uptime\":2,\"mood\":\"x\"}}");
	e = mt_peer_entry(&b, ids[0].pk_hex);
	assert_json(json_object_get(e, "profile"),
		    "{\"title\":\"A\",\"avatar\":\"\xe2\x98\xba\",\"bio\":\"B\",\"capabilities\":[\"c\"]}");
	assert_json(json_object_get(e, "stats"), "{\"messagesIn\":1,\"uptime\":2}");
	char keys[512];
	keys_of(e, keys, sizeof(keys));
	ck_assert_str_eq(keys, "pubkey,memberPubkey,displayName,status,summary,groups,sessionId,"
			       "connectedAt,cwd,peerRole,stats,visible,profile");
	json_decref(e);

	send(&a, "{\"type\":\"set_visible\",\"visible\":false}");
	expect_frame(&a, "{\"type\":\"ack\",\"id\":\"\",\"messageId\":\"\",\"queued\":false}");
	expect_event(&b, "peer_hidden", ids[0].pk_hex, NULL);
	expect_event(&s, "peer_hidden", ids[0].pk_hex, NULL);
	ck_assert_ptr_null(mt_peer_entry(&b, ids[0].pk_hex));
	e = mt_peer_entry(&s, ids[0].pk_hex); /* its own member still sees it */
	ck_assert_ptr_nonnull(e);
	ck_assert(json_is_false(json_object_get(e, "visible")));
	json_decref(e);

	/* b's multicasts reach the visible session, not the hidden peer. */
	struct mc_frame ack, f;
	ck_assert(mt_multicast(&b, "*", "all", "now", &ack));
	mc_frame_free(&ack);
	ck_assert(mt_wait_push(&s, &f, 5000));
	mc_frame_free(&f);
	ck_assert(mt_multicast(&b, "@ops", "ops", "now", &ack));
	mc_frame_free(&ack);
	ck_assert(mt_quiet(&a, 1000, false));
	/* Visible again: the group reaches it. */
	send(&a, "{\"type\":\"set_visible\",\"visible\":true}");
	expect_frame(&a, "{\"type\":\"ack\",\"id\":\"\",\"messageId\":\"\",\"queued\":false}");
	expect_event(&b, "peer_visible", ids[0].pk_hex, NULL);
	ck_assert(mt_multicast(&b, "@ops", "ops2", "now", &ack));
	mc_frame_free(&ack);
	ck_assert(mt_wait_push(&a, &f, 5000));
	ck_assert_str_eq(f.push.sender_pubkey, ids[1].pk_hex);
	mc_frame_free(&f);
	mt_close(&a);
	mt_close(&s);
	mt_close(&b);
}
END_TEST

int main(void)
{
	Suite *su = suite_create("peerstate");
	TCase *tc = tcase_create("peerstate");
	tcase_add_unchecked_fixture(tc, itest_cluster_setup, itest_cluster_teardown);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, state_is_saved_at_close_and_restored_by_the_next_hello);
	tcase_add_test(tc, cumulative_stats_add_up_over_connections);
	tcase_add_test(tc, session_hello_is_never_restored);
	tcase_add_test(tc, initial_groups_precedence);
	tcase_add_test(tc, extras_visibility_profile_and_bad_input);
	suite_add_tcase(su, tc);
	return check_run(su);
}
