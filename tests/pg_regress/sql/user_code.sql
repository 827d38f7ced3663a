-- Code and settings that another role controls never reach the extension's
-- rights and never change what it does next (threat-model rows 39-44 and
-- the review of 0.4.0): one section per attack, as the role it needs.
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

-- A trigger that copies the rows it deletes into another protected table
-- (an audit trail): the destroy goes over the tables again until none is left.
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
SELECT count(*) AS audited_rows_left FROM uc.history
 WHERE NOT EXISTS (SELECT FROM tenancy.tenants t WHERE t.id = history.tenant_id);
DROP TRIGGER keep_history ON uc.orders;
DROP TRIGGER spy ON uc.orders;

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
-- be repeated (a deploy step).
SET ROLE tenancy_admin;
SELECT tenancy.add_signing_key('uc-key', decode(repeat('ab', 32), 'hex'));
SELECT tenancy.add_signing_key('uc-key', decode(repeat('ab', 32), 'hex'), if_not_exists => true);
SELECT tenancy.add_signing_key('uc-key', if_not_exists => true);
SELECT tenancy.add_signing_key('uc-key', decode(repeat('cd', 32), 'hex'), if_not_exists => true);
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.add_signing_key('uc-key');
\echo :LAST_ERROR_SQLSTATE
SELECT kid, algorithm, created_by, retired_at IS NULL AS active FROM tenancy.signing_key_info WHERE kid = 'uc-key';
RESET ROLE;

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

SELECT tenancy.revoke_admin('tenancy_admin');
-- (later schema tenants replay the history: uc.plans goes away)
SELECT tenancy.retire_migration('uc-0007-own');
DROP SCHEMA uc, uc_trap CASCADE;
DROP OWNED BY uc_other_owner;
DROP ROLE uc_other_owner;
