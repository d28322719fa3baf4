/* endpoint — HTTP routes; see include/meshd/endpoint.h. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>

#include "meshd/claim.h"
#include "meshd/clock.h"
#include "meshd/conn.h"
#include "meshd/db.h"
#include "meshd/endpoint.h"
#include "meshd/hook.h"
#include "meshd/http.h"
#include "meshd/join.h"
#include "meshd/metrics.h"
#include "meshd/config.h"
#include "meshd/shard.h"

#define JSON_TYPE "application/json"

static bool is(const struct http_request *req, enum http_method m, const char *target)
{
	size_t n = strlen(target);
	return req->method == m && req->target_len == n && memcmp(req->target, target, n) == 0;
}

static void respond_json(struct conn *c, int status, const char *body, int len)
{
	conn_http_respond(c, status, JSON_TYPE, body, len > 0 ? (size_t)len : 0, false);
}

static long long uptime_seconds(const struct shard *s)
{
	return (long long)((clock_mono_ms() - s->started_mono_ms) / 1000);
}

/* D1: 200 {"status":"ok","db":"up",…} or 503 {"status":"degraded","db":"down",…}. */
static void health(struct conn *c)
{
	const struct shard *s = conn_owner(c);
	bool up = db_healthy(s->db);
	char body[256];
	int n = snprintf(body, sizeof(body),
			 "{\"status\":\"%s\",\"db\":\"%s\",\"version\":\"%s\",\"gitSha\":\"%s\","
			 "\"uptime\":%lld}",
			 up ? "ok" : "degraded", up ? "up" : "down", PACKAGE_VERSION, s->git_sha,
			 uptime_seconds(s));
	respond_json(c, up ? 200 : 503, body, n);
}

/* §3.2 without the drizzle migration check (meshd has no drizzle table). */
static void health_ready(struct conn *c)
{
	const struct shard *s = conn_owner(c);
	if (!db_healthy(s->db)) {
		static const char down[] = "{\"status\":\"not_ready\",\"reason\":\"db_down\"}";
		respond_json(c, 503, down, (int)sizeof(down) - 1);
		return;
	}
	char body[256];
	int n = snprintf(body, sizeof(body),
			 "{\"status\":\"ready\",\"version\":\"%s\",\"gitSha\":\"%s\",\"uptime\":%lld}",
			 PACKAGE_VERSION, s->git_sha, uptime_seconds(s));
	respond_json(c, 200, body, n);
}

static void metrics(struct conn *c)
{
	struct evbuffer *text = evbuffer_new();
	metrics_render(text);
	size_t len = evbuffer_get_length(text);
	const char *body = (const char *)evbuffer_pullup(text, -1);
	conn_http_respond(c, 200, "text/plain; version=0.0.4", body, len, false);
	evbuffer_free(text);
}

void endpoint_handle(struct conn *c, const struct http_request *req, const char *body,
		     size_t body_len)
{
	const struct shard *s = conn_owner(c);
	bool too_big = req->content_length > (long long)s->cfg->max_message_bytes;
	const char *code;
	size_t code_len = 0;
	if (is(req, HTTP_POST, "/hook/set-status")) {
		hook_http(c, req, body, body_len); /* its own 413, in its own shape */
	} else if (is(req, HTTP_POST, "/join") && too_big) {
		static const char big[] = "{\"ok\":false,\"error\":\"payload too large\"}";
		conn_http_respond(c, 413, JSON_TYPE, big, sizeof(big) - 1, true);
	} else if (too_big) {
		static const char big[] = "{\"error\":\"payload too large\"}";
		conn_http_respond(c, 413, JSON_TYPE, big, sizeof(big) - 1, true);
	} else if (req->method == HTTP_OPTIONS) {
		conn_http_respond(c, 204, NULL, NULL, 0, false);
	} else if (is(req, HTTP_GET, "/health")) {
		health(c);
	} else if (is(req, HTTP_GET, "/health/ready")) {
		health_ready(c);
	} else if (is(req, HTTP_GET, "/metrics")) {
		metrics(c);
	} else if (is(req, HTTP_POST, "/join")) {
		join_http(c, body, body_len);
	} else if (req->method == HTTP_POST &&
		   (code = claim_code(req->target, req->target_len, &code_len))) {
		claim_http(c, code, code_len, body, body_len);
	} else {
		/* No explicit content type, as the reference. */
		conn_http_respond(c, 404, NULL, "not found", 9, false);
	}
}
