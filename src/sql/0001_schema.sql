-- 0001_schema.sql -- meshd's schema: the minimal compatible subset of the
-- reference claudemesh schema (SEMANTICS.md A.3), with the final column sets
-- the reference reaches after its migrations 0000-0029
-- (packages/db/migrations/*.sql in alezmad/claudemesh).
--
-- Rules this file keeps:
--   * Idempotent, and a no-op on a database already migrated by the
--     reference project: every object is created only when absent
--     (IF NOT EXISTS, or a DO block catching duplicate_object); nothing here
--     alters, drops or rewrites an existing table.
--   * Same names as the reference for tables, columns, types, defaults,
--     constraints and indexes.  Columns appear in the order the reference
--     ends up with (its later migrations append with ALTER TABLE ADD COLUMN).
--     Foreign keys the reference declared inline without a name are declared
--     inline here too, so PostgreSQL gives them the same generated names
--     (<table>_<column>_fkey).
--   * Every timestamp is `timestamp without time zone`, as in the reference;
--     the broker sets its session TimeZone to UTC.
--   * Not created (not needed by the broker): pgvector, the chat/pdf/image
--     schemas, the better-auth tables other than "user", and the peripheral
--     mesh tables (state, memory, file, context, task, stream, topic_message,
--     api_key, notification, telegram_bridge, ...).

CREATE SCHEMA IF NOT EXISTS mesh;

-- ---------------------------------------------------------------------------
-- Enum types (SEMANTICS.md A.1).  Values in the reference's order.

-- 0000_living_namora.sql
DO $$ BEGIN
	CREATE TYPE "mesh"."role" AS ENUM('admin', 'member');
EXCEPTION WHEN duplicate_object THEN NULL;
END $$;

-- 0000_living_namora.sql
DO $$ BEGIN
	CREATE TYPE "mesh"."tier" AS ENUM('free', 'pro', 'team', 'enterprise');
EXCEPTION WHEN duplicate_object THEN NULL;
END $$;

-- 0000_living_namora.sql
DO $$ BEGIN
	CREATE TYPE "mesh"."transport" AS ENUM('managed', 'tailscale', 'self_hosted');
EXCEPTION WHEN duplicate_object THEN NULL;
END $$;

-- 0000_living_namora.sql
DO $$ BEGIN
	CREATE TYPE "mesh"."visibility" AS ENUM('private', 'public');
EXCEPTION WHEN duplicate_object THEN NULL;
END $$;

-- 0000_living_namora.sql
DO $$ BEGIN
	CREATE TYPE "mesh"."message_priority" AS ENUM('now', 'next', 'low');
EXCEPTION WHEN duplicate_object THEN NULL;
END $$;

-- 0000_living_namora.sql
DO $$ BEGIN
	CREATE TYPE "mesh"."presence_status" AS ENUM('idle', 'working', 'dnd');
EXCEPTION WHEN duplicate_object THEN NULL;
END $$;

-- 0000_living_namora.sql
DO $$ BEGIN
	CREATE TYPE "mesh"."presence_status_source" AS ENUM('hook', 'manual', 'jsonl');
EXCEPTION WHEN duplicate_object THEN NULL;
END $$;

-- 0022_topics.sql
DO $$ BEGIN
	CREATE TYPE "mesh"."topic_visibility" AS ENUM('public', 'private', 'dm');
EXCEPTION WHEN duplicate_object THEN NULL;
END $$;

-- 0022_topics.sql
DO $$ BEGIN
	CREATE TYPE "mesh"."topic_member_role" AS ENUM('lead', 'member', 'observer');
EXCEPTION WHEN duplicate_object THEN NULL;
END $$;

-- ---------------------------------------------------------------------------
-- public."user" (0000; better-auth's table, the web app owns it, the broker
-- only reads it).

CREATE TABLE IF NOT EXISTS "public"."user" (
	"id" text PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"email" text NOT NULL,
	"email_verified" boolean DEFAULT false NOT NULL,
	"image" text,
	"created_at" timestamp DEFAULT now() NOT NULL,
	"updated_at" timestamp DEFAULT now() NOT NULL,
	"two_factor_enabled" boolean DEFAULT false,
	"is_anonymous" boolean DEFAULT false,
	"role" text,
	"banned" boolean DEFAULT false,
	"ban_reason" text,
	"ban_expires" timestamp,
	CONSTRAINT "user_email_unique" UNIQUE("email")
);

-- ---------------------------------------------------------------------------
-- mesh.mesh
--   0000: base columns (its mesh_slug_unique constraint was dropped by 0017,
--         so it is not created here)
--   0001: owner_pubkey
--   0002: owner_secret_key, root_key
--   0015: self_editable

CREATE TABLE IF NOT EXISTS "mesh"."mesh" (
	"id" text PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"slug" text NOT NULL,
	"owner_user_id" text NOT NULL,
	"visibility" "mesh"."visibility" DEFAULT 'private' NOT NULL,
	"transport" "mesh"."transport" DEFAULT 'managed' NOT NULL,
	"max_peers" integer,
	"tier" "mesh"."tier" DEFAULT 'free' NOT NULL,
	"created_at" timestamp DEFAULT now() NOT NULL,
	"archived_at" timestamp,
	"owner_pubkey" text,
	"owner_secret_key" text,
	"root_key" text,
	"self_editable" jsonb DEFAULT '{"displayName":true,"roleTag":true,"groups":true,"messageMode":true}'::jsonb,
	CONSTRAINT "mesh_owner_user_id_user_id_fk" FOREIGN KEY ("owner_user_id")
		REFERENCES "public"."user"("id") ON DELETE cascade ON UPDATE cascade
);

-- ---------------------------------------------------------------------------
-- mesh.member
--   0000: base columns and both foreign keys
--   0015: role_tag, default_groups, message_mode, dashboard_user_id
--         + index member_dashboard_user_idx
--   0020: peer_grants + GIN index member_peer_grants_gin_idx
-- No unique index on (mesh_id, peer_pubkey): the reference has none.

CREATE TABLE IF NOT EXISTS "mesh"."member" (
	"id" text PRIMARY KEY NOT NULL,
	"mesh_id" text NOT NULL,
	"user_id" text,
	"peer_pubkey" text NOT NULL,
	"display_name" text NOT NULL,
	"role" "mesh"."role" DEFAULT 'member' NOT NULL,
	"joined_at" timestamp DEFAULT now() NOT NULL,
	"last_seen_at" timestamp,
	"revoked_at" timestamp,
	"role_tag" text,
	"default_groups" jsonb DEFAULT '[]'::jsonb,
	"message_mode" text DEFAULT 'push',
	"dashboard_user_id" text,
	"peer_grants" jsonb DEFAULT '{}'::jsonb NOT NULL,
	CONSTRAINT "member_mesh_id_mesh_id_fk" FOREIGN KEY ("mesh_id")
		REFERENCES "mesh"."mesh"("id") ON DELETE cascade ON UPDATE cascade,
	CONSTRAINT "member_user_id_user_id_fk" FOREIGN KEY ("user_id")
		REFERENCES "public"."user"("id") ON DELETE set null ON UPDATE cascade
);

-- 0015_member-profile-and-mesh-policy.sql
CREATE INDEX IF NOT EXISTS "member_dashboard_user_idx"
	ON "mesh"."member" USING btree ("dashboard_user_id");

-- 0020_peer-grants.sql
CREATE INDEX IF NOT EXISTS "member_peer_grants_gin_idx"
	ON "mesh"."member" USING gin ("peer_grants");

-- ---------------------------------------------------------------------------
-- mesh.invite
--   0000: base columns, invite_token_unique, both foreign keys
--   0001: token_bytes
--   0015: preset
--   0018: code + partial unique index invite_code_unique_idx
--   0019: version, capability_v2, claimed_by_pubkey

CREATE TABLE IF NOT EXISTS "mesh"."invite" (
	"id" text PRIMARY KEY NOT NULL,
	"mesh_id" text NOT NULL,
	"token" text NOT NULL,
	"max_uses" integer DEFAULT 1 NOT NULL,
	"used_count" integer DEFAULT 0 NOT NULL,
	"role" "mesh"."role" DEFAULT 'member' NOT NULL,
	"expires_at" timestamp NOT NULL,
	"created_by" text NOT NULL,
	"created_at" timestamp DEFAULT now() NOT NULL,
	"revoked_at" timestamp,
	"token_bytes" text,
	"preset" jsonb DEFAULT '{}'::jsonb,
	"code" text,
	"version" integer DEFAULT 1 NOT NULL,
	"capability_v2" text,
	"claimed_by_pubkey" text,
	CONSTRAINT "invite_token_unique" UNIQUE("token"),
	CONSTRAINT "invite_mesh_id_mesh_id_fk" FOREIGN KEY ("mesh_id")
		REFERENCES "mesh"."mesh"("id") ON DELETE cascade ON UPDATE cascade,
	CONSTRAINT "invite_created_by_user_id_fk" FOREIGN KEY ("created_by")
		REFERENCES "public"."user"("id") ON DELETE cascade ON UPDATE cascade
);

-- 0018_invite-short-code.sql
CREATE UNIQUE INDEX IF NOT EXISTS "invite_code_unique_idx"
	ON "mesh"."invite" ("code")
	WHERE "code" IS NOT NULL;

-- ---------------------------------------------------------------------------
-- mesh.presence (broker-owned)
--   0000: base columns and presence_member_id_member_id_fk
--   0003: summary   0004: display_name   0005: session_pubkey
--   0007: groups    0029: role
-- No secondary indexes up to 0029 (the reference's 0030 adds some later).

CREATE TABLE IF NOT EXISTS "mesh"."presence" (
	"id" text PRIMARY KEY NOT NULL,
	"member_id" text NOT NULL,
	"session_id" text NOT NULL,
	"pid" integer NOT NULL,
	"cwd" text NOT NULL,
	"status" "mesh"."presence_status" DEFAULT 'idle' NOT NULL,
	"status_source" "mesh"."presence_status_source" DEFAULT 'jsonl' NOT NULL,
	"status_updated_at" timestamp DEFAULT now() NOT NULL,
	"connected_at" timestamp DEFAULT now() NOT NULL,
	"last_ping_at" timestamp DEFAULT now() NOT NULL,
	"disconnected_at" timestamp,
	"summary" text,
	"display_name" text,
	"session_pubkey" text,
	"groups" jsonb DEFAULT '[]'::jsonb,
	"role" text DEFAULT 'session' NOT NULL,
	CONSTRAINT "presence_member_id_member_id_fk" FOREIGN KEY ("member_id")
		REFERENCES "mesh"."member"("id") ON DELETE cascade ON UPDATE cascade
);

-- ---------------------------------------------------------------------------
-- mesh.message_queue (broker-owned)
--   0000: base columns and both foreign keys
--   0006: sender_session_pubkey
--   0028: client_message_id, request_fingerprint
--   0029: claimed_at, claim_id, claim_expires_at
-- No secondary indexes in the reference.

CREATE TABLE IF NOT EXISTS "mesh"."message_queue" (
	"id" text PRIMARY KEY NOT NULL,
	"mesh_id" text NOT NULL,
	"sender_member_id" text NOT NULL,
	"target_spec" text NOT NULL,
	"priority" "mesh"."message_priority" DEFAULT 'next' NOT NULL,
	"nonce" text NOT NULL,
	"ciphertext" text NOT NULL,
	"created_at" timestamp DEFAULT now() NOT NULL,
	"delivered_at" timestamp,
	"expires_at" timestamp,
	"sender_session_pubkey" text,
	"client_message_id" text,
	"request_fingerprint" text,
	"claimed_at" timestamp,
	"claim_id" text,
	"claim_expires_at" timestamp,
	CONSTRAINT "message_queue_mesh_id_mesh_id_fk" FOREIGN KEY ("mesh_id")
		REFERENCES "mesh"."mesh"("id") ON DELETE cascade ON UPDATE cascade,
	CONSTRAINT "message_queue_sender_member_id_member_id_fk" FOREIGN KEY ("sender_member_id")
		REFERENCES "mesh"."member"("id") ON DELETE cascade ON UPDATE cascade
);

-- ---------------------------------------------------------------------------
-- mesh.pending_status (0000; broker-owned; deliberately no FK and no index)

CREATE TABLE IF NOT EXISTS "mesh"."pending_status" (
	"id" text PRIMARY KEY NOT NULL,
	"pid" integer NOT NULL,
	"cwd" text NOT NULL,
	"status" text NOT NULL,
	"status_source" text NOT NULL,
	"created_at" timestamp DEFAULT now() NOT NULL,
	"applied_at" timestamp
);

-- ---------------------------------------------------------------------------
-- mesh.audit_log, in the shape 0021_audit-log-schema-realign.sql recreates
-- (the 0000 shape with a text id is obsolete).  On a database still holding
-- the 0000 shape this CREATE is a no-op, as the reference broker's own
-- start-up CREATE TABLE IF NOT EXISTS is.

CREATE TABLE IF NOT EXISTS "mesh"."audit_log" (
	"id" integer PRIMARY KEY GENERATED ALWAYS AS IDENTITY NOT NULL,
	"mesh_id" text NOT NULL,
	"event_type" text NOT NULL,
	"actor_member_id" text,
	"actor_display_name" text,
	"payload" jsonb NOT NULL DEFAULT '{}'::jsonb,
	"prev_hash" text NOT NULL,
	"hash" text NOT NULL,
	"created_at" timestamp NOT NULL DEFAULT now(),
	CONSTRAINT "audit_log_mesh_id_fk" FOREIGN KEY ("mesh_id")
		REFERENCES "mesh"."mesh"("id") ON DELETE CASCADE ON UPDATE CASCADE
);

-- 0021_audit-log-schema-realign.sql
CREATE INDEX IF NOT EXISTS "audit_log_mesh_id_idx" ON "mesh"."audit_log" ("mesh_id");
CREATE INDEX IF NOT EXISTS "audit_log_created_at_idx" ON "mesh"."audit_log" ("created_at");

-- ---------------------------------------------------------------------------
-- mesh.topic
--   0022: table (unnamed inline FKs -> topic_mesh_id_fkey,
--         topic_created_by_member_id_fkey) + unique index topic_mesh_name_unique
--   0026: encrypted_key_pubkey and its column comment

CREATE TABLE IF NOT EXISTS "mesh"."topic" (
	"id" text PRIMARY KEY NOT NULL,
	"mesh_id" text NOT NULL REFERENCES "mesh"."mesh"("id") ON DELETE CASCADE ON UPDATE CASCADE,
	"name" text NOT NULL,
	"description" text,
	"visibility" "mesh"."topic_visibility" NOT NULL DEFAULT 'public',
	"created_by_member_id" text REFERENCES "mesh"."member"("id") ON DELETE SET NULL ON UPDATE CASCADE,
	"created_at" timestamp DEFAULT now() NOT NULL,
	"archived_at" timestamp,
	"encrypted_key_pubkey" text
);

-- 0022_topics.sql
CREATE UNIQUE INDEX IF NOT EXISTS "topic_mesh_name_unique"
	ON "mesh"."topic" ("mesh_id", "name");

-- 0026_topic_keys.sql sets this comment.  Set it only when the column has
-- none, so that a database migrated by the reference is not touched at all.
DO $$ BEGIN
	IF col_description('"mesh"."topic"'::regclass,
			   (SELECT attnum FROM pg_attribute
			     WHERE attrelid = '"mesh"."topic"'::regclass
			       AND attname = 'encrypted_key_pubkey'
			       AND NOT attisdropped)) IS NULL THEN
		COMMENT ON COLUMN "mesh"."topic"."encrypted_key_pubkey" IS
		  'Ephemeral x25519 sender pubkey used to seal per-member copies of the topic symmetric key. Null = legacy v0.2.0 topic with no encryption.';
	END IF;
END $$;

-- ---------------------------------------------------------------------------
-- mesh.topic_member (0022; no primary key; unnamed inline FKs ->
-- topic_member_topic_id_fkey, topic_member_member_id_fkey)

CREATE TABLE IF NOT EXISTS "mesh"."topic_member" (
	"topic_id" text NOT NULL REFERENCES "mesh"."topic"("id") ON DELETE CASCADE ON UPDATE CASCADE,
	"member_id" text NOT NULL REFERENCES "mesh"."member"("id") ON DELETE CASCADE ON UPDATE CASCADE,
	"role" "mesh"."topic_member_role" NOT NULL DEFAULT 'member',
	"joined_at" timestamp DEFAULT now() NOT NULL,
	"last_read_at" timestamp
);

-- 0022_topics.sql
CREATE UNIQUE INDEX IF NOT EXISTS "topic_member_unique"
	ON "mesh"."topic_member" ("topic_id", "member_id");
CREATE INDEX IF NOT EXISTS "topic_member_by_member"
	ON "mesh"."topic_member" ("member_id");

-- ---------------------------------------------------------------------------
-- mesh.peer_state (0014_peer-state-persistence.sql; the reference broker
-- also runs the same CREATE TABLE IF NOT EXISTS at start-up).  Unnamed
-- inline FKs -> peer_state_mesh_id_fkey, peer_state_member_id_fkey.

CREATE TABLE IF NOT EXISTS mesh.peer_state (
	id TEXT PRIMARY KEY NOT NULL,
	mesh_id TEXT NOT NULL REFERENCES mesh.mesh(id) ON DELETE CASCADE ON UPDATE CASCADE,
	member_id TEXT NOT NULL REFERENCES mesh.member(id) ON DELETE CASCADE ON UPDATE CASCADE,
	groups JSONB DEFAULT '[]',
	profile JSONB DEFAULT '{}',
	visible BOOLEAN NOT NULL DEFAULT true,
	last_summary TEXT,
	last_display_name TEXT,
	cumulative_stats JSONB DEFAULT '{"messagesIn":0,"messagesOut":0,"toolCalls":0,"errors":0}',
	last_seen_at TIMESTAMP,
	created_at TIMESTAMP NOT NULL DEFAULT now(),
	updated_at TIMESTAMP NOT NULL DEFAULT now(),
	CONSTRAINT peer_state_mesh_member_idx UNIQUE (mesh_id, member_id)
);

-- ---------------------------------------------------------------------------
-- mesh.pending_invite (0019_invite-v2-and-email.sql; owned by the web app,
-- the broker neither reads nor writes it)

CREATE TABLE IF NOT EXISTS "mesh"."pending_invite" (
	"id" text PRIMARY KEY NOT NULL,
	"mesh_id" text NOT NULL,
	"email" text NOT NULL,
	"code" text NOT NULL,
	"sent_at" timestamp DEFAULT now() NOT NULL,
	"accepted_at" timestamp,
	"revoked_at" timestamp,
	"created_by" text NOT NULL,
	"created_at" timestamp DEFAULT now() NOT NULL,
	CONSTRAINT "pending_invite_mesh_id_fk"
		FOREIGN KEY ("mesh_id") REFERENCES "mesh"."mesh"("id")
		ON DELETE CASCADE ON UPDATE CASCADE,
	CONSTRAINT "pending_invite_created_by_fk"
		FOREIGN KEY ("created_by") REFERENCES "public"."user"("id")
		ON DELETE CASCADE ON UPDATE CASCADE
);

-- 0019_invite-v2-and-email.sql
CREATE INDEX IF NOT EXISTS "pending_invite_email_idx"
	ON "mesh"."pending_invite" ("email");
CREATE INDEX IF NOT EXISTS "pending_invite_mesh_idx"
	ON "mesh"."pending_invite" ("mesh_id");
