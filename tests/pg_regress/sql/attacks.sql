-- The attack suite: one section per row of THREAT-MODEL.md, run as the
-- application role (tenancy_app) with two seeded tenants, victim and attacker.
-- Each section shows the attack and what stops it; rows that are operator
-- responsibilities show the exposure and the check verify() makes for them.
\set SHOW_CONTEXT never
DO $$ BEGIN
    PERFORM tenancy.register_tenant('victim', 'Victim');
    PERFORM tenancy.register_tenant('attacker', 'Attacker');
END $$;
SELECT id AS victim FROM tenancy.tenants WHERE identifier = 'victim' \gset
CREATE SCHEMA shop AUTHORIZATION tenancy_owner;
GRANT USAGE ON SCHEMA shop TO tenancy_app;
SET ROLE tenancy_owner;
CREATE TABLE shop.secrets (tenant_id uuid NOT NULL, id uuid NOT NULL DEFAULT gen_random_uuid(),
                           secret text NOT NULL, PRIMARY KEY (tenant_id, id));
GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON shop.secrets TO tenancy_app;
RESET ROLE;
SET ROLE tenancy_app;
SELECT tenancy.set_tenant('victim') IS NOT NULL AS as_victim;
INSERT INTO shop.secrets (secret) VALUES ('victim secret 1'), ('victim secret 2');
INSERT INTO shop.secrets (id, secret) VALUES ('00000000-0000-0000-0000-000000000001', 'victim keyed secret');
SELECT tenancy.set_tenant('attacker') IS NOT NULL AS as_attacker;
INSERT INTO shop.secrets (secret) VALUES ('attacker data');
RESET ROLE;

-- 1. set_tenant('victim') through SQL injection: with require_token on for the
--    application role, picking a tenant by name is refused; only a token that
--    a gateway signed for this request's tenant is accepted.
SET tenancy.require_token = on;
SET ROLE tenancy_app;
SELECT tenancy.set_tenant('victim');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.set_tenant_token('tn1.k1.forged.9999999999.forged');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
RESET tenancy.require_token;

-- 2. Table owner, superuser, BYPASSRLS: FORCE applies RLS to the (non-superuser)
--    owner; set_tenant refuses roles that bypass RLS; verify() flags them.
SELECT tenancy.reset_tenant();
SET ROLE tenancy_owner;
SELECT count(*) AS owner_sees_without_context FROM shop.secrets;
RESET ROLE;
SET ROLE tenancy_bypass;
SELECT tenancy.set_tenant('attacker');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SELECT severity, object FROM tenancy.verify() WHERE object = 'role tenancy_bypass';

-- 3. A placeholder set before the library is loaded in a fresh backend: the
--    policy calls the Rust accessor, loading the library, which discards it.
\c - tenancy_app
SET tenancy.tenant = :'victim';
SELECT count(*) AS rows_seen_with_placeholder FROM shop.secrets;
SELECT tenancy.current_tenant() IS NULL AS placeholder_discarded;
\c - postgres

-- 4. SET / set_config / ALTER ROLE SET / RESET ALL: refused, or fail closed.
SET ROLE tenancy_app;
SELECT tenancy.set_tenant('attacker') IS NOT NULL AS as_attacker;
SET tenancy.tenant = :'victim';
\echo :LAST_ERROR_SQLSTATE
SELECT set_config('tenancy.tenant', :'victim', false);
ALTER ROLE tenancy_app SET tenancy.tenant = :'victim';
RESET ALL;
SELECT count(*) AS rows_after_reset_all FROM shop.secrets;

-- 5. Poolers: a transaction-scoped context outside a transaction is an error
--    (SET LOCAL would silently do nothing); DISCARD ALL ends a context.
SELECT tenancy.set_tenant('attacker', is_local => true);
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.set_tenant('attacker') IS NOT NULL AS as_attacker;
DISCARD ALL;
SET ROLE tenancy_app;
SELECT count(*) AS rows_after_discard_all FROM shop.secrets;

-- 6. Generic plans keep no tenant: the accessor is STABLE and runs per execution.
SET plan_cache_mode = force_generic_plan;
PREPARE leak AS SELECT string_agg(secret, ', ' ORDER BY secret) FROM shop.secrets;
SELECT tenancy.set_tenant('victim') IS NOT NULL AS as_victim;
EXECUTE leak;
SELECT tenancy.set_tenant('attacker') IS NOT NULL AS as_attacker;
EXECUTE leak;
DEALLOCATE leak;
RESET plan_cache_mode;

-- 7. A WITH HOLD cursor opened as the victim, fetched after switching: refused.
SELECT tenancy.set_tenant('victim') IS NOT NULL AS as_victim;
BEGIN;
DECLARE stolen CURSOR WITH HOLD FOR SELECT secret FROM shop.secrets;
COMMIT;
SELECT tenancy.set_tenant('attacker');
\echo :LAST_ERROR_SQLSTATE
CLOSE stolen;
RESET ROLE;

-- 8. Definer views, SECURITY DEFINER functions and triggers run as the owner:
--    FORCE filters them too (owner is not a superuser); verify() flags views
--    whose owner bypasses RLS and definer functions without a fixed search_path.
SET ROLE tenancy_owner;
CREATE VIEW shop.all_secrets AS SELECT secret FROM shop.secrets;
CREATE FUNCTION shop.all_secrets_fn() RETURNS SETOF text LANGUAGE sql SECURITY DEFINER
    SET search_path = pg_catalog AS 'SELECT secret FROM shop.secrets';
GRANT SELECT ON shop.all_secrets TO tenancy_app;
GRANT EXECUTE ON FUNCTION shop.all_secrets_fn() TO tenancy_app;
RESET ROLE;
SET ROLE tenancy_app;
SELECT tenancy.set_tenant('attacker') IS NOT NULL AS as_attacker;
SELECT secret FROM shop.all_secrets;
SELECT shop.all_secrets_fn();
RESET ROLE;
CREATE VIEW shop.superuser_view AS SELECT secret FROM shop.secrets;
SELECT severity, object FROM tenancy.verify() WHERE object LIKE 'shop.%view%';
DROP VIEW shop.superuser_view;

-- 9. A leaky function sees only the attacker's own rows (the policy runs first).
CREATE FUNCTION shop.f_leak(text) RETURNS bool COST 0.0000001 LANGUAGE plpgsql
    AS 'BEGIN RAISE NOTICE ''f_leak => %'', $1; RETURN true; END';
SET ROLE tenancy_app;
SELECT tenancy.set_tenant('attacker') IS NOT NULL AS as_attacker;
SELECT count(*) FROM shop.secrets WHERE shop.f_leak(secret);
-- Errors do not leak other tenants' values either: the cast below fails on the
-- attacker's own row only.
SELECT secret::int FROM shop.secrets;
RESET ROLE;

-- 10. EXPLAIN and statistics (operator responsibility, documented): pg_stats
--     hides tables under RLS from the roles it applies to, but EXPLAIN's row
--     estimates are computed from statistics over every tenant.
ANALYZE shop.secrets;
SET ROLE tenancy_app;
SELECT count(*) > 0 AS pg_stats_visible_to_app FROM pg_stats
 WHERE schemaname = 'shop' AND tablename = 'secrets';
RESET ROLE;

-- 11. TRUNCATE is not subject to RLS: blocked even with the privilege.
SET ROLE tenancy_app;
TRUNCATE shop.secrets;
\echo :LAST_ERROR_SQLSTATE

-- 12. COPY TO is filtered; COPY FROM is refused under RLS.
COPY shop.secrets (secret) TO STDOUT;
COPY shop.secrets (tenant_id, secret) FROM STDIN;
00000000-0000-0000-0000-000000000000	planted
\.
\echo :LAST_ERROR_SQLSTATE

-- 13. Keys as oracles: with a key that includes tenant_id, the victim's key is
--     no collision (nothing revealed), only the attacker's own is; verify()
--     flags single-column foreign keys into protected tables.
INSERT INTO shop.secrets (id, secret) VALUES ('00000000-0000-0000-0000-000000000001', 'same id as the victim''s');
INSERT INTO shop.secrets (id, secret) VALUES ('00000000-0000-0000-0000-000000000001', 'my own duplicate');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;

-- 14. WITH CHECK: rows cannot be moved into the victim; extra permissive
--     policies are flagged by verify().
SET ROLE tenancy_app;
UPDATE shop.secrets SET tenant_id = :'victim';
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
CREATE POLICY open_door ON shop.secrets USING (true);
SELECT severity, object FROM tenancy.verify() WHERE object LIKE 'policy open_door%';
DROP POLICY open_door ON shop.secrets;

-- 15. MERGE, data-modifying CTEs, ON CONFLICT: no write path reaches the victim.
SET ROLE tenancy_app;
MERGE INTO shop.secrets s USING (VALUES (1)) v(x) ON true
WHEN MATCHED THEN UPDATE SET tenant_id = :'victim';
WITH m AS (UPDATE shop.secrets SET tenant_id = :'victim' RETURNING 1) SELECT count(*) FROM m;
INSERT INTO shop.secrets (tenant_id, secret) VALUES (:'victim', 'planted')
ON CONFLICT (tenant_id, id) DO NOTHING;
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;

-- 16. Partitions: a partition created later is protected on creation.
SET ROLE tenancy_owner;
CREATE TABLE shop.events (tenant_id uuid NOT NULL, at date NOT NULL) PARTITION BY RANGE (at);
CREATE TABLE shop.events_2026 PARTITION OF shop.events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
GRANT SELECT, INSERT ON shop.events, shop.events_2026 TO tenancy_app;
RESET ROLE;
INSERT INTO shop.events VALUES (:'victim', '2026-05-01');
SET ROLE tenancy_app;
SELECT count(*) AS victim_rows_via_partition FROM shop.events_2026;
RESET ROLE;

-- 17. Materialized views cannot have RLS: verify() flags them.
CREATE MATERIALIZED VIEW shop.secret_counts AS SELECT count(*) FROM shop.secrets;
SELECT severity, object FROM tenancy.verify() WHERE object = 'shop.secret_counts';
DROP MATERIALIZED VIEW shop.secret_counts;

-- 18. A TEMP table shadows an unqualified name for the rest of the session,
--     across tenant switches (operator: REVOKE TEMPORARY from the app role).
SET ROLE tenancy_app;
SET search_path = shop, public;
CREATE TEMP TABLE secrets (secret text);
INSERT INTO secrets VALUES ('planted by the previous request');
SELECT tenancy.set_tenant('victim') IS NOT NULL AS next_request_as_victim;
SELECT secret FROM secrets;
RESET ROLE;
DISCARD ALL;
REVOKE TEMPORARY ON DATABASE :DBNAME FROM PUBLIC;
SET ROLE tenancy_app;
\set VERBOSITY sqlstate
CREATE TEMP TABLE secrets (secret text);
\set VERBOSITY default
RESET ROLE;
GRANT TEMPORARY ON DATABASE :DBNAME TO PUBLIC;

-- 19. Another tenant's schema, by qualified name: its tables are pinned to it.
ALTER DEFAULT PRIVILEGES FOR ROLE postgres GRANT SELECT, INSERT ON TABLES TO tenancy_app;
CALL tenancy.add_migration('0001-vault', 'CREATE TABLE vault (secret text)');
SELECT schema_name AS victim_schema
  FROM tenancy.register_tenant('victim-schema', 'Victim (schema)', '{}', 'schema') \gset
SET ROLE tenancy_app;
SELECT tenancy.set_tenant('victim-schema') IS NOT NULL AS as_victim;
INSERT INTO vault VALUES ('victim vault');
SELECT tenancy.set_tenant('attacker') IS NOT NULL AS as_attacker;
SELECT count(*) AS vault_rows FROM :"victim_schema".vault;
INSERT INTO :"victim_schema".vault VALUES ('planted');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
ALTER DEFAULT PRIVILEGES FOR ROLE postgres REVOKE SELECT, INSERT ON TABLES FROM tenancy_app;

-- 20. Schema-name injection or 63-byte truncation: names come from the id.
SELECT length(:'victim_schema') AS schema_name_length,
       :'victim_schema' = 'tenant_' || replace(id::text, '-', '') AS derived_from_id
  FROM tenancy.tenants WHERE identifier = 'victim-schema';

-- 21-25. LISTEN/NOTIFY, advisory locks, large objects, pg_stat_activity and
--     sequences are database-wide (operator responsibility, documented): e.g.
--     a shared sequence tells one tenant how much another one inserted.
CREATE SEQUENCE shop.order_no;
GRANT USAGE ON SEQUENCE shop.order_no TO tenancy_app;
SET ROLE tenancy_app;
SELECT tenancy.set_tenant('victim') IS NOT NULL AS as_victim;
SELECT nextval('shop.order_no') FROM generate_series(1, 3) \g /dev/null
SELECT tenancy.set_tenant('attacker') IS NOT NULL AS as_attacker;
SELECT nextval('shop.order_no') - 1 AS victim_orders_revealed;
RESET ROLE;

-- 26. pg_dump as the application role dumps nothing useful: it sets
--     row_security = off, which raises for a role under RLS (client test
--     tests/client runs the real pg_dump). Backups use a dedicated role.
SET ROLE tenancy_app;
SET row_security = off;
SELECT count(*) FROM shop.secrets;
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;

SET client_min_messages = warning;
DROP SCHEMA shop CASCADE;
