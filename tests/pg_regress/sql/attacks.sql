-- The attack suite: one section per row of docs/threat-model.md, run as the
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
-- (refused since 0.5.0; made with the event triggers off, verify() reports it)
SET session_replication_role = replica;
CREATE POLICY open_door ON shop.secrets USING (true);
RESET session_replication_role;
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
ALTER DEFAULT PRIVILEGES FOR ROLE tenancy_migrator GRANT SELECT, INSERT ON TABLES TO tenancy_app;
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
ALTER DEFAULT PRIVILEGES FOR ROLE tenancy_migrator REVOKE SELECT, INSERT ON TABLES FROM tenancy_app;

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

-- Beyond the application role (0.4.0): a table owner, a role granted one admin
-- function, a client that controls its connection options.
RESET row_security;

-- 27. The extension runs statements over user tables as the table's owner in
--     a security-restricted operation: a table owner's trigger fired by
--     destroy_data runs as that owner (not as the superuser calling
--     delete_tenant) and cannot make its owner a superuser.
SELECT (tenancy.register_tenant('doomed', 'Doomed')).identifier AS registered;
CREATE TABLE shop.trap_log (who name, superuser_attempt text);
ALTER TABLE shop.trap_log OWNER TO tenancy_owner;
SET ROLE tenancy_owner;
CREATE TABLE shop.trap (tenant_id uuid NOT NULL, note text);
GRANT INSERT ON shop.trap TO tenancy_app;
CREATE FUNCTION shop.trap_fires() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    BEGIN
        ALTER ROLE tenancy_owner SUPERUSER;
        INSERT INTO shop.trap_log VALUES (current_user, 'succeeded');
    EXCEPTION WHEN OTHERS THEN
        INSERT INTO shop.trap_log VALUES (current_user, SQLSTATE);
    END;
    RETURN OLD;
END $$;
CREATE TRIGGER trap BEFORE DELETE ON shop.trap FOR EACH ROW EXECUTE FUNCTION shop.trap_fires();
RESET ROLE;
SET ROLE tenancy_app;
SELECT tenancy.set_tenant('doomed') IS NOT NULL AS as_doomed;
INSERT INTO shop.trap (note) VALUES ('row of doomed');
SELECT tenancy.reset_tenant();
RESET ROLE;
SELECT identifier FROM tenancy.delete_tenant('doomed', destroy_data => true);
SELECT who, superuser_attempt FROM shop.trap_log;
SELECT rolsuper AS owner_became_superuser FROM pg_roles WHERE rolname = 'tenancy_owner';
SELECT details->'rows_deleted' AS rows_deleted FROM tenancy.audit_log
 WHERE action = 'destroy' AND tenant_identifier = 'doomed';

-- 28. A role granted the migration functions gets the migration owner's
--     rights (no SUPERUSER, no BYPASSRLS), not the catalog owner's.
GRANT EXECUTE ON FUNCTION tenancy.record_migration(text, text) TO tenancy_admin;
SET ROLE tenancy_admin;
-- (SQLSTATE only: PostgreSQL's own wording changed in 16.)
\set VERBOSITY sqlstate
SELECT tenancy.record_migration('0100-escalate', 'ALTER ROLE tenancy_admin SUPERUSER');
SELECT tenancy.record_migration('0101-program', $$COPY (SELECT 1) TO PROGRAM 'id'$$);
\set VERBOSITY default
RESET ROLE;
REVOKE EXECUTE ON FUNCTION tenancy.record_migration(text, text) FROM tenancy_admin;
SELECT rolsuper AS admin_became_superuser FROM pg_roles WHERE rolname = 'tenancy_admin';
SELECT count(*) AS recorded FROM tenancy.migrations WHERE name LIKE '010%';
-- The migration owner itself may not bypass row-level security.
CREATE ROLE tenancy_bypassing_migrator NOLOGIN BYPASSRLS;
SELECT tenancy.set_migration_owner('tenancy_bypassing_migrator');
\echo :LAST_ERROR_SQLSTATE
DROP ROLE tenancy_bypassing_migrator;

-- 29. Connection options (-c tenancy.require_token=off) cannot switch off
--     what an administrator stored for the role: tests/client/tests/
--     connection_options.rs (needs its own connections).

-- 30. Tokens as bind parameters never show in other sessions'
--     pg_stat_activity (tests/client/tests/connection_options.rs); tokens
--     live 5 minutes by default.
SELECT tenancy.add_signing_key('attack-key') AS kid \gset
SELECT split_part(tenancy.issue_token('victim'), '.', 4)::bigint - extract(epoch FROM now())::bigint
       BETWEEN 299 AND 301 AS five_minutes;

-- 31. What RLS does not cover in tenant schemas: SECURITY DEFINER functions,
--     materialized views and sequence defaults are refused in migrations;
--     another tenant's writes are refused before the migration's triggers see
--     them; sequences are usable by their owner only.
CALL tenancy.add_migration('0102-definer', $$
    CREATE FUNCTION peek() RETURNS bigint LANGUAGE sql SECURITY DEFINER AS 'SELECT count(*) FROM vault'$$);
\echo :LAST_ERROR_SQLSTATE
CALL tenancy.add_migration('0103-matview', 'CREATE MATERIALIZED VIEW vault_copy AS SELECT * FROM vault');
\echo :LAST_ERROR_SQLSTATE
CALL tenancy.add_migration('0104-serial', 'CREATE TABLE tickets (no serial PRIMARY KEY)');
\echo :LAST_ERROR_SQLSTATE
ALTER DEFAULT PRIVILEGES FOR ROLE tenancy_migrator GRANT SELECT, INSERT ON TABLES TO tenancy_app;
ALTER DEFAULT PRIVILEGES FOR ROLE tenancy_migrator GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO tenancy_app;
CALL tenancy.add_migration('0105-ledger', $$
    CREATE TABLE ledger (no bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, entry text);
    CREATE FUNCTION ledger_leak() RETURNS trigger LANGUAGE plpgsql AS
        'BEGIN RAISE NOTICE ''ledger trigger saw %'', NEW.entry; RETURN NEW; END';
    CREATE TRIGGER a_leak BEFORE INSERT ON ledger FOR EACH ROW EXECUTE FUNCTION ledger_leak();
$$);
ALTER DEFAULT PRIVILEGES FOR ROLE tenancy_migrator REVOKE SELECT, INSERT ON TABLES FROM tenancy_app;
ALTER DEFAULT PRIVILEGES FOR ROLE tenancy_migrator REVOKE USAGE, SELECT, UPDATE ON SEQUENCES FROM tenancy_app;
-- A migration seeding rows runs in each schema's own tenant context, so its
-- rows pass the pinned policy without the migration owner bypassing it.
CALL tenancy.add_migration('0106-seed', $$INSERT INTO ledger (entry) VALUES ('opening balance')$$);
SET ROLE tenancy_app;
SELECT tenancy.set_tenant('victim-schema') IS NOT NULL AS as_victim;
SELECT entry AS seeded FROM ledger;
INSERT INTO ledger (entry) VALUES ('victim entry');
SELECT tenancy.set_tenant('attacker') IS NOT NULL AS as_attacker;
INSERT INTO :"victim_schema".ledger (entry) VALUES ('planted');
\echo :LAST_ERROR_SQLSTATE
SELECT has_sequence_privilege(:'victim_schema' || '.ledger_no_seq', 'USAGE') AS app_uses_sequence;
SELECT nextval(:'victim_schema' || '.ledger_no_seq');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;

-- 32. Temporary tables are never recorded; an entry whose table is gone
--     (left by 0.3.0) does not block a later destroy and is forgotten.
SET ROLE tenancy_app;
CREATE TEMP TABLE scratch (tenant_id uuid NOT NULL);
RESET ROLE;
SELECT count(*) AS temp_tables_recorded FROM tenancy.protected_tables p
  JOIN pg_class c ON c.oid = p.relid WHERE c.relpersistence = 't';
SELECT tenancy.protect('pg_temp.scratch');
\echo :LAST_ERROR_SQLSTATE
DISCARD TEMP;
INSERT INTO tenancy.protected_tables (relid, tenant_column) VALUES (4000000000::oid::regclass, 'tenant_id');
SELECT (tenancy.register_tenant('erased', 'Erased')).identifier AS registered;
SELECT identifier FROM tenancy.delete_tenant('erased', destroy_data => true);
SELECT count(*) AS dangling_entries FROM tenancy.protected_tables WHERE relid::oid = 4000000000;

-- 33. verify() compares content: a policy rewritten to USING (true), a
--     disabled TRUNCATE guard, a SECURITY DEFINER function owned by a
--     superuser that reads a protected table; and a table made a child of a
--     protected table (ALTER TABLE … INHERIT) is protected on the spot.
-- (such changes are refused, protect.sql; a superuser makes them with the
-- event triggers off)
SET session_replication_role = replica;
ALTER POLICY tenancy_isolation ON shop.secrets USING (true);
ALTER TABLE shop.secrets DISABLE TRIGGER tenancy_no_truncate;
RESET session_replication_role;
CREATE FUNCTION shop.all_secrets_as_superuser() RETURNS SETOF text LANGUAGE sql SECURITY DEFINER
    SET search_path = pg_catalog AS 'SELECT secret FROM shop.secrets';
SELECT severity, object, problem FROM tenancy.verify()
 WHERE object IN ('shop.secrets', 'shop.all_secrets_as_superuser()') ORDER BY problem;
SELECT tenancy.protect('shop.secrets');
DROP FUNCTION shop.all_secrets_as_superuser();
SELECT count(*) AS problems_after_protect FROM tenancy.verify() WHERE object = 'shop.secrets';
-- The same for the policy pinned in a tenant schema.
ALTER POLICY tenancy_schema_isolation ON :"victim_schema".vault USING (true);
SELECT severity, problem FROM tenancy.verify() WHERE object = :'victim_schema' || '.vault';
DROP POLICY tenancy_schema_isolation ON :"victim_schema".vault;
SELECT tenancy.migrate_tenant('victim-schema');
SELECT count(*) AS problems_after_migrate FROM tenancy.verify() WHERE object = :'victim_schema' || '.vault';
SET tenancy.auto_protect = off;
SET ROLE tenancy_owner;
CREATE TABLE shop.secrets_child (tenant_id uuid NOT NULL, id uuid NOT NULL, secret text NOT NULL);
RESET ROLE;
RESET tenancy.auto_protect;
SET ROLE tenancy_owner;
ALTER TABLE shop.secrets_child INHERIT shop.secrets;
RESET ROLE;
SELECT relid::text AS child_protected FROM tenancy.protected_tables WHERE relid = 'shop.secrets_child'::regclass;
SELECT role, details->>'auto' AS auto FROM tenancy.audit_log
 WHERE action = 'protect' AND details->>'table' = 'shop.secrets_child';

-- 34. A credential opens only the tenant it was issued for: a JWT issued
--     before a tenant was registered does not open it (an identifier reused
--     after a destroy), and no identifier can be read as another tenant's id.
SELECT tenancy.register_tenant('abcdef01-2345-6789-abcd-ef0123456789', 'Looks like an id');
\echo :LAST_ERROR_SQLSTATE

-- 35. Anyone may NOTIFY tenancy_events: events carry the id of their audit
--     row so a consumer can check them (tests/client/tests/events_and_dumps.rs).
SET ROLE tenancy_app;
NOTIFY tenancy_events, '{"action": "suspend", "identifier": "victim"}';
RESET ROLE;

-- 36. Held cursors on pooled connections: under a transaction-scoped context
--     a WITH HOLD cursor is refused (it would outlive the context, into the
--     next client's request); one that an earlier request left behind is
--     closed when the next request sets its context, instead of blocking it.
SET ROLE tenancy_app;
SELECT tenancy.reset_tenant();
BEGIN;
SELECT tenancy.set_tenant('victim', true) IS NOT NULL AS request_as_victim;
DECLARE kept CURSOR WITH HOLD FOR SELECT secret FROM shop.secrets;
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
BEGIN;
DECLARE kept CURSOR WITH HOLD FOR SELECT secret FROM shop.secrets;
SELECT tenancy.set_tenant('victim', true);
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
BEGIN;
DECLARE leftover CURSOR WITH HOLD FOR SELECT secret FROM shop.secrets;
COMMIT;
BEGIN;
SELECT tenancy.set_tenant('attacker', true) IS NOT NULL AS next_request;
FETCH ALL FROM leftover;
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
-- A held cursor filled as the victim stays pinned to the victim, even after
-- RESET ALL took the context away behind the extension's back.
SELECT tenancy.set_tenant('victim') IS NOT NULL AS as_victim;
BEGIN;
DECLARE stolen CURSOR WITH HOLD FOR SELECT secret FROM shop.secrets;
COMMIT;
RESET ALL;
SET ROLE tenancy_app;
SELECT tenancy.set_tenant('attacker');
\echo :LAST_ERROR_SQLSTATE
CLOSE stolen;
RESET ROLE;
SET client_min_messages = warning;
DROP SCHEMA shop CASCADE;
