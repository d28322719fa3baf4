/* Integration: systemd notifications (issue 16).  meshd runs with
 * NOTIFY_SOCKET pointing at a datagram socket of the test's own: READY=1
 * comes once /health answers, nothing else unasked, STOPPING=1 on SIGTERM;
 * with WATCHDOG_USEC set, WATCHDOG=1 at half that period.  Skipped (77)
 * when meshd was built without libsystemd. */
#include "config.h"

#include <check.h>

#include "check_run.h"
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "httpc.h"
#include "itest.h"

static char dir[64], sock_path[96], notify_env[160];

/* A datagram socket bound to a fresh path, as systemd's would be. */
static int notify_socket(void)
{
	snprintf(dir, sizeof(dir), "/tmp/mnotifyXXXXXX");
	ck_assert(mkdtemp(dir));
	snprintf(sock_path, sizeof(sock_path), "%s/notify", dir);
	snprintf(notify_env, sizeof(notify_env), "NOTIFY_SOCKET=%s", sock_path);
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(fd, 0);
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", sock_path);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	return fd;
}

static void notify_socket_close(int fd)
{
	close(fd);
	unlink(sock_path);
	rmdir(dir);
}

/* The next datagram, as a string; false when none comes in timeout_ms. */
static bool next_state(int fd, char *out, size_t cap, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	if (poll(&p, 1, timeout_ms) != 1)
		return false;
	ssize_t n = recv(fd, out, cap - 1, 0);
	ck_assert_int_gt(n, 0);
	out[n] = '\0';
	return true;
}

START_TEST(ready_after_health_and_stopping_on_sigterm)
{
	int fd = notify_socket();
	struct broker B;
	const char *env[] = { notify_env, NULL };
	itest_broker_start(&B, env);
	char st[256];
	ck_assert(next_state(fd, st, sizeof(st), 15000));
	ck_assert_str_eq(st, "READY=1");
	/* Ready means serving: /health answers at once. */
	struct http_response r;
	itest_get(B.port, "/health", &r);
	ck_assert_int_eq(r.status, 200);
	httpc_response_free(&r);
	ck_assert_msg(!next_state(fd, st, sizeof(st), 500), "unasked: %s", st);
	itest_broker_stop(&B);
	ck_assert(next_state(fd, st, sizeof(st), 1000));
	ck_assert_str_eq(st, "STOPPING=1");
	ck_assert(!next_state(fd, st, sizeof(st), 100));
	notify_socket_close(fd);
}
END_TEST

/* WATCHDOG_USEC=400000: a WATCHDOG=1 every 200 ms after READY=1. */
START_TEST(watchdog_at_half_its_period)
{
	int fd = notify_socket();
	struct broker B;
	const char *env[] = { notify_env, "WATCHDOG_USEC=400000", NULL };
	itest_broker_start(&B, env);
	char st[256];
	ck_assert(next_state(fd, st, sizeof(st), 15000));
	ck_assert_str_eq(st, "READY=1");
	long long t0 = httpc_now_ms();
	int pets = 0;
	while (httpc_now_ms() - t0 < 1000 && next_state(fd, st, sizeof(st), 400)) {
		ck_assert_str_eq(st, "WATCHDOG=1");
		pets++;
	}
	/* 5 or 6 in a second (one at once, then every 200 ms), give or take
	 * a scheduler's delay. */
	ck_assert_msg(pets >= 4 && pets <= 7, "%d WATCHDOG=1 in a second", pets);
	itest_broker_stop(&B);
	bool stopping = false;
	while (next_state(fd, st, sizeof(st), 1000) && !stopping)
		stopping = strcmp(st, "STOPPING=1") == 0;
	ck_assert(stopping);
	notify_socket_close(fd);
}
END_TEST

int main(void)
{
#ifndef HAVE_LIBSYSTEMD
	fprintf(stderr, "check_notify: meshd built without libsystemd, skipped\n");
	return 77;
#endif
	Suite *s = suite_create("notify");
	TCase *tc = tcase_create("notify");
	tcase_add_unchecked_fixture(tc, itest_cluster_setup, itest_cluster_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, ready_after_health_and_stopping_on_sigterm);
	tcase_add_test(tc, watchdog_at_half_its_period);
	suite_add_tcase(s, tc);
	return check_run(s);
}
