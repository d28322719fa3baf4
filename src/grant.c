/* grant — per-peer capability grants; see include/meshd/grant.h. */
#include "config.h"

#include <string.h>

#include <jansson.h>

#include "meshd/grant.h"
#include "meshd/shard.h"
#include "meshd/thread.h"
#include "meshd/jscompat.h"

static const char *const default_caps[] = { "read", "dm", "broadcast", "state-read" };

static bool caps_allow(const json_t *caps, const char *cap)
{
	if (!caps) {
		for (size_t i = 0; i < sizeof(default_caps) / sizeof(default_caps[0]); i++)
			if (strcmp(default_caps[i], cap) == 0)
				return true;
		return false;
	}
	size_t i;
	json_t *v;
	json_array_foreach(caps, i, v) if (json_is_string(v) && strcmp(json_string_value(v), cap) == 0)
		return true;
	return false;
}

bool grant_allows(const struct member *to, const struct presence *from, const char *cap,
		  bool member_key_only)
{
	MESHD_ASSERT_ON_WORKER(from->mesh->shard);
	const json_t *caps = json_object_get(to->peer_grants, from->member->pubkey);
	if (!caps && !member_key_only && from->session_pubkey)
		caps = json_object_get(to->peer_grants, from->session_pubkey);
	if (caps && !json_is_array(caps))
		caps = NULL;
	return caps_allow(caps, cap);
}
