/* hookrate — the hook endpoint's bounded bucket table; see include/meshd/hookrate.h. */
#include "config.h"

#include <pthread.h>

#include "meshd/alloc.h"
#include "meshd/hookrate.h"
#include "meshd/map.h"
#include "meshd/ratelimit.h"

/* A bucket of capacity = refill per minute is full again a minute after its
 * last take, whatever it held. */
#define FULL_AGAIN_MS 60000

struct entry {
	char *key;
	struct bucket b;
};

struct hookrate {
	pthread_mutex_t lock;
	struct map keys; /* key -> struct entry* */
	size_t max;
};

struct hookrate *hookrate_new(size_t max_keys)
{
	struct hookrate *r = xcalloc(1, sizeof(*r));
	pthread_mutex_init(&r->lock, NULL);
	map_init(&r->keys);
	r->max = max_keys;
	return r;
}

static void entry_free(struct entry *e)
{
	xfree(e->key);
	xfree(e);
}

void hookrate_free(struct hookrate *r)
{
	if (!r)
		return;
	const char *k;
	void *v;
	for (size_t i = 0; map_next(&r->keys, &i, &k, &v);)
		entry_free(v);
	map_free(&r->keys);
	pthread_mutex_destroy(&r->lock);
	xfree(r);
}

/* Drops the buckets that are full again; r->lock held. */
static void expire_locked(struct hookrate *r, int64_t now_ms)
{
	const char *k;
	void *v;
	for (size_t i = 0; map_next(&r->keys, &i, &k, &v);) {
		struct entry *e = v;
		if (now_ms - e->b.last_ms >= FULL_AGAIN_MS) {
			map_del(&r->keys, k);
			entry_free(e);
		}
	}
}

bool hookrate_take(struct hookrate *r, const char *key, int per_minute, int64_t now_ms)
{
	if (per_minute <= 0)
		return true;
	pthread_mutex_lock(&r->lock);
	struct entry *e = map_get(&r->keys, key);
	if (!e && r->keys.len >= r->max)
		expire_locked(r, now_ms);
	bool ok;
	if (!e && r->keys.len >= r->max) {
		ok = false;
	} else {
		if (!e) {
			e = xcalloc(1, sizeof(*e));
			e->key = xstrdup(key);
			map_put(&r->keys, e->key, e);
		}
		ok = bucket_take(&e->b, per_minute, per_minute, now_ms);
	}
	pthread_mutex_unlock(&r->lock);
	return ok;
}

size_t hookrate_size(struct hookrate *r)
{
	pthread_mutex_lock(&r->lock);
	size_t n = r->keys.len;
	pthread_mutex_unlock(&r->lock);
	return n;
}
