//! What a client controls beyond its SQL: connection options (-c, PGOPTIONS,
//! a DSN's options) and the query text other sessions of its role can read.

use postgres::Client;
use tenancy_client_tests::*;

/// A database with tenant alpha, a signing key, require_token stored for the
/// application role in this database, and a token for alpha.
fn setup(db: &str) -> (Client, String) {
    fresh_database(db);
    let mut admin = connect(SUPERUSER, db);
    admin
        .batch_execute(&format!(
            "SELECT tenancy.register_tenant('alpha', 'Alpha'); \
             SELECT tenancy.add_signing_key('k1'); \
             ALTER ROLE {APP} IN DATABASE {db} SET tenancy.require_token = on"
        ))
        .unwrap();
    let token: String = admin
        .query_one("SELECT tenancy.issue_token('alpha')", &[])
        .unwrap()
        .get(0);
    (admin, token)
}

fn set_tenant(app: &mut Client) -> Result<(), postgres::Error> {
    app.query_one("SELECT tenancy.set_tenant('alpha')", &[])
        .map(|_| ())
}

fn set_tenant_token(app: &mut Client, token: &str) -> Result<(), postgres::Error> {
    app.query_one("SELECT tenancy.set_tenant_token($1)", &[&token])
        .map(|_| ())
}

#[test]
fn a_connection_option_cannot_switch_require_token_off() {
    const DB: &str = "tenancy_client_options";
    let (mut admin, token) = setup(DB);
    // Without options: the role's stored setting holds.
    let mut app = connect(APP, DB);
    assert_eq!(sqlstate(&set_tenant(&mut app).unwrap_err()), "42501");
    set_tenant_token(&mut app, &token).unwrap();

    // -c tenancy.require_token=off replaced the role's value before the library
    // loaded; PostgreSQL then refuses it, leaving the default (off). The session
    // may not enter a tenant context at all, by name or by token.
    for preload in [false, true] {
        if preload {
            admin
                .batch_execute(&format!(
                    "ALTER ROLE {APP} IN DATABASE {DB} SET session_preload_libraries = 'tenancy'"
                ))
                .unwrap();
        }
        // PostgreSQL matches setting names without regard to case: so does
        // the check (TENANCY.require_token replaced tenancy.require_token).
        for option in [
            "-c tenancy.require_token=off",
            "-c tenancy.jwt_claim=sub",
            "-c TENANCY.require_token=off",
            "-c Tenancy.Require_Token=off",
        ] {
            let mut app = connect_with_options(APP, DB, option).unwrap();
            let err = set_tenant(&mut app).unwrap_err();
            assert_eq!(sqlstate(&err), "42501", "{option}, preload {preload}");
            let err = set_tenant_token(&mut app, &token).unwrap_err();
            assert_eq!(sqlstate(&err), "42501", "{option}, preload {preload}");
            assert!(
                format!("{err:?}").contains("cannot be given as a connection option"),
                "{option}: {err:?}"
            );
            assert_eq!(current_tenant(&mut app), None);
        }
    }
    // A superuser's connection option is legitimate and applied.
    let mut root = connect_with_options(SUPERUSER, DB, "-c tenancy.require_token=off").unwrap();
    let value: String = root
        .query_one("SELECT current_setting('tenancy.require_token')", &[])
        .unwrap()
        .get(0);
    assert_eq!(value, "off");
    admin
        .batch_execute(&format!("ALTER ROLE {APP} IN DATABASE {DB} RESET ALL"))
        .unwrap();
}

#[test]
fn a_bound_token_is_not_visible_to_other_sessions_of_the_role() {
    const DB: &str = "tenancy_client_tokens";
    let (mut admin, token) = setup(DB);
    admin
        .batch_execute(&format!("ALTER ROLE {APP} IN DATABASE {DB} RESET ALL"))
        .unwrap();
    let mut presenter = connect(APP, DB);
    let mut neighbour = connect(APP, DB);
    let pid: i32 = presenter
        .query_one("SELECT pg_backend_pid()", &[])
        .unwrap()
        .get(0);
    let seen = |neighbour: &mut Client| -> String {
        neighbour
            .query_one("SELECT query FROM pg_stat_activity WHERE pid = $1", &[&pid])
            .unwrap()
            .get(0)
    };
    // As a bind parameter (what the README and the drivers' tests do): the
    // statement text holds $1, never the token.
    set_tenant_token(&mut presenter, &token).unwrap();
    let query = seen(&mut neighbour);
    assert!(query.contains("set_tenant_token($1)"), "{query}");
    assert!(!query.contains(&token), "{query}");
    // As a literal, the idle session keeps showing it to every session of the
    // role: the exposure the README warns about.
    presenter
        .batch_execute(&format!("SELECT tenancy.set_tenant_token('{token}')"))
        .unwrap();
    assert!(seen(&mut neighbour).contains(&token));
}

fn current_tenant(app: &mut Client) -> Option<String> {
    app.query_one("SELECT tenancy.current_tenant()::text", &[])
        .unwrap()
        .get(0)
}
