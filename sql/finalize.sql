-- Runs after every function exists: triggers, privileges, dump registration.

-- Any change to the tenant catalog, through the API or plain DML, invalidates
-- every backend's tenant cache at commit. ENABLE ALWAYS: also under
-- session_replication_role = replica.
CREATE TRIGGER tenants_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON tenancy.tenants
    FOR EACH STATEMENT EXECUTE FUNCTION tenancy.tenants_changed();
ALTER TABLE tenancy.tenants ENABLE ALWAYS TRIGGER tenants_changed;

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
SELECT pg_catalog.pg_extension_config_dump('tenancy.protected_tables', '');

-- Administration is opt-in (GRANT EXECUTE to an admin role); the context
-- functions are for everyone: policies call current_tenant() as the querying role.
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA tenancy FROM PUBLIC;
GRANT USAGE ON SCHEMA tenancy TO PUBLIC;
GRANT EXECUTE ON FUNCTION
    tenancy.set_tenant(text, boolean),
    tenancy.reset_tenant(),
    tenancy.current_tenant(),
    tenancy.current_tenant_identifier(),
    tenancy.cache_stats()
TO PUBLIC;
