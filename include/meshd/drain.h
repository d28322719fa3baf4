/* drain — delivering a presence's direct rows (PROTOCOL.md §6.6, §6.5.1).
 *
 * A drain is one UPDATE … RETURNING on the queue lane that claims, in
 * order, the rows the recipient's status admits (FOR UPDATE SKIP LOCKED),
 * for CLAIM_LEASE_SECONDS; client_ack (clientack.h) marks them delivered.
 * A presence that claimed rows re-drains when the lease runs out, which is
 * how an un-acked push comes back.  Multicast rows are never drained: they
 * are inserted delivered (Q14).
 *
 * Worker thread, owner shard only, for every function here.
 */
#ifndef MESHD_DRAIN_H
#define MESHD_DRAIN_H

struct presence;

/* Delivers what is queued for p and admitted by its status (§6.6).  At
 * most one drain per presence is in flight; a request meanwhile is
 * remembered and runs when it completes.  A drain never claims rows for a
 * presence whose socket is not open (Q2). */
void drain_presence(struct presence *p);

/* Pushes a row that was inserted already claimed for p (route.h's fast
 * path: the claim a drain would have made) and arms p's redelivery as
 * such a drain would.  client_message_id and request_fingerprint may be
 * NULL (left out of the push). */
void drain_push_claimed(struct presence *p, const char *message_id, const char *sender_pubkey,
			const char *priority, const char *nonce, const char *ciphertext,
			const char *created_at, const char *client_message_id,
			const char *request_fingerprint);

#endif
