//! The README's reference tables name, for each function, the SQLSTATEs it
//! raises; applications branch on them (404, 403, 409, …). This test reads
//! those tables and, for every (function, SQLSTATE) pair they name, runs a
//! statement that must raise it, as the role that would: a pair the README
//! names without a case here fails, a case the README no longer names fails,
//! and a case that raises another SQLSTATE fails. The documentation cannot
//! drift from the server without this test noticing.

use postgres::Client;
use std::collections::BTreeSet;
use tenancy_client_tests::*;

const DB: &str = "tenancy_client_readme";
/// A database with the extension and no migration owner.
const BARE: &str = "tenancy_client_readme_bare";

const ADMIN: &str = "tenancy_admin";
const BYPASS: &str = "tenancy_bypass";

struct Case {
    function: &'static str,
    code: &'static str,
    role: &'static str,
    /// Run first, as a superuser (setting up what the case needs).
    before: &'static str,
    /// Run as `role` on a connection of its own; it must fail with `code`.
    /// `{token}` stands for a token issued for `token_for`.
    sql: &'static str,
    token_for: Option<&'static str>,
    /// Run as a superuser after the token is issued and, if `then` is not
    /// empty, after `sql` (which must then succeed).
    meanwhile: &'static str,
    /// Run as `role` on the same connection after `meanwhile`: it must fail.
    then: &'static str,
    /// Run last, as a superuser, whatever happened.
    after: &'static str,
    database: &'static str,
}

const fn case(
    function: &'static str,
    code: &'static str,
    role: &'static str,
    sql: &'static str,
) -> Case {
    Case {
        function,
        code,
        role,
        before: "",
        sql,
        token_for: None,
        meanwhile: "",
        then: "",
        after: "",
        database: DB,
    }
}

const fn around(
    function: &'static str,
    code: &'static str,
    role: &'static str,
    before: &'static str,
    sql: &'static str,
    after: &'static str,
) -> Case {
    Case {
        before,
        after,
        ..case(function, code, role, sql)
    }
}

const fn with_token(
    function: &'static str,
    code: &'static str,
    role: &'static str,
    token_for: &'static str,
    sql: &'static str,
) -> Case {
    Case {
        token_for: Some(token_for),
        ..case(function, code, role, sql)
    }
}

const SETUP: &str = "
    SELECT tenancy.grant_admin('tenancy_admin');
    SELECT tenancy.register_tenant('active', 'Active');
    SELECT tenancy.register_tenant('other', 'Other');
    SELECT tenancy.register_tenant('token-destroyed', 'Token, destroyed');
    SELECT tenancy.register_tenant('token-deleted', 'Token, deleted');
    SELECT tenancy.register_tenant('suspended', 'Suspended');
    SELECT tenancy.suspend_tenant('suspended');
    SELECT tenancy.register_tenant('deleted', 'Deleted');
    SELECT tenancy.delete_tenant('deleted');
    SELECT tenancy.register_tenant('schema-deleted', 'Schema, deleted', '{}', 'schema');
    SELECT tenancy.delete_tenant('schema-deleted');
    SELECT tenancy.register_tenant('token-suspended', 'Token, suspended');
    SELECT tenancy.register_tenant('reused', 'Reused');
    SELECT tenancy.add_signing_key('k1');
    SELECT tenancy.record_migration('m1', 'CREATE TABLE m1_notes (body text)');
    CREATE TABLE no_column (x int);
    SET tenancy.auto_protect = off;
    CREATE TABLE text_column (tenant_id text NOT NULL);
    CREATE TABLE plain_parent (x int);
    CREATE TABLE child_of_plain (tenant_id uuid NOT NULL) INHERITS (plain_parent);
    CREATE TABLE with_open_policy (tenant_id uuid NOT NULL);
    CREATE POLICY open ON with_open_policy USING (true);
    RESET tenancy.auto_protect;
    CREATE TABLE protected_parent (tenant_id uuid NOT NULL);
    CREATE TABLE protected_child () INHERITS (protected_parent);
    CREATE VIEW a_view AS SELECT 1 AS tenant_id;
    DROP ROLE IF EXISTS readme_creator;
    CREATE ROLE readme_creator NOLOGIN CREATEROLE;
";

fn cases() -> Vec<Case> {
    vec![
        case("grant_admin", "42501", ADMIN, "SELECT tenancy.grant_admin('tenancy_app')"),
        case("grant_admin", "42704", SUPERUSER, "SELECT tenancy.grant_admin('no_such_role')"),
        case("register_tenant", "22023", SUPERUSER, "SELECT tenancy.register_tenant('Not An Identifier!', 'x')"),
        case("register_tenant", "23505", SUPERUSER, "SELECT tenancy.register_tenant('active', 'Again')"),
        case("register_tenant", "55000", SUPERUSER,
            "BEGIN; SELECT tenancy.delete_tenant('reused', destroy_data => true); SELECT tenancy.register_tenant('reused', 'Again')"),
        case("suspend_tenant", "P0002", SUPERUSER, "SELECT tenancy.suspend_tenant('no-such-tenant')"),
        case("suspend_tenant", "55000", SUPERUSER, "SELECT tenancy.suspend_tenant('suspended')"),
        case("activate_tenant", "P0002", SUPERUSER, "SELECT tenancy.activate_tenant('no-such-tenant')"),
        case("activate_tenant", "55000", SUPERUSER, "SELECT tenancy.activate_tenant('active')"),
        case("update_tenant", "P0002", SUPERUSER, "SELECT tenancy.update_tenant('no-such-tenant', 'x')"),
        case("update_tenant", "22023", SUPERUSER, "SELECT tenancy.update_tenant('active', metadata => '\"not an object\"')"),
        case("update_tenant", "55000", SUPERUSER, "SELECT tenancy.update_tenant('deleted', 'x')"),
        case("delete_tenant", "P0002", SUPERUSER, "SELECT tenancy.delete_tenant('no-such-tenant')"),
        case("delete_tenant", "55000", SUPERUSER, "SELECT tenancy.delete_tenant('deleted')"),
        case("set_tenant", "P0002", APP, "SELECT tenancy.set_tenant('no-such-tenant')"),
        case("set_tenant", "55000", APP, "SELECT tenancy.set_tenant('suspended')"),
        case("set_tenant", "42704", APP, "SELECT tenancy.set_tenant('deleted')"),
        case("set_tenant", "42501", BYPASS, "SELECT tenancy.set_tenant('active')"),
        case("set_tenant", "25P01", APP, "SELECT tenancy.set_tenant('active', true)"),
        case("set_tenant", "24000", APP, "SELECT tenancy.set_tenant('active'); BEGIN; DECLARE c CURSOR FOR SELECT 1; SELECT tenancy.set_tenant('other')"),
        Case {
            before: "SELECT tenancy.register_tenant('soon-suspended', 'x')",
            meanwhile: "SELECT tenancy.suspend_tenant('soon-suspended')",
            then: "SELECT tenancy.current_tenant()",
            after: "SELECT tenancy.delete_tenant('soon-suspended')",
            ..case("current_tenant", "55000", APP, "SELECT tenancy.set_tenant('soon-suspended')")
        },
        Case {
            before: "SELECT tenancy.register_tenant('soon-deleted', 'x')",
            meanwhile: "SELECT tenancy.delete_tenant('soon-deleted')",
            then: "SELECT tenancy.current_tenant()",
            ..case("current_tenant", "42704", APP, "SELECT tenancy.set_tenant('soon-deleted')")
        },
        around("current_tenant", "0P000", APP,
            "ALTER ROLE tenancy_app IN DATABASE tenancy_client_readme SET tenancy.require_tenant = on",
            "SELECT tenancy.current_tenant()",
            "ALTER ROLE tenancy_app IN DATABASE tenancy_client_readme RESET tenancy.require_tenant"),
        case("reset_tenant", "24000", APP, "BEGIN; SELECT tenancy.set_tenant('active', true); DECLARE c CURSOR FOR SELECT 1; SELECT tenancy.reset_tenant()"),
        case("audit", "22023", APP, "SELECT tenancy.set_tenant('active'); SELECT tenancy.audit('Not An Action!')"),
        case("audit", "0P000", APP, "SELECT tenancy.audit('order.placed')"),
        case("audit", "54000", APP, "SELECT tenancy.set_tenant('active'); SELECT tenancy.audit('order.placed', jsonb_build_object('x', repeat('a', 20000)))"),
        around("audit", "53400", APP,
            "ALTER ROLE tenancy_app IN DATABASE tenancy_client_readme SET tenancy.audit_rate = 1",
            "SELECT tenancy.set_tenant('active'); BEGIN; SELECT tenancy.audit('order.placed'); SELECT tenancy.audit('order.placed')",
            "ALTER ROLE tenancy_app IN DATABASE tenancy_client_readme RESET tenancy.audit_rate"),
        case("add_signing_key", "22023", SUPERUSER, "SELECT tenancy.add_signing_key('not a kid!')"),
        case("add_signing_key", "23505", SUPERUSER, "SELECT tenancy.add_signing_key('k1')"),
        case("retire_signing_key", "42704", SUPERUSER, "SELECT tenancy.retire_signing_key('no-such-key')"),
        case("issue_token", "P0002", SUPERUSER, "SELECT tenancy.issue_token('no-such-tenant')"),
        case("issue_token", "55000", SUPERUSER, "SELECT tenancy.issue_token('suspended')"),
        case("issue_token", "22023", SUPERUSER, "SELECT tenancy.issue_token('active', '-1 minute')"),
        case("set_tenant_token", "28000", APP, "SELECT tenancy.set_tenant_token('v1.not-a-token')"),
        Case {
            meanwhile: "SELECT tenancy.suspend_tenant('token-suspended')",
            after: "SELECT tenancy.activate_tenant('token-suspended')",
            ..with_token("set_tenant_token", "55000", APP, "token-suspended",
                "SELECT tenancy.set_tenant_token('{token}')")
        },
        with_token("set_tenant_token", "42501", BYPASS, "active", "SELECT tenancy.set_tenant_token('{token}')"),
        with_token("set_tenant_token", "25P01", APP, "active", "SELECT tenancy.set_tenant_token('{token}', true)"),
        with_token("set_tenant_token", "24000", APP, "other",
            "SELECT tenancy.set_tenant('active'); BEGIN; DECLARE c CURSOR FOR SELECT 1; SELECT tenancy.set_tenant_token('{token}')"),
        // (a token of a destroyed tenant names no tenant at all)
        Case {
            meanwhile: "SELECT tenancy.delete_tenant('token-destroyed', destroy_data => true)",
            ..with_token("set_tenant_token", "P0002", APP, "token-destroyed",
                "SELECT tenancy.set_tenant_token('{token}')")
        },
        Case {
            meanwhile: "SELECT tenancy.delete_tenant('token-deleted')",
            ..with_token("set_tenant_token", "42704", APP, "token-deleted",
                "SELECT tenancy.set_tenant_token('{token}')")
        },
        case("set_tenant_jwt", "28000", APP, "SELECT tenancy.set_tenant_jwt('not.a.jwt')"),
        case("protect", "42703", SUPERUSER, "SELECT tenancy.protect('no_column')"),
        case("protect", "42804", SUPERUSER, "SELECT tenancy.protect('text_column')"),
        case("protect", "22023", SUPERUSER, "SELECT tenancy.protect('a_view')"),
        case("protect", "42P16", SUPERUSER, "SELECT tenancy.protect('child_of_plain')"),
        case("protect", "55000", SUPERUSER, "SELECT tenancy.protect('with_open_policy')"),
        case("unprotect", "42P16", SUPERUSER, "SELECT tenancy.unprotect('protected_parent')"),
        case("add_migration", "22023", SUPERUSER, "CALL tenancy.add_migration('not a name!', 'SELECT 1')"),
        case("add_migration", "23505", SUPERUSER, "CALL tenancy.add_migration('m1', 'SELECT 1')"),
        Case {
            database: BARE,
            ..case("add_migration", "55000", SUPERUSER, "CALL tenancy.add_migration('m2', 'CREATE TABLE t (x int)')")
        },
        case("add_migration", "25001", SUPERUSER, "BEGIN; CALL tenancy.add_migration('m-in-block', 'SELECT 1')"),
        case("add_migration", "0A000", SUPERUSER, "CALL tenancy.add_migration('m-view', 'CREATE MATERIALIZED VIEW counted AS SELECT 1')"),
        case("migrate_tenant", "P0002", SUPERUSER, "SELECT tenancy.migrate_tenant('no-such-tenant')"),
        case("migrate_tenant", "22023", SUPERUSER, "SELECT tenancy.migrate_tenant('active')"),
        case("migrate_tenant", "55000", SUPERUSER, "SELECT tenancy.migrate_tenant('schema-deleted')"),
        case("retire_migration", "42704", SUPERUSER, "SELECT tenancy.retire_migration('no-such-migration')"),
        case("set_migration_owner", "42501", ADMIN, "SELECT tenancy.set_migration_owner('tenancy_migrator')"),
        case("set_migration_owner", "22023", SUPERUSER, "SELECT tenancy.set_migration_owner('readme_creator')"),
        case("set_migration_owner", "42704", SUPERUSER, "SELECT tenancy.set_migration_owner('no_such_role')"),
        case("set_config_default", "22023", SUPERUSER, "SELECT tenancy.set_config_default('Not A Key!', '1')"),
        case("set_config_default", "22004", SUPERUSER, "SELECT tenancy.set_config_default('plan', NULL)"),
        case("set_tenant_config", "P0002", SUPERUSER, "SELECT tenancy.set_tenant_config('no-such-tenant', 'plan', '\"pro\"')"),
        case("set_tenant_config", "55000", SUPERUSER, "SELECT tenancy.set_tenant_config('deleted', 'plan', '\"pro\"')"),
        case("set_tenant_config", "22023", SUPERUSER, "SELECT tenancy.set_tenant_config('active', 'Not A Key!', '\"pro\"')"),
        case("unset_tenant_config", "P0002", SUPERUSER, "SELECT tenancy.unset_tenant_config('no-such-tenant', 'plan')"),
        case("unset_tenant_config", "55000", SUPERUSER, "SELECT tenancy.unset_tenant_config('deleted', 'plan')"),
        // This cluster does not preload the library; the usage layer's
        // tests, which do, check the unknown tenant (P0002).
        case("tenant_stats_reset", "55000", SUPERUSER, "SELECT tenancy.tenant_stats_reset()"),
        case("tenant_stats_reset", "42501", APP, "SELECT tenancy.tenant_stats_reset()"),
        case("distribute", "42501", ADMIN, "SELECT tenancy.distribute()"),
        case("distribute", "55000", SUPERUSER, "SELECT tenancy.distribute()"),
        case("distribute_table", "42501", APP, "SELECT tenancy.distribute_table('protected_parent')"),
        case("distribute_table", "55000", SUPERUSER, "SELECT tenancy.distribute_table('protected_parent')"),
    ]
}

/// Pairs checked elsewhere, with where: they need what this cluster lacks.
const ELSEWHERE: [(&str, &str, &str); 1] = [(
    "tenant_stats_reset",
    "P0002",
    "tests/client/tests/usage.rs (the library preloaded)",
)];

/// Every (function, SQLSTATE) pair in the errors column of the README's
/// reference tables: rows whose first cell names a function (`f(…)` or
/// `CALL f(…)`).
fn readme_pairs() -> BTreeSet<(String, String)> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md");
    let readme = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    let mut pairs = BTreeSet::new();
    for line in readme.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line
            .trim()
            .trim_matches('|')
            .split('|')
            .map(str::trim)
            .collect();
        let Some(first) = cells.first() else { continue };
        let name = first.trim_start_matches('`').trim_start_matches("CALL ");
        let Some(function) = name.split('(').next().filter(|_| name.contains('(')) else {
            continue;
        };
        if cells.len() < 3 || !function.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
            continue;
        }
        let errors = cells[cells.len() - 1];
        for word in errors.split(|c: char| !c.is_ascii_alphanumeric()) {
            let is_code = word.len() == 5
                && word
                    .chars()
                    .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase())
                && word.chars().filter(char::is_ascii_digit).count() >= 2;
            if is_code {
                pairs.insert((function.to_string(), word.to_string()));
            }
        }
    }
    pairs
}

fn run(case: &Case) -> Result<(), String> {
    let mut admin = connect(SUPERUSER, case.database);
    if !case.before.is_empty() {
        admin
            .batch_execute(case.before)
            .map_err(|e| format!("its set-up failed: {e}"))?;
    }
    let mut sql = case.sql.to_string();
    if let Some(tenant) = case.token_for {
        let token: String = admin
            .query_one("SELECT tenancy.issue_token($1)", &[&tenant])
            .map_err(|e| format!("issuing its token failed: {e}"))?
            .get(0);
        sql = sql.replace("{token}", &token);
    }
    let mut client: Client = connect(case.role, case.database);
    let mut failing = sql.as_str();
    if !case.then.is_empty() {
        client
            .batch_execute(&sql)
            .map_err(|e| format!("its first statement failed: {e}"))?;
        failing = case.then;
    }
    if !case.meanwhile.is_empty() {
        admin
            .batch_execute(case.meanwhile)
            .map_err(|e| format!("its change in between failed: {e}"))?;
    }
    let result = client.batch_execute(failing);
    drop(client);
    if !case.after.is_empty() {
        admin
            .batch_execute(case.after)
            .map_err(|e| format!("its clean-up failed: {e}"))?;
    }
    match result {
        Ok(()) => Err("no error".into()),
        Err(e) if sqlstate(&e) == case.code => Ok(()),
        Err(e) => Err(format!("{}: {e}", sqlstate(&e))),
    }
}

#[test]
fn every_sqlstate_the_readme_names_is_the_servers() {
    fresh_database(DB);
    connect(SUPERUSER, DB).batch_execute(SETUP).unwrap();
    empty_database(BARE);
    connect(SUPERUSER, BARE)
        .batch_execute("CREATE EXTENSION tenancy")
        .unwrap();

    let documented = readme_pairs();
    assert!(
        documented.len() > 50,
        "the README's reference tables were not found ({} pairs)",
        documented.len()
    );
    let cases = cases();
    let tested: BTreeSet<(String, String)> = cases
        .iter()
        .map(|c| (c.function.to_string(), c.code.to_string()))
        .chain(
            ELSEWHERE
                .iter()
                .map(|(f, c, _)| (f.to_string(), c.to_string())),
        )
        .collect();
    let mut problems = Vec::new();
    for (function, code) in documented.difference(&tested) {
        problems.push(format!("README names {code} for {function}: no case here"));
    }
    for (function, code) in tested.difference(&documented) {
        problems.push(format!("{function} {code}: tested here, not in the README"));
    }
    for case in &cases {
        if let Err(why) = run(case) {
            problems.push(format!(
                "{} should raise {} ({}): {why}",
                case.function, case.code, case.sql
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
