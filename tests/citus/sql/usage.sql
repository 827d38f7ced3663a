-- Usage on Citus (README, "Scaling out with Citus"; run after citus.sql,
-- with its tenants and distributed tables): every node counts the
-- statements it runs — the coordinator each client statement, each worker
-- what Citus sends it, under the tenant of the carrier it verified — so that
-- a tenant summed over the nodes is its cluster-wide use, multi-shard
-- statements included.
\set SHOW_CONTEXT never
SET client_min_messages = warning;
\c - postgres
SELECT bool_and(success) AS reset_everywhere
  FROM run_command_on_all_nodes($$SELECT tenancy.tenant_stats_reset()$$);

\c - tenancy_app
-- Five requests of alpha: a multi-shard count and a router query each.
BEGIN; SELECT tenancy.set_tenant('alpha', true) IS NOT NULL AS as_alpha;
SELECT count(*) AS multi_shard FROM orders;
SELECT count(*) AS router FROM orders WHERE tenant_id = tenancy.current_tenant();
COMMIT;
BEGIN; SELECT tenancy.set_tenant('alpha', true) IS NOT NULL AS as_alpha;
SELECT count(*) AS multi_shard FROM orders;
SELECT count(*) AS router FROM orders WHERE tenant_id = tenancy.current_tenant();
COMMIT;
BEGIN; SELECT tenancy.set_tenant('alpha', true) IS NOT NULL AS as_alpha;
SELECT count(*) AS multi_shard FROM orders;
SELECT count(*) AS router FROM orders WHERE tenant_id = tenancy.current_tenant();
COMMIT;
BEGIN; SELECT tenancy.set_tenant('alpha', true) IS NOT NULL AS as_alpha;
SELECT count(*) AS multi_shard FROM orders;
SELECT count(*) AS router FROM orders WHERE tenant_id = tenancy.current_tenant();
COMMIT;
BEGIN; SELECT tenancy.set_tenant('alpha', true) IS NOT NULL AS as_alpha;
SELECT count(*) AS multi_shard FROM orders;
SELECT count(*) AS router FROM orders WHERE tenant_id = tenancy.current_tenant();
COMMIT;
-- One request of beta.
BEGIN; SELECT tenancy.set_tenant('beta', true) IS NOT NULL AS as_beta;
SELECT count(*) AS multi_shard FROM orders;
COMMIT;

\c - postgres
-- The coordinator: alpha's two queries and COMMIT per request (BEGIN and
-- set_tenant ran before its context).
SELECT identifier, calls, failed FROM tenancy.tenant_stats
 WHERE identifier IN ('alpha', 'beta') ORDER BY 1;
-- Every worker counted alpha's share of the multi-shard counts under alpha,
-- none of it under beta; beta's under beta.
SELECT n.nodename IS NOT NULL AS worker, r.result::bigint > 0 AS counted_alpha
  FROM run_command_on_workers($$SELECT coalesce(sum(calls), 0) FROM tenancy.tenant_stats
                                 WHERE identifier = 'alpha'$$) r
  JOIN pg_dist_node n ON n.nodeport = r.nodeport ORDER BY r.nodeport;
SELECT r.result::bigint > 0 AS counted_beta
  FROM run_command_on_workers($$SELECT coalesce(sum(calls), 0) FROM tenancy.tenant_stats
                                 WHERE identifier = 'beta'$$) r ORDER BY r.nodeport;
-- Cluster-wide use of alpha: more statements than the coordinator saw.
SELECT sum(r.result::bigint) > 15 AS cluster_wide_more_than_coordinator
  FROM run_command_on_all_nodes($$SELECT coalesce(sum(calls), 0) FROM tenancy.tenant_stats
                                  WHERE identifier = 'alpha'$$) r;
