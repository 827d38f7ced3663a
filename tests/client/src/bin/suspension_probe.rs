//! Benchmark probe (scripts/bench.sh): N application connections use a tenant,
//! an administrator suspends it and commits, then every connection runs one
//! more statement. Prints how many of those statements were served (target: 0).
//!
//! Usage: suspension_probe PORT DATABASE CONNECTIONS TENANT

use postgres::{Client, NoTls};

fn connect(port: &str, db: &str, user: &str) -> Client {
    Client::connect(
        &format!("host=127.0.0.1 port={port} dbname={db} user={user}"),
        NoTls,
    )
    .unwrap_or_else(|e| panic!("connect as {user}: {e}"))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, port, db, connections, tenant] = &args[..] else {
        panic!("usage: suspension_probe PORT DATABASE CONNECTIONS TENANT");
    };
    let connections: usize = connections.parse().expect("CONNECTIONS is a number");
    let mut apps: Vec<Client> = (0..connections)
        .map(|_| connect(port, db, "bench_app"))
        .collect();
    for app in &mut apps {
        app.execute("SELECT tenancy.set_tenant($1)", &[tenant])
            .unwrap();
        app.query_one("SELECT count(*) FROM bench.orders WHERE id = 1", &[])
            .unwrap();
    }
    let mut admin = connect(port, db, "postgres");
    admin
        .execute("SELECT tenancy.suspend_tenant($1, 'benchmark')", &[tenant])
        .unwrap();
    let served = apps
        .iter_mut()
        .map(|app| {
            app.query_one("SELECT count(*) FROM bench.orders WHERE id = 1", &[])
                .is_ok()
        })
        .filter(|served| *served)
        .count();
    admin
        .execute("SELECT tenancy.activate_tenant($1)", &[tenant])
        .unwrap();
    println!("{connections} {served}");
}
