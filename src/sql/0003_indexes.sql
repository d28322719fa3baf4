-- meshd's own indexes: the reference schema has none on mesh.message_queue
-- besides its primary key, and only (mesh_id) on mesh.audit_log, so every
-- drain, client_ack and audit append would scan.  They are additive: a
-- database shared with the reference broker keeps working unchanged.

-- Drains: the undelivered rows of one mesh addressed to given targets, oldest first.
CREATE INDEX IF NOT EXISTS meshd_message_queue_pending_idx
	ON mesh.message_queue (mesh_id, target_spec, created_at, id)
	WHERE delivered_at IS NULL;

-- client_ack by client_message_id (the daemon's idempotency id).
CREATE INDEX IF NOT EXISTS meshd_message_queue_client_message_idx
	ON mesh.message_queue (mesh_id, client_message_id)
	WHERE client_message_id IS NOT NULL;

-- The head of a mesh's audit chain: its latest row by id.
CREATE INDEX IF NOT EXISTS meshd_audit_log_mesh_id_id_idx
	ON mesh.audit_log (mesh_id, id DESC);
