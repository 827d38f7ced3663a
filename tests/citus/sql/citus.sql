-- tenancy on Citus: a coordinator (27640) and two workers (27641, 27642),
-- started by tests/citus/run.sh. Isolation as the application role on every
-- node, forgery and replay of the context, suspension, a tenant isolated to
-- a shard of its own, auto-protect on workers, verify() over placements.
\set SHOW_CONTEXT never
SET client_min_messages = warning;
CREATE EXTENSION tenancy;
SELECT tenancy.set_migration_owner('tenancy_migrator');
-- One catalog for the cluster: tenants, configuration and migrations become
-- reference tables; the workers get the coordinator's cluster key.
SELECT tenancy.distribute();
SELECT logicalrelid, partmethod FROM pg_dist_partition
 WHERE logicalrelid::text LIKE 'tenancy.%' ORDER BY 1;
SELECT (tenancy.register_tenant('alpha', 'Alpha')).identifier;
SELECT (tenancy.register_tenant('beta', 'Beta')).identifier;
SELECT id AS beta FROM tenancy.tenants WHERE identifier = 'beta' \gset

-- Tables: auto-protected on creation, then distributed through tenancy (Citus
-- refuses to distribute tables with triggers or sub-select policies):
-- a distributed table, a co-located one and a reference table.
CREATE TABLE orders (tenant_id uuid NOT NULL, id bigint NOT NULL, amount int, PRIMARY KEY (tenant_id, id));
CREATE TABLE order_items (tenant_id uuid NOT NULL, order_id bigint NOT NULL, item text);
CREATE TABLE plans (tenant_id uuid NOT NULL, name text);
SELECT tenancy.distribute_table('orders');
SELECT tenancy.distribute_table('order_items', colocate_with => 'orders');
SELECT tenancy.distribute_table('plans', reference => true);
-- Citus creates the shards as the table's owner: one that cannot log in is
-- refused first, with what to do.
CREATE TABLE owned_elsewhere (tenant_id uuid NOT NULL);
ALTER TABLE owned_elsewhere OWNER TO tenancy_owner;
SELECT tenancy.distribute_table('owned_elsewhere');
DROP TABLE owned_elsewhere;
-- A table's owner distributes its own table without administering
-- tenants; another role may not.
CREATE ROLE citus_table_owner LOGIN;
GRANT CREATE ON SCHEMA public TO citus_table_owner;
\c - citus_table_owner
CREATE TABLE own_items (tenant_id uuid NOT NULL, id bigint NOT NULL);
SELECT tenancy.distribute_table('own_items');
\c - tenancy_app
SELECT tenancy.distribute_table('own_items');
\c - postgres
SELECT partmethod, relrowsecurity AND relforcerowsecurity AS protected
  FROM pg_dist_partition d JOIN pg_class c ON c.oid = d.logicalrelid WHERE logicalrelid = 'own_items'::regclass;
DROP TABLE own_items;
REVOKE CREATE ON SCHEMA public FROM citus_table_owner;
DROP ROLE citus_table_owner;
SELECT p.relid, d.partmethod, c.relrowsecurity, c.relforcerowsecurity
  FROM tenancy.protected_tables p JOIN pg_dist_partition d ON d.logicalrelid = p.relid
  JOIN pg_class c ON c.oid = p.relid ORDER BY 1;
SELECT polrelid::regclass, pg_get_expr(polqual, polrelid) FROM pg_policy
 WHERE polrelid IN ('orders'::regclass, 'plans'::regclass) ORDER BY 1;
GRANT SELECT, INSERT, UPDATE, DELETE ON orders, order_items, plans TO tenancy_app;
INSERT INTO orders SELECT t.id, g, g FROM tenancy.tenants t, generate_series(1, 10) g;
INSERT INTO order_items SELECT t.id, g, 'item' FROM tenancy.tenants t, generate_series(1, 10) g;
INSERT INTO plans SELECT t.id, t.identifier FROM tenancy.tenants t;
SELECT count(*) AS orders_of_all_tenants FROM orders;
SELECT count(*) AS errors FROM tenancy.verify() WHERE severity = 'error';

-- The application role. A session-scoped context would not reach the
-- workers: it is refused.
\c - tenancy_app
SELECT tenancy.set_tenant('alpha');
\echo :LAST_ERROR_SQLSTATE
-- Transaction-scoped: router and multi-shard reads, writes, the reference
-- table and a co-located join see alpha's rows only.
BEGIN;
SELECT tenancy.set_tenant('alpha', true) IS NOT NULL AS as_alpha;
SELECT count(*) AS multi_shard, sum(amount) FROM orders;
SELECT count(*) AS router_own FROM orders WHERE tenant_id = tenancy.current_tenant();
SELECT count(*) AS router_beta FROM orders WHERE tenant_id = :'beta';
SELECT count(*) AS colocated_join FROM orders o JOIN order_items i
    ON i.tenant_id = o.tenant_id AND i.order_id = o.id;
SELECT name FROM plans;
INSERT INTO orders VALUES (tenancy.current_tenant(), 11, 11);
-- The distribution column keeps the default it had before: an insert need
-- not name its tenant.
INSERT INTO orders (id, amount) VALUES (13, 13);
UPDATE orders SET amount = 0 WHERE tenant_id = :'beta';
COMMIT;
BEGIN;
SELECT tenancy.set_tenant('alpha', true) IS NOT NULL AS as_alpha;
\set VERBOSITY sqlstate
INSERT INTO orders VALUES (:'beta', 12, 12);
\set VERBOSITY default
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
BEGIN;
SELECT tenancy.set_tenant('beta', true) IS NOT NULL AS as_beta;
SELECT count(*) AS beta_rows, sum(amount) AS beta_amount FROM orders;
COMMIT;
SELECT count(*) AS without_context FROM orders;

-- The context that a transaction carried to the workers opens nothing in
-- another transaction, on the coordinator or on a direct connection to a
-- worker; nor does an edited or a made-up one.
BEGIN;
SELECT tenancy.set_tenant('alpha', true) IS NOT NULL AS as_alpha;
SELECT current_setting('tenancy.context') AS carrier \gset
COMMIT;
BEGIN;
SET LOCAL citus.propagate_set_commands = 'local';
SET LOCAL tenancy.context = :'carrier';
SELECT count(*) FROM orders;
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
BEGIN;
SET LOCAL citus.propagate_set_commands = 'local';
SET LOCAL tenancy.context = 'c1.forged';
SELECT count(*) FROM orders;
ROLLBACK;
\c - postgres
SELECT shard_name('orders'::regclass, s.shardid) AS shard
  FROM pg_dist_shard s JOIN pg_dist_placement p USING (shardid)
  JOIN pg_dist_node n ON n.groupid = p.groupid
 WHERE s.logicalrelid = 'orders'::regclass AND n.nodeport = 27641
 ORDER BY s.shardid LIMIT 1 \gset
\c "host=127.0.0.1 port=27641 dbname=tenancy_citus user=tenancy_app"
BEGIN;
SET LOCAL tenancy.context = :'carrier';
SELECT count(*) FROM :shard;
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
BEGIN;
SELECT assign_distributed_transaction_id(0, 1, now());
SET LOCAL tenancy.context = :'carrier';
SELECT count(*) FROM :shard;
ROLLBACK;
SELECT count(*) AS worker_without_context FROM :shard;
SELECT count(*) AS worker_shell_without_context FROM orders;
SET tenancy.tenant = :'beta';
\echo :LAST_ERROR_SQLSTATE

-- One catalog: the workers hold the same tenants. A suspension committed on
-- the coordinator is refused from the next transaction on, on every node:
-- contexts live one transaction.
\c - postgres
SELECT identifier, status FROM tenancy.tenants ORDER BY 1;
\c "host=127.0.0.1 port=27640 dbname=tenancy_citus user=postgres"
SELECT status FROM tenancy.suspend_tenant('beta', 'unpaid');
\c "host=127.0.0.1 port=27642 dbname=tenancy_citus user=postgres"
SELECT identifier, status FROM tenancy.tenants ORDER BY 1;
\c "host=127.0.0.1 port=27640 dbname=tenancy_citus user=tenancy_app"
BEGIN;
SELECT tenancy.set_tenant('beta', true);
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
\c - postgres
SELECT status FROM tenancy.activate_tenant('beta');

-- A tenant isolated to a shard of its own (and the co-located tables with
-- it): the new shards carry the protection; verify() checks every placement.
SELECT isolate_tenant_to_new_shard('orders', :'beta', 'CASCADE', shard_transfer_mode => 'block_writes') > 0 AS isolated;
SELECT count(*) AS placement_errors FROM tenancy.verify() WHERE severity = 'error';
\c - tenancy_app
SELECT count(*) AS without_context_after_isolation FROM order_items;
BEGIN;
SELECT tenancy.set_tenant('alpha', true) IS NOT NULL AS as_alpha;
SELECT count(*) AS alpha_items FROM order_items;
COMMIT;
-- A shard moved to another worker and a shard split in two (with its
-- co-located shards) keep the protection too.
\c - postgres
SELECT s.shardid AS moved FROM pg_dist_shard s JOIN pg_dist_placement p USING (shardid)
  JOIN pg_dist_node n ON n.groupid = p.groupid
 WHERE s.logicalrelid = 'orders'::regclass AND n.nodeport = 27641 ORDER BY s.shardid LIMIT 1 \gset
SELECT citus_move_shard_placement(:moved, '127.0.0.1', 27641, '127.0.0.1', 27642,
                                  shard_transfer_mode => 'block_writes');
SELECT shardid AS split, ((shardminvalue::bigint + shardmaxvalue::bigint) / 2)::text AS point
  FROM pg_dist_shard WHERE logicalrelid = 'orders'::regclass ORDER BY shardid LIMIT 1 \gset
SELECT citus_split_shard_by_split_points(:split, ARRAY[:'point'],
    ARRAY[(SELECT nodeid FROM pg_dist_node WHERE nodeport = 27641),
          (SELECT nodeid FROM pg_dist_node WHERE nodeport = 27642)], 'block_writes');
SELECT count(*) AS placement_errors_after_move_and_split FROM tenancy.verify() WHERE severity = 'error';
\c - tenancy_app
SELECT count(*) AS without_context_after_move_and_split FROM orders;
BEGIN;
SELECT tenancy.set_tenant('alpha', true) IS NOT NULL AS as_alpha;
SELECT count(*) AS alpha_orders FROM orders;
COMMIT;
-- A placement whose protection was changed on a worker is reported.
\c - postgres
SELECT shard_name('orders'::regclass, s.shardid) AS shard
  FROM pg_dist_shard s JOIN pg_dist_placement p USING (shardid)
  JOIN pg_dist_node n ON n.groupid = p.groupid
 WHERE s.logicalrelid = 'orders'::regclass AND n.nodeport = 27642
 ORDER BY s.shardid LIMIT 1 \gset
\c "host=127.0.0.1 port=27642 dbname=tenancy_citus user=postgres"
ALTER TABLE :shard NO FORCE ROW LEVEL SECURITY;
\c "host=127.0.0.1 port=27640 dbname=tenancy_citus user=postgres"
SELECT severity, problem FROM tenancy.verify() WHERE object LIKE 'shard %';
SELECT tenancy.protect('orders');
SELECT count(*) AS placement_errors_after_protect FROM tenancy.verify() WHERE object LIKE 'shard %';

-- Auto-protect never acts on a worker: its tables are the coordinator's
-- shells and shards.
\c "host=127.0.0.1 port=27641 dbname=tenancy_citus user=postgres"
CREATE TABLE worker_local (tenant_id uuid NOT NULL);
SELECT count(*) AS recorded_on_worker FROM tenancy.protected_tables WHERE relid = 'worker_local'::regclass;
DROP TABLE worker_local;

-- Schema tenants on Citus' schema-based sharding: a tenant's schema becomes
-- a distributed schema, tables of later migrations join it, and they keep
-- their pinned policy and guard. The migration owner must be able to log in
-- to the workers (Citus connects as the current user) and create schemas (it
-- creates them on Citus, so that its own connections to the workers see them).
\c "host=127.0.0.1 port=27640 dbname=tenancy_citus user=postgres"
SET client_min_messages = warning;
ALTER ROLE tenancy_migrator LOGIN;
GRANT CREATE ON DATABASE tenancy_citus TO tenancy_migrator;
ALTER DEFAULT PRIVILEGES FOR ROLE tenancy_migrator GRANT SELECT, INSERT ON TABLES TO tenancy_app;
CALL tenancy.add_migration('0001-notes', 'CREATE TABLE notes (body text NOT NULL)');
SELECT schema_name AS gamma_schema FROM tenancy.register_tenant('gamma', 'Gamma', '{}', 'schema') \gset
SELECT schema_name AS delta_schema FROM tenancy.register_tenant('delta', 'Delta', '{}', 'schema') \gset
SELECT count(*) AS distributed_schemas FROM pg_dist_schema
 WHERE schemaid::regnamespace::text IN (:'gamma_schema', :'delta_schema');
CALL tenancy.add_migration('0002-tags', 'CREATE TABLE tags (name text NOT NULL)');
SELECT regexp_replace(logicalrelid::text, '^tenant_[0-9a-f]+\.', '') AS gamma_table, partmethod
  FROM pg_dist_partition WHERE logicalrelid::text LIKE :'gamma_schema' || '.%' ORDER BY 1;
SELECT count(*) AS errors FROM tenancy.verify() WHERE severity = 'error';
\c - tenancy_app
BEGIN;
SELECT tenancy.set_tenant('gamma', true) IS NOT NULL AS as_gamma;
INSERT INTO notes (body) VALUES ('gamma note');
INSERT INTO tags (name) VALUES ('gamma tag');
SELECT count(*) AS gamma_notes FROM notes;
COMMIT;
BEGIN;
SELECT tenancy.set_tenant('delta', true) IS NOT NULL AS as_delta;
SELECT count(*) AS gamma_notes_seen_by_delta FROM :"gamma_schema".notes;
\set VERBOSITY sqlstate
INSERT INTO :"gamma_schema".tags (name) VALUES ('planted');
\set VERBOSITY default
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
SELECT count(*) AS gamma_notes_without_context FROM :"gamma_schema".notes;

-- Signed tokens carry the same way.
\c "host=127.0.0.1 port=27640 dbname=tenancy_citus user=postgres"
SELECT tenancy.add_signing_key('k1') AS kid \gset
SELECT tenancy.issue_token('alpha') AS token \gset
\c - tenancy_app
BEGIN;
SELECT tenancy.set_tenant_token(:'token', true) IS NOT NULL AS by_token;
SELECT count(*) AS alpha_by_token FROM orders;
COMMIT;
-- Usage: each node counts what it runs under the tenant of the context it
-- verified, multi-shard statements included, so a tenant's rows summed over
-- the nodes are its cluster-wide use (the workers add the statements Citus
-- sent them to the coordinator's count of the client's).
\c - postgres
SELECT DISTINCT result AS reset FROM run_command_on_all_nodes('SELECT tenancy.tenant_stats_reset()');
\c - tenancy_app
BEGIN;
SELECT tenancy.set_tenant('beta', true) IS NOT NULL AS as_beta;
SELECT count(*) AS multi_shard FROM orders;
SELECT count(*) AS multi_shard_again FROM orders;
SELECT count(*) AS router FROM orders WHERE tenant_id = tenancy.current_tenant();
COMMIT;
\c - postgres
SELECT n.nodeport, a.result::bigint > 0 AS counted_for_beta
  FROM run_command_on_all_nodes(
         $$SELECT coalesce(sum(calls), 0) FROM tenancy.tenant_stats WHERE identifier = 'beta'$$) a
  JOIN pg_dist_node n USING (nodeid) ORDER BY n.nodeport;
SELECT sum(result::bigint) AS alpha_calls_anywhere
  FROM run_command_on_all_nodes(
         $$SELECT coalesce(sum(calls), 0) FROM tenancy.tenant_stats WHERE identifier = 'alpha'$$);
DROP TABLE orders, order_items, plans;
-- The reference tables' placements depend on the extension's functions.
SET client_min_messages = warning;
DROP EXTENSION tenancy CASCADE;
