-- Benchmark data set (docs/benchmarks.md). Run as a superuser on a fresh database.
\set ON_ERROR_STOP on
CREATE EXTENSION tenancy;
SELECT tenancy.set_migration_owner('bench_migrator');
CREATE SCHEMA bench;
GRANT USAGE ON SCHEMA bench TO bench_app;

-- 100,000 tenants, t-1 … t-100000 (plain DML: the catalog accepts it).
INSERT INTO tenancy.tenants (identifier, name)
SELECT 't-' || g, 'Tenant ' || g FROM generate_series(1, 100000) g;

-- What the hand-rolled baselines read: the same tenants in a plain table.
CREATE TABLE bench.tenants_plain AS SELECT identifier, id, status FROM tenancy.tenants;
ALTER TABLE bench.tenants_plain ADD PRIMARY KEY (identifier);
GRANT SELECT ON bench.tenants_plain TO bench_app;

-- The same validation as set_tenant, written in PL/pgSQL.
CREATE FUNCTION bench.set_tenant_plpgsql(slug text) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    s text;
BEGIN
    SELECT status INTO s FROM bench.tenants_plain WHERE identifier = slug;
    IF s IS DISTINCT FROM 'active' THEN
        RAISE EXCEPTION 'tenant % is not active', slug;
    END IF;
    PERFORM set_config('app.tenant', slug, false);
END
$$;

-- Isolation overhead: 1,000,000 rows across tenants t-1 … t-1000; tenant t-k
-- holds ids (k-1)*1000+1 … k*1000. One protected copy, one plain copy.
CREATE TABLE bench.orders (
    tenant_id uuid NOT NULL, id bigint NOT NULL, amount int NOT NULL, note text,
    PRIMARY KEY (tenant_id, id)
);                                              -- auto-protected: tenant_id uuid NOT NULL
SET tenancy.auto_protect = off;
CREATE TABLE bench.orders_plain (LIKE bench.orders INCLUDING ALL);
RESET tenancy.auto_protect;
INSERT INTO bench.orders (tenant_id, id, amount, note)
SELECT t.id, (k - 1) * 1000 + i, (i * 7) % 100, 'order ' || i
  FROM generate_series(1, 1000) k
  JOIN tenancy.tenants t ON t.identifier = 't-' || k
 CROSS JOIN generate_series(1, 1000) i;
INSERT INTO bench.orders_plain SELECT * FROM bench.orders;
CREATE SEQUENCE bench.order_ids START 100000001;
GRANT SELECT, INSERT ON bench.orders, bench.orders_plain TO bench_app;
GRANT USAGE ON SEQUENCE bench.order_ids TO bench_app;
-- Statistics stay those of the load: an autovacuum ANALYZE in the middle of
-- the run (the insert workloads grow the tables) would change estimates, and
-- with them PostgreSQL's generic-or-custom plan choice, between rounds.
ALTER TABLE bench.orders SET (autovacuum_enabled = false);
ALTER TABLE bench.orders_plain SET (autovacuum_enabled = false);
VACUUM ANALYZE bench.orders;
VACUUM ANALYZE bench.orders_plain;
VACUUM ANALYZE bench.tenants_plain;
VACUUM ANALYZE tenancy.tenants;
