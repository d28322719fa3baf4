/* ratelimit — token bucket; see include/meshd/ratelimit.h. */
#include "config.h"

#include "meshd/ratelimit.h"

#define UNIT 60000 /* credit per token: ms per minute */

bool bucket_take(struct bucket *b, int capacity, int per_minute, int64_t now_ms)
{
	if (capacity <= 0 || per_minute <= 0)
		return true;
	int64_t full = (int64_t)capacity * UNIT;
	if (!b->started) {
		b->started = true;
		b->credit = full;
		b->last_ms = now_ms;
	}
	int64_t elapsed = now_ms - b->last_ms;
	if (elapsed > 0) {
		/* Past a full bucket's worth of time the sum only clamps: bounded
		 * before multiplying, so a long idle cannot overflow. */
		int64_t add = elapsed < full / per_minute + 1 ? elapsed * per_minute : full;
		b->credit = b->credit + add < full ? b->credit + add : full;
		b->last_ms = now_ms;
	}
	if (b->credit > full)
		b->credit = full; /* the capacity was lowered */
	if (b->credit < UNIT)
		return false;
	b->credit -= UNIT;
	return true;
}
