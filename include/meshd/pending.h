/* pending — hook statuses that arrived before their presence (PROTOCOL.md
 * §3.4 step 7, SEMANTICS.md §B.5).
 *
 * A hook that matches no presence is kept for PENDING_STATUS_TTL_SECONDS
 * as (pid or 0, cwd, status); a presence created in that time with exactly
 * that pid and cwd takes the newest one.  Taking it drops every entry for
 * that pid and cwd, so a status is applied once.  At most `max` entries:
 * past that the oldest goes (they expire in seconds anyway).
 *
 * One store for the process (a hook and the hello it races may land on
 * different workers), guarded by a mutex; the messaging path never touches
 * it, only hooks and new presences.  Any thread.
 */
#ifndef MESHD_PENDING_H
#define MESHD_PENDING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "meshd/shard.h" /* enum peer_status */

struct pending;

struct pending *pending_new(size_t max, int64_t ttl_ms) __attribute__((returns_nonnull));
void pending_free(struct pending *p);

void pending_put(struct pending *p, long long pid, const char *cwd, enum peer_status status,
		 int64_t now_ms);
/* The newest unexpired status for exactly (pid, cwd), into *out. */
bool pending_take(struct pending *p, long long pid, const char *cwd, int64_t now_ms,
		  enum peer_status *out) __attribute__((warn_unused_result));

/* Entries held, expired ones included until the next put or take (tests). */
size_t pending_size(struct pending *p);

#endif
