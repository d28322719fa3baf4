-- meshd's own: a member hello names its sessionPubkey without proving it
-- (PROTOCOL.md §5.1), so meshd routes a session key only for the member
-- that first registered it; every member hello that names one asks whether
-- another member's presence row ever held it.  mesh.presence keeps every
-- presence ever made: without this that is a scan per hello.
CREATE INDEX IF NOT EXISTS meshd_presence_session_pubkey_idx
	ON mesh.presence (session_pubkey) WHERE session_pubkey IS NOT NULL;
