/* itest — the scaffolding every integration test program shares.
 *
 * One private PostgreSQL cluster per test program (started by an unchecked
 * fixture, so it outlives Check's forked tests), one fresh database per test,
 * and a broker started per test with the environment the test asks for.
 * Test code only.
 */
#ifndef MESHD_TEST_ITEST_H
#define MESHD_TEST_ITEST_H

#include <stdbool.h>

#include "brokertest.h"
#include "httpc.h"
#include "pgtest.h"

extern struct pgtest itest_pg;

/* Unchecked fixture pair: the cluster. */
void itest_cluster_setup(void);
void itest_cluster_teardown(void);

/* Starts a broker against a new database; extra_env is NULL or a
 * NULL-terminated list of "NAME=value".  Fails the test on error. */
void itest_broker_start(struct broker *b, const char *const *extra_env);
/* The database URL of the last itest_broker_start. */
const char *itest_db_url(void);

/* Stops with SIGTERM, asserts exit 0 and a clean log (no sanitizer reports). */
void itest_broker_stop(struct broker *b);

/* GET path on a new connection; fails the test if there is no response. */
void itest_get(int port, const char *path, struct http_response *r);

/* Polls GET path until its status is `status` or timeout_ms passes. */
bool itest_wait_status(int port, const char *path, int status, int timeout_ms);

/* The value of an unlabelled or labelled sample in /metrics, e.g.
 * "broker_connections_total" or "broker_messages_rejected_total{reason=\"parse_or_handler\"}";
 * -1 when the line is absent. */
long long itest_metric(int port, const char *sample);

#endif
