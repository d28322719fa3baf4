/* Integration: POST /hook/set-status (PROTOCOL.md §3.4, §7.1, SEMANTICS.md
 * §B.3–B.5) against the real broker: every response, the lookup across
 * meshes and shards, the held message released by a hook, dnd surviving a
 * hook, pending statuses, and the metrics.
 * Run with BROKER_WORKERS=4 by make check and with 1 by workers1.sh. */
#include "config.h"

#include <check.h>

#include "check_run.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>


#include <jansson.h>

#include "itest.h"
#include "meshd/shard.h"
#include "meshtest.h"

static struct broker B;
static char workers_env[64];

static int workers(void)
{
	const char *w = getenv("MESHD_TEST_WORKERS");
	return w ? atoi(w) : 4;
}

static void start(const char *const *more)
{
	snprintf(workers_env, sizeof(workers_env), "BROKER_WORKERS=%d", workers());
	const char *env[16] = { workers_env, "SEND_RATE_LIMIT_PER_MIN=0", NULL };
	size_t n = 2;
	for (size_t i = 0; more && more[i] && n < 15; i++)
		env[n++] = more[i];
	env[n] = NULL;
	itest_broker_start(&B, env);
	ck_assert(itest_wait_status(B.port, "/health", 200, 15000));
}

static void setup(void)
{
	start(NULL);
}

static void teardown(void)
{
	itest_broker_stop(&B);
}

/* POSTs body to /hook/set-status; returns the status, the body in *out. */
static int hook(const char *body, char *out, size_t cap)
{
	char *raw = NULL;
	ck_assert(asprintf(&raw,
			   "POST /hook/set-status HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
			   "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
			   strlen(body), body) > 0);
	struct http_response r;
	ck_assert(httpc_request(B.port, raw, &r));
	free(raw);
	snprintf(out, cap, "%s", r.body);
	int status = r.status;
	if (status != 204)
		ck_assert_str_eq(httpc_header(&r, "Content-Type"), "application/json");
	httpc_response_free(&r);
	return status;
}

static void hook_expect(const char *body, int status, const char *want)
{
	char got[512];
	ck_assert_int_eq(hook(body, got, sizeof(got)), status);
	ck_assert_str_eq(got, want);
}

/* The presence id a hook answered with ("" for pending or an error). */
static const char *hook_presence(const char *body)
{
	static char id[64];
	char got[512];
	ck_assert_int_eq(hook(body, got, sizeof(got)), 200);
	json_t *o = json_loads(got, 0, NULL);
	ck_assert_ptr_nonnull(o);
	ck_assert(json_is_true(json_object_get(o, "ok")));
	const char *p = json_string_value(json_object_get(o, "presence_id"));
	snprintf(id, sizeof(id), "%s", p ? p : "");
	json_decref(o);
	return id;
}

static void join_at(struct mt_peer *p, const char *mesh, int i, struct mc_identity *ids,
		    const char *session_id, long long pid, const char *cwd)
{
	char mid[64], name[8];
	snprintf(mid, sizeof(mid), "%s-m%d", mesh, i);
	snprintf(name, sizeof(name), "%c", 'a' + i);
	struct mt_where w = { session_id, pid, cwd };
	ck_assert_msg(mt_connect_where(p, B.port, mesh, mid, &ids[i], name, NULL, &w), "hello %s/%s",
		      mesh, name);
}

static void db_status(const char *member_id, const char *want)
{
	char st[64], sql[256];
	snprintf(sql, sizeof(sql),
		 "SELECT status || '/' || status_source FROM mesh.presence WHERE member_id = '%s'"
		 " AND disconnected_at IS NULL",
		 member_id);
	long long deadline = httpc_now_ms() + 5000;
	do {
		ck_assert(pgtest_scalar(itest_db_url(), sql, st, sizeof(st)));
		if (strcmp(st, want) == 0)
			return;
		usleep(50 * 1000);
	} while (httpc_now_ms() < deadline);
	ck_assert_str_eq(st, want);
}

/* ---- responses --------------------------------------------------------------- */

START_TEST(every_response_and_its_metrics)
{
	long long before = itest_metric(B.port, "broker_hook_requests_total");
	char got[512];
	/* Invalid JSON: 500 with the parser's message. */
	ck_assert_int_eq(hook("{not json", got, sizeof(got)), 500);
	ck_assert(strncmp(got, "{\"ok\":false,\"error\":\"", 21) == 0);
	hook_expect("{}", 200, "{\"ok\":false,\"error\":\"cwd and status required\"}");
	hook_expect("{\"cwd\":\"\",\"status\":\"idle\"}", 200,
		    "{\"ok\":false,\"error\":\"cwd and status required\"}");
	hook_expect("{\"cwd\":\"/x\"}", 200, "{\"ok\":false,\"error\":\"cwd and status required\"}");
	hook_expect("{\"cwd\":\"/x\",\"status\":\"sleepy\"}", 400,
		    "{\"ok\":false,\"error\":\"invalid status\"}");
	hook_expect("{\"cwd\":\"/nobody\",\"pid\":1,\"status\":\"working\"}", 200,
		    "{\"ok\":true,\"pending\":true}");
	ck_assert_int_eq(itest_metric(B.port, "broker_hook_requests_total"), before + 6);
	ck_assert_int_eq(itest_metric(B.port, "broker_hook_requests_rate_limited_total"), 0);

	/* Larger than MAX_MESSAGE_BYTES: 413 and closed, counted first, without
	 * waiting for the body (only the head is sent). */
	struct http_response r;
	ck_assert(httpc_request(B.port, "POST /hook/set-status HTTP/1.1\r\nHost: x\r\n"
					"Content-Length: 70000\r\n\r\n",
				&r));
	ck_assert_int_eq(r.status, 413);
	ck_assert_str_eq(r.body, "{\"ok\":false,\"error\":\"payload too large\"}");
	ck_assert_str_eq(httpc_header(&r, "Connection"), "close");
	httpc_response_free(&r);
	ck_assert_int_eq(itest_metric(B.port, "broker_hook_requests_total"), before + 7);

	/* Only POST on the exact path. */
	ck_assert(httpc_request(B.port, "GET /hook/set-status HTTP/1.1\r\nHost: x\r\n\r\n", &r));
	ck_assert_int_eq(r.status, 404);
	httpc_response_free(&r);
	ck_assert_int_eq(itest_metric(B.port, "broker_hook_requests_total"), before + 7);
}
END_TEST

START_TEST(rate_limit_per_pid_and_cwd_before_validation)
{
	teardown();
	const char *more[] = { "HOOK_RATE_LIMIT_PER_MIN=3", NULL };
	start(more);
	hook_expect("{\"cwd\":\"/r\",\"pid\":7,\"status\":\"idle\"}", 200, "{\"ok\":true,\"pending\":true}");
	hook_expect("{\"cwd\":\"/r\",\"pid\":7,\"status\":\"idle\"}", 200, "{\"ok\":true,\"pending\":true}");
	/* Invalid, but it takes the same key's token first. */
	hook_expect("{\"cwd\":\"/r\",\"pid\":7}", 200, "{\"ok\":false,\"error\":\"cwd and status required\"}");
	hook_expect("{\"cwd\":\"/r\",\"pid\":7,\"status\":\"idle\"}", 429,
		    "{\"ok\":false,\"error\":\"rate limited\"}");
	/* Another pid, another bucket; pid 0 and absent are the same key. */
	hook_expect("{\"cwd\":\"/r\",\"pid\":8,\"status\":\"idle\"}", 200, "{\"ok\":true,\"pending\":true}");
	hook_expect("{\"cwd\":\"/r\",\"status\":\"idle\"}", 200, "{\"ok\":true,\"pending\":true}");
	hook_expect("{\"cwd\":\"/r\",\"pid\":0,\"status\":\"idle\"}", 200, "{\"ok\":true,\"pending\":true}");
	hook_expect("{\"cwd\":\"/r\",\"pid\":null,\"status\":\"idle\"}", 200, "{\"ok\":true,\"pending\":true}");
	hook_expect("{\"cwd\":\"/r\",\"status\":\"idle\"}", 429, "{\"ok\":false,\"error\":\"rate limited\"}");
	ck_assert_int_eq(itest_metric(B.port, "broker_hook_requests_rate_limited_total"), 2);
	ck_assert_int_eq(itest_metric(B.port, "broker_hook_requests_total"), 9);
}
END_TEST

/* ---- finding the presence ---------------------------------------------------------- */

START_TEST(match_by_pid_then_latest_cwd_then_session_id)
{
	struct mc_identity ids[4];
	mt_seed_members(itest_db_url(), "meshH", 4, ids);
	struct mt_peer a, b, c, d;
	join_at(&a, "meshH", 0, ids, "sess-a", 100, "/w/shared");
	join_at(&b, "meshH", 1, ids, "sess-b", 200, "/w/shared");
	join_at(&c, "meshH", 2, ids, "sess-c", 300, "/w/shared"); /* the latest with that cwd */
	join_at(&d, "meshH", 3, ids, "sess-d", 400, "/w/other");

	/* cwd + pid. */
	ck_assert_str_eq(hook_presence("{\"cwd\":\"/w/shared\",\"pid\":200,\"status\":\"working\"}"),
			 b.presence_id);
	ck_assert_str_eq(mt_peer_status(&a, b.id.pk_hex), "working");
	db_status("meshH-m1", "working/hook");
	/* A pid that matches nothing: the latest presence with the cwd. */
	ck_assert_str_eq(hook_presence("{\"cwd\":\"/w/shared\",\"pid\":999,\"status\":\"working\"}"),
			 c.presence_id);
	ck_assert_str_eq(hook_presence("{\"cwd\":\"/w/shared\",\"status\":\"working\"}"),
			 c.presence_id);
	/* The session id wins over both, whatever the cwd and pid say. */
	ck_assert_str_eq(hook_presence("{\"cwd\":\"/w/other\",\"pid\":400,\"session_id\":\"sess-a\","
				       "\"status\":\"dnd\"}"),
			 a.presence_id);
	ck_assert_str_eq(mt_peer_status(&d, a.id.pk_hex), "dnd");
	/* An unknown session id falls back to the reference's order. */
	ck_assert_str_eq(hook_presence("{\"cwd\":\"/w/other\",\"session_id\":\"nope\",\"status\":\"working\"}"),
			 d.presence_id);
	mt_close(&a);
	mt_close(&b);
	mt_close(&c);
	mt_close(&d);
}
END_TEST

/* Two meshes on two different shards: the latest presence with the cwd
 * wins across them, and its owner writes it. */
START_TEST(lookup_spans_meshes_and_shards)
{
	char m1[32] = "hookmesh-0", m2[32];
	for (int i = 1; i < 200; i++) {
		snprintf(m2, sizeof(m2), "hookmesh-%d", i);
		if (workers() == 1 || shard_owner(m2, workers()) != shard_owner(m1, workers()))
			break;
	}
	if (workers() > 1)
		ck_assert_int_ne(shard_owner(m1, workers()), shard_owner(m2, workers()));
	struct mc_identity i1[1], i2[1];
	mt_seed_members(itest_db_url(), m1, 1, i1);
	mt_seed_members(itest_db_url(), m2, 1, i2);
	struct mt_peer a, b;
	join_at(&a, m1, 0, i1, NULL, 11, "/w/x");
	join_at(&b, m2, 0, i2, NULL, 22, "/w/x");
	ck_assert_str_eq(hook_presence("{\"cwd\":\"/w/x\",\"status\":\"working\"}"), b.presence_id);
	ck_assert_str_eq(hook_presence("{\"cwd\":\"/w/x\",\"pid\":11,\"status\":\"working\"}"),
			 a.presence_id);
	ck_assert_str_eq(mt_peer_status(&a, a.id.pk_hex), "working");
	ck_assert_str_eq(mt_peer_status(&b, b.id.pk_hex), "working");
	mt_close(&a);
	mt_close(&b);
}
END_TEST

/* ---- the status timeline ----------------------------------------------------------- */

START_TEST(hook_working_holds_idle_releases_dnd_survives)
{
	struct mc_identity ids[2];
	mt_seed_members(itest_db_url(), "meshT", 2, ids);
	struct mt_peer a, b;
	join_at(&a, "meshT", 0, ids, NULL, 10, "/w/a");
	join_at(&b, "meshT", 1, ids, NULL, 20, "/w/b");
	ck_assert_str_eq(hook_presence("{\"cwd\":\"/w/b\",\"pid\":20,\"status\":\"working\"}"),
			 b.presence_id);
	mt_dm_ok(&a, &b, "held", "next");
	mt_dm_ok(&a, &b, "urgent", "now");
	mt_expect_dm(&b, "urgent", NULL);
	ck_assert(mt_quiet(&b, 500, true));
	/* idle admits next: released at once (D4), not at the next trigger. */
	ck_assert_str_eq(hook_presence("{\"cwd\":\"/w/b\",\"pid\":20,\"status\":\"idle\"}"),
			 b.presence_id);
	mt_expect_dm(&b, "held", NULL);
	db_status("meshT-m1", "idle/hook");

	/* A hook may set dnd, but never clears it: the answer names it anyway. */
	ck_assert_str_eq(hook_presence("{\"cwd\":\"/w/b\",\"pid\":20,\"status\":\"dnd\"}"),
			 b.presence_id);
	ck_assert_str_eq(hook_presence("{\"cwd\":\"/w/b\",\"pid\":20,\"status\":\"idle\"}"),
			 b.presence_id);
	ck_assert_str_eq(mt_peer_status(&a, b.id.pk_hex), "dnd");
	mt_dm_ok(&a, &b, "held again", "low");
	ck_assert(mt_quiet(&b, 500, true));
	db_status("meshT-m1", "dnd/hook");
	mt_close(&a);
	mt_close(&b);
}
END_TEST

/* A stuck hook `working` is flipped by the TTL sweep, which also releases
 * what it held (D4). */
START_TEST(ttl_sweep_flips_a_stuck_hook_working)
{
	teardown();
	const char *more[] = { "STATUS_TTL_SECONDS=1", "TTL_SWEEP_INTERVAL_SECONDS=1",
			       "HOOK_FRESH_WINDOW_SECONDS=1", NULL };
	start(more);
	struct mc_identity ids[2];
	mt_seed_members(itest_db_url(), "meshS", 2, ids);
	struct mt_peer a, b;
	join_at(&a, "meshS", 0, ids, NULL, 10, "/w/a");
	join_at(&b, "meshS", 1, ids, NULL, 20, "/w/b");
	ck_assert_str_eq(hook_presence("{\"cwd\":\"/w/b\",\"status\":\"working\"}"), b.presence_id);
	mt_dm_ok(&a, &b, "after the sweep", "next");
	mt_expect_dm(&b, "after the sweep", NULL);
	ck_assert_str_eq(mt_peer_status(&a, b.id.pk_hex), "idle");
	ck_assert_int_ge(itest_metric(B.port, "broker_ttl_sweeps_total{flipped=\"1\"}"), 1);
	mt_close(&a);
	mt_close(&b);
}
END_TEST

/* A fresh hook outranks what the transcript says; once the hook is older
 * than HOOK_FRESH_WINDOW_SECONDS the transcript decides again (§7.1, D8). */
START_TEST(hook_outranks_jsonl_until_it_is_stale)
{
	teardown();
	struct mt_projects pr;
	mt_projects_make(&pr, "-w-j", true);
	char env[600];
	snprintf(env, sizeof(env), "CLAUDE_PROJECTS_DIR=%s", pr.dir);
	const char *more[] = { env, "HOOK_FRESH_WINDOW_SECONDS=2", NULL };
	start(more);
	struct mc_identity ids[2];
	mt_seed_members(itest_db_url(), "meshJ", 2, ids);
	struct mt_peer a, b;
	join_at(&a, "meshJ", 0, ids, NULL, 10, "/w/a");
	join_at(&b, "meshJ", 1, ids, NULL, 20, "/w/j");
	ck_assert_str_eq(hook_presence("{\"cwd\":\"/w/j\",\"status\":\"idle\"}"), b.presence_id);
	mt_dm_ok(&a, &b, "hook says idle", "next");
	mt_expect_dm(&b, "hook says idle", NULL);
	usleep(2500 * 1000);
	mt_dm_ok(&a, &b, "transcript says working", "next");
	ck_assert(mt_quiet(&b, 700, true));
	ck_assert_str_eq(mt_peer_status(&a, b.id.pk_hex), "working");
	db_status("meshJ-m1", "working/jsonl");
	mt_close(&a);
	mt_close(&b);
	mt_projects_remove(&pr);
}
END_TEST

/* ---- pending ---------------------------------------------------------------------- */

/* With the default PENDING_STATUS_TTL_SECONDS (10): a hello 2 s after its
 * hook takes the status, one 11 s after does not. */
START_TEST(pending_status_applies_to_a_later_hello_within_the_ttl)
{
	struct mc_identity ids[3];
	mt_seed_members(itest_db_url(), "meshQ", 3, ids);
	hook_expect("{\"cwd\":\"/w/q\",\"pid\":77,\"status\":\"working\"}", 200,
		    "{\"ok\":true,\"pending\":true}");
	hook_expect("{\"cwd\":\"/w/q\",\"pid\":77,\"status\":\"dnd\"}", 200,
		    "{\"ok\":true,\"pending\":true}"); /* the newest wins */
	hook_expect("{\"cwd\":\"/w/late\",\"pid\":78,\"status\":\"working\"}", 200,
		    "{\"ok\":true,\"pending\":true}");
	long long t0 = httpc_now_ms();
	usleep(2000 * 1000);
	struct mt_peer a, other, late;
	join_at(&other, "meshQ", 1, ids, NULL, 770, "/w/q"); /* pid must match exactly */
	join_at(&a, "meshQ", 0, ids, NULL, 77, "/w/q");
	ck_assert_str_eq(mt_peer_status(&other, a.id.pk_hex), "dnd");
	ck_assert_str_eq(mt_peer_status(&other, other.id.pk_hex), "idle");
	db_status("meshQ-m0", "dnd/hook");
	long long wait = t0 + 11000 - httpc_now_ms();
	if (wait > 0)
		usleep((useconds_t)wait * 1000); /* past the TTL */
	join_at(&late, "meshQ", 2, ids, NULL, 78, "/w/late");
	ck_assert_str_eq(mt_peer_status(&late, late.id.pk_hex), "idle");
	db_status("meshQ-m2", "idle/jsonl");
	mt_close(&a);
	mt_close(&other);
	mt_close(&late);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("hook");
	TCase *tc = tcase_create("hook");
	tcase_add_unchecked_fixture(tc, itest_cluster_setup, itest_cluster_teardown);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, every_response_and_its_metrics);
	tcase_add_test(tc, rate_limit_per_pid_and_cwd_before_validation);
	tcase_add_test(tc, match_by_pid_then_latest_cwd_then_session_id);
	tcase_add_test(tc, lookup_spans_meshes_and_shards);
	tcase_add_test(tc, hook_working_holds_idle_releases_dnd_survives);
	tcase_add_test(tc, ttl_sweep_flips_a_stuck_hook_working);
	tcase_add_test(tc, hook_outranks_jsonl_until_it_is_stale);
	tcase_add_test(tc, pending_status_applies_to_a_later_hello_within_the_ttl);
	suite_add_tcase(s, tc);
	return check_run(s);
}
