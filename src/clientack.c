/* clientack — client_ack, gathered for the shard's ack stream; see include/meshd/clientack.h. */
#include "config.h"

#include <jansson.h>

#include "meshd/clientack.h"
#include "meshd/dbstream.h"
#include "meshd/drain.h"
#include "meshd/session.h"
#include "meshd/shard.h"
#include "meshd/thread.h"
#include "meshd/jscompat.h"

void clientack_handle(struct conn *c, const json_t *msg)
{
	struct presence *p = session_presence(c);
	struct shard *s = p->mesh->shard;
	MESHD_ASSERT_ON_WORKER(s);
	const char *cid = js_field_truthy(msg, "clientMessageId");
	const char *bid = js_field_truthy(msg, "brokerMessageId");
	if (!cid && !bid)
		return;
	drain_acked(p, bid, cid);
	/* The daemon acks multicast pushes too (by messageId, which it also
	 * sends as clientMessageId): those rows are delivered already. */
	if (mesh_is_recent_multicast(p->mesh, bid ? bid : cid))
		return;
	json_t *a = json_object();
	json_object_set_new(a, "mesh", json_string(p->mesh->id));
	json_object_set_new(a, "bid", bid ? json_string(bid) : json_null());
	json_object_set_new(a, "cid", cid ? json_string(cid) : json_null());
	json_object_set_new(a, "mpk", json_string(p->member->pubkey));
	json_object_set_new(a, "spk", p->session_pubkey ? json_string(p->session_pubkey) : json_null());
	db_stream_add(&s->acks, a);
}
