/* msgstatus — message_status; see include/meshd/msgstatus.h. */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "meshd/alloc.h"
#include "meshd/clock.h"
#include "meshd/conn.h"
#include "meshd/db.h"
#include "meshd/dbjob.h"
#include "meshd/jscompat.h"
#include "meshd/metrics.h"
#include "meshd/msgstatus.h"
#include "meshd/presence.h"
#include "meshd/proto.h"
#include "meshd/route.h"
#include "meshd/session.h"
#include "meshd/shard.h"
#include "meshd/thread.h"

static const char status_exact_sql[] =
	"SELECT id, target_spec, delivered_at IS NOT NULL, " SQL_ISO8601("delivered_at")
	" FROM mesh.message_queue WHERE mesh_id = $1 AND id = $2";
static const char status_prefix_sql[] =
	"SELECT id, target_spec, delivered_at IS NOT NULL, " SQL_ISO8601("delivered_at")
	" FROM mesh.message_queue WHERE mesh_id = $1 AND id LIKE $2 || '%' LIMIT 2";

struct status_ctx {
	char *message_id; /* as given */
	char *req_id;
};

static bool base62(const char *s)
{
	for (; *s; s++)
		if (!isalnum((unsigned char)*s))
			return false;
	return true;
}

/* The length of String(value) in JavaScript, for the error text. */
static size_t js_string_length(const json_t *v)
{
	if (!v)
		return 0;
	if (json_is_string(v))
		return js_utf16_length(json_string_value(v));
	char buf[64];
	if (json_is_integer(v))
		return (size_t)snprintf(buf, sizeof(buf), "%lld", (long long)json_integer_value(v));
	if (json_is_true(v))
		return 4;
	if (json_is_false(v))
		return 5;
	if (json_is_null(v))
		return 4;
	if (json_is_object(v))
		return 15; /* "[object Object]" */
	char *t = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	size_t n = t ? strlen(t) : 0;
	free(t);
	return n;
}

static void status_error(struct conn *c, const char *code, const char *message, const char *req_id)
{
	proto_send_error(c, code, message, req_id);
}

static void status_done(struct db_job *j, void *owner);

void msgstatus_handle(struct conn *c, const json_t *msg)
{
	struct presence *me = session_presence(c);
	struct shard *s = me->mesh->shard;
	MESHD_ASSERT_ON_WORKER(s);
	const json_t *v = json_object_get(msg, "messageId");
	const char *id = js_string(v);
	const char *req_id = js_field(msg, "_reqId");
	size_t len = id ? strlen(id) : 0;
	if (!id || len < 8 || len > 32 || !base62(id)) {
		char text[96];
		snprintf(text, sizeof(text), "messageId must be 8-32 base62 chars (got %zu)",
			 js_string_length(v));
		status_error(c, "invalid_argument", text, req_id);
		return;
	}
	struct status_ctx *ctx = xcalloc(1, sizeof(*ctx));
	ctx->message_id = xstrdup(id);
	ctx->req_id = req_id ? xstrdup(req_id) : NULL;
	struct db_job *j = db_job_new(len == 32 ? status_exact_sql : status_prefix_sql,
				      DB_JOB_FAIL_FAST, &s->reply, status_done, ctx);
	db_job_param(j, me->mesh->id);
	db_job_param(j, id);
	j->conn_slot = c->slot;
	j->conn_gen = c->gen;
	db_submit(s->db, j);
}

static json_t *recipient(const struct presence *p, const char *status)
{
	json_t *r = json_object();
	json_object_set_new(r, "name", json_string(p->hello_display_name ? p->hello_display_name
									: p->member->display_name));
	json_object_set_new(r, "pubkey", json_string(presence_pubkey(p)));
	json_object_set_new(r, "status", json_string(status));
	return r;
}

static json_t *recipients(struct mesh *m, const char *target, bool delivered)
{
	const char *st = delivered ? "delivered" : "held";
	json_t *a = json_array();
	enum route_target cls = route_target_class(target);
	int64_t now = clock_mono_ms();
	for (struct presence *p = m->head; p; p = p->next) {
		if (!presence_listed(p, now))
			continue; /* not a listed (non-disconnected) presence */
		if (cls == ROUTE_TARGET_BROADCAST) {
			json_array_append_new(a, recipient(p, st));
		} else if (cls == ROUTE_TARGET_GROUP) {
			if (presence_in_group(p, target + 1))
				json_array_append_new(a, recipient(p, st));
		} else if (strcmp(presence_pubkey(p), target) == 0) {
			json_array_append_new(a, recipient(p, st));
			return a;
		}
	}
	if (cls != ROUTE_TARGET_BROADCAST && cls != ROUTE_TARGET_GROUP) {
		char prefix[17];
		snprintf(prefix, sizeof(prefix), "%s", target);
		json_t *r = json_object();
		json_object_set_new(r, "name", json_string("unknown"));
		json_object_set_new(r, "pubkey", json_string(prefix));
		json_object_set_new(r, "status", json_string("disconnected"));
		json_array_append_new(a, r);
	}
	return a;
}

static void status_done(struct db_job *j, void *owner)
{
	struct status_ctx *ctx = j->arg;
	struct conn *c = shard_conn(owner, j->conn_slot, j->conn_gen);
	if (!c || !session_presence(c)) {
		/* gone */
	} else if (!j->ok) {
		metrics_inc_label(METRIC_MESSAGES_REJECTED, MSG_REJECT_PARSE_OR_HANDLER);
	} else if (PQntuples(j->res) == 0) {
		status_error(c, "not_found", "message not found", ctx->req_id);
	} else if (PQntuples(j->res) > 1) {
		status_error(c, "ambiguous_prefix",
			     "prefix matched 2 messages \xe2\x80\x94 use a longer id", ctx->req_id);
	} else {
		PGresult *r = j->res;
		bool delivered = strcmp(PQgetvalue(r, 0, 2), "t") == 0;
		json_t *o = json_object();
		json_object_set_new(o, "type", json_string("message_status_result"));
		json_object_set_new(o, "messageId", json_string(ctx->message_id));
		json_object_set_new(o, "targetSpec", json_string(PQgetvalue(r, 0, 1)));
		json_object_set_new(o, "delivered", json_boolean(delivered));
		json_object_set_new(o, "deliveredAt",
				    delivered ? json_string(PQgetvalue(r, 0, 3)) : json_null());
		json_object_set_new(o, "recipients",
				    recipients(session_presence(c)->mesh, PQgetvalue(r, 0, 1), delivered));
		if (ctx->req_id)
			json_object_set_new(o, "_reqId", json_string(ctx->req_id));
		proto_send_json(c, o);
	}
	xfree(ctx->message_id);
	xfree(ctx->req_id);
	xfree(ctx);
}
