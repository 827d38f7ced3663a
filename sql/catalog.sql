-- The tenancy catalog. Application roles get no privilege on these tables:
-- the extension's functions read and write them as their owner.

CREATE TABLE tenancy.tenants (
    id            uuid        PRIMARY KEY DEFAULT tenancy.uuid_v7(),
    identifier    text        NOT NULL UNIQUE
                  CONSTRAINT tenants_identifier_is_slug
                  CHECK (length(identifier) BETWEEN 3 AND 63
                         AND identifier ~ '^[a-z][a-z0-9]*(-[a-z0-9]+)*$'),
    name          text        NOT NULL
                  CONSTRAINT tenants_name_length
                  CHECK (length(name) BETWEEN 1 AND 200 AND btrim(name) <> ''),
    status        text        NOT NULL DEFAULT 'active'
                  CONSTRAINT tenants_status_known
                  CHECK (status IN ('active', 'suspended', 'deleted')),
    isolation     text        NOT NULL DEFAULT 'shared'
                  CONSTRAINT tenants_isolation_known
                  CHECK (isolation IN ('shared', 'schema')),
    schema_name   name,
    metadata      jsonb       NOT NULL DEFAULT '{}'
                  CONSTRAINT tenants_metadata_is_object
                  CHECK (jsonb_typeof(metadata) = 'object'),
    status_reason text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    suspended_at  timestamptz,
    deleted_at    timestamptz,
    CONSTRAINT tenants_schema_matches_isolation CHECK ((isolation = 'schema') = (schema_name IS NOT NULL)),
    CONSTRAINT tenants_suspended_has_time CHECK (status <> 'suspended' OR suspended_at IS NOT NULL),
    CONSTRAINT tenants_deleted_has_time   CHECK (status <> 'deleted' OR deleted_at IS NOT NULL)
);
COMMENT ON TABLE tenancy.tenants IS 'One row per tenant; change it through the tenancy.*_tenant() functions.';

-- Append-only trail of every lifecycle, protection and configuration change,
-- written in the same transaction as the change itself.
-- An explicit sequence (not IDENTITY) so pg_dump can keep its position too.
CREATE SEQUENCE tenancy.audit_log_id_seq;
CREATE TABLE tenancy.audit_log (
    id                bigint      PRIMARY KEY DEFAULT nextval('tenancy.audit_log_id_seq'),
    at                timestamptz NOT NULL DEFAULT clock_timestamp(),
    actor             name        NOT NULL DEFAULT session_user,
    role              name        NOT NULL,
    tenant_id         uuid,
    tenant_identifier text,
    action            text        NOT NULL,
    details           jsonb       NOT NULL DEFAULT '{}',
    transaction_id    xid8        NOT NULL DEFAULT pg_current_xact_id(),
    backend_pid       integer     NOT NULL DEFAULT pg_backend_pid(),
    client_addr       inet                 DEFAULT inet_client_addr()
);
ALTER SEQUENCE tenancy.audit_log_id_seq OWNED BY tenancy.audit_log.id;
CREATE INDEX audit_log_tenant_id_at ON tenancy.audit_log (tenant_id, at);
COMMENT ON TABLE tenancy.audit_log IS 'Append-only: UPDATE, DELETE and TRUNCATE raise; see tenancy.purge_audit_log().';

-- Tables under tenant row-level security (filled by tenancy.protect()).
CREATE TABLE tenancy.protected_tables (
    relid         regclass    PRIMARY KEY,
    tenant_column name        NOT NULL,
    protected_at  timestamptz NOT NULL DEFAULT now()
);

-- Per-tenant configuration: application defaults, and tenant overrides that win.
CREATE TABLE tenancy.config_defaults (
    key        text        PRIMARY KEY
               CONSTRAINT config_defaults_key_format CHECK (key ~ '^[a-z][a-z0-9_.-]{0,99}$'),
    value      jsonb       NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE tenancy.tenant_config (
    tenant_id  uuid        NOT NULL REFERENCES tenancy.tenants (id) ON DELETE CASCADE,
    key        text        NOT NULL
               CONSTRAINT tenant_config_key_format CHECK (key ~ '^[a-z][a-z0-9_.-]{0,99}$'),
    value      jsonb       NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, key)
);
-- Whether any tenant has limits (api/limits.rs asks once per catalog change).
CREATE INDEX tenant_config_limits ON tenancy.tenant_config (key) WHERE key LIKE 'limits.%';

-- Identifiers that a destroy freed, and when: a JWT that names a tenant by
-- identifier opens the tenant registered under it later only if it was issued
-- after that (to the microsecond).
CREATE TABLE tenancy.freed_identifiers (
    identifier text        PRIMARY KEY,
    freed_at   timestamptz NOT NULL
);

-- Holds nothing. A change to the catalog tables is announced to every
-- backend as a relcache invalidation of this relation (the catalog_changed
-- trigger), which no statement opens: processing it rebuilds nothing. (An
-- invalidation of tenancy.tenants itself made every later statement of the
-- writing transaction rebuild that table's relcache entry and row type.)
CREATE TABLE tenancy.catalog_changes ();

-- Keys for signed tenant tokens and JWTs (HS256). Nobody but the owner reads
-- them (administrators see tenancy.signing_key_info, without the secrets).
CREATE TABLE tenancy.signing_keys (
    kid        text        PRIMARY KEY
               CONSTRAINT signing_keys_kid_format CHECK (kid ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
    secret     bytea       NOT NULL
               CONSTRAINT signing_keys_secret_length CHECK (length(secret) >= 32),
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    retired_at timestamptz,
    -- The role that added it (NULL for keys added before 0.5.0).
    created_by name
);
CREATE VIEW tenancy.signing_key_info AS
    SELECT kid, 'HS256'::text AS algorithm, created_at, created_by, retired_at
      FROM tenancy.signing_keys;
COMMENT ON VIEW tenancy.signing_key_info IS 'The signing keys without their secrets, for administrators.';

-- Schema-per-tenant: the ordered migration registry, and what each schema applied.
CREATE TABLE tenancy.migrations (
    name     text        PRIMARY KEY
             CONSTRAINT migrations_name_format CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$'),
    ordinal  integer     NOT NULL UNIQUE,
    sql      text        NOT NULL,
    added_at timestamptz NOT NULL DEFAULT now(),
    -- Retired (tenancy.retire_migration()): no schema applies it any more.
    retired_at timestamptz
);
CREATE TABLE tenancy.schema_migrations (
    tenant_id  uuid        NOT NULL REFERENCES tenancy.tenants (id) ON DELETE CASCADE,
    migration  text        NOT NULL REFERENCES tenancy.migrations (name),
    applied_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, migration)
);

-- The role that owns the tenant schemas and runs the migrations in them: a
-- role without SUPERUSER and BYPASSRLS (tenancy.set_migration_owner()), so a
-- migration script never runs with more rights than it.
CREATE TABLE tenancy.migration_owner (
    role     regrole NOT NULL,
    only_one boolean PRIMARY KEY DEFAULT true CONSTRAINT migration_owner_only_one CHECK (only_one)
);

-- The key that signs a coordinator's tenant context for Citus workers
-- (tenancy.context). Random per installation; tenancy.distribute() gives the
-- workers the coordinator's. Nobody but the owner reads it.
CREATE TABLE tenancy.cluster_key (
    key      bytea   NOT NULL CONSTRAINT cluster_key_length CHECK (length(key) >= 32),
    only_one boolean PRIMARY KEY DEFAULT true CONSTRAINT cluster_key_only_one CHECK (only_one)
);
INSERT INTO tenancy.cluster_key (key)
VALUES (decode(replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''), 'hex'));

-- Secrets: row-level security without a policy, forced, so that no row
-- reaches a role that is not a superuser and has no BYPASSRLS, even one with
-- SELECT through a grant or pg_read_all_data (verify() reports the roles
-- that could read them anyway).
ALTER TABLE tenancy.signing_keys ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE tenancy.cluster_key ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
