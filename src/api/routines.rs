//! The extension's routines written in SQL (`sql/policies.sql`,
//! `sql/schemas.sql`, `sql/verify.sql`) have their one text there. The
//! install script includes those files; an upgrade script installs them from
//! here, the library's copy of the same files: `replace_routines()`, so that
//! no upgrade script repeats a body (scripts/upgrade_script.py).

use crate::error::TenancyError;
use crate::postgres::{parser, query, security};
use pgrx::prelude::*;

/// The files with routine definitions, as the install script has them.
const SOURCES: [(&str, &str); 3] = [
    ("sql/policies.sql", include_str!("../../sql/policies.sql")),
    ("sql/schemas.sql", include_str!("../../sql/schemas.sql")),
    ("sql/verify.sql", include_str!("../../sql/verify.sql")),
];

/// Create or replace every routine of the SQL sources with the definition of
/// this library (its bodies are checked when first used, as after a restore:
/// a step of an upgrade may create them before what they refer to).
#[pg_extern]
fn replace_routines() {
    if !parser::in_extension_script(c"tenancy") {
        TenancyError::NotConfigured(
            "tenancy.replace_routines() runs only in the extension's own scripts".into(),
            "ALTER EXTENSION tenancy UPDATE runs it.".into(),
        )
        .raise();
    }
    let module = module_pathname();
    security::with_setting(c"check_function_bodies", "off", || {
        for (file, sql) in SOURCES {
            for routine in definitions(file, sql) {
                // As PostgreSQL substitutes it in an extension's scripts.
                query::run(&routine.text.replace("MODULE_PATHNAME", module));
            }
        }
    });
}

/// The library's path as the control file gives it to the scripts.
fn module_pathname() -> &'static str {
    include_str!("../../tenancy.control")
        .lines()
        .find_map(|line| line.strip_prefix("module_pathname = '")?.strip_suffix('\''))
        .unwrap_or_else(|| {
            TenancyError::Internal("tenancy.control names no module_pathname".into()).raise()
        })
}

/// The routine definitions of one source, each a CREATE OR REPLACE (so that
/// an upgrade can run it again).
fn definitions<'a>(file: &str, sql: &'a str) -> Vec<parser::RoutineDefinition<'a>> {
    let definitions = parser::routine_definitions(sql)
        .unwrap_or_else(|e| TenancyError::Internal(format!("reading {file}: {e}")).raise());
    if let Some(routine) = definitions.iter().find(|r| !r.replace) {
        TenancyError::Internal(format!(
            "{file}: {} must be created with CREATE OR REPLACE (upgrades run it again)",
            routine.name
        ))
        .raise();
    }
    definitions
}

#[cfg(any(test, feature = "pg_test"))]
#[pgrx::pg_schema]
mod tests {
    use pgrx::prelude::*;

    /// Every routine of the sources is found, under a name of the tenancy
    /// schema, once (upgrades replace them by their definitions, whatever
    /// their arguments: an overload would be ambiguous to a reader).
    #[pg_test]
    fn every_source_routine_is_found_once() {
        let mut names = Vec::new();
        for (file, sql) in super::SOURCES {
            names.extend(super::definitions(file, sql).into_iter().map(|r| r.name));
        }
        assert!(names.contains(&"tenancy.verify".to_string()));
        assert!(names.contains(&"tenancy.migrate".to_string()));
        assert!(names.iter().all(|n| n.starts_with("tenancy.")), "{names:?}");
        let count = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), count);
        assert_eq!(super::module_pathname(), "$libdir/tenancy");
    }

    /// Outside the extension's scripts it refuses, even for a superuser.
    #[pg_test(error = "tenancy.replace_routines() runs only in the extension's own scripts")]
    fn refuses_outside_extension_scripts() {
        Spi::run("SELECT tenancy.replace_routines()").unwrap();
    }
}
