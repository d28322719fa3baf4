/* map — a string-keyed hash map (open addressing, linear probing).
 *
 * Keys are borrowed: the map stores the pointer, so each key must live as
 * long as its entry (it is usually a field of the value, such as a
 * presence's id).  Used for the shard's mesh table and a mesh's pubkey and
 * member indexes.  Not thread-safe: each map belongs to one thread.
 */
#ifndef MESHD_MAP_H
#define MESHD_MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct map_entry {
	const char *key;   /* NULL: empty slot; MAP_TOMBSTONE: deleted */
	void *value;
	uint32_t hash;
};

struct map {
	struct map_entry *slots;
	size_t cap;        /* power of two, or 0 */
	size_t len;        /* live entries */
	size_t used;       /* live + tombstones */
};

uint32_t map_hash(const char *key);

void map_init(struct map *m);
void map_free(struct map *m);
void *map_get(const struct map *m, const char *key);
/* Inserts or replaces; returns the previous value (or NULL). */
void *map_put(struct map *m, const char *key, void *value);
/* Removes; returns the removed value (or NULL). */
void *map_del(struct map *m, const char *key);

/* Iteration: for (size_t i = 0; map_next(m, &i, &k, &v);) … — no
 * insertions during iteration; deleting the current key is allowed. */
bool map_next(const struct map *m, size_t *i, const char **key, void **value);

#endif
