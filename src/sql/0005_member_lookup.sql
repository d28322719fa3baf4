-- meshd's own: every hello looks its member up by (mesh_id, peer_pubkey);
-- the reference schema has no index for it (SEMANTICS.md §A.2: "no
-- uniqueness anywhere"), so without this each hello scans mesh.member.
CREATE INDEX IF NOT EXISTS meshd_member_mesh_pubkey_idx
	ON mesh.member (mesh_id, peer_pubkey);

-- The single-row appender of 0002 is superseded by the batch one (0004).
DROP FUNCTION IF EXISTS mesh.meshd_audit_append(bigint, text, text, text, text, text, text);

-- The audit chain head, read as max(id) so the planner always takes the
-- (mesh_id, id DESC) index backwards, whatever statistics the cached plan
-- was made with (an ORDER BY … LIMIT 1 planned on an empty table became a
-- scan and sort of the mesh's whole chain).
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
				WHERE a.id = (SELECT max(b.id) FROM mesh.audit_log b
					      WHERE b.mesh_id = e.mesh);
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
