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
ALTER TABLE tenancy.tenants ENABLE ALWAYS TRIGGER catalog_changed;
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

-- Administration is opt-in (GRANT EXECUTE to an admin role); the context
-- functions are for everyone: policies call current_tenant() as the querying role.
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA tenancy FROM PUBLIC;
REVOKE ALL ON PROCEDURE tenancy.migrate(), tenancy.add_migration(text, text) FROM PUBLIC;
GRANT USAGE ON SCHEMA tenancy TO PUBLIC;
GRANT EXECUTE ON FUNCTION
    tenancy.set_tenant(text, boolean),
    tenancy.set_tenant_token(text, boolean),
    tenancy.set_tenant_jwt(text, boolean),
    tenancy.postgrest_pre_request(),
    tenancy.reset_tenant(),
    tenancy.current_tenant(),
    tenancy.current_tenant_identifier(),
    tenancy.config(text),
    tenancy.config(),
    tenancy.cache_stats()
TO PUBLIC;
