/* session — per-connection protocol state; see include/meshd/session.h. */
#include "config.h"

#include "meshd/alloc.h"
#include "meshd/hello.h"
#include "meshd/peerstate.h"
#include "meshd/session.h"

struct session *session_new(void)
{
	return xcalloc(1, sizeof(struct session));
}

void session_end_handshake(struct session *s)
{
	s->handshaking = false;
	if (s->hello) {
		hello_free(s->hello);
		xfree(s->hello);
		s->hello = NULL;
	}
	peerstate_free(s->saved);
	s->saved = NULL;
}

void session_free(struct session *s)
{
	if (!s)
		return;
	session_end_handshake(s);
	xfree(s);
}
