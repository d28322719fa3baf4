-- meshd's own: append one row to a mesh's audit hash chain (SEMANTICS.md §D)
-- in a single statement, so it can ride a pipelined group-commit batch.
--
-- The advisory lock serialises writers of one mesh's chain (any number of
-- broker processes).  It must be taken before the latest row is read, and
-- that read needs a snapshot newer than the lock: under READ COMMITTED a
-- plain statement's snapshot is taken when the statement starts, but each
-- statement inside this VOLATILE function gets its own, so the SELECT below
-- sees every row committed before the lock was granted.  The hash is
-- computed here with the server's sha256(); the caller supplies the lock
-- key, the canonical payload text and the ISO createdAt.
CREATE OR REPLACE FUNCTION mesh.meshd_audit_append(
	p_lock bigint, p_mesh text, p_event text, p_actor text, p_actor_name text,
	p_payload text, p_created text)
RETURNS text
LANGUAGE plpgsql VOLATILE
AS $fn$
DECLARE
	v_prev text;
	v_hash text;
BEGIN
	PERFORM pg_advisory_xact_lock(p_lock);
	SELECT a.hash INTO v_prev FROM mesh.audit_log a
		WHERE a.mesh_id = p_mesh ORDER BY a.id DESC LIMIT 1;
	v_prev := coalesce(v_prev, 'genesis');
	v_hash := encode(sha256(convert_to(v_prev || '|' || p_mesh || '|' || p_event || '|'
		|| coalesce(p_actor, 'null') || '|' || p_payload || '|' || p_created, 'UTF8')), 'hex');
	INSERT INTO mesh.audit_log (mesh_id, event_type, actor_member_id, actor_display_name,
		payload, prev_hash, hash, created_at)
	VALUES (p_mesh, p_event, p_actor, p_actor_name, p_payload::jsonb, v_prev, v_hash,
		(p_created::timestamptz AT TIME ZONE 'UTC'));
	RETURN v_hash;
END
$fn$;
