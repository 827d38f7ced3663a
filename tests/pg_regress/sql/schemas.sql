-- Schema-per-tenant isolation, migrations across schemas, hybrid tenants.
\set SHOW_CONTEXT never
-- Migrations run as the migration owner, a role without SUPERUSER and
-- BYPASSRLS that owns the tenant schemas; there is none until one is chosen.
CALL tenancy.add_migration('0000-nothing', 'SELECT 1');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.set_migration_owner('tenancy_bypass');
\echo :LAST_ERROR_SQLSTATE
SET ROLE tenancy_admin;
SELECT tenancy.set_migration_owner('tenancy_migrator');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SELECT tenancy.set_migration_owner('tenancy_migrator');
-- The application role gets DML on whatever migrations create (run as the migration owner).
ALTER DEFAULT PRIVILEGES FOR ROLE tenancy_migrator GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO tenancy_app;
ALTER DEFAULT PRIVILEGES FOR ROLE tenancy_migrator GRANT USAGE ON SEQUENCES TO tenancy_app;

-- The history every schema tenant is built from (recorded before any tenant exists).
CALL tenancy.add_migration('0001-notes', $$
    CREATE TABLE notes (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, body text NOT NULL);
$$);
CALL tenancy.add_migration('0002-notes-view', $$
    ALTER TABLE notes ADD COLUMN pinned boolean NOT NULL DEFAULT false;
    CREATE VIEW pinned_notes AS SELECT body FROM notes WHERE pinned;
$$);
SELECT name, ordinal FROM tenancy.migrations ORDER BY ordinal;

-- Register schema tenants next to a shared one (hybrid). A hostile identifier
-- changes nothing: the schema name comes from the id.
SELECT identifier, isolation, schema_name ~ '^tenant_[0-9a-f]{32}$' AS derived_name,
       schema_name = 'tenant_' || replace(id::text, '-', '') AS from_the_id
  FROM tenancy.register_tenant('north', 'North', '{}', 'schema');
SELECT identifier, isolation FROM tenancy.register_tenant('south-drop-schema-public', 'South', '{}', 'schema');
SELECT identifier, isolation, schema_name FROM tenancy.register_tenant('shared-co', 'Shared Co');
SELECT schema_name AS north_schema FROM tenancy.tenants WHERE identifier = 'north' \gset
SELECT schema_name AS south_schema FROM tenancy.tenants WHERE identifier = 'south-drop-schema-public' \gset
-- Each new schema replayed the whole history; its tables are pinned to the tenant.
SELECT t.identifier, count(*) AS applied FROM tenancy.schema_migrations s
  JOIN tenancy.tenants t ON t.id = s.tenant_id GROUP BY 1 ORDER BY 1;
SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity,
       (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid) AS policies,
       c.reloptions
  FROM pg_class c WHERE c.relnamespace = :'north_schema'::regnamespace AND c.relkind IN ('r', 'v')
 ORDER BY 1;

-- set_tenant puts the schema tenant's schema first on search_path.
SET search_path = public;
SET ROLE tenancy_app;
SELECT tenancy.set_tenant('north') IS NOT NULL AS north;
SELECT current_setting('search_path') = format('%I, public, pg_temp', :'north_schema') AS schema_first;
INSERT INTO notes (body, pinned) VALUES ('north one', true), ('north two', false);
SELECT body FROM notes ORDER BY id;
SELECT body FROM pinned_notes;
SELECT tenancy.set_tenant('south-drop-schema-public') IS NOT NULL AS south;
SELECT current_setting('search_path') = format('%I, public, pg_temp', :'south_schema') AS switched_schema;
INSERT INTO notes (body) VALUES ('south one');
SELECT body FROM notes ORDER BY id;
-- Another tenant's schema, even schema-qualified: no rows, no writes, no TRUNCATE.
SELECT count(*) AS north_rows_seen_from_south FROM :"north_schema".notes;
SELECT count(*) AS north_view_rows_seen_from_south FROM :"north_schema".pinned_notes;
INSERT INTO :"north_schema".notes (body) VALUES ('planted');
\echo :LAST_ERROR_SQLSTATE
UPDATE :"north_schema".notes SET body = 'defaced';
DELETE FROM :"north_schema".notes;
TRUNCATE :"north_schema".notes;
\echo :LAST_ERROR_SQLSTATE
-- A shared tenant: search_path back to what it was, other schemas unreachable.
SELECT tenancy.set_tenant('shared-co') IS NOT NULL AS shared;
SELECT current_setting('search_path') AS search_path;
SELECT count(*) FROM :"north_schema".notes;
-- No tenant at all: nothing either.
SELECT tenancy.reset_tenant();
SELECT count(*) FROM :"south_schema".notes;
-- Transaction scope restores search_path at commit.
BEGIN;
SELECT tenancy.set_tenant('north', is_local => true) IS NOT NULL AS local_north;
SELECT count(*) AS north_notes FROM notes;
COMMIT;
SELECT current_setting('search_path') AS after_commit;
RESET ROLE;
RESET search_path;

-- A new migration reaches every schema (committing per schema, with progress).
CALL tenancy.add_migration('0003-tags', $$ CREATE TABLE tags (name text PRIMARY KEY); $$);
SELECT t.identifier, array_agg(s.migration ORDER BY s.migration) AS applied
  FROM tenancy.schema_migrations s JOIN tenancy.tenants t ON t.id = s.tenant_id GROUP BY 1 ORDER BY 1;
SELECT count(*) AS tags_tables_pinned FROM pg_policy
 WHERE polname = 'tenancy_schema_isolation' AND polrelid::regclass::text LIKE '%.tags';
SELECT identifier, pending FROM tenancy.pending_migrations();

-- A migration that cannot work is refused before it is recorded (dry run).
CALL tenancy.add_migration('0004-broken', $$ ALTER TABLE no_such_table ADD COLUMN x int; $$);
SELECT count(*) AS recorded FROM tenancy.migrations WHERE name = '0004-broken';
CALL tenancy.add_migration('0003-tags', 'SELECT 1');
\echo :LAST_ERROR_SQLSTATE
CALL tenancy.add_migration('bad name!', 'SELECT 1');

-- One schema that fails is reported; the others are migrated; a rerun resumes.
CREATE TABLE :"south_schema".audit_trail (x int);   -- an object the next migration collides with
CALL tenancy.add_migration('0005-audit-trail', $$ CREATE TABLE audit_trail (at timestamptz DEFAULT now()); $$);
SELECT identifier, pending FROM tenancy.pending_migrations();
DROP TABLE :"south_schema".audit_trail;
CALL tenancy.migrate();
SELECT identifier, pending FROM tenancy.pending_migrations();

-- migrate_tenant() on one schema, and what it refuses.
SELECT tenancy.migrate_tenant('north');
SELECT tenancy.migrate_tenant('shared-co');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.migrate_tenant('nobody');
-- The application role can do none of it.
SET ROLE tenancy_app;
CALL tenancy.migrate();
SELECT tenancy.record_migration('x', 'SELECT 1');
RESET ROLE;

-- verify(): a table slipped into a tenant schema outside migrations is flagged.
CREATE TABLE :"north_schema".sneaky (x int);
SELECT severity, object ~ '^tenant_[0-9a-f]{32}\.sneaky$' AS is_sneaky, problem
  FROM tenancy.verify() WHERE problem LIKE '%schema of tenant%';
SELECT tenancy.migrate_tenant('north');
SELECT count(*) AS still_flagged FROM tenancy.verify() WHERE problem LIKE '%schema of tenant%';
-- Not even the migration owner replaces a table's guard (WHEN (false) would
-- switch it off): 55000, as for disabling it.
SET ROLE tenancy_migrator;
\set VERBOSITY sqlstate
CREATE OR REPLACE TRIGGER tenancy_schema_guard
    BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON :"north_schema".notes
    FOR EACH STATEMENT WHEN (false) EXECUTE FUNCTION suppress_redundant_updates_trigger();
\set VERBOSITY default
RESET ROLE;
-- Every other door into a tenant schema, opened outside the migrations (by a
-- superuser, event triggers off), is reported with the tenant it exposes.
CREATE FUNCTION public.verify_noop() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$;
SET session_replication_role = replica;
ALTER TABLE :"north_schema".sneaky DISABLE TRIGGER tenancy_schema_guard;
CREATE SEQUENCE :"north_schema".counter;
GRANT USAGE ON SEQUENCE :"north_schema".counter TO PUBLIC;
CREATE VIEW :"north_schema".peek AS SELECT 1 AS one;
CREATE MATERIALIZED VIEW :"north_schema".frozen AS SELECT 1 AS one;
CREATE POLICY wide_open ON :"north_schema".sneaky USING (true);
CREATE TRIGGER instead_of_write INSTEAD OF INSERT ON :"north_schema".peek
    FOR EACH ROW EXECUTE FUNCTION public.verify_noop();
CREATE TRIGGER early BEFORE INSERT ON :"north_schema".sneaky
    FOR EACH STATEMENT EXECUTE FUNCTION public.verify_noop();
-- A function of a role other than a superuser, called by an extended
-- statistics object, an index through an operator, and a domain's default.
CREATE FUNCTION public.verify_owned(int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT $1';
ALTER FUNCTION public.verify_owned(int) OWNER TO tenancy_owner;
CREATE OPERATOR public.#### (RIGHTARG = int, FUNCTION = public.verify_owned);
CREATE STATISTICS :"north_schema".through_function ON (public.verify_owned(x)) FROM :"north_schema".sneaky;
CREATE INDEX through_operator ON :"north_schema".sneaky ((OPERATOR(public.####) x));
CREATE DOMAIN :"north_schema".stamped AS int DEFAULT public.verify_owned(1);
-- What row-level security does not filter, granted again; a guard pinned to
-- another tenant.
GRANT TRUNCATE, TRIGGER ON :"north_schema".sneaky TO tenancy_app;
DROP TRIGGER tenancy_schema_guard ON :"north_schema".notes;
CREATE TRIGGER tenancy_schema_guard BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON :"north_schema".notes
    FOR EACH STATEMENT EXECUTE FUNCTION tenancy.schema_guard('00000000-0000-0000-0000-000000000000');
RESET session_replication_role;
SELECT severity, replace(object, :'north_schema', 'S') AS object, problem
  FROM tenancy.verify() WHERE object LIKE '%' || :'north_schema' || '%' ORDER BY 2, 3;
DROP VIEW :"north_schema".peek;
DROP MATERIALIZED VIEW :"north_schema".frozen;
DROP SEQUENCE :"north_schema".counter;
DROP TRIGGER early ON :"north_schema".sneaky;
DROP FUNCTION public.verify_noop();
DROP STATISTICS :"north_schema".through_function;
DROP INDEX :"north_schema".through_operator;
DROP DOMAIN :"north_schema".stamped;
DROP OPERATOR public.#### (NONE, int);
DROP FUNCTION public.verify_owned(int);
SET session_replication_role = replica;
REVOKE TRUNCATE, TRIGGER ON :"north_schema".sneaky FROM tenancy_app;
SELECT id AS north_id FROM tenancy.tenants WHERE identifier = 'north' \gset
DROP TRIGGER tenancy_schema_guard ON :"north_schema".notes;
CREATE TRIGGER tenancy_schema_guard BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON :"north_schema".notes
    FOR EACH STATEMENT EXECUTE FUNCTION tenancy.schema_guard(:'north_id');
DROP POLICY wide_open ON :"north_schema".sneaky;
ALTER TABLE :"north_schema".sneaky ENABLE TRIGGER tenancy_schema_guard;
RESET session_replication_role;
SELECT count(*) AS still_flagged FROM tenancy.verify() WHERE object LIKE '%' || :'north_schema' || '%';
-- A migration owner that can log in, or on which another role holds ADMIN
-- (and so can make itself a member), is reported.
ALTER ROLE tenancy_migrator LOGIN;
CREATE ROLE verify_role_admin;
GRANT tenancy_migrator TO verify_role_admin WITH ADMIN OPTION;
SELECT severity, object, problem FROM tenancy.verify() WHERE object = 'role tenancy_migrator';
ALTER ROLE tenancy_migrator NOLOGIN;
SELECT severity, object, problem FROM tenancy.verify() WHERE object = 'role tenancy_migrator';
DROP ROLE verify_role_admin;
SELECT count(*) AS migration_owner_flagged FROM tenancy.verify() WHERE object = 'role tenancy_migrator';

-- Soft delete keeps the schema untouched; destroy drops it.
SELECT status FROM tenancy.delete_tenant('north');
SELECT count(*) AS schema_kept FROM pg_namespace WHERE nspname = :'north_schema';
SELECT tenancy.migrate_tenant('north');
SELECT status FROM tenancy.delete_tenant('north', destroy_data => true);
SELECT count(*) AS schema_left FROM pg_namespace WHERE nspname = :'north_schema';
SELECT count(*) AS migration_records_left FROM tenancy.schema_migrations s
 WHERE NOT EXISTS (SELECT FROM tenancy.tenants t WHERE t.id = s.tenant_id);
SELECT action, tenant_identifier, coalesce(details->>'name', details->>'applied') AS migrations
  FROM tenancy.audit_log WHERE action IN ('migration', 'migrate') ORDER BY id;

-- Leave the default privileges of this database as they were.
ALTER DEFAULT PRIVILEGES FOR ROLE tenancy_migrator REVOKE SELECT, INSERT, UPDATE, DELETE ON TABLES FROM tenancy_app;
ALTER DEFAULT PRIVILEGES FOR ROLE tenancy_migrator REVOKE USAGE ON SEQUENCES FROM tenancy_app;
