/* join — POST /join, the v1 invite join the claudemesh CLI sends
 * (SEMANTICS.md §C.4): the payload's owner signature, the mesh, the
 * invite, the already-a-member shortcut, then a use consumed and the
 * member inserted.
 *
 * The reference runs the consume and the insert as separate statements;
 * here they are one (D6), so a failed insert gives the use back.  The
 * invite's row serialises joins of one invite: of N concurrent joins of a
 * k-use invite exactly k win.  A read, then the write, on the state lane;
 * the worker answers from the completions.  Worker thread.
 */
#ifndef MESHD_JOIN_H
#define MESHD_JOIN_H

#include <stddef.h>

struct conn;

void join_http(struct conn *c, const char *body, size_t body_len);

#endif
