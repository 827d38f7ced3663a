-- Tenant lifecycle: validation, state machine, privileges, audit, all-or-nothing.
\set SHOW_CONTEXT never
SET client_min_messages = notice;

-- Register: the row comes back with a time-ordered id and defaults.
SELECT identifier, name, status, isolation, metadata, schema_name,
       created_at = updated_at AS fresh, suspended_at, deleted_at
  FROM tenancy.register_tenant('acme-corp', 'ACME Corporation');
SELECT identifier, metadata
  FROM tenancy.register_tenant('globex', 'Globex', '{"plan": "pro"}', 'shared');
SELECT substr(id::text, 15, 1) AS uuid_version FROM tenancy.tenants WHERE identifier = 'acme-corp';

-- Each class of invalid identifier: 22023 and a hint.
SELECT tenancy.register_tenant('ab', 'Too short');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.register_tenant(repeat('a', 64), 'Too long');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.register_tenant('1acme', 'Starts with a digit');
SELECT tenancy.register_tenant('-acme', 'Leading hyphen');
SELECT tenancy.register_tenant('acme-', 'Trailing hyphen');
SELECT tenancy.register_tenant('ac--me', 'Double hyphen');
SELECT tenancy.register_tenant('Acme', 'Uppercase');
SELECT tenancy.register_tenant('acme_corp', 'Underscore');
SELECT tenancy.register_tenant('acmé', 'Not ASCII');
SELECT tenancy.register_tenant('acme''; DROP TABLE tenancy.tenants; --', 'Injection');
\echo :LAST_ERROR_SQLSTATE
-- Longest valid identifier.
SELECT length(identifier) FROM tenancy.register_tenant(repeat('a', 63), 'Sixty-three');

-- Names and metadata.
SELECT tenancy.register_tenant('blank-name', '');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.register_tenant('blank-name', '   ');
SELECT tenancy.register_tenant('long-name', repeat('x', 201));
SELECT length(name) FROM tenancy.register_tenant('long-name', repeat('é', 200));
SELECT tenancy.register_tenant('bad-meta', 'Bad metadata', '[1, 2]');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.register_tenant('bad-meta', 'Bad metadata', '"text"');
-- Nested deeper than the JSON decoder allows: 22023, not an internal error.
SELECT tenancy.register_tenant('deep-meta', 'Deep', (repeat('{"a": ', 200) || '1' || repeat('}', 200))::jsonb);
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.set_config_default('deep', (repeat('[', 200) || repeat(']', 200))::jsonb);
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.register_tenant('bad-iso', 'Bad isolation', '{}', 'rows');
\echo :LAST_ERROR_SQLSTATE

-- NULL arguments are errors (22004), not silent NULL results.
SELECT tenancy.register_tenant(NULL, 'No identifier');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.register_tenant('no-name', NULL);
SELECT tenancy.register_tenant('no-meta', 'No metadata', NULL);
SELECT tenancy.suspend_tenant(NULL);
SELECT tenancy.delete_tenant('acme-corp', NULL);
\echo :LAST_ERROR_SQLSTATE

-- Duplicates: 23505.
SELECT tenancy.register_tenant('acme-corp', 'ACME again');
\echo :LAST_ERROR_SQLSTATE

-- Bad input left nothing behind: only the four valid registrations exist,
-- each with exactly one audit row.
SELECT count(*) AS tenants FROM tenancy.tenants;
SELECT action, count(*) FROM tenancy.audit_log GROUP BY action ORDER BY action;

-- The plain-DML safety net: the catalog's CHECK constraints hold the same rules.
\set VERBOSITY terse
INSERT INTO tenancy.tenants (identifier, name) VALUES ('Bad--Slug', 'x');
\set VERBOSITY default

-- Unknown tenants: P0002.
SELECT tenancy.suspend_tenant('nobody');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.activate_tenant('nobody');
SELECT tenancy.update_tenant('nobody', 'x');
SELECT tenancy.delete_tenant('nobody');

-- State machine: active -> suspended -> active -> deleted (terminal).
SELECT status, status_reason, suspended_at IS NOT NULL AS has_suspended_at
  FROM tenancy.suspend_tenant('acme-corp', 'unpaid invoice');
SELECT tenancy.suspend_tenant('acme-corp');
\echo :LAST_ERROR_SQLSTATE
SELECT status, status_reason, suspended_at FROM tenancy.activate_tenant('acme-corp');
SELECT tenancy.activate_tenant('acme-corp');
\echo :LAST_ERROR_SQLSTATE

-- update_tenant: NULL leaves a field as it is; metadata is replaced whole.
SELECT name, metadata FROM tenancy.update_tenant('globex', name => 'Globex Corporation');
SELECT name, metadata FROM tenancy.update_tenant('globex', metadata => '{"plan": "enterprise"}');
SELECT name, metadata FROM tenancy.update_tenant('globex');
SELECT tenancy.update_tenant('globex', name => '');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.update_tenant('globex', metadata => '[]');

-- Soft delete keeps the row (and reserves the identifier).
SELECT status, deleted_at IS NOT NULL AS has_deleted_at FROM tenancy.delete_tenant('globex');
SELECT tenancy.delete_tenant('globex');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.activate_tenant('globex');
SELECT tenancy.suspend_tenant('globex');
SELECT tenancy.update_tenant('globex', 'New name');
SELECT tenancy.register_tenant('globex', 'Globex reborn');
\echo :LAST_ERROR_SQLSTATE
-- Suspended tenants can be deleted too.
SELECT status FROM tenancy.suspend_tenant(repeat('a', 63));
SELECT status FROM tenancy.delete_tenant(repeat('a', 63));

-- Destroy removes the row for good (from any state) and frees the identifier.
SELECT identifier, status FROM tenancy.delete_tenant('globex', destroy_data => true);
SELECT count(*) FROM tenancy.tenants WHERE identifier = 'globex';
SELECT identifier, status FROM tenancy.register_tenant('globex', 'Globex reborn');

-- Every change wrote one audit row in its own transaction, with who and what.
SELECT tenant_identifier, action, left(details::text, 72) AS details, actor = session_user AS actor_ok, role,
       transaction_id IS NOT NULL AS has_xid, backend_pid = pg_backend_pid() AS same_backend
  FROM tenancy.audit_log ORDER BY id;

-- A rolled-back change leaves no row and no audit entry.
BEGIN;
SELECT identifier FROM tenancy.register_tenant('rolled-back', 'Rolled back');
ROLLBACK;
SELECT count(*) FROM tenancy.tenants WHERE identifier = 'rolled-back';
SELECT count(*) FROM tenancy.audit_log WHERE tenant_identifier = 'rolled-back';

-- The audit log is append-only, for superusers too.
UPDATE tenancy.audit_log SET action = 'forged';
\echo :LAST_ERROR_SQLSTATE
DELETE FROM tenancy.audit_log;
TRUNCATE tenancy.audit_log;
SET session_replication_role = replica;
DELETE FROM tenancy.audit_log;
RESET session_replication_role;
-- Retention is the one way to remove entries, and it is audited itself.
SELECT tenancy.purge_audit_log('1 hour');
SELECT tenancy.purge_audit_log(NULL);
-- A negative interval would reach into the future and delete the whole log.
SELECT tenancy.purge_audit_log('-1 day');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) > 0 AS kept FROM tenancy.audit_log WHERE action <> 'purge_audit';
SELECT action, details FROM tenancy.audit_log WHERE action = 'purge_audit';

-- Privileges: the application role may not administer tenants.
SET ROLE tenancy_app;
SELECT tenancy.register_tenant('sneaky', 'Sneaky');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.suspend_tenant('acme-corp');
SELECT tenancy.delete_tenant('acme-corp', true);
SELECT tenancy.purge_audit_log('0 seconds');
SELECT * FROM tenancy.tenants;
SELECT * FROM tenancy.audit_log;
UPDATE tenancy.tenants SET status = 'active';
RESET ROLE;

-- An administrator granted the functions needs no privilege on the tables:
-- the functions run their SQL as the catalog owner, and audit the caller's role.
GRANT EXECUTE ON FUNCTION tenancy.register_tenant(text, text, jsonb, text),
                          tenancy.suspend_tenant(text, text) TO tenancy_admin;
SET ROLE tenancy_admin;
SELECT identifier, status FROM tenancy.register_tenant('initech', 'Initech');
SELECT identifier, status FROM tenancy.suspend_tenant('initech', 'by admin');
SELECT tenancy.activate_tenant('initech');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) FROM tenancy.tenants;
RESET ROLE;
SELECT role, action FROM tenancy.audit_log WHERE tenant_identifier = 'initech' ORDER BY id;
REVOKE EXECUTE ON FUNCTION tenancy.register_tenant(text, text, jsonb, text),
                           tenancy.suspend_tenant(text, text) FROM tenancy_admin;
