-- Install the extension; the roles come from tests/roles.sql.
CREATE EXTENSION tenancy;
SELECT e.extname, e.extversion, n.nspname AS schema, e.extrelocatable
  FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'tenancy';
-- Everything lives in schema tenancy.
SELECT c.relname, c.relkind FROM pg_class c
 WHERE c.relnamespace = 'tenancy'::regnamespace AND c.relkind IN ('r', 'v')
 ORDER BY 1;
-- What PUBLIC may execute: the context functions, nothing that administers.
-- The context functions keep the default privilege (no stored ACL, cheaper
-- to check at every execution).
SELECT p.oid::regprocedure AS function,
       has_function_privilege('tenancy_app', p.oid, 'EXECUTE') AS app_can_execute,
       p.proacl IS NULL AS default_privilege
  FROM pg_proc p WHERE p.pronamespace = 'tenancy'::regnamespace
 ORDER BY p.oid::regprocedure::text;
-- The application role cannot read the catalog.
SELECT has_table_privilege('tenancy_app', 'tenancy.tenants', 'SELECT') AS app_reads_tenants,
       has_table_privilege('tenancy_app', 'tenancy.audit_log', 'SELECT') AS app_reads_audit;
-- Catalog tables are kept by pg_dump.
SELECT extconfig::regclass[] FROM pg_extension WHERE extname = 'tenancy';
