/* presence — a peer's life in its mesh (PROTOCOL.md §7): attach to a
 * socket, lease grace and eviction, heartbeat, status and summary, groups,
 * list_peers, and the system pushes that announce it.
 *
 * Worker thread, owner shard only, for every function here.  The stored
 * row (mesh.presence) follows the in-memory presence through write-behind
 * jobs on the db thread.
 */
#ifndef MESHD_PRESENCE_H
#define MESHD_PRESENCE_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "meshd/shard.h" /* enum peer_status */

struct conn;
struct peer_saved;
struct presence;
struct shard;

/* Links p and c (lease online, eviction cancelled, heartbeat reset). */
void presence_attach(struct presence *p, struct conn *c);
/* Unlinks p from its socket without closing it. */
void presence_detach(struct presence *p);
/* p's socket closed: lease offline, eviction armed (§7.7). */
void presence_conn_closed(struct presence *p);
/* A pong: the heartbeat (last_ping_at, written at most every half interval). */
void presence_heartbeat(struct presence *p);

/* Evicts p: peer_left to other members when `announce`, row marked
 * disconnected, audit peer_left; frees p. */
void presence_remove(struct presence *p, bool announce);
/* §7.9 session-id dedup: socket closed 1000 session_replaced, row marked
 * disconnected, no peer_left. */
void presence_replace(struct presence *p);
/* Reattach: the stored row is live again. */
void presence_store_restore(struct presence *p);

/* §7.10 peer_joined to the mesh (session_hello: same-member peers too), or
 * peer_returned with lastSeenAt and summary when the hello was restored
 * (saved: the member's peer state, peerstate.h; NULL otherwise). */
void presence_announce_joined(struct presence *p, bool session, const struct peer_saved *saved);
/* A system push (§6.5.3) to every open, handshaken socket of p's mesh for
 * which want(recipient, subject) is true. */
void presence_broadcast_system(struct presence *subject, const char *event, json_t *data,
			       bool (*want)(const struct presence *to, const struct presence *subject));

/* Listed like the reference's non-disconnected rows (list_peers,
 * message_status recipients): stored, and online or in grace with a pong
 * younger than PRESENCE_STALE_SECONDS (the db thread's stale sweep marks
 * such a row disconnected, db.c). */
bool presence_listed(const struct presence *p, int64_t now_mono);

/* p has a socket whose hello_ack went out. */
bool presence_handshaken(const struct presence *p);
/* Sends a serialised frame to p's socket if it is open and handshaken. */
bool presence_send(struct presence *p, const char *text, size_t len);

/* Requests after the handshake (§7.3–7.5, §7.11). */
void presence_list_peers(struct conn *c, const json_t *msg);
void presence_set_status(struct conn *c, const json_t *msg);
void presence_set_summary(struct conn *c, const json_t *msg);
void presence_join_group(struct conn *c, const json_t *msg);
void presence_leave_group(struct conn *c, const json_t *msg);
/* The extras current clients send (§7.12): set_stats (no reply; the five
 * counters only, shown in peers_list.stats, summed into the peer state at
 * close), set_visible (ack, then peer_visible / peer_hidden to every other
 * connection of the mesh), set_profile (avatar, title, bio, capabilities
 * merged; ack). */
void presence_set_stats(struct conn *c, const json_t *msg);
void presence_set_visible(struct conn *c, const json_t *msg);
void presence_set_profile(struct conn *c, const json_t *msg);

/* Writes status with the §7.1 rule (memory and row).  True when the new
 * status admits priorities the old one held back (the caller drains). */
bool presence_write_status(struct presence *p, int status, int source) __attribute__((warn_unused_result));

/* The status a drain gates on (§6.6): dnd; a fresh hook status; else what
 * the transcript says, written back with source jsonl (presence_write_status).
 * The transcript is read here, on the worker (status.h bounds the I/O). */
enum peer_status presence_effective_status(struct presence *p);

/* `@name` reaches a peer in group `name`, exactly: "group routing is
 * exact-name only" (§6.3); `@backend` does not reach `backend/api`.
 * Multicast rows are never drained (Q14), so the push is the whole rule. */
bool presence_in_group(const struct presence *p, const char *name);

/* Every TTL_SWEEP_INTERVAL_SECONDS, this shard only (D10):
 * TTL: `working` older than STATUS_TTL_SECONDS becomes idle/jsonl (§7.1),
 * counted in broker_ttl_sweeps_total{flipped}; the peer is drained (D4).
 * (The stale-presence sweep is process-wide, on the db thread: db.c.) */
void presence_sweep_shard(struct shard *s);

/* Shutdown: every presence of the shard is marked disconnected (D10: only ours). */
void presence_shutdown_shard(struct shard *s);

#endif
