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
 * Worker thread, owner shard only, for every function here.
 */
#ifndef MESHD_DRAIN_H
#define MESHD_DRAIN_H

#include <stdbool.h>

struct presence;

/* Delivers what is queued for p and admitted by its status (§6.6).  At
 * most one drain per presence is in flight; a request meanwhile is
 * remembered and runs when it completes.  A drain never claims rows for a
 * presence whose socket is not open (Q2). */
void drain_presence(struct presence *p);

/* Pushes a row that was inserted already claimed for p (route.h's fast
 * path: the claim a drain would have made) and records the claim as such
 * a drain would.  client_message_id and request_fingerprint may be NULL
 * (left out of the push). */
void drain_push_claimed(struct presence *p, const char *message_id, const char *sender_pubkey,
			const char *priority, const char *nonce, const char *ciphertext,
			const char *created_at, const char *client_message_id,
			const char *request_fingerprint);

/* A socket attached to p (new presence or reattach): the socket is not
 * known to ack yet, and others' claims are drained a lease from now. */
void drain_attached(struct presence *p);
/* Rows another presence claimed may be p's to claim a lease from now (that
 * presence left before its push): drained then, as for an attach. */
void drain_expect(struct presence *p);
/* p's socket sent a client_ack naming these ids (either may be NULL). */
void drain_acked(struct presence *p, const char *broker_id, const char *client_id);
/* A direct send to p must drain (not take the fast path): an older claim
 * of its may have run out, and a drain claims that row first. */
bool drain_needed(const struct presence *p);

#endif
