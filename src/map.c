/* map — string-keyed open-addressing hash map; see include/meshd/map.h. */
#include "config.h"

#include <string.h>

#include "meshd/alloc.h"
#include "meshd/map.h"

static const char tombstone_mark;
#define TOMBSTONE (&tombstone_mark)

/* FNV-1a: short keys (ids, hex pubkeys), no adversarial control over the
 * table size matters here because every key is authenticated or ours. */
uint32_t map_hash(const char *key)
{
	uint32_t h = 2166136261u;
	for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
		h ^= *p;
		h *= 16777619u;
	}
	return h;
}

void map_init(struct map *m)
{
	memset(m, 0, sizeof(*m));
}

void map_free(struct map *m)
{
	xfree(m->slots);
	memset(m, 0, sizeof(*m));
}

static struct map_entry *find(const struct map *m, const char *key, uint32_t h)
{
	if (!m->cap)
		return NULL;
	size_t mask = m->cap - 1;
	for (size_t i = h & mask;; i = (i + 1) & mask) {
		struct map_entry *e = &m->slots[i];
		if (!e->key)
			return NULL;
		if (e->key != TOMBSTONE && e->hash == h && strcmp(e->key, key) == 0)
			return e;
	}
}

static void grow(struct map *m)
{
	struct map_entry *old = m->slots;
	size_t old_cap = m->cap;
	m->cap = old_cap ? old_cap * 2 : 16;
	/* Rehash in place of tombstone-heavy tables without growing. */
	if (old_cap && m->len * 2 < old_cap)
		m->cap = old_cap;
	m->slots = xcalloc(m->cap, sizeof(*m->slots));
	m->used = m->len = 0;
	for (size_t i = 0; i < old_cap; i++) {
		struct map_entry *e = &old[i];
		if (!e->key || e->key == TOMBSTONE)
			continue;
		size_t mask = m->cap - 1;
		size_t j = e->hash & mask;
		while (m->slots[j].key)
			j = (j + 1) & mask;
		m->slots[j] = *e;
		m->len++;
		m->used++;
	}
	xfree(old);
}

void *map_get(const struct map *m, const char *key)
{
	struct map_entry *e = find(m, key, map_hash(key));
	return e ? e->value : NULL;
}

void *map_put(struct map *m, const char *key, void *value)
{
	uint32_t h = map_hash(key);
	struct map_entry *e = find(m, key, h);
	if (e) {
		void *prev = e->value;
		e->value = value;
		e->key = key;
		return prev;
	}
	if ((m->used + 1) * 4 > m->cap * 3)
		grow(m);
	size_t mask = m->cap - 1;
	size_t i = h & mask;
	while (m->slots[i].key && m->slots[i].key != TOMBSTONE)
		i = (i + 1) & mask;
	if (!m->slots[i].key)
		m->used++;
	m->slots[i] = (struct map_entry){ key, value, h };
	m->len++;
	return NULL;
}

void *map_del(struct map *m, const char *key)
{
	struct map_entry *e = find(m, key, map_hash(key));
	if (!e)
		return NULL;
	void *prev = e->value;
	e->key = TOMBSTONE;
	e->value = NULL;
	m->len--;
	return prev;
}

bool map_next(const struct map *m, size_t *i, const char **key, void **value)
{
	for (; *i < m->cap; (*i)++) {
		struct map_entry *e = &m->slots[*i];
		if (e->key && e->key != TOMBSTONE) {
			*key = e->key;
			*value = e->value;
			(*i)++;
			return true;
		}
	}
	return false;
}
