/* ratelimit — a token bucket with continuous refill (SEMANTICS.md §E.2).
 *
 * Credit is counted in whole 1/60000ths of a token (one token per minute
 * refills one unit per millisecond), so the refill is exact: a client that
 * retries while refused gets its token at the same moment as one that
 * waited (a double summed per call came in one retry late).
 * Not thread-safe: each bucket belongs to the thread that owns its key. */
#ifndef MESHD_RATELIMIT_H
#define MESHD_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

struct bucket {
	int64_t credit;   /* tokens × 60000 */
	int64_t last_ms;
	bool started;
};

/* Takes one token at now_ms; a new bucket starts full.  capacity or
 * per_minute 0 (or below) means unlimited (always true).  A clock that goes
 * back adds nothing. */
bool bucket_take(struct bucket *b, int capacity, int per_minute, int64_t now_ms) __attribute__((warn_unused_result));

#endif
