-- After tests/upgrade/fill.sql, on the old cluster: what else pg_upgrade must
-- carry over. An administrator role, a partitioned protected table, the
-- application's own audit events, a configuration key of a schema tenant.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
SELECT tenancy.grant_admin('tenancy_admin');
CREATE TABLE public.events (tenant_id uuid NOT NULL, at date NOT NULL, what text) PARTITION BY RANGE (at);
CREATE TABLE public.events_2026 PARTITION OF public.events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
GRANT SELECT, INSERT ON public.events TO tenancy_app;
-- A partition queried directly has its own policy (auto-protect gave it one).
GRANT SELECT ON public.events_2026 TO tenancy_app;
SELECT tenancy.set_tenant_config('umbrella', 'billing.plan', '"enterprise"');
SET ROLE tenancy_app;
SELECT tenancy.set_tenant('acme') IS NOT NULL;
INSERT INTO public.events (at, what) VALUES ('2026-03-01', 'acme before the upgrade');
SELECT tenancy.audit('invoice.sent', '{"number": 1}') > 0;
SELECT tenancy.set_tenant('globex') IS NOT NULL;
INSERT INTO public.events (at, what) VALUES ('2026-04-01', 'globex before the upgrade');
RESET ROLE;
