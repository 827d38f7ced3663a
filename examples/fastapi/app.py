"""A multi-tenant FastAPI app on tenancy: SQLAlchemy 2 (async) over asyncpg.

Isolation lives in the database: every request runs in one transaction that
starts with tenancy.set_tenant(..., is_local => true), and the queries below
carry no tenant filter. The tenant comes from the X-Tenant header, or from a
bearer JWT that the database verifies itself (tenancy.set_tenant_jwt).

Environment: DATABASE_URL (the application role), ADMIN_DATABASE_URL (a role
given tenancy.grant_admin()), both postgresql+asyncpg://... URLs; they may
point at PgBouncer in transaction mode.
"""
import os
import uuid

from fastapi import Depends, FastAPI, Header, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import BigInteger, Identity, Text, make_url, text
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def engine(url):
    # Trap: asyncpg, and SQLAlchemy's asyncpg dialect on top of it, cache
    # prepared statements per connection. Behind PgBouncer in transaction
    # mode the next transaction may run on another server connection (caches
    # off, unique statement names), and after a migration a cached plan of a
    # changed table fails with "cached statement plan is invalid" (caches off
    # avoid that too).
    url = make_url(url).update_query_dict({"prepared_statement_cache_size": "0"})
    return create_async_engine(url, pool_size=5, connect_args={
        "statement_cache_size": 0,
        "prepared_statement_name_func": lambda: f"__asyncpg_{uuid.uuid4()}__",
    })


app_engine = engine(os.environ["DATABASE_URL"])
admin_engine = engine(os.environ["ADMIN_DATABASE_URL"])
Session = async_sessionmaker(app_engine, expire_on_commit=False)


class Base(DeclarativeBase):
    pass


class Order(Base):
    __tablename__ = "orders"
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    # The database fills the tenant (protect() sets the column's default to
    # tenancy.current_tenant()); without server_default SQLAlchemy would send
    # NULL. WITH CHECK refuses any other tenant's id.
    tenant_id: Mapped[uuid.UUID] = mapped_column(UUID, server_default=text("tenancy.current_tenant()"))
    item: Mapped[str] = mapped_column(Text)


# SQLSTATEs of tenancy (README, "Tenant context") to HTTP statuses.
STATUS = {"P0002": 404, "55000": 403, "42704": 410, "0P000": 400, "28000": 401,
          "42501": 403, "22023": 422, "23505": 409}

app = FastAPI()


@app.exception_handler(DBAPIError)
async def database_error(request: Request, error: DBAPIError):
    sqlstate = getattr(error.orig, "sqlstate", None)
    return JSONResponse({"sqlstate": sqlstate, "error": str(error.orig).split("\n")[0]},
                        status_code=STATUS.get(sqlstate, 500))


async def tenant_session(x_tenant: str | None = Header(None), authorization: str | None = Header(None)):
    """One transaction per request, its first statement choosing the tenant.

    Trap: is_local => true. SQLAlchemy's pool only rolls back when a
    connection is returned, so a session-scoped set_tenant would still be
    there for the next request that gets the connection (and behind
    PgBouncer, for another client)."""
    async with Session() as session:  # closing it rolls back what was not committed
        if authorization and authorization.lower().startswith("bearer "):
            await session.execute(text("SELECT tenancy.set_tenant_jwt(:jwt, is_local => true)"),
                                  {"jwt": authorization[7:]})
        elif x_tenant:
            await session.execute(text("SELECT tenancy.set_tenant(:t, is_local => true)"), {"t": x_tenant})
        else:
            raise HTTPException(400, "no tenant: send X-Tenant or a bearer JWT")
        yield session


class NewOrder(BaseModel):
    item: str


@app.get("/me")
async def me(session: AsyncSession = Depends(tenant_session)):
    row = (await session.execute(text("SELECT identifier, name, status FROM tenancy.current_tenant_info()"))).one()
    return dict(row._mapping)


@app.post("/orders", status_code=201)
async def create_order(order: NewOrder, session: AsyncSession = Depends(tenant_session)):
    new = Order(item=order.item)
    session.add(new)
    await session.flush()
    await session.execute(text("SELECT tenancy.audit('order.created', jsonb_build_object('id', CAST(:id AS bigint)))"),
                          {"id": new.id})
    # Trap: commit in the endpoint, before the response is sent: a failed
    # commit is then an error response, not a success reported for lost work.
    await session.commit()
    return {"id": new.id, "item": new.item}


@app.get("/orders")
async def list_orders(session: AsyncSession = Depends(tenant_session)):
    orders = (await session.scalars(Order.__table__.select().with_only_columns(Order.item))).all()
    return sorted(orders)


@app.get("/notes")
async def list_notes(session: AsyncSession = Depends(tenant_session)):
    # A schema tenant's own table: set_tenant put its schema first on search_path.
    return [dict(r._mapping) for r in await session.execute(text("SELECT * FROM notes ORDER BY body"))]


@app.post("/notes", status_code=201)
async def create_note(note: NewOrder, session: AsyncSession = Depends(tenant_session)):
    await session.execute(text("INSERT INTO notes (body) VALUES (:b)"), {"b": note.item})
    await session.commit()
    return {"body": note.item}


class NewTenant(BaseModel):
    identifier: str
    name: str
    isolation: str = "shared"


@app.post("/admin/tenants", status_code=201)
async def register(tenant: NewTenant):
    async with admin_engine.begin() as conn:
        row = (await conn.execute(text("SELECT id, status FROM tenancy.register_tenant(:i, :n, '{}', :iso)"),
                                  {"i": tenant.identifier, "n": tenant.name, "iso": tenant.isolation})).one()
    return {"id": str(row.id), "status": row.status}


@app.post("/admin/tenants/{identifier}/suspend")
async def suspend(identifier: str):
    async with admin_engine.begin() as conn:
        return {"status": (await conn.execute(text("SELECT status FROM tenancy.suspend_tenant(:i)"),
                                              {"i": identifier})).scalar_one()}


@app.delete("/admin/tenants/{identifier}")
async def delete(identifier: str):
    async with admin_engine.begin() as conn:
        return {"status": (await conn.execute(text("SELECT status FROM tenancy.delete_tenant(:i)"),
                                              {"i": identifier})).scalar_one()}


class NewMigration(BaseModel):
    name: str
    sql: str


@app.post("/admin/migrations", status_code=201)
async def add_migration(migration: NewMigration):
    # Trap: add_migration and migrate are procedures that COMMIT per schema:
    # CALL them outside a transaction block, i.e. in autocommit.
    async with admin_engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text("CALL tenancy.add_migration(:n, :s)"), {"n": migration.name, "s": migration.sql})
    return {"name": migration.name}
