//! Do no harm: an error raised inside a statement reaches the client with
//! every field (position, context, schema, table, column, data type and
//! constraint names) exactly as without the extension, once its library is
//! loaded in the backend (its hooks then see every statement).

use postgres::error::DbError;
use postgres::Client;
use tenancy_client_tests::*;

const DB: &str = "tenancy_client_errors";

/// What a client sees of an error: every field of the report but the source
/// location of PostgreSQL's own code.
fn fields(error: &DbError) -> String {
    format!(
        "code={} message={:?} detail={:?} hint={:?} position={:?} where={:?} schema={:?} \
         table={:?} column={:?} datatype={:?} constraint={:?}",
        error.code().code(),
        error.message(),
        error.detail(),
        error.hint(),
        error.position(),
        error.where_(),
        error.schema(),
        error.table(),
        error.column(),
        error.datatype(),
        error.constraint()
    )
}

/// Each statement fails; the setup runs first, in the same session.
const SETUP: &str = "
    CREATE TABLE u (id int CONSTRAINT u_pk PRIMARY KEY, x int CONSTRAINT u_x_positive CHECK (x > 0));
    INSERT INTO u VALUES (1, 1);
    CREATE PROCEDURE p() LANGUAGE plpgsql AS $$ BEGIN INSERT INTO u VALUES (2, -1); END $$;
    CREATE FUNCTION constraint_of_alter() RETURNS text LANGUAGE plpgsql AS $$
    DECLARE c text;
    BEGIN
        EXECUTE 'ALTER TABLE u ADD CONSTRAINT u_x_big CHECK (x > 100)';
        RETURN NULL;
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS c = CONSTRAINT_NAME;
        RETURN c;
    END $$;
";

fn failures(client: &mut Client) -> Vec<String> {
    client
        .batch_execute("PREPARE ins AS INSERT INTO u VALUES (1, 5)")
        .unwrap();
    let mut seen = Vec::new();
    for statement in [
        // A DDL error's position (LINE 1 and the caret).
        "CREATE TABLE v (y no_such_type)",
        // EXECUTE of a prepared INSERT: the constraint, table and schema.
        "EXECUTE ins",
        // CALL: the constraint and the context (the procedure's line).
        "CALL p()",
        // DO: the context.
        "DO $$ BEGIN PERFORM 1 / 0; END $$",
        // ALTER TABLE rewriting the table: the error of the expression.
        "ALTER TABLE u ALTER COLUMN x TYPE int USING x / 0",
    ] {
        let error = client.batch_execute(statement).unwrap_err();
        seen.push(fields(error.as_db_error().expect("a server error")));
    }
    // COPY FROM STDIN: the line of the bad row in the context.
    let mut copy = client.copy_in("COPY u FROM STDIN").unwrap();
    std::io::Write::write_all(&mut copy, b"10\t10\n11\tnot a number\n").unwrap();
    let error = copy.finish().unwrap_err();
    seen.push(fields(error.as_db_error().expect("a server error")));
    // GET STACKED DIAGNOSTICS after an EXECUTEd ALTER TABLE.
    let name: Option<String> = client
        .query_one("SELECT constraint_of_alter()", &[])
        .unwrap()
        .get(0);
    seen.push(format!(
        "constraint_name of the EXECUTEd ALTER TABLE: {name:?}"
    ));
    seen
}

/// The library defines its settings when it loads.
fn library_loaded(client: &mut Client) -> bool {
    client
        .query_one(
            "SELECT current_setting('tenancy.cache_size', true) IS NOT NULL",
            &[],
        )
        .unwrap()
        .get(0)
}

fn session() -> Client {
    session_of(DB)
}

fn session_of(db: &str) -> Client {
    let mut client = connect(SUPERUSER, db);
    client
        .batch_execute("SET lc_messages = 'C'; SET search_path = public")
        .unwrap();
    client
}

#[test]
fn errors_pass_through_the_hooks_with_every_field() {
    fresh_database(DB);
    // (In a session of its own: the auto-protect event trigger of its DDL
    // would load the library.)
    session().batch_execute(SETUP).unwrap();

    // Without the library in the backend (not preloaded in the test cluster).
    let mut plain = session();
    let without = failures(&mut plain);
    assert!(!library_loaded(&mut plain));

    // With it: a call of the extension loads it, and its hooks see every statement.
    let mut hooked = session();
    hooked
        .batch_execute("SELECT tenancy.current_tenant()")
        .unwrap();
    assert!(library_loaded(&mut hooked));
    let with = failures(&mut hooked);

    assert_eq!(without.len(), with.len());
    for (without, with) in without.iter().zip(&with) {
        assert_eq!(without, with);
    }
    // And the fields are there at all.
    let all = with.join("\n");
    for expected in [
        "position=Some(Original(19))",
        "constraint=Some(\"u_pk\")",
        "constraint=Some(\"u_x_positive\")",
        "PL/pgSQL function p() line 1 at SQL statement",
        "COPY u, line 2",
        "constraint_name of the EXECUTEd ALTER TABLE: Some(\"u_x_big\")",
    ] {
        assert!(all.contains(expected), "{expected} not in:\n{all}");
    }
}

/// The same statements through psql with `\set VERBOSITY verbose` (every
/// field, as a person debugging a migration sees them): identical output
/// with the library loaded in the backend and without.
#[test]
fn psql_shows_the_same_verbose_errors_with_the_library_loaded() {
    const DB: &str = "tenancy_client_errors_psql";
    fresh_database(DB);
    session_of(DB).batch_execute(SETUP).unwrap();
    let script = "\\set VERBOSITY verbose
        PREPARE ins AS INSERT INTO u VALUES (1, 5);
        EXECUTE ins;
        CALL p();
        CREATE TABLE v (y no_such_type);
        COPY u FROM STDIN;
10\t10
11\tnot a number
\\.
        SELECT constraint_of_alter();
    ";
    let run = |load: bool| {
        let load = if load {
            "SELECT tenancy.current_tenant() IS NULL AS loaded;\n"
        } else {
            ""
        };
        let output = std::process::Command::new(pg_bin("psql"))
            .args([
                "-X",
                "-h",
                "127.0.0.1",
                "-p",
                &port(),
                "-U",
                SUPERUSER,
                "-d",
                DB,
            ])
            .env("PGOPTIONS", "-c lc_messages=C")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                use std::io::Write;
                child
                    .stdin
                    .take()
                    .unwrap()
                    .write_all(format!("{load}{script}").as_bytes())?;
                child.wait_with_output()
            })
            .unwrap();
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    let without = run(false);
    let with = run(true);
    assert_eq!(without, with);
    for expected in [
        "CONSTRAINT NAME:  u_pk",
        "CONTEXT:  COPY u, line 2",
        "LINE 1: CREATE TABLE v (y no_such_type)",
    ] {
        assert!(with.contains(expected), "{expected} not in:\n{with}");
    }
}
