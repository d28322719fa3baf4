/* itest — shared integration-test scaffolding; see itest.h. */
#include "config.h"

#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "itest.h"

struct pgtest itest_pg;
static char db_url[512];
static int db_seq;

void itest_cluster_setup(void)
{
	if (!pgtest_start(&itest_pg)) {
		fprintf(stderr, "itest: cannot start PostgreSQL\n");
		exit(1);
	}
}

void itest_cluster_teardown(void)
{
	pgtest_destroy(&itest_pg);
}

void itest_broker_start(struct broker *b, const char *const *extra_env)
{
	char name[64];
	/* Each forked test gets its own database: pid keeps names unique. */
	snprintf(name, sizeof(name), "t%d_%d", (int)getpid(), db_seq++);
	ck_assert_msg(pgtest_create_db(&itest_pg, name, db_url, sizeof(db_url)),
		      "create database %s", name);
	ck_assert_msg(broker_start(b, db_url, extra_env), "broker did not start");
}

const char *itest_db_url(void)
{
	return db_url;
}

void itest_broker_stop(struct broker *b)
{
	int status = broker_stop(b, SIGTERM, 10000);
	ck_assert_msg(status == 0, "broker exit status %d", status);
	ck_assert_msg(broker_log_clean(b), "sanitizer or fatal report in the broker log");
	broker_cleanup(b);
}

void itest_get(int port, const char *path, struct http_response *r)
{
	char req[512];
	snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n", path);
	ck_assert_msg(httpc_request(port, req, r), "no response to GET %s", path);
}

bool itest_wait_status(int port, const char *path, int status, int timeout_ms)
{
	long long deadline = httpc_now_ms() + timeout_ms;
	while (httpc_now_ms() < deadline) {
		struct http_response r;
		char req[512];
		snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n", path);
		if (httpc_request(port, req, &r)) {
			int got = r.status;
			httpc_response_free(&r);
			if (got == status)
				return true;
		}
		struct timespec ts = { 0, 50 * 1000 * 1000 };
		nanosleep(&ts, NULL); /* polling an observable state, with a deadline */
	}
	return false;
}

long long itest_metric(int port, const char *sample)
{
	struct http_response r;
	itest_get(port, "/metrics", &r);
	long long value = -1;
	size_t n = strlen(sample);
	for (const char *line = r.body; line && *line;) {
		const char *end = strchr(line, '\n');
		if (strncmp(line, sample, n) == 0 && line[n] == ' ') {
			value = strtoll(line + n + 1, NULL, 10);
			break;
		}
		line = end ? end + 1 : NULL;
	}
	httpc_response_free(&r);
	return value;
}
