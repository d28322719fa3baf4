/* jsonlcache — transcript inference, remembered; see include/meshd/jsonlcache.h. */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "meshd/alloc.h"
#include "meshd/jsonl.h"
#include "meshd/jsonlcache.h"
#include "meshd/map.h"

struct cand {
	char *path;
	bool exists;
	bool names_valid;
	struct timespec mtime;
	char **names;             /* its "*.jsonl", sorted */
};

struct entry {
	char *cwd;
	bool root_valid;
	struct timespec root_mtime;
	struct cand *cand;
	size_t ncand;
	char *file;               /* the transcript the verdict is of */
	struct timespec file_mtime;
	off_t file_size;
	bool working;
};

struct jsonl_cache {
	struct map cwds;          /* cwd -> struct entry* */
	size_t max;
	struct jsonl_cache_counts counts;
};

static bool ts_eq(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec == b->tv_sec && a->tv_nsec == b->tv_nsec;
}

/* Too recent to vouch for what it dates: a change in the same tick
 * would leave it as it is. */
static bool racy(const struct timespec *t)
{
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	long long ms = (long long)(now.tv_sec - t->tv_sec) * 1000 + (now.tv_nsec - t->tv_nsec) / 1000000;
	return ms < JSONLCACHE_RACY_MS;
}

static struct entry *entry_new(const char *projects_dir, const char *cwd)
{
	struct entry *e = xcalloc(1, sizeof(*e));
	e->cwd = xstrdup(cwd);
	char **keys = jsonl_project_keys(cwd);
	size_t n = 0;
	while (keys[n])
		n++;
	e->cand = xcalloc(n ? n : 1, sizeof(*e->cand));
	for (size_t i = 0; i < n; i++) {
		/* As jsonl_find_active: "." and ".." would leave projects_dir. */
		if (strcmp(keys[i], ".") == 0 || strcmp(keys[i], "..") == 0)
			continue;
		size_t len = strlen(projects_dir) + strlen(keys[i]) + 2;
		struct cand *k = &e->cand[e->ncand++];
		k->path = xmalloc(len);
		snprintf(k->path, len, "%s/%s", projects_dir, keys[i]);
		k->exists = true; /* unknown yet: looked at */
	}
	jsonl_keys_free(keys);
	return e;
}

static void entry_free(struct entry *e)
{
	for (size_t i = 0; i < e->ncand; i++) {
		xfree(e->cand[i].path);
		jsonl_keys_free(e->cand[i].names);
	}
	xfree(e->cand);
	xfree(e->file);
	xfree(e->cwd);
	xfree(e);
}

static void clear(struct jsonl_cache *c)
{
	const char *k;
	void *v;
	for (size_t i = 0; map_next(&c->cwds, &i, &k, &v);)
		entry_free(v);
	map_free(&c->cwds);
	map_init(&c->cwds);
}

struct jsonl_cache *jsonl_cache_new(size_t max_cwds)
{
	struct jsonl_cache *c = xcalloc(1, sizeof(*c));
	map_init(&c->cwds);
	c->max = max_cwds ? max_cwds : 1;
	return c;
}

void jsonl_cache_free(struct jsonl_cache *c)
{
	if (!c)
		return;
	clear(c);
	map_free(&c->cwds);
	xfree(c);
}

struct jsonl_cache_counts jsonl_cache_counts(const struct jsonl_cache *c)
{
	return c->counts;
}

/* The first candidate directory holding a transcript (its names), as
 * jsonl_find_active picks it, listing only what changed. */
static struct cand *active_dir(struct jsonl_cache *c, struct entry *e, bool root_same)
{
	unsigned budget = JSONL_MAX_DIRENTS;
	for (size_t i = 0; i < e->ncand && budget > 0; i++) {
		struct cand *k = &e->cand[i];
		if (root_same && !k->exists)
			continue; /* making it would have changed the root's mtime */
		struct stat ds;
		if (stat(k->path, &ds) != 0 || !S_ISDIR(ds.st_mode)) {
			k->exists = false;
			k->names_valid = false;
			continue;
		}
		k->exists = true;
		if (!k->names_valid || !ts_eq(&k->mtime, &ds.st_mtim)) {
			jsonl_keys_free(k->names);
			k->names = jsonl_dir_names(k->path, &budget);
			c->counts.dir_reads++;
			k->mtime = ds.st_mtim;
			k->names_valid = k->names && !racy(&ds.st_mtim);
		}
		if (k->names && k->names[0])
			return k;
	}
	return NULL;
}

enum peer_status jsonl_cache_infer(struct jsonl_cache *c, const char *projects_dir,
				   const char *cwd)
{
	if (!projects_dir || !*projects_dir || !cwd)
		return STATUS_IDLE;
	struct stat rs;
	if (stat(projects_dir, &rs) != 0)
		return STATUS_IDLE;
	struct entry *e = map_get(&c->cwds, cwd);
	if (!e) {
		if (c->cwds.len >= c->max)
			clear(c);
		e = entry_new(projects_dir, cwd);
		map_put(&c->cwds, e->cwd, e);
	}
	bool root_same = e->root_valid && ts_eq(&e->root_mtime, &rs.st_mtim);
	struct cand *k = active_dir(c, e, root_same);
	e->root_mtime = rs.st_mtim;
	e->root_valid = !racy(&rs.st_mtim);
	if (!k)
		return STATUS_IDLE;
	struct stat fs;
	char *path = jsonl_newest(k->path, k->names, &fs);
	if (!path)
		return STATUS_IDLE;
	if (!e->file || strcmp(e->file, path) != 0 || !ts_eq(&e->file_mtime, &fs.st_mtim) ||
	    e->file_size != fs.st_size || racy(&fs.st_mtim)) {
		e->working = jsonl_last_assistant_has_tool_use(path);
		c->counts.file_reads++;
		xfree(e->file);
		e->file = path;
		e->file_mtime = fs.st_mtim;
		e->file_size = fs.st_size;
	} else {
		xfree(path);
	}
	return e->working ? STATUS_WORKING : STATUS_IDLE;
}
