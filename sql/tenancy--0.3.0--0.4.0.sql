-- tenancy 0.3.0 → 0.4.0 (ALTER EXTENSION tenancy UPDATE): security hardening.
\echo Use "ALTER EXTENSION tenancy UPDATE TO '0.4.0'" to load this file. \quit

-- A step towards the current version: the routines written in SQL
-- (auto_protect(), pending_migrations(), migrate(), verify() changed in
-- 0.4.0) are not repeated here; the last step of every update installs all
-- of them from the library (tenancy.replace_routines()).

-- Migrations run as a migration owner without SUPERUSER and BYPASSRLS, which
-- owns the tenant schemas (0.3.0 ran them as the catalog owner, a superuser).
CREATE TABLE tenancy.migration_owner (
    role     regrole NOT NULL,
    only_one boolean PRIMARY KEY DEFAULT true CONSTRAINT migration_owner_only_one CHECK (only_one)
);
SELECT pg_catalog.pg_extension_config_dump('tenancy.migration_owner', '');

CREATE  FUNCTION "set_migration_owner"(
	"role" TEXT /* Option < & str > */
) RETURNS void
VOLATILE PARALLEL UNSAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'set_migration_owner_wrapper';
REVOKE ALL ON FUNCTION tenancy.set_migration_owner(text) FROM PUBLIC;

-- Auto-protect audits under the role that ran the DDL, skips temporary
-- tables and covers ALTER TABLE … INHERIT.
CREATE  FUNCTION "auto_protect_table"(
	"tbl" regclass, /* PgRelation */
	"tenant_column" TEXT /* & str */
) RETURNS void
STRICT VOLATILE PARALLEL UNSAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'auto_protect_table_wrapper';
REVOKE ALL ON FUNCTION tenancy.auto_protect_table(regclass, text) FROM PUBLIC;

-- The statement guard of tenant-schema tables.
CREATE FUNCTION "schema_guard"()
	RETURNS TRIGGER
	LANGUAGE c
	AS 'MODULE_PATHNAME', 'schema_guard_wrapper';

-- Citus: the key that signs a coordinator's context for the workers, and
-- the functions that distribute the catalog and protected tables.
-- The key that signs a coordinator's tenant context for Citus workers
-- (tenancy.context). Random per installation; tenancy.distribute() gives the
-- workers the coordinator's. Nobody but the owner reads it.
CREATE TABLE tenancy.cluster_key (
    key      bytea   NOT NULL CONSTRAINT cluster_key_length CHECK (length(key) >= 32),
    only_one boolean PRIMARY KEY DEFAULT true CONSTRAINT cluster_key_only_one CHECK (only_one)
);
INSERT INTO tenancy.cluster_key (key)
VALUES (decode(replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''), 'hex'));
CREATE TRIGGER catalog_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON tenancy.cluster_key
    FOR EACH STATEMENT EXECUTE FUNCTION tenancy.catalog_changed();
ALTER TABLE tenancy.cluster_key ENABLE ALWAYS TRIGGER catalog_changed;
CREATE  FUNCTION "distribute"() RETURNS void
STRICT VOLATILE PARALLEL UNSAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'distribute_wrapper';
REVOKE ALL ON FUNCTION tenancy.distribute() FROM PUBLIC;
CREATE  FUNCTION "distribute_table"(
	"tbl" regclass, /* Option < pgrx :: PgRelation > */
	"colocate_with" TEXT DEFAULT 'default', /* Option < & str > */
	"reference" bool DEFAULT false /* Option < bool > */
) RETURNS void
VOLATILE PARALLEL UNSAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'distribute_table_wrapper';
REVOKE ALL ON FUNCTION tenancy.distribute_table(regclass, text, boolean) FROM PUBLIC;
CREATE  FUNCTION "citus_placement_problems"() RETURNS TABLE (
	"severity" TEXT,  /* String */
	"object" TEXT,  /* String */
	"problem" TEXT,  /* String */
	"fix" TEXT  /* String */
)
STRICT VOLATILE PARALLEL UNSAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'citus_placement_problems_wrapper';
REVOKE ALL ON FUNCTION tenancy.citus_placement_problems() FROM PUBLIC;

-- The application developer's path: the current tenant in one round trip,
-- the application's own audit events, administration for a granted role,
-- migrations that fail loudly and can be retired.
ALTER TABLE tenancy.migrations ADD COLUMN retired_at timestamptz;
CREATE  FUNCTION "current_tenant_info"() RETURNS TABLE (
	"id" uuid,  /* pgrx :: Uuid */
	"identifier" TEXT,  /* String */
	"name" TEXT,  /* String */
	"status" TEXT,  /* String */
	"isolation" TEXT,  /* String */
	"metadata" jsonb  /* pgrx :: JsonB */
)
STRICT STABLE PARALLEL SAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'current_tenant_info_wrapper';
CREATE  FUNCTION "audit"(
	"action" TEXT, /* Option < & str > */
	"details" jsonb DEFAULT '{}' /* Option < Jsonb > */
) RETURNS bigint /* i64 */
VOLATILE PARALLEL UNSAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'audit_wrapper';
CREATE  FUNCTION "grant_admin"(
	"role" TEXT /* Option < & str > */
) RETURNS void
VOLATILE PARALLEL UNSAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'grant_admin_wrapper';
REVOKE ALL ON FUNCTION tenancy.grant_admin(text) FROM PUBLIC;
CREATE  FUNCTION "revoke_admin"(
	"role" TEXT /* Option < & str > */
) RETURNS void
VOLATILE PARALLEL UNSAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'revoke_admin_wrapper';
REVOKE ALL ON FUNCTION tenancy.revoke_admin(text) FROM PUBLIC;
CREATE  FUNCTION "retire_migration"(
	"name" TEXT /* Option < & str > */
) RETURNS void
VOLATILE PARALLEL UNSAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'retire_migration_wrapper';
REVOKE ALL ON FUNCTION tenancy.retire_migration(text) FROM PUBLIC;
CREATE  FUNCTION "library_preloaded"() RETURNS bool /* bool */
STRICT STABLE PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'library_preloaded_wrapper';
REVOKE ALL ON FUNCTION tenancy.library_preloaded() FROM PUBLIC;

-- Tokens live 5 minutes by default (1 hour before).
CREATE OR REPLACE FUNCTION "issue_token"(
	"identifier" TEXT, /* Option < & str > */
	"ttl" interval DEFAULT '5 minutes' /* Option < pgrx :: datum :: Interval > */
) RETURNS TEXT /* String */
VOLATILE PARALLEL UNSAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'issue_token_wrapper';


-- Table owners and the migration owner create the guard triggers themselves
-- now: the trigger functions keep PostgreSQL's default privilege (they
-- cannot be called directly). 0.3.0 revoked refuse_truncate() from PUBLIC,
-- which GRANT cannot undo into "no ACL" (see the 0.2.0 → 0.3.0 script).
UPDATE pg_catalog.pg_proc SET proacl = NULL
 WHERE oid OPERATOR(pg_catalog.=) 'tenancy.refuse_truncate()'::pg_catalog.regprocedure;
DELETE FROM pg_catalog.pg_init_privs
 WHERE classoid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::pg_catalog.regclass
   AND objoid OPERATOR(pg_catalog.=) 'tenancy.refuse_truncate()'::pg_catalog.regprocedure;

-- An installation with schema tenants or migrations keeps working: a NOLOGIN
-- role tenancy_migrator (created unless it exists) becomes the migration
-- owner and the owner of every tenant schema, and every table there gets the
-- statement guard in place of the TRUNCATE trigger.
DO $$
DECLARE
    t record;
BEGIN
    IF NOT EXISTS (SELECT FROM tenancy.tenants WHERE isolation OPERATOR(pg_catalog.=) 'schema')
       AND NOT EXISTS (SELECT FROM tenancy.migrations) THEN
        RETURN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) 'tenancy_migrator') THEN
        CREATE ROLE tenancy_migrator NOLOGIN;
    -- A role of that name made by someone else is not adopted if another role
    -- could act as it: it can log in, or a role other than a superuser is its
    -- member or holds ADMIN on it (a CREATEROLE role that made it does).
    ELSIF EXISTS (SELECT FROM pg_catalog.pg_authid a
                   WHERE a.rolname OPERATOR(pg_catalog.=) 'tenancy_migrator'
                     AND (a.rolcanlogin OR a.rolpassword IS NOT NULL))
       OR EXISTS (SELECT FROM pg_catalog.pg_auth_members m
                    JOIN pg_catalog.pg_authid a ON a.oid OPERATOR(pg_catalog.=) m.member
                   WHERE m.roleid OPERATOR(pg_catalog.=) 'tenancy_migrator'::pg_catalog.regrole
                     AND NOT a.rolsuper) THEN
        RAISE EXCEPTION 'role tenancy_migrator exists and another role could act as it'
            USING ERRCODE = '55000',
                  HINT = 'The update makes tenancy_migrator the migration owner, the owner of every tenant schema. '
                         'Drop it, or make it NOLOGIN without a password and revoke it from every role but '
                         'superusers (and their ADMIN on it), then run ALTER EXTENSION tenancy UPDATE again.';
    END IF;
    PERFORM tenancy.set_migration_owner('tenancy_migrator');
    FOR t IN
        SELECT c.oid::pg_catalog.regclass AS tbl, tn.id
          FROM pg_catalog.pg_class c
          JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
          JOIN tenancy.tenants tn ON tn.schema_name OPERATOR(pg_catalog.=) n.nspname
         WHERE c.relkind IN ('r', 'p')
    LOOP
        EXECUTE pg_catalog.format('DROP TRIGGER IF EXISTS tenancy_no_truncate ON %s', t.tbl);
        EXECUTE pg_catalog.format('CREATE TRIGGER tenancy_schema_guard '
            'BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON %s FOR EACH STATEMENT '
            'EXECUTE FUNCTION tenancy.schema_guard(%L)', t.tbl, t.id);
    END LOOP;
END
$$;
