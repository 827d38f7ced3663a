-- Runs after every function exists: triggers, privileges, dump registration.

-- Any change to the tenants or their configuration, through the API or plain
-- DML, invalidates every backend's caches at commit. ENABLE ALWAYS: also under
-- session_replication_role = replica.
CREATE TRIGGER catalog_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON tenancy.tenants
    FOR EACH STATEMENT EXECUTE FUNCTION tenancy.catalog_changed();
CREATE TRIGGER catalog_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON tenancy.config_defaults
    FOR EACH STATEMENT EXECUTE FUNCTION tenancy.catalog_changed();
CREATE TRIGGER catalog_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON tenancy.tenant_config
    FOR EACH STATEMENT EXECUTE FUNCTION tenancy.catalog_changed();
CREATE TRIGGER catalog_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON tenancy.signing_keys
    FOR EACH STATEMENT EXECUTE FUNCTION tenancy.catalog_changed();
CREATE TRIGGER catalog_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON tenancy.cluster_key
    FOR EACH STATEMENT EXECUTE FUNCTION tenancy.catalog_changed();
ALTER TABLE tenancy.tenants ENABLE ALWAYS TRIGGER catalog_changed;
ALTER TABLE tenancy.cluster_key ENABLE ALWAYS TRIGGER catalog_changed;
ALTER TABLE tenancy.signing_keys ENABLE ALWAYS TRIGGER catalog_changed;
ALTER TABLE tenancy.config_defaults ENABLE ALWAYS TRIGGER catalog_changed;
ALTER TABLE tenancy.tenant_config ENABLE ALWAYS TRIGGER catalog_changed;

CREATE TRIGGER audit_log_append_only
    BEFORE UPDATE OR DELETE ON tenancy.audit_log
    FOR EACH ROW EXECUTE FUNCTION tenancy.audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate
    BEFORE TRUNCATE ON tenancy.audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION tenancy.audit_log_append_only();
ALTER TABLE tenancy.audit_log
    ENABLE ALWAYS TRIGGER audit_log_append_only,
    ENABLE ALWAYS TRIGGER audit_log_no_truncate;

-- Catalog rows are user data: pg_dump keeps them.
SELECT pg_catalog.pg_extension_config_dump('tenancy.tenants', '');
SELECT pg_catalog.pg_extension_config_dump('tenancy.audit_log', '');
SELECT pg_catalog.pg_extension_config_dump('tenancy.audit_log_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('tenancy.protected_tables', '');
SELECT pg_catalog.pg_extension_config_dump('tenancy.config_defaults', '');
SELECT pg_catalog.pg_extension_config_dump('tenancy.tenant_config', '');
SELECT pg_catalog.pg_extension_config_dump('tenancy.signing_keys', '');
SELECT pg_catalog.pg_extension_config_dump('tenancy.migrations', '');
SELECT pg_catalog.pg_extension_config_dump('tenancy.schema_migrations', '');
SELECT pg_catalog.pg_extension_config_dump('tenancy.migration_owner', '');
SELECT pg_catalog.pg_extension_config_dump('tenancy.freed_identifiers', '');

-- Administration is opt-in (GRANT EXECUTE to an admin role): every routine of
-- the schema is revoked from PUBLIC except the context functions, which are
-- for everyone (policies call current_tenant() as the querying role). These
-- keep PostgreSQL's default privilege (PUBLIC may execute, no ACL stored)
-- rather than a revoke and a grant back: a stored ACL is read out of the
-- pg_proc row at every execution, and current_tenant() is part of every
-- protected statement (0.2 µs each, docs/benchmarks.md). Where default
-- privileges (ALTER DEFAULT PRIVILEGES) took PUBLIC's away, it is granted.
GRANT USAGE ON SCHEMA tenancy TO PUBLIC;
DO $$
DECLARE
    context_functions regprocedure[] := ARRAY[
        'tenancy.set_tenant(text)',
        'tenancy.set_tenant(text, boolean)',
        'tenancy.set_tenant_token(text)',
        'tenancy.set_tenant_token(text, boolean)',
        'tenancy.set_tenant_jwt(text)',
        'tenancy.set_tenant_jwt(text, boolean)',
        'tenancy.postgrest_pre_request()',
        'tenancy.reset_tenant()',
        'tenancy.current_tenant()',
        'tenancy.current_tenant_identifier()',
        'tenancy.config(text)',
        'tenancy.config()',
        'tenancy.cache_stats()',
        -- Usage: each row is filtered by who asks (api/usage.rs).
        'tenancy.tenant_stats_entries()',
        'tenancy.tenant_stats_information()',
        'tenancy.tenant_activity_entries()',
        'tenancy.current_tenant_info()',
        'tenancy.audit(text, jsonb)',
        'tenancy.event_is_current(text)',
        -- Checks itself: the table's owner, or an administrator (api/distribute.rs).
        'tenancy.distribute_table(regclass, text, boolean)',
        -- Called by the tenancy_guard_triggers event trigger as whoever runs
        -- CREATE TRIGGER (it only reads what the event reports).
        'tenancy.refuse_foreign_triggers()',
        -- Read by verify() as its caller (they read the system catalogs only).
        'tenancy.expressions_of(oid, oid)',
        'tenancy.calls_forbidden(text)',
        'tenancy.volatile_but_harmless(oid)',
        -- Trigger functions (they cannot be called directly): a table's owner
        -- and the migration owner create the guard triggers that use them.
        'tenancy.refuse_truncate()',
        'tenancy.schema_guard()'];
    routine record;
BEGIN
    FOR routine IN
        SELECT p.oid::regprocedure AS name, p.oid = ANY (context_functions) AS for_everyone, p.proacl
        FROM pg_catalog.pg_proc p WHERE p.pronamespace = 'tenancy'::regnamespace
    LOOP
        IF NOT routine.for_everyone THEN
            EXECUTE format('REVOKE ALL ON ROUTINE %s FROM PUBLIC', routine.name);
        ELSIF routine.proacl IS NOT NULL THEN
            EXECUTE format('GRANT EXECUTE ON ROUTINE %s TO PUBLIC', routine.name);
        END IF;
    END LOOP;
END
$$;
