//! Who runs what the extension executes on a caller's behalf.
//!
//! The extension's own catalog statements run as the catalog's owner (see
//! `catalog::as_owner`). Statements that reach user objects run with the
//! least rights that work, in a security-restricted operation: over a
//! protected table as that table's owner (policies.rs, lifecycle.rs), and in
//! tenant schemas as the migration owner, a role without SUPERUSER and
//! BYPASSRLS that owns those schemas.

use crate::api::audit;
use crate::catalog;
use crate::error::OrRaise;
use crate::error::{required, TenancyError::*};
use crate::postgres::{query, security};
use pgrx::prelude::*;
use serde_json::json;
use std::ffi::CStr;

/// Make `role` the owner of every tenant schema and of what is in them, and
/// the role that migrations run as. Superusers only: the migration owner
/// decides what every tenant schema may contain.
#[pg_extern(volatile, parallel_unsafe, requires = ["catalog"])]
fn set_migration_owner(role: Option<&str>) {
    let role = security::role_oid(required(role, "role"));
    if !security::is_superuser() {
        PermissionDenied(
            "only a superuser can choose the migration owner".into(),
            "The migration owner runs every migration script in every tenant schema.".into(),
        )
        .raise();
    }
    check_migration_owner(role);
    let caller = security::current_role_name();
    let name = security::role_name(role);
    catalog::as_owner(|| {
        Spi::run_with_args(
            "INSERT INTO tenancy.migration_owner (role) VALUES ($1) \
             ON CONFLICT (only_one) DO UPDATE SET role = EXCLUDED.role",
            &[role.into()],
        )
        .or_raise("recording the migration owner");
        let moved = reassign_tenant_schemas(&name);
        audit::record(
            &caller,
            "migration_owner",
            None,
            json!({"role": name, "objects_reassigned": moved}),
        );
    })
}

/// Before CREATE, ALTER or DROP ROLE: not from code that runs for another
/// role (a migration, a tenant schema's function in the application's
/// request, a table owner's trigger during a destroy): such code would
/// change the role it runs as (its password, to log in as it) or others.
pub(crate) fn on_role_ddl() {
    if security::in_user_code() {
        PermissionDenied(
            "roles cannot be created, changed or dropped by code that runs for another role".into(),
            "A tenant schema's functions run in the application's (or a maintainer's) session, \
             and a migration as the migration owner: neither may change a role, its own \
             password included."
                .into(),
        )
        .raise();
    }
}

/// The migration owner, checked again at every use (its attributes may have
/// changed since it was chosen).
pub(crate) fn migration_owner() -> pg_sys::Oid {
    // The 0.4.0 library serves older SQL until ALTER EXTENSION … UPDATE: never
    // fall back to running migrations as the catalog owner there.
    let role = catalog::as_owner(|| {
        let updated = query::kept_one::<bool>(
            "SELECT to_regclass('tenancy.migration_owner') IS NOT NULL",
            &[],
            &[],
        )
        .or_raise("a catalog lookup")
        .unwrap_or(false);
        if !updated {
            NotConfigured(
                "the tenancy objects of this database are older than the tenancy library".into(),
                "Migrations run as a migration owner since 0.4.0: run ALTER EXTENSION tenancy \
                 UPDATE, then choose one with tenancy.set_migration_owner(role)."
                    .into(),
            )
            .raise();
        }
        query::kept_one::<pg_sys::Oid>("SELECT role::oid FROM tenancy.migration_owner", &[], &[])
            .or_raise("a catalog lookup")
    });
    let role = role.unwrap_or_else(|| {
        NotConfigured(
            "no migration owner is set".into(),
            "Migrations run as a role without SUPERUSER and BYPASSRLS that owns the tenant \
             schemas. Create one (CREATE ROLE tenancy_migrator NOLOGIN) and, as a superuser, \
             run SELECT tenancy.set_migration_owner('tenancy_migrator');"
                .into(),
        )
        .raise()
    });
    check_migration_owner(role);
    role
}

fn check_migration_owner(role: pg_sys::Oid) {
    let name = security::role_name(role);
    if !security::role_exists(role) {
        NotConfigured(
            format!("the migration owner ({name}) no longer exists"),
            "Choose another one with tenancy.set_migration_owner(role).".into(),
        )
        .raise();
    }
    if let Some(why) = migration_owner_problem(role) {
        InvalidValue(
            format!("role \"{name}\" cannot be the migration owner: it {why}"),
            "Migration scripts run as the migration owner. With SUPERUSER or BYPASSRLS a \
             script could do anything and row-level security would not hold for it; with \
             CREATEROLE it could grant itself roles; as a member of a superuser role or of \
             pg_execute_server_program, pg_read_server_files, pg_write_server_files, \
             pg_read_all_data, pg_write_all_data or pg_maintain it could reach the server's \
             files and programs, or every table. Use a role with none of these \
             (e.g. CREATE ROLE tenancy_migrator NOLOGIN)."
                .into(),
        )
        .raise();
    }
}

/// Why `role` may not run migrations: more rights than a migration needs.
fn migration_owner_problem(role: pg_sys::Oid) -> Option<String> {
    if let Some(why) = security::role_bypass_reason(role) {
        return Some(why.to_string());
    }
    if security::role_creates_roles(role) {
        return Some("has the CREATEROLE attribute".into());
    }
    // The roles whose membership reaches a superuser's rights, the server's
    // files and programs, or every table (asked of PostgreSQL's membership
    // cache, not by a query over every role: once per registration).
    const REACHING: [&CStr; 6] = [
        c"pg_execute_server_program",
        c"pg_read_server_files",
        c"pg_write_server_files",
        c"pg_read_all_data",
        c"pg_write_all_data",
        c"pg_maintain",
    ];
    let superusers = catalog::as_owner(|| {
        query::kept(
            "SELECT oid FROM pg_catalog.pg_authid WHERE rolsuper",
            &[],
            |client, statement| {
                client
                    .select(statement, None, &[])?
                    .map(|row| row.get::<pg_sys::Oid>(1))
                    .collect::<Result<Vec<_>, _>>()
            },
        )
    })
    .or_raise("checking the migration owner's rights");
    let mut reached: Vec<String> = REACHING
        .iter()
        .filter_map(|name| security::existing_role_oid(name))
        .chain(superusers.into_iter().flatten())
        .filter(|&other| other != role && security::is_member_of(role, other))
        .map(security::role_name)
        .collect();
    reached.sort();
    reached.dedup();
    (!reached.is_empty()).then(|| {
        let quoted: Vec<String> = reached.iter().map(spi::quote_identifier).collect();
        format!("is a member of {}", quoted.join(", "))
    })
}

/// ALTER … OWNER TO `role` for every tenant schema and the objects in it that
/// can be owned on their own (indexes, owned sequences and row types follow
/// their tables). Returns how many statements ran.
fn reassign_tenant_schemas(role: &str) -> i64 {
    let statements: Vec<String> = Spi::connect(|client| {
        client
            .select(
                "WITH s AS (SELECT n.oid, n.nspname FROM pg_catalog.pg_namespace n \
                             JOIN tenancy.tenants t ON t.schema_name = n.nspname) \
                 SELECT pg_catalog.format('ALTER SCHEMA %I OWNER TO %I', s.nspname, $1) FROM s \
                 UNION ALL \
                 SELECT pg_catalog.format('ALTER TABLE %s OWNER TO %I', c.oid::pg_catalog.regclass, $1) \
                   FROM pg_catalog.pg_class c JOIN s ON s.oid = c.relnamespace \
                  WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S') \
                    AND NOT EXISTS (SELECT FROM pg_catalog.pg_depend d \
                                     WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass \
                                       AND d.objid = c.oid AND d.deptype IN ('a', 'i')) \
                 UNION ALL \
                 SELECT pg_catalog.format('ALTER ROUTINE %s OWNER TO %I', p.oid::pg_catalog.regprocedure, $1) \
                   FROM pg_catalog.pg_proc p JOIN s ON s.oid = p.pronamespace \
                 UNION ALL \
                 SELECT pg_catalog.format('ALTER TYPE %s OWNER TO %I', y.oid::pg_catalog.regtype, $1) \
                   FROM pg_catalog.pg_type y JOIN s ON s.oid = y.typnamespace \
                  WHERE y.typtype IN ('d', 'e', 'r') \
                     OR (y.typtype = 'c' AND (SELECT relkind FROM pg_catalog.pg_class \
                                               WHERE oid = y.typrelid) = 'c')",
                None,
                &[role.into()],
            )?
            .map(|row| query::required::<String>(&row, 1))
            .collect::<Result<_, query::ReadError>>()
    })
    .or_raise("listing the tenant schemas");
    for statement in &statements {
        Spi::run(statement).or_raise(statement);
    }
    statements.len() as i64
}

/// Every administration routine, the catalog tables that those running with
/// the caller's rights read (verify(), pending_migrations(), migrate()), and
/// the signing keys' metadata. Not the signing keys, the cluster key,
/// set_migration_owner() or distribute(): a granted administrator cannot read
/// secrets or choose who runs migrations, and migrations run as the migration
/// owner.
const ADMIN_ROUTINES: &[&str] = &[
    "tenancy.register_tenant(text, text, jsonb, text)",
    "tenancy.suspend_tenant(text, text)",
    "tenancy.activate_tenant(text)",
    "tenancy.update_tenant(text, text, jsonb)",
    "tenancy.delete_tenant(text, boolean)",
    "tenancy.protect(regclass, text)",
    "tenancy.unprotect(regclass)",
    "tenancy.verify()",
    "tenancy.library_preloaded()",
    "tenancy.citus_placement_problems()",
    "tenancy.add_migration(text, text)",
    "tenancy.migrate()",
    "tenancy.check_autocommit(text)",
    "tenancy.migrate_tenant(text)",
    "tenancy.record_migration(text, text)",
    "tenancy.retire_migration(text)",
    "tenancy.pending_migrations()",
    "tenancy.set_config_default(text, jsonb)",
    "tenancy.unset_config_default(text)",
    "tenancy.set_tenant_config(text, text, jsonb)",
    "tenancy.unset_tenant_config(text, text)",
    "tenancy.add_signing_key(text, bytea, boolean)",
    "tenancy.retire_signing_key(text)",
    "tenancy.issue_token(text, interval)",
    "tenancy.purge_audit_log(interval)",
    "tenancy.tenant_stats_reset(text)",
];
const ADMIN_TABLES: &[&str] = &[
    "tenancy.tenants",
    "tenancy.protected_tables",
    "tenancy.migrations",
    "tenancy.schema_migrations",
    "tenancy.migration_owner",
    "tenancy.config_defaults",
    "tenancy.tenant_config",
    "tenancy.audit_log",
    "tenancy.signing_key_info",
];

/// Give `role` what administering tenancy needs, and nothing more
/// (superusers only; audited).
#[pg_extern(volatile, parallel_unsafe, requires = ["catalog"])]
fn grant_admin(role: Option<&str>) {
    change_admin(required(role, "role"), true)
}

/// Take back what grant_admin() gave (superusers only; audited).
#[pg_extern(volatile, parallel_unsafe, requires = ["catalog"])]
fn revoke_admin(role: Option<&str>) {
    change_admin(required(role, "role"), false)
}

fn change_admin(role: &str, grant: bool) {
    let oid = security::role_oid(role);
    if !security::is_superuser() {
        PermissionDenied(
            "only a superuser can grant or revoke tenancy administration".into(),
            "It hands out the lifecycle of every tenant.".into(),
        )
        .raise();
    }
    let caller = security::current_role_name();
    let grantee = spi::quote_identifier(security::role_name(oid));
    let (verb, preposition) = if grant {
        ("GRANT", "TO")
    } else {
        ("REVOKE", "FROM")
    };
    catalog::as_owner(|| {
        for routine in ADMIN_ROUTINES {
            Spi::run(&format!(
                "{verb} EXECUTE ON ROUTINE {routine} {preposition} {grantee}"
            ))
            .or_raise(&format!("{verb} on {routine}"));
        }
        for table in ADMIN_TABLES {
            Spi::run(&format!("{verb} SELECT ON {table} {preposition} {grantee}"))
                .or_raise(&format!("{verb} on {table}"));
        }
        let action = if grant { "grant_admin" } else { "revoke_admin" };
        audit::record(
            &caller,
            action,
            None,
            json!({"role": security::role_name(oid)}),
        );
    })
}
