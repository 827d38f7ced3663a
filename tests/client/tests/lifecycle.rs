//! Tenant lifecycle under concurrency, from real clients.

use std::sync::{Arc, Barrier};
use tenancy_client_tests::*;

const DB: &str = "tenancy_client_lifecycle";
const CONNECTIONS: usize = 16;

/// `register_tenant(identifier, …, isolation)` from CONNECTIONS connections
/// released at once: the SQLSTATE each one got (empty for success).
fn register_from_many(identifier: &'static str, isolation: &'static str) -> Vec<String> {
    let start = Arc::new(Barrier::new(CONNECTIONS));
    let workers: Vec<_> = (0..CONNECTIONS)
        .map(|_| {
            let start = start.clone();
            std::thread::spawn(move || {
                let mut admin = connect(SUPERUSER, DB);
                start.wait();
                match admin.execute(
                    "SELECT tenancy.register_tenant($1, $1, '{}', $2)",
                    &[&identifier, &isolation],
                ) {
                    Ok(_) => String::new(),
                    Err(e) => sqlstate(&e),
                }
            })
        })
        .collect();
    workers.into_iter().map(|w| w.join().unwrap()).collect()
}

#[test]
fn concurrent_registration_of_one_identifier_has_one_winner() {
    fresh_database(DB);
    for (identifier, isolation) in [("contested", "shared"), ("contested-schema", "schema")] {
        let outcomes = register_from_many(identifier, isolation);
        let winners = outcomes.iter().filter(|s| s.is_empty()).count();
        assert_eq!(winners, 1, "{isolation}: {outcomes:?}");
        assert!(
            outcomes.iter().all(|s| s.is_empty() || s == "23505"),
            "{isolation}: the others get 23505: {outcomes:?}"
        );
    }
    let mut admin = connect(SUPERUSER, DB);
    let row = admin
        .query_one(
            "SELECT (SELECT count(*) FROM tenancy.tenants), \
                    (SELECT count(*) FROM tenancy.audit_log WHERE action = 'register'), \
                    (SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'tenant\\_%')",
            &[],
        )
        .unwrap();
    let (tenants, audited, schemas): (i64, i64, i64) = (row.get(0), row.get(1), row.get(2));
    assert_eq!(
        (tenants, audited, schemas),
        (2, 2, 1),
        "one tenant, one audit row and one schema per identifier"
    );
}
