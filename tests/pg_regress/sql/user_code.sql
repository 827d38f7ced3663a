-- Code and settings that another role controls never reach the extension's
-- rights and never change what it does next (threat-model rows 39-44 and
-- 47-63, and the reviews of 0.4.0 and 0.5.0): one section per attack, as
-- the role it needs.
\set SHOW_CONTEXT never
SET client_min_messages = warning;
SELECT tenancy.grant_admin('tenancy_admin');
SELECT tenancy.set_migration_owner('tenancy_migrator');
CREATE SCHEMA uc AUTHORIZATION tenancy_owner;
GRANT USAGE ON SCHEMA uc TO tenancy_app, tenancy_admin, tenancy_migrator;
-- A schema the migration author controls, with operators (`=` for text and
-- uuid, `+` for integers) that make whoever runs them with superuser rights
-- give its author SUPERUSER.
CREATE SCHEMA uc_trap AUTHORIZATION tenancy_admin;
GRANT USAGE ON SCHEMA uc_trap TO PUBLIC;
SET ROLE tenancy_admin;
CREATE FUNCTION uc_trap.text_eq(text, text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    BEGIN   -- make the function's owner a superuser
        EXECUTE pg_catalog.format('ALTER ROLE %I SUPERUSER',
            (SELECT proowner::pg_catalog.regrole FROM pg_catalog.pg_proc
              WHERE oid OPERATOR(pg_catalog.=) 'uc_trap.text_eq(text, text)'::pg_catalog.regprocedure));
    EXCEPTION WHEN OTHERS THEN NULL;
    END;
    RETURN $1 OPERATOR(pg_catalog.=) $2;
END $$;
CREATE OPERATOR uc_trap.= (FUNCTION = uc_trap.text_eq, LEFTARG = text, RIGHTARG = text);
CREATE FUNCTION uc_trap.uuid_eq(uuid, uuid) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    PERFORM uc_trap.text_eq('', '');
    RETURN $1 OPERATOR(pg_catalog.=) $2;
END $$;
CREATE OPERATOR uc_trap.= (FUNCTION = uc_trap.uuid_eq, LEFTARG = uuid, RIGHTARG = uuid);
CREATE FUNCTION uc_trap.int_plus(int, int) RETURNS int LANGUAGE plpgsql AS $$
BEGIN
    PERFORM uc_trap.text_eq('', '');
    RETURN $1 OPERATOR(pg_catalog.+) $2;
END $$;
CREATE OPERATOR uc_trap.+ (FUNCTION = uc_trap.int_plus, LEFTARG = int, RIGHTARG = int);
RESET ROLE;
SELECT (tenancy.register_tenant('uc-victim', 'Victim')).identifier;
SELECT (tenancy.register_tenant('uc-doomed', 'Doomed')).identifier;
SELECT (tenancy.register_tenant('uc-planted', 'Planted', '{}', 'schema')).isolation;

-- 39. A session-level SET made by a migration script is discarded when the
--     script returns: the extension goes on with its own search_path (so
--     the author's `=` never runs as superuser), and the caller's session
--     keeps its settings.
SELECT current_setting('search_path') AS path_before \gset
SET ROLE tenancy_admin;
SELECT tenancy.record_migration('uc-0001-set', $$
    CREATE TABLE uc_notes (body text);
    SELECT pg_catalog.set_config('search_path', 'uc_trap, pg_catalog', false);
    SET row_security = off;
    SELECT pg_catalog.set_config('statement_timeout', '1h', false)$$);
SELECT current_setting('search_path') = :'path_before' AS search_path_kept;
SHOW statement_timeout;
SHOW row_security;
CALL tenancy.migrate();
SELECT current_setting('search_path') = :'path_before' AS search_path_kept;
RESET ROLE;
SELECT rolsuper AS migration_author_became_superuser FROM pg_roles WHERE rolname = 'tenancy_admin';

-- 39, 41. An owner's trigger fired by destroy_data runs as the owner, sees
--     no tenant context (not the destroyed tenant's: another protected table
--     shows it no row) and what it SETs is gone afterwards. The destroy's own
--     DELETE names the tenant's rows and needs no context.
-- (the trap now works for the table owner)
ALTER FUNCTION uc_trap.text_eq(text, text) OWNER TO tenancy_owner;
CREATE ROLE uc_other_owner NOLOGIN;
CREATE TABLE uc.seen (who name, context uuid, other_rows bigint, search_path text);
ALTER TABLE uc.seen OWNER TO tenancy_owner;
CREATE TABLE uc.other (tenant_id uuid NOT NULL, secret text);
ALTER TABLE uc.other OWNER TO uc_other_owner;
GRANT USAGE ON SCHEMA uc TO uc_other_owner;
GRANT SELECT, INSERT ON uc.other TO tenancy_owner, tenancy_app;
SET ROLE tenancy_owner;
CREATE TABLE uc.orders (tenant_id uuid NOT NULL, item text);
GRANT SELECT, INSERT ON uc.orders TO tenancy_app;
CREATE FUNCTION uc.spy() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO uc.seen VALUES (current_user, tenancy.current_tenant(),
                                (SELECT count(*) FROM uc.other),
                                current_setting('search_path'));
    PERFORM set_config('search_path', 'uc_trap, pg_catalog', false);
    SET row_security = off;
    RETURN OLD;
END $$;
CREATE TRIGGER spy BEFORE DELETE ON uc.orders FOR EACH ROW EXECUTE FUNCTION uc.spy();
RESET ROLE;
SET ROLE tenancy_app;
SELECT tenancy.set_tenant('uc-doomed') IS NOT NULL AS as_doomed;
INSERT INTO uc.orders (item) VALUES ('doomed order');
INSERT INTO uc.other (secret) VALUES ('doomed secret');
SELECT tenancy.set_tenant('uc-victim') IS NOT NULL AS as_victim;
INSERT INTO uc.orders (item) VALUES ('victim order');
SELECT tenancy.reset_tenant();
RESET ROLE;
-- An administrator that is not a superuser, inside a tenant context of its own.
SET ROLE tenancy_admin;
SELECT tenancy.set_tenant('uc-victim') IS NOT NULL AS admin_as_victim;
SELECT (tenancy.delete_tenant('uc-doomed', destroy_data => true)).identifier;
SELECT current_setting('search_path') = :'path_before' AS search_path_kept;
SHOW row_security;
SELECT tenancy.current_tenant_identifier() AS admin_context_after;
SELECT tenancy.reset_tenant();
RESET ROLE;
SELECT who, context, other_rows, search_path FROM uc.seen;
SELECT count(*) AS doomed_orders_left FROM uc.orders o
 WHERE NOT EXISTS (SELECT FROM tenancy.tenants t WHERE t.id = o.tenant_id);
SELECT rolsuper AS owner_became_superuser FROM pg_roles WHERE rolname = 'tenancy_owner';

-- 48. Nor does code of another owner that the owner's trigger calls: a
--     SECURITY DEFINER accessor of that owner's protected table (which would
--     show its owner every row with FORCE switched off for owners) finds no
--     context either. Only the destroy's own DELETE runs in the tenant's.
SELECT (tenancy.register_tenant('uc-doomed-2', 'Doomed again')).identifier;
CREATE FUNCTION uc.other_rows() RETURNS bigint LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp AS 'SELECT count(*) FROM uc.other';
ALTER FUNCTION uc.other_rows() OWNER TO uc_other_owner;
REVOKE EXECUTE ON FUNCTION uc.other_rows() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION uc.other_rows() TO tenancy_owner;
SET ROLE tenancy_owner;
DROP TRIGGER spy ON uc.orders;
CREATE TABLE uc.accessed (context uuid, other_rows bigint);
CREATE FUNCTION uc.call_other() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO uc.accessed VALUES (tenancy.current_tenant(), uc.other_rows());
    RETURN NULL;
END $$;
CREATE TRIGGER call_other AFTER DELETE ON uc.orders FOR EACH STATEMENT EXECUTE FUNCTION uc.call_other();
RESET ROLE;
SET ROLE tenancy_app;
SELECT tenancy.set_tenant('uc-doomed-2') IS NOT NULL AS as_doomed_2;
INSERT INTO uc.orders (item) VALUES ('doomed order 2');
INSERT INTO uc.other (secret) VALUES ('doomed secret 2');
SELECT tenancy.reset_tenant();
RESET ROLE;
SELECT (tenancy.delete_tenant('uc-doomed-2', destroy_data => true)).identifier;
SELECT context, other_rows FROM uc.accessed;
SELECT count(*) AS other_rows_in_all FROM uc.other;
SET ROLE tenancy_owner;
DROP TRIGGER call_other ON uc.orders;
RESET ROLE;

-- A trigger that copies the rows it deletes into another protected table
-- (an audit trail) is refused by that table's policy, as it has no context;
-- the owner disables it around the destroy.
SELECT (tenancy.register_tenant('uc-audited', 'Audited')).identifier;
SET ROLE tenancy_owner;
CREATE TABLE uc.history (tenant_id uuid NOT NULL, item text);
CREATE FUNCTION uc.keep_history() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO uc.history VALUES (OLD.tenant_id, OLD.item);
    RETURN OLD;
END $$;
CREATE TRIGGER keep_history BEFORE DELETE ON uc.orders FOR EACH ROW EXECUTE FUNCTION uc.keep_history();
RESET ROLE;
SET ROLE tenancy_app;
SELECT tenancy.set_tenant('uc-audited') IS NOT NULL AS as_audited;
INSERT INTO uc.orders (item) VALUES ('audited order');
SELECT tenancy.reset_tenant();
RESET ROLE;
SELECT (tenancy.delete_tenant('uc-audited', destroy_data => true)).identifier;
SET ROLE tenancy_owner;
ALTER TABLE uc.orders DISABLE TRIGGER keep_history;
RESET ROLE;
SELECT (tenancy.delete_tenant('uc-audited', destroy_data => true)).identifier;
SET ROLE tenancy_owner;
ALTER TABLE uc.orders ENABLE TRIGGER keep_history;
RESET ROLE;
SELECT count(*) AS audited_rows_left FROM uc.history
 WHERE NOT EXISTS (SELECT FROM tenancy.tenants t WHERE t.id = history.tenant_id);
DROP TRIGGER keep_history ON uc.orders;
DROP TRIGGER spy ON uc.orders;

-- 66. Nor a policy of the owner's own: one that reads another table (here
--     another owner's, which the owner may read under row-level security)
--     would read it in the destroyed tenant's context, so the destroy is
--     refused until the policy is gone.
SELECT (tenancy.register_tenant('uc-policed', 'Policed')).identifier;
SET ROLE tenancy_app;
SELECT tenancy.set_tenant('uc-policed') IS NOT NULL AS as_policed;
INSERT INTO uc.orders (item) VALUES ('policed order');
INSERT INTO uc.other (secret) VALUES ('policed secret');
SELECT tenancy.reset_tenant();
RESET ROLE;
SET ROLE tenancy_owner;
CREATE TABLE uc.leaked (secrets text);
CREATE FUNCTION uc.leak(secrets text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO uc.leaked VALUES (secrets);
    RETURN true;
END $$;
CREATE POLICY uc_reads_other ON uc.orders AS RESTRICTIVE FOR DELETE
    USING (uc.leak((SELECT string_agg(secret, ',') FROM uc.other)));
RESET ROLE;
SELECT (tenancy.delete_tenant('uc-policed', destroy_data => true)).identifier;
SET ROLE tenancy_owner;
DROP POLICY uc_reads_other ON uc.orders;
RESET ROLE;
SELECT (tenancy.delete_tenant('uc-policed', destroy_data => true)).identifier;
SELECT count(*) AS leaked FROM uc.leaked;
-- A BEFORE DELETE trigger that returns NULL keeps the row it was given: the
-- destroy fails rather than report rows gone that are not.
SELECT (tenancy.register_tenant('uc-kept', 'Kept')).identifier;
SET ROLE tenancy_app;
SELECT tenancy.set_tenant('uc-kept') IS NOT NULL AS as_kept;
INSERT INTO uc.orders (item) VALUES ('kept order');
SELECT tenancy.reset_tenant();
RESET ROLE;
SET ROLE tenancy_owner;
CREATE FUNCTION uc.keep() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$;
CREATE TRIGGER keep BEFORE DELETE ON uc.orders FOR EACH ROW EXECUTE FUNCTION uc.keep();
RESET ROLE;
SELECT (tenancy.delete_tenant('uc-kept', destroy_data => true)).identifier;
SET ROLE tenancy_owner;
DROP TRIGGER keep ON uc.orders;
RESET ROLE;
SELECT (tenancy.delete_tenant('uc-kept', destroy_data => true)).identifier;
-- The destroy plans its statements on the table as the table's owner: what
-- the owner's index predicate calls (PostgreSQL evaluates it while planning)
-- never runs as the superuser or administrator who destroys.
SELECT (tenancy.register_tenant('uc-planned', 'Planned')).identifier;
SET ROLE tenancy_owner;
CREATE FUNCTION uc.noticed(text) RETURNS boolean LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    RAISE WARNING 'the owner''s predicate ran as %', current_user;
    RETURN true;
END $$;
CREATE INDEX uc_orders_noticed ON uc.orders (item) WHERE uc.noticed('x');
RESET ROLE;
SELECT (tenancy.delete_tenant('uc-planned', destroy_data => true)).identifier;
SET ROLE tenancy_owner;
DROP INDEX uc.uc_orders_noticed;
DROP FUNCTION uc.noticed(text);
RESET ROLE;

-- 40. The extension's procedures (they cannot pin search_path: COMMIT)
--     qualify everything they call: a cardinality(text[]) on the caller's
--     path, an exact match that beats pg_catalog's, never runs.
--     (tests/pg_regress/sql/hostile.sql attacks every entry point this way.)
CREATE FUNCTION uc_trap.cardinality(text[]) RETURNS integer LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'uc_trap.cardinality ran as %', current_user;
END $$;
SET search_path = uc_trap, public;
CALL tenancy.migrate();
RESET search_path;
DROP FUNCTION uc_trap.cardinality(text[]);
-- They refuse a transaction block at once, with a hint (not PostgreSQL's
-- bare "invalid transaction termination" half-way).
BEGIN;
CALL tenancy.add_migration('uc-0002-in-block', 'CREATE TABLE uc_block (x int)');
ROLLBACK;
BEGIN;
CALL tenancy.migrate();
ROLLBACK;

-- 43. Secrets stay with superusers: pg_read_all_data gives SELECT, and row
--     level security still shows no row; verify() names a role that could
--     read them (BYPASSRLS) all the same.
GRANT pg_read_all_data TO tenancy_app;
SET ROLE tenancy_app;
SELECT count(*) AS signing_keys_seen FROM tenancy.signing_keys;
SELECT count(*) AS cluster_keys_seen FROM tenancy.cluster_key;
RESET ROLE;
REVOKE pg_read_all_data FROM tenancy_app;
CREATE ROLE uc_reporting NOLOGIN BYPASSRLS IN ROLE pg_read_all_data;
SELECT severity, object, problem FROM tenancy.verify() WHERE object = 'role uc_reporting';
DROP ROLE uc_reporting;
-- Administrators see the keys' metadata, not the secrets; adding a key can
-- be repeated (a deploy step). The secret given again is compared with the
-- stored one only for a superuser: for an administrator the answer would
-- tell whether a guess of the secret is right.
SET ROLE tenancy_admin;
SELECT tenancy.add_signing_key('uc-key', decode(repeat('ab', 32), 'hex'));
SELECT tenancy.add_signing_key('uc-key', decode(repeat('ab', 32), 'hex'), if_not_exists => true);
SELECT tenancy.add_signing_key('uc-key', if_not_exists => true);
SELECT tenancy.add_signing_key('uc-key', decode(repeat('cd', 32), 'hex'), if_not_exists => true);
SELECT tenancy.add_signing_key('uc-key');
\echo :LAST_ERROR_SQLSTATE
SELECT kid, algorithm, created_by, retired_at IS NULL AS active FROM tenancy.signing_key_info WHERE kid = 'uc-key';
RESET ROLE;
SELECT tenancy.add_signing_key('uc-key', decode(repeat('ab', 32), 'hex'), if_not_exists => true);
SELECT tenancy.add_signing_key('uc-key', decode(repeat('cd', 32), 'hex'), if_not_exists => true);
\echo :LAST_ERROR_SQLSTATE

-- 43. A migration owner with more rights than a migration needs is refused,
--     when chosen and at every use.
CREATE ROLE uc_migrator NOLOGIN;
CREATE ROLE uc_creator NOLOGIN CREATEROLE;
SELECT tenancy.set_migration_owner('uc_creator');
SELECT tenancy.set_migration_owner('uc_migrator');
GRANT pg_execute_server_program TO uc_migrator;
SET ROLE tenancy_admin;
SELECT tenancy.migrate_tenant('uc-planted');
RESET ROLE;
REVOKE pg_execute_server_program FROM uc_migrator;
GRANT postgres TO uc_migrator;
SELECT tenancy.set_migration_owner('uc_migrator');
SELECT tenancy.set_migration_owner('tenancy_migrator');
DROP ROLE uc_migrator, uc_creator;

-- 44. A migration creates, changes and drops only in the schema it
--     migrates: the migration owner owns every tenant schema, and a script
--     that reaches another one (in its dry run, or in a real run) is refused.
SET ROLE tenancy_admin;
\set VERBOSITY sqlstate
SELECT tenancy.record_migration('uc-0003-plant', $m$
    DO $$
    DECLARE s name;
    BEGIN
        FOR s IN SELECT nspname FROM pg_catalog.pg_namespace WHERE nspname LIKE 'tenant\_%' LOOP
            EXECUTE pg_catalog.format('CREATE FUNCTION %I.planted() RETURNS int LANGUAGE sql AS ''SELECT 1''', s);
        END LOOP;
    END $$$m$);
SELECT tenancy.record_migration('uc-0006-large-object', 'SELECT pg_catalog.lo_create(0)');
\set VERBOSITY default
RESET ROLE;
-- (the migration owner of a Citus cluster has CREATE on the database)
DO $$ BEGIN EXECUTE pg_catalog.format('GRANT CREATE ON DATABASE %I TO tenancy_migrator', current_database()); END $$;
SET ROLE tenancy_admin;
SELECT tenancy.record_migration('uc-0004-schema', 'CREATE SCHEMA uc_elsewhere');
SELECT tenancy.record_migration('uc-0005-defaults', 'ALTER DEFAULT PRIVILEGES GRANT ALL ON TABLES TO PUBLIC');
RESET ROLE;
DO $$ BEGIN EXECUTE pg_catalog.format('REVOKE CREATE ON DATABASE %I FROM tenancy_migrator', current_database()); END $$;
SELECT count(*) AS planted FROM pg_proc WHERE proname = 'planted';
SELECT count(*) AS recorded FROM tenancy.migrations WHERE name LIKE 'uc-000%';
-- What a migration makes in its own schema is fine, foreign keys to shared
-- tables included (PostgreSQL's own triggers on the shared table).
CREATE TABLE uc.plans (id int PRIMARY KEY);
GRANT REFERENCES ON uc.plans TO tenancy_migrator;
SET ROLE tenancy_admin;
CALL tenancy.add_migration('uc-0007-own', $$
    CREATE TABLE uc_subscriptions (plan int REFERENCES uc.plans, note text);
    CREATE INDEX ON uc_subscriptions (plan);
    CREATE VIEW uc_plans AS SELECT plan FROM uc_subscriptions;
    COMMENT ON TABLE uc_subscriptions IS 'fine'$$);
RESET ROLE;

-- 9. A migration table with a tenant_id uuid NOT NULL column is not
--    protected by auto-protect (tenant schemas are pinned to their tenant),
--    and a destroy is not blocked by it.
SET ROLE tenancy_admin;
CALL tenancy.add_migration('uc-0008-tenant-column', 'CREATE TABLE uc_rows (tenant_id uuid NOT NULL, x int)');
RESET ROLE;
SELECT count(*) AS tenant_schema_tables_protected FROM tenancy.protected_tables p
  JOIN pg_class c ON c.oid = p.relid JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname LIKE 'tenant\_%';
SELECT (tenancy.register_tenant('uc-schema', 'Schema', '{}', 'schema')).isolation;
SELECT (tenancy.delete_tenant('uc-schema', destroy_data => true)).identifier;

-- 7. A protected table may not inherit from a table that is not protected
--    (through it, every tenant would read its rows); verify() reports one
--    made while the event trigger was off.
CREATE TABLE uc.everything (item text);
ALTER TABLE uc.everything OWNER TO tenancy_owner;
SET ROLE tenancy_owner;
ALTER TABLE uc.orders INHERIT uc.everything;
CREATE TABLE uc.more_orders (tenant_id uuid NOT NULL, item text) INHERITS (uc.everything);
-- (row_security = off, as pg_restore sets it, switches auto-protect off, not this)
SET row_security = off;
ALTER TABLE uc.orders INHERIT uc.everything;
RESET row_security;
RESET ROLE;
ALTER EVENT TRIGGER tenancy_auto_protect DISABLE;
ALTER TABLE uc.orders INHERIT uc.everything;
ALTER EVENT TRIGGER tenancy_auto_protect ENABLE;
SELECT severity, object, problem FROM tenancy.verify() WHERE object = 'uc.everything';
SELECT tenancy.protect('uc.orders');
ALTER TABLE uc.orders NO INHERIT uc.everything;
-- Unprotecting a parent would leave its protected children under it.
CREATE TABLE uc.parent (tenant_id uuid NOT NULL, x int);
CREATE TABLE uc.child () INHERITS (uc.parent);
SELECT relid::text FROM tenancy.protected_tables WHERE relid::text LIKE 'uc.%' ORDER BY 1;
SELECT tenancy.unprotect('uc.parent');
SELECT tenancy.unprotect('uc.child');
SELECT tenancy.unprotect('uc.parent');

-- 10. LOCK TABLE on another tenant's schema table is refused in a tenant
--     context (the UPDATE privilege would be enough for PostgreSQL).
SELECT schema_name AS victim_schema FROM tenancy.register_tenant('uc-locked', 'Locked', '{}', 'schema') \gset
SELECT schema_name AS locker_schema FROM tenancy.register_tenant('uc-locker', 'Locker', '{}', 'schema') \gset
GRANT UPDATE ON ALL TABLES IN SCHEMA :"victim_schema", :"locker_schema" TO tenancy_app;
SET ROLE tenancy_app;
SELECT tenancy.set_tenant('uc-locker') IS NOT NULL AS as_locker;
BEGIN;
\set VERBOSITY sqlstate
LOCK TABLE :"victim_schema".uc_notes IN ACCESS EXCLUSIVE MODE;
\set VERBOSITY default
ROLLBACK;
-- 50. ... also through a view, which LOCK locks with its tables.
CREATE TEMP VIEW uc_peek AS SELECT * FROM :"victim_schema".uc_notes;
BEGIN;
\set VERBOSITY sqlstate
LOCK TABLE uc_peek IN ACCESS EXCLUSIVE MODE;
\set VERBOSITY default
ROLLBACK;
DROP VIEW uc_peek;
BEGIN;
LOCK TABLE uc_notes IN ACCESS EXCLUSIVE MODE;
ROLLBACK;
SELECT tenancy.reset_tenant();
RESET ROLE;
REVOKE UPDATE ON ALL TABLES IN SCHEMA :"victim_schema", :"locker_schema" FROM tenancy_app;

-- 11. audit() is bounded: details of at most 8 kB, and tenancy.audit_rate
--     events per tenant and second.
SET ROLE tenancy_app;
SELECT tenancy.set_tenant('uc-victim') IS NOT NULL AS as_victim;
SELECT tenancy.audit('big', jsonb_build_object('blob', repeat('x', 9000)));
RESET ROLE;
SET tenancy.audit_rate = 3;
SET ROLE tenancy_app;
BEGIN;
SELECT tenancy.audit('burst') > 0 AS one, tenancy.audit('burst') > 0 AS two, tenancy.audit('burst') > 0 AS three;
SELECT tenancy.audit('burst');
ROLLBACK;
-- (also in a transaction older than a second, whose rows carry its start time)
BEGIN;
SELECT tenancy.audit('slow') > 0 AS one, tenancy.audit('slow') > 0 AS two, tenancy.audit('slow') > 0 AS three;
SELECT pg_sleep(1.1);
\set VERBOSITY sqlstate
SELECT tenancy.audit('slow');
\set VERBOSITY default
ROLLBACK;
RESET ROLE;
RESET tenancy.audit_rate;

-- 12. A lifecycle event replayed after the tenant changed is not current.
SELECT (tenancy.suspend_tenant('uc-victim')).status;
SELECT pg_catalog.json_build_object('action', 'suspend', 'tenant_id', id, 'identifier', identifier,
                                    'status', 'suspended', 'audit_id',
                                    (SELECT max(a.id) FROM tenancy.audit_log a
                                      WHERE a.tenant_id = t.id AND a.action = 'suspend'))::text AS suspended_event
  FROM tenancy.tenants t WHERE identifier = 'uc-victim' \gset
SET ROLE tenancy_app;
SELECT tenancy.event_is_current(:'suspended_event') AS suspend_is_current;
RESET ROLE;
SELECT (tenancy.activate_tenant('uc-victim')).status;
SET ROLE tenancy_app;
SELECT tenancy.event_is_current(:'suspended_event') AS replayed_suspend_is_current;
SELECT tenancy.event_is_current('{"action": "suspend", "identifier": "uc-victim"}') AS forged_is_current;
SELECT tenancy.event_is_current('not json') AS garbage_is_current;
-- (a current event with another status, or with a field tenancy does not send)
RESET ROLE;
SELECT (tenancy.suspend_tenant('uc-victim')).status;
SELECT pg_catalog.json_build_object('action', 'suspend', 'tenant_id', id, 'identifier', identifier,
                                    'status', 'suspended', 'audit_id',
                                    (SELECT max(a.id) FROM tenancy.audit_log a
                                      WHERE a.tenant_id = t.id AND a.action = 'suspend'))::text AS event
  FROM tenancy.tenants t WHERE identifier = 'uc-victim' \gset
SET ROLE tenancy_app;
SELECT tenancy.event_is_current(:'event') AS genuine_is_current;
SELECT tenancy.event_is_current(jsonb_set(:'event', '{status}', '"active"')::text) AS other_status_is_current;
SELECT tenancy.event_is_current((:'event'::jsonb || '{"reason": "forged"}')::text) AS extra_field_is_current;
RESET ROLE;
SELECT (tenancy.activate_tenant('uc-victim')).status;
SET ROLE tenancy_app;
RESET ROLE;

-- 13. A JWT names a tenant by identifier: one issued in the second in which
--     the identifier was destroyed and registered again, before the new
--     registration, does not open the new tenant (compared to the
--     microsecond once an identifier was reused); for an identifier never
--     destroyed, a whole-second iat from the registration's second is fine.
SELECT tenancy.add_signing_key('uc-jwt', decode(repeat('11', 32), 'hex'));
SELECT (tenancy.register_tenant('uc-reused', 'First')).identifier;
SELECT extract(epoch FROM created_at) AS first_registered FROM tenancy.tenants WHERE identifier = 'uc-reused' \gset
SELECT (tenancy.delete_tenant('uc-reused', destroy_data => true)).identifier;
SELECT (tenancy.register_tenant('uc-reused', 'Second')).identifier;
SELECT extract(epoch FROM created_at) AS registered FROM tenancy.tenants WHERE identifier = 'uc-reused' \gset
SELECT (tenancy.register_tenant('uc-fresh', 'Fresh')).identifier;
SELECT floor(extract(epoch FROM created_at)) AS fresh_second FROM tenancy.tenants WHERE identifier = 'uc-fresh' \gset
SET ROLE tenancy_app;
SELECT regress.try_jwt(regress.jwt('{"alg":"HS256","kid":"uc-jwt"}',
       jsonb_build_object('tenant', 'uc-reused', 'iat', :first_registered, 'exp', :registered + 60),
       decode(repeat('11', 32), 'hex'))) AS issued_for_the_first;
SELECT regress.try_jwt(regress.jwt('{"alg":"HS256","kid":"uc-jwt"}',
       jsonb_build_object('tenant', 'uc-reused', 'iat', floor(:registered), 'exp', :registered + 60),
       decode(repeat('11', 32), 'hex'))) AS whole_second_of_reuse;
SELECT regress.try_jwt(regress.jwt('{"alg":"HS256","kid":"uc-jwt"}',
       jsonb_build_object('tenant', 'uc-reused', 'iat', :registered, 'exp', :registered + 60),
       decode(repeat('11', 32), 'hex'))) AS issued_at_registration;
SELECT regress.try_jwt(regress.jwt('{"alg":"HS256","kid":"uc-jwt"}',
       jsonb_build_object('tenant', 'uc-reused', 'iat', :registered + 0.001, 'exp', :registered + 60),
       decode(repeat('11', 32), 'hex'))) AS issued_after;
SELECT regress.try_jwt(regress.jwt('{"alg":"HS256","kid":"uc-jwt"}',
       jsonb_build_object('tenant', 'uc-fresh', 'iat', :fresh_second, 'exp', :fresh_second + 60),
       decode(repeat('11', 32), 'hex'))) AS fresh_whole_second;
-- An iat in the future (beyond a minute of clock difference) is refused.
SELECT regress.try_jwt(regress.jwt('{"alg":"HS256","kid":"uc-jwt"}',
       jsonb_build_object('tenant', 'uc-fresh', 'iat', extract(epoch FROM now()) + 3600,
                          'exp', extract(epoch FROM now()) + 7200),
       decode(repeat('11', 32), 'hex'))) AS issued_in_an_hour;
SELECT tenancy.reset_tenant();
RESET ROLE;
SELECT tenancy.retire_signing_key('uc-jwt');

-- 14. A held cursor declared before the library was loaded in the backend
--     does not block the next transaction-scoped context either.
\c - tenancy_app
BEGIN;
DECLARE before_load CURSOR WITH HOLD FOR SELECT 1;
COMMIT;
BEGIN;
SELECT tenancy.set_tenant('uc-victim', true) IS NOT NULL AS request_after_held_cursor;
COMMIT;
\c - postgres
SET client_min_messages = warning;
\set SHOW_CONTEXT never

-- 15. Tokens live at most tenancy.token_max_lifetime (a day), when issued
--     and when presented, so a revoked administrator's tokens end too.
SELECT tenancy.issue_token('uc-victim', '100 years');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.add_signing_key('uc-long', decode(repeat('22', 32), 'hex'));
SELECT 'tn1.uc-long.' || regress.b64url(decode(replace(id::text, '-', ''), 'hex')) || '.'
       || (extract(epoch FROM now())::bigint + 3 * 86400) AS long_payload
  FROM tenancy.tenants WHERE identifier = 'uc-victim' \gset
SELECT :'long_payload' || '.' || regress.b64url(regress.hmac_sha256(convert_to(:'long_payload', 'utf8'),
       decode(repeat('22', 32), 'hex'))) AS long_token \gset
SET ROLE tenancy_app;
SELECT tenancy.set_tenant_token(:'long_token');
RESET ROLE;
SELECT tenancy.retire_signing_key('uc-long');
SELECT tenancy.retire_signing_key('uc-key');

-- 47. A tenant schema's triggers are the migration author's code. A
--     statement trigger may not fire before tenancy_schema_guard (or replace
--     it), nor fire in replication, and a rule may not rewrite writes: the
--     guard decides first, and refuses a superuser's writes (the author's
--     triggers would run as superuser): a role granted the schema owner's
--     rights does that work instead.
SET ROLE tenancy_admin;
\set VERBOSITY sqlstate
CALL tenancy.add_migration('uc-0010-early', $m$
    CREATE FUNCTION uc_early() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$;
    CREATE TRIGGER "0_first" BEFORE INSERT ON uc_notes FOR EACH STATEMENT EXECUTE FUNCTION uc_early()$m$);
CALL tenancy.add_migration('uc-0011-replace', $m$
    CREATE FUNCTION uc_pass() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$;
    DROP TRIGGER IF EXISTS tenancy_schema_guard ON uc_notes;
    CREATE TRIGGER tenancy_schema_guard BEFORE INSERT ON uc_notes FOR EACH STATEMENT EXECUTE FUNCTION uc_pass()$m$);
CALL tenancy.add_migration('uc-0012-always', $m$
    CREATE FUNCTION uc_always() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
    CREATE TRIGGER uc_always BEFORE INSERT ON uc_notes FOR EACH ROW EXECUTE FUNCTION uc_always();
    ALTER TABLE uc_notes ENABLE ALWAYS TRIGGER uc_always$m$);
CALL tenancy.add_migration('uc-0013-rule', 'CREATE RULE uc_rule AS ON DELETE TO uc_notes DO ALSO NOTIFY uc');
\set VERBOSITY default
-- A statement trigger that sorts after the guard is fine.
CALL tenancy.add_migration('uc-0014-late', $m$
    CREATE FUNCTION uc_late() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE WARNING 'uc_late ran as %', current_user;
        RETURN NULL;
    END $$;
    CREATE TRIGGER uc_late BEFORE INSERT ON uc_notes FOR EACH STATEMENT EXECUTE FUNCTION uc_late()$m$);
RESET ROLE;
SELECT count(*) AS recorded FROM tenancy.migrations WHERE name BETWEEN 'uc-0010' AND 'uc-0014-z';
SELECT schema_name AS planted_schema FROM tenancy.tenants WHERE identifier = 'uc-planted' \gset
\set VERBOSITY sqlstate
INSERT INTO :"planted_schema".uc_notes VALUES ('written by a superuser');
-- (and, where the library is loaded, reads too: see 57)
SELECT count(*) FROM :"planted_schema".uc_plans;
SELECT count(*) AS notes FROM :"planted_schema".uc_notes;
\set VERBOSITY default
SET ROLE tenancy_migrator;
SELECT tenancy.set_tenant('uc-planted') IS NOT NULL AS owner_as_planted;
INSERT INTO :"planted_schema".uc_notes VALUES ('written as the owner');
SELECT count(*) AS plans FROM :"planted_schema".uc_plans;
SELECT tenancy.reset_tenant();
RESET ROLE;
-- verify() reports what an administrator did by hand there.
CREATE FUNCTION uc.nothing() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NULL; END';
CREATE TRIGGER "0_first" BEFORE INSERT ON :"planted_schema".uc_notes
    FOR EACH STATEMENT EXECUTE FUNCTION uc.nothing();
CREATE RULE uc_rule AS ON DELETE TO :"planted_schema".uc_notes DO ALSO NOTIFY uc;
GRANT CREATE ON SCHEMA :"planted_schema" TO tenancy_app;
SELECT severity, replace(object, :'planted_schema', 'planted') AS object,
       regexp_replace(problem, 'tenant \S+', 'tenant …') AS problem
  FROM tenancy.verify() WHERE object LIKE '%' || :'planted_schema' || '%' ORDER BY 2;
DROP TRIGGER "0_first" ON :"planted_schema".uc_notes;
DROP RULE uc_rule ON :"planted_schema".uc_notes;
REVOKE CREATE ON SCHEMA :"planted_schema" FROM tenancy_app;

-- 49. Row-level security in a tenant schema is tenancy's: a migration may
--     add restrictive policies, not permissive ones (they are ORed with the
--     pinned one), and may not make or change tenancy's own.
SET ROLE tenancy_admin;
\set VERBOSITY sqlstate
CALL tenancy.add_migration('uc-0015-open', 'CREATE POLICY uc_open ON uc_notes USING (true)');
CALL tenancy.add_migration('uc-0016-own-policy', $m$
    DROP POLICY IF EXISTS tenancy_schema_isolation ON uc_notes;
    CREATE POLICY tenancy_schema_isolation ON uc_notes AS RESTRICTIVE USING (true)$m$);
\set VERBOSITY default
CALL tenancy.add_migration('uc-0017-restrictive',
    'CREATE POLICY uc_visible ON uc_notes AS RESTRICTIVE USING (body IS NOT NULL)');
RESET ROLE;

-- 51. A migration reaches no other tenant's schema in any other way either:
--     no grant there, no object that refers to one (a view, inheritance, a
--     foreign key), no other tenant's context; and a cursor it leaves open
--     is closed (a FETCH by the caller would run its query with the
--     caller's rights). Inheritance and role settings are reported cleanly.
SET ROLE tenancy_admin;
\set VERBOSITY sqlstate
CALL tenancy.add_migration('uc-0018-grant', 'GRANT CREATE ON SCHEMA ' || :'victim_schema' || ' TO tenancy_app');
CALL tenancy.add_migration('uc-0019-grant-all', 'GRANT ALL ON ALL SEQUENCES IN SCHEMA ' || :'victim_schema' || ' TO tenancy_app');
-- (its own schema included: every tenant's schema runs the migration)
CALL tenancy.add_migration('uc-0019-grant-own', $m$
    DO $d$ BEGIN EXECUTE pg_catalog.format('GRANT USAGE, CREATE ON SCHEMA %I TO tenancy_app', current_schema()); END $d$$m$);
CALL tenancy.add_migration('uc-0019-grant-own-plain', 'GRANT CREATE ON SCHEMA ' || :'planted_schema' || ' TO tenancy_app');
-- (a view has no guard: a trigger instead of its writes would run for every tenant's)
CALL tenancy.add_migration('uc-0019-instead', $m$
    CREATE VIEW uc_writable AS SELECT 1 AS x;
    CREATE FUNCTION uc_instead() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
    CREATE TRIGGER uc_instead INSTEAD OF INSERT ON uc_writable FOR EACH ROW EXECUTE FUNCTION uc_instead()$m$);
CALL tenancy.add_migration('uc-0020-view', 'CREATE VIEW uc_peek AS SELECT * FROM ' || :'victim_schema' || '.uc_notes');
CALL tenancy.add_migration('uc-0021-heir', 'CREATE TABLE uc_heir () INHERITS (' || :'victim_schema' || '.uc_notes)');
CALL tenancy.add_migration('uc-0022-context', $$SELECT tenancy.set_tenant('uc-victim')$$);
\set VERBOSITY default
CALL tenancy.add_migration('uc-0023-role', $$ALTER ROLE tenancy_migrator SET work_mem = '1MB'$$);
CALL tenancy.add_migration('uc-0024-own-heir', $$
    CREATE TABLE uc_base (x int);
    CREATE TABLE uc_derived () INHERITS (uc_base);
    GRANT SELECT ON uc_base, uc_derived TO tenancy_app$$);
BEGIN;
SELECT tenancy.record_migration('uc-0025-cursor', 'DECLARE uc_left CURSOR FOR SELECT 1');
SELECT count(*) AS cursors_left FROM pg_cursors WHERE name = 'uc_left';
ROLLBACK;
RESET ROLE;
SELECT count(*) AS recorded FROM tenancy.migrations WHERE name BETWEEN 'uc-0015' AND 'uc-0025-z';

-- 52. Nor do indexes, defaults, constraints or views that call the author's
--     functions: PostgreSQL evaluates an immutable one while planning any
--     query on the table (a superuser's SELECT too). A migration may call
--     only functions a superuser owns there; verify() reports the others.
SET ROLE tenancy_admin;
\set VERBOSITY sqlstate
CALL tenancy.add_migration('uc-0026-predicate', $m$
    CREATE FUNCTION uc_visible() RETURNS boolean LANGUAGE sql IMMUTABLE AS 'SELECT true';
    CREATE INDEX uc_visible_notes ON uc_notes (body) WHERE uc_visible()$m$);
CALL tenancy.add_migration('uc-0027-default', $m$
    CREATE FUNCTION uc_stamp() RETURNS text LANGUAGE sql IMMUTABLE AS 'SELECT ''x''';
    ALTER TABLE uc_notes ADD COLUMN stamp text DEFAULT uc_stamp()$m$);
CALL tenancy.add_migration('uc-0028-view', $m$
    CREATE FUNCTION uc_label() RETURNS text LANGUAGE sql IMMUTABLE AS 'SELECT ''x''';
    CREATE VIEW uc_labelled AS SELECT body, uc_label() AS label FROM uc_notes$m$);
CALL tenancy.add_migration('uc-0029-check', $m$
    CREATE FUNCTION uc_short(text) RETURNS boolean LANGUAGE sql IMMUTABLE AS 'SELECT length($1) < 100';
    ALTER TABLE uc_notes ADD CONSTRAINT uc_short CHECK (uc_short(body))$m$);
\set VERBOSITY default
-- Built-in functions are fine, and so are the author's functions themselves.
CALL tenancy.add_migration('uc-0030-builtin', $m$
    CREATE FUNCTION uc_shout(text) RETURNS text LANGUAGE sql IMMUTABLE AS 'SELECT upper($1)';
    CREATE INDEX uc_lower_notes ON uc_notes (lower(body)) WHERE body IS NOT NULL$m$);
RESET ROLE;
SELECT count(*) AS recorded FROM tenancy.migrations WHERE name BETWEEN 'uc-0026' AND 'uc-0030-z';
-- Made by hand: reported.
CREATE FUNCTION :"planted_schema".uc_visible() RETURNS boolean LANGUAGE sql IMMUTABLE AS 'SELECT true';
ALTER FUNCTION :"planted_schema".uc_visible() OWNER TO tenancy_migrator;
CREATE INDEX uc_visible_notes ON :"planted_schema".uc_notes (body) WHERE :"planted_schema".uc_visible();
SELECT severity, replace(object, :'planted_schema', 'planted') AS object,
       regexp_replace(replace(problem, :'planted_schema', 'planted'), 'tenant \S+,', 'tenant …,') AS problem
  FROM tenancy.verify() WHERE problem LIKE '%no superuser wrote%';
DROP FUNCTION :"planted_schema".uc_visible() CASCADE;

-- 53. Only a table's owner may add a trigger to a protected table or a table
--     of a tenant schema: one added with the TRIGGER privilege would run as
--     every writer (every tenant's requests, the migration owner) and see
--     their rows. Tenant-schema tables keep no such privilege for others
--     (TRIGGER, REFERENCES, TRUNCATE, and MAINTAIN from PostgreSQL 17), even
--     after GRANT ALL in a migration.
SET ROLE tenancy_admin;
CALL tenancy.add_migration('uc-0031-grant-all', $$
    CREATE TABLE uc_shared_with_app (body text);
    GRANT ALL ON uc_shared_with_app TO tenancy_app$$);
RESET ROLE;
SELECT has_table_privilege('tenancy_app', :'planted_schema' || '.uc_shared_with_app', 'SELECT') AS app_selects,
       has_table_privilege('tenancy_app', :'planted_schema' || '.uc_shared_with_app', 'TRIGGER') AS app_triggers,
       has_table_privilege('tenancy_app', :'planted_schema' || '.uc_shared_with_app', 'REFERENCES') AS app_references,
       has_table_privilege('tenancy_app', :'planted_schema' || '.uc_shared_with_app', 'TRUNCATE') AS app_truncates;
GRANT TRIGGER ON uc.orders, :"planted_schema".uc_shared_with_app TO tenancy_app;
SET ROLE tenancy_app;
CREATE FUNCTION pg_temp.spy() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END';
\set VERBOSITY sqlstate
CREATE TRIGGER spy AFTER INSERT ON uc.orders FOR EACH ROW EXECUTE FUNCTION pg_temp.spy();
CREATE TRIGGER spy AFTER INSERT ON :"planted_schema".uc_shared_with_app FOR EACH ROW EXECUTE FUNCTION pg_temp.spy();
\set VERBOSITY default
RESET ROLE;
REVOKE TRIGGER ON uc.orders, :"planted_schema".uc_shared_with_app FROM tenancy_app;
--     The same for any relation, in a database where tenancy is installed: a
--     trigger runs in every writer's tenant context, and reads the protected
--     tables as the writer would, whatever it sits on — a view over a
--     protected table, or over another view (its INSTEAD OF triggers get the
--     rows written through it), a view protected tables come under later, a
--     request log that every tenant's request writes.
SET ROLE tenancy_owner;
CREATE VIEW uc.orders_view WITH (security_invoker = true) AS SELECT * FROM uc.orders;
CREATE VIEW uc.orders_view_view WITH (security_invoker = true) AS SELECT * FROM uc.orders_view;
CREATE VIEW uc.seen_view AS SELECT * FROM uc.seen;
GRANT ALL ON uc.orders_view, uc.orders_view_view, uc.seen_view, uc.seen TO tenancy_app;
RESET ROLE;
SET ROLE tenancy_app;
\set VERBOSITY sqlstate
CREATE TRIGGER spy INSTEAD OF UPDATE ON uc.orders_view FOR EACH ROW EXECUTE FUNCTION pg_temp.spy();
CREATE TRIGGER spy INSTEAD OF DELETE ON uc.orders_view_view FOR EACH ROW EXECUTE FUNCTION pg_temp.spy();
CREATE TRIGGER spy INSTEAD OF DELETE ON uc.seen_view FOR EACH ROW EXECUTE FUNCTION pg_temp.spy();
CREATE TRIGGER spy AFTER INSERT ON uc.seen FOR EACH ROW EXECUTE FUNCTION pg_temp.spy();
\set VERBOSITY default
SELECT count(*) AS foreign_triggers FROM pg_trigger WHERE tgname = 'spy' AND tgrelid::regclass::text LIKE 'uc.%';
RESET ROLE;
REVOKE ALL ON uc.seen FROM tenancy_app;
DROP VIEW uc.orders_view_view, uc.orders_view, uc.seen_view;
--     And a foreign key, whatever its action and its columns' types:
--     PostgreSQL checks it with queries on the referencing table, as its
--     owner, in the session and tenant context of whoever deletes or updates
--     the referenced rows, and planning them runs what that owner attached to
--     the table (an index's predicate, a partition's constraint, a policy;
--     with an action, its triggers and defaults; with other types,
--     conversions): only the referenced table's owner adds one.
SET ROLE tenancy_owner;
CREATE TABLE uc.sessions (id int PRIMARY KEY);
INSERT INTO uc.sessions VALUES (1);
GRANT REFERENCES ON uc.sessions TO tenancy_app;
RESET ROLE;
GRANT CREATE ON SCHEMA uc TO tenancy_app;
SET ROLE tenancy_app;
\set VERBOSITY sqlstate
CREATE TABLE uc.app_child (sid int REFERENCES uc.sessions (id) ON DELETE CASCADE);
CREATE TABLE uc.app_child (sid int REFERENCES uc.sessions (id));
CREATE TABLE uc.app_child (sid bigint REFERENCES uc.sessions (id));
CREATE TABLE uc.app_child (sid int);
INSERT INTO uc.app_child VALUES (1);
ALTER TABLE uc.app_child ADD FOREIGN KEY (sid) REFERENCES uc.sessions (id);
ALTER TABLE uc.app_child ADD FOREIGN KEY (sid) REFERENCES uc.sessions (id) ON DELETE RESTRICT NOT VALID;
--     (also through a parent, or a composite type a typed table is made of)
CREATE TABLE uc.app_parent (sid int);
CREATE TABLE uc.app_inheritor (sid int REFERENCES uc.sessions (id)) INHERITS (uc.app_parent);
CREATE TYPE uc.app_row AS (sid int);
CREATE TABLE uc.app_typed OF uc.app_row (sid WITH OPTIONS REFERENCES uc.sessions (id));
\set VERBOSITY default
SELECT count(*) AS app_keys FROM pg_constraint WHERE contype = 'f' AND confrelid = 'uc.sessions'::regclass;
RESET ROLE;
--     A key that a superuser added (or one made before tenancy was
--     installed) is reported by verify(), and is checked again as it ends
--     up: the table owner's new column type rebuilds it, and is refused.
ALTER TABLE uc.app_child ADD CONSTRAINT app_child_sid FOREIGN KEY (sid) REFERENCES uc.sessions (id);
SELECT severity, object, problem FROM tenancy.verify() WHERE object LIKE 'constraint app_child_sid%';
SET ROLE tenancy_app;
\set VERBOSITY sqlstate
ALTER TABLE uc.app_child ALTER COLUMN sid TYPE bigint;
\set VERBOSITY default
RESET ROLE;
ALTER TABLE uc.app_child DROP CONSTRAINT app_child_sid;
--     A partition of a keyed table that another role owns (attached by a
--     superuser): the keys' checks run what it attached, as the parent's
--     owner. verify() reports it.
SET ROLE tenancy_owner;
CREATE TABLE uc.keyed (sid int REFERENCES uc.sessions (id)) PARTITION BY LIST (sid);
RESET ROLE;
SET ROLE tenancy_app;
CREATE TABLE uc.app_part (sid int);
RESET ROLE;
ALTER TABLE uc.keyed ATTACH PARTITION uc.app_part FOR VALUES IN (1);
SELECT severity, object, problem FROM tenancy.verify() WHERE object = 'partition uc.app_part';
DROP TABLE uc.keyed;
--     (nor one made by a role with both owners' privileges: but for a
--     superuser's, the referencing table's owner must have them too)
CREATE ROLE uc_both IN ROLE tenancy_owner, tenancy_app;
SET ROLE uc_both;
\set VERBOSITY sqlstate
ALTER TABLE uc.app_child ADD FOREIGN KEY (sid) REFERENCES uc.sessions (id);
\set VERBOSITY default
RESET ROLE;
DROP ROLE uc_both;
--     (in a session that has not loaded the library yet: by the event
--     trigger, at the end of the command)
\c - tenancy_app
\set VERBOSITY sqlstate
ALTER TABLE uc.app_child ADD FOREIGN KEY (sid) REFERENCES uc.sessions (id);
\set VERBOSITY default
\c - postgres
SET client_min_messages = warning;
\set SHOW_CONTEXT never
SET ROLE tenancy_app;
\set VERBOSITY sqlstate
--     (and the casts PostgreSQL applies by itself, which such keys need: a
--     superuser's; an explicit one stays anyone's)
CREATE TYPE uc.app_kind AS ENUM ('a');
CREATE FUNCTION uc.app_kind_int(uc.app_kind) RETURNS int LANGUAGE sql AS 'SELECT 1';
CREATE CAST (uc.app_kind AS int) WITH FUNCTION uc.app_kind_int(uc.app_kind) AS IMPLICIT;
CREATE CAST (uc.app_kind AS int) WITH FUNCTION uc.app_kind_int(uc.app_kind) AS ASSIGNMENT;
CREATE CAST (uc.app_kind AS int) WITH FUNCTION uc.app_kind_int(uc.app_kind);
\set VERBOSITY default
SELECT castcontext FROM pg_cast WHERE castsource = 'uc.app_kind'::regtype;
RESET ROLE;
--     A superuser's cast is refused too when another role owns its function
--     (it could replace the body); verify() reports one made before.
CREATE FUNCTION uc.app_kind_big(uc.app_kind) RETURNS bigint LANGUAGE sql AS 'SELECT 1';
ALTER FUNCTION uc.app_kind_big(uc.app_kind) OWNER TO tenancy_app;
\set VERBOSITY sqlstate
CREATE CAST (uc.app_kind AS bigint) WITH FUNCTION uc.app_kind_big(uc.app_kind) AS IMPLICIT;
\set VERBOSITY default
ALTER EVENT TRIGGER tenancy_guard_triggers DISABLE;
CREATE CAST (uc.app_kind AS bigint) WITH FUNCTION uc.app_kind_big(uc.app_kind) AS IMPLICIT;
ALTER EVENT TRIGGER tenancy_guard_triggers ENABLE;
SELECT severity, object, problem FROM tenancy.verify() WHERE object LIKE 'cast from uc.app_kind%';
DROP CAST (uc.app_kind AS bigint);
--     Such a cast whose function changed hands after it was made (or one
--     made before tenancy was installed) does not run for a key the
--     referencing role adds: the key is refused as PostgreSQL records it,
--     before it validates the key against existing rows (no warning).
DROP CAST (uc.app_kind AS int);
CREATE FUNCTION uc.app_kind_int4(uc.app_kind) RETURNS int LANGUAGE sql AS 'SELECT 1';
CREATE CAST (uc.app_kind AS int) WITH FUNCTION uc.app_kind_int4(uc.app_kind) AS IMPLICIT;
ALTER FUNCTION uc.app_kind_int4(uc.app_kind) OWNER TO tenancy_app;
SET ROLE tenancy_app;
CREATE OR REPLACE FUNCTION uc.app_kind_int4(uc.app_kind) RETURNS int LANGUAGE plpgsql AS
    $$BEGIN RAISE WARNING 'the cast ran as %', current_user; RETURN 1; END$$;
CREATE TABLE uc.app_kinds (k uc.app_kind);
INSERT INTO uc.app_kinds VALUES ('a');
ALTER TABLE uc.app_kinds ADD FOREIGN KEY (k) REFERENCES uc.sessions (id);
ALTER TABLE uc.app_kinds ADD FOREIGN KEY (k) REFERENCES uc.sessions (id) NOT VALID;
RESET ROLE;
DROP CAST (uc.app_kind AS int);
DROP FUNCTION uc.app_kind_int4(uc.app_kind);
DROP TABLE uc.app_child, uc.app_parent, uc.app_kinds, uc.sessions;
DROP TYPE uc.app_row;
DROP TYPE uc.app_kind CASCADE;
REVOKE CREATE ON SCHEMA uc FROM tenancy_app;
--     verify() warns about a trigger whose function another role owns (one
--     added before tenancy was installed: here a superuser's doing).
CREATE FUNCTION uc.other_spy() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END';
ALTER FUNCTION uc.other_spy() OWNER TO uc_other_owner;
CREATE TRIGGER other_spy AFTER INSERT ON uc.seen FOR EACH ROW EXECUTE FUNCTION uc.other_spy();
SELECT severity, object, problem FROM tenancy.verify() WHERE object LIKE 'trigger other_spy%';
DROP FUNCTION uc.other_spy() CASCADE;
--     A later migration's GRANT on a table that an earlier one pinned: taken
--     back all the same (a GRANT is no object change PostgreSQL reports).
--     (REFERENCES on a column too: a foreign key to one tells which values
--     another tenant's rows hold.)
SET ROLE tenancy_admin;
CALL tenancy.add_migration('uc-0031-grant-later', $$GRANT ALL ON uc_shared_with_app TO tenancy_app;
    GRANT REFERENCES (body) ON uc_shared_with_app TO tenancy_owner$$);
RESET ROLE;
SELECT has_column_privilege('tenancy_owner', :'planted_schema' || '.uc_shared_with_app', 'body', 'REFERENCES') AS owner_column_references;
SELECT has_table_privilege('tenancy_app', :'planted_schema' || '.uc_shared_with_app', 'UPDATE') AS app_updates,
       has_table_privilege('tenancy_app', :'planted_schema' || '.uc_shared_with_app', 'TRIGGER') AS app_triggers,
       has_table_privilege('tenancy_app', :'planted_schema' || '.uc_shared_with_app', 'REFERENCES') AS app_references,
       has_table_privilege('tenancy_app', :'planted_schema' || '.uc_shared_with_app', 'TRUNCATE') AS app_truncates;

-- 54. Acting as a tenant schema's owner, then going back to a role that
--     bypasses row-level security (RESET ROLE), takes the schema off
--     search_path: its functions and aggregates would beat pg_catalog's.
SET ROLE tenancy_migrator;
SELECT tenancy.set_tenant('uc-planted') IS NOT NULL AS owner_as_planted;
SELECT current_setting('search_path') LIKE 'tenant\_%' AS schema_first;
RESET ROLE;
SELECT current_setting('search_path') LIKE '%tenant\_%' AS schema_on_path_after_reset;
SET ROLE tenancy_migrator;
SELECT tenancy.reset_tenant();
RESET ROLE;

-- 55. REINDEX, CLUSTER, VACUUM and ANALYZE of another tenant's schema table
--     lock it like LOCK TABLE: refused in another tenant's context.
GRANT UPDATE ON :"victim_schema".uc_notes TO tenancy_app;
SET ROLE tenancy_app;
SELECT tenancy.set_tenant('uc-locker') IS NOT NULL AS as_locker;
\set VERBOSITY sqlstate
REINDEX TABLE :"victim_schema".uc_notes;
VACUUM :"victim_schema".uc_notes;
ANALYZE :"victim_schema".uc_notes;
\set VERBOSITY default
SELECT tenancy.reset_tenant();
RESET ROLE;
REVOKE UPDATE ON :"victim_schema".uc_notes FROM tenancy_app;

-- tenancy's own tables are not protect()'s to change.
\set VERBOSITY sqlstate
SELECT tenancy.protect('tenancy.tenants', 'id');
\set VERBOSITY default

-- 56. ... nor PostgreSQL's own functions that run SQL given as text (or read
--     a relation by name): owned by a superuser, they would run the author's
--     code all the same.
SET ROLE tenancy_admin;
\set VERBOSITY sqlstate
CALL tenancy.add_migration('uc-0032-sql-text', $m$
    CREATE FUNCTION uc_hook(text) RETURNS boolean LANGUAGE sql AS 'SELECT true';
    ALTER TABLE uc_notes ADD CONSTRAINT uc_sneaky
        CHECK (ts_rewrite('a'::tsquery, 'SELECT ''a''::tsquery, ''b''::tsquery WHERE uc_hook(''x'')') IS NOT NULL)$m$);
CALL tenancy.add_migration('uc-0033-sql-text-domain', $m$
    CREATE DOMAIN uc_checked AS text CHECK (query_to_xml('SELECT 1', true, false, '') IS NOT NULL)$m$);
CALL tenancy.add_migration('uc-0034-sql-text-view', $m$
    CREATE VIEW uc_search AS SELECT body, ts_rewrite('a'::tsquery, 'SELECT ''a''::tsquery, ''b''::tsquery') AS q
      FROM uc_notes$m$);
\set VERBOSITY default
RESET ROLE;
SELECT count(*) AS recorded FROM tenancy.migrations WHERE name BETWEEN 'uc-0032' AND 'uc-0034-z';

-- 57. A superuser's statements stay out of tenant schemas altogether (where
--     the library is loaded): not with a tenant schema on search_path however
--     the role changed back, not through a temporary relation that code run
--     under SET ROLE left in the session, not from a cursor opened under
--     another role.
SET ROLE tenancy_migrator;
SELECT tenancy.set_tenant('uc-planted') IS NOT NULL AS owner_as_planted;
CREATE TEMP VIEW pg_stat_activity AS SELECT 1 AS pid;
SELECT pg_catalog.set_config('role', 'none', false) IS NOT NULL AS back_to_superuser;
\set VERBOSITY sqlstate
SELECT count(*) FROM pg_catalog.pg_class WHERE false;
SET search_path = "$user", public;
SELECT count(pid) FROM pg_stat_activity;
\set VERBOSITY default
DISCARD TEMP;
SET ROLE tenancy_migrator;
SELECT tenancy.reset_tenant();
BEGIN;
DECLARE uc_cursor CURSOR FOR SELECT * FROM :"planted_schema".uc_notes;
SELECT pg_catalog.set_config('role', 'none', true) IS NOT NULL AS back_to_superuser;
\set VERBOSITY sqlstate
FETCH ALL FROM uc_cursor;
\set VERBOSITY default
ROLLBACK;
RESET ROLE;
RESET search_path;

-- 58. A trigger may not change the tenant context: it is its table owner's
--     (or a migration's) code running in the writer's session.
SET ROLE tenancy_admin;
CALL tenancy.add_migration('uc-0035-switching-trigger', $m$
    CREATE FUNCTION uc_switch() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM tenancy.set_tenant('uc-victim');
        RETURN NEW;
    END $$;
    CREATE TRIGGER uc_switch AFTER INSERT ON uc_notes FOR EACH ROW EXECUTE FUNCTION uc_switch()$m$);
RESET ROLE;
GRANT INSERT ON ALL TABLES IN SCHEMA :"planted_schema" TO tenancy_app;
SET ROLE tenancy_app;
SELECT tenancy.set_tenant('uc-planted') IS NOT NULL AS as_planted;
\set VERBOSITY sqlstate
INSERT INTO uc_notes VALUES ('switch, please');
\set VERBOSITY default
SELECT tenancy.current_tenant_identifier();
SELECT tenancy.reset_tenant();
RESET ROLE;
REVOKE INSERT ON ALL TABLES IN SCHEMA :"planted_schema" FROM tenancy_app;
SELECT tenancy.retire_migration('uc-0035-switching-trigger');
-- ... nor a column default, a constraint, a rule, a view, a policy or an
-- operator of a column's type: the owner's code, run in the caller's
-- statement. The context changes only in a statement that reads and writes
-- no relation (a lookup goes in a statement before it).
SET ROLE tenancy_owner;
CREATE TABLE uc.switching (tenant_id uuid NOT NULL,
    note text DEFAULT (tenancy.set_tenant('uc-victim'))::text);
CREATE VIEW uc.switching_view AS SELECT tenancy.set_tenant('uc-victim') AS switched;
CREATE TABLE uc.domains (host text, tenant text);
INSERT INTO uc.domains VALUES ('victim.example', 'uc-victim');
CREATE TABLE uc.noted (note text);
CREATE RULE uc_switches AS ON INSERT TO uc.noted DO ALSO SELECT tenancy.set_tenant('uc-victim');
CREATE DOMAIN uc.host AS text;
CREATE FUNCTION uc.host_eq(uc.host, uc.host) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    PERFORM tenancy.set_tenant('uc-victim');
    RETURN $1::text = $2::text;
END $$;
CREATE OPERATOR uc.= (FUNCTION = uc.host_eq, LEFTARG = uc.host, RIGHTARG = uc.host);
CREATE TABLE uc.hosts (host uc.host, tenant text);
INSERT INTO uc.hosts VALUES ('victim.example', 'uc-victim');
-- (an immutable function is folded while the statement is planned)
CREATE FUNCTION uc.folded() RETURNS boolean LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    PERFORM tenancy.set_tenant('uc-victim');
    RETURN true;
END $$;
CREATE VIEW uc.folding AS SELECT host FROM uc.domains WHERE uc.folded();
GRANT SELECT ON uc.folding TO tenancy_app;
GRANT SELECT, INSERT ON uc.switching, uc.noted TO tenancy_app;
GRANT SELECT ON uc.switching_view, uc.domains, uc.hosts TO tenancy_app;
GRANT USAGE ON SCHEMA uc TO tenancy_app;
RESET ROLE;
SET ROLE tenancy_app;
SELECT tenancy.set_tenant('uc-planted') IS NOT NULL AS as_planted;
\set VERBOSITY terse
INSERT INTO uc.switching (tenant_id) VALUES (tenancy.current_tenant());
SELECT * FROM uc.switching_view;
SELECT tenancy.set_tenant('uc-victim') IS NOT NULL AS switched, (SELECT count(*) FROM uc.orders) AS orders;
INSERT INTO uc.noted VALUES ('a rule switches');
SET search_path = uc, public;
SELECT tenant FROM uc.hosts WHERE host OPERATOR(uc.=) 'victim.example'::uc.host;
RESET search_path;
SELECT tenancy.set_tenant(tenant) IS NOT NULL AS by_domain FROM uc.domains WHERE host = 'victim.example';
SELECT * FROM uc.folding;
\set VERBOSITY default
-- (a prepared set_tenant of the client's own runs; what EXECUTE plans does not)
PREPARE uc_switch(text) AS SELECT tenancy.set_tenant($1) IS NOT NULL AS switched;
EXECUTE uc_switch('uc-planted');
DEALLOCATE uc_switch;
SELECT tenancy.current_tenant_identifier() AS still_planted;
SELECT tenant AS looked_up FROM uc.domains WHERE host = 'victim.example' \gset
SELECT tenancy.set_tenant(:'looked_up') IS NOT NULL AS by_domain;
SELECT tenancy.current_tenant_identifier();
SELECT tenancy.reset_tenant();
RESET ROLE;
DROP VIEW uc.folding;
DROP FUNCTION uc.folded();
DROP TABLE uc.switching, uc.domains, uc.noted, uc.hosts;
DROP OPERATOR uc.= (uc.host, uc.host);
DROP FUNCTION uc.host_eq(uc.host, uc.host);
DROP DOMAIN uc.host;
DROP VIEW uc.switching_view;

-- verify() warns about a protected table whose statistics, index predicates
-- or constraints call its owner's functions: PostgreSQL evaluates them when a
-- superuser plans a query on it.
SET ROLE tenancy_owner;
CREATE FUNCTION uc.owner_immutable() RETURNS text LANGUAGE sql IMMUTABLE AS 'SELECT ''x''';
CREATE STATISTICS uc.orders_stats ON (item || uc.owner_immutable()) FROM uc.orders;
RESET ROLE;
SELECT severity, object FROM tenancy.verify() WHERE object LIKE '%orders_stats%';
DROP STATISTICS uc.orders_stats;

-- 59. A tenant schema's functions are the migration author's code, and the
--     application runs them in every request without naming them: an
--     aggregate or an operator there outmatches pg_catalog's. Each call runs
--     as a security-restricted operation: it cannot choose another tenant,
--     change a role (its own password included), make anything that would
--     outlive the call as the caller (a function of the application's the
--     author could call later), or leave temporary objects or settings
--     behind.
SET ROLE tenancy_admin;
CALL tenancy.add_migration('uc-0036-shadows', $m$
    CREATE FUNCTION uc_count_step(bigint, integer) RETURNS bigint LANGUAGE plpgsql AS $$
    BEGIN
        IF $1 = 0 THEN
            BEGIN PERFORM tenancy.set_tenant('uc-victim');
            EXCEPTION WHEN insufficient_privilege THEN RAISE WARNING 'set_tenant: refused'; END;
            BEGIN EXECUTE pg_catalog.format('ALTER ROLE %I PASSWORD %L', current_user, 'chosen');
            EXCEPTION WHEN insufficient_privilege OR feature_not_supported THEN RAISE WARNING 'ALTER ROLE: refused'; END;
            BEGIN CREATE TEMP TABLE uc_planted (x int);
            EXCEPTION WHEN insufficient_privilege OR feature_not_supported THEN RAISE WARNING 'CREATE TEMP TABLE: refused'; END;
            BEGIN CREATE FUNCTION public.uc_planted_fn() RETURNS integer LANGUAGE sql AS 'SELECT 1';
            EXCEPTION WHEN feature_not_supported THEN RAISE WARNING 'CREATE FUNCTION: refused'; END;
            PERFORM pg_catalog.set_config('statement_timeout', '1h', false);
        END IF;
        RETURN $1 + 1;
    END $$;
    CREATE AGGREGATE count(integer) (SFUNC = uc_count_step, STYPE = bigint, INITCOND = '0');
    CREATE TABLE uc_numbers (n integer);
    GRANT SELECT, INSERT ON uc_numbers TO tenancy_app$m$);
RESET ROLE;
SET ROLE tenancy_app;
SELECT tenancy.set_tenant('uc-planted') IS NOT NULL AS as_planted;
INSERT INTO uc_numbers VALUES (1), (2);
SELECT count(n) AS counted_by_the_shadow FROM uc_numbers;
SELECT tenancy.current_tenant_identifier() AS still_planted;
SHOW statement_timeout;
SELECT count(*) AS temp_tables FROM pg_class WHERE relname = 'uc_planted';
SELECT tenancy.reset_tenant();
RESET ROLE;
SELECT tenancy.retire_migration('uc-0036-shadows');

-- 60. ... nor built-in functions that only some roles may run (reading the
--     server's files, large objects): in a constraint, a restoring
--     superuser would run them.
SET ROLE tenancy_admin;
\set VERBOSITY sqlstate
CALL tenancy.add_migration('uc-0037-superuser-only', $m$
    CREATE DOMAIN uc_reading AS text CHECK (length(pg_read_binary_file('global/1260')) > 0)$m$);
\set VERBOSITY default
RESET ROLE;

-- 61. A temporary table left by one request on a pooled connection does not
--     take the place of the next tenant's table: with a tenant's schema on
--     search_path, pg_temp comes last.
SET ROLE tenancy_app;
SELECT tenancy.set_tenant('uc-planted') IS NOT NULL AS as_planted;
CREATE TEMP TABLE uc_numbers (n integer);
SELECT tenancy.set_tenant('uc-locker') IS NOT NULL AS as_locker;
SELECT current_setting('search_path') LIKE '%, pg_temp' AS temp_last;
SELECT count(*) AS visible_rows FROM uc_numbers;
DROP TABLE pg_temp.uc_numbers;
SELECT tenancy.reset_tenant();
RESET ROLE;

-- 62. ... nor expressions that act beyond their result: a view or a policy
--     calling set_config, pg_notify or tenancy.set_tenant_jwt would act in
--     every request that reads it (random ids and the time are fine).
SET ROLE tenancy_admin;
\set VERBOSITY sqlstate
CALL tenancy.add_migration('uc-0038-view-settings', $m$
    CREATE VIEW uc_report AS SELECT body, set_config('statement_timeout', '50ms', false) AS t FROM uc_notes$m$);
CALL tenancy.add_migration('uc-0039-policy-switch', $m$
    CREATE POLICY uc_switching ON uc_notes AS RESTRICTIVE FOR SELECT
        USING (tenancy.set_tenant_jwt('x') IS NOT NULL)$m$);
CALL tenancy.add_migration('uc-0040-procedure', $m$
    CREATE PROCEDURE uc_archive() LANGUAGE plpgsql AS $$ BEGIN COMMIT; END $$$m$);
\set VERBOSITY default
CALL tenancy.add_migration('uc-0041-random-default', $m$
    CREATE TABLE uc_tokens (id uuid DEFAULT gen_random_uuid(), at timestamptz DEFAULT clock_timestamp())$m$);
RESET ROLE;
SELECT count(*) AS recorded FROM tenancy.migrations WHERE name BETWEEN 'uc-0038' AND 'uc-0041-z';

-- 64. Whether a function's calls run restricted is remembered per backend
--     and asked again when a function or a schema changes: renamed to the
--     form of a tenant schema's name, a schema's functions run restricted
--     at once (a SQL function is then not inlined either; called by a
--     superuser, refused), and free again when renamed back.
CREATE SCHEMA uc_moving;
CREATE FUNCTION uc_moving.lengthen() RETURNS text LANGUAGE sql
    AS $$ SELECT pg_catalog.set_config('statement_timeout', '1h', false) $$;
SELECT uc_moving.lengthen() AS free_call;
SHOW statement_timeout;
RESET statement_timeout;
ALTER SCHEMA uc_moving RENAME TO tenant_00000000000000000000000000000064;
SELECT tenant_00000000000000000000000000000064.lengthen() AS restricted_call;
SHOW statement_timeout;
ALTER SCHEMA tenant_00000000000000000000000000000064 RENAME TO uc_moving;
SELECT uc_moving.lengthen() AS free_again;
SHOW statement_timeout;
RESET statement_timeout;
DROP SCHEMA uc_moving CASCADE;

-- 65. A superuser does not run a tenant schema's function, however it is
--     reached (restricted, a call would keep every right a restricted
--     operation leaves a superuser, COPY … TO PROGRAM among them). Reading a
--     tenant schema's sequence (pg_dump does) runs no code and is allowed; a
--     schema on search_path refuses a superuser's statement only if it is a
--     registered tenant's (one that only looks like one, or does not exist,
--     holds no migration author's code).
SET ROLE tenancy_admin;
CALL tenancy.add_migration('uc-0042-callable', $m$
    CREATE FUNCTION uc_answer() RETURNS integer LANGUAGE plpgsql AS $$ BEGIN RETURN 42; END $$;
    CREATE TABLE uc_counted (id integer GENERATED ALWAYS AS IDENTITY)$m$);
RESET ROLE;
\set VERBOSITY sqlstate
SELECT :"planted_schema".uc_answer();
SELECT count(*) FROM pg_catalog.pg_class WHERE relname = 'uc_counted' AND :"planted_schema".uc_answer() = 42;
\set VERBOSITY default
SELECT last_value, is_called FROM :"planted_schema".uc_counted_id_seq;
SET search_path = tenant_00000000000000000000000000000065, public;
SELECT count(*) AS path_resolves_nothing FROM pg_catalog.pg_namespace WHERE false;
CREATE SCHEMA tenant_00000000000000000000000000000065;
SELECT count(*) AS no_tenant_has_it FROM pg_catalog.pg_namespace WHERE false;
RESET search_path;
DROP SCHEMA tenant_00000000000000000000000000000065;
SET search_path = :"planted_schema", public;
\set VERBOSITY sqlstate
SELECT count(*) AS a_tenants FROM pg_catalog.pg_namespace WHERE false;
\set VERBOSITY default
RESET search_path;
SELECT tenancy.retire_migration('uc-0042-callable');

-- 67. Code another role wrote (a migration, a table owner's triggers) does
--     not run while the caller has a cursor open: it could find it in
--     pg_cursors and fetch it, with the caller's rights.
BEGIN;
DECLARE uc_secrets CURSOR FOR SELECT kid FROM tenancy.signing_keys;
\set VERBOSITY sqlstate
SELECT (tenancy.register_tenant('uc-cursor', 'Cursor', '{}', 'schema')).identifier;
\set VERBOSITY default
ROLLBACK;
SELECT count(*) AS registered FROM tenancy.tenants WHERE identifier = 'uc-cursor';
-- Nor can it use the caller's large-object descriptors, which no catalog
-- lists: in that code, the functions that take a descriptor are refused
-- (the caller's own use is not).
BEGIN;
SELECT pg_catalog.lo_from_bytea(0, 'the caller''s secret') AS lo \gset
SELECT pg_catalog.lo_open(:lo, 262144) AS fd \gset
SELECT pg_catalog.convert_from(pg_catalog.loread(:fd, 10), 'UTF8') AS read_by_the_caller;
SET LOCAL ROLE tenancy_admin;
SELECT tenancy.record_migration('uc-0043-descriptor',
    'CREATE TABLE uc_stolen AS SELECT pg_catalog.loread(' || :fd || ', 100) AS data');
ROLLBACK;
BEGIN;
SELECT pg_catalog.lo_from_bytea(0, 'x') AS lo \gset
SELECT pg_catalog.lo_open(:lo, 262144) AS fd \gset
SET LOCAL ROLE tenancy_admin;
SELECT tenancy.record_migration('uc-0043-descriptor',
    'DO $$ BEGIN PERFORM pg_catalog.lo_close(' || :fd || '); END $$');
ROLLBACK;
-- The same for what else reaches the caller's session rather than data: its
-- message's text (current_query(), with a secret in another statement of the
-- same message), its random sequence (setseed()), its transaction's
-- constraint checks (SET CONSTRAINTS); in a migration, and in a tenant
-- schema's function that the application calls.
SET ROLE tenancy_admin;
-- (one message: the failed migration takes the key's addition along)
SELECT tenancy.add_signing_key('uc-hidden', 'a secret the migration must not read') IS NULL AS added \; SELECT tenancy.record_migration('uc-0044-session', 'CREATE TABLE uc_stolen AS SELECT pg_catalog.current_query() AS q');
SELECT tenancy.record_migration('uc-0044-session', 'SELECT pg_catalog.setseed(0.5)');
SELECT tenancy.record_migration('uc-0044-session', 'SET CONSTRAINTS ALL DEFERRED');
-- ... its prepared statements (their text, or running them), its advisory
-- locks (released), its random sequence through the `seed` setting.
PREPARE uc_secret_statement AS SELECT 'a secret in a prepared statement';
SELECT tenancy.record_migration('uc-0044-session', 'CREATE TABLE uc_stolen AS SELECT statement FROM pg_catalog.pg_prepared_statements');
SELECT tenancy.record_migration('uc-0044-session', 'EXECUTE uc_secret_statement');
SELECT tenancy.record_migration('uc-0044-session', 'EXPLAIN (VERBOSE) EXECUTE uc_secret_statement');
SELECT tenancy.record_migration('uc-0044-session', 'CREATE TABLE uc_stolen AS EXECUTE uc_secret_statement');
SELECT tenancy.record_migration('uc-0044-session', 'EXPLAIN (VERBOSE) CREATE TABLE uc_stolen AS EXECUTE uc_secret_statement');
DEALLOCATE uc_secret_statement;
SELECT pg_catalog.pg_advisory_lock(4242);
SELECT tenancy.record_migration('uc-0044-session', 'SELECT pg_catalog.pg_advisory_unlock_all()');
SELECT tenancy.record_migration('uc-0044-session', 'SELECT pg_catalog.pg_advisory_unlock(4242)');
SELECT count(*) AS still_locked FROM pg_catalog.pg_locks WHERE locktype = 'advisory' AND objid = 4242 AND pid = pg_catalog.pg_backend_pid();
SELECT pg_catalog.pg_advisory_unlock(4242);
SELECT tenancy.record_migration('uc-0044-session', 'SET seed = 0.5');
-- ... nor other sessions: their queries (pg_stat_activity), ending them.
SELECT tenancy.record_migration('uc-0044-session', 'CREATE TABLE uc_stolen AS SELECT query FROM pg_catalog.pg_stat_activity');
SELECT tenancy.record_migration('uc-0044-session', 'SELECT pg_catalog.pg_terminate_backend(pg_catalog.pg_backend_pid())');
-- (set_config('seed', …) is not refused: the session's random() is seeded
-- afresh when the code returns)
SELECT pg_catalog.setseed(0.5) IS NULL AS seeded;
SELECT pg_catalog.random() AS first_after_seed \gset
SELECT pg_catalog.setseed(0.5) IS NULL AS seeded;
SELECT tenancy.record_migration('uc-0044-seed', 'SELECT pg_catalog.set_config(''seed'', ''0.5'', false)');
SELECT pg_catalog.random() <> :first_after_seed AS not_the_seeded_sequence;
-- (also when the code raises after seeding it)
SELECT pg_catalog.setseed(0.5) IS NULL AS seeded;
SELECT tenancy.record_migration('uc-0044-seed-fails', 'SELECT pg_catalog.set_config(''seed'', ''0.5'', false); SELECT 1/0');
SELECT pg_catalog.random() <> :first_after_seed AS not_the_seeded_sequence;
SELECT tenancy.retire_migration('uc-0044-seed');
CALL tenancy.add_migration('uc-0045-seeding', $m$
    CREATE FUNCTION uc_seed() RETURNS integer LANGUAGE sql AS 'SELECT pg_catalog.setseed(0.5); SELECT 1';
    CREATE FUNCTION uc_peek() RETURNS SETOF text LANGUAGE sql AS 'SELECT query FROM pg_catalog.pg_stat_activity';
    CREATE FUNCTION uc_explain(name text) RETURNS SETOF text LANGUAGE plpgsql AS $$
    BEGIN RETURN QUERY EXECUTE pg_catalog.format('EXPLAIN (VERBOSE) EXECUTE %I', name); END $$$m$);
RESET ROLE;
SET ROLE tenancy_app;
SELECT tenancy.set_tenant('uc-planted') IS NOT NULL AS as_planted;
SELECT uc_seed();
SELECT uc_peek();
PREPARE uc_app_statement AS SELECT 'the application''s secret';
SELECT uc_explain('uc_app_statement');
DEALLOCATE uc_app_statement;
RESET ROLE;
SELECT tenancy.retire_migration('uc-0045-seeding');

-- 68. Auto-protect stands aside while a session has turned row_security off
--     itself (pg_dump, pg_restore), not when a default that another role set
--     (ALTER DATABASE … SET) turns it off for every session.
DO $$ BEGIN EXECUTE pg_catalog.format('ALTER DATABASE %I SET row_security = off', current_database()); END $$;
\c
SET client_min_messages = warning;
SHOW row_security;
SET ROLE tenancy_owner;
CREATE TABLE uc.defaulted_off (tenant_id uuid NOT NULL, x int);
RESET ROLE;
DO $$ BEGIN EXECUTE pg_catalog.format('ALTER DATABASE %I RESET row_security', current_database()); END $$;
\c
SET client_min_messages = warning;
SET row_security = off;
SET ROLE tenancy_owner;
CREATE TABLE uc.restored (tenant_id uuid NOT NULL, x int);
RESET ROLE;
RESET row_security;
SELECT relname, relrowsecurity AND relforcerowsecurity AS protected FROM pg_class
 WHERE oid IN ('uc.defaulted_off'::regclass, 'uc.restored'::regclass) ORDER BY relname;
SELECT tenancy.unprotect('uc.defaulted_off');
DROP TABLE uc.defaulted_off, uc.restored;

-- verify() reads table names as names, not as patterns (a SECURITY DEFINER
-- function is compared with every protected table's name).
CREATE TABLE uc."we(ird" (tenant_id uuid NOT NULL);
CREATE FUNCTION uc.definer() RETURNS int LANGUAGE sql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp AS 'SELECT 1';
SELECT severity, object FROM tenancy.verify() WHERE object = 'uc.definer()';
DROP FUNCTION uc.definer();

SELECT tenancy.revoke_admin('tenancy_admin');
-- (later schema tenants replay the history: uc.plans goes away)
SELECT tenancy.retire_migration('uc-0007-own');
DROP SCHEMA uc, uc_trap CASCADE;
DROP OWNED BY uc_other_owner;
DROP ROLE uc_other_owner;
