-- Per-tenant configuration: defaults, overrides, precedence, privileges, audit.
\set SHOW_CONTEXT never
DO $$ BEGIN
    PERFORM tenancy.register_tenant('cfg-one', 'One');
    PERFORM tenancy.register_tenant('cfg-two', 'Two');
END $$;

SELECT tenancy.set_config_default('theme', '"light"');
SELECT tenancy.set_config_default('limits.users', '10');
SELECT tenancy.set_config_default('features', '{"beta": false}');
SELECT tenancy.set_tenant_config('cfg-one', 'theme', '"dark"');
SELECT tenancy.set_tenant_config('cfg-one', 'limits.users', '250');
SELECT tenancy.set_tenant_config('cfg-two', 'only.two', 'true');

SET ROLE tenancy_app;
-- No context: the defaults.
SELECT tenancy.config('theme'), tenancy.config('only.two'), tenancy.config();
-- The tenant's value wins; a missing key falls back to the default, else NULL.
SELECT tenancy.set_tenant('cfg-one') IS NOT NULL AS one;
SELECT tenancy.config('theme') AS theme, tenancy.config('limits.users') AS users,
       tenancy.config('features') AS features, tenancy.config('nothing') IS NULL AS missing;
SELECT tenancy.config();
SELECT tenancy.set_tenant('cfg-two') IS NOT NULL AS two;
SELECT tenancy.config();
-- The application role reads, but cannot write or read the tables.
SELECT tenancy.set_tenant_config('cfg-two', 'theme', '"hacked"');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.set_config_default('theme', '"hacked"');
SELECT * FROM tenancy.tenant_config;
RESET ROLE;

-- A change is seen at once by this backend's next read (cache invalidated).
SET ROLE tenancy_app;
SELECT tenancy.set_tenant('cfg-one') IS NOT NULL AS one;
SELECT tenancy.config('theme');
RESET ROLE;
SELECT tenancy.set_tenant_config('cfg-one', 'theme', '"solarized"');
SET ROLE tenancy_app;
SELECT tenancy.config('theme');
RESET ROLE;
-- Unset: the default applies again; unsetting twice reports false.
SELECT tenancy.unset_tenant_config('cfg-one', 'theme');
SELECT tenancy.unset_tenant_config('cfg-one', 'theme');
SELECT tenancy.unset_config_default('features');
SELECT tenancy.unset_config_default('features');
SET ROLE tenancy_app;
SELECT tenancy.config('theme'), tenancy.config('features');
RESET ROLE;
-- JSON null is a value like any other.
SELECT tenancy.set_tenant_config('cfg-one', 'theme', 'null');
SET ROLE tenancy_app;
SELECT tenancy.config('theme');
SELECT tenancy.reset_tenant();
RESET ROLE;

-- Bad input.
SELECT tenancy.set_config_default('Bad Key', '1');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.set_config_default('', '1');
SELECT tenancy.set_config_default('k', NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.set_tenant_config('nobody', 'k', '1');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.config(NULL);
SELECT status FROM tenancy.delete_tenant('cfg-two');
SELECT tenancy.set_tenant_config('cfg-two', 'k', '1');
\echo :LAST_ERROR_SQLSTATE

-- Every change is audited with the previous value.
SELECT tenant_identifier, details FROM tenancy.audit_log WHERE action = 'config' ORDER BY id;
-- Destroying a tenant removes its configuration (soft-deleted cfg-two keeps its own).
SELECT status FROM tenancy.delete_tenant('cfg-one', destroy_data => true);
SELECT key FROM tenancy.tenant_config;
