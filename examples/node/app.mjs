// A multi-tenant Fastify app on tenancy: node-postgres (pg.Pool) and Drizzle
// ORM. Isolation lives in the database: every request runs in one
// transaction whose first statement chooses the tenant with
// tenancy.set_tenant(…, is_local => true), and the queries below carry no
// tenant filter. The tenant comes from the X-Tenant header, or from a bearer
// JWT that the database verifies itself (tenancy.set_tenant_jwt).
//
// buildApp({ databaseUrl, adminUrl }): the application role's URL and a role
// given tenancy.grant_admin()'s; both may point at PgBouncer in transaction
// mode (node-postgres sends unnamed statements, which it allows).
import Fastify from 'fastify';
import pg from 'pg';
import { sql } from 'drizzle-orm';
import { drizzle } from 'drizzle-orm/node-postgres';
import { orders } from './schema.mjs';

// SQLSTATEs of tenancy (README, "Tenant context") to HTTP statuses.
const STATUS = {
  P0002: 404, // no such tenant
  '55000': 403, // suspended
  '42704': 410, // deleted
  '0P000': 400, // no tenant set (tenancy.require_tenant)
  '28000': 401, // token or JWT refused
  '42501': 403,
  '22023': 422,
  '23505': 409,
};

// The SQLSTATE of an error from node-postgres (err.code) or from Drizzle,
// which wraps it (DrizzleQueryError: the driver's error is err.cause).
export function sqlstate(err) {
  return err?.cause?.code ?? err?.code;
}

export function buildApp({ databaseUrl, adminUrl }) {
  const appPool = new pg.Pool({ connectionString: databaseUrl, max: 5 });
  const adminPool = new pg.Pool({ connectionString: adminUrl, max: 2 });
  const db = drizzle(appPool);
  const app = Fastify({ logger: false });

  app.addHook('onClose', async () => {
    await appPool.end();
    await adminPool.end();
  });

  // Trap: Drizzle's error message holds the query's parameters (a JWT, a
  // token) — log the SQLSTATE and the server's message, never err.message.
  app.setErrorHandler((err, request, reply) => {
    const code = sqlstate(err);
    const status = err.statusCode ?? STATUS[code] ?? 500;
    request.log.error({ sqlstate: code, error: err.cause?.message ?? err.message });
    reply.code(status).send({ sqlstate: code ?? null, error: err.cause?.message ?? err.message });
  });

  // One transaction per request, its first statement choosing the tenant.
  // Trap: is_local => true. pg.Pool's release() resets nothing: a
  // session-scoped set_tenant would still be there for the next request that
  // gets the connection (and behind PgBouncer, for another client).
  function inTenant(request, work) {
    const auth = request.headers.authorization ?? '';
    const tenant = request.headers['x-tenant'];
    if (!auth.toLowerCase().startsWith('bearer ') && !tenant) {
      const err = new Error('no tenant: send X-Tenant or a bearer JWT');
      err.statusCode = 400;
      throw err;
    }
    return db.transaction(async (tx) => {
      if (auth.toLowerCase().startsWith('bearer ')) {
        await tx.execute(sql`SELECT tenancy.set_tenant_jwt(${auth.slice(7)}, true)`);
      } else {
        await tx.execute(sql`SELECT tenancy.set_tenant(${tenant}, true)`);
      }
      return work(tx);
    });
  }

  app.get('/me', (request) =>
    inTenant(request, async (tx) => {
      const { rows } = await tx.execute(sql`SELECT identifier, name, status FROM tenancy.current_tenant_info()`);
      return rows[0];
    }));

  app.post('/orders', async (request, reply) => {
    const order = await inTenant(request, async (tx) => {
      const [row] = await tx.insert(orders).values({ item: request.body.item })
        .returning({ id: orders.id, item: orders.item });
      await tx.execute(sql`SELECT tenancy.audit('order.created', jsonb_build_object('id', ${row.id}::bigint))`);
      return row;
    });
    // The transaction committed before the response: a failed commit is an
    // error response, never a success reported for lost work.
    reply.code(201);
    return order;
  });

  app.get('/orders', (request) =>
    inTenant(request, async (tx) => {
      const rows = await tx.select({ item: orders.item }).from(orders);
      return rows.map((r) => r.item).sort();
    }));

  // Administration, as the administrator role, outside any tenant.
  app.post('/admin/tenants', async (request, reply) => {
    const { identifier, name, isolation = 'shared' } = request.body;
    const { rows } = await adminPool.query(
      "SELECT id, status FROM tenancy.register_tenant($1, $2, '{}', $3)", [identifier, name, isolation]);
    reply.code(201);
    return rows[0];
  });

  app.post('/admin/tenants/:identifier/suspend', async (request) => {
    const { rows } = await adminPool.query('SELECT status FROM tenancy.suspend_tenant($1)', [request.params.identifier]);
    return rows[0];
  });

  app.delete('/admin/tenants/:identifier', async (request) => {
    const { rows } = await adminPool.query('SELECT status FROM tenancy.delete_tenant($1)', [request.params.identifier]);
    return rows[0];
  });

  return app;
}
