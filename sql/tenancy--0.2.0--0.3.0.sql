-- tenancy 0.2.0 → 0.3.0 (ALTER EXTENSION tenancy UPDATE)
\echo Use "ALTER EXTENSION tenancy UPDATE TO '0.3.0'" to load this file. \quit

-- 0.3.0 stores no ACL for the context functions: they keep PostgreSQL's
-- default privilege (PUBLIC may execute), which is checked without reading
-- the ACL out of the pg_proc row at every execution (see sql/finalize.sql).
-- 0.2.0 revoked them from PUBLIC and granted them back, which left the ACL
-- {owner=X/owner,=X/owner}. GRANT and REVOKE cannot return a routine to the
-- default, so an ACL that is still exactly that is reset in the catalog, and
-- the initial privileges recorded for pg_dump are dropped as a fresh install
-- has none (an ACL changed since is kept, and pg_dump then dumps it against
-- the default). tests/upgrade checks that an updated database equals a fresh
-- 0.3.0 install.
WITH context_functions(oid) AS (
    SELECT unnest(ARRAY[
        'tenancy.set_tenant(text, boolean)',
        'tenancy.set_tenant_token(text, boolean)',
        'tenancy.set_tenant_jwt(text, boolean)',
        'tenancy.postgrest_pre_request()',
        'tenancy.reset_tenant()',
        'tenancy.current_tenant()',
        'tenancy.current_tenant_identifier()',
        'tenancy.config(text)',
        'tenancy.config()',
        'tenancy.cache_stats()']::pg_catalog.regprocedure[])::pg_catalog.oid
), reset AS (
    UPDATE pg_catalog.pg_proc p SET proacl = NULL
    FROM context_functions f
    WHERE p.oid = f.oid
      AND p.proacl OPERATOR(pg_catalog.=) ARRAY[
          pg_catalog.makeaclitem(p.proowner, p.proowner, 'EXECUTE', false),
          pg_catalog.makeaclitem(0, p.proowner, 'EXECUTE', false)]
)
DELETE FROM pg_catalog.pg_init_privs i
USING context_functions f
WHERE i.classoid = 'pg_catalog.pg_proc'::pg_catalog.regclass AND i.objoid = f.oid AND i.objsubid = 0;
