-- tenancy 0.2.0 → 0.3.0 (ALTER EXTENSION tenancy UPDATE)
\echo Use "ALTER EXTENSION tenancy UPDATE TO '0.3.0'" to load this file. \quit

-- 0.3.0 stores no ACL for the context functions: they keep PostgreSQL's
-- default privilege (owner and PUBLIC may execute), which is checked without
-- reading the ACL out of the pg_proc row at every execution (see
-- sql/finalize.sql). 0.2.0 revoked them from PUBLIC and granted them back,
-- which stored exactly that default as {owner=X/owner,=X/owner}. GRANT and
-- REVOKE cannot return a routine to "no ACL", so every routine of the schema
-- whose ACL is still exactly the default is reset in the catalog (the same
-- privileges), and the initial privileges recorded for pg_dump that say the
-- same are dropped, as a fresh install has none. tests/upgrade checks that an
-- updated database equals a fresh 0.3.0 install.
WITH reset AS (
    UPDATE pg_catalog.pg_proc p SET proacl = NULL
    WHERE p.pronamespace OPERATOR(pg_catalog.=) 'tenancy'::pg_catalog.regnamespace
      AND p.proacl OPERATOR(pg_catalog.=) ARRAY[
          pg_catalog.makeaclitem(p.proowner, p.proowner, 'EXECUTE', false),
          pg_catalog.makeaclitem(0, p.proowner, 'EXECUTE', false)]
)
DELETE FROM pg_catalog.pg_init_privs i
USING pg_catalog.pg_proc p
WHERE i.classoid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::pg_catalog.regclass
  AND i.objoid OPERATOR(pg_catalog.=) p.oid AND i.objsubid OPERATOR(pg_catalog.=) 0
  AND p.pronamespace OPERATOR(pg_catalog.=) 'tenancy'::pg_catalog.regnamespace
  AND i.initprivs OPERATOR(pg_catalog.=) ARRAY[
      pg_catalog.makeaclitem(p.proowner, p.proowner, 'EXECUTE', false),
      pg_catalog.makeaclitem(0, p.proowner, 'EXECUTE', false)];
