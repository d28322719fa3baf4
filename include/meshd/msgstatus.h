/* msgstatus — message_status (PROTOCOL.md §6.9): where a message the mesh
 * queued stands, by its full id or an unambiguous prefix, with the
 * recipients its target resolves to among the presences listed now.
 *
 * The lookup is a read on the db thread (DB_JOB_FAIL_FAST: a peer asking
 * is not kept waiting for a reconnect); the answer goes out from the
 * completion, if the asking connection is still there.
 *
 * Worker thread, owner shard only.
 */
#ifndef MESHD_MSGSTATUS_H
#define MESHD_MSGSTATUS_H

#include <jansson.h>

struct conn;

/* A message_status request: messageId must be 8–32 base62 characters
 * (else invalid_argument); 32 is an exact id, fewer a prefix (not_found,
 * ambiguous_prefix, or message_status_result). */
void msgstatus_handle(struct conn *c, const json_t *msg);

#endif
