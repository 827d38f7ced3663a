-- Fill the previous version with everything an installation accumulates:
-- shared and schema tenants in every state, configuration, signing keys,
-- migrations, a protected table with rows, the audit trail.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
SELECT tenancy.register_tenant('acme', 'ACME');
SELECT tenancy.register_tenant('globex', 'Globex', '{"plan": "pro"}');
SELECT tenancy.register_tenant('initech', 'Initech');
SELECT tenancy.suspend_tenant('initech', 'unpaid');
SELECT tenancy.register_tenant('hooli', 'Hooli');
SELECT tenancy.delete_tenant('hooli');
SELECT tenancy.set_config_default('billing.plan', '"free"');
SELECT tenancy.set_tenant_config('globex', 'billing.plan', '"pro"');
SELECT tenancy.add_signing_key('k1');
-- Since 0.4.0 migrations run as a migration owner.
DO $$ BEGIN
    IF to_regprocedure('tenancy.set_migration_owner(text)') IS NOT NULL THEN
        PERFORM tenancy.set_migration_owner('tenancy_migrator');
    END IF;
END $$;
CALL tenancy.add_migration('0001-notes', 'CREATE TABLE notes (id bigint PRIMARY KEY, body text); GRANT SELECT, INSERT ON notes TO tenancy_app');
SELECT tenancy.register_tenant('umbrella', 'Umbrella', '{}', 'schema');
-- A migration table with a tenant column (0.4.0's auto-protect recorded it).
CALL tenancy.add_migration('0002-rows', 'CREATE TABLE tenant_rows (tenant_id uuid NOT NULL, x int)');

CREATE TABLE public.orders (id bigint PRIMARY KEY, tenant_id uuid NOT NULL, amount int);
SELECT tenancy.protect('public.orders'); -- auto-protect did it already: idempotent
GRANT SELECT, INSERT ON public.orders TO tenancy_app;
INSERT INTO public.orders
SELECT g, (SELECT id FROM tenancy.tenants WHERE identifier = CASE WHEN g % 2 = 0 THEN 'acme' ELSE 'globex' END), g
FROM generate_series(1, 10) g;
-- What the audit log held before the update (what each release audits
-- differs: 0.4.0 audited auto-protecting a tenant schema's table).
CREATE TABLE public.audit_before AS SELECT count(*) AS n, max(id) AS last_id FROM tenancy.audit_log;
