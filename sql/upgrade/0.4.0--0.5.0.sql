-- The hand-written part of the 0.4.0 → 0.5.0 upgrade: what
-- scripts/upgrade-script.sh cannot generate from the catalogs (tables,
-- row-level security of the catalog, data). It runs before the generated
-- routines, views and triggers.

-- Secrets out of reach of every role but superusers, also through a grant or
-- pg_read_all_data: row-level security without a policy.
ALTER TABLE tenancy.signing_keys ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE tenancy.cluster_key ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;

-- Identifiers that a destroy freed, and when (from the audit log for the
-- destroys before 0.5.0): a JWT naming one must be younger.
CREATE TABLE tenancy.freed_identifiers (
    identifier text        PRIMARY KEY,
    freed_at   timestamptz NOT NULL
);
SELECT pg_catalog.pg_extension_config_dump('tenancy.freed_identifiers', '');
INSERT INTO tenancy.freed_identifiers (identifier, freed_at)
SELECT tenant_identifier, pg_catalog.max(at) FROM tenancy.audit_log
 WHERE action OPERATOR(pg_catalog.=) 'destroy' AND tenant_identifier IS NOT NULL
 GROUP BY tenant_identifier;

-- Who added each signing key (unknown for the keys added before 0.5.0).
ALTER TABLE tenancy.signing_keys ADD COLUMN created_by name;

-- Tables of tenant schemas that 0.4.0's auto-protect recorded (a migration
-- table with a tenant_id column): their tenancy_isolation policy widened the
-- schema's pinned one, and destroys failed on them. Tenant schemas are
-- pinned to their tenant by the migrations alone.
DO $$
DECLARE
    t record;
BEGIN
    FOR t IN
        SELECT p.relid, p.tenant_column
          FROM tenancy.protected_tables p
          JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) p.relid
          JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
          JOIN tenancy.tenants tn ON tn.schema_name OPERATOR(pg_catalog.=) n.nspname
    LOOP
        EXECUTE pg_catalog.format('DROP POLICY IF EXISTS tenancy_isolation ON %s', t.relid);
        EXECUTE pg_catalog.format('DROP TRIGGER IF EXISTS tenancy_no_truncate ON %s', t.relid);
        EXECUTE pg_catalog.format('ALTER TABLE %s ALTER COLUMN %I DROP DEFAULT', t.relid, t.tenant_column);
        DELETE FROM tenancy.protected_tables WHERE relid OPERATOR(pg_catalog.=) t.relid;
    END LOOP;
END
$$;

-- Holds nothing. A change to the catalog tables is announced to every
-- backend as a relcache invalidation of this relation (the catalog_changed
-- trigger), which no statement opens: processing it rebuilds nothing. (An
-- invalidation of tenancy.tenants itself made every later statement of the
-- writing transaction rebuild that table's relcache entry and row type.)
CREATE TABLE tenancy.catalog_changes ();

-- Whether any tenant has limits (api/limits.rs asks once per catalog change).
CREATE INDEX tenant_config_limits ON tenancy.tenant_config (key) WHERE key LIKE 'limits.%';
