/* route — messages between peers (PROTOCOL.md §6): send → ack → push,
 * drains with their claim lease, client_ack and message_status.
 *
 * An ack with queued:true is sent only when the queue row is committed
 * (D3): the insert rides the db thread's group commit, and the ack goes out
 * from the completion.  Multicast rows are inserted already delivered and
 * pushed at once (Q14); direct rows are delivered by drains, gated by the
 * recipient's status, claimed for CLAIM_LEASE_SECONDS until client_ack.
 * Worker thread, owner shard only.
 */
#ifndef MESHD_ROUTE_H
#define MESHD_ROUTE_H

#include <stdbool.h>

#include <jansson.h>

struct conn;
struct presence;
struct route_batch;
struct shard;

void route_send(struct conn *c, const json_t *msg);
void route_client_ack(struct conn *c, const json_t *msg);
void route_message_status(struct conn *c, const json_t *msg);

/* Delivers what is queued for p and admitted by its status (§6.6).  At
 * most one drain per presence is in flight; a request meanwhile is
 * remembered and runs when it completes.  A drain never claims rows for a
 * presence whose socket is not open (Q2). */
void route_drain(struct presence *p);

/* A shard's gathered sends and acks go to the db thread as one multi-row
 * INSERT and one UPDATE per flush, as dbstream.h's streams allow (force:
 * the worker's last flush); group commit does the rest. */
struct route_batch *route_batch_new(struct shard *s);
void route_batch_free(struct route_batch *b);
void route_flush(struct shard *s, bool force);

#endif
