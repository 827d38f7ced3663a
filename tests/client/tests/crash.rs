//! Failure behaviour: `kill -9` of a backend in the middle of a registration
//! (with schema provisioning) and of a migration across schemas (the postmaster
//! then restarts every backend and replays the WAL), and an immediate restart
//! of the whole cluster in the middle of both. Afterwards the catalog, the
//! schemas, the migration records and the audit log agree, nothing committed
//! is lost, and a new `migrate()` finishes the work.
//! One test function, run alone in this binary: a crash ends every connection.

use postgres::Client;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tenancy_client_tests::*;

const DB: &str = "tenancy_client_crash";

/// `pg_ctl restart -m immediate` of the scratch cluster: the postmaster and
/// every backend stop without a checkpoint, and the new server replays the WAL.
fn restart_immediately() {
    let command = std::env::var("TENANCY_RESTART_COMMAND")
        .expect("TENANCY_RESTART_COMMAND is set by scripts/test.sh");
    let status = std::process::Command::new("sh")
        .args(["-c", &command])
        .status()
        .unwrap();
    assert!(status.success(), "{command}");
}

/// Reconnect once crash recovery has finished.
fn reconnect(user: &str) -> Client {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(mut client) = std::panic::catch_unwind(|| connect(user, DB)) {
            if client.simple_query("SELECT 1").is_ok() {
                return client;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the server did not come back after the crash"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn count(client: &mut Client, sql: &str) -> i64 {
    client
        .query_one(sql, &[])
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .get(0)
}

/// Start adding migration `name` (one table named after it, 0.1 s per schema)
/// on a connection of its own: its backend's pid, and the call's outcome.
fn start_slow_migration(name: &str) -> (i32, JoinHandle<Result<(), postgres::Error>>) {
    let mut migrator = connect(SUPERUSER, DB);
    let pid: i32 = migrator
        .query_one("SELECT pg_backend_pid()", &[])
        .unwrap()
        .get(0);
    let table = name.replace('-', "_");
    let sql = format!(
        "CALL tenancy.add_migration('{name}', 'SELECT pg_sleep(0.1); CREATE TABLE {table} (x int)')"
    );
    (
        pid,
        std::thread::spawn(move || migrator.batch_execute(&sql)),
    )
}

/// Migration `name` was cut off: it reached some of the 20 schemas but not
/// all, and the records agree with the schemas. Returns how many it reached.
fn assert_cut_midway(admin: &mut Client, name: &str) -> i64 {
    let migrated = count(
        admin,
        &format!("SELECT count(*) FROM tenancy.schema_migrations WHERE migration = '{name}'"),
    );
    assert!(
        0 < migrated && migrated < 20,
        "{name} cut off midway: {migrated} of 20 schemas migrated"
    );
    assert_consistent(admin);
    migrated
}

/// A new migrate() finishes what was cut off.
fn finish_migrations(admin: &mut Client) {
    admin.batch_execute("CALL tenancy.migrate()").unwrap();
    assert_eq!(
        count(admin, "SELECT count(*) FROM tenancy.pending_migrations()"),
        0
    );
    assert_consistent(admin);
}

/// Every schema tenant's recorded migrations match the tables in its schema.
fn assert_consistent(admin: &mut Client) {
    let mismatched = count(
        admin,
        "SELECT count(*) FROM tenancy.tenants t CROSS JOIN tenancy.migrations m \
         WHERE t.isolation = 'schema' \
           AND EXISTS (SELECT FROM tenancy.schema_migrations s WHERE s.tenant_id = t.id AND s.migration = m.name) \
            <> (to_regclass(quote_ident(t.schema_name) || '.' || replace(m.name, '-', '_')) IS NOT NULL)",
    );
    assert_eq!(mismatched, 0, "migration records and schemas disagree");
    let orphan_schemas = count(
        admin,
        "SELECT count(*) FROM pg_namespace n WHERE n.nspname ~ '^tenant_[0-9a-f]{32}$' \
           AND NOT EXISTS (SELECT FROM tenancy.tenants t WHERE t.schema_name = n.nspname)",
    );
    assert_eq!(orphan_schemas, 0, "a schema without its tenant");
    let unaudited = count(
        admin,
        "SELECT count(*) FROM tenancy.tenants t WHERE NOT EXISTS \
           (SELECT FROM tenancy.audit_log a WHERE a.tenant_id = t.id AND a.action = 'register')",
    );
    assert_eq!(unaudited, 0, "a tenant without its audit row");
}

#[test]
fn crashes_during_registration_and_migration_leave_a_consistent_catalog() {
    fresh_database(DB);
    let mut admin = connect(SUPERUSER, DB);
    // Each migration creates one table named after it, so schemas can be checked.
    admin
        .batch_execute("CALL tenancy.add_migration('m-1', 'CREATE TABLE m_1 (x int)')")
        .unwrap();
    for n in 0..20 {
        admin
            .execute(
                "SELECT tenancy.register_tenant($1, $1, '{}', 'schema')",
                &[&format!("crash-{n}")],
            )
            .unwrap();
    }

    // 1. A registration with schema provisioning, killed before it commits.
    let mut victim = connect(SUPERUSER, DB);
    let pid: i32 = victim
        .query_one("SELECT pg_backend_pid()", &[])
        .unwrap()
        .get(0);
    victim
        .batch_execute(
            "BEGIN; SELECT tenancy.register_tenant('half-born', 'Half', '{}', 'schema');",
        )
        .unwrap();
    kill_9(pid, &mut admin);
    drop(victim);
    let mut admin = reconnect(SUPERUSER);
    assert_eq!(
        count(
            &mut admin,
            "SELECT count(*) FROM tenancy.tenants WHERE identifier = 'half-born'"
        ),
        0
    );
    assert_eq!(
        count(&mut admin, "SELECT count(*) FROM tenancy.tenants"),
        20,
        "committed tenants survived"
    );
    assert_consistent(&mut admin);

    // 2. A migration across the 20 schemas (each one slowed down), killed midway.
    let (pid, running) = start_slow_migration("m-2");
    std::thread::sleep(Duration::from_millis(1000));
    kill_9(pid, &mut admin);
    assert!(running.join().unwrap().is_err(), "m-2 was cut off");
    let mut admin = reconnect(SUPERUSER);
    let migrated = assert_cut_midway(&mut admin, "m-2");
    let pending = count(
        &mut admin,
        "SELECT count(*) FROM tenancy.pending_migrations()",
    );
    assert_eq!(pending, 20 - migrated, "the rest is pending");

    // 3. Resume: a new migrate() finishes.
    finish_migrations(&mut admin);

    // 4. An immediate restart of the cluster with committed work that no
    //    checkpoint has written yet, a registration open and a migration running.
    admin
        .batch_execute(
            "SELECT tenancy.register_tenant('committed', 'Committed'); \
             SELECT tenancy.suspend_tenant('committed', 'unpaid');",
        )
        .unwrap();
    let mut open = connect(SUPERUSER, DB);
    open.batch_execute(
        "BEGIN; SELECT tenancy.register_tenant('half-born-2', 'Half', '{}', 'schema');",
    )
    .unwrap();
    let (_, running) = start_slow_migration("m-3");
    std::thread::sleep(Duration::from_millis(1000));
    restart_immediately();
    assert!(running.join().unwrap().is_err(), "m-3 was cut off");
    drop(open);
    let mut admin = reconnect(SUPERUSER);
    assert_eq!(
        count(
            &mut admin,
            "SELECT count(*) FROM tenancy.tenants WHERE identifier = 'half-born-2'"
        ),
        0
    );
    assert_eq!(
        count(
            &mut admin,
            "SELECT count(*) FROM tenancy.tenants WHERE identifier = 'committed' AND status = 'suspended'"
        ),
        1,
        "the committed suspension survived"
    );
    assert_eq!(
        count(
            &mut admin,
            "SELECT count(*) FROM tenancy.audit_log a JOIN tenancy.tenants t ON t.id = a.tenant_id \
             WHERE t.identifier = 'committed' AND a.action IN ('register', 'suspend')"
        ),
        2,
        "the committed audit rows survived"
    );
    assert_cut_midway(&mut admin, "m-3");
    finish_migrations(&mut admin);

    // The application role can still enter a tenant.
    let mut app = reconnect(APP);
    app.execute("SELECT tenancy.set_tenant('crash-3')", &[])
        .unwrap();
    let current: String = app
        .query_one("SELECT tenancy.current_tenant_identifier()", &[])
        .unwrap()
        .get(0);
    assert_eq!(current, "crash-3");
}
