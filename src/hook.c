/* hook — POST /hook/set-status across every shard; see include/meshd/hook.h. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "meshd/alloc.h"
#include "meshd/clock.h"
#include "meshd/config.h"
#include "meshd/conn.h"
#include "meshd/conntab.h"
#include "meshd/drain.h"
#include "meshd/hook.h"
#include "meshd/http.h"
#include "meshd/hookrate.h"
#include "meshd/jscompat.h"
#include "meshd/log.h"
#include "meshd/metrics.h"
#include "meshd/pending.h"
#include "meshd/presence.h"
#include "meshd/shard.h"
#include "meshd/status.h"
#include "meshd/thread.h"

#define JSON_TYPE "application/json"

/* Requests waiting for the workers' answers, per shard.  Past this many a
 * new one is refused (503) rather than queued: each holds a connection's
 * answer and a few strings, and the workers answer in microseconds. */
#define HOOK_WAITS_MAX 4096

/* A request of this shard's, waiting for every worker's candidate, then
 * for the owner's write. */
struct hook_wait {
	uint64_t id;
	uint32_t slot, gen;       /* the HTTP connection */
	long long pid;
	char *cwd;
	enum peer_status status;
	int replies;
	/* The best candidate so far. */
	int rank;
	int64_t connected_ms;
	int shard;
	char *mesh_id;
	char presence_id[ID_LEN + 1];
	struct hook_wait *next;
};

/* ---- answers ---------------------------------------------------------- */

/* {"ok":false,"error":<text>} through jansson: a parser message is escaped. */
static void answer_error(struct conn *c, int status, const char *text)
{
	json_t *o = json_pack("{s:b,s:s}", "ok", 0, "error", text);
	char *body = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	if (!body) {
		conn_http_respond(c, 500, JSON_TYPE, "{\"ok\":false,\"error\":\"internal\"}", 31, false);
		return;
	}
	conn_http_respond(c, status, JSON_TYPE, body, strlen(body), status == 413);
	free(body);
}

static void answer_found(struct conn *c, const char *presence_id)
{
	char body[96];
	int n = snprintf(body, sizeof(body), "{\"ok\":true,\"presence_id\":\"%s\"}", presence_id);
	conn_http_respond(c, 200, JSON_TYPE, body, (size_t)n, false);
}

static void answer_pending(struct conn *c)
{
	static const char body[] = "{\"ok\":true,\"pending\":true}";
	conn_http_respond(c, 200, JSON_TYPE, body, sizeof(body) - 1, false);
}

/* ---- the request -------------------------------------------------------- */

/* `${body.pid ?? 0}` as JavaScript writes it, for the bucket key. */
static void pid_text(const json_t *pid, char out[JS_NUMBER_MAX + 64])
{
	if (!pid || json_is_null(pid))
		snprintf(out, JS_NUMBER_MAX + 64, "0");
	else if (json_is_number(pid))
		js_number_to_string(json_number_value(pid), out);
	else if (json_is_string(pid))
		snprintf(out, JS_NUMBER_MAX + 64, "%.*s", JS_NUMBER_MAX + 32, json_string_value(pid));
	else if (json_is_boolean(pid))
		snprintf(out, JS_NUMBER_MAX + 64, "%s", json_is_true(pid) ? "true" : "false");
	else
		snprintf(out, JS_NUMBER_MAX + 64, "%s", json_is_array(pid) ? "" : "[object Object]");
}

/* The pid a presence is matched on: a positive integer, else 0 ("not given"). */
static long long pid_value(const json_t *pid)
{
	if (json_is_integer(pid) && json_integer_value(pid) > 0)
		return (long long)json_integer_value(pid);
	if (json_is_real(pid) && json_real_value(pid) >= 1 && json_real_value(pid) < 9.0e15 &&
	    json_real_value(pid) == (double)(long long)json_real_value(pid))
		return (long long)json_real_value(pid);
	return 0;
}

static bool rate_ok(struct shard *s, const json_t *body)
{
	const json_t *cwd = json_object_get(body, "cwd");
	char pid[JS_NUMBER_MAX + 64];
	pid_text(json_object_get(body, "pid"), pid);
	const char *cwd_text = json_is_string(cwd) ? json_string_value(cwd) : "";
	size_t need = strlen(pid) + strlen(cwd_text) + 2;
	char *key = xmalloc(need);
	snprintf(key, need, "%s:%s", pid, cwd_text);
	bool ok = hookrate_take(s->hookrate, key, s->cfg->hook_rate_limit_per_min, clock_mono_ms());
	xfree(key);
	return ok;
}

static void ask_every_worker(struct shard *s, struct hook_wait *w, const char *session_id)
{
	for (int i = 0; i < s->nshards; i++) {
		struct msg_hook *m = xcalloc(1, sizeof(*m));
		m->hdr.type = MSG_HOOK_FIND;
		m->reply = s->reply.inbox;
		m->req = w->id;
		m->pid = w->pid;
		m->cwd = xstrdup(w->cwd);
		m->session_id = session_id ? xstrdup(session_id) : NULL;
		inbox_push(s->inboxes[i], &m->hdr);
	}
}

static size_t waits_count(const struct shard *s)
{
	size_t n = 0;
	for (const struct hook_wait *w = s->hook_waits; w; w = w->next)
		n++;
	return n;
}

/* Steps 5–6 of §3.4 on a parsed object: validate, then ask. */
static void hook_request(struct shard *s, struct conn *c, const json_t *body)
{
	const char *cwd = js_field(body, "cwd");
	const json_t *st = json_object_get(body, "status");
	bool st_given = st && !json_is_null(st) && !json_is_false(st) &&
			!(json_is_string(st) && json_string_length(st) == 0);
	if (!cwd || !*cwd || !st_given) {
		answer_error(c, 200, "cwd and status required");
		return;
	}
	enum peer_status status;
	if (!json_is_string(st) || !status_parse(json_string_value(st), &status)) {
		answer_error(c, 400, "invalid status"); /* the contract's SHOULD */
		return;
	}
	if (waits_count(s) >= HOOK_WAITS_MAX) {
		answer_error(c, 503, "busy");
		return;
	}
	const char *session_id = js_field(body, "session_id");
	struct hook_wait *w = xcalloc(1, sizeof(*w));
	w->id = ++s->hook_next_id;
	w->slot = c->slot;
	w->gen = c->gen;
	w->pid = pid_value(json_object_get(body, "pid"));
	w->cwd = xstrdup(cwd);
	w->status = status;
	w->next = s->hook_waits;
	s->hook_waits = w;
	conn_http_defer(c);
	ask_every_worker(s, w, session_id && *session_id ? session_id : NULL);
}

void hook_http(struct conn *c, const struct http_request *req, const char *body,
	       size_t body_len)
{
	struct shard *s = conn_owner(c);
	MESHD_ASSERT_ON_WORKER(s);
	metrics_inc(METRIC_HOOK_REQUESTS);
	if (req->content_length > (long long)s->cfg->max_message_bytes) {
		answer_error(c, 413, "payload too large");
		return;
	}
	json_error_t err;
	json_t *o = json_loadb(body ? body : "", body_len, JSON_DECODE_ANY, &err);
	if (!o) {
		answer_error(c, 500, err.text);
		return;
	}
	if (json_is_null(o)) {
		/* JSON.parse gives null, whose property access throws. */
		answer_error(c, 500, "Cannot read properties of null (reading 'pid')");
	} else if (!rate_ok(s, o)) {
		metrics_inc(METRIC_HOOK_RATE_LIMITED);
		answer_error(c, 429, "rate limited");
	} else {
		hook_request(s, c, o);
	}
	json_decref(o);
}

/* ---- between workers ---------------------------------------------------- */

static int rank_of(const struct presence *p, const struct msg_hook *q)
{
	if (q->session_id && p->session_id && strcmp(p->session_id, q->session_id) == 0)
		return 3;
	if (!p->cwd || strcmp(p->cwd, q->cwd) != 0)
		return 0;
	return q->pid > 0 && p->pid == q->pid ? 2 : 1;
}

/* FIND, on every worker: the best listed presence of this shard. */
static void find(struct shard *s, struct msg_hook *q)
{
	int64_t mono = clock_mono_ms();
	struct presence *best = NULL;
	int best_rank = 0;
	const char *k;
	void *v;
	for (size_t i = 0; map_next(&s->meshes, &i, &k, &v);) {
		for (struct presence *p = ((struct mesh *)v)->head; p; p = p->next) {
			int r = presence_listed(p, mono) ? rank_of(p, q) : 0;
			if (r > best_rank || (r && r == best_rank && p->connected_ms > best->connected_ms)) {
				best = p;
				best_rank = r;
			}
		}
	}
	struct msg_hook *a = xcalloc(1, sizeof(*a));
	a->hdr.type = MSG_HOOK_FOUND;
	a->req = q->req;
	a->shard = s->id;
	a->rank = best_rank;
	if (best) {
		a->connected_ms = best->connected_ms;
		a->mesh_id = xstrdup(best->mesh->id);
		memcpy(a->presence_id, best->id, sizeof(a->presence_id));
	}
	inbox_push(q->reply, &a->hdr);
}

static struct hook_wait *take_wait(struct shard *s, uint64_t id, bool unlink)
{
	for (struct hook_wait **pp = &s->hook_waits; *pp; pp = &(*pp)->next) {
		struct hook_wait *w = *pp;
		if (w->id != id)
			continue;
		if (unlink)
			*pp = w->next;
		return w;
	}
	return NULL;
}

static void wait_free(struct hook_wait *w)
{
	xfree(w->cwd);
	xfree(w->mesh_id);
	xfree(w);
}

/* No presence for it: kept for a presence yet to come (§B.5). */
static void keep_pending(struct shard *s, struct hook_wait *w, struct conn *c)
{
	pending_put(s->pending, w->pid, w->cwd, w->status, clock_mono_ms());
	if (c)
		answer_pending(c);
}

/* FOUND, on the asking worker: with every answer in, ask the best one's owner. */
static void found(struct shard *s, struct msg_hook *a)
{
	struct hook_wait *w = take_wait(s, a->req, false);
	if (!w)
		return;
	bool better = a->rank > w->rank || (a->rank && a->rank == w->rank &&
					     a->connected_ms > w->connected_ms);
	if (better) {
		w->rank = a->rank;
		w->connected_ms = a->connected_ms;
		w->shard = a->shard;
		xfree(w->mesh_id);
		w->mesh_id = a->mesh_id;
		a->mesh_id = NULL;
		memcpy(w->presence_id, a->presence_id, sizeof(w->presence_id));
	}
	if (++w->replies < s->nshards)
		return;
	if (w->rank == 0) {
		take_wait(s, w->id, true);
		keep_pending(s, w, shard_conn(s, w->slot, w->gen));
		wait_free(w);
		return;
	}
	struct msg_hook *m = xcalloc(1, sizeof(*m));
	m->hdr.type = MSG_HOOK_APPLY;
	m->reply = s->reply.inbox;
	m->req = w->id;
	m->mesh_id = xstrdup(w->mesh_id);
	memcpy(m->presence_id, w->presence_id, sizeof(m->presence_id));
	m->status = w->status;
	inbox_push(s->inboxes[w->shard], &m->hdr);
}

/* Writes a hook status on the owner (§3.4 steps 8–10): dnd is never
 * cleared by a hook; a status that admits held messages drains at once. */
static void write_hook_status(struct presence *p, enum peer_status status)
{
	if (p->status == STATUS_DND)
		return;
	if (presence_write_status(p, status, SOURCE_HOOK))
		drain_presence(p);
}

/* APPLY, on the presence's owner. */
static void apply(struct shard *s, struct msg_hook *m)
{
	struct presence *p = shard_presence(s, m->mesh_id, m->presence_id);
	struct msg_hook *a = xcalloc(1, sizeof(*a));
	a->hdr.type = MSG_HOOK_APPLIED;
	a->req = m->req;
	if (p) {
		write_hook_status(p, m->status);
		memcpy(a->presence_id, p->id, sizeof(a->presence_id));
		log_debug("hook_status", "mesh=%s presence=%s status=%s", p->mesh->id, p->id,
			  status_name(p->status));
	}
	inbox_push(m->reply, &a->hdr);
}

/* APPLIED, on the asking worker: the answer. */
static void applied(struct shard *s, struct msg_hook *a)
{
	struct hook_wait *w = take_wait(s, a->req, true);
	if (!w)
		return;
	struct conn *c = shard_conn(s, w->slot, w->gen);
	if (a->presence_id[0]) {
		if (c)
			answer_found(c, a->presence_id);
	} else {
		keep_pending(s, w, c); /* it left between the question and the write */
	}
	wait_free(w);
}

void hook_msg_free(struct msg_hook *m)
{
	xfree(m->cwd);
	xfree(m->session_id);
	xfree(m->mesh_id);
	xfree(m);
}

void hook_on_message(struct shard *s, struct msg_hook *m)
{
	MESHD_ASSERT_ON_WORKER(s);
	switch (m->hdr.type) {
	case MSG_HOOK_FIND:
		find(s, m);
		break;
	case MSG_HOOK_FOUND:
		found(s, m);
		break;
	case MSG_HOOK_APPLY:
		apply(s, m);
		break;
	case MSG_HOOK_APPLIED:
		applied(s, m);
		break;
	default:
		break;
	}
	hook_msg_free(m);
}

void hook_apply_pending(struct presence *p)
{
	struct shard *s = p->mesh->shard;
	MESHD_ASSERT_ON_WORKER(s);
	enum peer_status st;
	if (!pending_take(s->pending, p->pid, p->cwd ? p->cwd : "", clock_mono_ms(), &st))
		return;
	log_debug("hook_pending_applied", "mesh=%s presence=%s status=%s", p->mesh->id, p->id,
		  status_name(st));
	write_hook_status(p, st);
}

void hook_shard_free(struct shard *s)
{
	while (s->hook_waits) {
		struct hook_wait *w = s->hook_waits;
		s->hook_waits = w->next;
		wait_free(w);
	}
}
