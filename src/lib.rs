//! tenancy: multi-tenant isolation as a property of the database.
//!
//! Layers (README, "Code layout"): `api/` is the SQL surface (one module per
//! concept), the core below it (`error`, `tenant`, `tenant_schema`, `cache`,
//! `catalog`), and `postgres/`, the boundary with PostgreSQL internals, which
//! knows no feature and holds every `unsafe`. `sql/` holds the catalog DDL.

use pgrx::prelude::*;

mod api;
mod cache;
mod catalog;
mod error;
mod postgres;
mod signature;
mod status;
mod tenant;
mod tenant_schema;

::pgrx::pg_module_magic!(name, version);

// The catalog is plain SQL; it needs `uuid_v7()` for its default ids.
extension_sql_file!(
    "../sql/catalog.sql",
    name = "catalog",
    requires = [api::lifecycle::uuid_v7]
);
// Auto-protect event trigger and verify(), written as SQL.
extension_sql_file!(
    "../sql/policies.sql",
    name = "policies",
    requires = [
        "catalog",
        api::policies::auto_protect_table,
        api::policies::auto_protect_enabled,
        api::policies::ddl_checks_enabled,
        api::policies::refuse_foreign_triggers
    ]
);
extension_sql_file!(
    "../sql/verify.sql",
    name = "verify",
    requires = [
        "catalog",
        api::distribute::citus_placement_problems,
        api::policies::library_preloaded
    ]
);
// Migration procedures around migrate_tenant().
extension_sql_file!(
    "../sql/schemas.sql",
    name = "schemas",
    requires = [
        "catalog",
        api::schemas::migrate_tenant,
        api::migrations::record_migration,
        api::migrations::check_autocommit
    ]
);
// Triggers, privileges and dump registration, once every function exists.
extension_sql_file!("../sql/finalize.sql", name = "finalize", finalize);

#[pg_guard]
pub extern "C-unwind" fn _PG_init() {
    postgres::gucs::init();
    api::usage::init();
    postgres::security::init();
    postgres::objects::init(api::policies::on_foreign_key);
    api::policies::init(api::migrations::in_migration);
    postgres::initplans::init(api::context::ACCESSOR);
    postgres::functions::init(
        api::schemas::is_tenant_schema_function,
        api::schemas::on_superuser_call,
    );
    // The features forget what they cached when the catalog changes.
    postgres::invalidation::init(catalog::is_catalog_relation);
    catalog::init(api::limits::possible);
    for forget in [
        catalog::forget_relations,
        cache::invalidate,
        api::config::invalidate,
        api::keys::invalidate,
        api::citus::invalidate,
    ] {
        postgres::invalidation::register(forget);
    }
    postgres::hooks::init(postgres::hooks::Callbacks {
        wanted: api::schemas::superuser_statement,
        after_analyze: |statement| {
            api::schemas::on_superuser_statement(&statement.relations, statement.session_only)
        },
        before_utility,
        executor_wanted: api::context::deleting,
        before_executor,
        before_run: |statement| {
            api::schemas::on_superuser_statement(&statement.relation_oids(), false)
        },
        on_transaction_end: |committed| {
            api::context::on_transaction_end(committed);
            api::lifecycle::on_transaction_end();
        },
    });
}

/// What the features check before a utility statement runs.
fn before_utility(statement: &postgres::hooks::Utility) {
    use postgres::hooks::Utility::*;
    match statement {
        HoldCursor(name) => api::context::on_hold_cursor(name),
        Lock(relations) => api::schemas::on_lock(relations),
        RoleChange(role) => api::context::on_role_change(*role),
        RoleDdl => api::roles::on_role_ddl(),
        InRestrictedCall(command) => api::schemas::on_restricted_utility(command),
        Grant {
            schemas,
            global,
            on_schema,
        } => api::migrations::on_grant(schemas, *global, *on_schema),
    }
}

/// What the features check before the executor starts a statement.
fn before_executor(statement: &postgres::hooks::Statement) {
    api::context::on_executor_start(statement);
}

#[cfg(test)]
pub mod pg_test {
    pub fn setup(_options: Vec<&str>) {}

    #[must_use]
    pub fn postgresql_conf_options() -> Vec<&'static str> {
        vec![]
    }
}
