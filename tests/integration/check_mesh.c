/* Integration: the mesh protocol core against the real broker (PROTOCOL.md §5–7).
 * Run twice by make check: with BROKER_WORKERS=1 and =4 (MESHD_TEST_WORKERS). */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "itest.h"
#include "meshtest.h"

static struct broker B;
static char workers_env[64];

static void start(const char *const *more)
{
	const char *w = getenv("MESHD_TEST_WORKERS");
	snprintf(workers_env, sizeof(workers_env), "BROKER_WORKERS=%s", w ? w : "4");
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

/* Seeds mesh `mesh` with members m1..mN named a, b, c… */
static void seed(const char *mesh, int n, struct mc_identity *ids)
{
	mt_seed_mesh(itest_db_url(), mesh, mesh);
	for (int i = 0; i < n; i++) {
		char mid[64], name[8];
		snprintf(mid, sizeof(mid), "%s-m%d", mesh, i);
		snprintf(name, sizeof(name), "%c", 'a' + i);
		mt_seed_member(itest_db_url(), mesh, mid, name, &ids[i]);
	}
}

static void connect_n(const char *mesh, int n, struct mc_identity *ids, struct mt_peer *peers)
{
	for (int i = 0; i < n; i++) {
		char mid[64], name[8];
		snprintf(mid, sizeof(mid), "%s-m%d", mesh, i);
		snprintf(name, sizeof(name), "%c", 'a' + i);
		ck_assert_msg(mt_connect(&peers[i], B.port, mesh, mid, &ids[i], name, NULL),
			      "hello %s", name);
	}
}

START_TEST(dm_round_trip)
{
	struct mc_identity ids[2];
	struct mt_peer p[2];
	seed("meshA", 2, ids);
	connect_n("meshA", 2, ids, p);

	struct mc_frame ack, push;
	ck_assert(mt_dm(&p[0], &p[1], "hello b", "now", "cid-1", &ack));
	ck_assert_ptr_null(ack.bad_field);
	ck_assert(ack.ack.queued);
	ck_assert_int_eq(strlen(ack.ack.message_id), 32);
	char mid[40];
	snprintf(mid, sizeof(mid), "%s", ack.ack.message_id);
	mc_frame_free(&ack);

	ck_assert(mt_wait_push(&p[1], &push, 10000));
	ck_assert_ptr_null(push.bad_field);
	ck_assert_str_eq(push.push.message_id, mid);
	ck_assert_str_eq(push.push.mesh_id, "meshA");
	ck_assert_str_eq(push.push.sender_pubkey, p[0].id.pk_hex);
	ck_assert_str_eq(push.push.priority, "now");
	ck_assert_str_eq(push.push.client_message_id, "cid-1");
	ck_assert_ptr_null(push.push.sender_member_id); /* drained pushes carry no member fields */
	char text[64];
	ck_assert(mt_open_dm(&p[1], &push, text, sizeof(text)));
	ck_assert_str_eq(text, "hello b");
	mc_frame_free(&push);

	/* A DM to oneself with no other connection is refused by the pre-flight. */
	ck_assert(mt_dm(&p[0], &p[0], "me", "now", NULL, &ack));
	ck_assert(!ack.ack.queued);
	ck_assert_str_eq(ack.ack.error, "no connected peer for target (not online, or targetSpec is your own key without another session)");
	mc_frame_free(&ack);
	mt_close(&p[0]);
	mt_close(&p[1]);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("mesh");
	TCase *tc = tcase_create("mesh");
	tcase_add_unchecked_fixture(tc, itest_cluster_setup, itest_cluster_teardown);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, dm_round_trip);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
