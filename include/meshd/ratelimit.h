/* ratelimit — a token bucket with continuous refill (SEMANTICS.md §E.2).
 * Not thread-safe: each bucket belongs to the thread that owns its key. */
#ifndef MESHD_RATELIMIT_H
#define MESHD_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

struct bucket {
	double tokens;
	int64_t last_ms;
	bool started;
};

/* Takes one token at now_ms; a new bucket starts full.  capacity or
 * per_minute 0 means unlimited (always true). */
bool bucket_take(struct bucket *b, int capacity, int per_minute, int64_t now_ms);

#endif
