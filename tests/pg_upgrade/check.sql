-- After pg_upgrade, on the new cluster (tenancy installed there, nothing
-- updated): isolation holds for the application role, the administrator's
-- rights, the tenants' states, a token issued before the upgrade and the
-- audit trail (continued, not restarted) are there. :token and :audit_max
-- come from the old cluster.
\set ON_ERROR_STOP 1
\set VERBOSITY sqlstate
SELECT extversion FROM pg_extension WHERE extname = 'tenancy';
SELECT identifier, status, isolation, status_reason FROM tenancy.tenants ORDER BY identifier;
SELECT severity, object, problem FROM tenancy.verify() ORDER BY 1, 2, 3;

SELECT id AS globex_id FROM tenancy.tenants WHERE identifier = 'globex' \gset

SET ROLE tenancy_app;
-- No context: no tenant's rows.
SELECT count(*) AS orders_without_tenant FROM public.orders;
SELECT count(*) AS events_without_tenant FROM public.events;
SELECT tenancy.set_tenant('acme') IS NOT NULL AS acme_set;
SELECT count(*) AS acme_orders, sum(amount) AS acme_amount FROM public.orders;
SELECT what FROM public.events ORDER BY at;
SELECT what FROM public.events_2026 ORDER BY at;
INSERT INTO public.orders (id, amount) VALUES (101, 101);
INSERT INTO public.events (at, what) VALUES ('2026-06-01', 'acme after the upgrade');
-- Another tenant's id, or no tenant's, is refused by the policy's WITH CHECK.
\set ON_ERROR_STOP 0
\set VERBOSITY terse
INSERT INTO public.orders (id, tenant_id, amount) VALUES (102, :'globex_id', 102);
INSERT INTO public.events (tenant_id, at, what) VALUES ('ffffffff-ffff-7fff-bfff-ffffffffffff', '2026-06-02', 'nobody');
\set VERBOSITY sqlstate
\set ON_ERROR_STOP 1
SELECT tenancy.audit('invoice.sent', '{"number": 2}') > :audit_max AS audit_continues;
SELECT tenancy.set_tenant('globex') IS NOT NULL AS globex_set;
SELECT count(*) AS globex_orders, tenancy.config('billing.plan') AS plan FROM public.orders;
SELECT what FROM public.events ORDER BY at;
-- The schema tenant: its tables, its migration's grants, its configuration.
SELECT tenancy.set_tenant('umbrella') IS NOT NULL AS umbrella_set;
INSERT INTO notes VALUES (1, 'after the upgrade');
SELECT body FROM notes;
SELECT tenancy.config('billing.plan') AS umbrella_plan;
-- A token issued on the old cluster, signed with a key the upgrade carried.
SELECT tenancy.set_tenant_token(:'token') IS NOT NULL AS token_accepted;
SELECT tenancy.current_tenant_identifier();
-- Suspended and deleted tenants stay refused.
\set ON_ERROR_STOP 0
SELECT tenancy.set_tenant('initech');
SELECT tenancy.set_tenant('hooli');
SELECT count(*) FROM tenancy.tenants;
\set ON_ERROR_STOP 1
RESET ROLE;

-- The administrator granted on the old cluster still administers.
SET ROLE tenancy_admin;
SELECT (tenancy.activate_tenant('initech')).status AS initech;
SELECT (tenancy.register_tenant('wayne', 'Wayne')).status AS wayne;
RESET ROLE;
SET ROLE tenancy_app;
SELECT tenancy.set_tenant('initech') IS NOT NULL AS initech_set;
SELECT count(*) AS initech_orders FROM public.orders;
RESET ROLE;

-- The audit log: every action of before and after, new rows after the old ones.
SELECT action, count(*) FROM tenancy.audit_log GROUP BY action ORDER BY action;
SELECT count(*) AS rows_after_upgrade, min(id) > :audit_max AS numbered_after_old
FROM tenancy.audit_log WHERE id > :audit_max;
\set ON_ERROR_STOP 0
DELETE FROM tenancy.audit_log;
\set ON_ERROR_STOP 1
SELECT t.identifier, count(*) AS orders FROM public.orders o JOIN tenancy.tenants t ON t.id = o.tenant_id
GROUP BY t.identifier ORDER BY t.identifier;
