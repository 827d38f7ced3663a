"""Tenant isolation through psycopg 3 (Python), as the application role.

Run by scripts/test.sh against its scratch cluster (TENANCY_TEST_PORT); prints
one line per test and a closing "N passed, N failed".
"""
import os
import sys
import traceback

import psycopg
from psycopg import errors

PORT = os.environ["TENANCY_TEST_PORT"]
DB = "tenancy_driver_python"


def connect(user, db=DB):
    return psycopg.connect(f"host=127.0.0.1 port={PORT} dbname={db} user={user}", autocommit=True)


def setup():
    with connect("postgres", "postgres") as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {DB}")
    with connect("postgres") as admin:
        admin.execute("CREATE EXTENSION tenancy")
        for tenant in ("py-a", "py-b"):
            admin.execute("SELECT tenancy.register_tenant(%s, %s)", (tenant, tenant.upper()))
        admin.execute("CREATE TABLE items (tenant_id uuid NOT NULL, id serial, name text, PRIMARY KEY (tenant_id, id))")
        admin.execute("GRANT SELECT, INSERT, UPDATE, DELETE ON items TO tenancy_app")
        admin.execute("GRANT USAGE ON SEQUENCE items_id_seq TO tenancy_app")


def test_reads_and_writes_stay_in_their_tenant():
    with connect("tenancy_app") as a, connect("tenancy_app") as b:
        a.execute("SELECT tenancy.set_tenant(%s)", ("py-a",))
        b.execute("SELECT tenancy.set_tenant(%s)", ("py-b",))
        a.execute("INSERT INTO items (name) VALUES ('a1'), ('a2')")
        b.execute("INSERT INTO items (name) VALUES ('b1')")
        assert [r[0] for r in a.execute("SELECT name FROM items ORDER BY name")] == ["a1", "a2"]
        assert [r[0] for r in b.execute("SELECT name FROM items ORDER BY name")] == ["b1"]
        assert b.execute("UPDATE items SET name = 'x' WHERE name LIKE 'a%'").rowcount == 0
        b_id = b.execute("SELECT tenancy.current_tenant()").fetchone()[0]
        try:
            a.execute("INSERT INTO items (tenant_id, name) VALUES (%s, 'planted')", (b_id,))
            raise AssertionError("a row was written into another tenant")
        except errors.InsufficientPrivilege:
            pass


def test_transaction_scope_ends_with_the_transaction():
    with connect("tenancy_app") as c:
        with c.transaction():
            c.execute("SELECT tenancy.set_tenant(%s, is_local => true)", ("py-a",))
            assert c.execute("SELECT tenancy.current_tenant_identifier()").fetchone()[0] == "py-a"
        assert c.execute("SELECT tenancy.current_tenant()").fetchone()[0] is None
        assert c.execute("SELECT count(*) FROM items").fetchone()[0] == 0


def test_forging_and_bad_tenants_are_refused_with_sqlstates():
    with connect("postgres") as admin:
        victim = admin.execute("SELECT id FROM tenancy.tenants WHERE identifier = 'py-a'").fetchone()[0]
    with connect("tenancy_app") as c:
        # A fresh backend has not loaded the library: the SET only makes a
        # placeholder, which loading the library (first tenancy call) discards.
        c.execute(f"SET tenancy.tenant = '{victim}'")
        assert c.execute("SELECT tenancy.current_tenant()").fetchone()[0] is None
        assert c.execute("SELECT count(*) FROM items").fetchone()[0] == 0
        # From then on the setting is superuser-only.
        for forge in (f"SET tenancy.tenant = '{victim}'",
                      f"SELECT set_config('tenancy.tenant', '{victim}', false)"):
            try:
                c.execute(forge)
                raise AssertionError(f"accepted: {forge}")
            except errors.InsufficientPrivilege:
                pass
        try:
            c.execute("SELECT tenancy.set_tenant('nobody')")
            raise AssertionError("an unknown tenant was accepted")
        except errors.NoDataFound as e:
            assert e.diag.message_hint, "errors carry a hint"


def test_a_bound_token_stays_out_of_pg_stat_activity():
    with connect("postgres") as admin:
        admin.execute("SELECT tenancy.add_signing_key('py-key') WHERE NOT EXISTS "
                      "(SELECT FROM tenancy.signing_keys WHERE kid = 'py-key')")
        token = admin.execute("SELECT tenancy.issue_token('py-a')").fetchone()[0]
    with connect("tenancy_app") as presenter, connect("tenancy_app") as neighbour:
        pid = presenter.info.backend_pid
        # The token as a bind parameter: the statement text holds $1 only.
        presenter.execute("SELECT tenancy.set_tenant_token(%s)", (token,))
        assert presenter.execute("SELECT tenancy.current_tenant_identifier()").fetchone()[0] == "py-a"
        presenter.execute("SELECT tenancy.set_tenant_token(%s)", (token,))  # the last statement
        seen = neighbour.execute("SELECT query FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()[0]
        assert "$1" in seen and token not in seen, seen


def test_asyncpg_transaction_scoped_context():
    """docs/python.md's asyncpg pattern: caches off, one transaction per request."""
    import asyncio

    import asyncpg

    async def run():
        conn = await asyncpg.connect(host="127.0.0.1", port=PORT, user="tenancy_app", database=DB,
                                     statement_cache_size=0)
        try:
            transaction = conn.transaction()
            await transaction.start()
            await conn.execute("SELECT tenancy.set_tenant($1, is_local => true)", "py-b")
            await conn.execute("INSERT INTO items (name) VALUES ('asyncpg row')")
            names = [r["name"] for r in await conn.fetch("SELECT name FROM items ORDER BY name")]
            await transaction.rollback()
            assert await conn.fetchval("SELECT tenancy.current_tenant()") is None
            return names
        finally:
            await conn.close()

    names = asyncio.run(run())
    assert "asyncpg row" in names and not any(n.startswith("a") for n in names if n != "asyncpg row"), names


def test_errors_keep_every_field_with_the_library_loaded():
    # Do no harm: tenancy's hooks see every statement of a backend that loaded
    # it; an error raised inside one reaches psycopg's Diagnostic unchanged.
    with connect("postgres") as conn:
        conn.execute("SELECT tenancy.current_tenant()")  # loads the library
        conn.execute("CREATE TABLE u (id int CONSTRAINT u_pk PRIMARY KEY, "
                     "x int CONSTRAINT u_x_positive CHECK (x > 0))")
        conn.execute("INSERT INTO u VALUES (1, 1)")
        conn.execute("CREATE PROCEDURE p() LANGUAGE plpgsql AS $$ BEGIN INSERT INTO u VALUES (2, -1); END $$")
        conn.execute("PREPARE ins AS INSERT INTO u VALUES (1, 5)")
        try:
            conn.execute("EXECUTE ins")
            raise AssertionError("no unique violation")
        except errors.UniqueViolation as e:
            assert (e.diag.constraint_name, e.diag.table_name, e.diag.schema_name) == ("u_pk", "u", "public"), e.diag
        try:
            conn.execute("CALL p()")
            raise AssertionError("no check violation")
        except errors.CheckViolation as e:
            assert e.diag.constraint_name == "u_x_positive", e.diag
            assert "PL/pgSQL function p() line 1" in e.diag.context, e.diag.context
        try:
            conn.execute("CREATE TABLE v (y no_such_type)")
            raise AssertionError("no error")
        except errors.UndefinedObject as e:
            assert e.diag.statement_position == "19", e.diag.statement_position
        try:
            with conn.cursor().copy("COPY u FROM STDIN") as copy:
                copy.write("10\t10\n11\tnot a number\n")
            raise AssertionError("no error")
        except errors.InvalidTextRepresentation as e:
            assert "COPY u, line 2" in e.diag.context, e.diag.context
        conn.execute("DROP TABLE u CASCADE; DROP PROCEDURE p()")


def main():
    setup()
    tests = [v for k, v in sorted(globals().items()) if k.startswith("test_")]
    passed = failed = 0
    for test in tests:
        try:
            test()
            passed += 1
            print(f"test {test.__name__} ... ok")
        except Exception:
            failed += 1
            print(f"test {test.__name__} ... FAILED")
            traceback.print_exc()
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
