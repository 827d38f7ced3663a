//! Usage and limits (README, "Usage and limits"): statements counted per
//! tenant, eviction, reset, a clean restart and a crash, who sees what,
//! `tenant_activity` across backends, and every limit — as the application
//! role over several connections. They need tenancy preloaded:
//! tests/usage/run.sh runs them on a cluster of its own (`--ignored`); the
//! other client runs skip them.

use postgres::Client;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};
use tenancy_client_tests::*;

const DB: &str = "tenancy_client_usage";

/// A fresh database with tenants usage-a and usage-b, a protected table the
/// application may read and fill, a function that runs five statements, and
/// every counter reset.
fn setup() -> Client {
    fresh_database(DB);
    let mut admin = connect(SUPERUSER, DB);
    admin
        .batch_execute(
            "SELECT tenancy.register_tenant('usage-a', 'A');
             SELECT tenancy.register_tenant('usage-b', 'B');
             CREATE TABLE items (id int, tenant_id uuid NOT NULL DEFAULT tenancy.current_tenant());
             GRANT SELECT, INSERT ON items TO tenancy_app;
             CREATE FUNCTION five() RETURNS int LANGUAGE plpgsql AS $$
                 BEGIN
                     FOR i IN 1..5 LOOP PERFORM count(*) FROM items; END LOOP;
                     RETURN 5;
                 END $$;
             GRANT EXECUTE ON FUNCTION five() TO tenancy_app;
             CREATE PROCEDURE enter_and_sleep(tenant text) LANGUAGE plpgsql AS $$
                 BEGIN PERFORM tenancy.set_tenant(tenant); PERFORM pg_sleep(0.1); END $$;
             GRANT EXECUTE ON PROCEDURE enter_and_sleep(text) TO tenancy_app;
             SELECT tenancy.tenant_stats_reset();",
        )
        .unwrap();
    admin
}

/// An application connection in `tenant`'s context (session scope).
fn app_in(tenant: &str) -> Client {
    let mut client = connect(APP, DB);
    client
        .batch_execute(&format!("SELECT tenancy.set_tenant('{tenant}')"))
        .unwrap();
    client
}

/// (calls, failed, rows) of a tenant, as an administrator sees them.
fn counts(admin: &mut Client, tenant: &str) -> Option<(i64, i64, i64)> {
    admin
        .query_opt(
            "SELECT calls, failed, rows FROM tenancy.tenant_stats WHERE identifier = $1",
            &[&tenant],
        )
        .unwrap()
        .map(|row| (row.get(0), row.get(1), row.get(2)))
}

fn set_limit(admin: &mut Client, tenant: &str, key: &str, value: &str) {
    admin
        .batch_execute(&format!(
            "SELECT tenancy.set_tenant_config('{tenant}', '{key}', '{value}')"
        ))
        .unwrap();
}

fn pid(client: &mut Client) -> i32 {
    client
        .query_one("SELECT pg_backend_pid()", &[])
        .unwrap()
        .get(0)
}

#[test]
#[ignore = "needs tenancy preloaded: tests/usage/run.sh"]
fn statements_are_counted_under_their_tenant() {
    let mut admin = setup();
    let mut a = app_in("usage-a");
    let mut b = app_in("usage-b");
    // Seven queries (extended protocol), one insert of ten rows.
    for i in 0..7 {
        a.query("SELECT count(*) FROM items WHERE id > $1", &[&i])
            .unwrap();
    }
    a.batch_execute("INSERT INTO items (id) SELECT g FROM generate_series(1, 10) g")
        .unwrap();
    // Failed while it ran, and before it started (a syntax error).
    let failed = a
        .batch_execute("SELECT 1 / (count(*) - count(*))::int FROM items")
        .unwrap_err();
    assert_eq!(sqlstate(&failed), "22012");
    assert_eq!(sqlstate(&a.batch_execute("SELEC 1").unwrap_err()), "42601");
    // A function's five statements are part of the statement that calls it.
    a.batch_execute("SELECT five()").unwrap();
    // A savepoint, a failure inside it, and a plpgsql EXCEPTION block that
    // catches one (the statement around it succeeds).
    a.batch_execute("BEGIN").unwrap();
    a.batch_execute("SAVEPOINT s").unwrap();
    a.batch_execute("SELECT 1 / (count(*) - count(*))::int FROM items")
        .unwrap_err();
    a.batch_execute("ROLLBACK TO s").unwrap();
    a.batch_execute("DO $$ BEGIN PERFORM 1 / (random() * 0)::int; EXCEPTION WHEN division_by_zero THEN NULL; END $$")
        .unwrap();
    a.batch_execute("COMMIT").unwrap();
    for _ in 0..3 {
        b.batch_execute("SELECT count(*) FROM items").unwrap();
    }
    // The set_tenant that entered it, 7 + 1 + 2 + 1 + 6 statements, 3
    // failed; rows: set_tenant's, 7 counts, 10 inserted, five()'s.
    assert_eq!(counts(&mut admin, "usage-a"), Some((18, 3, 19)));
    assert_eq!(counts(&mut admin, "usage-b"), Some((4, 0, 4)));
    // The administrator's own statements ran without a tenant.
    let no_tenant: i64 = admin
        .query_one(
            "SELECT calls FROM tenancy.tenant_stats WHERE tenant_id IS NULL",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(no_tenant >= 1, "no-tenant calls: {no_tenant}");
    // Time, buffers and WAL are counted too (the insert wrote WAL).
    let row = admin
        .query_one(
            "SELECT total_time > 0, max_time <= total_time, shared_blks_hit > 0, wal_bytes > 0,
                    first_statement <= last_statement
               FROM tenancy.tenant_stats WHERE identifier = 'usage-a'",
            &[],
        )
        .unwrap();
    for i in 0..5 {
        assert!(row.get::<_, bool>(i), "column {i} of usage-a's row");
    }
    // One tenant's reset leaves the others.
    admin
        .batch_execute("SELECT tenancy.tenant_stats_reset('usage-a')")
        .unwrap();
    assert_eq!(counts(&mut admin, "usage-a"), None);
    assert_eq!(counts(&mut admin, "usage-b"), Some((4, 0, 4)));
    let unknown = admin
        .batch_execute("SELECT tenancy.tenant_stats_reset('no-such-tenant')")
        .unwrap_err();
    assert_eq!(sqlstate(&unknown), "P0002");
}

#[test]
#[ignore = "needs tenancy preloaded: tests/usage/run.sh"]
fn a_parallel_query_counts_once_and_runs_under_limits() {
    let mut admin = setup();
    admin
        .batch_execute(
            "INSERT INTO items SELECT g, (SELECT id FROM tenancy.tenants WHERE identifier = 'usage-a')
               FROM generate_series(1, 50000) g;
             ANALYZE items;",
        )
        .unwrap();
    set_limit(&mut admin, "usage-a", "limits.statement_timeout", "\"30s\"");
    set_limit(
        &mut admin,
        "usage-a",
        "limits.max_concurrent_statements",
        "1",
    );
    let mut a = app_in("usage-a");
    a.batch_execute(
        "SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0;
         SET min_parallel_table_scan_size = 0; SET max_parallel_workers_per_gather = 2;",
    )
    .unwrap();
    admin
        .batch_execute("SELECT tenancy.tenant_stats_reset()")
        .unwrap();
    let plan: Vec<String> = a
        .query("EXPLAIN (COSTS OFF) SELECT count(*) FROM items", &[])
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert!(plan.iter().any(|line| line.contains("Gather")), "{plan:?}");
    let n: i64 = a
        .query_one("SELECT count(*) FROM items", &[])
        .unwrap()
        .get(0);
    assert_eq!(n, 50000);
    // The EXPLAIN and the query: the workers' part is their leader's.
    assert_eq!(counts(&mut admin, "usage-a").map(|c| c.0), Some(2));
}

#[test]
#[ignore = "needs tenancy preloaded: tests/usage/run.sh"]
fn the_application_sees_its_tenant_and_its_own_backends() {
    let mut admin = setup();
    admin
        .batch_execute(
            "DROP ROLE IF EXISTS usage_other; CREATE ROLE usage_other LOGIN;
             SELECT tenancy.grant_admin('tenancy_admin');",
        )
        .unwrap();
    let mut a = app_in("usage-a");
    let mut b = app_in("usage-b");
    a.batch_execute("SELECT 1").unwrap();
    b.batch_execute("SELECT 1").unwrap();
    let mut other = connect("usage_other", DB);
    other
        .batch_execute("SELECT tenancy.set_tenant('usage-b')")
        .unwrap();
    let other_pid = pid(&mut other);

    let identifiers = |client: &mut Client, view: &str| -> Vec<Option<String>> {
        client
            .query(
                &format!("SELECT DISTINCT identifier FROM tenancy.{view} ORDER BY 1"),
                &[],
            )
            .unwrap()
            .iter()
            .map(|row| row.get(0))
            .collect()
    };
    // The application: the current tenant's usage only.
    assert_eq!(
        identifiers(&mut a, "tenant_stats"),
        [Some("usage-a".into())]
    );
    assert_eq!(
        identifiers(&mut b, "tenant_stats"),
        [Some("usage-b".into())]
    );
    let mut none = connect(APP, DB);
    assert!(identifiers(&mut none, "tenant_stats").is_empty());
    // … and the backends of its own role.
    let pids: Vec<i32> = a
        .query("SELECT pid FROM tenancy.tenant_activity", &[])
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(pids.len(), 2, "{pids:?}");
    assert!(!pids.contains(&other_pid));
    // An administrator (granted): every tenant, every backend.
    let mut granted = connect("tenancy_admin", DB);
    let all = identifiers(&mut granted, "tenant_stats");
    assert!(all.contains(&Some("usage-a".into())) && all.contains(&Some("usage-b".into())));
    assert!(all.contains(&None), "the no-tenant row: {all:?}");
    let seen: i64 = granted
        .query_one("SELECT count(*) FROM tenancy.tenant_activity", &[])
        .unwrap()
        .get(0);
    assert_eq!(seen, 3);
    // Resetting is for administrators.
    let refused = a
        .batch_execute("SELECT tenancy.tenant_stats_reset()")
        .unwrap_err();
    assert_eq!(sqlstate(&refused), "42501");
    granted
        .batch_execute("SELECT tenancy.tenant_stats_reset('usage-b')")
        .unwrap();
    drop(other);
    admin
        .batch_execute("SELECT tenancy.revoke_admin('tenancy_admin')")
        .unwrap();
}

#[test]
#[ignore = "needs tenancy preloaded: tests/usage/run.sh"]
fn activity_shows_each_backend_in_its_tenant() {
    let mut admin = setup();
    let mut a1 = app_in("usage-a");
    let mut a2 = app_in("usage-a");
    let mut b = connect(APP, DB);
    b.batch_execute("BEGIN; SELECT tenancy.set_tenant('usage-b', is_local => true)")
        .unwrap();
    let (a1_pid, a2_pid, b_pid) = (pid(&mut a1), pid(&mut a2), pid(&mut b));
    let activity = |admin: &mut Client| -> Vec<(i32, String, String)> {
        admin
            .query(
                "SELECT pid, identifier, scope FROM tenancy.tenant_activity ORDER BY pid",
                &[],
            )
            .unwrap()
            .iter()
            .map(|row| (row.get(0), row.get(1), row.get(2)))
            .collect()
    };
    let mut expected = vec![
        (a1_pid, "usage-a".to_string(), "session".to_string()),
        (a2_pid, "usage-a".to_string(), "session".to_string()),
        (b_pid, "usage-b".to_string(), "transaction".to_string()),
    ];
    expected.sort();
    assert_eq!(activity(&mut admin), expected);
    // A transaction-scoped context ends with its transaction; a reset ends one.
    b.batch_execute("COMMIT").unwrap();
    a2.batch_execute("SELECT tenancy.reset_tenant()").unwrap();
    assert_eq!(
        activity(&mut admin),
        [(a1_pid, "usage-a".to_string(), "session".to_string())]
    );
    // "Stop everything of tenant A" is one query.
    admin
        .batch_execute(
            "SELECT pg_terminate_backend(pid, 10000) FROM tenancy.tenant_activity
              WHERE identifier = 'usage-a'",
        )
        .unwrap();
    assert!(a1.batch_execute("SELECT 1").is_err());
    assert!(activity(&mut admin).is_empty());
}

#[test]
#[ignore = "needs tenancy preloaded: tests/usage/run.sh"]
fn the_least_used_tenants_are_evicted_beyond_stats_max() {
    let mut admin = setup();
    admin
        .batch_execute(
            "DO $$ BEGIN
                 FOR i IN 1..120 LOOP
                     PERFORM tenancy.register_tenant('many-' || i, 'Many');
                 END LOOP;
             END $$;
             SELECT tenancy.tenant_stats_reset();",
        )
        .unwrap();
    let max: i64 = admin
        .query_one("SELECT stats_max FROM tenancy.tenant_stats_info", &[])
        .unwrap()
        .get(0);
    assert_eq!(max, 100, "tests/usage/run.sh sets tenancy.stats_max = 100");
    // usage-a is the most used: it must stay.
    let mut a = app_in("usage-a");
    for _ in 0..20 {
        a.batch_execute("SELECT 1").unwrap();
    }
    let mut app = connect(APP, DB);
    for i in 1..=120 {
        app.batch_execute(&format!("SELECT tenancy.set_tenant('many-{i}')"))
            .unwrap();
        app.batch_execute("SELECT 1").unwrap();
    }
    let row = admin
        .query_one(
            "SELECT entries, dealloc FROM tenancy.tenant_stats_info",
            &[],
        )
        .unwrap();
    let (entries, dealloc): (i64, i64) = (row.get(0), row.get(1));
    assert!(entries <= 100, "entries: {entries}");
    assert!(dealloc >= 1, "dealloc: {dealloc}");
    assert_eq!(counts(&mut admin, "usage-a").map(|c| c.0), Some(21));
    // A full reset clears the entries and the evictions.
    admin
        .batch_execute("SELECT tenancy.tenant_stats_reset()")
        .unwrap();
    let row = admin
        .query_one(
            "SELECT dealloc, stats_reset > now() - interval '1 minute' FROM tenancy.tenant_stats_info",
            &[],
        )
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 0);
    assert!(row.get::<_, bool>(1));
}

#[test]
#[ignore = "needs tenancy preloaded: tests/usage/run.sh"]
fn counters_survive_a_clean_restart_and_not_a_crash() {
    let admin = setup();
    let mut a = app_in("usage-a");
    for _ in 0..4 {
        a.batch_execute("SELECT count(*) FROM items").unwrap();
    }
    drop(a);
    drop(admin);
    let restart = std::env::var("TENANCY_RESTART_COMMAND")
        .expect("TENANCY_RESTART_COMMAND is set by tests/usage/run.sh");
    let status = std::process::Command::new("sh")
        .args(["-c", &restart])
        .status()
        .unwrap();
    assert!(status.success(), "{restart}");
    let mut admin = connect(SUPERUSER, DB);
    assert_eq!(counts(&mut admin, "usage-a"), Some((5, 0, 5)));

    // A crash: the postmaster resets shared memory, and the counters with it.
    let mut victim = app_in("usage-a");
    let victim_pid = pid(&mut victim);
    kill_9(victim_pid, &mut admin);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut admin = loop {
        match connect_result(SUPERUSER, DB) {
            Ok(client) => break client,
            Err(_) if Instant::now() < deadline => thread::sleep(Duration::from_millis(100)),
            Err(e) => panic!("reconnect after the crash: {e}"),
        }
    };
    assert_eq!(counts(&mut admin, "usage-a"), None);
}

#[test]
#[ignore = "needs tenancy preloaded: tests/usage/run.sh"]
fn a_statement_over_the_statement_timeout_is_cancelled() {
    let mut admin = setup();
    set_limit(
        &mut admin,
        "usage-a",
        "limits.statement_timeout",
        "\"200ms\"",
    );
    let mut a = app_in("usage-a");
    let mut b = app_in("usage-b");
    let cancelled = a.batch_execute("SELECT pg_sleep(0.6)").unwrap_err();
    assert_eq!(sqlstate(&cancelled), "57014");
    b.batch_execute("SELECT pg_sleep(0.6)").unwrap();
    // Raising it with SET lasts until the next statement, which runs capped.
    a.batch_execute("SET statement_timeout = 0").unwrap();
    let cancelled = a.batch_execute("SELECT pg_sleep(0.6)").unwrap_err();
    assert_eq!(sqlstate(&cancelled), "57014");
    let show = |client: &mut Client| -> String {
        client
            .query_one("SHOW statement_timeout", &[])
            .unwrap()
            .get(0)
    };
    assert_eq!(show(&mut a), "200ms");
    // A lower value of the session's is kept.
    a.batch_execute("SET statement_timeout = '100ms'").unwrap();
    assert_eq!(show(&mut a), "100ms");
    // Leaving the context gives back what the session had before it.
    a.batch_execute("SELECT tenancy.reset_tenant()").unwrap();
    assert_eq!(show(&mut a), "0");
    a.batch_execute("SELECT pg_sleep(0.3)").unwrap();
    // A transaction-scoped context: capped inside, as before after.
    a.batch_execute("BEGIN; SELECT tenancy.set_tenant('usage-a', is_local => true)")
        .unwrap();
    assert_eq!(show(&mut a), "200ms");
    a.batch_execute("COMMIT").unwrap();
    assert_eq!(show(&mut a), "0");
    // An application-wide default applies to every tenant.
    admin
        .batch_execute("SELECT tenancy.set_config_default('limits.statement_timeout', '\"150ms\"')")
        .unwrap();
    let mut b = app_in("usage-b");
    assert_eq!(show(&mut b), "150ms");
    // Invalid values are refused when configured.
    for value in ["\"200 parsecs\"", "\"-5s\"", "true"] {
        let error = admin
            .batch_execute(&format!(
                "SELECT tenancy.set_tenant_config('usage-a', 'limits.statement_timeout', '{value}')"
            ))
            .unwrap_err();
        assert_eq!(sqlstate(&error), "22023", "{value}");
    }
}

#[test]
#[ignore = "needs tenancy preloaded: tests/usage/run.sh"]
fn work_mem_and_temp_file_limit_follow_the_tenant() {
    let mut admin = setup();
    set_limit(&mut admin, "usage-a", "limits.work_mem", "\"64kB\"");
    set_limit(&mut admin, "usage-a", "limits.temp_file_limit", "\"1MB\"");
    let mut a = app_in("usage-a");
    let mut b = app_in("usage-b");
    let sort_method = |client: &mut Client| -> String {
        client
            .query(
                "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF)
                 SELECT g FROM generate_series(1, 20000) g ORDER BY g DESC",
                &[],
            )
            .unwrap()
            .iter()
            .map(|row| row.get::<_, String>(0))
            .find(|line| line.contains("Sort Method"))
            .unwrap_or_default()
    };
    assert!(
        sort_method(&mut a).contains("external merge"),
        "{}",
        sort_method(&mut a)
    );
    assert!(
        sort_method(&mut b).contains("quicksort"),
        "{}",
        sort_method(&mut b)
    );
    let big_sort = "SELECT count(*) FROM (SELECT g FROM generate_series(1, 1000000) g \
                    ORDER BY g DESC OFFSET 0) s";
    let refused = a.batch_execute(big_sort).unwrap_err();
    assert_eq!(sqlstate(&refused), "53400");
    b.batch_execute(big_sort).unwrap();
}

/// Runs `sql` as the application in `tenant` on a thread of its own, after
/// the barrier; its SQLSTATE, or "ok".
fn run_in(
    tenant: &'static str,
    sql: &'static str,
    start: Arc<Barrier>,
) -> thread::JoinHandle<(i32, String)> {
    let mut client = app_in(tenant);
    let pid = pid(&mut client);
    thread::spawn(move || {
        start.wait();
        let result = match client.batch_execute(sql) {
            Ok(()) => "ok".to_string(),
            Err(e) if e.code().is_some() => sqlstate(&e),
            Err(_) => "terminated".to_string(),
        };
        (pid, result)
    })
}

/// Wait until `n` backends of `tenant` run (active) or wait for a place
/// (wait event Extension).
fn wait_for(admin: &mut Client, tenant: &str, running: i64, waiting: i64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let row = admin
            .query_one(
                "SELECT count(*) FILTER (WHERE wait_event = 'PgSleep'),
                        count(*) FILTER (WHERE wait_event = 'Extension')
                   FROM tenancy.tenant_activity WHERE identifier = $1",
                &[&tenant],
            )
            .unwrap();
        if (row.get::<_, i64>(0), row.get::<_, i64>(1)) == (running, waiting) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{tenant}: {} running and {} waiting, not {running} and {waiting}",
            row.get::<_, i64>(0),
            row.get::<_, i64>(1)
        );
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
#[ignore = "needs tenancy preloaded: tests/usage/run.sh"]
fn a_tenant_runs_at_most_its_cap_of_statements_at_once() {
    let mut admin = setup();
    set_limit(
        &mut admin,
        "usage-a",
        "limits.max_concurrent_statements",
        "2",
    );
    set_limit(&mut admin, "usage-a", "limits.queue_timeout", "\"100ms\"");
    // A statement gives its place back when it ends, and when it fails.
    let mut one = app_in("usage-a");
    for _ in 0..3 {
        one.batch_execute("SELECT 1").unwrap();
        let failed = one
            .batch_execute("SELECT 1 / (random() * 0)::int")
            .unwrap_err();
        assert_eq!(sqlstate(&failed), "22012");
    }
    drop(one);
    set_limit(&mut admin, "usage-a", "limits.queue_timeout", "\"60s\"");
    // Three statements of A: two run, the third waits for a place.
    let start = Arc::new(Barrier::new(4));
    let sleepers: Vec<_> = (0..3)
        .map(|_| run_in("usage-a", "SELECT pg_sleep(60)", start.clone()))
        .collect();
    start.wait();
    wait_for(&mut admin, "usage-a", 2, 1);
    // Another tenant is not held up.
    let mut b = app_in("usage-b");
    b.batch_execute("SELECT 1").unwrap();
    wait_for(&mut admin, "usage-a", 2, 1);
    // Terminating the waiting backend and a running one leaks no place:
    // the one left and one new statement run, a second new one waits.
    let waiting: i32 = admin
        .query_one(
            "SELECT pid FROM tenancy.tenant_activity
              WHERE identifier = 'usage-a' AND wait_event = 'Extension'",
            &[],
        )
        .unwrap()
        .get(0);
    let running: i32 = admin
        .query_one(
            "SELECT min(pid) FROM tenancy.tenant_activity
              WHERE identifier = 'usage-a' AND wait_event = 'PgSleep'",
            &[],
        )
        .unwrap()
        .get(0);
    admin
        .execute(
            "SELECT pg_terminate_backend(p, 10000) FROM unnest(ARRAY[$1, $2]::int[]) p",
            &[&waiting, &running],
        )
        .unwrap();
    wait_for(&mut admin, "usage-a", 1, 0);
    let start = Arc::new(Barrier::new(3));
    let more: Vec<_> = (0..2)
        .map(|_| run_in("usage-a", "SELECT pg_sleep(60)", start.clone()))
        .collect();
    start.wait();
    wait_for(&mut admin, "usage-a", 2, 1);
    // With a short queue timeout, the one over the cap is refused (53400):
    // entering the tenant's context is already one (it takes a place for the
    // rest of its statement).
    set_limit(&mut admin, "usage-a", "limits.queue_timeout", "\"100ms\"");
    let mut late = connect(APP, DB);
    let refused = late
        .batch_execute("SELECT tenancy.set_tenant('usage-a')")
        .unwrap_err();
    assert_eq!(sqlstate(&refused), "53400");
    admin
        .batch_execute(
            "SELECT pg_terminate_backend(pid, 10000) FROM tenancy.tenant_activity
              WHERE identifier = 'usage-a'",
        )
        .unwrap();
    let results: Vec<String> = sleepers
        .into_iter()
        .chain(more)
        .map(|t| t.join().unwrap().1)
        .collect();
    assert!(
        results.iter().all(|r| r == "terminated" || r == "57P01"),
        "{results:?}"
    );
    // Every place is back: two statements run at once again.
    let start = Arc::new(Barrier::new(3));
    let last: Vec<_> = (0..2)
        .map(|_| run_in("usage-a", "SELECT pg_sleep(0.5)", start.clone()))
        .collect();
    start.wait();
    for t in last {
        assert_eq!(t.join().unwrap().1, "ok");
    }
}

#[test]
#[ignore = "needs tenancy preloaded: tests/usage/run.sh"]
fn a_tenant_entered_inside_a_statement_brings_its_limits_and_its_usage() {
    let mut admin = setup();
    set_limit(
        &mut admin,
        "usage-a",
        "limits.statement_timeout",
        "\"200ms\"",
    );
    set_limit(
        &mut admin,
        "usage-b",
        "limits.max_concurrent_statements",
        "1",
    );
    set_limit(&mut admin, "usage-b", "limits.queue_timeout", "\"100ms\"");
    // The rest of the statement runs under the timeout of the tenant it entered.
    let mut app = connect(APP, DB);
    for sql in [
        "SELECT tenancy.set_tenant('usage-a'), pg_sleep(0.6)",
        "DO $$ BEGIN PERFORM tenancy.set_tenant('usage-a'); PERFORM pg_sleep(0.6); END $$",
    ] {
        app.batch_execute("SELECT tenancy.reset_tenant()").unwrap();
        let cancelled = app.batch_execute(sql).unwrap_err();
        assert_eq!(sqlstate(&cancelled), "57014", "{sql}");
    }
    // … and under its cap: usage-b's one place is taken.
    let start = Arc::new(Barrier::new(2));
    let holder = run_in("usage-b", "SELECT pg_sleep(60)", start.clone());
    start.wait();
    wait_for(&mut admin, "usage-b", 1, 0);
    app.batch_execute("SELECT tenancy.reset_tenant()").unwrap();
    let refused = app
        .batch_execute(
            "DO $$ BEGIN PERFORM tenancy.set_tenant('usage-b'); PERFORM pg_sleep(0.1); END $$",
        )
        .unwrap_err();
    assert_eq!(sqlstate(&refused), "53400");
    // (Also as the first statement of a session, before it read anything.)
    for sql in [
        "DO $$ BEGIN PERFORM tenancy.set_tenant('usage-b'); PERFORM pg_sleep(0.1); END $$",
        "CALL enter_and_sleep('usage-b')",
    ] {
        let mut fresh = connect(APP, DB);
        let refused = fresh.batch_execute(sql).unwrap_err();
        assert_eq!(sqlstate(&refused), "53400", "{sql}");
    }
    admin
        .batch_execute(
            "SELECT pg_terminate_backend(pid, 10000) FROM tenancy.tenant_activity
              WHERE identifier = 'usage-b'",
        )
        .unwrap();
    holder.join().unwrap();
    // What a statement does after it entered a tenant counts as that
    // tenant's: rows written in usage-a from usage-b's context.
    admin
        .batch_execute("SELECT tenancy.tenant_stats_reset()")
        .unwrap();
    let mut b = app_in("usage-b");
    b.batch_execute(
        "DO $$ BEGIN
             PERFORM tenancy.set_tenant('usage-a');
             INSERT INTO items (id) SELECT g FROM generate_series(1, 2000) g;
             PERFORM tenancy.set_tenant('usage-b');
         END $$",
    )
    .unwrap();
    let wal = |admin: &mut Client, tenant: &str| -> i64 {
        admin
            .query_one(
                "SELECT coalesce(sum(wal_bytes), 0)::bigint FROM tenancy.tenant_stats WHERE identifier = $1",
                &[&tenant],
            )
            .unwrap()
            .get(0)
    };
    let (wal_a, wal_b) = (wal(&mut admin, "usage-a"), wal(&mut admin, "usage-b"));
    assert!(
        wal_a > 50_000 && wal_b < wal_a / 10,
        "usage-a {wal_a}, usage-b {wal_b}"
    );
}

#[test]
#[ignore = "needs tenancy preloaded: tests/usage/run.sh"]
fn a_bound_portal_runs_capped_and_holds_no_place_while_idle() {
    let mut admin = setup();
    set_limit(
        &mut admin,
        "usage-a",
        "limits.statement_timeout",
        "\"200ms\"",
    );
    set_limit(
        &mut admin,
        "usage-a",
        "limits.max_concurrent_statements",
        "1",
    );
    set_limit(&mut admin, "usage-a", "limits.queue_timeout", "\"100ms\"");
    // Settings raised between Bind and Execute: the run is capped again.
    let mut a = app_in("usage-a");
    let mut t = a.transaction().unwrap();
    let sleep = t.prepare("SELECT pg_sleep(0.6)").unwrap();
    let portal = t.bind(&sleep, &[]).unwrap();
    t.batch_execute(
        "SELECT set_config('statement_timeout', '0', false), set_config('work_mem', '1GB', false)",
    )
    .unwrap();
    let cancelled = t.query_portal(&portal, 0).unwrap_err();
    assert_eq!(sqlstate(&cancelled), "57014");
    drop(t);
    // A cursor WITH HOLD runs its query at commit, where PostgreSQL has taken
    // the statement timer away: the tenant's is set for it.
    let cancelled = a
        .batch_execute(
            "DECLARE held CURSOR WITH HOLD FOR SELECT pg_sleep(0.3) FROM generate_series(1, 3)",
        )
        .unwrap_err();
    assert_eq!(sqlstate(&cancelled), "57014");
    // … and does not outlive it: the next statements run as usual.
    a.batch_execute("SELECT pg_sleep(0.1)").unwrap();
    a.batch_execute("SELECT 1").unwrap();
    // A portal bound and left idle holds no place under the cap.
    let mut t = a.transaction().unwrap();
    let one = t.prepare("SELECT 1").unwrap();
    let _idle = t.bind(&one, &[]).unwrap();
    let mut other = app_in("usage-a");
    other.batch_execute("SELECT 1").unwrap();
    t.commit().unwrap();
}

#[test]
#[ignore = "needs tenancy preloaded: tests/usage/run.sh"]
fn a_fast_path_call_is_refused_under_limits_and_counted_without() {
    let mut admin = setup();
    set_limit(
        &mut admin,
        "usage-a",
        "limits.statement_timeout",
        "\"100ms\"",
    );
    let oid = |admin: &mut Client, function: &str| -> u32 {
        admin
            .query_one(&format!("SELECT '{function}'::regprocedure::oid"), &[])
            .unwrap()
            .get(0)
    };
    let sleep = oid(&mut admin, "pg_sleep(float8)");
    let current = oid(&mut admin, "tenancy.current_tenant()");
    let half_a_second = 0.5f64.to_be_bytes();
    // Threat-model row 111: the timeout raised with SET, then a C function
    // called through the fast path, where no statement sets it again.
    let mut a = RawConnection::connect(APP, DB);
    a.query("SELECT tenancy.set_tenant('usage-a')").unwrap();
    a.query("SET statement_timeout = 0").unwrap();
    let before = counts(&mut admin, "usage-a").unwrap();
    assert_eq!(a.call(sleep, &[&half_a_second]), Err("0A000".into()));
    a.query("BEGIN").unwrap();
    assert_eq!(a.call(current, &[]), Err("0A000".into()));
    a.query("ROLLBACK").unwrap();
    // Each refused call counts once, as failed (and so does ROLLBACK, a
    // statement of its own).
    let after = counts(&mut admin, "usage-a").unwrap();
    assert_eq!((after.0 - before.0, after.1 - before.1), (4, 2));
    // The connection goes on; in a statement the function runs capped.
    assert_eq!(a.query("SELECT pg_sleep(0.5)"), Err("57014".into()));
    // Outside the context the call runs.
    a.query("SELECT tenancy.reset_tenant()").unwrap();
    assert_eq!(a.call(current, &[]), Ok(None));
    // A tenant without limits: the call runs in its context, and counts as
    // one of its statements.
    let mut b = RawConnection::connect(APP, DB);
    b.query("SELECT tenancy.set_tenant('usage-b')").unwrap();
    let calls = |admin: &mut Client| counts(admin, "usage-b").map_or(0, |c| c.0);
    let before = calls(&mut admin);
    let id: String = admin
        .query_one(
            "SELECT replace(id::text, '-', '') FROM tenancy.tenants WHERE identifier = 'usage-b'",
            &[],
        )
        .unwrap()
        .get(0);
    let called = b.call(current, &[]).unwrap().expect("a tenant id");
    let hex: String = called.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(hex, id);
    assert_eq!(calls(&mut admin), before + 1);
    // A function whose queries run inside the call counts once; a call that
    // fails counts once, as failed.
    let five = oid(&mut admin, "public.five()");
    let divide = oid(&mut admin, "int4div(int4, int4)");
    let before = counts(&mut admin, "usage-b").unwrap();
    assert_eq!(b.call(five, &[]), Ok(Some(5i32.to_be_bytes().to_vec())));
    let (one, zero) = (1i32.to_be_bytes(), 0i32.to_be_bytes());
    assert_eq!(b.call(divide, &[&one, &zero]), Err("22012".into()));
    let after = counts(&mut admin, "usage-b").unwrap();
    assert_eq!((after.0 - before.0, after.1 - before.1), (2, 1));
    // Limits configured meanwhile apply to the next call, inside a
    // transaction too (no statement of its own reads them).
    b.query("BEGIN").unwrap();
    assert_eq!(b.call(sleep, &[&0f64.to_be_bytes()]), Ok(Some(Vec::new())));
    set_limit(
        &mut admin,
        "usage-b",
        "limits.statement_timeout",
        "\"100ms\"",
    );
    assert_eq!(b.call(sleep, &[&half_a_second]), Err("0A000".into()));
    b.query("ROLLBACK").unwrap();
}
