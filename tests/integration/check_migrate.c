/* check_migrate — meshd's migrations against a private PostgreSQL.
 *
 * One cluster for the whole program (unchecked fixture); every test works on
 * a fresh database of its own.
 */
#include "config.h"

#include <check.h>

#include "check_run.h"
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "meshd/migrate.h"
#include "pgtest.h"

#define URL_CAP 600
#define SNAP_CAP (256 * 1024)

static struct pgtest pg;
static bool pg_ok;

static void cluster_up(void)
{
	pg_ok = pgtest_start(&pg);
}

static void cluster_down(void)
{
	if (pg_ok)
		pgtest_destroy(&pg);
}

static void fresh_db(const char *name, char *url)
{
	ck_assert_msg(pg_ok, "the private PostgreSQL cluster did not start");
	ck_assert_msg(pgtest_create_db(&pg, name, url, URL_CAP), "create database %s", name);
}

/* One-row, one-column query; the test fails if it errors. */
static void scalar(const char *url, const char *sql, char *out, size_t cap)
{
	ck_assert_msg(pgtest_scalar(url, sql, out, cap), "query failed: %s", sql);
	ck_assert_msg(strlen(out) < cap - 1, "result may be truncated: %s", sql);
}

static void assert_scalar(const char *url, const char *sql, const char *want)
{
	char got[8192];

	scalar(url, sql, got, sizeof(got));
	ck_assert_msg(strcmp(got, want) == 0, "%s\n  got:  %s\n  want: %s", sql, got, want);
}

/* Everything that makes up the schema meshd's SQL creates, as one string in a
 * stable order: columns (type, nullability, default, identity), constraints,
 * indexes, enum types with their labels, column comments, identity sequences.
 * meshd's own tracking table is left out: test (c) drops and recreates it. */
static const char snapshot_sql[] =
	"WITH rels AS ("
	"  SELECT c.oid, n.nspname || '.' || c.relname AS name"
	"    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
	"   WHERE n.nspname IN ('mesh', 'public') AND c.relkind = 'r'"
	"     AND c.relname <> '__meshd_migrations'),"
	" parts AS ("
	"  SELECT 'col ' || r.name || ' ' || lpad(a.attnum::text, 3, '0') || ' ' || a.attname"
	"         || ' ' || format_type(a.atttypid, a.atttypmod)"
	"         || CASE WHEN a.attnotnull THEN ' not null' ELSE ' null' END"
	"         || ' default=' || coalesce(pg_get_expr(d.adbin, d.adrelid), '-')"
	"         || ' identity=' || CASE a.attidentity WHEN '' THEN '-' ELSE a.attidentity::text END"
	"         || ' comment=' || coalesce(col_description(r.oid, a.attnum), '-') AS line"
	"    FROM rels r JOIN pg_attribute a ON a.attrelid = r.oid AND a.attnum > 0"
	"         AND NOT a.attisdropped"
	"    LEFT JOIN pg_attrdef d ON d.adrelid = r.oid AND d.adnum = a.attnum"
	"  UNION ALL"
	"  SELECT 'con ' || r.name || ' ' || co.conname || ' ' || pg_get_constraintdef(co.oid)"
	"    FROM rels r JOIN pg_constraint co ON co.conrelid = r.oid"
	"  UNION ALL"
	"  SELECT 'idx ' || i.schemaname || '.' || i.indexname || ' ' || i.indexdef"
	"    FROM pg_indexes i"
	"   WHERE i.schemaname IN ('mesh', 'public')"
	"     AND i.tablename <> '__meshd_migrations'"
	"  UNION ALL"
	"  SELECT 'enum ' || n.nspname || '.' || t.typname || ' '"
	"         || (SELECT string_agg(e.enumlabel, '|' ORDER BY e.enumsortorder)"
	"               FROM pg_enum e WHERE e.enumtypid = t.oid)"
	"    FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace"
	"   WHERE n.nspname IN ('mesh', 'public') AND t.typtype = 'e'"
	"  UNION ALL"
	"  SELECT 'seq ' || n.nspname || '.' || c.relname"
	"    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
	"   WHERE n.nspname IN ('mesh', 'public') AND c.relkind = 'S')"
	" SELECT string_agg(line, E'\\n' ORDER BY line COLLATE \"C\") FROM parts";

static char *snapshot(const char *url)
{
	char *buf = malloc(SNAP_CAP);

	ck_assert_ptr_nonnull(buf);
	scalar(url, snapshot_sql, buf, SNAP_CAP);
	ck_assert_msg(strlen(buf) > 1000, "snapshot suspiciously small: %s", buf);
	return buf;
}

static void sql_sha256_hex(const char *sql, char out[crypto_hash_sha256_BYTES * 2 + 1])
{
	unsigned char digest[crypto_hash_sha256_BYTES];

	ck_assert_int_ge(sodium_init(), 0);
	crypto_hash_sha256(digest, (const unsigned char *)sql, strlen(sql));
	sodium_bin2hex(out, crypto_hash_sha256_BYTES * 2 + 1, digest, sizeof(digest));
}

/* (a) A first run applies every migration and creates the schema of
 * SEMANTICS.md §A.2 with the reference's names. */
START_TEST(test_first_run_creates_schema)
{
	char url[URL_CAP];

	fresh_db("mig_first", url);
	ck_assert_uint_ge(migrations_count, 1);
	ck_assert_int_eq(migrate_run(url), (int)migrations_count);

	assert_scalar(url,
		      "SELECT string_agg(table_schema || '.' || table_name, ','"
		      "  ORDER BY table_schema COLLATE \"C\", table_name COLLATE \"C\")"
		      "  FROM information_schema.tables"
		      " WHERE table_schema IN ('mesh', 'public') AND table_type = 'BASE TABLE'",
		      "mesh.__meshd_migrations,mesh.audit_log,mesh.invite,mesh.member,mesh.mesh,"
		      "mesh.message_queue,mesh.peer_state,mesh.pending_invite,mesh.pending_status,"
		      "mesh.presence,mesh.topic,mesh.topic_member,public.user");

	assert_scalar(url,
		      "SELECT string_agg(t.typname || '=' ||"
		      "  (SELECT string_agg(e.enumlabel, '|' ORDER BY e.enumsortorder)"
		      "     FROM pg_enum e WHERE e.enumtypid = t.oid), ','"
		      "  ORDER BY t.typname COLLATE \"C\")"
		      "  FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace"
		      " WHERE n.nspname = 'mesh' AND t.typtype = 'e'",
		      "message_priority=now|next|low,presence_status=idle|working|dnd,"
		      "presence_status_source=hook|manual|jsonl,role=admin|member,"
		      "tier=free|pro|team|enterprise,topic_member_role=lead|member|observer,"
		      "topic_visibility=public|private|dm,transport=managed|tailscale|self_hosted,"
		      "visibility=private|public");

	/* Every index, including the ones behind primary keys and unique
	 * constraints: the reference gives presence, message_queue and
	 * pending_status none besides their primary key; meshd adds its own
	 * (meshd_*, migration 0003). */
	assert_scalar(url,
		      "SELECT string_agg(indexname, ',' ORDER BY indexname COLLATE \"C\")"
		      "  FROM pg_indexes WHERE schemaname = 'mesh'",
		      "__meshd_migrations_pkey,audit_log_created_at_idx,audit_log_mesh_id_idx,"
		      "audit_log_pkey,invite_code_unique_idx,invite_pkey,invite_token_unique,"
		      "member_dashboard_user_idx,member_peer_grants_gin_idx,member_pkey,mesh_pkey,"
		      "meshd_audit_log_mesh_id_id_idx,meshd_member_mesh_pubkey_idx,"
		      "meshd_message_queue_client_message_idx,meshd_message_queue_pending_idx,"
		      "meshd_presence_live_ping_idx,meshd_presence_session_pubkey_idx,"
		      "message_queue_pkey,peer_state_mesh_member_idx,peer_state_pkey,"
		      "pending_invite_email_idx,pending_invite_mesh_idx,pending_invite_pkey,"
		      "pending_status_pkey,presence_pkey,topic_member_by_member,topic_member_unique,"
		      "topic_mesh_name_unique,topic_pkey");
	assert_scalar(url,
		      "SELECT string_agg(indexname, ',' ORDER BY indexname COLLATE \"C\")"
		      "  FROM pg_indexes WHERE schemaname = 'public' AND tablename = 'user'",
		      "user_email_unique,user_pkey");

	/* The partial unique index on invite.code, and the GIN index. */
	assert_scalar(url,
		      "SELECT indexdef FROM pg_indexes WHERE indexname = 'invite_code_unique_idx'",
		      "CREATE UNIQUE INDEX invite_code_unique_idx ON mesh.invite USING btree (code)"
		      " WHERE (code IS NOT NULL)");
	assert_scalar(url,
		      "SELECT indexdef FROM pg_indexes WHERE indexname = 'member_peer_grants_gin_idx'",
		      "CREATE INDEX member_peer_grants_gin_idx ON mesh.member USING gin (peer_grants)");

	/* Foreign keys, unique constraints and primary keys: name, kind, and
	 * the ON DELETE / ON UPDATE actions (c = cascade, n = set null). */
	assert_scalar(url,
		      "SELECT string_agg(conrelid::regclass::text || ':' || conname || ':' || contype::text"
		      "  || CASE contype WHEN 'f' THEN ':' || confdeltype::text || confupdtype::text || ':'"
		      "       || confrelid::regclass::text ELSE '' END, ','"
		      "  ORDER BY conrelid::regclass::text COLLATE \"C\", conname COLLATE \"C\")"
		      "  FROM pg_constraint"
		      " WHERE connamespace IN ('mesh'::regnamespace, 'public'::regnamespace)"
		      "   AND contype IN ('f', 'u', 'p')"
		      "   AND conrelid <> 'mesh.__meshd_migrations'::regclass",
		      "\"user\":user_email_unique:u,"
		      "\"user\":user_pkey:p,"
		      "mesh.audit_log:audit_log_mesh_id_fk:f:cc:mesh.mesh,"
		      "mesh.audit_log:audit_log_pkey:p,"
		      "mesh.invite:invite_created_by_user_id_fk:f:cc:\"user\","
		      "mesh.invite:invite_mesh_id_mesh_id_fk:f:cc:mesh.mesh,"
		      "mesh.invite:invite_pkey:p,"
		      "mesh.invite:invite_token_unique:u,"
		      "mesh.member:member_mesh_id_mesh_id_fk:f:cc:mesh.mesh,"
		      "mesh.member:member_pkey:p,"
		      "mesh.member:member_user_id_user_id_fk:f:nc:\"user\","
		      "mesh.mesh:mesh_owner_user_id_user_id_fk:f:cc:\"user\","
		      "mesh.mesh:mesh_pkey:p,"
		      "mesh.message_queue:message_queue_mesh_id_mesh_id_fk:f:cc:mesh.mesh,"
		      "mesh.message_queue:message_queue_pkey:p,"
		      "mesh.message_queue:message_queue_sender_member_id_member_id_fk:f:cc:mesh.member,"
		      "mesh.peer_state:peer_state_member_id_fkey:f:cc:mesh.member,"
		      "mesh.peer_state:peer_state_mesh_id_fkey:f:cc:mesh.mesh,"
		      "mesh.peer_state:peer_state_mesh_member_idx:u,"
		      "mesh.peer_state:peer_state_pkey:p,"
		      "mesh.pending_invite:pending_invite_created_by_fk:f:cc:\"user\","
		      "mesh.pending_invite:pending_invite_mesh_id_fk:f:cc:mesh.mesh,"
		      "mesh.pending_invite:pending_invite_pkey:p,"
		      "mesh.pending_status:pending_status_pkey:p,"
		      "mesh.presence:presence_member_id_member_id_fk:f:cc:mesh.member,"
		      "mesh.presence:presence_pkey:p,"
		      "mesh.topic:topic_created_by_member_id_fkey:f:nc:mesh.member,"
		      "mesh.topic:topic_mesh_id_fkey:f:cc:mesh.mesh,"
		      "mesh.topic:topic_pkey:p,"
		      "mesh.topic_member:topic_member_member_id_fkey:f:cc:mesh.member,"
		      "mesh.topic_member:topic_member_topic_id_fkey:f:cc:mesh.topic");

	/* Final column sets, in the reference's column order. */
	assert_scalar(url,
		      "SELECT string_agg(column_name, ',' ORDER BY ordinal_position)"
		      "  FROM information_schema.columns"
		      " WHERE table_schema = 'mesh' AND table_name = 'message_queue'",
		      "id,mesh_id,sender_member_id,target_spec,priority,nonce,ciphertext,created_at,"
		      "delivered_at,expires_at,sender_session_pubkey,client_message_id,"
		      "request_fingerprint,claimed_at,claim_id,claim_expires_at");
	assert_scalar(url,
		      "SELECT string_agg(column_name, ',' ORDER BY ordinal_position)"
		      "  FROM information_schema.columns"
		      " WHERE table_schema = 'mesh' AND table_name = 'presence'",
		      "id,member_id,session_id,pid,cwd,status,status_source,status_updated_at,"
		      "connected_at,last_ping_at,disconnected_at,summary,display_name,"
		      "session_pubkey,groups,role");
	assert_scalar(url,
		      "SELECT string_agg(column_name, ',' ORDER BY ordinal_position)"
		      "  FROM information_schema.columns"
		      " WHERE table_schema = 'mesh' AND table_name = 'invite'",
		      "id,mesh_id,token,max_uses,used_count,role,expires_at,created_by,created_at,"
		      "revoked_at,token_bytes,preset,code,version,capability_v2,claimed_by_pubkey");
	assert_scalar(url,
		      "SELECT string_agg(column_name, ',' ORDER BY ordinal_position)"
		      "  FROM information_schema.columns"
		      " WHERE table_schema = 'mesh' AND table_name = 'member'",
		      "id,mesh_id,user_id,peer_pubkey,display_name,role,joined_at,last_seen_at,"
		      "revoked_at,role_tag,default_groups,message_mode,dashboard_user_id,peer_grants");
	assert_scalar(url,
		      "SELECT string_agg(column_name, ',' ORDER BY ordinal_position)"
		      "  FROM information_schema.columns"
		      " WHERE table_schema = 'mesh' AND table_name = 'mesh'",
		      "id,name,slug,owner_user_id,visibility,transport,max_peers,tier,created_at,"
		      "archived_at,owner_pubkey,owner_secret_key,root_key,self_editable");

	/* Defaults and nullability the broker relies on. */
	assert_scalar(url,
		      "SELECT column_default || ' ' || is_nullable FROM information_schema.columns"
		      " WHERE table_schema = 'mesh' AND table_name = 'message_queue'"
		      "   AND column_name = 'priority'",
		      "'next'::mesh.message_priority NO");
	assert_scalar(url,
		      "SELECT column_default || ' ' || is_nullable FROM information_schema.columns"
		      " WHERE table_schema = 'mesh' AND table_name = 'presence' AND column_name = 'role'",
		      "'session'::text NO");
	assert_scalar(url,
		      "SELECT column_default || ' ' || is_nullable FROM information_schema.columns"
		      " WHERE table_schema = 'mesh' AND table_name = 'member'"
		      "   AND column_name = 'peer_grants'",
		      "'{}'::jsonb NO");
	assert_scalar(url,
		      "SELECT column_default FROM information_schema.columns"
		      " WHERE table_schema = 'mesh' AND table_name = 'mesh'"
		      "   AND column_name = 'self_editable'",
		      "'{\"groups\": true, \"roleTag\": true, \"displayName\": true, "
		      "\"messageMode\": true}'::jsonb");
	assert_scalar(url,
		      "SELECT column_default || ' ' || is_nullable FROM information_schema.columns"
		      " WHERE table_schema = 'mesh' AND table_name = 'invite' AND column_name = 'version'",
		      "1 NO");

	/* audit_log (0021 shape): integer identity, GENERATED ALWAYS. */
	assert_scalar(url,
		      "SELECT data_type || ' ' || is_identity || ' ' || identity_generation"
		      "  FROM information_schema.columns"
		      " WHERE table_schema = 'mesh' AND table_name = 'audit_log' AND column_name = 'id'",
		      "integer YES ALWAYS");
	assert_scalar(url, "SELECT pg_get_serial_sequence('mesh.audit_log', 'id')",
		      "mesh.audit_log_id_seq");

	/* Every timestamp is without time zone, as in the reference: 34 in
	 * §A.2's tables plus __meshd_migrations.applied_at. */
	assert_scalar(url,
		      "SELECT count(*) FROM information_schema.columns"
		      " WHERE table_schema IN ('mesh', 'public')"
		      "   AND data_type = 'timestamp with time zone'",
		      "0");
	assert_scalar(url,
		      "SELECT count(*) FROM information_schema.columns"
		      " WHERE table_schema IN ('mesh', 'public')"
		      "   AND data_type = 'timestamp without time zone'",
		      "35");

	/* Nothing the broker-only subset leaves out. */
	assert_scalar(url,
		      "SELECT count(*) FROM pg_namespace WHERE nspname IN ('chat', 'pdf', 'image')",
		      "0");
	assert_scalar(url, "SELECT count(*) FROM pg_extension WHERE extname = 'vector'", "0");
}
END_TEST

/* (b) A second run applies nothing and changes nothing. */
START_TEST(test_second_run_is_noop)
{
	char url[URL_CAP];
	char *before, *after;

	fresh_db("mig_twice", url);
	ck_assert_int_eq(migrate_run(url), (int)migrations_count);
	before = snapshot(url);
	ck_assert_int_eq(migrate_run(url), 0);
	after = snapshot(url);
	ck_assert_str_eq(before, after);
	free(before);
	free(after);
}
END_TEST

/* (c) A database migrated by the reference project: the schema is there but
 * meshd's tracking table is not.  The run applies the file (recording it)
 * and the schema stays exactly as it was. */
START_TEST(test_reference_migrated_database)
{
	char url[URL_CAP];
	char sql[256];
	char *before, *after;

	fresh_db("mig_reference", url);
	ck_assert_int_eq(migrate_run(url), (int)migrations_count);
	before = snapshot(url);
	ck_assert(pgtest_exec(url, "DROP TABLE mesh.__meshd_migrations"));

	ck_assert_int_eq(migrate_run(url), (int)migrations_count);
	after = snapshot(url);
	ck_assert_str_eq(before, after);

	snprintf(sql, sizeof(sql), "SELECT count(*) FROM mesh.__meshd_migrations WHERE filename = '%s'",
		 migrations[0].name);
	assert_scalar(url, sql, "1");
	free(before);
	free(after);
}
END_TEST

/* (d) The tracking row carries the lowercase hex sha256 of the SQL, and an
 * applied_at in UTC. */
START_TEST(test_tracking_row_sha256)
{
	char url[URL_CAP];
	char sql[256];
	char count[32];
	char want[crypto_hash_sha256_BYTES * 2 + 1];

	fresh_db("mig_sha", url);
	ck_assert_int_eq(migrate_run(url), (int)migrations_count);
	sql_sha256_hex(migrations[0].sql, want);

	snprintf(sql, sizeof(sql), "SELECT sha256 FROM mesh.__meshd_migrations WHERE filename = '%s'",
		 migrations[0].name);
	assert_scalar(url, sql, want);
	snprintf(count, sizeof(count), "%zu", migrations_count);
	assert_scalar(url, "SELECT count(*) FROM mesh.__meshd_migrations", count);
	assert_scalar(url,
		      "SELECT bool_and(abs(extract(epoch FROM (now() AT TIME ZONE 'utc') - applied_at))"
		      "  < 600)::text FROM mesh.__meshd_migrations",
		      "true");
}
END_TEST

/* A recorded file whose sha256 differs is warned about and skipped, never
 * re-applied or re-recorded. */
START_TEST(test_changed_file_is_skipped)
{
	char url[URL_CAP];

	fresh_db("mig_changed", url);
	ck_assert_int_eq(migrate_run(url), (int)migrations_count);
	ck_assert(pgtest_exec(url, "UPDATE mesh.__meshd_migrations SET sha256 = repeat('0', 64)"));
	ck_assert_int_eq(migrate_run(url), 0);
	char want[16];
	snprintf(want, sizeof(want), "%zu", migrations_count);
	assert_scalar(url,
		      "SELECT count(*) FROM mesh.__meshd_migrations WHERE sha256 = repeat('0', 64)",
		      want);
}
END_TEST

/* A migration that fails leaves nothing behind: its DDL and its tracking row
 * are one transaction.  (A pre-existing mesh.member without the reference's
 * columns makes the index on dashboard_user_id fail.) */
START_TEST(test_failure_rolls_back)
{
	char url[URL_CAP];

	fresh_db("mig_fail", url);
	ck_assert(pgtest_exec(url, "CREATE SCHEMA mesh; CREATE TABLE mesh.member (id text)"));
	ck_assert_int_eq(migrate_run(url), -1);
	assert_scalar(url, "SELECT count(*) FROM mesh.__meshd_migrations", "0");
	assert_scalar(url, "SELECT coalesce(to_regclass('mesh.mesh')::text, 'none')", "none");
	assert_scalar(url, "SELECT coalesce(to_regtype('mesh.role')::text, 'none')", "none");
}
END_TEST

/* (e) An unreachable database fails at once with -1 (the test case's
 * timeout bounds "at once"). */
START_TEST(test_unreachable_database)
{
	ck_assert_int_eq(migrate_run("postgresql://postgres@/postgres?host=/nonexistent-meshd-dir"
				     "&port=5"),
			 -1);
	ck_assert_int_eq(migrate_run("postgresql://postgres@127.0.0.1:1/postgres"), -1);
}
END_TEST

static Suite *migrate_suite(void)
{
	Suite *s = suite_create("migrate");
	TCase *tc = tcase_create("against_postgres");
	TCase *tc_down = tcase_create("unreachable");

	tcase_add_unchecked_fixture(tc, cluster_up, cluster_down);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_first_run_creates_schema);
	tcase_add_test(tc, test_second_run_is_noop);
	tcase_add_test(tc, test_reference_migrated_database);
	tcase_add_test(tc, test_tracking_row_sha256);
	tcase_add_test(tc, test_changed_file_is_skipped);
	tcase_add_test(tc, test_failure_rolls_back);
	suite_add_tcase(s, tc);

	tcase_set_timeout(tc_down, 15);
	tcase_add_test(tc_down, test_unreachable_database);
	suite_add_tcase(s, tc_down);
	return s;
}

int main(void)
{
	return check_run(migrate_suite());
}
