/* peerstate — what a member leaves behind between its connections
 * (PROTOCOL.md §5.5, §7.7; table mesh.peer_state, one row per mesh and
 * member): groups, profile, visibility, last display name, last summary,
 * cumulative stats and when it was last seen.
 *
 * Written behind (state lane) each time a handshaken connection of the
 * member closes, whichever hello kind it came with; read with the member
 * lookup of the next hello, on the same lane, so a hello after a close sees
 * that close's row.  A member `hello` that finds a row is "restored"
 * (hello_ack's restored fields, peer_returned); a session_hello never is.
 *
 * Worker thread, owner shard only.
 */
#ifndef MESHD_PEERSTATE_H
#define MESHD_PEERSTATE_H

#include <stdbool.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "meshd/dbjob.h" /* SQL_ISO8601 */

struct presence;

/* The lookup's columns for the row (appended to handshake's member lookup;
 * peer_state aliased ps). */
#define PEERSTATE_SQL_COLUMNS \
	"ps.id IS NOT NULL, ps.groups::text, ps.profile::text, ps.visible," \
	" ps.last_summary, ps.cumulative_stats::text, " SQL_ISO8601("ps.last_seen_at")
#define PEERSTATE_SQL_NCOLUMNS 7

/* The cumulative stats keys, in the order restoredStats lists them. */
enum { PEERSTATE_MESSAGES_IN, PEERSTATE_MESSAGES_OUT, PEERSTATE_TOOL_CALLS, PEERSTATE_ERRORS,
       PEERSTATE_NSTATS };

struct peer_saved {
	json_t *groups;          /* array, never NULL */
	json_t *profile;         /* object, never NULL */
	bool visible;
	char *last_summary;      /* NULL when none or empty */
	char *last_seen_at;      /* ISO 8601, NULL when none */
	long long stats[PEERSTATE_NSTATS];
};

/* The saved state from row 0 of res at column `col` (PEERSTATE_SQL_COLUMNS),
 * or NULL when the member has none. */
struct peer_saved *peerstate_from_row(PGresult *res, int col);
void peerstate_free(struct peer_saved *ps);

/* restoredStats: {messagesIn, messagesOut, toolCalls, errors}. */
json_t *peerstate_stats_json(const struct peer_saved *ps);

/* p's connection closed: its member's state is upserted, this connection's
 * set_stats added to the stored cumulative stats (in SQL, so two
 * connections of one member closing together both count). */
void peerstate_save(struct presence *p);

#endif
