/* grant — per-peer capability grants (PROTOCOL.md §6.4): may this sender
 * use a capability ("dm", "broadcast", …) towards that recipient member?
 *
 * A member's peer_grants map a sender's pubkey to the array of
 * capabilities it is granted; a sender with no entry gets the defaults
 * (read, dm, broadcast, state-read).  Nothing here keeps state.
 *
 * Worker thread, owner shard only (it reads the shard's member cache).
 */
#ifndef MESHD_GRANT_H
#define MESHD_GRANT_H

#include <stdbool.h>

struct member;
struct presence;

/* Does recipient member `to` let this sender use `cap`?  The member pubkey's
 * entry decides; without one (and unless member_key_only), the session
 * pubkey's; without either, the defaults.  An entry that is not an array
 * counts as none. */
bool grant_allows(const struct member *to, const struct presence *from, const char *cap,
		  bool member_key_only);

#endif
