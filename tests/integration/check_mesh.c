/* Integration: the mesh protocol core against the real broker (PROTOCOL.md §5–7).
 * Run twice by make check: with BROKER_WORKERS=1 and =4 (MESHD_TEST_WORKERS). */
#include "config.h"

#include <check.h>

#include "check_run.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <poll.h>


#include <libpq-fe.h>

#include "itest.h"
#include "meshd/audit.h"
#include "meshd/shard.h"
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
	mt_seed_members(itest_db_url(), "meshA", 2, ids);
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


/* Connects peer i of `mesh` (member <mesh>-m<i>, name 'a'+i) with groups. */
static void join(struct mt_peer *p, const char *mesh, int i, struct mc_identity *ids,
		 const char *const *groups)
{
	char mid[64], name[8];
	snprintf(mid, sizeof(mid), "%s-m%d", mesh, i);
	snprintf(name, sizeof(name), "%c", 'a' + i);
	ck_assert_msg(mt_connect(p, B.port, mesh, mid, &ids[i], name, groups), "hello %s/%s", mesh, name);
}

static void expect_multicast(struct mt_peer *to, const struct mt_peer *from, const char *text)
{
	struct mc_frame f;
	ck_assert_msg(mt_wait_push(to, &f, 10000), "%s got no push", to->name);
	ck_assert_ptr_null(f.bad_field);
	ck_assert_str_eq(f.push.sender_pubkey, from->id.pk_hex);
	ck_assert_str_eq(f.push.sender_member_pubkey, from->id.pk_hex);
	ck_assert_str_eq(f.push.sender_member_id, from->member_id);
	ck_assert_str_eq(f.push.sender_name, from->name);
	ck_assert_str_eq(f.push.mesh_id, from->mesh_id);
	ck_assert_ptr_null(f.push.client_message_id);
	unsigned char *plain;
	size_t len;
	ck_assert(mc_unb64(f.push.ciphertext, &plain, &len));
	ck_assert_str_eq((char *)plain, text);
	free(plain);
	mc_frame_free(&f);
}

/* *, @all, @group (exact names: §6.3) and #topic reach exactly the right
 * peers, and nothing crosses into a mesh with the same names and groups. */
START_TEST(multicast_targets_and_isolation)
{
	struct mc_identity x[4], y[4];
	/* With 4 workers the two meshes live on different shards. */
	ck_assert_int_ne(shard_owner("meshX", 4), shard_owner("meshY", 4));
	mt_seed_members(itest_db_url(), "meshX", 4, x);
	mt_seed_members(itest_db_url(), "meshY", 4, y);
	const char *backend[] = { "backend", NULL }, *api[] = { "backend/api", NULL },
		   *front[] = { "frontend", NULL };
	const char *const *groups[] = { NULL, backend, api, front };
	struct mt_peer px[4], py[4];
	for (int i = 0; i < 4; i++) {
		join(&px[i], "meshX", i, x, groups[i]);
		join(&py[i], "meshY", i, y, groups[i]);
	}
	struct mc_frame ack;
	ck_assert(mt_multicast(&px[0], "@backend", "to backend", "next", &ack));
	ck_assert(ack.ack.queued);
	mc_frame_free(&ack);
	expect_multicast(&px[1], &px[0], "to backend");
	ck_assert(mt_quiet(&px[2], 300, true)); /* backend/api is a group of its own */
	ck_assert(mt_multicast(&px[0], "@backend/api", "to api", "next", &ack));
	ck_assert(ack.ack.queued);
	mc_frame_free(&ack);
	expect_multicast(&px[2], &px[0], "to api");
	ck_assert(mt_quiet(&px[1], 300, true));

	ck_assert(mt_multicast(&px[0], "*", "to all", "low", &ack));
	mc_frame_free(&ack);
	for (int i = 1; i < 4; i++)
		expect_multicast(&px[i], &px[0], "to all");
	ck_assert(mt_multicast(&px[3], "@all", "all again", "now", &ack));
	mc_frame_free(&ack);
	for (int i = 0; i < 3; i++)
		expect_multicast(&px[i], &px[3], "all again");

	/* #topic: queued, never pushed at send time. */
	ck_assert(mt_multicast(&px[0], "#topic-1", "topic", "next", &ack));
	ck_assert(ack.ack.queued);
	mc_frame_free(&ack);

	ck_assert(mt_quiet(&px[0], 300, true)); /* the sender gets none of its own */
	ck_assert(mt_quiet(&px[3], 300, true)); /* frontend got no @backend, no #topic */
	for (int i = 0; i < 4; i++)
		ck_assert_msg(mt_quiet(&py[i], 300, true), "meshY peer %d got meshX traffic", i);
	ck_assert_int_eq(itest_metric(B.port, "broker_messages_routed_total{priority=\"next\"}"), 2);
	for (int i = 0; i < 4; i++) {
		mt_close(&px[i]);
		mt_close(&py[i]);
	}
}
END_TEST

/* A frame already received on p's socket, without waiting (pings skipped). */
static bool frame_now(struct mt_peer *p, struct mc_frame *f)
{
	for (;;) {
		struct wsc_msg m;
		int kind = wsc_recv(p->ws, &m, 0);
		if (kind == WSC_TEXT) {
			bool ok = mc_parse(m.data, m.len, f);
			wsc_msg_free(&m);
			return ok;
		}
		if (kind != WSC_TIMEOUT)
			wsc_msg_free(&m);
		if (kind != WSC_PING && kind != WSC_PONG)
			return false;
	}
}

/* §6.1 step 6, as a client holding both sockets in one loop sees it (the
 * reference's own load-test script does): when a push can be read, the
 * ack of its send can be read already.  DMs (the fast path: pushed from
 * the same completion as the ack) and broadcasts.  All of a mesh's
 * connections live on its owner worker, so this is one worker's ordering;
 * make check runs it with 4 workers and with 1. */
START_TEST(ack_is_readable_before_the_push_it_caused)
{
	struct mc_identity ids[2];
	mt_seed_members(itest_db_url(), "meshO", 2, ids);
	struct mt_peer a, b;
	join(&a, "meshO", 0, ids, NULL);
	join(&b, "meshO", 1, ids, NULL);
	int overtaken = 0;
	for (int i = 0; i < 1000; i++) {
		bool multicast = i % 4 == 3;
		char id[24], *nonce = NULL, *ct = NULL;
		snprintf(id, sizeof(id), "order-%d", i);
		if (multicast)
			ct = mc_b64("x", 1);
		else
			ck_assert(mc_encrypt_dm(&a.id, mt_pubkey(&b), "x", 1, &nonce, &ct));
		struct mc_send_opts o = { .id = id, .target_spec = multicast ? "*" : mt_pubkey(&b),
					  .priority = "now", .nonce = nonce ? nonce : "",
					  .ciphertext = ct };
		char *frame = mc_send(&o);
		ck_assert(mt_send_raw(&a, frame));
		free(frame);
		free(nonce);
		free(ct);
		char mid[64] = "";
		bool acked = false, pushed = false;
		long long deadline = httpc_now_ms() + 10000;
		while (!(acked && pushed) && httpc_now_ms() < deadline) {
			struct mc_frame f;
			if (!acked && frame_now(&a, &f)) {
				if (f.type == MC_ACK) {
					ck_assert(f.ack.queued);
					snprintf(mid, sizeof(mid), "%s", f.ack.message_id);
					acked = true;
				}
				mc_frame_free(&f);
				continue;
			}
			if (!pushed && frame_now(&b, &f)) {
				if (f.type == MC_PUSH && !f.push.system) {
					/* Readable now: so must its ack be, already. */
					struct mc_frame g;
					if (!acked && frame_now(&a, &g)) {
						if (g.type == MC_ACK) {
							snprintf(mid, sizeof(mid), "%s", g.ack.message_id);
							acked = true;
						}
						mc_frame_free(&g);
					}
					if (!acked)
						overtaken++;
					else
						ck_assert_str_eq(f.push.message_id, mid);
					pushed = true;
				}
				mc_frame_free(&f);
				continue;
			}
			struct pollfd pf[2] = { { wsc_fd(a.ws), POLLIN, 0 }, { wsc_fd(b.ws), POLLIN, 0 } };
			poll(pf, 2, 50);
		}
		ck_assert_msg(acked && pushed, "send %d: acked %d pushed %d", i, acked, pushed);
	}
	ck_assert_int_eq(overtaken, 0);
	mt_close(&a);
	mt_close(&b);
}
END_TEST

/* A DM addressed to a session key reaches only that session; one to the
 * member key is claimed by exactly one of the member's connections. */
START_TEST(dm_to_session_and_member_keys)
{
	struct mc_identity ids[2];
	mt_seed_members(itest_db_url(), "meshS", 2, ids);
	struct mt_peer a, b1, b2;
	join(&a, "meshS", 0, ids, NULL);
	ck_assert(mt_connect_session(&b1, B.port, "meshS", "meshS-m1", &ids[1], "b1", NULL));
	ck_assert(mt_connect_session(&b2, B.port, "meshS", "meshS-m1", &ids[1], "b2", NULL));
	struct mc_frame ack, f;
	ck_assert(mt_dm(&a, &b2, "for b2", "now", NULL, &ack));
	ck_assert(ack.ack.queued);
	mc_frame_free(&ack);
	ck_assert(mt_wait_push(&b2, &f, 10000));
	char text[64];
	ck_assert(mt_open_dm(&b2, &f, text, sizeof(text)));
	ck_assert_str_eq(text, "for b2");
	mc_frame_free(&f);
	ck_assert(mt_quiet(&b1, 300, true));

	/* Member key: one of b1/b2 claims it, never both. */
	struct mt_peer bm = b1;
	memcpy(&bm.id, &ids[1], sizeof(ids[1]));
	bm.is_session = false;
	char *nonce, *ct;
	ck_assert(mc_encrypt_dm(&a.id, ids[1].pk_hex, "m", 1, &nonce, &ct));
	struct mc_send_opts o = { .id = "x1", .target_spec = ids[1].pk_hex, .priority = "now",
				  .nonce = nonce, .ciphertext = ct };
	char *frame = mc_send(&o);
	ck_assert(mt_send_raw(&a, frame));
	free(frame);
	free(nonce);
	free(ct);
	ck_assert(mt_wait(&a, MC_ACK, &ack, 10000));
	ck_assert(ack.ack.queued);
	mc_frame_free(&ack);
	int got = 0;
	if (mt_wait_push(&b1, &f, 1500)) {
		got++;
		mc_frame_free(&f);
	}
	if (mt_wait_push(&b2, &f, 1500)) {
		got++;
		mc_frame_free(&f);
	}
	ck_assert_int_eq(got, 1);
	mt_close(&a);
	mt_close(&b1);
	mt_close(&b2);
}
END_TEST

static void set_status(struct mt_peer *p, const char *status)
{
	char *f = mc_set_status(status);
	ck_assert(mt_send_raw(p, f));
	free(f);
}

/* dnd holds next/low, never now; leaving dnd releases them at once (D4). */
START_TEST(priority_gating_dnd)
{
	struct mc_identity ids[2];
	mt_seed_members(itest_db_url(), "meshP", 2, ids);
	struct mt_peer a, b;
	join(&a, "meshP", 0, ids, NULL);
	join(&b, "meshP", 1, ids, NULL);
	set_status(&b, "dnd");
	/* set_status has no reply: a list_peers round trip orders it. */
	char *lp = mc_list_peers("sync");
	ck_assert(mt_send_raw(&b, lp));
	free(lp);
	struct mc_frame f;
	ck_assert(mt_wait(&b, MC_PEERS_LIST, &f, 5000));
	mc_frame_free(&f);

	mt_dm_ok(&a, &b, "held next", "next");
	mt_dm_ok(&a, &b, "held low", "low");
	mt_dm_ok(&a, &b, "urgent", "now");
	mt_expect_dm(&b, "urgent", "now");
	ck_assert(mt_quiet(&b, 500, true));
	set_status(&b, "idle");
	mt_expect_dm(&b, "held next", "next");
	mt_expect_dm(&b, "held low", "low");
	mt_close(&a);
	mt_close(&b);
}
END_TEST

/* working (from the transcript on the broker's host, D8) holds next; a
 * status that admits it releases it. */
START_TEST(priority_gating_working_from_jsonl)
{
	teardown();
	struct mt_projects pr;
	mt_projects_make(&pr, "-tmp-meshtest", true);
	char env[600];
	snprintf(env, sizeof(env), "CLAUDE_PROJECTS_DIR=%s", pr.dir);
	const char *more[] = { env, NULL };
	start(more);

	struct mc_identity ids[2];
	mt_seed_members(itest_db_url(), "meshW", 2, ids);
	struct mt_peer a, b;
	join(&a, "meshW", 0, ids, NULL);
	join(&b, "meshW", 1, ids, NULL);
	mt_dm_ok(&a, &b, "wait", "next");
	mt_dm_ok(&a, &b, "now!", "now");
	mt_expect_dm(&b, "now!", "now");
	ck_assert(mt_quiet(&b, 500, true));

	mt_projects_write(&pr, false);
	set_status(&b, "idle");
	mt_expect_dm(&b, "wait", "next");
	mt_close(&a);
	mt_close(&b);
	mt_projects_remove(&pr);
}
END_TEST

static void message_status(struct mt_peer *p, const char *id, struct mc_frame *f)
{
	char *req = mc_message_status(id, "ms-1");
	ck_assert(mt_send_raw(p, req));
	free(req);
	ck_assert(mt_next(p, f, 5000));
}

static void client_ack(struct mt_peer *p, const char *message_id)
{
	char *ca = mc_client_ack(NULL, message_id);
	ck_assert(mt_send_raw(p, ca));
	free(ca);
}

/* The DM `text` from `from` to `to`; its messageId goes to mid. */
static void dm_id(struct mt_peer *from, struct mt_peer *to, const char *text, const char *cid,
		  char mid[40])
{
	struct mc_frame ack;
	ck_assert(mt_dm(from, to, text, "now", cid, &ack));
	ck_assert(ack.ack.queued);
	snprintf(mid, 40, "%s", ack.ack.message_id);
	mc_frame_free(&ack);
}

/* The next push to p is the row `mid`; returns when it came (ms). */
static long long expect_push_of(struct mt_peer *p, const char *mid, int timeout_ms)
{
	struct mc_frame f;
	ck_assert_msg(mt_wait_push(p, &f, timeout_ms), "no push of %s", mid);
	long long at = httpc_now_ms();
	ck_assert_str_eq(f.push.message_id, mid);
	mc_frame_free(&f);
	return at;
}

/* A socket that has acked gets an un-acked push again a lease after its
 * claim, then after two leases, and no more than REDELIVERY_MAX_ATTEMPTS
 * times; a direct send to it afterwards still brings it (a trigger, §6.6),
 * before the new message.  message_status tells acked from held. */
START_TEST(redelivery_schedule_for_a_socket_that_acks)
{
	teardown();
	const char *more[] = { "CLAIM_LEASE_SECONDS=1", "REDELIVERY_MAX_ATTEMPTS=2", NULL };
	start(more);
	struct mc_identity ids[2];
	mt_seed_members(itest_db_url(), "meshL", 2, ids);
	struct mt_peer a, b;
	join(&a, "meshL", 0, ids, NULL);
	join(&b, "meshL", 1, ids, NULL);

	/* b shows it acks. */
	char first[40], unacked[40];
	dm_id(&a, &b, "first", "c-first", first);
	expect_push_of(&b, first, 5000);
	client_ack(&b, first);

	dm_id(&a, &b, "unacked", "c-unacked", unacked);
	long long t0 = expect_push_of(&b, unacked, 5000);
	long long t1 = expect_push_of(&b, unacked, 5000) - t0;
	long long t2 = expect_push_of(&b, unacked, 6000) - t0;
	/* Expected at 1.1 s and 3.2 s (lease, then two leases, each + 100 ms). */
	fprintf(stderr, "redelivery: +%lld ms, +%lld ms\n", t1, t2);
	ck_assert_int_ge(t1, 1000);
	ck_assert_int_le(t1, 2600);
	ck_assert_int_ge(t2 - t1, 2000);
	ck_assert_int_le(t2 - t1, 3600);
	/* A third would come 4.1 s after the second. */
	ck_assert(mt_quiet(&b, 5500, true));

	char again[40];
	dm_id(&a, &b, "again", "c-again", again);
	expect_push_of(&b, unacked, 5000);
	expect_push_of(&b, again, 5000);
	client_ack(&b, again);

	struct mc_frame f;
	message_status(&a, unacked, &f);
	ck_assert_int_eq(f.type, MC_MESSAGE_STATUS_RESULT);
	ck_assert_ptr_null(f.bad_field);
	ck_assert(!f.message_status.delivered);
	ck_assert_str_eq(json_string_value(json_object_get(f.json, "_reqId")), "ms-1");
	json_t *r0 = json_array_get(f.message_status.recipients, 0);
	ck_assert_str_eq(json_string_value(json_object_get(r0, "status")), "held");
	ck_assert_str_eq(json_string_value(json_object_get(r0, "pubkey")), b.id.pk_hex);
	mc_frame_free(&f);

	client_ack(&b, unacked);
	/* The ack is fire-and-forget: poll message_status until it shows. */
	bool delivered = false;
	for (int i = 0; i < 50 && !delivered; i++) {
		message_status(&a, unacked, &f);
		delivered = f.message_status.delivered;
		if (delivered) {
			ck_assert_int_eq(strlen(f.message_status.delivered_at), 24);
			json_t *r = json_array_get(f.message_status.recipients, 0);
			ck_assert_str_eq(json_string_value(json_object_get(r, "status")), "delivered");
		}
		mc_frame_free(&f);
		if (!delivered)
			usleep(100 * 1000);
	}
	ck_assert(delivered);
	ck_assert(mt_quiet(&b, 2500, true)); /* acked: never again */
	mt_close(&a);
	mt_close(&b);
}
END_TEST

/* A socket that never sends client_ack (the legacy ws-client) gets a held
 * push again only on a trigger: a direct send to it, which delivers the
 * held one first.  No timer: three leases of silence. */
START_TEST(no_timer_redelivery_for_a_socket_that_never_acks)
{
	teardown();
	const char *more[] = { "CLAIM_LEASE_SECONDS=1", NULL };
	start(more);
	struct mc_identity ids[2];
	mt_seed_members(itest_db_url(), "meshN", 2, ids);
	struct mt_peer a, b;
	join(&a, "meshN", 0, ids, NULL);
	join(&b, "meshN", 1, ids, NULL);

	char held[40], next[40];
	dm_id(&a, &b, "held", "c-held", held);
	expect_push_of(&b, held, 5000);
	ck_assert(mt_quiet(&b, 3500, true));
	dm_id(&a, &b, "next", "c-next", next);
	expect_push_of(&b, held, 5000);
	expect_push_of(&b, next, 5000);
	ck_assert(mt_quiet(&b, 3500, true));
	/* And again on the next trigger: both leases ran out meanwhile. */
	char third[40];
	dm_id(&a, &b, "third", "c-third", third);
	expect_push_of(&b, held, 5000);
	expect_push_of(&b, next, 5000);
	expect_push_of(&b, third, 5000);
	mt_close(&a);
	mt_close(&b);
}
END_TEST

START_TEST(send_rejections)
{
	teardown();
	const char *more[] = { "SEND_RATE_LIMIT_PER_MIN=60", "SEND_RATE_BURST=3", NULL };
	start(more);
	struct mc_identity ids[2];
	mt_seed_members(itest_db_url(), "meshR", 2, ids);
	struct mt_peer a, b;
	join(&a, "meshR", 0, ids, NULL);
	join(&b, "meshR", 1, ids, NULL);
	struct mc_frame ack;
	/* Over MAX_MESSAGE_BYTES: an error ack, not a close (Q1). */
	size_t n = 70000;
	char *big = malloc(n + 1);
	memset(big, 'A', n);
	big[n] = '\0';
	struct mc_send_opts o = { .id = "big", .target_spec = b.id.pk_hex, .priority = "now",
				  .nonce = "n", .ciphertext = big };
	char *frame = mc_send(&o);
	ck_assert(mt_send_raw(&a, frame));
	free(frame);
	free(big);
	ck_assert(mt_wait(&a, MC_ACK, &ack, 5000));
	ck_assert_str_eq(ack.ack.id, "big");
	ck_assert_str_eq(ack.ack.message_id, "");
	ck_assert(!ack.ack.queued);
	char want[128];
	snprintf(want, sizeof(want), "payload too large: %zu bytes > MAX_MESSAGE_BYTES=65536", n + 1 + 64);
	ck_assert_str_eq(ack.ack.error, want);
	mc_frame_free(&ack);
	/* Q11: a missing field is an error ack. */
	ck_assert(mt_send_raw(&a, "{\"type\":\"send\",\"id\":\"q\",\"targetSpec\":\"*\",\"nonce\":\"\"}"));
	ck_assert(mt_wait(&a, MC_ACK, &ack, 5000));
	ck_assert_str_eq(ack.ack.error, "invalid: ciphertext");
	mc_frame_free(&ack);
	/* The burst of 3 is spent (two sends above); the next is rate limited. */
	ck_assert(mt_multicast(&a, "*", "x", "now", &ack));
	ck_assert(ack.ack.queued);
	mc_frame_free(&ack);
	ck_assert(mt_multicast(&a, "*", "y", "now", &ack));
	ck_assert(!ack.ack.queued);
	ck_assert_str_eq(ack.ack.error, "rate_limit: max 60 msg/min (burst 3) \xe2\x80\x94 slow down");
	mc_frame_free(&ack);
	ck_assert_int_eq(itest_metric(B.port, "broker_messages_rejected_total{reason=\"rate_limit\"}"), 1);
	ck_assert_int_eq(itest_metric(B.port, "broker_messages_rejected_total{reason=\"too_large\"}"), 1);
	mt_close(&a);
	mt_close(&b);
}
END_TEST

START_TEST(presence_requests_and_audit_chain)
{
	struct mc_identity ids[2];
	mt_seed_members(itest_db_url(), "meshQ", 2, ids);
	struct mt_peer a, b;
	const char *ops[] = { "ops", NULL };
	join(&a, "meshQ", 0, ids, ops);
	join(&b, "meshQ", 1, ids, NULL);
	char *f1 = mc_join_group("eng", "lead"), *f2 = mc_leave_group("ops"),
	     *f3 = mc_set_summary("refactoring"), *f4 = mc_list_peers("pl-1");
	ck_assert(mt_send_raw(&a, f1) && mt_send_raw(&a, f2) && mt_send_raw(&a, f3) && mt_send_raw(&a, f4));
	free(f1);
	free(f2);
	free(f3);
	free(f4);
	struct mc_frame f;
	ck_assert(mt_wait(&a, MC_PEERS_LIST, &f, 5000));
	ck_assert_ptr_null(f.bad_field);
	ck_assert_str_eq(f.req_id, "pl-1");
	ck_assert_int_eq(json_array_size(f.peers_list.peers), 2);
	json_t *me = json_array_get(f.peers_list.peers, 0);
	ck_assert_str_eq(json_string_value(json_object_get(me, "pubkey")), a.id.pk_hex);
	ck_assert_str_eq(json_string_value(json_object_get(me, "displayName")), "a");
	ck_assert_str_eq(json_string_value(json_object_get(me, "summary")), "refactoring");
	ck_assert_str_eq(json_string_value(json_object_get(me, "peerRole")), "control-plane");
	ck_assert_str_eq(json_string_value(json_object_get(me, "status")), "idle");
	char *groups = json_dumps(json_object_get(me, "groups"), JSON_COMPACT);
	ck_assert_str_eq(groups, "[{\"name\":\"eng\",\"role\":\"lead\"}]");
	free(groups);
	json_t *other = json_array_get(f.peers_list.peers, 1);
	ck_assert(json_is_null(json_object_get(other, "summary")));
	mc_frame_free(&f);

	struct mc_frame ack;
	mt_dm_ok(&a, &b, "one", "now");
	ck_assert(mt_multicast(&b, "*", "two", "next", &ack));
	mc_frame_free(&ack);
	mt_close(&a);
	mt_close(&b);
	/* Audit rows are written behind; stopping the broker flushes them. */
	itest_broker_stop(&B);
	char n[32];
	ck_assert(pgtest_scalar(itest_db_url(), "SELECT count(*) FROM mesh.audit_log WHERE mesh_id = 'meshQ'", n, sizeof(n)));
	ck_assert_str_eq(n, "4"); /* 2 peer_joined + 2 message_sent */
	PGconn *pg = PQconnectdb(itest_db_url());
	long long entries = 0, broken = 0;
	ck_assert(audit_verify_chain(pg, "meshQ", &entries, &broken));
	ck_assert_int_eq(entries, 4);
	ck_assert_int_eq(broken, -1);
	/* No message content in the audit payloads. */
	ck_assert(pgtest_scalar(itest_db_url(), "SELECT count(*) FROM mesh.audit_log WHERE payload::text LIKE '%ciphertext%' OR payload::text LIKE '%nonce%'", n, sizeof(n)));
	ck_assert_str_eq(n, "0");
	PQfinish(pg);
	start(NULL); /* the fixture stops a broker */
}
END_TEST

/* §7.1: working without an update for STATUS_TTL_SECONDS falls back to idle. */
START_TEST(ttl_sweep_flips_working_to_idle)
{
	teardown();
	const char *more[] = { "STATUS_TTL_SECONDS=1", "TTL_SWEEP_INTERVAL_SECONDS=1", NULL };
	start(more);
	struct mc_identity ids[2];
	mt_seed_members(itest_db_url(), "meshT", 2, ids);
	struct mt_peer a, b;
	join(&a, "meshT", 0, ids, NULL);
	join(&b, "meshT", 1, ids, NULL);
	set_status(&b, "working");
	ck_assert_str_eq(mt_peer_status(&b, b.id.pk_hex), "working");
	long long deadline = httpc_now_ms() + 10000;
	while (strcmp(mt_peer_status(&a, b.id.pk_hex), "idle") != 0 && httpc_now_ms() < deadline)
		usleep(200 * 1000);
	ck_assert_str_eq(mt_peer_status(&a, b.id.pk_hex), "idle");
	ck_assert_int_ge(itest_metric(B.port, "broker_ttl_sweeps_total{flipped=\"1\"}"), 1);
	char st[32];
	ck_assert(pgtest_scalar(itest_db_url(), "SELECT status || '/' || status_source FROM mesh.presence"
				" WHERE member_id = 'meshT-m1'", st, sizeof(st)));
	ck_assert_str_eq(st, "idle/jsonl");
	mt_close(&a);
	mt_close(&b);
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
	tcase_add_test(tc, multicast_targets_and_isolation);
	tcase_add_test(tc, dm_to_session_and_member_keys);
	tcase_add_test(tc, priority_gating_dnd);
	tcase_add_test(tc, priority_gating_working_from_jsonl);
	tcase_add_test(tc, ack_is_readable_before_the_push_it_caused);
	tcase_add_test(tc, redelivery_schedule_for_a_socket_that_acks);
	tcase_add_test(tc, no_timer_redelivery_for_a_socket_that_never_acks);
	tcase_add_test(tc, send_rejections);
	tcase_add_test(tc, presence_requests_and_audit_chain);
	tcase_add_test(tc, ttl_sweep_flips_working_to_idle);
	suite_add_tcase(s, tc);
	return check_run(s);
}
