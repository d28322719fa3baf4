-- meshd's own: the stale-presence sweep (every PRESENCE_STALE_SECONDS / 3)
-- marks rows whose last_ping_at is too old, whichever meshd process wrote
-- them.  mesh.presence keeps every presence ever made (rows are only marked
-- disconnected), so without this each sweep scans the whole table; the live
-- rows are few, and the partial index holds only them.
CREATE INDEX IF NOT EXISTS meshd_presence_live_ping_idx
	ON mesh.presence (last_ping_at) WHERE disconnected_at IS NULL;
