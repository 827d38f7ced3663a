-- The tenancy demo (run by scripts/demo.sh against its scratch cluster).
\set QUIET on
\pset footer off
\set SHOW_CONTEXT never
\set VERBOSITY default

\echo
\echo '== 1. Install the extension and register two tenants (as an administrator)'
\echo
CREATE EXTENSION tenancy;
SELECT identifier, name, status, metadata
  FROM tenancy.register_tenant('acme-corp', 'ACME Corporation', '{"plan": "pro"}');
SELECT identifier, name, status, metadata
  FROM tenancy.register_tenant('globex', 'Globex');

\echo '== 2. A shared table: it has tenant_id uuid NOT NULL, so it is protected on creation'
\echo '      (ENABLE + FORCE row level security, a policy, a default, TRUNCATE blocked)'
\echo
CREATE ROLE demo_app LOGIN;            -- what the application connects as
CREATE TABLE public.orders (
    tenant_id uuid NOT NULL,
    id        bigint GENERATED ALWAYS AS IDENTITY,
    item      text NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
-- Even TRUNCATE, which row-level security does not cover, is granted here.
GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON public.orders TO demo_app;
SELECT id AS globex_id FROM tenancy.tenants WHERE identifier = 'globex' \gset
SELECT relid AS protected_table, tenant_column FROM tenancy.protected_tables;

\echo '== 3. The application sets a tenant per connection; its queries carry no WHERE'
\echo
SET ROLE demo_app;
SELECT tenancy.set_tenant('acme-corp') IS NOT NULL AS "set_tenant('acme-corp')";
INSERT INTO orders (item) VALUES ('anvil'), ('rocket skates');
SELECT tenancy.set_tenant('globex') IS NOT NULL AS "set_tenant('globex')";
INSERT INTO orders (item) VALUES ('hammock');
SELECT tenancy.current_tenant_identifier() AS tenant, item FROM orders;
SELECT tenancy.set_tenant('acme-corp') IS NOT NULL AS "set_tenant('acme-corp')";
SELECT tenancy.current_tenant_identifier() AS tenant, item FROM orders;

\echo '== 4. What an injected or careless query cannot do'
\echo
\echo '-- forge the context:'
SET tenancy.tenant = '00000000-0000-0000-0000-000000000000';
\echo '-- write into another tenant (globex), knowing its id:'
INSERT INTO orders (tenant_id, item) VALUES (:'globex_id', 'planted');
\echo '-- wipe every tenant at once:'
TRUNCATE orders;
\echo '-- without a tenant, nothing is visible:'
SELECT tenancy.reset_tenant();
SELECT count(*) AS visible_rows_without_tenant FROM orders;

\echo
\echo '== 5. Suspension: another connection suspends acme-corp while this one uses it'
\echo
SELECT tenancy.set_tenant('acme-corp') IS NOT NULL AS "set_tenant('acme-corp')";
SELECT item FROM orders;
\! psql -X -q -t -A -c "SELECT 'other connection: ' || status FROM tenancy.suspend_tenant('acme-corp', 'unpaid invoice')"
\echo '-- this connection, next statement:'
SELECT item FROM orders;
SELECT tenancy.set_tenant('acme-corp');
RESET ROLE;
SELECT identifier, status FROM tenancy.activate_tenant('acme-corp');
SET ROLE demo_app;
SELECT tenancy.set_tenant('acme-corp') IS NOT NULL AS "set_tenant('acme-corp') again";
SELECT item FROM orders;
RESET ROLE;

\echo
\echo '== 6. A schema tenant next to the shared ones, built from migrations'
\echo
-- Migrations run as their own role (no SUPERUSER, no BYPASSRLS), which owns the tenant schemas.
CREATE ROLE demo_migrator NOLOGIN;
SELECT tenancy.set_migration_owner('demo_migrator');
ALTER DEFAULT PRIVILEGES FOR ROLE demo_migrator GRANT SELECT, INSERT ON TABLES TO demo_app;
CALL tenancy.add_migration('0001-documents', 'CREATE TABLE documents (title text NOT NULL)');
\echo '(no schema tenant exists yet: the migration is recorded for the ones to come)'
SELECT identifier, isolation, schema_name FROM tenancy.register_tenant('initech', 'Initech', '{}', 'schema');
SET ROLE demo_app;
SELECT tenancy.set_tenant('initech') IS NOT NULL AS "set_tenant('initech')";
SELECT current_setting('search_path') AS search_path;
INSERT INTO documents (title) VALUES ('TPS report');
SELECT title FROM documents;
SELECT tenancy.set_tenant('acme-corp') IS NOT NULL AS "set_tenant('acme-corp')";
SELECT nspname AS initech_schema FROM pg_namespace WHERE nspname LIKE 'tenant\_%' \gset
\echo '-- acme-corp reading initech''s schema by its qualified name:'
SELECT count(*) AS initech_documents_seen FROM :"initech_schema".documents;
RESET ROLE;
CALL tenancy.add_migration('0002-tags', 'CREATE TABLE tags (name text PRIMARY KEY)');

\echo
\echo '== 7. Configuration: an application default and a tenant override'
\echo
SELECT tenancy.set_config_default('max_users', '10');
SELECT tenancy.set_tenant_config('acme-corp', 'max_users', '250');
SET ROLE demo_app;
SELECT tenancy.set_tenant('acme-corp') IS NOT NULL AS "set_tenant('acme-corp')";
SELECT tenancy.config('max_users') AS "acme-corp max_users";
SELECT tenancy.set_tenant('globex') IS NOT NULL AS "set_tenant('globex')";
SELECT tenancy.config('max_users') AS "globex max_users (default)";
RESET ROLE;

\echo
\echo '== 8. Signed context: a gateway issues a token, the application can only present it'
\echo
SELECT tenancy.add_signing_key('k1');
CREATE ROLE demo_gateway;
GRANT EXECUTE ON FUNCTION tenancy.issue_token(text, interval) TO demo_gateway;
SET ROLE demo_gateway;
SELECT tenancy.issue_token('acme-corp', '15 minutes') AS token \gset
RESET ROLE;
\echo 'token issued by the gateway:' :token
ALTER ROLE demo_app SET tenancy.require_token = on;
SET tenancy.require_token = on;
SET ROLE demo_app;
\echo '-- picking a tenant by name is refused now:'
SELECT tenancy.set_tenant('globex');
SELECT tenancy.set_tenant_token(:'token') IS NOT NULL AS "set_tenant_token(token)";
SELECT tenancy.current_tenant_identifier() AS tenant, item FROM orders;
\echo '-- a token whose expiry was edited fails verification:'
SELECT tenancy.set_tenant_token(regexp_replace(:'token', '\.[0-9]+\.', '.9999999999.'));
RESET ROLE;
RESET tenancy.require_token;

\echo
\echo '== 9. Lifecycle: update, soft delete, destroy; the audit trail of it all'
\echo
SELECT identifier, name, metadata FROM tenancy.update_tenant('globex', name => 'Globex Corporation',
                                                            metadata => '{"plan": "enterprise"}');
SELECT identifier, status FROM tenancy.delete_tenant('globex');
SELECT identifier, status FROM tenancy.delete_tenant('globex', destroy_data => true);
SELECT count(*) AS globex_rows_left FROM orders WHERE item = 'hammock';
SELECT at::time(0) AS at, role, tenant_identifier AS tenant, action, details
  FROM tenancy.audit_log ORDER BY id;

\echo '== 10. verify(): what an operator still has to fix on this cluster'
\echo
SELECT severity, object, problem FROM tenancy.verify();
\echo
\echo 'Done. The scratch cluster keeps running: psql -h 127.0.0.1 -p' :PORT '-U postgres'
\echo 'Stop it with: scripts/demo.sh stop'
