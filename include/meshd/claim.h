/* claim — POST /invites/<code>/claim, the v2 invite claim (PROTOCOL.md
 * §3.5, SEMANTICS.md §C.6, decision D6).
 *
 * The checks run in the contract's order and give its answers; what
 * differs from the reference is that nothing is consumed unless the claim
 * succeeds: the recipient key (and the mesh's root key) are decoded before,
 * and the use count, claimed_by_pubkey, the member row and the #general
 * topic membership are one statement, so one transaction.  Claims of one
 * invite serialise on its row: of N concurrent claims of a k-use invite,
 * exactly k win, whatever the interleaving.
 *
 * Two round trips on the state lane: a read of the invite and its mesh,
 * then the consuming statement; the worker that received the request
 * answers from the completions (conn_http_defer).  Worker thread.
 */
#ifndef MESHD_CLAIM_H
#define MESHD_CLAIM_H

#include <stddef.h>

struct conn;

/* The route, for a target "/invites/<code>/claim" (one segment, verbatim);
 * code points into the request. */
void claim_http(struct conn *c, const char *code, size_t code_len, const char *body,
		size_t body_len);

/* The code of a claim target, or NULL when target is not one. */
const char *claim_code(const char *target, size_t len, size_t *code_len);

#endif
