-- What PostgreSQL evaluates for whoever uses a table (as that role, an
-- immutable part already while planning a query on it): the expressions of
-- an index, a column default or generated column, a constraint (of a table
-- or a domain), a policy, a view or rule, extended statistics, a partition
-- key, as the text of their node trees; NULL when it has none. (PL/pgSQL:
-- each call reads the one catalog of the object's class, on a plan kept for
-- the session; a SQL CASE over every class set up all six subqueries at
-- every call, for each object a migration made.)
CREATE OR REPLACE FUNCTION tenancy.expressions_of(classid oid, objid oid) RETURNS text
LANGUAGE plpgsql STABLE STRICT SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    found text;
BEGIN
    IF classid = 'pg_class'::regclass THEN
        -- An index, or a partitioned table (never both).
        SELECT concat(i.indexprs, i.indpred) INTO found FROM pg_index i WHERE i.indexrelid = objid;
        IF found IS NULL THEN
            SELECT k.partexprs::text INTO found FROM pg_partitioned_table k WHERE k.partrelid = objid;
        END IF;
    ELSIF classid = 'pg_attrdef'::regclass THEN
        SELECT d.adbin::text INTO found FROM pg_attrdef d WHERE d.oid = objid;
    ELSIF classid = 'pg_constraint'::regclass THEN
        SELECT c.conbin::text INTO found FROM pg_constraint c WHERE c.oid = objid;
    ELSIF classid = 'pg_policy'::regclass THEN
        SELECT concat(p.polqual, p.polwithcheck) INTO found FROM pg_policy p WHERE p.oid = objid;
    ELSIF classid = 'pg_rewrite'::regclass THEN
        SELECT concat(r.ev_qual, r.ev_action) INTO found FROM pg_rewrite r WHERE r.oid = objid;
    ELSIF classid = 'pg_statistic_ext'::regclass THEN
        SELECT s.stxexprs::text INTO found FROM pg_statistic_ext s WHERE s.oid = objid;
    END IF;
    RETURN nullif(found, '');
END
$$;

-- The volatile functions an expression of a tenant schema may call: they have
-- no effect beyond their result (a default drawing a random id or the time).
-- Every other volatile function has one (set_config, pg_notify,
-- pg_terminate_backend, tenancy.set_tenant_jwt, …) that would act for whoever
-- uses the table.
CREATE OR REPLACE FUNCTION tenancy.volatile_but_harmless(f oid) RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
SELECT EXISTS (SELECT FROM pg_proc p WHERE p.oid = f
                  AND ((p.pronamespace = 'pg_catalog'::regnamespace
                        AND p.proname IN ('random', 'random_normal', 'gen_random_uuid', 'uuidv4', 'uuidv7',
                                          'clock_timestamp', 'timeofday'))
                       OR p.oid = 'tenancy.uuid_v7()'::regprocedure))
$$;

-- Whether the text of node trees (expressions_of) calls one of PostgreSQL's
-- own functions that runs code no superuser wrote, or that a superuser may
-- use and others may not: those that run SQL given as text or read a
-- relation by name (its views included), those PUBLIC may not execute
-- (pg_read_binary_file, lo_export, …) and the volatile ones with an effect
-- (volatile_but_harmless). In an expression that PostgreSQL evaluates for
-- whoever uses a table, the application's request, or a superuser's query or
-- restore, would run them. (PostgreSQL records no dependency on its own
-- functions: the trees are read. Only the functions a tree calls are looked
-- at, not every built-in.)
CREATE OR REPLACE FUNCTION tenancy.calls_forbidden(expressions text) RETURNS boolean
LANGUAGE sql STABLE STRICT SET search_path = pg_catalog, pg_temp AS $$
SELECT EXISTS (
    SELECT FROM regexp_matches(expressions, ':(?:funcid|opfuncid|aggfnoid|winfnoid) (\d+) ', 'g') call
      JOIN pg_proc p ON p.oid = call[1]::oid
     WHERE p.pronamespace = 'pg_catalog'::regnamespace
       AND (NOT has_function_privilege('public', p.oid, 'EXECUTE')
            OR (p.provolatile = 'v' AND NOT tenancy.volatile_but_harmless(p.oid))
            OR p.proname IN ('ts_stat', 'query_to_xml', 'query_to_xmlschema', 'query_to_xml_and_xmlschema',
                             'cursor_to_xml', 'cursor_to_xmlschema', 'table_to_xml', 'table_to_xmlschema',
                             'table_to_xml_and_xmlschema', 'schema_to_xml', 'schema_to_xmlschema',
                             'schema_to_xml_and_xmlschema', 'database_to_xml', 'database_to_xmlschema',
                             'database_to_xml_and_xmlschema')
            OR (p.proname = 'ts_rewrite' AND p.pronargs = 2)))
$$;

-- verify(): one row per isolation problem found in the database, with how to fix it.
-- No rows on a clean setup. Severity 'error' = a tenant can see or change another
-- tenant's rows today; 'warning' = a door an operator should close.
CREATE OR REPLACE FUNCTION tenancy.verify()
RETURNS TABLE (severity text, object text, problem text, fix text)
-- (jit off: compiling this long query's expressions costs seconds and saves nothing)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp SET jit = off AS $$
WITH protected AS (
    SELECT p.relid::oid AS relid, p.relid::text AS tbl, p.tenant_column,
           a.attnum AS tenant_attnum
      FROM tenancy.protected_tables p
      LEFT JOIN pg_attribute a ON a.attrelid = p.relid AND a.attname = p.tenant_column
), tenant_schemas AS MATERIALIZED (   -- read once: tenancy.tenants may hold millions
    SELECT t.identifier, n.oid AS nspid, t.id, n.nspowner
      FROM tenancy.tenants t JOIN pg_namespace n ON n.nspname = t.schema_name
), user_tables AS (      -- tables that tenants share (tenant schemas are checked below)
    SELECT c.* FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'tenancy', 'tenancy_migration_check')
       AND n.nspname NOT LIKE 'pg\_%'
       -- (a hashed sub-plan: a correlated one made the planner scan
       -- pg_class_relname_nsp_index whole, by its second column, per namespace)
       AND n.oid NOT IN (SELECT ts.nspid FROM tenant_schemas ts)
), tenant_relations AS MATERIALIZED (   -- the relations of tenant schemas: pg_class,
    -- which holds every schema's, read once for the checks below
    SELECT c.oid, c.relkind, c.relowner, c.relacl, c.reloptions, c.relrowsecurity,
           c.relforcerowsecurity, ts.identifier, ts.id
      FROM pg_class c JOIN tenant_schemas ts ON ts.nspid = c.relnamespace
     WHERE c.relkind IN ('r', 'p', 'S', 'v', 'm', 'f')
), pinned_groups AS MATERIALIZED (   -- the pinned policies of tenant schemas, alike ones together:
    -- the migrations pin every table of a schema with the same stored text, so
    -- a schema's policies are deparsed once, not once per table
    -- (grouped by keys that compare as bytes: no text in the collation)
    SELECT c.id, min(c.identifier) AS identifier, min(pol.polrelid) AS relid,
           array_agg(pol.polrelid) AS relids
      FROM pg_policy pol JOIN tenant_relations c ON c.oid = pol.polrelid
     WHERE pol.polname = 'tenancy_schema_isolation' AND c.relkind IN ('r', 'p')
     GROUP BY c.id, pol.polcmd, pol.polpermissive, pol.polroles,
              md5(coalesce(pol.polqual::text, '') || ' ' || coalesce(pol.polwithcheck::text, ''))::uuid
), expected_policies AS (   -- what protect() and migrations generate, as PostgreSQL prints it back
    -- (protect() calls the accessor directly, the planner makes the call an
    -- InitPlan; tables protected before 0.5.0 have the sub-select instead)
    SELECT p.relid, ARRAY[p.relid] AS relids, 'tenancy_isolation' AS polname, 'protect()' AS made_by,
           format('(%I = tenancy.current_tenant())', p.tenant_column) AS expected_check,
           format('(%I = ( SELECT tenancy.current_tenant() AS current_tenant))', p.tenant_column) AS also_expected,
           format('SELECT tenancy.protect(%%L, %L);', p.tenant_column) AS fix
      FROM protected p
    UNION ALL
    SELECT g.relid, g.relids, 'tenancy_schema_isolation', format('the migrations of tenant %s', g.identifier),
           format('(( SELECT tenancy.current_tenant() AS current_tenant) = %L::uuid)', g.id),
           format('(tenancy.current_tenant() = %L::uuid)', g.id),
           format('DROP POLICY tenancy_schema_isolation ON %%s; SELECT tenancy.migrate_tenant(%L);', g.identifier)
      FROM pinned_groups g
), suspicious AS MATERIALIZED (   -- functions that run code no superuser wrote, that
    -- PUBLIC may not execute, or volatile ones with an effect (asked once per function)
    SELECT f.oid, f.proowner,
           NOT EXISTS (SELECT FROM pg_roles r WHERE r.oid = f.proowner AND r.rolsuper) AS foreign_owner
      FROM pg_proc f
     WHERE NOT EXISTS (SELECT FROM pg_roles r WHERE r.oid = f.proowner AND r.rolsuper)
        OR NOT has_function_privilege('public', f.oid, 'EXECUTE')
        OR (f.provolatile = 'v' AND NOT tenancy.volatile_but_harmless(f.oid))
), calls AS MATERIALIZED (   -- the objects that call one: directly, or through an operator
    SELECT d.classid, d.objid, d.objsubid, s.oid AS fid, s.proowner, s.foreign_owner
      FROM suspicious s
      JOIN pg_depend d ON d.refclassid = 'pg_proc'::regclass AND d.refobjid = s.oid AND d.deptype = 'n'
    UNION ALL
    SELECT d.classid, d.objid, d.objsubid, s.oid, s.proowner, s.foreign_owner
      FROM suspicious s JOIN pg_operator op ON op.oprcode = s.oid
      JOIN pg_depend d ON d.refclassid = 'pg_operator'::regclass AND d.refobjid = op.oid AND d.deptype = 'n'
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
  -- (looked up table by table: the tables that tenants share are few, and
  -- pg_attribute holds the columns of every tenant schema too)
  CROSS JOIN LATERAL (SELECT FROM pg_attribute a
                       WHERE a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped
                       LIMIT 1) a
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
-- Parents of protected tables: queried through a parent, a protected table's
-- rows are read under the parent's row-level security.
SELECT 'error', i.inhparent::regclass::text,
       format('parent of protected table %s is not protected: every tenant reads its rows through it', p.tbl),
       format('SELECT tenancy.protect(%L); or ALTER TABLE %s NO INHERIT %s; (DETACH PARTITION for a partition)',
              i.inhparent::regclass::text, p.tbl, i.inhparent::regclass::text)
  FROM pg_inherits i JOIN protected p ON p.relid = i.inhrelid
 WHERE i.inhparent NOT IN (SELECT relid FROM protected)
UNION ALL
-- Roles other than superusers that can read the signing keys or the cluster
-- key (SELECT through a grant or pg_read_all_data, and BYPASSRLS).
SELECT 'error', format('role %I', r.rolname),
       'role can read the signing keys or the cluster key: it can forge tenant tokens, JWTs and Citus contexts',
       format('ALTER ROLE %I NOBYPASSRLS; or revoke its SELECT (also through pg_read_all_data)', r.rolname)
  FROM pg_roles r
 WHERE NOT r.rolsuper AND r.rolbypassrls
   AND (has_table_privilege(r.oid, 'tenancy.signing_keys', 'SELECT')
        OR has_table_privilege(r.oid, 'tenancy.cluster_key', 'SELECT'))
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
-- compare its content (once for alike policies: see pinned_groups).
SELECT 'error', t.relid::regclass::text,
       format('the %s policy differs from what %s generated (%s)', d.polname, d.made_by,
              concat_ws(', ',
                  CASE WHEN d.polcmd <> '*' THEN 'not FOR ALL' END,
                  CASE WHEN NOT d.polpermissive THEN 'not permissive' END,
                  CASE WHEN d.polroles <> '{0}' THEN 'not TO PUBLIC' END,
                  CASE WHEN NOT coalesce(d.qual IN (d.expected_check, d.also_expected), false)
                       THEN format('USING %s', coalesce(d.qual, 'missing')) END,
                  CASE WHEN NOT coalesce(d.with_check IN (d.expected_check, d.also_expected), false)
                       THEN format('WITH CHECK %s', coalesce(d.with_check, 'missing')) END)),
       format(d.fix, t.relid::regclass::text)
  -- Each policy deparsed once, after the join (OFFSET 0: the planner may
  -- neither copy the calls into every test that reads them nor run them on
  -- every policy of the database before joining).
  FROM (SELECT e.*, pol.polcmd, pol.polpermissive, pol.polroles,
               pg_get_expr(pol.polqual, pol.polrelid) AS qual,
               pg_get_expr(pol.polwithcheck, pol.polrelid) AS with_check
          FROM expected_policies e JOIN pg_policy pol ON pol.polrelid = e.relid AND pol.polname = e.polname
        OFFSET 0) d
 CROSS JOIN LATERAL unnest(d.relids) AS t(relid)
 WHERE d.polcmd <> '*' OR NOT d.polpermissive OR d.polroles <> '{0}'
    OR NOT coalesce(d.qual IN (d.expected_check, d.also_expected), false)
    OR NOT coalesce(d.with_check IN (d.expected_check, d.also_expected), false)
UNION ALL
-- TRUNCATE skips row-level security: the guard trigger must be there and enabled.
SELECT 'error', p.tbl, 'the tenancy_no_truncate trigger is missing, disabled or not the one protect() makes: TRUNCATE would remove every tenant''s rows',
       format('SELECT tenancy.protect(%L, %L);', p.tbl, p.tenant_column)
  FROM protected p
 WHERE NOT EXISTS (SELECT FROM pg_trigger t WHERE t.tgrelid = p.relid AND t.tgname = 'tenancy_no_truncate'
                      AND t.tgenabled IN ('O', 'A') AND t.tgfoid = 'tenancy.refuse_truncate()'::regprocedure
                      -- (BEFORE TRUNCATE, for each statement, without a WHEN that could skip it)
                      AND t.tgtype = 34 AND t.tgqual IS NULL)
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
       format('table in the schema of tenant %s has no row-level security pinned to it', c.identifier),
       format('SELECT tenancy.migrate_tenant(%L); (it pins every table of the schema)', c.identifier)
  FROM tenant_relations c
 WHERE c.relkind IN ('r', 'p')
   AND NOT (c.relrowsecurity AND c.relforcerowsecurity
            AND EXISTS (SELECT FROM pg_policy pol WHERE pol.polrelid = c.oid
                           AND pol.polname = 'tenancy_schema_isolation'))
UNION ALL
SELECT 'error', c.oid::regclass::text,
       format('the tenancy_schema_guard trigger of this table of tenant %s is missing, disabled or not the one migrations make: other tenants'' writes reach its triggers', c.identifier),
       format('SELECT tenancy.migrate_tenant(%L);', c.identifier)
  FROM tenant_relations c
 WHERE c.relkind IN ('r', 'p')
   AND NOT EXISTS (SELECT FROM pg_trigger t WHERE t.tgrelid = c.oid AND t.tgname = 'tenancy_schema_guard'
                      AND t.tgenabled IN ('O', 'A') AND t.tgfoid = 'tenancy.schema_guard()'::regprocedure
                      -- (BEFORE every write and TRUNCATE, for each statement, without a WHEN
                      -- or a column list, pinned to this schema's tenant)
                      AND t.tgtype = 62 AND t.tgqual IS NULL AND t.tgattr = ''::int2vector
                      AND t.tgargs = convert_to(c.id::text, 'UTF8') || '\x00'::bytea)
UNION ALL
-- What row-level security does not filter, granted on a tenant schema's table
-- (the pinning revokes it; granted again since, by its owner): TRUNCATE
-- empties it, TRIGGER and REFERENCES run the grantee's code in its writers'
-- context, MAINTAIN (17) runs its index expressions.
SELECT 'error', c.oid::regclass::text,
       format('table in the schema of tenant %s grants %s to %s, which row-level security does not filter',
              c.identifier, g.privileges, g.grantees),
       format('REVOKE TRUNCATE, REFERENCES, TRIGGER ON %s FROM …; (and MAINTAIN on PostgreSQL 17 and later)', c.oid::regclass::text)
  FROM tenant_relations c,
       LATERAL (SELECT string_agg(DISTINCT a.privilege_type, ', ') AS privileges,
                       string_agg(DISTINCT CASE a.grantee WHEN 0 THEN 'PUBLIC' ELSE a.grantee::regrole::text END, ', ') AS grantees
                  FROM aclexplode(c.relacl) a
                 WHERE a.grantee <> c.relowner AND a.privilege_type IN ('TRUNCATE', 'REFERENCES', 'TRIGGER', 'MAINTAIN')) g
 WHERE c.relkind IN ('r', 'p') AND g.privileges IS NOT NULL
UNION ALL
SELECT 'error', f.oid::regprocedure::text,
       format('SECURITY DEFINER function in the schema of tenant %s runs with its owner''s rights for every caller', ts.identifier),
       format('ALTER FUNCTION %s SECURITY INVOKER;', f.oid::regprocedure::text)
  FROM pg_proc f JOIN tenant_schemas ts ON ts.nspid = f.pronamespace
 WHERE f.prosecdef
UNION ALL
SELECT 'error', s.oid::regclass::text,
       format('sequence in the schema of tenant %s can be used by %s: other tenants can read and advance it',
              s.identifier, (SELECT string_agg(CASE a.grantee WHEN 0 THEN 'PUBLIC' ELSE a.grantee::regrole::text END, ', ')
                                FROM aclexplode(s.relacl) a WHERE a.grantee <> s.relowner)),
       format('REVOKE ALL ON SEQUENCE %s FROM PUBLIC, …; use identity columns', s.oid::regclass::text)
  FROM tenant_relations s
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
              CASE c.relkind WHEN 'v' THEN 'view' ELSE 'materialized view' END, c.identifier),
       CASE c.relkind WHEN 'v' THEN format('ALTER VIEW %s SET (security_invoker = true);', c.oid::regclass::text)
            ELSE 'Replace it with a view or a table' END
  FROM tenant_relations c
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
  FROM pg_policy pol JOIN tenant_relations c ON c.oid = pol.polrelid
 WHERE pol.polpermissive AND pol.polname <> 'tenancy_schema_isolation'
UNION ALL
-- The statement guard must decide first: a statement trigger that sorts before
-- it, or one that fires in replication, runs the migration author's code first.
SELECT 'error', format('trigger %I on %s', t.tgname, t.tgrelid::regclass::text),
       format('trigger in the schema of tenant %s runs before tenancy_schema_guard decides who may write, or in replication', c.identifier),
       format('DROP TRIGGER %I ON %s; (statement triggers must sort after tenancy_schema_guard)', t.tgname, t.tgrelid::regclass::text)
  FROM pg_trigger t JOIN tenant_relations c ON c.oid = t.tgrelid
 WHERE NOT t.tgisinternal AND t.tgname <> 'tenancy_schema_guard'
   AND ((t.tgtype::int & 3 = 2 AND t.tgname < 'tenancy_schema_guard' COLLATE "C") OR t.tgenabled IN ('A', 'R'))
   AND c.relkind <> 'v'
UNION ALL
-- A trigger runs in every writer's tenant context: one whose function belongs
-- to a role that neither owns the relation nor is a superuser may have been
-- added with the TRIGGER privilege (before tenancy was installed, or while its
-- event triggers were off), and would read every writer's tenant's rows.
SELECT 'warning', format('trigger %I on %s', t.tgname, t.tgrelid::regclass::text),
       format('its function %s belongs to %s, not to the owner of %s: it runs in every writer''s tenant context',
              t.tgfoid::regprocedure::text, p.proowner::regrole::text, t.tgrelid::regclass::text),
       format('DROP TRIGGER %I ON %s; (where tenancy is installed, only the owner adds triggers)', t.tgname, t.tgrelid::regclass::text)
  FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_proc p ON p.oid = t.tgfoid
 WHERE NOT t.tgisinternal
   AND t.tgfoid NOT IN ('tenancy.schema_guard()'::regprocedure, 'tenancy.refuse_truncate()'::regprocedure)
   AND NOT pg_has_role(c.relowner, p.proowner, 'USAGE')
   AND NOT EXISTS (SELECT FROM pg_roles r WHERE r.oid = p.proowner AND r.rolsuper)
UNION ALL
-- PostgreSQL checks a foreign key with queries on the referencing table, as
-- its owner, in the session and tenant context of whoever deletes or updates
-- the referenced rows, planned with what that owner attached to the table
-- (an index's predicate, a constraint, a policy): a key from a table whose
-- owner lacks the privileges of the referenced table's owner (made before
-- tenancy was installed, or by a superuser) runs that role's code in their
-- requests. (Migrations may add keys to shared tables: what they attach to
-- their tables cannot call their author's code.)
SELECT 'warning', format('constraint %I on %s', k.conname, k.conrelid::regclass::text),
       format('foreign key into %s, owned by %s, from a table of %s: its checks run what %s attached to %s in the context of whoever deletes or updates %s',
              k.confrelid::regclass::text, r.relowner::regrole::text, f.relowner::regrole::text,
              f.relowner::regrole::text, k.conrelid::regclass::text, k.confrelid::regclass::text),
       format('ALTER TABLE %s DROP CONSTRAINT %I; (where tenancy is installed, only the referenced table''s owner adds keys)',
              k.conrelid::regclass::text, k.conname)
  FROM pg_constraint k JOIN pg_class f ON f.oid = k.conrelid JOIN pg_class r ON r.oid = k.confrelid
 WHERE k.contype = 'f' AND k.conparentid = 0 AND NOT pg_has_role(f.relowner, r.relowner, 'USAGE')
   AND NOT EXISTS (SELECT FROM tenant_relations t WHERE t.oid = k.conrelid)
UNION ALL
-- A partition whose owner lacks the privileges of its parent's owner, in a
-- table with foreign keys (either side): PostgreSQL checks them with queries
-- on the parent, as the parent's owner, and planning them runs what the
-- partition's owner attached to it (an index's predicate, a CHECK), over
-- every tenant's rows.
SELECT 'warning', format('partition %s', i.inhrelid::regclass::text),
       format('owned by %s, in %s, owned by %s, which has foreign keys: their checks run what %s attached to it as %s',
              c.relowner::regrole::text, i.inhparent::regclass::text, p.relowner::regrole::text,
              c.relowner::regrole::text, p.relowner::regrole::text),
       format('ALTER TABLE %s OWNER TO %s; (or detach it)', i.inhrelid::regclass::text, p.relowner::regrole::text)
  FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent
 WHERE NOT pg_has_role(c.relowner, p.relowner, 'USAGE')
   AND EXISTS (SELECT FROM pg_constraint k WHERE k.contype = 'f' AND (k.conrelid = p.oid OR k.confrelid = p.oid))
   AND NOT EXISTS (SELECT FROM tenant_relations t WHERE t.oid = c.oid)
UNION ALL
-- A cast that PostgreSQL applies by itself runs its function wherever it
-- converts (a foreign key's checks: as the referenced table's owner); one
-- whose function another role than a superuser owns, made before tenancy was
-- installed or by a superuser, runs that role's code there.
SELECT 'error', format('cast from %s to %s', c.castsource::regtype::text, c.casttarget::regtype::text),
       format('PostgreSQL applies it by itself (%s) and it calls %s, which %s owns: its code would run as whoever converts, a foreign key''s referenced table owner included',
              CASE c.castcontext WHEN 'i' THEN 'implicit' ELSE 'assignment' END,
              p.oid::regprocedure::text, p.proowner::regrole::text),
       format('DROP CAST (%s AS %s); (or give %s to a superuser)', c.castsource::regtype::text,
              c.casttarget::regtype::text, p.oid::regprocedure::text)
  FROM pg_cast c JOIN pg_proc p ON p.oid = c.castfunc
 WHERE c.castcontext IN ('i', 'a')
   AND NOT EXISTS (SELECT FROM pg_roles r WHERE r.oid = p.proowner AND r.rolsuper)
UNION ALL
-- A view has no guard: its INSTEAD OF triggers run for every tenant's writes.
SELECT 'error', format('trigger %I on %s', t.tgname, t.tgrelid::regclass::text),
       format('trigger on a view in the schema of tenant %s runs instead of every tenant''s writes, with no guard before it', c.identifier),
       format('DROP TRIGGER %I ON %s;', t.tgname, t.tgrelid::regclass::text)
  FROM pg_trigger t JOIN tenant_relations c ON c.oid = t.tgrelid
 WHERE NOT t.tgisinternal AND c.relkind = 'v'
UNION ALL
SELECT 'error', format('rule %I on %s', r.rulename, r.ev_class::regclass::text),
       format('rule in the schema of tenant %s rewrites writes before tenancy_schema_guard sees them', c.identifier),
       format('DROP RULE %I ON %s;', r.rulename, r.ev_class::regclass::text)
  FROM pg_rewrite r JOIN tenant_relations c ON c.oid = r.ev_class
 WHERE r.ev_type <> '1'
UNION ALL
SELECT 'error', format('schema %I', ts.nspid::regnamespace::text),
       format('roles other than its owner can create objects in the schema of tenant %s: %s', ts.identifier,
              (SELECT string_agg(CASE a.grantee WHEN 0 THEN 'PUBLIC' ELSE a.grantee::regrole::text END, ', ')
                 FROM pg_namespace n, aclexplode(n.nspacl) a
                WHERE n.oid = ts.nspid AND a.privilege_type = 'CREATE' AND a.grantee <> n.nspowner)),
       format('REVOKE CREATE ON SCHEMA %s FROM …;', ts.nspid::regnamespace::text)
  FROM tenant_schemas ts JOIN pg_namespace n ON n.oid = ts.nspid
 WHERE EXISTS (SELECT FROM aclexplode(n.nspacl) a WHERE a.privilege_type = 'CREATE' AND a.grantee <> n.nspowner)
UNION ALL
-- Indexes, defaults, constraints, policies, views, extended statistics and
-- domains of tenant schemas that call (directly or through an operator) a
-- function that a role other than a superuser owns, that PUBLIC may not
-- execute or that is volatile with an effect: PostgreSQL runs it for whoever
-- plans or runs a query on the table, a superuser too.
SELECT 'error', pg_describe_object(d.classid, d.objid, d.objsubid),
       format('in the schema of tenant %s, it calls %s (owned by %s): it runs code no superuser wrote for whoever queries the table',
              ts.identifier, d.fid::regprocedure, d.proowner::regrole),
       'Drop it (a migration may not make it), or have a superuser own the function'
  FROM calls d
  CROSS JOIN LATERAL (SELECT CASE d.classid
           WHEN 'pg_class'::regclass THEN (SELECT c.relnamespace FROM pg_class c WHERE c.oid = d.objid)
           WHEN 'pg_attrdef'::regclass THEN (SELECT c.relnamespace FROM pg_attrdef a
                                               JOIN pg_class c ON c.oid = a.adrelid WHERE a.oid = d.objid)
           WHEN 'pg_constraint'::regclass THEN (SELECT coalesce(c.relnamespace, t.typnamespace) FROM pg_constraint k
                                                  LEFT JOIN pg_class c ON c.oid = k.conrelid
                                                  LEFT JOIN pg_type t ON t.oid = k.contypid WHERE k.oid = d.objid)
           WHEN 'pg_rewrite'::regclass THEN (SELECT c.relnamespace FROM pg_rewrite r
                                               JOIN pg_class c ON c.oid = r.ev_class WHERE r.oid = d.objid)
           WHEN 'pg_policy'::regclass THEN (SELECT c.relnamespace FROM pg_policy p
                                              JOIN pg_class c ON c.oid = p.polrelid WHERE p.oid = d.objid)
           WHEN 'pg_statistic_ext'::regclass THEN (SELECT s.stxnamespace FROM pg_statistic_ext s WHERE s.oid = d.objid)
           WHEN 'pg_type'::regclass THEN (SELECT t.typnamespace FROM pg_type t WHERE t.oid = d.objid)
         END AS nspid) o
  JOIN tenant_schemas ts ON ts.nspid = o.nspid
UNION ALL
-- Procedures of tenant schemas: a CALL could commit in the middle of a request.
SELECT 'error', p.oid::regprocedure::text,
       format('procedure in the schema of tenant %s: a CALL may commit or roll back in the middle of the caller''s work', ts.identifier),
       format('DROP PROCEDURE %s; (use a function)', p.oid::regprocedure::text)
  FROM pg_proc p JOIN tenant_schemas ts ON ts.nspid = p.pronamespace
 WHERE p.prokind = 'p'
UNION ALL
-- ... or one of PostgreSQL's that run SQL given as text, or that PUBLIC may not
-- execute (tenancy.calls_forbidden).
SELECT 'error', pg_describe_object(x.classid, x.objid, 0),
       format('in the schema of tenant %s, it calls a function that runs SQL given as text or that only some roles may run, for whoever queries the table', ts.identifier),
       'Drop it (a migration may not make it)'
  FROM (SELECT 'pg_class'::regclass::oid, i.indexrelid, c.relnamespace, concat(i.indexprs, i.indpred)
          FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
         WHERE i.indexprs IS NOT NULL OR i.indpred IS NOT NULL
        UNION ALL
        SELECT 'pg_attrdef'::regclass, d.oid, c.relnamespace, d.adbin::text
          FROM pg_attrdef d JOIN pg_class c ON c.oid = d.adrelid
        UNION ALL
        SELECT 'pg_constraint'::regclass, k.oid, coalesce(c.relnamespace, t.typnamespace), k.conbin::text
          FROM pg_constraint k LEFT JOIN pg_class c ON c.oid = k.conrelid LEFT JOIN pg_type t ON t.oid = k.contypid
         WHERE k.conbin IS NOT NULL
        UNION ALL
        SELECT 'pg_policy'::regclass, p.oid, c.relnamespace, concat(p.polqual, p.polwithcheck)
          FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid
         WHERE p.polname <> 'tenancy_schema_isolation'
        UNION ALL
        SELECT 'pg_rewrite'::regclass, r.oid, c.relnamespace, concat(r.ev_qual, r.ev_action)
          FROM pg_rewrite r JOIN pg_class c ON c.oid = r.ev_class
        UNION ALL
        SELECT 'pg_statistic_ext'::regclass, s.oid, s.stxnamespace, s.stxexprs::text
          FROM pg_statistic_ext s WHERE s.stxexprs IS NOT NULL) AS x(classid, objid, nspid, expressions)
  JOIN tenant_schemas ts ON ts.nspid = x.nspid
 WHERE tenancy.calls_forbidden(x.expressions)
UNION ALL
-- What PostgreSQL evaluates for whoever queries a protected table (index
-- expressions and predicates, statistics, constraints, defaults) that calls a
-- function a role other than a superuser owns: a superuser's query on the
-- table, even a plain SELECT, runs it with superuser rights.
SELECT 'warning', pg_describe_object(d.classid, d.objid, 0),
       format('on protected table %s, it calls %s (owned by %s): a superuser''s query on the table runs it with superuser rights',
              p.tbl, d.fid::regprocedure, d.proowner::regrole),
       'Query the table as its owner, in a session of its own (not SET ROLE in a superuser''s), or have a superuser own the function'
  FROM calls d
  CROSS JOIN LATERAL (SELECT CASE d.classid
           WHEN 'pg_class'::regclass THEN (SELECT i.indrelid FROM pg_index i WHERE i.indexrelid = d.objid)
           WHEN 'pg_attrdef'::regclass THEN (SELECT a.adrelid FROM pg_attrdef a WHERE a.oid = d.objid)
           WHEN 'pg_constraint'::regclass THEN (SELECT k.conrelid FROM pg_constraint k WHERE k.oid = d.objid)
           WHEN 'pg_statistic_ext'::regclass THEN (SELECT s.stxrelid FROM pg_statistic_ext s WHERE s.oid = d.objid)
         END AS relid) o
  JOIN protected p ON p.relid = o.relid
 WHERE d.foreign_owner
UNION ALL
-- A column whose type is a domain with a default: an INSERT that leaves the
-- column out evaluates the domain's default.
SELECT 'warning', format('column %I of %s', a.attname, p.tbl),
       format('on protected table %s, the default of its domain %s calls %s (owned by %s): a superuser''s INSERT runs it with superuser rights',
              p.tbl, a.atttypid::regtype, d.fid::regprocedure, d.proowner::regrole),
       'Insert as the table''s owner, in a session of its own, or have a superuser own the function'
  FROM protected p
  JOIN pg_attribute a ON a.attrelid = p.relid AND a.attnum > 0 AND NOT a.attisdropped
  JOIN calls d ON d.classid = 'pg_type'::regclass AND d.objid = a.atttypid
 WHERE d.foreign_owner
UNION ALL
-- Foreign keys and inheritance between two tenants' schemas join their rows.
SELECT 'error', format('constraint %I on %s', k.conname, k.conrelid::regclass::text),
       format('foreign key from the schema of tenant %s into the schema of tenant %s', a.identifier, b.identifier),
       format('ALTER TABLE %s DROP CONSTRAINT %I;', k.conrelid::regclass::text, k.conname)
  FROM pg_constraint k
  JOIN pg_class ca ON ca.oid = k.conrelid JOIN tenant_schemas a ON a.nspid = ca.relnamespace
  JOIN pg_class cb ON cb.oid = k.confrelid JOIN tenant_schemas b ON b.nspid = cb.relnamespace
 WHERE k.contype = 'f' AND a.nspid <> b.nspid
UNION ALL
SELECT 'error', i.inhrelid::regclass::text,
       format('table of tenant %s inherits from table %s of tenant %s', a.identifier, i.inhparent::regclass::text, b.identifier),
       format('ALTER TABLE %s NO INHERIT %s;', i.inhrelid::regclass::text, i.inhparent::regclass::text)
  FROM pg_inherits i
  JOIN pg_class ca ON ca.oid = i.inhrelid JOIN tenant_schemas a ON a.nspid = ca.relnamespace
  JOIN pg_class cb ON cb.oid = i.inhparent JOIN tenant_schemas b ON b.nspid = cb.relnamespace
 WHERE a.nspid <> b.nspid
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
SELECT CASE WHEN EXISTS (SELECT FROM protected p WHERE f.prosrc ~* ('\m' || regexp_replace((SELECT relname FROM pg_class WHERE oid = p.relid),
                                                                               '([^[:alnum:]_])', '\\\1', 'g') || '\M'))
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
-- The migration owner owns every tenant schema: whoever can log in as it, or
-- holds ADMIN on it (and so can make itself a member), reaches every schema
-- tenant's rows. (Members are its maintainers, granted on purpose.)
SELECT 'warning', format('role %I', o.rolname),
       CASE WHEN o.rolcanlogin
            THEN 'the migration owner can log in: whoever has its password owns every tenant schema'
            ELSE format('roles other than superusers hold ADMIN on the migration owner and can make themselves members of it: %s',
                        (SELECT string_agg(quote_ident(a.rolname), ', ' ORDER BY a.rolname)
                           FROM pg_auth_members m JOIN pg_roles a ON a.oid = m.member
                          WHERE m.roleid = o.oid AND m.admin_option AND NOT a.rolsuper)) END,
       format('ALTER ROLE %I NOLOGIN PASSWORD NULL; REVOKE ADMIN OPTION FOR %I FROM …; (on Citus the migration owner must log in to the workers: keep its password out of reach)', o.rolname, o.rolname)
  FROM tenancy.migration_owner mo JOIN pg_roles o ON o.oid = mo.role
 WHERE o.rolcanlogin
    OR EXISTS (SELECT FROM pg_auth_members m JOIN pg_roles a ON a.oid = m.member
                WHERE m.roleid = o.oid AND m.admin_option AND NOT a.rolsuper)
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
-- A function called through the protocol's fast path runs outside every
-- statement: in the context of a tenant with limits it is refused, but only
-- where PostgreSQL reports it (track_activities, on by default). Off here, or
-- for a role or database, or settable by a role that is not a superuser, such
-- a call would run outside the tenant's limits and uncounted.
SELECT 'warning', 'track_activities',
       'track_activities is off, or may be turned off, where tenants have limits: a function called '
       'through the protocol''s fast path (libpq''s PQfn) in such a tenant''s context is not recognised, '
       'and runs outside its limits',
       'Keep track_activities on (ALTER SYSTEM / ALTER ROLE / ALTER DATABASE … RESET track_activities), '
       'and REVOKE SET ON PARAMETER track_activities from roles that are not superusers'
 WHERE (EXISTS (SELECT FROM tenancy.tenant_config WHERE key LIKE 'limits.%')
        OR EXISTS (SELECT FROM tenancy.config_defaults WHERE key LIKE 'limits.%'))
   AND (NOT current_setting('track_activities')::boolean
        OR EXISTS (SELECT FROM pg_db_role_setting s, unnest(s.setconfig) c
                    WHERE lower(split_part(c, '=', 1)) = 'track_activities'
                      AND lower(btrim(split_part(c, '=', 2), ' ''')) NOT IN ('on', 'true', 'yes', '1', 't', 'tr', 'tru', 'y', 'ye'))
        OR EXISTS (SELECT FROM pg_parameter_acl p, aclexplode(p.paracl) a
                    WHERE p.parname = 'track_activities' AND a.privilege_type IN ('SET', 'ALTER SYSTEM')
                      AND NOT EXISTS (SELECT FROM pg_roles r WHERE r.oid = a.grantee AND r.rolsuper)))
UNION ALL
-- Before the library is loaded in a session, SET tenancy.* only makes a placeholder.
SELECT 'warning', 'shared_preload_libraries',
       'the tenancy library is not preloaded: until a session first calls tenancy, its settings are placeholders',
       'Add tenancy to shared_preload_libraries (or session_preload_libraries) and restart'
 WHERE NOT tenancy.library_preloaded()
ORDER BY 1, 2, 3
$$;
