/* route — a peer's send (PROTOCOL.md §6.1): validation, the rate limit and
 * the direct pre-flight, then the insert, the ack and the fan-out.
 *
 * An ack with queued:true is sent only when the queue row is committed
 * (D3): the insert rides the db thread's group commit, and the ack goes out
 * from the completion.  Multicast rows are inserted already delivered and
 * pushed at once (Q14); direct rows are delivered by drains (drain.h),
 * gated by the recipient's status, or, when the recipient can take them at
 * once, inserted already claimed for it and pushed from the completion.
 * Worker thread, owner shard only, but route_target_class (any thread).
 */
#ifndef MESHD_ROUTE_H
#define MESHD_ROUTE_H

#include <stdbool.h>

#include <jansson.h>

struct conn;
struct route_batch;
struct shard;

void route_send(struct conn *c, const json_t *msg);

/* What a targetSpec names (§6.3): "*" and "@all" everyone, "@name" a
 * group, "#id" a topic, anything else a pubkey.  Pure. */
enum route_target {
	ROUTE_TARGET_DIRECT, ROUTE_TARGET_BROADCAST, ROUTE_TARGET_GROUP, ROUTE_TARGET_TOPIC
};
enum route_target route_target_class(const char *target_spec);

/* A shard's gathered sends go to the db thread as one multi-row INSERT per
 * flush, as dbstream.h's streams allow (force: the worker's last flush);
 * group commit does the rest. */
struct route_batch *route_batch_new(struct shard *s);
void route_batch_free(struct route_batch *b);
void route_flush(struct shard *s, bool force);

#endif
