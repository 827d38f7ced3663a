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

/// A connection that speaks the protocol itself (version 3.0, trust
/// authentication, as the scratch clusters have), for what no driver of
/// these tests sends: a fast-path function call (a FunctionCall message,
/// libpq's `PQfn`).
pub struct RawConnection {
    stream: std::net::TcpStream,
}

impl RawConnection {
    pub fn connect(user: &str, dbname: &str) -> RawConnection {
        let stream = std::net::TcpStream::connect(format!("127.0.0.1:{}", port()))
            .unwrap_or_else(|e| panic!("connect to the scratch cluster: {e}"));
        let mut connection = RawConnection { stream };
        let mut body = 196608u32.to_be_bytes().to_vec();
        for field in ["user", user, "database", dbname, ""] {
            body.extend_from_slice(field.as_bytes());
            body.push(0);
        }
        connection.send(None, &body);
        connection.until_ready().expect("startup");
        connection
    }

    /// A simple query; Err(SQLSTATE) when it fails.
    pub fn query(&mut self, sql: &str) -> Result<(), String> {
        let mut body = sql.as_bytes().to_vec();
        body.push(0);
        self.send(Some(b'Q'), &body);
        self.until_ready().map(|_| ())
    }

    /// A fast-path call of `function` with binary arguments; its binary
    /// result (None for NULL), or Err(SQLSTATE).
    pub fn call(&mut self, function: u32, args: &[&[u8]]) -> Result<Option<Vec<u8>>, String> {
        let mut body = function.to_be_bytes().to_vec();
        body.extend_from_slice(&1u16.to_be_bytes()); // one format code: binary
        body.extend_from_slice(&1u16.to_be_bytes());
        body.extend_from_slice(&(args.len() as u16).to_be_bytes());
        for arg in args {
            body.extend_from_slice(&(arg.len() as u32).to_be_bytes());
            body.extend_from_slice(arg);
        }
        body.extend_from_slice(&1u16.to_be_bytes()); // the result in binary
        self.send(Some(b'F'), &body);
        self.until_ready()
    }

    fn send(&mut self, kind: Option<u8>, body: &[u8]) {
        use std::io::Write;
        let mut message: Vec<u8> = kind.into_iter().collect();
        message.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
        message.extend_from_slice(body);
        self.stream.write_all(&message).expect("send a message");
    }

    /// Read up to ReadyForQuery: a function result, or the first error's
    /// SQLSTATE.
    fn until_ready(&mut self) -> Result<Option<Vec<u8>>, String> {
        use std::io::Read;
        let (mut result, mut error) = (None, None);
        loop {
            let mut header = [0u8; 5];
            self.stream.read_exact(&mut header).expect("read a message");
            let length = u32::from_be_bytes(header[1..5].try_into().unwrap()) as usize;
            let mut body = vec![0u8; length - 4];
            self.stream.read_exact(&mut body).expect("read a message");
            match header[0] {
                b'R' => assert_eq!(&body[..4], &[0, 0, 0, 0], "trust authentication"),
                b'V' => {
                    let n = i32::from_be_bytes(body[..4].try_into().unwrap());
                    result = (n >= 0).then(|| body[4..].to_vec());
                }
                b'E' if error.is_none() => {
                    // Fields: a type byte, then a NUL-terminated string.
                    let mut fields = body.split(|&b| b == 0);
                    error = fields
                        .find(|f| f.first() == Some(&b'C'))
                        .map(|f| String::from_utf8_lossy(&f[1..]).into_owned());
                }
                b'Z' => return error.map_or(Ok(result), Err),
                _ => {}
            }
        }
    }
}
