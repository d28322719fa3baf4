/* clientack — a peer's client_ack (PROTOCOL.md §6.7): the direct row it
 * was pushed is delivered, so no drain claims it again.
 *
 * Acks are write-behind: nothing is answered and nothing waits for them.
 * A worker gathers its acks on the shard's `acks` stream (dbstream.h) and
 * sends them as one CLIENTACK_SQL_MANY statement per flush, on the state
 * lane.
 *
 * Worker thread, owner shard only.
 */
#ifndef MESHD_CLIENTACK_H
#define MESHD_CLIENTACK_H

#include <jansson.h>

struct conn;

/* One iteration's client_acks of a worker ($1: a JSON array of
 * {mesh, bid, cid, mpk, spk}).  Each ack matches by id or by
 * client_message_id (a union, so each side is an index condition), within
 * the acker's mesh and targets (§6.7).
 *
 * No clause here may imply meshd_message_queue_pending_idx's predicate
 * (delivered_at IS NULL): its statistics count the few live pending rows,
 * not the dead entries every ack leaves until vacuum, so the planner
 * thinks scanning all of it is free and picks it over the primary key
 * (a full scan of the index per batch, 30 µs per ack at 100 000 rows).
 * Hence "pending" is a column of a MATERIALIZED t (a plain CTE would have
 * the filter pushed down into its branches), and the update keeps the
 * first delivered_at should a concurrent writer have set it meanwhile. */
#define CLIENTACK_SQL_MANY \
	"WITH a AS (SELECT * FROM jsonb_to_recordset($1::jsonb)" \
	" AS a(mesh text, bid text, cid text, mpk text, spk text))," \
	" t AS MATERIALIZED (" \
	" SELECT q.id, q.delivered_at IS NULL AS pending, q.target_spec, a.mpk, a.spk" \
	" FROM a JOIN mesh.message_queue q ON q.id = a.bid AND q.mesh_id = a.mesh" \
	" UNION SELECT q.id, q.delivered_at IS NULL, q.target_spec, a.mpk, a.spk" \
	" FROM a JOIN mesh.message_queue q ON q.mesh_id = a.mesh AND q.client_message_id = a.cid)" \
	" UPDATE mesh.message_queue q SET delivered_at = coalesce(q.delivered_at, now()) FROM t" \
	" WHERE q.id = t.id AND t.pending" \
	" AND (t.target_spec = t.mpk OR t.target_spec = t.spk OR t.target_spec = '*'" \
	" OR t.target_spec LIKE '@%' OR t.target_spec LIKE '#%')"

/* A client_ack request (by clientMessageId and/or brokerMessageId):
 * gathered for the next flush, unless it names one of the mesh's recent
 * multicast rows (delivered already) or names nothing. */
void clientack_handle(struct conn *c, const json_t *msg);

#endif
