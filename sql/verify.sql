-- verify(): one row per isolation problem found in the database, with how to fix it.
-- No rows on a clean setup. Severity 'error' = a tenant can see or change another
-- tenant's rows today; 'warning' = a door an operator should close.
CREATE FUNCTION tenancy.verify()
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
    SELECT t.identifier, n.oid AS nspid, t.id
      FROM tenancy.tenants t JOIN pg_namespace n ON n.nspname = t.schema_name
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
-- Partitions of protected tables: queried directly, they skip the parent's policy.
SELECT 'error', i.inhrelid::regclass::text,
       format('partition of protected table %s is not protected itself', p.tbl),
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
 WHERE current_setting('shared_preload_libraries') !~ '(^|[ ,])tenancy($|[ ,])'
   AND current_setting('session_preload_libraries') !~ '(^|[ ,])tenancy($|[ ,])'
ORDER BY 1, 2, 3
$$;
