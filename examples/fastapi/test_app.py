"""The example app's own tests, through HTTP (FastAPI's TestClient), against
the scratch cluster of scripts/test.sh: directly, and through PgBouncer in
transaction mode (TENANCY_EXAMPLE_PORT picks which; TENANCY_TEST_PORT is the
server, for the setup made as a superuser).
"""
import base64
import hashlib
import hmac
import importlib
import json
import os
import time

import psycopg
import pytest
from fastapi.testclient import TestClient

DB = "tenancy_example"
SERVER = os.environ["TENANCY_TEST_PORT"]
PORT = os.environ.get("TENANCY_EXAMPLE_PORT", SERVER)
SECRET = bytes(range(32))


def superuser(db=DB):
    return psycopg.connect(f"host=127.0.0.1 port={SERVER} dbname={db} user=postgres", autocommit=True)


@pytest.fixture(scope="module")
def client():
    with superuser("postgres") as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {DB}")
    with superuser() as admin:
        admin.execute("CREATE EXTENSION tenancy")
        admin.execute("SELECT tenancy.set_migration_owner('tenancy_migrator')")
        admin.execute("SELECT tenancy.grant_admin('tenancy_admin')")
        admin.execute("ALTER DEFAULT PRIVILEGES FOR ROLE tenancy_migrator GRANT SELECT, INSERT ON TABLES TO tenancy_app")
        admin.execute("SELECT tenancy.add_signing_key('auth', %s)", (SECRET,))
        # A shared table: created with a tenant_id, it is protected at once.
        admin.execute("CREATE TABLE orders (id bigint GENERATED ALWAYS AS IDENTITY, tenant_id uuid NOT NULL,"
                      " item text NOT NULL, PRIMARY KEY (tenant_id, id))")
        admin.execute("GRANT SELECT, INSERT ON orders TO tenancy_app")
    os.environ["DATABASE_URL"] = f"postgresql+asyncpg://tenancy_app@127.0.0.1:{PORT}/{DB}"
    os.environ["ADMIN_DATABASE_URL"] = f"postgresql+asyncpg://tenancy_admin@127.0.0.1:{PORT}/{DB}"
    app = importlib.import_module("app")
    with TestClient(app.app) as test_client:
        for identifier in ("acme", "globex"):
            assert test_client.post("/admin/tenants", json={"identifier": identifier, "name": identifier}).status_code == 201
        yield test_client


def jwt(claims):
    def b64(data):
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
    signed = b64(b'{"alg":"HS256","typ":"JWT"}') + "." + b64(json.dumps(claims).encode())
    return signed + "." + b64(hmac.new(SECRET, signed.encode(), hashlib.sha256).digest())


def test_tenants_see_only_their_rows(client):
    assert client.post("/orders", json={"item": "anvil"}, headers={"X-Tenant": "acme"}).status_code == 201
    assert client.post("/orders", json={"item": "rocket"}, headers={"X-Tenant": "acme"}).status_code == 201
    assert client.post("/orders", json={"item": "laser"}, headers={"X-Tenant": "globex"}).status_code == 201
    for _ in range(5):  # pooled connections carry nothing from one request to the next
        assert client.get("/orders", headers={"X-Tenant": "acme"}).json() == ["anvil", "rocket"]
        assert client.get("/orders", headers={"X-Tenant": "globex"}).json() == ["laser"]
    assert client.get("/me", headers={"X-Tenant": "acme"}).json() == {"identifier": "acme", "name": "acme", "status": "active"}


def test_the_application_audits_its_own_events(client):
    client.post("/orders", json={"item": "magnet"}, headers={"X-Tenant": "globex"})
    with superuser() as admin:
        rows = admin.execute("SELECT tenant_identifier, role FROM tenancy.audit_log WHERE action = 'app.order.created'").fetchall()
    assert ("globex", "tenancy_app") in rows


def test_sqlstates_become_http_statuses(client):
    assert client.get("/orders").status_code == 400
    assert client.get("/orders", headers={"X-Tenant": "nobody"}).status_code == 404
    client.post("/admin/tenants", json={"identifier": "initech", "name": "Initech"})
    assert client.get("/orders", headers={"X-Tenant": "initech"}).status_code == 200
    assert client.post("/admin/tenants/initech/suspend").json() == {"status": "suspended"}
    # Refused from the next request on, on every pooled connection: no TTL.
    for _ in range(5):
        assert client.get("/orders", headers={"X-Tenant": "initech"}).status_code == 403
    client.post("/admin/tenants", json={"identifier": "hooli", "name": "Hooli"})
    assert client.delete("/admin/tenants/hooli").json() == {"status": "deleted"}
    response = client.get("/orders", headers={"X-Tenant": "hooli"})
    assert response.status_code == 410 and response.json()["sqlstate"] == "42704"
    assert client.post("/admin/tenants", json={"identifier": "Bad Name", "name": "x"}).status_code == 422
    assert client.post("/admin/tenants", json={"identifier": "acme", "name": "again"}).status_code == 409


def test_a_jwt_is_verified_by_the_database(client):
    now = int(time.time())
    good = jwt({"tenant": "globex", "iat": now, "exp": now + 300})
    assert client.get("/orders", headers={"Authorization": f"Bearer {good}"}).json() == ["laser", "magnet"]
    forged = good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB")
    assert client.get("/orders", headers={"Authorization": f"Bearer {forged}"}).status_code == 401
    expired = jwt({"tenant": "globex", "iat": now - 600, "exp": now - 10})
    assert client.get("/orders", headers={"Authorization": f"Bearer {expired}"}).status_code == 401


def test_a_schema_tenant_with_migrations(client):
    assert client.post("/admin/migrations", json={"name": "0001-notes", "sql": "CREATE TABLE notes (body text NOT NULL)"}).status_code == 201
    assert client.post("/admin/tenants", json={"identifier": "umbrella", "name": "Umbrella", "isolation": "schema"}).status_code == 201
    assert client.post("/notes", json={"item": "t-virus"}, headers={"X-Tenant": "umbrella"}).status_code == 201
    assert client.get("/notes", headers={"X-Tenant": "umbrella"}).json() == [{"body": "t-virus"}]
    # A migration changes the table under running connections: without
    # asyncpg's statement cache, no "cached statement plan is invalid".
    assert client.post("/admin/migrations", json={"name": "0002-notes-pinned",
                       "sql": "ALTER TABLE notes ADD COLUMN pinned boolean NOT NULL DEFAULT false"}).status_code == 201
    for _ in range(5):
        response = client.get("/notes", headers={"X-Tenant": "umbrella"})
        assert response.json() == [{"body": "t-virus", "pinned": False}], response.json()
    # A shared tenant has no such table; another tenant's schema is unreachable.
    assert client.get("/notes", headers={"X-Tenant": "acme"}).status_code == 500
    # A failing migration is an error for the caller, not a warning it drops.
    response = client.post("/admin/migrations", json={"name": "0003-bad", "sql": "CREATE TABLE notes (x int)"})
    assert response.status_code == 500 and response.json()["sqlstate"] == "42P07"


def include_object(object, name, type_, reflected, compare_to):
    """Alembic's hook: tenancy's own schema and the tenant schemas (which
    tenancy's migrations manage) are not the application's to autogenerate."""
    schema = getattr(object, "schema", None) or ""
    return not (type_ == "table" and (schema == "tenancy" or schema.startswith("tenant_")))


def test_alembic_autogenerate_leaves_protection_alone(client):
    # Alembic compares tables, columns, indexes and constraints; it does not
    # reflect policies or row-level security, so nothing it generates touches
    # them. With include_schemas=True it would see tenancy's catalog and the
    # tenant schemas as tables to drop: the hook above leaves them out.
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlalchemy import create_engine

    app = importlib.import_module("app")
    engine = create_engine(f"postgresql+psycopg://postgres@127.0.0.1:{SERVER}/{DB}")
    with engine.connect() as connection:
        def diff(**options):
            context = MigrationContext.configure(connection, opts={"include_schemas": True, **options})
            return compare_metadata(context, app.Base.metadata)
        unfiltered = diff()
        assert any(op[0] == "remove_table" and op[1].schema == "tenancy" for op in unfiltered if isinstance(op, tuple))
        assert diff(include_object=include_object) == []
    engine.dispose()
    with superuser() as admin:
        row = admin.execute("SELECT relrowsecurity AND relforcerowsecurity FROM pg_class WHERE oid = 'orders'::regclass").fetchone()
    assert row == (True,)
