/* limits — the bounds on what one peer may make the broker store and show
 * to the others (README "Limits"), and the check they share.
 *
 * The reference bounds none of these but the frame; one member could then
 * grow every other member's peers_list past its output bound (and be the
 * reason they are disconnected), or write megabytes to PostgreSQL per
 * join_group.  Any thread (pure).
 */
#ifndef MESHD_LIMITS_H
#define MESHD_LIMITS_H

#include <stdbool.h>
#include <stddef.h>

#define GROUP_NAME_MAX_BYTES 128
#define GROUP_ROLE_MAX_BYTES 64
#define GROUPS_MAX 64            /* groups per presence */
#define SUMMARY_MAX_BYTES 4096
#define PROFILE_TEXT_MAX_BYTES 2048 /* avatar, title, bio, each */
#define CAPABILITIES_MAX 32
#define CAPABILITY_MAX_BYTES 64

/* At most max bytes, and no control character (U+0000–U+001F, U+007F):
 * what is shown to other peers is one line of text.  s may hold NULs
 * (a JSON string's length is len). */
bool limit_text_ok(const char *s, size_t len, size_t max);
/* A group's name and role (NULL: none) are within their bounds: what
 * join_group refuses and a hello leaves out. */
bool limit_group_ok(const char *name, const char *role);

#endif
