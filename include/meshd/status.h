/* status — the pure parts of the presence status engine: names, the
 * source-precedence write rule (PROTOCOL.md §7.1, SEMANTICS.md §B.2–§B.3)
 * and the priority delivery gate (§B.8).  JSONL inference from Claude Code
 * transcripts is jsonl.h's.
 *
 * Nothing here keeps state: the caller owns the struct status_state (the
 * presence's fields) and the clock.  Pure; any thread.
 */
#ifndef MESHD_STATUS_H
#define MESHD_STATUS_H

#include <stdbool.h>
#include <stdint.h>

#include "meshd/shard.h" /* enum peer_status, enum status_source */

/* Message priorities as a bitmask, for status_deliverable(). */
enum { PRIO_NOW = 1, PRIO_NEXT = 2, PRIO_LOW = 4 };

/* "idle", "working", "dnd" ("idle" for an out-of-range value). */
const char *status_name(enum peer_status s);
/* Exactly "idle", "working" or "dnd" (case-sensitive); false otherwise,
 * *out untouched. */
bool status_parse(const char *s, enum peer_status *out) __attribute__((warn_unused_result));
/* "jsonl", "manual", "hook" ("jsonl" for an out-of-range value: rank 1). */
const char *status_source_name(enum status_source src);

/* A presence's status triple. */
struct status_state {
	enum peer_status status;
	enum status_source source;
	int64_t updated_ms;          /* wall clock, ms since the epoch */
};

/* Fresh: 0 <= now_ms - updated_ms <= fresh_window_ms (inclusive; a future
 * timestamp is not fresh).  Same window for every source (§B.2). */
bool status_is_fresh(const struct status_state *st, int64_t now_ms, int64_t fresh_window_ms);
/* isHookFresh: source is hook and status_is_fresh(). */
bool status_is_hook_fresh(const struct status_state *st, int64_t now_ms,
			  int64_t fresh_window_ms);

/* writeStatus (§7.1 / §B.3), applied to *st; exactly one of:
 *   status differs             -> status, source, updated = now
 *   rank(source) >= rank(old)  -> source, updated = now
 *   old entry fresh            -> updated = now (keeps the stronger source)
 *   otherwise (stale)          -> source, updated = now (honest downgrade)
 * No DND guard: callers apply "only set_status leaves dnd" themselves. */
void status_write(struct status_state *st, enum peer_status status, enum status_source source,
		  int64_t now_ms, int64_t fresh_window_ms);

/* deliverablePriorities (§B.8): idle -> NOW|NEXT|LOW; working, dnd and
 * anything else -> NOW. */
unsigned status_deliverable(enum peer_status s);

#endif
