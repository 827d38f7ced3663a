-- The tenant context: set_tenant / current_tenant / reset_tenant, as the
-- application role, and every way a plain role might try to forge it.
\set SHOW_CONTEXT never
SELECT identifier FROM tenancy.register_tenant('alpha', 'Alpha');
SELECT identifier FROM tenancy.register_tenant('beta', 'Beta');
SELECT identifier FROM tenancy.register_tenant('gamma', 'Gamma');
SELECT identifier FROM tenancy.suspend_tenant('gamma', 'testing');

SET ROLE tenancy_app;
-- No context: NULL (policies compare with NULL and match no row).
SELECT tenancy.current_tenant() IS NULL AS no_tenant, tenancy.current_tenant_identifier();

-- set_tenant returns the id; the accessors agree.
SELECT tenancy.set_tenant('alpha') = (SELECT tenancy.current_tenant()) AS same_id;
SELECT tenancy.current_tenant_identifier();
SELECT tenancy.set_tenant('beta') IS NOT NULL AS switched, tenancy.current_tenant_identifier();

-- Refused: unknown (P0002), suspended (55000), NULL (22004). The context is unchanged.
SELECT tenancy.set_tenant('nobody');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.set_tenant('gamma');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.set_tenant(NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.set_tenant('alpha', NULL);
SELECT tenancy.current_tenant_identifier();

-- Forging the setting directly is refused (it is superuser-only).
SET tenancy.tenant = '00000000-0000-0000-0000-000000000000';
\echo :LAST_ERROR_SQLSTATE
SELECT set_config('tenancy.tenant', '00000000-0000-0000-0000-000000000000', false);
ALTER ROLE tenancy_app SET tenancy.tenant = '00000000-0000-0000-0000-000000000000';
-- The prefix is reserved: no placeholder can be invented next to it.
SET tenancy.anything = 'x';
SELECT tenancy.current_tenant_identifier();

-- RESET of the setting itself is refused like SET ...
RESET tenancy.tenant;
SELECT tenancy.current_tenant_identifier();
-- ... but RESET ALL and DISCARD ALL (pooler reset queries) clear the context: fail closed.
RESET ALL;
SELECT tenancy.current_tenant() IS NULL AS cleared_by_reset_all;
SELECT tenancy.set_tenant('alpha') IS NOT NULL AS set;
DISCARD ALL;
SET ROLE tenancy_app;
SELECT tenancy.current_tenant() IS NULL AS cleared_by_discard_all;
SELECT tenancy.set_tenant('alpha') IS NOT NULL AS set;
SELECT tenancy.reset_tenant();
SELECT tenancy.current_tenant() IS NULL AS cleared_by_reset_tenant;

-- Transaction scope (is_local): an error outside a transaction block ...
SELECT tenancy.set_tenant('alpha', is_local => true);
\echo :LAST_ERROR_SQLSTATE
-- ... and gone at commit inside one.
BEGIN;
SELECT tenancy.set_tenant('alpha', is_local => true) IS NOT NULL AS set_local;
SELECT tenancy.current_tenant_identifier();
COMMIT;
SELECT tenancy.current_tenant() IS NULL AS gone_after_commit;
-- A local context overrides the session one and reverts to it.
SELECT tenancy.set_tenant('beta') IS NOT NULL AS session_beta;
BEGIN;
SELECT tenancy.set_tenant('alpha', true) IS NOT NULL AS local_alpha;
SELECT tenancy.current_tenant_identifier();
COMMIT;
SELECT tenancy.current_tenant_identifier() AS back_to_session;
-- A session-scoped change rolls back with its transaction, like SET.
BEGIN;
SELECT tenancy.set_tenant('alpha') IS NOT NULL AS set;
ROLLBACK;
SELECT tenancy.current_tenant_identifier() AS after_rollback;

-- Open cursors pin the tenant: switching is refused until they are closed.
BEGIN;
DECLARE c CURSOR FOR SELECT tenancy.current_tenant_identifier();
SELECT tenancy.set_tenant('alpha');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
BEGIN;
DECLARE c CURSOR WITH HOLD FOR SELECT tenancy.current_tenant_identifier();
COMMIT;
SELECT tenancy.set_tenant('alpha');
SELECT tenancy.reset_tenant();
-- Setting the same tenant again is no switch.
SELECT tenancy.set_tenant('beta') IS NOT NULL AS same_tenant_ok;
CLOSE c;
SELECT tenancy.set_tenant('alpha') IS NOT NULL AS switched_after_close;

-- Generic plans do not keep an old tenant: the accessor is STABLE, not folded.
SET plan_cache_mode = force_generic_plan;
PREPARE whoami AS SELECT tenancy.current_tenant_identifier();
EXECUTE whoami;
SELECT tenancy.set_tenant('beta') IS NOT NULL AS switched;
EXECUTE whoami;
DEALLOCATE whoami;
RESET plan_cache_mode;
SELECT provolatile FROM pg_proc WHERE oid = 'tenancy.current_tenant'::regproc;

-- A tenant suspended while in use: the next statement refuses it (55000).
RESET ROLE;
SELECT status FROM tenancy.suspend_tenant('beta');
SET ROLE tenancy_app;
SELECT tenancy.current_tenant();
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.current_tenant_identifier();
SELECT tenancy.reset_tenant();
RESET ROLE;
SELECT status FROM tenancy.activate_tenant('beta');

-- require_tenant: no context raises instead of returning NULL.
SET tenancy.require_tenant = on;
SET ROLE tenancy_app;
SELECT tenancy.current_tenant();
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.set_tenant('alpha') IS NOT NULL AS set;
SELECT tenancy.current_tenant_identifier();
SELECT tenancy.reset_tenant();
RESET ROLE;
RESET tenancy.require_tenant;
-- ... and an application role cannot turn it off.
SET ROLE tenancy_app;
SET tenancy.require_tenant = off;
RESET ROLE;

-- Roles that bypass row-level security never get a context (42501).
SELECT tenancy.set_tenant('alpha');
\echo :LAST_ERROR_SQLSTATE
SET ROLE tenancy_bypass;
SELECT tenancy.set_tenant('alpha');
RESET ROLE;
-- The answer is kept per backend, and forgotten when the role changes.
CREATE ROLE regress_flipping LOGIN;
SET ROLE regress_flipping;
SELECT tenancy.set_tenant('alpha') IS NOT NULL AS allowed;
RESET ROLE;
ALTER ROLE regress_flipping BYPASSRLS;
SET ROLE regress_flipping;
SELECT tenancy.set_tenant('alpha');
RESET ROLE;
ALTER ROLE regress_flipping NOBYPASSRLS;
SET ROLE regress_flipping;
SELECT tenancy.set_tenant('alpha') IS NOT NULL AS allowed_again;
SELECT tenancy.reset_tenant();
RESET ROLE;
DROP ROLE regress_flipping;

-- A superuser may pin a role to a tenant; the value must be a tenant id.
ALTER ROLE tenancy_app SET tenancy.tenant = 'not-a-uuid';
\echo :LAST_ERROR_SQLSTATE

-- The cache: hits after the first lookup, dropped when the catalog changes.
SET ROLE tenancy_app;
SELECT tenancy.set_tenant('alpha') IS NOT NULL AS warm;
SELECT hits AS h0, invalidations AS i0 FROM tenancy.cache_stats() \gset
SELECT tenancy.set_tenant('alpha') IS NOT NULL AS hit;
SELECT hits - :h0 AS new_hits, capacity FROM tenancy.cache_stats();
RESET ROLE;
-- Plain DML on the catalog invalidates too (statement trigger).
UPDATE tenancy.tenants SET name = 'Alpha Inc.' WHERE identifier = 'alpha';
SELECT invalidations > :i0 AS invalidated, entries FROM tenancy.cache_stats();
UPDATE tenancy.tenants SET status = 'suspended', suspended_at = now() WHERE identifier = 'alpha';
SET ROLE tenancy_app;
SELECT tenancy.current_tenant_identifier();
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.reset_tenant();
RESET ROLE;
SELECT status FROM tenancy.activate_tenant('alpha');
