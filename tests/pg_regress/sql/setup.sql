-- Install the extension; the roles come from tests/roles.sql.
CREATE EXTENSION tenancy;
-- Helpers of the tests that craft JWTs (tokens.sql, app.sql): HMAC-SHA256
-- from the built-in sha256(), so no test needs pgcrypto (not every build of
-- PostgreSQL ships it), and base64url.
CREATE SCHEMA regress;
GRANT USAGE ON SCHEMA regress TO PUBLIC;
CREATE FUNCTION regress.hmac_sha256(msg bytea, key bytea) RETURNS bytea LANGUAGE plpgsql AS $$
DECLARE
    k bytea := CASE WHEN length(key) > 64 THEN sha256(key) ELSE key END;
    ipad bytea;
    opad bytea;
BEGIN
    k := k || decode(repeat('00', 64 - length(k)), 'hex');
    ipad := k;
    opad := k;
    FOR i IN 0..63 LOOP
        ipad := set_byte(ipad, i, get_byte(k, i) # 54);
        opad := set_byte(opad, i, get_byte(k, i) # 92);
    END LOOP;
    RETURN sha256(opad || sha256(ipad || msg));
END $$;
CREATE FUNCTION regress.b64url(bytea) RETURNS text LANGUAGE sql AS
    $$ SELECT rtrim(translate(encode($1, 'base64'), E'+/\n', '-_'), '=') $$;
-- A JWT signed with HS256, and set_tenant_jwt()'s result or its error as text.
CREATE FUNCTION regress.jwt(header jsonb, claims jsonb, secret bytea) RETURNS text LANGUAGE sql AS $$
    SELECT s || '.' || regress.b64url(regress.hmac_sha256(convert_to(s, 'utf8'), secret))
      FROM (SELECT regress.b64url(convert_to(header::text, 'utf8')) || '.' ||
                   regress.b64url(convert_to(claims::text, 'utf8')) AS s) x $$;
CREATE FUNCTION regress.try_jwt(t text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    RETURN tenancy.set_tenant_jwt(t) IS NOT NULL;
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ' ' || SQLERRM;
END $$;
SELECT e.extname, e.extversion = a.default_version AS current_version, n.nspname AS schema, e.extrelocatable
  FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
  JOIN pg_available_extensions a ON a.name = e.extname WHERE e.extname = 'tenancy';
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
