//! Row isolation seen from real clients: several application connections, each
//! in its own tenant, working on one protected table at the same time.

use tenancy_client_tests::*;

const DB: &str = "tenancy_client_isolation";
const TENANTS: [&str; 4] = ["north", "south", "east", "west"];

fn setup() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        fresh_database(DB);
        let mut admin = connect(SUPERUSER, DB);
        for t in TENANTS {
            admin
                .execute("SELECT tenancy.register_tenant($1, $1)", &[&t])
                .unwrap();
        }
        // One table per test: tests run in parallel.
        for table in ["notes", "prepared", "empty"] {
            admin
                .batch_execute(&format!(
                    "CREATE TABLE public.{table} (tenant_id uuid NOT NULL, \
                       id bigint GENERATED ALWAYS AS IDENTITY, body text NOT NULL, \
                       PRIMARY KEY (tenant_id, id)); \
                     GRANT SELECT, INSERT, UPDATE, DELETE ON public.{table} TO {APP};"
                ))
                .unwrap();
        }
    });
}

#[test]
fn concurrent_tenants_each_see_only_their_rows() {
    setup();
    let workers: Vec<_> = TENANTS
        .iter()
        .map(|&tenant| {
            std::thread::spawn(move || {
                let mut app = connect(APP, DB);
                app.execute("SELECT tenancy.set_tenant($1)", &[&tenant])
                    .unwrap();
                let insert = app
                    .prepare("INSERT INTO public.notes (body) VALUES ($1)")
                    .unwrap();
                for i in 0..50 {
                    app.execute(&insert, &[&format!("{tenant}-{i}")]).unwrap();
                }
                let bodies: Vec<String> = app
                    .query("SELECT body FROM public.notes", &[])
                    .unwrap()
                    .iter()
                    .map(|r| r.get(0))
                    .collect();
                (tenant, bodies)
            })
        })
        .collect();
    for worker in workers {
        let (tenant, bodies) = worker.join().unwrap();
        assert_eq!(bodies.len(), 50, "{tenant} sees exactly its own 50 rows");
        assert!(
            bodies.iter().all(|b| b.starts_with(&format!("{tenant}-"))),
            "{tenant} saw a foreign row"
        );
    }
    let total: i64 = connect(SUPERUSER, DB)
        .query_one("SELECT count(*) FROM public.notes", &[])
        .unwrap()
        .get(0);
    assert_eq!(total, 200);
}

#[test]
fn a_prepared_statement_follows_the_tenant_switch() {
    setup();
    let mut app = connect(APP, DB);
    app.batch_execute("SET plan_cache_mode = force_generic_plan")
        .unwrap();
    let count_foreign = app
        .prepare("SELECT count(*) FROM public.prepared WHERE tenant_id <> tenancy.current_tenant()")
        .unwrap();
    let whose = app
        .prepare("SELECT tenancy.current_tenant_identifier()")
        .unwrap();
    for tenant in TENANTS.iter().chain(TENANTS.iter()) {
        app.execute("SELECT tenancy.set_tenant($1)", &[tenant])
            .unwrap();
        app.execute("INSERT INTO public.prepared (body) VALUES ('x')", &[])
            .unwrap();
        let foreign: i64 = app.query_one(&count_foreign, &[]).unwrap().get(0);
        assert_eq!(foreign, 0);
        let current: String = app.query_one(&whose, &[]).unwrap().get(0);
        assert_eq!(&current, tenant);
    }
}

#[test]
fn no_context_sees_nothing_and_writes_nothing() {
    setup();
    let mut app = connect(APP, DB);
    let visible: i64 = app
        .query_one("SELECT count(*) FROM public.empty", &[])
        .unwrap()
        .get(0);
    assert_eq!(visible, 0);
    let err = app
        .execute("INSERT INTO public.empty (body) VALUES ('orphan')", &[])
        .unwrap_err();
    assert_eq!(sqlstate(&err), "42501");
    // DISCARD ALL, as a pooler's reset query, ends a context.
    app.execute("SELECT tenancy.set_tenant('north')", &[])
        .unwrap();
    app.execute("INSERT INTO public.empty (body) VALUES ('north')", &[])
        .unwrap();
    assert_eq!(
        app.query_one("SELECT count(*) FROM public.empty", &[])
            .unwrap()
            .get::<_, i64>(0),
        1
    );
    app.batch_execute("DISCARD ALL").unwrap();
    let visible: i64 = app
        .query_one("SELECT count(*) FROM public.empty", &[])
        .unwrap()
        .get(0);
    assert_eq!(visible, 0);
}
