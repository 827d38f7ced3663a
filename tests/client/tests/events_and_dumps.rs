//! Lifecycle events delivered to a listening connection, and a real
//! pg_dump -Fc → pg_restore round trip of a database using tenancy.

use postgres::fallible_iterator::FallibleIterator;
use std::process::Command;
use std::time::Duration;
use tenancy_client_tests::*;

#[test]
fn lifecycle_changes_are_notified_at_commit() {
    let db = "tenancy_client_events";
    fresh_database(db);
    let mut listener = connect(SUPERUSER, db);
    listener.batch_execute("LISTEN tenancy_events").unwrap();
    let mut admin = connect(SUPERUSER, db);
    admin
        .batch_execute(
            "BEGIN; SELECT tenancy.register_tenant('ghost', 'Ghost'); ROLLBACK; \
             SELECT tenancy.register_tenant('evt', 'Events'); \
             SELECT tenancy.suspend_tenant('evt', 'x'); \
             SELECT tenancy.delete_tenant('evt', destroy_data => true);",
        )
        .unwrap();
    let payloads: Vec<serde_json::Value> = listener
        .notifications()
        .timeout_iter(Duration::from_secs(2))
        .take(3)
        .map(|n| {
            assert_eq!(n.channel(), "tenancy_events");
            Ok(serde_json::from_str(n.payload()).expect("payload is JSON"))
        })
        .collect()
        .unwrap();
    let seen: Vec<(&str, &str, &str)> = payloads
        .iter()
        .map(|p| {
            (
                p["action"].as_str().unwrap(),
                p["identifier"].as_str().unwrap(),
                p["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("register", "evt", "active"),
            ("suspend", "evt", "suspended"),
            ("destroy", "evt", "destroyed")
        ],
        "the rolled-back registration sent nothing"
    );
    assert!(payloads
        .iter()
        .all(|p| p["tenant_id"].as_str().is_some_and(|id| id.len() == 36)));
    // Any role may NOTIFY the channel: a consumer checks an event against the
    // audit row it names, which only the extension writes.
    for p in &payloads {
        let audit_id = p["audit_id"].as_i64().expect("audit_id in every event");
        let row = admin
            .query_one(
                "SELECT action, tenant_identifier FROM tenancy.audit_log WHERE id = $1",
                &[&audit_id],
            )
            .unwrap();
        assert_eq!(row.get::<_, String>(0), p["action"].as_str().unwrap());
        assert_eq!(row.get::<_, String>(1), p["identifier"].as_str().unwrap());
    }
}

/// Every row of a table as text, in a stable order.
fn rows(client: &mut postgres::Client, table: &str) -> Vec<String> {
    client
        .query(
            &format!("SELECT x::text FROM {table} x ORDER BY x::text"),
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[test]
fn dump_and_restore_keep_tenants_audit_config_and_policies() {
    let (src, dst) = ("tenancy_client_dump_src", "tenancy_client_dump_dst");
    fresh_database(src);
    let mut admin = connect(SUPERUSER, src);
    admin
        .batch_execute(&format!(
            "SELECT tenancy.register_tenant('dump-a', 'A', '{{\"plan\": \"pro\"}}'); \
             SELECT tenancy.register_tenant('dump-b', 'B'); \
             SELECT tenancy.suspend_tenant('dump-b', 'dumped while suspended'); \
             SELECT tenancy.set_config_default('theme', '\"light\"'); \
             SELECT tenancy.set_tenant_config('dump-a', 'theme', '\"dark\"'); \
             CREATE TABLE public.items (tenant_id uuid NOT NULL, id int, name text, PRIMARY KEY (tenant_id, id)); \
             GRANT SELECT, INSERT ON public.items TO {APP};"
        ))
        .unwrap();
    // A CALL that commits must be a statement of its own (no implicit transaction).
    admin
        .batch_execute(&format!(
            "CALL tenancy.add_migration('0001-docs', 'CREATE TABLE docs (body text); GRANT SELECT, INSERT ON docs TO {APP}')"
        ))
        .unwrap();
    admin
        .batch_execute("SELECT tenancy.register_tenant('dump-s', 'Schema tenant', '{}', 'schema')")
        .unwrap();
    let mut app = connect(APP, src);
    app.batch_execute(
        "SELECT tenancy.set_tenant('dump-a'); INSERT INTO public.items VALUES (DEFAULT, 1, 'a1');",
    )
    .unwrap();
    admin
        .batch_execute(
            "SELECT tenancy.activate_tenant('dump-b'); \
             SELECT tenancy.suspend_tenant('dump-b', 'dumped while suspended');",
        )
        .unwrap();

    /// The dump file, removed however the test ends.
    struct DumpFile(std::path::PathBuf);
    impl Drop for DumpFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
    let file =
        DumpFile(std::env::temp_dir().join(format!("tenancy-dump-{}.pgdump", std::process::id())));
    let dump = Command::new(pg_bin("pg_dump"))
        .args([
            "-Fc",
            "-h",
            "127.0.0.1",
            "-p",
            &port(),
            "-U",
            SUPERUSER,
            "-d",
            src,
            "-f",
        ])
        .arg(&file.0)
        .output()
        .unwrap();
    assert!(
        dump.status.success(),
        "pg_dump: {}",
        String::from_utf8_lossy(&dump.stderr)
    );
    let mut postgres = connect(SUPERUSER, "postgres");
    postgres
        .batch_execute(&format!("DROP DATABASE IF EXISTS {dst} WITH (FORCE)"))
        .unwrap();
    postgres
        // From template0, as pg_restore wants: the dump carries what the
        // source had from template1.
        .batch_execute(&format!("CREATE DATABASE {dst} TEMPLATE template0"))
        .unwrap();
    let restore = Command::new(pg_bin("pg_restore"))
        .args(["-h", "127.0.0.1", "-p", &port(), "-U", SUPERUSER, "-d", dst])
        .arg(&file.0)
        .output()
        .unwrap();
    assert!(
        restore.status.success() && restore.stderr.is_empty(),
        "pg_restore: {}",
        String::from_utf8_lossy(&restore.stderr)
    );

    let mut restored = connect(SUPERUSER, dst);
    for table in [
        "tenancy.tenants",
        "tenancy.audit_log",
        "tenancy.protected_tables",
        "tenancy.config_defaults",
        "tenancy.tenant_config",
        "tenancy.signing_keys",
        "tenancy.migrations",
        "tenancy.schema_migrations",
        "public.items",
    ] {
        assert_eq!(
            rows(&mut admin, table),
            rows(&mut restored, table),
            "{table} differs after restore"
        );
    }
    let protection = "SELECT c.relrowsecurity, c.relforcerowsecurity, p.polname, \
                        pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid) \
                      FROM pg_class c JOIN pg_policy p ON p.polrelid = c.oid \
                      WHERE c.oid = 'public.items'::regclass";
    let describe = |c: &mut postgres::Client| -> Vec<String> {
        c.query(&format!("SELECT x::text FROM ({protection}) x"), &[])
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect()
    };
    assert_eq!(describe(&mut admin), describe(&mut restored));
    assert_eq!(
        describe(&mut restored).len(),
        1,
        "exactly the one policy, not a second from auto-protect"
    );

    // The restored database works: audit ids continue, isolation holds, the
    // suspended tenant is still refused.
    restored
        .batch_execute("SELECT tenancy.register_tenant('after-restore', 'After')")
        .unwrap();
    let mut app = connect(APP, dst);
    app.batch_execute("SELECT tenancy.set_tenant('dump-a')")
        .unwrap();
    let names: Vec<String> = app
        .query("SELECT name FROM public.items", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(names, ["a1"]);
    let theme: String = app
        .query_one("SELECT tenancy.config('theme')::text", &[])
        .unwrap()
        .get(0);
    assert_eq!(theme, "\"dark\"");
    let err = app
        .batch_execute("SELECT tenancy.set_tenant('dump-b')")
        .unwrap_err();
    assert_eq!(sqlstate(&err), "55000");
}
