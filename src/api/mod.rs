//! The SQL surface, one module per concept.

pub mod audit;
pub mod citus;
pub mod config;
pub mod context;
pub mod distribute;
pub mod keys;
pub mod lifecycle;
pub mod limits;
pub mod migrations;
pub mod policies;
pub mod roles;
pub mod routines;
pub mod schemas;
pub mod tokens;
pub mod usage;

/// Each input rule is checked twice: in Rust, so that a caller gets a
/// message and a hint, and as a CHECK constraint of the catalog, so that no
/// write bypasses it. The two must accept the same values (Rust may only be
/// stricter where a case says so); this fails when one is changed alone.
#[cfg(any(test, feature = "pg_test"))]
#[pgrx::pg_schema]
mod tests {
    use crate::api::{config, keys, migrations};
    use crate::tenant::{validate_identifier, validate_name};
    use pgrx::prelude::*;

    /// Whether the catalog's constraint `name` accepts `value` for `column`
    /// (NULL, like a CHECK, accepts).
    fn check_accepts(name: &str, column: &str, value: &str) -> bool {
        let expr = Spi::get_one_with_args::<String>(
            "SELECT pg_get_expr(conbin, conrelid) FROM pg_constraint \
              WHERE conname = $1 AND connamespace = 'tenancy'::regnamespace",
            &[name.into()],
        )
        .unwrap()
        .unwrap_or_else(|| panic!("no constraint {name}"));
        Spi::get_one_with_args::<bool>(
            &format!("SELECT {expr} FROM (SELECT $1::text AS {column}) v"),
            &[value.into()],
        )
        .unwrap()
        .unwrap_or(true)
    }

    fn agree(name: &str, column: &str, rust: impl Fn(&str) -> bool, values: &[&str]) {
        for value in values {
            assert_eq!(
                rust(value),
                check_accepts(name, column, value),
                "{name}: Rust and the catalog disagree on {value:?}"
            );
        }
    }

    #[pg_test]
    fn rust_rules_and_catalog_checks_agree() {
        let long = |n: usize| "a".repeat(n);
        let (a62, a63, a64) = (long(62), long(63), long(64));
        let (a100, a101, a128, a129) = (long(100), long(101), long(128), long(129));
        agree(
            "tenants_identifier_is_slug",
            "identifier",
            |v| validate_identifier(v).is_ok(),
            &[
                "acme",
                "acme-corp",
                "a1-b2",
                "ab",
                "abc",
                &a63,
                &a64,
                "-ab",
                "ab-",
                "a--b",
                "1ab",
                "Abc",
                "a_b",
                "a.b",
                "a b",
                "été",
                "",
            ],
        );
        // Stricter in Rust: an identifier in the form of a UUID would be read
        // as a tenant id by a JWT claim.
        let uuid_form = "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11";
        assert!(validate_identifier(uuid_form).is_err());
        assert!(check_accepts(
            "tenants_identifier_is_slug",
            "identifier",
            uuid_form
        ));

        let n200 = "n".repeat(200);
        let n201 = "n".repeat(201);
        agree(
            "tenants_name_length",
            "name",
            |v| validate_name(v).is_ok(),
            &[
                "ACME Corporation",
                "x",
                " x ",
                &n200,
                &n201,
                "",
                "   ",
                "été",
            ],
        );
        // Stricter in Rust: a name of tabs or newlines only is blank too.
        assert!(validate_name("\t\n").is_err());

        for constraint in ["config_defaults_key_format", "tenant_config_key_format"] {
            agree(
                constraint,
                "key",
                config::key_is_valid,
                &[
                    "billing.plan",
                    "a",
                    "a-b_c.d9",
                    &a100,
                    &a101,
                    "",
                    "1a",
                    "A",
                    "a b",
                    "a/b",
                    "é",
                ],
            );
        }
        agree(
            "signing_keys_kid_format",
            "kid",
            keys::kid_is_valid,
            &[
                "k1", "2026-12", "a_b", &a62, &a63, &a64, "", "-a", "_a", "A", "a.b", "a b",
            ],
        );
        agree(
            "migrations_name_format",
            "name",
            migrations::name_is_valid,
            &[
                "0001-create-orders",
                "A.b_c",
                &a128,
                &a129,
                "",
                ".a",
                "-a",
                "_a",
                "a b",
                "a/b",
                "é",
            ],
        );
    }
}
