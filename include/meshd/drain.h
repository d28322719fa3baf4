/* drain — delivering a presence's direct rows (PROTOCOL.md §6.6, §6.5.1),
 * and delivering them again when they are not acknowledged (§6.7).
 *
 * A drain is one UPDATE … RETURNING on the queue lane that claims, in
 * order, the rows the recipient's status admits (FOR UPDATE SKIP LOCKED),
 * for CLAIM_LEASE_SECONDS; client_ack (clientack.h) marks them delivered.
 * Multicast rows are never drained: they are inserted delivered (Q14).
 *
 * Redelivery.  A claim that runs out makes its row eligible again; what
 * brings it again is a drain.  The rule (README "Redelivery"):
 *  - every drain the reference triggers (§6.6: a hello, a reattach, a
 *    direct send to the peer, a matching hook) claims expired rows, so a
 *    direct send to a presence whose oldest un-acked claim may have run out
 *    drains instead of taking route.c's fast path (drain_needed);
 *  - a socket that has sent a client_ack also gets a timer: the oldest
 *    push it has not acked comes again a lease after it was claimed, then
 *    at doubling intervals (lease × 2^k), at most REDELIVERY_MAX_ATTEMPTS
 *    times running, the count starting over once everything is acked.  A
 *    socket that never acks (the legacy ws-client) gets no timer, so it is
 *    not sent the same message every lease for the seven days the row lives;
 *  - once per attach, a lease after it, a drain that leaves the presence's
 *    own claims alone takes the rows another socket or a previous process
 *    claimed and never saw acked (a restart after a crash needs nothing
 *    else to deliver them).  It never sends this socket what it was sent.
 * What a presence was pushed and has not acked is kept in p->claims
 * (claims.h).
 *
 * Flow control.  A drain claims a page: at most DRAIN_PAGE_ROWS rows and
 * about a quarter of CONN_MAX_OUTPUT_BYTES of payload.  When a page was
 * full, the next is claimed only once the socket's output is down to the
 * low-water mark (a quarter of the bound), and a fast-path push arriving
 * meanwhile (or above the mark) waits for that drain instead of being
 * written.  A burst the broker makes itself (a backlog, the sends held
 * through a database outage) never takes a reader that keeps up past the
 * output bound; a peer that stops reading is dropped by its pong timeout
 * or the bound, and its claims are released (drain_detached).
 *
 * Worker thread, owner shard only, for every function here.
 */
#ifndef MESHD_DRAIN_H
#define MESHD_DRAIN_H

#include <stdbool.h>
#include <stdint.h>

struct presence;

/* Delivers what is queued for p and admitted by its status (§6.6).  At
 * most one drain per presence is in flight; a request meanwhile is
 * remembered and runs when it completes.  A drain never claims rows for a
 * presence whose socket is not open (Q2). */
void drain_presence(struct presence *p);

/* One direct row as it is pushed (§6.5.1); the two optional ids may be
 * NULL (left out of the push). */
struct drain_row {
	const char *message_id, *sender_pubkey, *priority, *nonce, *ciphertext, *created_at;
	const char *client_message_id, *request_fingerprint;
};

/* Pushes a row that was inserted already claimed for p while its socket
 * {slot, gen} was attached (route.h's fast path: the claim a drain would
 * have made) and records the claim as such a drain would.  If that socket
 * is gone, the row was released with its claims (drain_detached); if the
 * output is above the low-water mark, the row waits for the drain that
 * resumes when it falls. */
void drain_push_claimed(struct presence *p, uint32_t slot, uint32_t gen,
			const struct drain_row *r);

/* A socket attached to p (new presence or reattach): the socket is not
 * known to ack yet, and others' claims are drained a lease from now. */
void drain_attached(struct presence *p);
/* p's socket closed (or was replaced): what it was pushed and did not
 * ack, and what was claimed for it and not pushed, is released in the
 * database (queue lane, so before any later drain), and p's other
 * connections of the same member are asked to drain it.  The rows may
 * never have left the broker: a reconnect gets them at once. */
void drain_detached(struct presence *p);
/* p's output fell to the low-water mark: a paused drain goes on. */
void drain_writable(struct presence *p);
/* p's socket sent a client_ack naming these ids (either may be NULL). */
void drain_acked(struct presence *p, const char *broker_id, const char *client_id);
/* A direct send to p must drain (not take the fast path): an older claim
 * of its may have run out, and a drain claims that row first. */
bool drain_needed(const struct presence *p);

#endif
