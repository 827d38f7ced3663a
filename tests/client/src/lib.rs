//! Helpers for client tests: connections to the scratch cluster that
//! `scripts/test.sh` starts (port in TENANCY_TEST_PORT), one fresh database per
//! test file, and the roles of `tests/roles.sql`.

use postgres::{Client, Config, NoTls};

pub const APP: &str = "tenancy_app";
pub const SUPERUSER: &str = "postgres";

/// A program of the PostgreSQL under test (psql, pg_dump, …).
pub fn pg_bin(tool: &str) -> String {
    format!(
        "{}/{tool}",
        std::env::var("TENANCY_PG_BIN").unwrap_or("/usr/lib/postgresql/15/bin".into())
    )
}

/// The scratch cluster's port.
pub fn port() -> String {
    std::env::var("TENANCY_TEST_PORT").expect("TENANCY_TEST_PORT is set by scripts/test.sh")
}

fn config(user: &str, dbname: &str) -> Config {
    let port = std::env::var("TENANCY_TEST_PORT")
        .expect("TENANCY_TEST_PORT is set by scripts/test.sh")
        .parse()
        .expect("TENANCY_TEST_PORT is a port number");
    let mut config = Client::configure();
    config
        .host("127.0.0.1")
        .port(port)
        .user(user)
        .dbname(dbname);
    config
}

pub fn connect(user: &str, dbname: &str) -> Client {
    config(user, dbname)
        .connect(NoTls)
        .unwrap_or_else(|e| panic!("connect as {user}: {e}"))
}

/// Connect, or the error (a server that is restarting refuses).
pub fn connect_result(user: &str, dbname: &str) -> Result<Client, postgres::Error> {
    config(user, dbname).connect(NoTls)
}

/// Connect with startup options (what PGOPTIONS / `-c` send).
pub fn connect_with_options(
    user: &str,
    dbname: &str,
    options: &str,
) -> Result<Client, postgres::Error> {
    config(user, dbname).options(options).connect(NoTls)
}

/// Drop and recreate `dbname`, empty.
pub fn empty_database(dbname: &str) {
    let mut admin = connect(SUPERUSER, "postgres");
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {dbname} WITH (FORCE)"))
        .unwrap();
    admin
        .batch_execute(&format!("CREATE DATABASE {dbname}"))
        .unwrap();
}

/// Drop and recreate `dbname` with the extension installed, migrations
/// running as `tenancy_migrator` (tests/roles.sql).
pub fn fresh_database(dbname: &str) {
    empty_database(dbname);
    connect(SUPERUSER, dbname)
        .batch_execute(
            "CREATE EXTENSION tenancy; SELECT tenancy.set_migration_owner('tenancy_migrator')",
        )
        .unwrap();
}

/// `kill -9` of a backend, then wait until the postmaster has ended every
/// other backend, `sentinel`'s too: a connection made before that would be
/// ended by the restart as well.
pub fn kill_9(pid: i32, sentinel: &mut Client) {
    use std::time::{Duration, Instant};
    let status = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -9 {pid}");
    let deadline = Instant::now() + Duration::from_secs(60);
    while sentinel.simple_query("SELECT 1").is_ok() {
        assert!(
            Instant::now() < deadline,
            "the postmaster did not restart the backends"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The SQLSTATE of a failed statement.
pub fn sqlstate(error: &postgres::Error) -> String {
    error
        .code()
        .map(|c| c.code().to_string())
        .unwrap_or_else(|| format!("no SQLSTATE: {error}"))
}

/// The server log, to check what the extension logs there.
pub fn server_log() -> String {
    let path =
        std::env::var("TENANCY_SERVER_LOG").expect("TENANCY_SERVER_LOG is set by scripts/test.sh");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path}: {e}"))
}
