//! Through PgBouncer (started by scripts/test.sh on TENANCY_POOLER_PORT):
//! transaction pooling with `is_local` contexts — many clients, few server
//! connections, no transaction sees or writes another tenant's rows and no
//! context survives its transaction — and session pooling, where
//! `server_reset_query = DISCARD ALL` hands the next client no tenant.
//! Simple-protocol queries only: PgBouncer's transaction mode does not carry
//! named prepared statements across server connections.

use postgres::{Client, NoTls, SimpleQueryMessage};
use tenancy_client_tests::*;

/// The database behind both PgBouncer aliases (created by scripts/test.sh).
const DB: &str = "tenancy_client_pooler";
const TENANTS: usize = 8;
const CLIENTS: usize = 40;
const TRANSACTIONS: usize = 25;

fn setup() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let mut admin = connect(SUPERUSER, DB);
        admin
            .batch_execute(
                "CREATE EXTENSION IF NOT EXISTS tenancy; \
                 DROP TABLE IF EXISTS public.notes; TRUNCATE tenancy.tenants CASCADE;",
            )
            .unwrap();
        for t in 0..TENANTS {
            admin.execute("SELECT tenancy.register_tenant($1, $1)", &[&format!("pool-{t}")]).unwrap();
        }
        admin
            .batch_execute(&format!(
                "CREATE TABLE public.notes (tenant_id uuid NOT NULL, id bigint GENERATED ALWAYS AS IDENTITY, \
                   body text NOT NULL, PRIMARY KEY (tenant_id, id)); \
                 GRANT SELECT, INSERT ON public.notes TO {APP};"
            ))
            .unwrap();
    });
}

fn pooled(alias: &str) -> Client {
    let port = std::env::var("TENANCY_POOLER_PORT")
        .expect("TENANCY_POOLER_PORT is set by scripts/test.sh");
    Client::connect(
        &format!("host=127.0.0.1 port={port} dbname={alias} user={APP}"),
        NoTls,
    )
    .unwrap_or_else(|e| panic!("connect through PgBouncer: {e}"))
}

/// The first column of every row a simple query returns.
fn values(client: &mut Client, sql: &str) -> Vec<Option<String>> {
    client
        .simple_query(sql)
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .into_iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(row) => Some(row.get(0).map(str::to_string)),
            _ => None,
        })
        .collect()
}

#[test]
fn transaction_pooling_keeps_every_transaction_in_its_tenant() {
    setup();
    let workers: Vec<_> = (0..CLIENTS)
        .map(|c| {
            std::thread::spawn(move || {
                let mut client = pooled("pooled_tx");
                for n in 0..TRANSACTIONS {
                    let tenant = format!("pool-{}", (c + n) % TENANTS);
                    let seen = values(
                        &mut client,
                        &format!(
                            "BEGIN; \
                             SELECT tenancy.set_tenant('{tenant}', is_local => true); \
                             INSERT INTO public.notes (body) VALUES ('{tenant}'); \
                             SELECT count(*) FILTER (WHERE body <> '{tenant}') || ':' || \
                                    tenancy.current_tenant_identifier() FROM public.notes; \
                             COMMIT;"
                        ),
                    );
                    assert_eq!(
                        seen.last().unwrap().as_deref(),
                        Some(&*format!("0:{tenant}"))
                    );
                    // The next transaction, on whatever server connection, has no tenant.
                    let after = values(&mut client, "SELECT tenancy.current_tenant() IS NULL");
                    assert_eq!(
                        after,
                        [Some("t".to_string())],
                        "a context survived its transaction"
                    );
                }
            })
        })
        .collect();
    for worker in workers {
        worker
            .join()
            .expect("a client saw another tenant's rows or a leftover context");
    }
    let mut admin = connect(SUPERUSER, DB);
    // Every row landed in the tenant that wrote it, and all writes are there.
    let misplaced: i64 = admin
        .query_one(
            "SELECT count(*) FROM public.notes n JOIN tenancy.tenants t ON t.id = n.tenant_id \
             WHERE n.body <> t.identifier",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(misplaced, 0);
    let total: i64 = admin
        .query_one("SELECT count(*) FROM public.notes", &[])
        .unwrap()
        .get(0);
    assert_eq!(total, (CLIENTS * TRANSACTIONS) as i64);
    // Few server connections served them all.
    let servers: i64 = admin
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND usename = $2",
            &[&DB, &APP],
        )
        .unwrap()
        .get(0);
    assert!(
        servers <= 5,
        "{servers} server connections for {CLIENTS} clients"
    );
}

#[test]
fn session_pooling_resets_the_context_for_the_next_client() {
    setup();
    let mut first = pooled("pooled_session");
    values(&mut first, "SELECT tenancy.set_tenant('pool-1')");
    assert_eq!(
        values(&mut first, "SELECT tenancy.current_tenant_identifier()"),
        [Some("pool-1".into())]
    );
    let pid = values(&mut first, "SELECT pg_backend_pid()");
    drop(first);
    // One server connection in this pool: the next client gets the same backend.
    let mut next = pooled("pooled_session");
    assert_eq!(
        values(&mut next, "SELECT pg_backend_pid()"),
        pid,
        "same server connection"
    );
    assert_eq!(
        values(&mut next, "SELECT tenancy.current_tenant() IS NULL"),
        [Some("t".into())]
    );
    assert_eq!(
        values(&mut next, "SELECT count(*) FROM public.notes"),
        [Some("0".into())]
    );
}
