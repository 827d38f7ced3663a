-- Threat-model row 40: a caller's search_path never reaches the extension.
-- Schema hostile_exact shadows what the extension could call (operators and
-- functions with the exact argument types it uses, aggregates, domains named
-- like its types), each raising an error that names it and the role it ran
-- as. Every entry point runs with
-- search_path = hostile_exact, pg_catalog, …: pg_catalog after it, so the
-- shadows win over PostgreSQL's own wherever a name is resolved through the
-- caller's path. None may run. (This file's own statements only use
-- IS [NOT] NULL, IS TRUE and schema-qualified operators, functions and types.)
\set SHOW_CONTEXT never
SET client_min_messages = warning;
CREATE ROLE hostile_author NOLOGIN;
CREATE SCHEMA hostile_exact AUTHORIZATION hostile_author;
GRANT USAGE ON SCHEMA hostile_exact TO PUBLIC;
SET ROLE hostile_author;
CREATE FUNCTION hostile_exact.shadow(what text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'hostile shadow % ran as %', what, current_user;
END $$;
DO $$
DECLARE
    sig text;
    op text;
    args text[];
    types text[] := ARRAY['text,text', 'name,name', 'name,text', 'text,name', 'uuid,uuid', 'oid,oid',
        '"char","char"', 'int2,int2', 'int4,int4', 'int8,int8', 'int4,int8', 'int8,int4', 'bool,bool',
        'timestamptz,timestamptz', 'regclass,regclass', 'regclass,oid', 'oid,regclass',
        'regnamespace,regnamespace', 'regrole,regrole', 'regprocedure,regprocedure', 'xid8,xid8',
        'numeric,numeric', 'numeric,int4', 'jsonb,jsonb', 'bytea,bytea', 'text[],text[]', 'oid[],oid[]',
        'inet,inet', 'interval,interval'];
BEGIN
    FOREACH op IN ARRAY ARRAY['=', '<>', '<', '>', '<=', '>='] LOOP
        FOREACH sig IN ARRAY types LOOP
            args := pg_catalog.string_to_array(sig, ',');
            EXECUTE pg_catalog.format(
                'CREATE FUNCTION hostile_exact.op_%s(%s) RETURNS bool LANGUAGE plpgsql AS '
                '$f$BEGIN PERFORM hostile_exact.shadow(%L); RETURN NULL; END$f$',
                pg_catalog.md5(op OPERATOR(pg_catalog.||) sig), sig, op OPERATOR(pg_catalog.||) '(' OPERATOR(pg_catalog.||) sig OPERATOR(pg_catalog.||) ')');
            EXECUTE pg_catalog.format('CREATE OPERATOR hostile_exact.%s (FUNCTION = hostile_exact.op_%s, LEFTARG = %s, RIGHTARG = %s)',
                op, pg_catalog.md5(op OPERATOR(pg_catalog.||) sig), args[1], args[2]);
        END LOOP;
    END LOOP;
    FOREACH sig IN ARRAY ARRAY[
            '||:text,text', '||:text[],text', '||:name[],name', '~:text,text', '~:name,text', '~*:text,text',
            '~~:text,text', '~~:name,text', '@>:jsonb,jsonb', '@>:text[],text[]', '->:jsonb,text',
            '->>:jsonb,text', '+:int4,int4', '+:int8,int8', '-:int4,int4', '-:timestamptz,interval',
            '*:numeric,numeric', '*:numeric,int4', '*:int4,int4'] LOOP
        op := pg_catalog.split_part(sig, ':', 1);
        args := pg_catalog.string_to_array(pg_catalog.split_part(sig, ':', 2), ',');
        EXECUTE pg_catalog.format(
            'CREATE FUNCTION hostile_exact.op_%s(%s, %s) RETURNS text LANGUAGE plpgsql AS '
            '$f$BEGIN PERFORM hostile_exact.shadow(%L); RETURN NULL; END$f$',
            pg_catalog.md5(sig), args[1], args[2], sig);
        EXECUTE pg_catalog.format('CREATE OPERATOR hostile_exact.%s (FUNCTION = hostile_exact.op_%s, LEFTARG = %s, RIGHTARG = %s)',
            op, pg_catalog.md5(sig), args[1], args[2]);
    END LOOP;
    FOREACH sig IN ARRAY ARRAY[
            'format(text)', 'format(text,text)', 'format(text,text,text)', 'format(text,text,text,text)',
            'format(text,name)', 'format(text,regclass)', 'format(text,regclass,text)', 'lower(text)',
            'upper(text)', 'quote_ident(text)', 'quote_ident(name)', 'quote_literal(text)', 'now()',
            'clock_timestamp()', 'length(text)', 'length(bytea)', 'cardinality(text[])', 'cardinality(name[])',
            'cardinality(oid[])', 'array_to_string(text[],text)', 'array_append(text[],text)',
            'pg_notify(text,text)', 'jsonb_typeof(jsonb)', 'replace(text,text,text)',
            'split_part(text,text,int4)', 'has_table_privilege(oid,text,text)',
            'has_function_privilege(oid,text,text)', 'pg_has_role(oid,oid,text)', 'to_regclass(text)',
            'btrim(text)', 'encode(bytea,text)', 'decode(text,text)', 'gen_random_uuid()',
            'pg_backend_pid()', 'floor(numeric)', 'concat_ws(text,text,text)', 'pg_get_expr(pg_node_tree,oid)',
            'coalesce(text,text)', 'unnest(text[])', 'unnest(oid[])', 'aclexplode(aclitem[])',
            'pg_describe_object(oid,oid,int4)', 'session_user()', 'current_setting(text)',
            'set_config(text,text,bool)', 'pg_partition_tree(regclass)', 'makeaclitem(oid,oid,text,bool)'] LOOP
        EXECUTE pg_catalog.format(
            'CREATE FUNCTION hostile_exact.%s RETURNS text LANGUAGE plpgsql AS '
            '$f$BEGIN PERFORM hostile_exact.shadow(%L); RETURN NULL; END$f$', sig, sig);
    END LOOP;
    CREATE FUNCTION hostile_exact.agg_step(int8) RETURNS int8 LANGUAGE plpgsql AS
        $f$BEGIN PERFORM hostile_exact.shadow('an aggregate'); RETURN NULL; END$f$;
    CREATE FUNCTION hostile_exact.agg_step(int8, int4) RETURNS int8 LANGUAGE plpgsql AS
        $f$BEGIN PERFORM hostile_exact.shadow('an aggregate'); RETURN NULL; END$f$;
    CREATE FUNCTION hostile_exact.agg_step(int8, text, text) RETURNS int8 LANGUAGE plpgsql AS
        $f$BEGIN PERFORM hostile_exact.shadow('an aggregate'); RETURN NULL; END$f$;
    CREATE AGGREGATE hostile_exact.count(*) (SFUNC = hostile_exact.agg_step, STYPE = int8);
    CREATE AGGREGATE hostile_exact.max(int4) (SFUNC = hostile_exact.agg_step, STYPE = int8);
    CREATE AGGREGATE hostile_exact.string_agg(text, text) (SFUNC = hostile_exact.agg_step, STYPE = int8);
    -- Domains named like PostgreSQL's types, whose CHECK calls a shadow: a
    -- type name resolved through the caller's path (a cast, a PL/pgSQL
    -- variable's type) runs it.
    CREATE FUNCTION hostile_exact.domain_check(what text) RETURNS bool LANGUAGE plpgsql AS
        $f$BEGIN PERFORM hostile_exact.shadow('domain ' OPERATOR(pg_catalog.||) what); RETURN true; END$f$;
    FOREACH sig IN ARRAY ARRAY['text', 'name', 'uuid', 'oid', 'int2', 'int4', 'int8', 'numeric',
            'bool', 'json', 'jsonb', 'timestamptz', 'interval', 'bytea', 'xid8', 'inet', 'regclass',
            'regnamespace', 'regrole', 'regprocedure', 'regtype', 'char', 'varchar'] LOOP
        EXECUTE pg_catalog.format('CREATE DOMAIN hostile_exact.%I AS pg_catalog.%I CHECK (hostile_exact.domain_check(%L))',
            sig, sig, sig);
    END LOOP;
END $$;
RESET ROLE;
SELECT (SELECT pg_catalog.count(*) FROM pg_catalog.pg_operator
         WHERE oprnamespace OPERATOR(pg_catalog.=) 'hostile_exact'::pg_catalog.regnamespace) AS operators,
       (SELECT pg_catalog.count(*) FROM pg_catalog.pg_proc
         WHERE pronamespace OPERATOR(pg_catalog.=) 'hostile_exact'::pg_catalog.regnamespace) AS functions,
       (SELECT pg_catalog.count(*) FROM pg_catalog.pg_type
         WHERE typnamespace OPERATOR(pg_catalog.=) 'hostile_exact'::pg_catalog.regnamespace
           AND typtype OPERATOR(pg_catalog.=) 'd') AS domains;

-- Every role gets the hostile path first (as ALTER ROLE … SET would).
ALTER ROLE tenancy_admin SET search_path = hostile_exact, pg_catalog, public;
ALTER ROLE tenancy_app SET search_path = hostile_exact, pg_catalog, public;
SET search_path = hostile_exact, pg_catalog, public;
-- The shadows win wherever a name is resolved through this path:
SELECT 'a'::pg_catalog.text = 'a'::pg_catalog.text;
SELECT 'a'::text;
SELECT format('%s', 'a'::pg_catalog.text);
SELECT count(*) FROM pg_catalog.pg_class;
SELECT tenancy.grant_admin('tenancy_admin');
CREATE SCHEMA hs AUTHORIZATION tenancy_owner;
GRANT USAGE ON SCHEMA hs TO tenancy_app, tenancy_admin;
SET ROLE tenancy_owner;
SET search_path = hostile_exact, pg_catalog, public;
-- Auto-protect, as the owner of a new table.
CREATE TABLE hs.orders (tenant_id pg_catalog.uuid NOT NULL, id int NOT NULL, item pg_catalog.text);
GRANT SELECT, INSERT, UPDATE, DELETE ON hs.orders TO tenancy_app;
CREATE FUNCTION hs.stamp() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.item := pg_catalog.upper(NEW.item);
    RETURN NEW;
END $$;
CREATE TRIGGER stamp BEFORE INSERT ON hs.orders FOR EACH ROW EXECUTE FUNCTION hs.stamp();
RESET ROLE;
SET search_path = hostile_exact, pg_catalog, public;

-- As a superuser: lifecycle, protection, verify, configuration, keys,
-- migrations, the audit log.
SELECT tenancy.set_migration_owner('tenancy_migrator');
SELECT (tenancy.register_tenant('h-one', 'One')).id IS NOT NULL AS registered;
SELECT (tenancy.register_tenant('h-two', 'Two', '{"plan": "pro"}')).id IS NOT NULL AS registered;
SELECT (tenancy.register_tenant('h-schema', 'Schema', '{}', 'schema')).id IS NOT NULL AS registered;
SELECT (tenancy.suspend_tenant('h-two', 'test')).id IS NOT NULL AS suspended;
SELECT (tenancy.activate_tenant('h-two')).id IS NOT NULL AS activated;
SELECT (tenancy.update_tenant('h-two', 'Two Inc', '{"plan": "team"}')).id IS NOT NULL AS updated;
SELECT tenancy.protect('hs.orders');
SELECT tenancy.unprotect('hs.orders');
SELECT tenancy.protect('hs.orders');
SELECT (SELECT pg_catalog.count(*) FROM tenancy.verify()) IS NOT NULL AS verified;
SELECT (SELECT pg_catalog.count(*) FROM tenancy.pending_migrations()) IS NOT NULL AS pending_listed;
SELECT tenancy.set_config_default('h.limit', '10');
SELECT tenancy.set_tenant_config('h-one', 'h.limit', '20');
SELECT tenancy.unset_tenant_config('h-one', 'h.limit') IS NOT NULL AS override_unset;
SELECT tenancy.unset_config_default('h.limit') IS NOT NULL AS default_unset;
SELECT tenancy.add_signing_key('h-key', pg_catalog.decode(pg_catalog.repeat('11', 32), 'hex')) IS NOT NULL AS key_added;
SELECT tenancy.add_signing_key('h-key', NULL, true) IS NOT NULL AS key_added_again;
SELECT tenancy.issue_token('h-one') AS h_token \gset
SELECT tenancy.purge_audit_log('100 years') IS NOT NULL AS purged;
CALL tenancy.add_migration('h-0001', 'CREATE TABLE h_notes (body text)');
SELECT tenancy.record_migration('h-0002', 'CREATE TABLE h_more (body text)');
CALL tenancy.migrate();
SELECT tenancy.migrate_tenant('h-schema') IS NOT NULL AS migrated;
SELECT tenancy.retire_migration('h-0002');
-- (this file's own helpers, made with PostgreSQL's own search_path)
RESET search_path;
SELECT regress.jwt('{"alg":"HS256","kid":"h-key"}',
       jsonb_build_object('tenant', 'h-two', 'iat', extract(epoch FROM clock_timestamp()),
                          'exp', extract(epoch FROM clock_timestamp()) + 60),
       decode(repeat('11', 32), 'hex')) AS h_jwt \gset
SELECT schema_name AS h_schema FROM tenancy.tenants WHERE identifier = 'h-schema' \gset
GRANT SELECT ON ALL TABLES IN SCHEMA :"h_schema" TO tenancy_app;
SET search_path = hostile_exact, pg_catalog, public;

-- As a granted administrator.
SET ROLE tenancy_admin;
SET search_path = hostile_exact, pg_catalog, public;
SELECT (tenancy.register_tenant('h-three', 'Three')).id IS NOT NULL AS registered;
SELECT (tenancy.suspend_tenant('h-three')).id IS NOT NULL AS suspended;
SELECT (tenancy.delete_tenant('h-three')).id IS NOT NULL AS deleted;
SELECT (tenancy.delete_tenant('h-three', true)).id IS NOT NULL AS destroyed;
SELECT tenancy.protect('hs.orders');
SELECT (SELECT pg_catalog.count(*) FROM tenancy.verify()) IS NOT NULL AS verified;
CALL tenancy.add_migration('h-0003', 'CREATE TABLE h_third (body text)');
SELECT tenancy.issue_token('h-one') IS NOT NULL AS issued;
RESET ROLE;

-- As the application: contexts by name, token and JWT; reads, writes and a
-- trigger on a protected table; configuration; audit events; cursors; locks.
SET ROLE tenancy_app;
SET search_path = hostile_exact, pg_catalog, public;
SELECT tenancy.set_tenant('h-one') IS NOT NULL AS as_one;
SELECT tenancy.current_tenant() IS NOT NULL AS has_context;
SELECT tenancy.current_tenant_identifier() IS NOT NULL AS has_identifier;
SELECT (SELECT pg_catalog.count(*) FROM tenancy.current_tenant_info()) IS NOT NULL AS info;
INSERT INTO hs.orders (id, item) VALUES (1, 'one');
SELECT (SELECT pg_catalog.count(*) FROM hs.orders) IS NOT NULL AS read;
SELECT tenancy.config('h.limit') IS NULL AS config_value;
SELECT tenancy.config() IS NOT NULL AS config_document;
SELECT tenancy.audit('h.event', '{"n": 1}') IS NOT NULL AS audited;
SELECT (SELECT pg_catalog.count(*) FROM tenancy.cache_stats()) IS NOT NULL AS stats;
SELECT tenancy.set_tenant_token(:'h_token') IS NOT NULL AS by_token;
SELECT tenancy.set_tenant_jwt(:'h_jwt') IS NOT NULL AS by_jwt;
BEGIN;
SELECT tenancy.set_tenant('h-one', true) IS NOT NULL AS local;
SELECT pg_catalog.set_config('request.headers', '{}', true) IS NOT NULL AS headers;
SELECT tenancy.postgrest_pre_request();
COMMIT;
BEGIN;
DECLARE h_cursor CURSOR WITH HOLD FOR SELECT 1;
COMMIT;
BEGIN;
SELECT tenancy.set_tenant('h-two', true) IS NOT NULL AS closes_held_cursor;
COMMIT;
SELECT tenancy.set_tenant('h-schema') IS NOT NULL AS as_schema_tenant;
BEGIN;
LOCK TABLE h_notes IN ACCESS SHARE MODE;
COMMIT;
SELECT tenancy.event_is_current('{}') IS FALSE AS event_checked;
SELECT tenancy.reset_tenant();
RESET ROLE;
SET search_path = hostile_exact, pg_catalog, public;

-- Destroying tenants runs the owner's trigger (as the owner), the schema's
-- drop; the settings the extension relies on stay its own.
SELECT (tenancy.delete_tenant('h-one', true)).id IS NOT NULL AS destroyed;
SELECT (tenancy.delete_tenant('h-schema', true)).id IS NOT NULL AS destroyed;
SELECT tenancy.retire_signing_key('h-key');
SELECT tenancy.revoke_admin('tenancy_admin');

RESET search_path;
ALTER ROLE tenancy_admin RESET search_path;
ALTER ROLE tenancy_app RESET search_path;
DROP SCHEMA hs CASCADE;
DROP SCHEMA hostile_exact CASCADE;
DROP ROLE hostile_author;
