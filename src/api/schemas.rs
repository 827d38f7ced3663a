//! Schema-per-tenant isolation: a tenant registered with `isolation => 'schema'`
//! gets its own schema, built from an ordered registry of migrations.
//!
//! The schema's name derives from the tenant's id (`tenant_<32 hex digits>`):
//! never truncated, never colliding, never from user input; always quoted.
//! Every table a migration creates there gets row-level security pinned to the
//! tenant's id, so another tenant's context (or none) reaches no row even with
//! schema-qualified names; views there are made security_invoker.
//! `migrate()` / `add_migration()` are PL/pgSQL procedures (sql/schemas.sql)
//! that commit per schema around `migrate_tenant()`.

use crate::api::audit;
use crate::catalog;
use crate::error::{required, TenancyError::*};
use crate::postgres::{gucs, security};
use crate::tenant::{from_sql, to_sql};
use pgrx::prelude::*;
use serde_json::json;
use uuid::Uuid;

const POLICY: &str = "tenancy_schema_isolation";
const PREFIX: &str = "tenant_";

pub fn schema_name(id: Uuid) -> String {
    format!("{PREFIX}{}", id.simple())
}

fn is_tenant_schema(name: &str) -> bool {
    name.strip_prefix(PREFIX).is_some_and(|hex| {
        hex.len() == 32
            && hex
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    })
}

/// Record a migration (a DDL script for every tenant schema) after trying it,
/// with the whole history, in a scratch schema that is dropped again. The
/// `add_migration` procedure calls this, commits, then migrates every schema.
#[pg_extern(volatile, parallel_unsafe, requires = ["catalog"])]
fn record_migration(name: Option<&str>, sql: Option<&str>) {
    let name = required(name, "name");
    let sql = required(sql, "sql");
    let name_ok = (1..=128).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if !name_ok {
        InvalidValue(
            format!("invalid migration name \"{name}\""),
            "A migration name has 1 to 128 characters: letters, digits, '_', '.' and '-' \
             (e.g. '0001-create-orders')."
                .into(),
        )
        .raise();
    }
    if sql.trim().is_empty() {
        InvalidValue(
            "a migration needs SQL".into(),
            "Pass the DDL script to apply in every tenant schema.".into(),
        )
        .raise();
    }
    let role = security::current_role_name();
    catalog::as_owner(|| {
        // One recorder at a time: ordinals stay dense and the dry run's schema is ours.
        run("LOCK TABLE tenancy.migrations IN SHARE ROW EXCLUSIVE MODE");
        let exists = Spi::get_one_with_args::<bool>(
            "SELECT EXISTS (SELECT FROM tenancy.migrations WHERE name = $1)",
            &[name.into()],
        )
        .unwrap_or_else(|e| error!("{e}"))
        .unwrap_or(false);
        if exists {
            DuplicateMigration(name.into()).raise();
        }
        // Dry run: the history plus the new script in a scratch schema.
        let scratch = "tenancy_migration_check";
        quietly(|| {
            run(&format!(
                "DROP SCHEMA IF EXISTS {scratch} CASCADE; CREATE SCHEMA {scratch}"
            ))
        });
        for (_, script) in migrations_after(None) {
            in_schema(scratch, &script);
        }
        in_schema(scratch, sql);
        quietly(|| run(&format!("DROP SCHEMA {scratch} CASCADE")));
        Spi::run_with_args(
            "INSERT INTO tenancy.migrations (name, ordinal, sql) \
             SELECT $1, coalesce(max(ordinal), 0) + 1, $2 FROM tenancy.migrations",
            &[name.into(), sql.into()],
        )
        .unwrap_or_else(|e| error!("{e}"));
        audit::record(&role, "migration", None, json!({"name": name}));
    })
}

/// Bring one schema tenant up to date, in the current transaction; returns
/// how many migrations were applied. `migrate()` calls it once per schema.
#[pg_extern(volatile, parallel_unsafe, requires = ["catalog"])]
fn migrate_tenant(identifier: Option<&str>) -> i32 {
    let identifier = required(identifier, "identifier");
    let role = security::current_role_name();
    catalog::as_owner(|| {
        // Locking the tenant's row serializes migrations of one schema.
        let row = Spi::get_three_with_args::<pgrx::Uuid, String, String>(
            "SELECT id, status, schema_name::text FROM tenancy.tenants WHERE identifier = $1 FOR UPDATE",
            &[identifier.into()],
        )
        .unwrap_or((None, None, None));
        let (Some(id), Some(status)) = (row.0, row.1) else {
            UnknownTenant(identifier.into()).raise()
        };
        let Some(schema) = row.2 else {
            InvalidValue(
                format!("tenant \"{identifier}\" has no schema of its own"),
                "Only tenants registered with isolation => 'schema' are migrated.".into(),
            )
            .raise()
        };
        if status == "deleted" {
            IllegalTransition(
                format!("tenant \"{identifier}\" is deleted: its schema is kept untouched"),
                "Destroy it with tenancy.delete_tenant(identifier, destroy_data => true).".into(),
            )
            .raise();
        }
        let id = from_sql(id);
        let applied = apply_pending(id, &schema);
        if !applied.is_empty() {
            audit::record(
                &role,
                "migrate",
                Some((id, identifier)),
                json!({"applied": applied}),
            );
        }
        applied.len() as i32
    })
}

/// Create a new schema tenant's schema and replay every migration (called by
/// register_tenant, inside its transaction, as the catalog owner).
pub(crate) fn provision(id: Uuid, schema: &str) {
    let quoted = spi::quote_identifier(schema);
    run(&format!(
        "CREATE SCHEMA {quoted}; GRANT USAGE ON SCHEMA {quoted} TO PUBLIC"
    ));
    apply_pending(id, schema);
}

/// Drop a destroyed tenant's schema and everything in it.
pub(crate) fn drop_schema(schema: &str) {
    quietly(|| {
        run(&format!(
            "DROP SCHEMA IF EXISTS {} CASCADE",
            spi::quote_identifier(schema)
        ))
    });
}

/// Without the NOTICEs of DROP … CASCADE.
fn quietly(f: impl FnOnce()) {
    security::with_setting(c"client_min_messages", "warning", f)
}

/// Put the tenant's schema first on search_path (or take tenant schemas off
/// it), with the same scope as the context. A no-op for shared tenants whose
/// search_path holds no tenant schema: the hot path stays a string scan.
pub(crate) fn follow_search_path(schema: Option<&str>, local: bool) {
    let holds_tenant_schema =
        gucs::with_search_path(|path| path.windows(PREFIX.len()).any(|w| w == PREFIX.as_bytes()));
    if schema.is_none() && !holds_tenant_schema {
        return;
    }
    let current = gucs::setting(c"search_path").unwrap_or_default();
    let mut entries: Vec<String> = schema.map(spi::quote_identifier).into_iter().collect();
    entries.extend(
        split_search_path(&current)
            .into_iter()
            .filter(|entry| !is_tenant_schema(entry.trim_matches('"'))),
    );
    let path = entries.join(", ");
    if path != current {
        gucs::set_search_path(&path, local);
    }
}

/// Split a search_path value at commas outside double quotes.
fn split_search_path(path: &str) -> Vec<String> {
    let (mut entries, mut entry, mut quoted) = (Vec::new(), String::new(), false);
    for c in path.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                entry.push(c);
            }
            ',' if !quoted => entries.push(std::mem::take(&mut entry)),
            _ => entry.push(c),
        }
    }
    entries.push(entry);
    entries
        .into_iter()
        .map(|e| e.trim().to_string())
        .filter(|e| !e.is_empty())
        .collect()
}

/// Apply the migrations `schema` lacks, in order, then pin its new tables to
/// the tenant. Returns the names applied.
fn apply_pending(id: Uuid, schema: &str) -> Vec<String> {
    let tenant = to_sql(id);
    let pending = migrations_after(Some(tenant));
    for (name, script) in &pending {
        in_schema(schema, script);
        Spi::run_with_args(
            "INSERT INTO tenancy.schema_migrations (tenant_id, migration) VALUES ($1, $2)",
            &[tenant.into(), name.as_str().into()],
        )
        .unwrap_or_else(|e| error!("{e}"));
    }
    isolate_schema(id, schema);
    pending.into_iter().map(|(name, _)| name).collect()
}

/// Migrations in order; with a tenant, only those it has not applied.
fn migrations_after(tenant: Option<pgrx::Uuid>) -> Vec<(String, String)> {
    Spi::connect(|client| {
        client
            .select(
                "SELECT m.name, m.sql FROM tenancy.migrations m \
                 WHERE $1::uuid IS NULL OR NOT EXISTS (SELECT FROM tenancy.schema_migrations s \
                                                       WHERE s.tenant_id = $1 AND s.migration = m.name) \
                 ORDER BY m.ordinal",
                None,
                &[tenant.into()],
            )?
            .map(|row| Ok((row.get(1)?.expect("name"), row.get(2)?.expect("sql"))))
            .collect::<Result<Vec<_>, pgrx::spi::Error>>()
    })
    .unwrap_or_else(|e| error!("{e}"))
}

/// Run a migration script with the schema as the only schema on search_path
/// (pg_catalog is implicit; shared objects must be schema-qualified).
fn in_schema(schema: &str, script: &str) {
    security::with_setting(c"search_path", &spi::quote_identifier(schema), || {
        Spi::run(script).unwrap_or_else(|e| error!("migration failed in schema {schema}: {e}"))
    });
}

/// Row-level security pinned to the tenant on every table of its schema that
/// lacks it, TRUNCATE blocked, views run with the caller's rights.
fn isolate_schema(id: Uuid, schema: &str) {
    let objects: Vec<(String, String)> = Spi::connect(|client| {
        client
            .select(
                "SELECT c.oid::regclass::text, c.relkind::text FROM pg_catalog.pg_class c \
                 WHERE c.relnamespace = $1::regnamespace AND c.relkind IN ('r', 'p', 'v') \
                   AND NOT (c.relkind IN ('r', 'p') AND EXISTS (SELECT FROM pg_catalog.pg_policy p \
                            WHERE p.polrelid = c.oid AND p.polname = $2)) \
                   AND NOT (c.relkind = 'v' AND coalesce(c.reloptions, '{}') @> '{security_invoker=true}')",
                None,
                &[spi::quote_identifier(schema).into(), POLICY.into()],
            )?
            .map(|row| Ok((row.get(1)?.expect("name"), row.get(2)?.expect("kind"))))
            .collect::<Result<Vec<_>, pgrx::spi::Error>>()
    })
    .unwrap_or_else(|e| error!("{e}"));
    let check = format!("(SELECT tenancy.current_tenant()) = '{id}'::uuid");
    for (object, kind) in objects {
        if kind == "v" {
            run(&format!(
                "ALTER VIEW {object} SET (security_invoker = true)"
            ));
            continue;
        }
        run(&format!(
            "ALTER TABLE {object} ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY; \
             CREATE POLICY {POLICY} ON {object} AS PERMISSIVE FOR ALL TO PUBLIC \
                 USING ({check}) WITH CHECK ({check}); \
             REVOKE TRUNCATE ON {object} FROM PUBLIC; \
             CREATE OR REPLACE TRIGGER tenancy_no_truncate BEFORE TRUNCATE ON {object} \
                 FOR EACH STATEMENT EXECUTE FUNCTION tenancy.refuse_truncate()"
        ));
    }
}

fn run(sql: &str) {
    Spi::run(sql).unwrap_or_else(|e| error!("{e}"));
}

#[cfg(any(test, feature = "pg_test"))]
#[pgrx::pg_schema]
mod tests {
    use super::*;

    #[pgrx::pg_test]
    fn schema_names_come_from_the_id() {
        let id = Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);
        assert_eq!(schema_name(id), "tenant_0123456789abcdef0123456789abcdef");
        assert_eq!(schema_name(id).len(), 39, "well below the 63-byte limit");
        assert!(is_tenant_schema(&schema_name(id)));
        assert!(!is_tenant_schema("tenant_orders"));
        assert!(!is_tenant_schema("public"));
    }

    #[pgrx::pg_test]
    fn search_path_entries_split_outside_quotes() {
        assert_eq!(
            split_search_path("\"$user\", public"),
            ["\"$user\"", "public"]
        );
        assert_eq!(split_search_path("\"a,b\" ,c"), ["\"a,b\"", "c"]);
        assert_eq!(split_search_path(""), Vec::<String>::new());
    }
}
