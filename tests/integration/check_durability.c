/* Integration: nothing acknowledged is lost (D3).  With DMs in flight the
 * broker is killed with SIGKILL, restarted on the same database, every peer
 * reconnects, and every message that was acked arrives exactly as sent;
 * and the same through two PostgreSQL outages and a kill (issue 15). */
#include "config.h"

#include <check.h>

#include "check_run.h"
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "itest.h"
#include "meshtest.h"

#define PEERS 4
#define PER_SENDER 150
#define KILL_AFTER_ACKS 120

struct sent {
	char id[40];      /* broker messageId, "" until acked */
	char text[32];
	int to;
	bool acked;
};

static struct sent sent[PEERS][PER_SENDER];
static int next_ack[PEERS];
/* received[i] holds "messageId text" lines seen by peer i */
static char *received[PEERS];
static size_t received_len[PEERS];

static char workers_env[64];

static void start(struct broker *b, const char *url)
{
	const char *w = getenv("MESHD_TEST_WORKERS");
	snprintf(workers_env, sizeof(workers_env), "BROKER_WORKERS=%s", w ? w : "4");
	const char *env[] = { workers_env, "SEND_RATE_LIMIT_PER_MIN=0", "CLAIM_LEASE_SECONDS=2",
			      NULL };
	ck_assert(broker_start(b, url, env));
	ck_assert(itest_wait_status(b->port, "/health", 200, 15000));
}

static void remember(int i, const char *mid, const char *text)
{
	size_t add = strlen(mid) + strlen(text) + 3;
	received[i] = realloc(received[i], received_len[i] + add + 1);
	received_len[i] += (size_t)sprintf(received[i] + received_len[i], "%s %s\n", mid, text);
}

/* Reads whatever peer i has (acks, pushes) until timeout or the socket dies;
 * pushes are decrypted, remembered and client-acked. */
static int pump(struct mt_peer *p, int i, int timeout_ms)
{
	int frames = 0;
	struct mc_frame f;
	while (mt_next(p, &f, timeout_ms)) {
		frames++;
		if (f.type == MC_ACK && f.ack.queued && next_ack[i] < PER_SENDER) {
			/* Acks come back in send order: one socket, one shard, FIFO commits. */
			struct sent *s = &sent[i][next_ack[i]++];
			snprintf(s->id, sizeof(s->id), "%s", f.ack.message_id);
			s->acked = true;
		} else if (f.type == MC_PUSH && !f.push.system) {
			char text[64];
			ck_assert(mt_open_dm(p, &f, text, sizeof(text)));
			remember(i, f.push.message_id, text);
			char *ca = mc_client_ack(f.push.client_message_id, f.push.message_id);
			(void)mt_send_raw(p, ca);
			free(ca);
		}
		mc_frame_free(&f);
		timeout_ms = 0;
	}
	return frames;
}

static void connect_all(struct mt_peer *p, int port, struct mc_identity *ids)
{
	for (int i = 0; i < PEERS; i++) {
		char mid[32], name[8];
		snprintf(mid, sizeof(mid), "dur-m%d", i);
		snprintf(name, sizeof(name), "p%d", i);
		ck_assert(mt_connect(&p[i], port, "meshD", mid, &ids[i], name, NULL));
	}
}

/* Every "<messageId> <text>" line received_by[i] holds names, by its text
 * "<letter>-<sender>-<n>", a send that went to peer i. */
static void assert_addressed(char *const *received_by, int npeers, char letter,
			     int (*to)(int from, int k))
{
	for (int i = 0; i < npeers; i++)
		for (const char *line = received_by[i]; line && *line;) {
			const char *nl = strchr(line, '\n');
			const char *sp = strchr(line, ' ');
			ck_assert(sp && nl);
			char c;
			int from, k;
			ck_assert_int_eq(sscanf(sp + 1, "%c-%d-%d", &c, &from, &k), 3);
			ck_assert_int_eq(c, letter);
			ck_assert_int_eq(to(from, k), i);
			line = nl + 1;
		}
}

static int sigkill_to(int from, int k)
{
	return sent[from][k].to;
}

START_TEST(acked_messages_survive_sigkill)
{
	char url[512];
	ck_assert(pgtest_create_db(&itest_pg, "durability", url, sizeof(url)));
	struct broker b;
	start(&b, url);
	struct mc_identity ids[PEERS];
	mt_seed_mesh(url, "meshD", "durable");
	for (int i = 0; i < PEERS; i++) {
		char mid[32];
		snprintf(mid, sizeof(mid), "dur-m%d", i);
		mt_seed_member(url, "meshD", mid, mid, &ids[i]);
	}
	struct mt_peer p[PEERS];
	connect_all(p, b.port, ids);
	/* The last peer goes away (its lease keeps it a valid DM target for the
	 * grace period): everything sent to it is queued and acked, never pushed
	 * before the kill, so its delivery after the restart comes from the
	 * database alone. */
	const int away = PEERS - 1;
	mt_close(&p[away]);

	/* Every peer pipelines its DMs to the others, then acks are collected
	 * until enough are in, and the broker is killed mid-stream. */
	for (int k = 0; k < PER_SENDER; k++) {
		for (int i = 0; i < PEERS; i++) {
			if (i == away)
				continue;
			struct sent *s = &sent[i][k];
			s->to = (i + 1 + k % (PEERS - 1)) % PEERS;
			snprintf(s->text, sizeof(s->text), "m-%d-%d", i, k);
			char *nonce, *ct;
			ck_assert(mc_encrypt_dm(&p[i].id, p[s->to].id.pk_hex, s->text, strlen(s->text),
						&nonce, &ct));
			char id[16];
			snprintf(id, sizeof(id), "%d-%d", i, k);
			struct mc_send_opts o = { .id = id, .target_spec = p[s->to].id.pk_hex,
						  .priority = "now", .nonce = nonce, .ciphertext = ct,
						  .client_message_id = s->text };
			char *frame = mc_send(&o);
			ck_assert(mt_send_raw(&p[i], frame));
			free(frame);
			free(nonce);
			free(ct);
		}
	}
	int acked = 0;
	long long deadline = httpc_now_ms() + 20000;
	while (acked < KILL_AFTER_ACKS && httpc_now_ms() < deadline) {
		acked = 0;
		for (int i = 0; i < PEERS; i++) {
			if (i == away)
				continue;
			pump(&p[i], i, 10);
			acked += next_ack[i];
		}
	}
	ck_assert_int_ge(acked, KILL_AFTER_ACKS);
	ck_assert_int_eq(broker_stop(&b, SIGKILL, 5000), 128 + SIGKILL);
	size_t before_kill = 0;
	for (int i = 0; i < PEERS; i++)
		for (char *l = received[i]; l && (l = strchr(l, '\n')); l++)
			before_kill++;
	/* Whatever the broker wrote before dying is still in our sockets. */
	for (int i = 0; i < PEERS; i++) {
		if (i == away)
			continue;
		pump(&p[i], i, 200);
		mt_close(&p[i]);
	}
	int to_away = 0;
	for (int i = 0; i < PEERS; i++)
		for (int k = 0; k < PER_SENDER; k++)
			to_away += sent[i][k].acked && sent[i][k].to == away;
	ck_assert_int_gt(to_away, 0);
	ck_assert_ptr_null(received[away]);
	broker_cleanup(&b);

	start(&b, url);
	connect_all(p, b.port, ids);
	/* Wait until every acked message has arrived at its recipient. */
	deadline = httpc_now_ms() + 30000;
	int missing;
	do {
		for (int i = 0; i < PEERS; i++)
			pump(&p[i], i, 50);
		missing = 0;
		for (int i = 0; i < PEERS; i++)
			for (int k = 0; k < PER_SENDER; k++) {
				struct sent *s = &sent[i][k];
				char line[96];
				snprintf(line, sizeof(line), "%.39s %.31s\n", s->id, s->text);
				if (s->acked && !(received[s->to] && strstr(received[s->to], line)))
					missing++;
			}
	} while (missing > 0 && httpc_now_ms() < deadline);
	ck_assert_msg(missing == 0, "%d acked messages never delivered", missing);
	int total_acked = 0;
	for (int i = 0; i < PEERS; i++)
		total_acked += next_ack[i];
	fprintf(stderr, "durability: %d of %d sends acked (%d to the absent peer), %zu pushes seen"
		" before the kill\n", total_acked, (PEERS - 1) * PER_SENDER, to_away, before_kill);

	/* Nothing arrived that was not sent, or at the wrong peer. */
	assert_addressed(received, PEERS, 'm', sigkill_to);
	for (int i = 0; i < PEERS; i++) {
		mt_close(&p[i]);
		free(received[i]);
	}
	itest_broker_stop(&b);
}
END_TEST

/* ---- faults: PostgreSQL stopped twice, the broker killed once ---------- */

#define F_PEERS 3
#define F_PER_ROUND 40
#define F_ROUNDS 4

struct fsend {
	char mid[40];
	char text[32];
	int to;
	bool acked, refused;
};

static struct fsend fs[F_PEERS][F_ROUNDS * F_PER_ROUND];
static int fs_n[F_PEERS];
static char *frecv[F_PEERS];
static size_t frecv_len[F_PEERS];

static void f_start(struct broker *b, const char *url)
{
	const char *w = getenv("MESHD_TEST_WORKERS");
	snprintf(workers_env, sizeof(workers_env), "BROKER_WORKERS=%s", w ? w : "4");
	const char *env[] = { workers_env, "SEND_RATE_LIMIT_PER_MIN=0", "CLAIM_LEASE_SECONDS=2",
			      "DB_PING_INTERVAL_SECONDS=1", NULL };
	ck_assert(broker_start(b, url, env));
	ck_assert(itest_wait_status(b->port, "/health", 200, 15000));
}

static void f_connect(struct mt_peer *p, int port, struct mc_identity *ids)
{
	for (int i = 0; i < F_PEERS; i++) {
		char mid[32], name[8];
		snprintf(mid, sizeof(mid), "flt-m%d", i);
		snprintf(name, sizeof(name), "f%d", i);
		ck_assert(mt_connect(&p[i], port, "meshF", mid, &ids[i], name, NULL));
	}
}

/* One round: every peer pipelines F_PER_ROUND DMs to the others; the
 * send's id is "<peer>-<n>", its text "f-<peer>-<n>". */
static void f_round(struct mt_peer *p)
{
	for (int k = 0; k < F_PER_ROUND; k++)
		for (int i = 0; i < F_PEERS; i++) {
			int n = fs_n[i]++;
			struct fsend *s = &fs[i][n];
			s->to = (i + 1 + k % (F_PEERS - 1)) % F_PEERS;
			snprintf(s->text, sizeof(s->text), "f-%d-%d", i, n);
			char *nonce, *ct;
			ck_assert(mc_encrypt_dm(&p[i].id, p[s->to].id.pk_hex, s->text, strlen(s->text),
						&nonce, &ct));
			char id[16];
			snprintf(id, sizeof(id), "%d-%d", i, n);
			struct mc_send_opts o = { .id = id, .target_spec = p[s->to].id.pk_hex,
						  .priority = "now", .nonce = nonce, .ciphertext = ct,
						  .client_message_id = s->text };
			char *frame = mc_send(&o);
			(void)mt_send_raw(&p[i], frame); /* a dead broker is part of the test */
			free(frame);
			free(nonce);
			free(ct);
		}
}

/* Reads every peer for about ms: acks are matched to their send by id,
 * pushes decrypted, remembered and client-acked. */
static void f_pump(struct mt_peer *p, int ms)
{
	long long deadline = httpc_now_ms() + ms;
	do {
		for (int i = 0; i < F_PEERS; i++) {
			struct mc_frame f;
			while (mt_next(&p[i], &f, 5)) {
				int from, n;
				if (f.type == MC_ACK && f.ack.id && sscanf(f.ack.id, "%d-%d", &from, &n) == 2) {
					ck_assert_int_eq(from, i);
					struct fsend *s = &fs[i][n];
					if (f.ack.queued) {
						s->acked = true;
						snprintf(s->mid, sizeof(s->mid), "%s", f.ack.message_id);
					} else {
						s->refused = true;
					}
				} else if (f.type == MC_PUSH && !f.push.system) {
					char text[64];
					ck_assert(mt_open_dm(&p[i], &f, text, sizeof(text)));
					size_t add = strlen(f.push.message_id) + strlen(text) + 3;
					frecv[i] = realloc(frecv[i], frecv_len[i] + add + 1);
					frecv_len[i] += (size_t)sprintf(frecv[i] + frecv_len[i], "%s %s\n",
									f.push.message_id, text);
					char *ca = mc_client_ack(f.push.client_message_id, f.push.message_id);
					(void)mt_send_raw(&p[i], ca);
					free(ca);
				}
				mc_frame_free(&f);
			}
		}
	} while (httpc_now_ms() < deadline);
}

/* Sends of the first `rounds` rounds with no answer yet. */
static int f_unanswered(int rounds)
{
	int n = 0;
	for (int i = 0; i < F_PEERS; i++)
		for (int k = 0; k < rounds * F_PER_ROUND; k++)
			n += !fs[i][k].acked && !fs[i][k].refused;
	return n;
}

static int f_missing(void)
{
	int missing = 0;
	for (int i = 0; i < F_PEERS; i++)
		for (int k = 0; k < fs_n[i]; k++) {
			const struct fsend *s = &fs[i][k];
			char line[96];
			snprintf(line, sizeof(line), "%.39s %.31s\n", s->mid, s->text);
			if (s->acked && !(frecv[s->to] && strstr(frecv[s->to], line)))
				missing++;
		}
	return missing;
}

static void f_wait_answers(struct mt_peer *p, int rounds)
{
	long long deadline = httpc_now_ms() + 30000;
	while (f_unanswered(rounds) > 0 && httpc_now_ms() < deadline)
		f_pump(p, 100);
	ck_assert_int_eq(f_unanswered(rounds), 0);
}

static int fault_to(int from, int k)
{
	return fs[from][k].to;
}

/* DMs run while PostgreSQL is stopped and started twice (once with sends
 * held through the outage, once stopped under a burst in flight), then the
 * broker is killed with SIGKILL mid-stream and restarted: every DM acked
 * as queued is delivered at least once, to its recipient, and nothing
 * arrives that was not sent to that peer. */
START_TEST(acked_messages_survive_faults)
{
	char url[512];
	ck_assert(pgtest_create_db(&itest_pg, "faults", url, sizeof(url)));
	struct broker b;
	f_start(&b, url);
	struct mc_identity ids[F_PEERS];
	mt_seed_mesh(url, "meshF", "faults");
	for (int i = 0; i < F_PEERS; i++) {
		char mid[32];
		snprintf(mid, sizeof(mid), "flt-m%d", i);
		mt_seed_member(url, "meshF", mid, mid, &ids[i]);
	}
	struct mt_peer p[F_PEERS];
	f_connect(p, b.port, ids);

	/* 1: a round, stopped mid-way; a round while down; back. */
	f_round(p);
	f_pump(p, 50);
	ck_assert(pgtest_stop(&itest_pg));
	f_round(p);
	f_pump(p, 500);
	ck_assert(pgtest_restart(&itest_pg));
	f_wait_answers(p, 2);
	/* 2: stopped and started under a burst in flight. */
	f_round(p);
	ck_assert(pgtest_stop(&itest_pg));
	ck_assert(pgtest_restart(&itest_pg));
	f_wait_answers(p, 3);
	/* 3: killed mid-stream (once the first of the round is acked),
	 * restarted on the same database. */
	f_round(p);
	long long until = httpc_now_ms() + 10000;
	while (f_unanswered(4) == F_PEERS * F_PER_ROUND && httpc_now_ms() < until)
		f_pump(p, 1);
	ck_assert_int_eq(broker_stop(&b, SIGKILL, 5000), 128 + SIGKILL);
	f_pump(p, 200); /* what the broker wrote before dying */
	for (int i = 0; i < F_PEERS; i++)
		mt_close(&p[i]);
	broker_cleanup(&b);
	f_start(&b, url);
	f_connect(p, b.port, ids);
	long long deadline = httpc_now_ms() + 30000;
	while (f_missing() > 0 && httpc_now_ms() < deadline)
		f_pump(p, 100);
	int acked = 0, refused = 0, lost_at_kill = 0, sent_n = 0;
	for (int i = 0; i < F_PEERS; i++)
		for (int k = 0; k < fs_n[i]; k++) {
			sent_n++;
			acked += fs[i][k].acked;
			refused += fs[i][k].refused;
			lost_at_kill += !fs[i][k].acked && !fs[i][k].refused;
		}
	fprintf(stderr, "faults: %d sends, %d acked, %d refused, %d unanswered at the kill\n",
		sent_n, acked, refused, lost_at_kill);
	ck_assert_msg(f_missing() == 0, "%d acked messages never delivered", f_missing());
	ck_assert_int_gt(acked, 3 * F_PEERS * F_PER_ROUND / 2);
	assert_addressed(frecv, F_PEERS, 'f', fault_to);
	for (int i = 0; i < F_PEERS; i++) {
		mt_close(&p[i]);
		free(frecv[i]);
	}
	itest_broker_stop(&b);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("durability");
	TCase *tc = tcase_create("durability");
	tcase_add_unchecked_fixture(tc, itest_cluster_setup, itest_cluster_teardown);
	tcase_set_timeout(tc, 240);
	tcase_add_test(tc, acked_messages_survive_sigkill);
	tcase_add_test(tc, acked_messages_survive_faults);
	suite_add_tcase(s, tc);
	return check_run(s);
}
