-- Administration by a granted role: grant_admin() gives a role without
-- SUPERUSER what every administration function needs, and nothing more.
\set SHOW_CONTEXT never
SET client_min_messages = warning;
SET ROLE tenancy_admin;
SELECT tenancy.grant_admin('tenancy_admin');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SELECT tenancy.grant_admin('tenancy_admin');
CREATE SCHEMA adm AUTHORIZATION tenancy_owner;
-- (to name a table, as in protect('adm.notes'), a role needs USAGE on its schema)
GRANT USAGE ON SCHEMA adm TO tenancy_admin;
SET ROLE tenancy_owner;
CREATE TABLE adm.notes (tenant_id uuid NOT NULL, body text);
RESET ROLE;

SET ROLE tenancy_admin;
-- Lifecycle.
SELECT (tenancy.register_tenant('adm-one', 'One')).identifier;
SELECT (tenancy.register_tenant('adm-two', 'Two', '{}', 'schema')).isolation;
SELECT (tenancy.suspend_tenant('adm-one', 'test')).status;
SELECT (tenancy.activate_tenant('adm-one')).status;
SELECT (tenancy.update_tenant('adm-one', name => 'One Inc')).name;
-- Row-level security.
SELECT tenancy.unprotect('adm.notes');
SELECT tenancy.protect('adm.notes');
SELECT count(*) AS problems_with_adm FROM tenancy.verify() WHERE object LIKE 'adm.%';
-- Migrations, and a failing one: it passes the dry run but cannot apply in
-- one schema. CALL migrate() raises (the failure's SQLSTATE, the tenant in
-- the message and DETAIL) after migrating the others, which stay committed.
CALL tenancy.add_migration('adm-0001', 'CREATE TABLE adm_notes (body text)');
SELECT (tenancy.register_tenant('adm-three', 'Three', '{}', 'schema')).isolation;
RESET ROLE;
SELECT schema_name AS two_schema FROM tenancy.tenants WHERE identifier = 'adm-two' \gset
CREATE TABLE :"two_schema".clash (x int);
SET ROLE tenancy_admin;
CALL tenancy.add_migration('adm-0002', 'CREATE TABLE clash (y int)');
\echo :LAST_ERROR_SQLSTATE
SELECT identifier, pending FROM tenancy.pending_migrations() WHERE identifier LIKE 'adm-%';
CALL tenancy.migrate();
\echo :LAST_ERROR_SQLSTATE
-- A migration that can never apply is retired: nobody waits for it anymore.
SELECT tenancy.retire_migration('adm-0002');
SELECT count(*) AS pending FROM tenancy.pending_migrations() WHERE identifier LIKE 'adm-%';
SELECT (tenancy.register_tenant('adm-four', 'Four', '{}', 'schema')).isolation;
SELECT tenancy.retire_migration('no-such-migration');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.migrate_tenant('adm-two');
-- Configuration, keys and tokens, the audit log.
SELECT tenancy.set_config_default('adm.limit', '10');
SELECT tenancy.set_tenant_config('adm-one', 'adm.limit', '20');
SELECT tenancy.unset_tenant_config('adm-one', 'adm.limit');
SELECT tenancy.unset_config_default('adm.limit');
SELECT tenancy.add_signing_key('adm-key');
SELECT tenancy.issue_token('adm-one') LIKE 'tn1.adm-key.%' AS token_issued;
SELECT tenancy.retire_signing_key('adm-key');
SELECT tenancy.purge_audit_log('10 years') >= 0 AS purged;
SELECT count(*) > 0 AS reads_the_audit_log FROM tenancy.audit_log WHERE tenant_identifier = 'adm-one';
SELECT (tenancy.delete_tenant('adm-one')).status;
SELECT (tenancy.delete_tenant('adm-one', destroy_data => true)).identifier;
-- Nothing more: no secrets, no choice of who runs migrations, no superuser.
SELECT count(*) FROM tenancy.signing_keys;
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) FROM tenancy.cluster_key;
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.set_migration_owner('tenancy_admin');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.grant_admin('tenancy_app');
\echo :LAST_ERROR_SQLSTATE
-- (SQLSTATE only: PostgreSQL's own wording changed in 16.)
\set VERBOSITY sqlstate
CALL tenancy.add_migration('adm-escalate', 'ALTER ROLE tenancy_admin SUPERUSER');
\set VERBOSITY default
RESET ROLE;
SELECT rolsuper AS admin_is_superuser FROM pg_roles WHERE rolname = 'tenancy_admin';
SELECT action, role FROM tenancy.audit_log WHERE action IN ('grant_admin', 'revoke_admin') ORDER BY id;

-- revoke_admin() takes it all back.
SELECT tenancy.revoke_admin('tenancy_admin');
SET ROLE tenancy_admin;
SELECT tenancy.register_tenant('adm-five', 'Five');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) FROM tenancy.tenants;
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SELECT has_function_privilege('tenancy_admin', 'tenancy.verify()', 'EXECUTE') AS still_verifies;
DROP SCHEMA adm CASCADE;
