/* shard — meshes, members, presences and their indexes; see include/meshd/shard.h. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include <event2/event.h>

#include "meshd/alloc.h"
#include "meshd/audit.h"
#include "meshd/clientack.h"
#include "meshd/conntab.h"
#include "meshd/jsonlcache.h"
#include "meshd/metrics.h"
#include "meshd/shard.h"
#include "meshd/thread.h"

static const struct plist empty_list;

/* Working directories whose transcript state a shard remembers. */
#define SHARD_JSONL_CWDS 4096

void shard_init(struct shard *s, const struct shard_env *env)
{
	*s = (struct shard){
		.id = env->id,
		.nshards = env->nshards,
		.cfg = env->cfg,
		.db = env->db,
		.reply = { .inbox = env->inbox, .owner = s },
		.base = env->base,
		.conns = env->conns,
		.git_sha = env->git_sha,
		.started_mono_ms = env->started_mono_ms,
		.inboxes = env->inboxes,
		.hookrate = env->hookrate,
		.pending = env->pending,
	};
	map_init(&s->meshes);
	s->jsonl = jsonl_cache_new(SHARD_JSONL_CWDS);
	db_stream_init(&s->audit, s->id, AUDIT_SQL_APPEND_MANY, DB_JOB_WRITE, s->db, &s->reply);
	db_stream_init(&s->acks, s->id, CLIENTACK_SQL_MANY, DB_JOB_WRITE, s->db, &s->reply);
}

void shard_audit(struct shard *s, json_t *entry)
{
	db_stream_add(&s->audit, entry);
}

struct conn *shard_conn(struct shard *s, uint32_t slot, uint32_t gen)
{
	struct conn *c = conntab_get(s->conns, slot, gen);
	if (!c)
		shard_count_stale(s);
	return c;
}

void shard_count_stale(struct shard *s)
{
	(void)s;
	metrics_inc(METRIC_STALE_COMPLETIONS);
}

static void member_free(struct member *mb)
{
	xfree(mb->id);
	xfree(mb->pubkey);
	xfree(mb->display_name);
	xfree(mb->role_tag);
	xfree(mb->message_mode);
	json_decref(mb->default_groups);
	json_decref(mb->peer_grants);
	xfree(mb);
}

static void presence_free(struct presence *p)
{
	if (p->grace_timer)
		event_free(p->grace_timer);
	if (p->redeliver_timer)
		event_free(p->redeliver_timer);
	xfree(p->session_id);
	xfree(p->session_pubkey);
	xfree(p->hello_display_name);
	xfree(p->display_name);
	xfree(p->cwd);
	xfree(p->hostname);
	xfree(p->peer_type);
	xfree(p->channel);
	xfree(p->model);
	xfree(p->summary);
	json_decref(p->groups);
	json_decref(p->profile);
	json_decref(p->stats);
	claims_free(&p->claims);
	xfree(p->unpushed.p);
	xfree(p);
}

static void mesh_free(struct mesh *m)
{
	metrics_gauge_add_label(METRIC_WORKER_MESHES, m->shard->id, -1);
	const char *k;
	void *v;
	for (size_t i = 0; map_next(&m->by_key, &i, &k, &v);) {
		struct plist *l = v;
		xfree(l->v);
		xfree(l);
	}
	map_free(&m->by_key);
	map_free(&m->by_id);
	for (size_t i = 0; map_next(&m->members, &i, &k, &v);)
		member_free(v);
	map_free(&m->members);
	while (m->head) {
		struct presence *p = m->head;
		m->head = p->next;
		presence_free(p);
	}
	json_decref(m->self_editable);
	map_free(&m->recent_multicast);
	xfree(m->recent_ids);
	xfree(m->id);
	xfree(m);
}

void shard_free(struct shard *s)
{
	const char *k;
	void *v;
	for (size_t i = 0; map_next(&s->meshes, &i, &k, &v);)
		mesh_free(v);
	map_free(&s->meshes);
	db_stream_free(&s->audit);
	db_stream_free(&s->acks);
	jsonl_cache_free(s->jsonl);
	s->jsonl = NULL;
}

int shard_owner(const char *mesh_id, int nworkers)
{
	return (int)(map_hash(mesh_id) % (uint32_t)nworkers);
}

struct mesh *shard_mesh(struct shard *s, const char *mesh_id, bool create)
{
	MESHD_ASSERT_ON_WORKER(s);
	struct mesh *m = map_get(&s->meshes, mesh_id);
	if (m || !create)
		return m;
	m = xcalloc(1, sizeof(*m));
	m->id = xstrdup(mesh_id);
	m->shard = s;
	map_init(&m->by_key);
	map_init(&m->by_id);
	map_init(&m->members);
	map_init(&m->recent_multicast);
	map_put(&s->meshes, m->id, m);
	metrics_gauge_add_label(METRIC_WORKER_MESHES, s->id, 1);
	return m;
}

void shard_mesh_maybe_free(struct shard *s, struct mesh *m)
{
	if (m->npresences > 0 || m->head)
		return;
	map_del(&s->meshes, m->id);
	mesh_free(m);
}

static char *dup_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

struct member *mesh_member_upsert(struct mesh *m, const char *id, const char *pubkey,
				  const char *display_name, const char *role_tag,
				  const char *message_mode, json_t *default_groups,
				  json_t *peer_grants)
{
	struct member *mb = map_get(&m->members, id);
	if (!mb) {
		mb = xcalloc(1, sizeof(*mb));
		mb->id = xstrdup(id);
		mb->pubkey = xstrdup(pubkey);
		map_put(&m->members, mb->id, mb);
	} else {
		xfree(mb->display_name);
		xfree(mb->role_tag);
		xfree(mb->message_mode);
		json_decref(mb->default_groups);
		json_decref(mb->peer_grants);
	}
	mb->display_name = xstrdup(display_name ? display_name : "");
	mb->role_tag = dup_or_null(role_tag);
	mb->message_mode = xstrdup(message_mode ? message_mode : "push");
	mb->default_groups = json_is_array(default_groups) ? json_incref(default_groups) : json_array();
	mb->peer_grants = json_is_object(peer_grants) ? json_incref(peer_grants) : json_object();
	return mb;
}

const struct plist *mesh_find(const struct mesh *m, const char *key)
{
	const struct plist *l = key ? map_get(&m->by_key, key) : NULL;
	return l ? l : &empty_list;
}

static void index_add(struct mesh *m, const char *key, struct presence *p)
{
	struct plist *l = map_get(&m->by_key, key);
	if (!l) {
		l = xcalloc(1, sizeof(*l));
		/* The key string must outlive the entry: use the presence's own
		 * copy, and re-point it when that presence leaves (index_del). */
		map_put(&m->by_key, key, l);
	}
	for (size_t i = 0; i < l->n; i++)
		if (l->v[i] == p)
			return;
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 2;
		l->v = xrealloc(l->v, l->cap * sizeof(*l->v));
	}
	l->v[l->n++] = p;
}

static void index_del(struct mesh *m, const char *key, struct presence *p)
{
	struct plist *l = map_get(&m->by_key, key);
	if (!l)
		return;
	for (size_t i = 0; i < l->n; i++) {
		if (l->v[i] == p) {
			memmove(&l->v[i], &l->v[i + 1], (l->n - i - 1) * sizeof(*l->v));
			l->n--;
			break;
		}
	}
	map_del(&m->by_key, key);
	if (l->n == 0) {
		xfree(l->v);
		xfree(l);
		return;
	}
	/* Re-key with a string owned by a presence that is still listed. */
	struct presence *q = l->v[0];
	const char *owned = strcmp(q->member->pubkey, key) == 0 ? q->member->pubkey
								 : q->session_pubkey;
	map_put(&m->by_key, owned, l);
}

struct presence *mesh_presence_new(struct mesh *m, struct member *mb)
{
	struct presence *p = xcalloc(1, sizeof(*p));
	id_new(p->id);
	p->mesh = m;
	p->member = mb;
	mb->refs++;
	p->online = true;
	p->visible = true;
	p->groups = json_array();
	p->profile = json_object();
	p->prev = m->tail;
	if (m->tail)
		m->tail->next = p;
	else
		m->head = p;
	m->tail = p;
	m->npresences++;
	struct shard *s = m->shard;
	MESHD_ASSERT_ON_WORKER(s);
	s->npresences++;
	metrics_gauge_add(METRIC_CONNECTIONS_ACTIVE, 1);
	index_add(m, mb->pubkey, p);
	map_put(&m->by_id, p->id, p);
	return p;
}

void mesh_presence_reindex(struct mesh *m, struct presence *p, const char *old_session_pubkey)
{
	if (old_session_pubkey && strcmp(old_session_pubkey, p->member->pubkey) != 0)
		index_del(m, old_session_pubkey, p);
	if (p->session_pubkey)
		index_add(m, p->session_pubkey, p);
}

void mesh_presence_remove(struct mesh *m, struct presence *p)
{
	map_del(&m->by_id, p->id);
	if (p->session_pubkey && strcmp(p->session_pubkey, p->member->pubkey) != 0)
		index_del(m, p->session_pubkey, p);
	index_del(m, p->member->pubkey, p);
	if (p->prev)
		p->prev->next = p->next;
	else
		m->head = p->next;
	if (p->next)
		p->next->prev = p->prev;
	else
		m->tail = p->prev;
	p->prev = p->next = NULL;
	/* Q3: every removal gives its capacity slot back. */
	m->npresences--;
	struct shard *s = m->shard;
	s->npresences--;
	metrics_gauge_add(METRIC_CONNECTIONS_ACTIVE, -1);
	if (p->grace_timer)
		evtimer_del(p->grace_timer);
	if (--p->member->refs == 0) {
		map_del(&m->members, p->member->id);
		member_free(p->member);
		p->member = NULL;
	}
	presence_free(p);
	shard_mesh_maybe_free(s, m);
}

struct presence *shard_presence(struct shard *s, const char *mesh_id, const char *presence_id)
{
	MESHD_ASSERT_ON_WORKER(s);
	struct mesh *m = map_get(&s->meshes, mesh_id);
	return m ? map_get(&m->by_id, presence_id) : NULL;
}

void mesh_remember_multicast(struct mesh *m, const char *id)
{
	if (!m->recent_ids)
		m->recent_ids = xcalloc(MESH_RECENT_MULTICAST, sizeof(*m->recent_ids));
	char *slot = m->recent_ids[m->recent_next];
	if (slot[0])
		map_del(&m->recent_multicast, slot);
	snprintf(slot, ID_LEN + 1, "%s", id);
	map_put(&m->recent_multicast, slot, slot);
	m->recent_next = (m->recent_next + 1) % MESH_RECENT_MULTICAST;
}

bool mesh_is_recent_multicast(const struct mesh *m, const char *id)
{
	return id && map_get(&m->recent_multicast, id) != NULL;
}

const char *presence_pubkey(const struct presence *p)
{
	return p->session_pubkey ? p->session_pubkey : p->member->pubkey;
}
