/* Unit tests: the cross-thread inbox (src/inbox.c). */
#include "config.h"

#include <check.h>

#include "check_run.h"
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>

#include <string.h>

#include <event2/buffer.h>

#include "meshd/inbox.h"
#include "meshd/metrics.h"

struct test_msg {
	struct msg hdr;
	int producer;
	int seq;
};

#define PRODUCERS 4
#define PER_PRODUCER 20000

struct producer_arg {
	struct inbox *in;
	int id;
};

static void *produce(void *p)
{
	struct producer_arg *a = p;
	for (int i = 0; i < PER_PRODUCER; i++) {
		struct test_msg *m = malloc(sizeof(*m));
		m->hdr.type = MSG_TEST;
		m->producer = a->id;
		m->seq = i;
		inbox_push(a->in, &m->hdr);
	}
	return NULL;
}

/* Several threads push while the owner blocks on the eventfd and drains:
 * every message arrives exactly once, each producer's in order, and the
 * owner never misses a wake-up (it would hang in poll otherwise). */
START_TEST(handoff_across_threads)
{
	struct inbox in;
	ck_assert(inbox_init(&in));
	pthread_t t[PRODUCERS];
	struct producer_arg args[PRODUCERS];
	for (int i = 0; i < PRODUCERS; i++) {
		args[i] = (struct producer_arg){ &in, i };
		ck_assert_int_eq(pthread_create(&t[i], NULL, produce, &args[i]), 0);
	}
	int next[PRODUCERS] = { 0 };
	int received = 0, wakeups = 0;
	while (received < PRODUCERS * PER_PRODUCER) {
		struct pollfd pfd = { .fd = inbox_fd(&in), .events = POLLIN };
		ck_assert_int_eq(poll(&pfd, 1, 10000), 1); /* 10 s: a lost wake-up fails here */
		wakeups++;
		struct msg *m = inbox_take_all(&in);
		while (m) {
			struct msg *n = m->next;
			struct test_msg *tm = (struct test_msg *)m;
			ck_assert_int_eq(tm->hdr.type, MSG_TEST);
			ck_assert_int_eq(tm->seq, next[tm->producer]);
			next[tm->producer]++;
			received++;
			free(tm);
			m = n;
		}
	}
	for (int i = 0; i < PRODUCERS; i++)
		pthread_join(t[i], NULL);
	ck_assert_int_eq(received, PRODUCERS * PER_PRODUCER);
	ck_assert_ptr_null(inbox_take_all(&in));
	ck_assert_int_le(wakeups, received);
	inbox_destroy(&in);
}
END_TEST

/* The eventfd is written once per empty -> non-empty transition. */
START_TEST(one_wakeup_per_burst)
{
	metrics_reset();
	struct inbox in;
	ck_assert(inbox_init(&in));
	struct test_msg m[3];
	for (int i = 0; i < 3; i++) {
		m[i].hdr.type = MSG_TEST;
		m[i].seq = i;
		inbox_push(&in, &m[i].hdr);
	}
	struct pollfd pfd = { .fd = inbox_fd(&in), .events = POLLIN };
	ck_assert_int_eq(poll(&pfd, 1, 0), 1);
	struct msg *all = inbox_take_all(&in);
	ck_assert_ptr_eq(all, &m[0].hdr);
	ck_assert_ptr_eq(all->next, &m[1].hdr);
	ck_assert_ptr_eq(all->next->next, &m[2].hdr);
	ck_assert_ptr_null(all->next->next->next);
	/* Drained: not readable any more. */
	ck_assert_int_eq(poll(&pfd, 1, 0), 0);
	/* The wake-up found 3 queued (meshd_inbox_take_messages). */
	struct evbuffer *b = evbuffer_new();
	metrics_render(b);
	evbuffer_add(b, "", 1);
	const char *text = (const char *)evbuffer_pullup(b, -1);
	ck_assert_ptr_nonnull(strstr(text, "meshd_inbox_take_messages_bucket{le=\"2\"} 0\n"
					   "meshd_inbox_take_messages_bucket{le=\"4\"} 1\n"));
	ck_assert_ptr_nonnull(strstr(text, "meshd_inbox_take_messages_sum 3\n"
					   "meshd_inbox_take_messages_count 1\n"));
	evbuffer_free(b);
	inbox_destroy(&in);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("inbox");
	TCase *tc = tcase_create("core");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, handoff_across_threads);
	tcase_add_test(tc, one_wakeup_per_burst);
	suite_add_tcase(s, tc);
	return check_run(s);
}
