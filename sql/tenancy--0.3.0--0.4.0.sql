-- tenancy 0.3.0 → 0.4.0 (ALTER EXTENSION tenancy UPDATE): security hardening.
\echo Use "ALTER EXTENSION tenancy UPDATE TO '0.4.0'" to load this file. \quit

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
CREATE OR REPLACE FUNCTION tenancy.auto_protect() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    t record;
BEGIN
    -- Off when tenancy.auto_protect is off, and while protect() itself runs.
    IF NOT tenancy.auto_protect_enabled() THEN
        RETURN;
    END IF;
    FOR t IN
        WITH cmd AS (
            SELECT objid, command_tag FROM pg_event_trigger_ddl_commands()
             WHERE object_type = 'table'
        ), candidate AS (
            -- Tables just created ...
            SELECT objid AS relid FROM cmd WHERE command_tag <> 'ALTER TABLE'
            UNION
            -- ... partitions of an altered table (ATTACH PARTITION reports the parent) ...
            SELECT i.inhrelid FROM pg_inherits i JOIN cmd ON i.inhparent = cmd.objid
             WHERE cmd.command_tag = 'ALTER TABLE'
            UNION
            -- ... and an altered table that now inherits (ALTER TABLE … INHERIT
            -- reports the child): queried through its parent, its rows are the parent's.
            SELECT i.inhrelid FROM pg_inherits i JOIN cmd ON i.inhrelid = cmd.objid
             WHERE cmd.command_tag = 'ALTER TABLE'
        )
        SELECT c.oid::regclass AS tbl, col.name AS col,
               a.atttypid = 'uuid'::regtype AND a.attnotnull AND a.attgenerated = '' AS usable
          FROM candidate
          -- Never temporary tables: no event reports their end, and they are
          -- their session's own.
          JOIN pg_class c ON c.oid = candidate.relid AND c.relkind IN ('r', 'p')
                         AND c.relpersistence <> 't'
                         AND c.relnamespace <> 'tenancy'::regnamespace
          -- A partition or child uses its protected parent's column; a new table, tenant_id.
          CROSS JOIN LATERAL (
                SELECT coalesce((SELECT p.tenant_column FROM pg_inherits i
                                   JOIN tenancy.protected_tables p ON p.relid = i.inhparent
                                  WHERE i.inhrelid = c.oid LIMIT 1),
                                CASE WHEN c.relispartition THEN NULL ELSE 'tenant_id' END) AS name
          ) col
          JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = col.name AND NOT a.attisdropped
         WHERE c.oid NOT IN (SELECT relid FROM tenancy.protected_tables)
    LOOP
        IF t.usable THEN
            PERFORM tenancy.auto_protect_table(t.tbl, t.col);
        ELSE
            RAISE WARNING 'table % has a column "%" but was not protected: it is not a plain uuid NOT NULL column', t.tbl, t.col
                USING HINT = format('Fix the column, then run SELECT tenancy.protect(%L);', t.tbl);
        END IF;
    END LOOP;
END
$$;

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
CREATE OR REPLACE FUNCTION tenancy.pending_migrations()
RETURNS TABLE (identifier text, schema_name name, pending integer)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT t.identifier, t.schema_name, count(*)::integer
      FROM tenancy.tenants t CROSS JOIN tenancy.migrations m
     WHERE t.isolation = 'schema' AND t.status <> 'deleted' AND m.retired_at IS NULL
       AND NOT EXISTS (SELECT FROM tenancy.schema_migrations s
                        WHERE s.tenant_id = t.id AND s.migration = m.name)
     GROUP BY t.identifier, t.schema_name
     ORDER BY t.identifier
$$;
CREATE OR REPLACE PROCEDURE tenancy.migrate()
LANGUAGE plpgsql AS $$
DECLARE
    t record;
    done integer := 0;
    failed text[] := '{}';
    total integer;
    first_state text;
    first_error text;
BEGIN
    SELECT count(*) INTO total FROM tenancy.pending_migrations();
    FOR t IN SELECT p.identifier FROM tenancy.pending_migrations() p LOOP
        BEGIN
            PERFORM tenancy.migrate_tenant(t.identifier);
            done := done + 1;
            RAISE NOTICE 'tenancy: migrated % (%/%)', t.identifier, done + cardinality(failed), total;
        EXCEPTION WHEN OTHERS THEN
            failed := failed || t.identifier;
            IF first_state IS NULL THEN
                first_state := SQLSTATE;
                first_error := format('%s: %s', t.identifier, SQLERRM);
            END IF;
            RAISE WARNING 'tenancy: migrating % failed (%/%): %', t.identifier,
                done + cardinality(failed), total, SQLERRM
                USING HINT = 'The schema is unchanged; fix the cause and CALL tenancy.migrate() again.';
        END;
        COMMIT;
    END LOOP;
    IF cardinality(failed) > 0 THEN
        RAISE EXCEPTION 'tenancy: % of % schemas migrated; failed: %', done, total, array_to_string(failed, ', ')
            USING ERRCODE = first_state,
                  DETAIL = format('First error: %s', first_error),
                  HINT = 'The migrated schemas are committed. Fix the cause and CALL tenancy.migrate() again, '
                         'or retire a migration that cannot apply with tenancy.retire_migration(name).';
    END IF;
    RAISE NOTICE 'tenancy: % of % schemas migrated', done, total;
END
$$;

-- Tokens live 5 minutes by default (1 hour before).
CREATE OR REPLACE FUNCTION "issue_token"(
	"identifier" TEXT, /* Option < & str > */
	"ttl" interval DEFAULT '5 minutes' /* Option < pgrx :: datum :: Interval > */
) RETURNS TEXT /* String */
VOLATILE PARALLEL UNSAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'issue_token_wrapper';

-- verify() compares content, not names.
CREATE OR REPLACE FUNCTION tenancy.verify()
RETURNS TABLE (severity text, object text, problem text, fix text)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
WITH protected AS (
    SELECT p.relid::oid AS relid, p.relid::text AS tbl, p.tenant_column,
           a.attnum AS tenant_attnum
      FROM tenancy.protected_tables p
      LEFT JOIN pg_attribute a ON a.attrelid = p.relid AND a.attname = p.tenant_column
), user_tables AS (
    SELECT c.* FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'tenancy')
       AND n.nspname NOT LIKE 'pg\_%'
), tenant_schemas AS (
    SELECT t.identifier, n.oid AS nspid, t.id, n.nspowner
      FROM tenancy.tenants t JOIN pg_namespace n ON n.nspname = t.schema_name
), pinned AS (      -- the tables of tenant schemas
    SELECT c.oid AS relid, c.oid::regclass::text AS tbl, ts.identifier, ts.id
      FROM pg_class c JOIN tenant_schemas ts ON ts.nspid = c.relnamespace
     WHERE c.relkind IN ('r', 'p')
), expected_policies AS (   -- what protect() and migrations generate, as PostgreSQL prints it back
    -- (on a Citus table protect() makes it without the sub-select, which Citus refuses)
    SELECT p.relid, p.tbl, 'tenancy_isolation' AS polname, 'protect()' AS made_by,
           format('(%I = ( SELECT tenancy.current_tenant() AS current_tenant))', p.tenant_column) AS expected_check,
           format('(%I = tenancy.current_tenant())', p.tenant_column) AS also_expected,
           format('SELECT tenancy.protect(%L, %L);', p.tbl, p.tenant_column) AS fix
      FROM protected p
    UNION ALL
    SELECT pn.relid, pn.tbl, 'tenancy_schema_isolation', format('the migrations of tenant %s', pn.identifier),
           format('(( SELECT tenancy.current_tenant() AS current_tenant) = %L::uuid)', pn.id),
           format('(tenancy.current_tenant() = %L::uuid)', pn.id),
           format('DROP POLICY tenancy_schema_isolation ON %s; SELECT tenancy.migrate_tenant(%L);', pn.tbl, pn.identifier)
      FROM pinned pn
), readers AS (     -- views and materialized views that read a protected table
    SELECT DISTINCT r.ev_class AS view, p.tbl
      FROM pg_rewrite r
      JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid
      JOIN protected p ON p.relid = d.refobjid
     WHERE r.ev_class <> d.refobjid
)
-- Tables with a tenant column that nothing protects.
SELECT 'error', c.oid::regclass::text,
       'table has a tenant_id column but is not protected: every tenant sees all its rows',
       format('SELECT tenancy.protect(%L);', c.oid::regclass::text)
  FROM user_tables c
  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped
 WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
   AND c.oid NOT IN (SELECT relid FROM protected)
UNION ALL
-- Partitions and inheritance children of protected tables: queried directly, they
-- skip the parent's policy, and rows written there show through the parent.
SELECT 'error', i.inhrelid::regclass::text,
       format('partition or child of protected table %s is not protected itself', p.tbl),
       format('SELECT tenancy.protect(%L, %L);', i.inhrelid::regclass::text, p.tenant_column)
  FROM pg_inherits i JOIN protected p ON p.relid = i.inhparent
 WHERE i.inhrelid NOT IN (SELECT relid FROM protected)
UNION ALL
-- Protected tables whose row-level security was switched off or not forced.
SELECT 'error', p.tbl,
       CASE WHEN NOT c.relrowsecurity THEN 'row level security is disabled'
            ELSE 'row level security is not forced: the table owner bypasses it' END,
       format('SELECT tenancy.protect(%L, %L);', p.tbl, p.tenant_column)
  FROM protected p JOIN pg_class c ON c.oid = p.relid
 WHERE NOT (c.relrowsecurity AND c.relforcerowsecurity)
UNION ALL
SELECT 'error', p.tbl, 'the tenancy_isolation policy is missing',
       format('SELECT tenancy.protect(%L, %L);', p.tbl, p.tenant_column)
  FROM protected p
 WHERE NOT EXISTS (SELECT FROM pg_policy pol WHERE pol.polrelid = p.relid AND pol.polname = 'tenancy_isolation')
UNION ALL
-- The policy is there by name but not what protect() or the migrations made:
-- compare its content.
SELECT 'error', e.tbl,
       format('the %s policy differs from what %s generated (%s)', e.polname, e.made_by,
              concat_ws(', ',
                  CASE WHEN pol.polcmd <> '*' THEN 'not FOR ALL' END,
                  CASE WHEN NOT pol.polpermissive THEN 'not permissive' END,
                  CASE WHEN pol.polroles <> '{0}' THEN 'not TO PUBLIC' END,
                  CASE WHEN NOT coalesce(pg_get_expr(pol.polqual, pol.polrelid) IN (e.expected_check, e.also_expected), false)
                       THEN format('USING %s', coalesce(pg_get_expr(pol.polqual, pol.polrelid), 'missing')) END,
                  CASE WHEN NOT coalesce(pg_get_expr(pol.polwithcheck, pol.polrelid) IN (e.expected_check, e.also_expected), false)
                       THEN format('WITH CHECK %s', coalesce(pg_get_expr(pol.polwithcheck, pol.polrelid), 'missing')) END)),
       e.fix
  FROM expected_policies e JOIN pg_policy pol ON pol.polrelid = e.relid AND pol.polname = e.polname
 WHERE pol.polcmd <> '*' OR NOT pol.polpermissive OR pol.polroles <> '{0}'
    OR NOT coalesce(pg_get_expr(pol.polqual, pol.polrelid) IN (e.expected_check, e.also_expected), false)
    OR NOT coalesce(pg_get_expr(pol.polwithcheck, pol.polrelid) IN (e.expected_check, e.also_expected), false)
UNION ALL
-- TRUNCATE skips row-level security: the guard trigger must be there and enabled.
SELECT 'error', p.tbl, 'the tenancy_no_truncate trigger is missing or disabled: TRUNCATE would remove every tenant''s rows',
       format('SELECT tenancy.protect(%L, %L);', p.tbl, p.tenant_column)
  FROM protected p
 WHERE NOT EXISTS (SELECT FROM pg_trigger t WHERE t.tgrelid = p.relid AND t.tgname = 'tenancy_no_truncate'
                      AND t.tgenabled <> 'D' AND t.tgfoid = 'tenancy.refuse_truncate()'::regprocedure)
UNION ALL
-- Without the default, inserts must name their tenant (WITH CHECK still holds).
SELECT 'warning', p.tbl,
       format('column %I does not default to tenancy.current_tenant()', p.tenant_column),
       format('SELECT tenancy.protect(%L, %L);', p.tbl, p.tenant_column)
  FROM protected p
 WHERE NOT EXISTS (SELECT FROM pg_attrdef d WHERE d.adrelid = p.relid AND d.adnum = p.tenant_attnum
                      AND pg_get_expr(d.adbin, d.adrelid) = 'tenancy.current_tenant()')
UNION ALL
-- On Citus: every shard placement of a protected table (empty elsewhere).
SELECT * FROM tenancy.citus_placement_problems()
UNION ALL
-- Objects in a tenant's schema that another tenant's context could reach.
SELECT 'error', c.oid::regclass::text,
       format('table in the schema of tenant %s has no row-level security pinned to it', ts.identifier),
       format('SELECT tenancy.migrate_tenant(%L); (it pins every table of the schema)', ts.identifier)
  FROM pg_class c JOIN tenant_schemas ts ON ts.nspid = c.relnamespace
 WHERE c.relkind IN ('r', 'p')
   AND NOT (c.relrowsecurity AND c.relforcerowsecurity
            AND EXISTS (SELECT FROM pg_policy pol WHERE pol.polrelid = c.oid
                           AND pol.polname = 'tenancy_schema_isolation'))
UNION ALL
SELECT 'error', pn.tbl,
       format('the tenancy_schema_guard trigger of this table of tenant %s is missing or disabled: other tenants'' writes reach its triggers', pn.identifier),
       format('SELECT tenancy.migrate_tenant(%L);', pn.identifier)
  FROM pinned pn
 WHERE NOT EXISTS (SELECT FROM pg_trigger t WHERE t.tgrelid = pn.relid AND t.tgname = 'tenancy_schema_guard'
                      AND t.tgenabled <> 'D' AND t.tgfoid = 'tenancy.schema_guard()'::regprocedure
                      AND t.tgnargs = 1)
UNION ALL
SELECT 'error', f.oid::regprocedure::text,
       format('SECURITY DEFINER function in the schema of tenant %s runs with its owner''s rights for every caller', ts.identifier),
       format('ALTER FUNCTION %s SECURITY INVOKER;', f.oid::regprocedure::text)
  FROM pg_proc f JOIN tenant_schemas ts ON ts.nspid = f.pronamespace
 WHERE f.prosecdef
UNION ALL
SELECT 'error', s.oid::regclass::text,
       format('sequence in the schema of tenant %s can be used by %s: other tenants can read and advance it',
              ts.identifier, (SELECT string_agg(CASE a.grantee WHEN 0 THEN 'PUBLIC' ELSE a.grantee::regrole::text END, ', ')
                                FROM aclexplode(s.relacl) a WHERE a.grantee <> s.relowner)),
       format('REVOKE ALL ON SEQUENCE %s FROM PUBLIC, …; use identity columns', s.oid::regclass::text)
  FROM pg_class s JOIN tenant_schemas ts ON ts.nspid = s.relnamespace
 WHERE s.relkind = 'S' AND EXISTS (SELECT FROM aclexplode(s.relacl) a WHERE a.grantee <> s.relowner)
UNION ALL
SELECT 'warning', format('schema %I', ts.nspid::regnamespace::text),
       format('the schema of tenant %s is not owned by the migration owner but by %s', ts.identifier, ts.nspowner::regrole),
       'SELECT tenancy.set_migration_owner(…); (it reassigns every tenant schema)'
  FROM tenant_schemas ts
 WHERE ts.nspowner IS DISTINCT FROM (SELECT role::oid FROM tenancy.migration_owner)
UNION ALL
SELECT 'error', c.oid::regclass::text,
       format('%s in the schema of tenant %s runs with its owner''s rights',
              CASE c.relkind WHEN 'v' THEN 'view' ELSE 'materialized view' END, ts.identifier),
       CASE c.relkind WHEN 'v' THEN format('ALTER VIEW %s SET (security_invoker = true);', c.oid::regclass::text)
            ELSE 'Replace it with a view or a table' END
  FROM pg_class c JOIN tenant_schemas ts ON ts.nspid = c.relnamespace
 WHERE c.relkind = 'm'
    OR (c.relkind = 'v' AND NOT coalesce(c.reloptions, '{}') @> '{security_invoker=true}')
UNION ALL
-- Permissive policies are ORed: any extra one widens what a tenant sees.
SELECT 'error', format('policy %I on %s', pol.polname, p.tbl),
       'extra permissive policy: permissive policies are combined with OR, so it widens what each tenant can see',
       format('DROP POLICY %I ON %s; or recreate it AS RESTRICTIVE', pol.polname, p.tbl)
  FROM pg_policy pol JOIN protected p ON p.relid = pol.polrelid
 WHERE pol.polpermissive AND pol.polname <> 'tenancy_isolation'
UNION ALL
SELECT 'error', format('policy %I on %s', pol.polname, pol.polrelid::regclass::text),
       'extra permissive policy in a tenant schema: it widens what other tenants can see',
       format('DROP POLICY %I ON %s;', pol.polname, pol.polrelid::regclass::text)
  FROM pg_policy pol JOIN pg_class c ON c.oid = pol.polrelid
  JOIN tenant_schemas ts ON ts.nspid = c.relnamespace
 WHERE pol.polpermissive AND pol.polname <> 'tenancy_schema_isolation'
UNION ALL
-- Views run with their owner's rights unless security_invoker is set.
SELECT CASE WHEN o.rolsuper OR o.rolbypassrls THEN 'error' ELSE 'warning' END,
       v.oid::regclass::text,
       format('view reads protected table %s with the privileges of its owner %s%s', r.tbl, o.rolname,
              CASE WHEN o.rolsuper OR o.rolbypassrls THEN ', who bypasses row-level security' ELSE '' END),
       format('ALTER VIEW %s SET (security_invoker = true);', v.oid::regclass::text)
  FROM readers r JOIN pg_class v ON v.oid = r.view AND v.relkind = 'v'
  JOIN pg_roles o ON o.oid = v.relowner
 WHERE NOT EXISTS (SELECT FROM unnest(v.reloptions) opt
                    WHERE lower(opt) IN ('security_invoker=true', 'security_invoker=on',
                                         'security_invoker=1', 'security_invoker=yes'))
UNION ALL
-- Materialized views cannot have row-level security and store every tenant's rows.
SELECT 'error', m.oid::regclass::text,
       format('materialized view stores rows of protected table %s for every tenant (no row-level security possible)', r.tbl),
       'Replace it with a protected table or a view with security_invoker = true'
  FROM readers r JOIN pg_class m ON m.oid = r.view AND m.relkind = 'm'
UNION ALL
-- SECURITY DEFINER functions run with their owner's rights: an owner that bypasses
-- row-level security reads every tenant's rows for every caller.
SELECT CASE WHEN EXISTS (SELECT FROM protected p WHERE f.prosrc ~* ('\m' || (SELECT relname FROM pg_class WHERE oid = p.relid) || '\M'))
                 OR EXISTS (SELECT FROM pg_depend d JOIN protected p ON p.relid = d.refobjid
                             WHERE d.classid = 'pg_proc'::regclass AND d.objid = f.oid)
            THEN 'error' ELSE 'warning' END,
       f.oid::regprocedure::text,
       format('SECURITY DEFINER function runs as %s, who bypasses row-level security', o.rolname),
       format('ALTER FUNCTION %s OWNER TO a role without SUPERUSER and BYPASSRLS, or SECURITY INVOKER;', f.oid::regprocedure::text)
  FROM pg_proc f JOIN pg_namespace n ON n.oid = f.pronamespace JOIN pg_roles o ON o.oid = f.proowner
 WHERE f.prosecdef AND (o.rolsuper OR o.rolbypassrls)
   AND n.nspname NOT IN ('pg_catalog', 'information_schema')
   AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass
                      AND d.objid = f.oid AND d.deptype = 'e')
UNION ALL
-- SECURITY DEFINER functions with a mutable search_path can be hijacked.
SELECT 'warning', f.oid::regprocedure::text,
       'SECURITY DEFINER function without a fixed search_path',
       format('ALTER FUNCTION %s SET search_path = pg_catalog, pg_temp;', f.oid::regprocedure::text)
  FROM pg_proc f JOIN pg_namespace n ON n.oid = f.pronamespace
 WHERE f.prosecdef AND n.nspname NOT IN ('pg_catalog', 'information_schema')
   AND NOT EXISTS (SELECT FROM unnest(f.proconfig) c WHERE c LIKE 'search\_path=%')
   AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass
                      AND d.objid = f.oid AND d.deptype = 'e')
UNION ALL
-- Login roles that bypass row-level security (superusers are assumed to be administrators).
SELECT 'warning', format('role %I', r.rolname),
       'role can log in and has BYPASSRLS: it sees every tenant''s rows',
       format('ALTER ROLE %I NOBYPASSRLS; keep BYPASSRLS for backup roles only', r.rolname)
  FROM pg_roles r
 WHERE r.rolcanlogin AND r.rolbypassrls AND NOT r.rolsuper
UNION ALL
-- An owner can switch FORCE ROW LEVEL SECURITY off again.
SELECT 'warning', format('role %I', o.rolname),
       format('login role owns protected table %s and could turn its row-level security off', p.tbl),
       format('ALTER TABLE %s OWNER TO a NOLOGIN role; let the application log in as another role', p.tbl)
  FROM protected p JOIN pg_class c ON c.oid = p.relid JOIN pg_roles o ON o.oid = c.relowner
 WHERE o.rolcanlogin AND NOT o.rolsuper
UNION ALL
-- Without an index led by the tenant column every query scans all tenants' rows.
SELECT 'warning', p.tbl,
       format('no index starts with the tenant column %I', p.tenant_column),
       format('CREATE INDEX ON %s (%I, …);', p.tbl, p.tenant_column)
  FROM protected p
 WHERE NOT EXISTS (SELECT FROM pg_index i WHERE i.indrelid = p.relid AND i.indkey[0] = p.tenant_attnum)
UNION ALL
-- A foreign key that does not include the tenant column can point at (and probe for)
-- another tenant's row.
SELECT 'warning', format('constraint %I on %s', con.conname, con.conrelid::regclass::text),
       format('foreign key into protected table %s does not include its tenant column %I', p.tbl, p.tenant_column),
       format('Reference (%I, …) with a composite key', p.tenant_column)
  FROM pg_constraint con JOIN protected p ON p.relid = con.confrelid
 WHERE con.contype = 'f' AND NOT (p.tenant_attnum = ANY (con.confkey))
UNION ALL
-- Before the library is loaded in a session, SET tenancy.* only makes a placeholder.
SELECT 'warning', 'shared_preload_libraries',
       'the tenancy library is not preloaded: until a session first calls tenancy, its settings are placeholders',
       'Add tenancy to shared_preload_libraries (or session_preload_libraries) and restart'
 WHERE NOT tenancy.library_preloaded()
ORDER BY 1, 2, 3
$$;

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
