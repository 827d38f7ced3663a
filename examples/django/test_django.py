"""The Django middleware of docs/python.md, run: a settings-only Django
project in this file, Django's test client, the scratch cluster of
scripts/test.sh (TENANCY_TEST_PORT)."""
import os

import django
import psycopg
import pytest
from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.urls import path

DB = "tenancy_example_django"
PORT = os.environ["TENANCY_TEST_PORT"]


def items(request):
    with connection.cursor() as cursor:
        cursor.execute("SELECT name FROM items ORDER BY name")
        return JsonResponse([name for (name,) in cursor.fetchall()], safe=False)


urlpatterns = [path("items", items)]


@pytest.fixture(scope="module")
def client():
    with psycopg.connect(f"host=127.0.0.1 port={PORT} dbname=postgres user=postgres", autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {DB}")
    with psycopg.connect(f"host=127.0.0.1 port={PORT} dbname={DB} user=postgres", autocommit=True) as admin:
        admin.execute("CREATE EXTENSION tenancy")
        for tenant in ("acme", "globex", "initech"):
            admin.execute("SELECT tenancy.register_tenant(%s, %s)", (tenant, tenant))
        admin.execute("SELECT tenancy.suspend_tenant('initech')")
        admin.execute("CREATE TABLE items (tenant_id uuid NOT NULL, name text NOT NULL)")
        admin.execute("GRANT SELECT ON items TO tenancy_app")
        admin.execute("INSERT INTO items SELECT id, identifier || ' item' FROM tenancy.tenants")
    settings.configure(
        DATABASES={"default": {"ENGINE": "django.db.backends.postgresql", "NAME": DB, "USER": "tenancy_app",
                               "HOST": "127.0.0.1", "PORT": PORT, "CONN_MAX_AGE": 60},
                   # What runs `migrate`: the tables' owner (here a superuser).
                   "owner": {"ENGINE": "django.db.backends.postgresql", "NAME": DB, "USER": "postgres",
                             "HOST": "127.0.0.1", "PORT": PORT}},
        MIDDLEWARE=["tenancy_middleware.TenantMiddleware"], ROOT_URLCONF=__name__,
        ALLOWED_HOSTS=["testserver"], USE_TZ=True)
    django.setup()
    from django.test import Client
    return Client()


def test_each_request_sees_its_tenant_only(client):
    for _ in range(3):  # one connection, kept between requests (CONN_MAX_AGE)
        assert client.get("/items", headers={"X-Tenant": "acme"}).json() == ["acme item"]
        assert client.get("/items", headers={"X-Tenant": "globex"}).json() == ["globex item"]


def test_sqlstates_become_http_statuses(client):
    assert client.get("/items", headers={"X-Tenant": "nobody"}).status_code == 404
    assert client.get("/items", headers={"X-Tenant": "initech"}).status_code == 403


def test_migrate_creates_protected_tables_and_keeps_them_protected(client):
    """What `migrate` runs for CreateModel and AddField (Django's schema
    editor): the new table, with a tenant_id uuid NOT NULL column, is
    protected as it is created, and later changes leave it protected. Django
    never compares the database with its models, so it never drops the
    policy."""
    from django.db import connections, models

    class Note(models.Model):
        tenant_id = models.UUIDField()
        body = models.TextField()

        class Meta:
            app_label = "notes"
            db_table = "notes"

    def protection():
        with connections["owner"].cursor() as cursor:
            cursor.execute("SELECT c.relrowsecurity AND c.relforcerowsecurity,"
                           " (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid)"
                           " FROM pg_class c WHERE c.oid = 'notes'::regclass")
            return cursor.fetchone()

    with connections["owner"].schema_editor() as editor:
        editor.create_model(Note)
    assert protection() == (True, 1)
    title = models.TextField(null=True)
    title.set_attributes_from_name("title")
    with connections["owner"].schema_editor() as editor:
        editor.add_field(Note, title)
    assert protection() == (True, 1)
    with connections["owner"].schema_editor() as editor:
        editor.delete_model(Note)
