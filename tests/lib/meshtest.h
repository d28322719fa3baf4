/* meshtest — claudemesh peers for integration tests: seeding meshes and
 * members with SQL, and peers that connect over tests/lib/wsc with real
 * ed25519 hellos and crypto_box DMs (contrib/meshclient).  Test code only.
 */
#ifndef MESHD_TEST_MESHTEST_H
#define MESHD_TEST_MESHTEST_H

#include <stdbool.h>

#include "meshclient.h"
#include "wsc.h"

/* Seeds a user (once per database), a mesh and returns nothing; fails the test on error. */
void mt_seed_mesh(const char *url, const char *mesh_id, const char *name);
/* Seeds a member with a fresh random identity; fills id and member_id. */
void mt_seed_member(const char *url, const char *mesh_id, const char *member_id,
		    const char *display_name, struct mc_identity *id);

struct mt_peer {
	struct wsc *ws;
	struct mc_identity id;       /* member key */
	struct mc_identity session;  /* session key (session peers) */
	bool is_session;
	char mesh_id[64];
	char member_id[64];
	char presence_id[64];
	char name[64];
};

/* Seeds mesh `mesh` (named after itself) with n members "<mesh>-m<i>"
 * named a, b, c…; fails the test on error. */
void mt_seed_members(const char *url, const char *mesh, int n, struct mc_identity *ids);

/* Connects and sends a member hello (groups: NULL-terminated names, or NULL);
 * waits for hello_ack.  session_id NULL picks a random one. */
bool mt_connect(struct mt_peer *p, int port, const char *mesh_id, const char *member_id,
		const struct mc_identity *id, const char *name, const char *const *groups);
/* Where a peer says it runs (hello's sessionId, pid, cwd); NULL fields (and
 * a NULL where) take the defaults: a random session id, getpid(),
 * "/tmp/meshtest". */
struct mt_where {
	const char *session_id;
	long long pid;
	const char *cwd;
};
bool mt_connect_where(struct mt_peer *p, int port, const char *mesh_id, const char *member_id,
		      const struct mc_identity *id, const char *name, const char *const *groups,
		      const struct mt_where *where);
bool mt_connect_session_where(struct mt_peer *p, int port, const char *mesh_id,
			      const char *member_id, const struct mc_identity *parent,
			      const char *name, const char *const *groups,
			      const struct mt_where *where);
/* The same, handing the hello_ack frame to *ack (the caller frees it). */
bool mt_connect_ack(struct mt_peer *p, int port, const char *mesh_id, const char *member_id,
		    const struct mc_identity *id, const char *name, const char *const *groups,
		    const struct mt_where *where, struct mc_frame *ack);
bool mt_connect_session_ack(struct mt_peer *p, int port, const char *mesh_id,
			    const char *member_id, const struct mc_identity *parent,
			    const char *name, const char *const *groups,
			    const struct mt_where *where, struct mc_frame *ack);
/* The same with session_hello (a fresh session key). */
bool mt_connect_session(struct mt_peer *p, int port, const char *mesh_id, const char *member_id,
			const struct mc_identity *parent, const char *name,
			const char *const *groups);
void mt_close(struct mt_peer *p);

/* The DM-able pubkey of p: its session key if it has one. */
const char *mt_pubkey(const struct mt_peer *p);

/* Sends a raw frame. */
bool mt_send_raw(struct mt_peer *p, const char *json);
/* Encrypts `text` for `to` and sends it; returns the ack (caller frees). */
bool mt_dm(struct mt_peer *from, const struct mt_peer *to, const char *text, const char *priority,
	   const char *client_id, struct mc_frame *ack);
/* Sends a multicast (`*`, `@g`, `#t`) with base64 text; returns the ack. */
bool mt_multicast(struct mt_peer *from, const char *target, const char *text,
		  const char *priority, struct mc_frame *ack);

/* The next text frame within timeout_ms (pings are answered by wsc). */
bool mt_next(struct mt_peer *p, struct mc_frame *f, int timeout_ms);
/* The next frame of type t (others are skipped and counted in *skipped). */
bool mt_wait(struct mt_peer *p, enum mc_frame_type t, struct mc_frame *f, int timeout_ms);
/* The next non-system push; false on timeout. */
bool mt_wait_push(struct mt_peer *p, struct mc_frame *f, int timeout_ms);
/* No text frame (other than system pushes when allow_system) within timeout_ms. */
bool mt_quiet(struct mt_peer *p, int timeout_ms, bool allow_system);
/* Sends a DM and fails the test unless its ack says queued. */
void mt_dm_ok(struct mt_peer *from, const struct mt_peer *to, const char *text,
	      const char *priority);
/* Fails the test unless the next push to `to` (within 10 s) is the DM
 * `text`, with `priority` (NULL: any). */
void mt_expect_dm(struct mt_peer *to, const char *text, const char *priority);
/* The status list_peers gives p for the peer with `pubkey` ("" if not
 * listed), in a buffer overwritten by the next call. */
const char *mt_peer_status(struct mt_peer *p, const char *pubkey);
/* p's list_peers entry for pubkey (a new reference), or NULL if unlisted. */
json_t *mt_peer_entry(struct mt_peer *p, const char *pubkey);
/* Sends json (a frame the mc_* builders made) and frees it. */
void mt_send_owned(struct mt_peer *p, char *json);

/* A private CLAUDE_PROJECTS_DIR holding one transcript for project `key`
 * (the directory name a cwd maps to, e.g. "-tmp-meshtest"). */
struct mt_projects {
	char dir[64];
	char file[512];
};
/* Makes it, with a transcript whose last assistant entry uses a tool
 * (working) or not (idle). */
void mt_projects_make(struct mt_projects *p, const char *key, bool working);
void mt_projects_write(const struct mt_projects *p, bool working);
void mt_projects_remove(const struct mt_projects *p);

/* Decrypts a DM push received by p. */
bool mt_open_dm(const struct mt_peer *p, const struct mc_frame *push, char *out, size_t cap);

#endif
