//! The tenant context seen from real clients: forging attempts made before the
//! library is loaded in a backend, and changes seen across connections.

use tenancy_client_tests::*;

const DB: &str = "tenancy_client_context";

/// Two tenants (ids of alpha and beta), registered once for this file.
fn setup() -> (String, String) {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        fresh_database(DB);
        connect(SUPERUSER, DB)
            .batch_execute(
                "SELECT tenancy.register_tenant('alpha', 'Alpha'); \
                 SELECT tenancy.register_tenant('beta', 'Beta');",
            )
            .unwrap();
    });
    let mut admin = connect(SUPERUSER, DB);
    let id = |admin: &mut postgres::Client, t: &str| -> String {
        admin
            .query_one(
                "SELECT id::text FROM tenancy.tenants WHERE identifier = $1",
                &[&t],
            )
            .unwrap()
            .get(0)
    };
    (id(&mut admin, "alpha"), id(&mut admin, "beta"))
}

fn current_tenant(client: &mut postgres::Client) -> Option<String> {
    client
        .query_one("SELECT tenancy.current_tenant()::text", &[])
        .unwrap()
        .get(0)
}

#[test]
fn placeholder_set_before_the_library_loads_is_discarded() {
    let (alpha, _) = setup();
    // A fresh backend: the library is not loaded yet, so this SET creates a
    // placeholder that a user-set value could sneak through.
    let mut app = connect(APP, DB);
    app.batch_execute(&format!("SET tenancy.tenant = '{alpha}'"))
        .unwrap();
    // Loading the library defines the real (superuser-only) setting: the
    // placeholder's value is refused, the context stays empty.
    assert_eq!(current_tenant(&mut app), None);
    // And the prefix is reserved from now on.
    let err = app
        .batch_execute(&format!("SET tenancy.tenant = '{alpha}'"))
        .unwrap_err();
    assert_eq!(sqlstate(&err), "42501");
}

#[test]
fn startup_option_cannot_set_the_tenant() {
    let (alpha, _) = setup();
    // PGOPTIONS='-c tenancy.tenant=…': accepted as a placeholder at startup when the
    // library is not preloaded, but discarded when it loads.
    match connect_with_options(APP, DB, &format!("-c tenancy.tenant={alpha}")) {
        Ok(mut app) => assert_eq!(current_tenant(&mut app), None),
        Err(e) => assert_eq!(sqlstate(&e), "42501", "refused at startup"),
    }
}

#[test]
fn alter_role_set_by_the_application_role_is_refused() {
    let (alpha, _) = setup();
    // Before the library is loaded the name is an unknown placeholder: only a
    // superuser may store it in role settings.
    let mut app = connect(APP, DB);
    let err = app
        .batch_execute(&format!("ALTER ROLE {APP} SET tenancy.tenant = '{alpha}'"))
        .unwrap_err();
    assert_eq!(sqlstate(&err), "42501");
    let err = app
        .batch_execute(&format!(
            "ALTER ROLE {APP} IN DATABASE {DB} SET tenancy.tenant = '{alpha}'"
        ))
        .unwrap_err();
    assert_eq!(sqlstate(&err), "42501");
    // After it is loaded, the setting is known and superuser-only.
    assert_eq!(current_tenant(&mut app), None);
    let err = app
        .batch_execute(&format!("ALTER ROLE {APP} SET tenancy.tenant = '{alpha}'"))
        .unwrap_err();
    assert_eq!(sqlstate(&err), "42501");
    // A new connection carries no tenant.
    assert_eq!(current_tenant(&mut connect(APP, DB)), None);
}

#[test]
fn suspension_reaches_every_connection_on_its_next_transaction() {
    let (_, beta) = setup();
    let mut apps: Vec<_> = (0..10).map(|_| connect(APP, DB)).collect();
    for app in &mut apps {
        let id: String = app
            .query_one("SELECT tenancy.set_tenant('beta')::text", &[])
            .unwrap()
            .get(0);
        assert_eq!(id, beta);
        assert_eq!(
            current_tenant(app).as_deref(),
            Some(beta.as_str()),
            "cache is warm"
        );
    }
    let mut admin = connect(SUPERUSER, DB);
    admin
        .batch_execute("SELECT tenancy.suspend_tenant('beta', 'client test')")
        .unwrap();
    let served = apps
        .iter_mut()
        .map(|app| {
            app.query_one("SELECT tenancy.current_tenant()", &[])
                .is_ok()
        })
        .filter(|served| *served)
        .count();
    assert_eq!(served, 0, "statements served for a suspended tenant");
    for app in &mut apps {
        let err = app
            .query_one("SELECT tenancy.set_tenant('beta')", &[])
            .unwrap_err();
        assert_eq!(sqlstate(&err), "55000");
    }
    admin
        .batch_execute("SELECT tenancy.activate_tenant('beta')")
        .unwrap();
    for app in &mut apps {
        assert_eq!(
            current_tenant(app).as_deref(),
            Some(beta.as_str()),
            "reinstated"
        );
    }
}

#[test]
fn refused_attempts_are_written_to_the_server_log() {
    setup();
    let mut app = connect(APP, DB);
    let err = app
        .query_one("SELECT tenancy.set_tenant('no-such-tenant')", &[])
        .unwrap_err();
    assert_eq!(sqlstate(&err), "P0002");
    let log = server_log();
    assert!(
        log.contains(&format!(
            "tenancy: refused tenant context \"no-such-tenant\" for role \"{APP}\": \
             tenant \"no-such-tenant\" does not exist"
        )),
        "refusal not found in the server log"
    );
}

#[test]
fn refusals_are_logged_at_most_once_a_second_per_backend() {
    setup();
    let mut app = connect(APP, DB);
    let pid: i32 = app
        .query_one("SELECT pg_backend_pid()", &[])
        .unwrap()
        .get(0);
    let marker = format!("flood-{pid}");
    let refuse = |app: &mut postgres::Client| {
        let err = app
            .query_one("SELECT tenancy.set_tenant($1)", &[&marker])
            .unwrap_err();
        assert_eq!(sqlstate(&err), "P0002");
    };
    for _ in 0..50 {
        refuse(&mut app);
    }
    let lines = |log: &str| {
        log.lines()
            .filter(|l| l.contains(&marker) && l.contains("LOG:"))
            .count()
    };
    let logged = lines(&server_log());
    assert!(
        (1..=2).contains(&logged),
        "50 refusals in well under a second wrote {logged} lines"
    );
    std::thread::sleep(std::time::Duration::from_millis(2100));
    refuse(&mut app);
    let log = server_log();
    assert_eq!(lines(&log), logged + 1);
    assert!(log.contains("more refused in this session since the last line"));
}

/// The context functions keep PostgreSQL's default privilege (sql/finalize.sql).
/// Where default privileges take EXECUTE away from PUBLIC, CREATE EXTENSION
/// grants it back to them, and only to them.
#[test]
fn context_functions_stay_callable_under_restrictive_default_privileges() {
    const OTHER_DB: &str = "tenancy_client_default_privileges";
    empty_database(OTHER_DB);
    connect(SUPERUSER, OTHER_DB)
        .batch_execute(
            "ALTER DEFAULT PRIVILEGES REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC; \
             CREATE EXTENSION tenancy; \
             SELECT tenancy.register_tenant('alpha', 'Alpha');",
        )
        .unwrap();
    let mut app = connect(APP, OTHER_DB);
    app.batch_execute("SELECT tenancy.set_tenant('alpha')")
        .unwrap();
    let identifier: String = app
        .query_one("SELECT tenancy.current_tenant_identifier()", &[])
        .unwrap()
        .get(0);
    assert_eq!(identifier, "alpha");
    let refused = app
        .batch_execute("SELECT tenancy.register_tenant('mallory', 'Mallory')")
        .unwrap_err();
    assert_eq!(sqlstate(&refused), "42501");
}
