-- meshd's own: append a batch of audit rows (SEMANTICS.md §D) in one
-- statement.  p_entries is a JSON array of
--   {"lock": <bigint>, "mesh": …, "event": …, "actor": … | null,
--    "name": … | null, "payload": "<canonical JSON text>", "created": "<ISO>"}
-- in the order they happened.  Rows are appended mesh by mesh in ascending
-- lock-key order (the order within a mesh kept), so two brokers appending
-- batches that share meshes always take the advisory locks in the same
-- order and cannot deadlock.  Each chain head is read after its lock is
-- held, by a statement of its own (a fresh snapshot), as in
-- mesh.meshd_audit_append().
CREATE OR REPLACE FUNCTION mesh.meshd_audit_append_many(p_entries jsonb)
RETURNS integer
LANGUAGE plpgsql VOLATILE
AS $fn$
DECLARE
	e record;
	v_mesh text := NULL;
	v_prev text;
	v_hash text;
	v_count integer := 0;
BEGIN
	FOR e IN
		SELECT (x.value->>'lock')::bigint AS lock, x.value->>'mesh' AS mesh,
			x.value->>'event' AS event, x.value->>'actor' AS actor,
			x.value->>'name' AS name, x.value->>'payload' AS payload,
			x.value->>'created' AS created
		FROM jsonb_array_elements(p_entries) WITH ORDINALITY AS x(value, ord)
		ORDER BY (x.value->>'lock')::bigint, x.value->>'mesh', x.ord
	LOOP
		IF v_mesh IS DISTINCT FROM e.mesh THEN
			PERFORM pg_advisory_xact_lock(e.lock);
			SELECT a.hash INTO v_prev FROM mesh.audit_log a
				WHERE a.mesh_id = e.mesh ORDER BY a.id DESC LIMIT 1;
			v_prev := coalesce(v_prev, 'genesis');
			v_mesh := e.mesh;
		END IF;
		v_hash := encode(sha256(convert_to(v_prev || '|' || e.mesh || '|' || e.event || '|'
			|| coalesce(e.actor, 'null') || '|' || e.payload || '|' || e.created, 'UTF8')), 'hex');
		INSERT INTO mesh.audit_log (mesh_id, event_type, actor_member_id, actor_display_name,
			payload, prev_hash, hash, created_at)
		VALUES (e.mesh, e.event, e.actor, e.name, e.payload::jsonb, v_prev, v_hash,
			(e.created::timestamptz AT TIME ZONE 'UTC'));
		v_prev := v_hash;
		v_count := v_count + 1;
	END LOOP;
	RETURN v_count;
END
$fn$;
