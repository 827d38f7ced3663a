-- Usage and limits without tenancy preloaded (this cluster): the views say
-- how to enable them, the per-tenant settings' limits work without shared
-- memory, and the concurrency cap, which needs it, is refused.
-- (tests/usage/run.sh tests everything on a preloaded cluster.)
\set SHOW_CONTEXT never
\set VERBOSITY default
DO $$ BEGIN
    PERFORM tenancy.register_tenant('use-one', 'One');
    PERFORM tenancy.register_tenant('use-two', 'Two');
END $$;
-- Entered while no tenant has limits: its cache entry has none (the miss
-- left tenancy.tenant_config unread). The limits configured below empty the
-- cache, and entering it again (further down) applies them.
SET ROLE tenancy_app;
SELECT tenancy.set_tenant('use-one') IS NOT NULL AS one;
SHOW statement_timeout;
SELECT tenancy.reset_tenant();
RESET ROLE;
SELECT * FROM tenancy.tenant_stats;
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM tenancy.tenant_activity;
SELECT * FROM tenancy.tenant_stats_info;
SELECT tenancy.tenant_stats_reset();

-- Limits are checked when configured.
SELECT tenancy.set_tenant_config('use-one', 'limits.statement_timeout', '"2 fortnights"');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.set_tenant_config('use-one', 'limits.work_mem', '"1kB"');
SELECT tenancy.set_tenant_config('use-one', 'limits.temp_file_limit', '{"size": 1}');
SELECT tenancy.set_tenant_config('use-one', 'limits.max_concurrent_statements', '0');
SELECT tenancy.set_tenant_config('use-one', 'limits.max_concurrent_statements', '2');
\echo :LAST_ERROR_SQLSTATE
-- Other keys under limits. are the application's own, as before.
SELECT tenancy.set_tenant_config('use-one', 'limits.seats', '25');
SELECT tenancy.set_tenant_config('use-one', 'limits.statement_timeout', '"250ms"');
SELECT tenancy.set_tenant_config('use-one', 'limits.work_mem', '2048');
SELECT tenancy.set_config_default('limits.temp_file_limit', '"10MB"');

SET ROLE tenancy_app;
SET work_mem = '1MB';
SHOW statement_timeout;
-- Entering the context caps the settings (a lower one of the session's stays).
SELECT tenancy.set_tenant('use-one') IS NOT NULL AS one;
SHOW statement_timeout;
SHOW work_mem;
SHOW temp_file_limit;
-- A SET above the cap lasts until the next statement, which runs capped.
SET statement_timeout = '1h';
SELECT pg_sleep(0.5);
\echo :LAST_ERROR_SQLSTATE
SHOW statement_timeout;
-- What PostgreSQL does while it plans the statement (a constant folded)
-- runs capped too.
SET statement_timeout = 0;
SELECT length(md5(repeat('abcdefgh', 25000000)));
\echo :LAST_ERROR_SQLSTATE
-- A hash may use hash_mem_multiplier × work_mem: capped at 2, PostgreSQL's
-- default, under a work_mem limit.
SET hash_mem_multiplier = 1000;
SHOW hash_mem_multiplier;
-- Another tenant: its own limits (here the default's only).
SELECT tenancy.set_tenant('use-two') IS NOT NULL AS two;
SHOW statement_timeout;
SHOW work_mem;
SHOW temp_file_limit;
-- Leaving the context gives the session's own values back.
SELECT tenancy.reset_tenant();
SHOW statement_timeout;
SHOW work_mem;
SHOW temp_file_limit;
-- Nothing is read before a utility statement (it would take the
-- transaction's snapshot): after the catalog changed, a transaction in the
-- tenant's context still chooses its isolation level.
SELECT tenancy.set_tenant('use-one') IS NOT NULL AS one;
RESET ROLE;
SELECT tenancy.set_tenant_config('use-one', 'limits.seats', '26');
SET ROLE tenancy_app;
BEGIN ISOLATION LEVEL REPEATABLE READ;
SHOW transaction_isolation;
SHOW statement_timeout;
COMMIT;
BEGIN;
SET TRANSACTION ISOLATION LEVEL SERIALIZABLE;
SHOW transaction_isolation;
COMMIT;
SELECT tenancy.reset_tenant();
RESET ROLE;
SELECT tenancy.unset_config_default('limits.temp_file_limit');
-- While tenants have limits, verify() warns where track_activities may be
-- off: without it, fast-path calls are not recognised (threat-model row 115).
SELECT count(*) AS warned FROM tenancy.verify() WHERE object = 'track_activities';
ALTER ROLE tenancy_app SET track_activities = off;
SELECT severity, object FROM tenancy.verify() WHERE object = 'track_activities';
ALTER ROLE tenancy_app RESET track_activities;
GRANT SET ON PARAMETER track_activities TO tenancy_app;
SELECT severity, object FROM tenancy.verify() WHERE object = 'track_activities';
REVOKE SET ON PARAMETER track_activities FROM tenancy_app;
GRANT ALTER SYSTEM ON PARAMETER track_activities TO tenancy_app;
SELECT severity, object FROM tenancy.verify() WHERE object = 'track_activities';
REVOKE ALTER SYSTEM ON PARAMETER track_activities FROM tenancy_app;
SELECT count(*) AS warned FROM tenancy.verify() WHERE object = 'track_activities';
