/* ratelimit — token bucket; see include/meshd/ratelimit.h. */
#include "config.h"

#include "meshd/ratelimit.h"

bool bucket_take(struct bucket *b, int capacity, int per_minute, int64_t now_ms)
{
	if (capacity <= 0 || per_minute <= 0)
		return true;
	if (!b->started) {
		b->started = true;
		b->tokens = capacity;
		b->last_ms = now_ms;
	}
	int64_t elapsed = now_ms - b->last_ms;
	if (elapsed > 0) {
		b->tokens += (double)elapsed * per_minute / 60000.0;
		if (b->tokens > capacity)
			b->tokens = capacity;
		b->last_ms = now_ms;
	}
	if (b->tokens < 1.0)
		return false;
	b->tokens -= 1.0;
	return true;
}
