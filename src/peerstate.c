/* peerstate — a member's state between connections; see include/meshd/peerstate.h. */
#include "config.h"

#include <math.h>
#include <string.h>

#include "meshd/alloc.h"
#include "meshd/db.h"
#include "meshd/dbjob.h"
#include "meshd/id.h"
#include "meshd/peerstate.h"
#include "meshd/shard.h"
#include "meshd/thread.h"

static const char *const stat_keys[PEERSTATE_NSTATS] = {
	"messagesIn", "messagesOut", "toolCalls", "errors",
};

/* A stored count that is not a JSON number counts as 0: the web app or an
 * older broker may have written anything there. */
#define STORED(k) "CASE WHEN jsonb_typeof(ps.cumulative_stats->'" k "') = 'number'" \
	" THEN floor((ps.cumulative_stats->>'" k "')::numeric) ELSE 0 END"

static const char save_sql[] =
	"INSERT INTO mesh.peer_state AS ps (id, mesh_id, member_id, groups, profile, visible,"
	" last_summary, last_display_name, cumulative_stats, last_seen_at, updated_at)"
	" VALUES ($1, $2, $3, $4::jsonb, $5::jsonb, $6::boolean, $7, $8,"
	" jsonb_build_object('messagesIn', $9::bigint, 'messagesOut', $10::bigint,"
	" 'toolCalls', $11::bigint, 'errors', $12::bigint), now(), now())"
	" ON CONFLICT (mesh_id, member_id) DO UPDATE SET groups = EXCLUDED.groups,"
	" profile = EXCLUDED.profile, visible = EXCLUDED.visible,"
	" last_summary = COALESCE(EXCLUDED.last_summary, ps.last_summary),"
	" last_display_name = COALESCE(EXCLUDED.last_display_name, ps.last_display_name),"
	" cumulative_stats = jsonb_build_object("
	" 'messagesIn', " STORED("messagesIn") " + $9::bigint,"
	" 'messagesOut', " STORED("messagesOut") " + $10::bigint,"
	" 'toolCalls', " STORED("toolCalls") " + $11::bigint,"
	" 'errors', " STORED("errors") " + $12::bigint),"
	" last_seen_at = now(), updated_at = now()";

/* A count from set_stats: a whole, non-negative number below 2^53, else 0. */
static long long count_of(const json_t *v)
{
	if (!json_is_number(v))
		return 0;
	double d = json_number_value(v);
	if (!isfinite(d) || d < 0 || d >= 9007199254740992.0)
		return 0;
	return (long long)d; /* truncation: floor, for d >= 0 */
}

static json_t *json_col(PGresult *res, int col)
{
	if (PQgetisnull(res, 0, col))
		return NULL;
	return json_loads(PQgetvalue(res, 0, col), JSON_DECODE_ANY, NULL);
}

static char *str_col(PGresult *res, int col)
{
	if (PQgetisnull(res, 0, col) || !*PQgetvalue(res, 0, col))
		return NULL;
	return xstrdup(PQgetvalue(res, 0, col));
}

struct peer_saved *peerstate_from_row(PGresult *res, int col)
{
	if (PQntuples(res) < 1 || strcmp(PQgetvalue(res, 0, col), "t") != 0)
		return NULL;
	struct peer_saved *ps = xcalloc(1, sizeof(*ps));
	ps->groups = json_col(res, col + 1);
	if (!json_is_array(ps->groups)) {
		json_decref(ps->groups);
		ps->groups = json_array();
	}
	ps->profile = json_col(res, col + 2);
	if (!json_is_object(ps->profile)) {
		json_decref(ps->profile);
		ps->profile = json_object();
	}
	ps->visible = strcmp(PQgetvalue(res, 0, col + 3), "f") != 0;
	ps->last_summary = str_col(res, col + 4);
	json_t *stats = json_col(res, col + 5);
	for (int i = 0; i < PEERSTATE_NSTATS; i++)
		ps->stats[i] = count_of(json_object_get(stats, stat_keys[i]));
	json_decref(stats);
	ps->last_seen_at = str_col(res, col + 6);
	return ps;
}

void peerstate_free(struct peer_saved *ps)
{
	if (!ps)
		return;
	json_decref(ps->groups);
	json_decref(ps->profile);
	xfree(ps->last_summary);
	xfree(ps->last_seen_at);
	xfree(ps);
}

json_t *peerstate_stats_json(const struct peer_saved *ps)
{
	json_t *o = json_object();
	for (int i = 0; i < PEERSTATE_NSTATS; i++)
		json_object_set_new(o, stat_keys[i], json_integer(ps->stats[i]));
	return o;
}

static void param_json(struct db_job *j, const json_t *v)
{
	char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	db_job_param(j, text);
	free(text);
}

void peerstate_save(struct presence *p)
{
	struct shard *s = p->mesh->shard;
	MESHD_ASSERT_ON_WORKER(s);
	char id[ID_LEN + 1];
	id_new(id);
	struct db_job *j = db_job_new(save_sql, DB_JOB_WRITE, NULL, NULL, NULL);
	db_job_param(j, id);
	db_job_param(j, p->mesh->id);
	db_job_param(j, p->member->id);
	param_json(j, p->groups);
	param_json(j, p->profile);
	db_job_param(j, p->visible ? "true" : "false");
	db_job_param(j, p->summary);
	db_job_param(j, p->display_name);
	for (int i = 0; i < PEERSTATE_NSTATS; i++)
		db_job_paramf(j, "%lld", count_of(json_object_get(p->stats, stat_keys[i])));
	db_submit(s->db, j);
}
