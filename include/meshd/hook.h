/* hook — POST /hook/set-status (PROTOCOL.md §3.4, SEMANTICS.md §B.4–B.5):
 * Claude Code's hooks report a session busy or idle by its cwd, pid and
 * session id, with no authentication and no idea which mesh it is in.
 *
 * The worker that reads the request counts it, bounds and parses it, takes
 * a token (hookrate.h), validates it, and then asks every worker, through
 * their inboxes, for its best presence:
 *
 *   rank 3  sessionId == session_id  (the real CLI sends the Claude
 *           session UUID, which a launched session's presence carries;
 *           the pid it sends is Claude Code's own, which never matches)
 *   rank 2  cwd == cwd and pid == pid (pid given)
 *   rank 1  cwd == cwd, the latest connected
 *
 * among presences that are listed (not disconnected), across every mesh.
 * With every answer in, it picks the best and asks that presence's owner to
 * write the status there (a hook never clears dnd; one that admits held
 * messages drains them at once, D4); then it answers.  No presence: the
 * status is kept pending (pending.h) and applied when one registers.
 *
 * Why ask every worker rather than keep a shared index: the index would be
 * written by every hello, move and status change of every mesh, under a
 * lock or with a publication scheme, for the sake of a request that comes a
 * few times a minute per session; the question costs one message per
 * worker and a scan of its listed presences, on the hook's time only.
 *
 * Worker thread, the shard's own, for every function here.
 */
#ifndef MESHD_HOOK_H
#define MESHD_HOOK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "meshd/id.h"
#include "meshd/inbox.h"
#include "meshd/shard.h"

struct conn;
struct http_request;
struct presence;

/* Every hook message between workers (MSG_HOOK_*): copies only. */
struct msg_hook {
	struct msg hdr;
	struct inbox *reply;      /* the asking worker's */
	uint64_t req;             /* its request id */
	int shard;                /* FOUND: whose candidate */
	int rank;                 /* FOUND: 0 for none */
	int64_t connected_ms;     /* FOUND: the candidate's */
	long long pid;            /* FIND */
	char *cwd;                /* FIND */
	char *session_id;         /* FIND; NULL when not given */
	char *mesh_id;            /* FOUND, APPLY */
	char presence_id[ID_LEN + 1]; /* FOUND, APPLY, APPLIED ("" when gone) */
	enum peer_status status;  /* APPLY */
};

/* One request (endpoint.c): answers it now or, after asking the workers,
 * later (conn_http_defer). */
void hook_http(struct conn *c, const struct http_request *req, const char *body,
	       size_t body_len);

/* A MSG_HOOK_* message for this shard (the worker's inbox); frees it. */
void hook_on_message(struct shard *s, struct msg_hook *m);
void hook_msg_free(struct msg_hook *m);

/* A presence was just stored: a pending hook status for its pid and cwd is
 * applied now (§B.5). */
void hook_apply_pending(struct presence *p);

/* What the shard keeps for hook requests in flight. */
void hook_shard_free(struct shard *s);

#endif
