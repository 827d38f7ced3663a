-- After ALTER EXTENSION tenancy UPDATE: nothing the previous version held is
-- lost, and everything works on it (as the application role where it matters).
\set ON_ERROR_STOP 1
SELECT identifier, status, isolation, status_reason FROM tenancy.tenants ORDER BY identifier;
SELECT count(*) = (SELECT n FROM public.audit_before) AS audit_rows_kept
  FROM tenancy.audit_log WHERE id <= (SELECT last_id FROM public.audit_before);
SELECT max(id) AS before_check FROM tenancy.audit_log \gset
SELECT relid, tenant_column FROM tenancy.protected_tables;
SELECT name FROM tenancy.migrations;
SELECT count(*) AS signing_keys FROM tenancy.signing_keys;
SELECT * FROM tenancy.verify() WHERE severity = 'error';
SELECT (tenancy.register_tenant('wayne', 'Wayne')).status AS wayne;

SET ROLE tenancy_app;
SELECT tenancy.set_tenant('acme') IS NOT NULL AS acme_set;
SELECT count(*) AS acme_orders, sum(amount) AS acme_amount FROM public.orders;
INSERT INTO public.orders (id, amount) VALUES (11, 11);
SELECT tenancy.set_tenant('globex') IS NOT NULL AS globex_set;
SELECT count(*) AS globex_orders, tenancy.config('billing.plan') AS plan FROM public.orders;
SELECT tenancy.set_tenant('umbrella') IS NOT NULL AS umbrella_set;
INSERT INTO notes VALUES (1, 'kept apart');
SELECT count(*) AS umbrella_notes FROM notes;
SELECT tenancy.set_tenant('wayne') IS NOT NULL AS wayne_set;
SELECT count(*) AS wayne_orders FROM public.orders;
\set ON_ERROR_STOP 0
SELECT tenancy.set_tenant('initech');
\set ON_ERROR_STOP 1
RESET ROLE;
-- What this check itself did, audited.
SELECT action, count(*) FROM tenancy.audit_log WHERE id > :before_check GROUP BY action ORDER BY action;
SELECT t.identifier, count(*) AS orders FROM public.orders o JOIN tenancy.tenants t ON t.id = o.tenant_id
GROUP BY t.identifier ORDER BY t.identifier;
-- A schema tenant can be destroyed (0.4.0's entries for its tables are gone).
SELECT (tenancy.delete_tenant('umbrella', destroy_data => true)).identifier AS destroyed;
SELECT count(*) AS tenant_schema_tables_protected FROM tenancy.protected_tables p
  JOIN pg_class c ON c.oid = p.relid JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname LIKE 'tenant\_%';
