/* hookrate — the token buckets of POST /hook/set-status, one per key
 * "<pid or 0>:<cwd>" (PROTOCOL.md §3.4 step 4): capacity and refill
 * HOOK_RATE_LIMIT_PER_MIN per minute.
 *
 * One table for the process, so a hook client gets the same limit whichever
 * worker its connection landed on.  A mutex guards it: it is touched by
 * hook requests only, never by the messaging path.  It is bounded: a bucket
 * untouched for a minute is full again, no different from a new one, so it
 * is dropped when room is needed; a table still full of live buckets refuses
 * new keys (429) rather than grow, so a client inventing keys cannot grow
 * the broker's memory or reset anyone else's bucket.
 *
 * Any thread.
 */
#ifndef MESHD_HOOKRATE_H
#define MESHD_HOOKRATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct hookrate;

struct hookrate *hookrate_new(size_t max_keys) __attribute__((returns_nonnull));
void hookrate_free(struct hookrate *r);

/* Takes one token from key's bucket at now_ms (per_minute 0: unlimited).
 * False: the bucket is empty, or the table is full of live buckets. */
bool hookrate_take(struct hookrate *r, const char *key, int per_minute, int64_t now_ms)
	__attribute__((warn_unused_result));

/* Buckets held (tests). */
size_t hookrate_size(struct hookrate *r);

#endif
