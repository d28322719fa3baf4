/* claims — the pushes a presence holds a claim for and has not been seen
 * to acknowledge, with the time of each claim (PROTOCOL.md §6.7).
 *
 * A pushed row stays claimed for CLAIM_LEASE_SECONDS; once the lease has
 * run out, the next drain of a presence that may receive it claims and
 * pushes it again.  The broker needs two answers from that, without asking
 * the database:
 *  - must a direct send to this presence drain (the reference's trigger,
 *    §6.6) instead of taking the fast path, because an older claim may have
 *    run out?  claims_oldest() + lease <= now;
 *  - when does the redelivery timer of a connection that acknowledges fire?
 *    drain.c schedules it from claims_oldest().
 *
 * Entries are kept in claim order in a ring of at most CLAIMS_TRACKED; a
 * client_ack by messageId removes its entry.  Past the ring, claims are
 * summarised by the first and last claim time, which is conservative: a
 * send drains once too often, never once too few.  An entry with an empty
 * id stands for rows some other socket or process may hold a claim on
 * (nothing acks it; a drain past its lease covers it).
 *
 * Times are a monotonic clock in ms, taken after the claim was made
 * (completion of the insert or drain), so "time + lease < drain start"
 * means the database sees that claim expired when the drain runs.
 *
 * Worker thread, owner shard only (it lives in struct presence).
 */
#ifndef MESHD_CLAIMS_H
#define MESHD_CLAIMS_H

#include <stdbool.h>
#include <stdint.h>

#include "meshd/id.h"

#define CLAIMS_TRACKED 256

struct claim {
	char id[ID_LEN + 1]; /* "" once acked, or for an anonymous entry */
	bool live;
	int64_t at_ms;
};

struct claims {
	struct claim *v;  /* ring of cap entries, head first; NULL until the first claim */
	unsigned head, n, cap;
	/* Claims that did not fit, newer than every ring entry. */
	bool spilled;
	int64_t spill_first_ms, spill_last_ms;
};

/* Records a claim made at now_ms (id may be "" or NULL: anonymous). */
void claims_add(struct claims *cl, const char *id, int64_t now_ms);
/* A client_ack names id: its entry (if tracked) goes.  True if one did. */
bool claims_ack(struct claims *cl, const char *id);
/* A drain that admitted every priority started at start_ms and claimed
 * every eligible row: each claim older than start_ms - lease_ms was
 * expired then, so it is covered (claimed again, acked, or gone). */
void claims_covered(struct claims *cl, int64_t start_ms, int64_t lease_ms);
/* The time of the oldest claim not seen acked; false when there is none. */
bool claims_oldest(const struct claims *cl, int64_t *at_ms);
/* Some claim may have run out by now_ms: a send must drain. */
bool claims_due(const struct claims *cl, int64_t now_ms, int64_t lease_ms);
void claims_free(struct claims *cl);

#endif
