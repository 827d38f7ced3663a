// The example app's own tests, through HTTP (Fastify's inject), against the
// scratch cluster of scripts/test.sh: directly, and through PgBouncer in
// transaction mode (TENANCY_EXAMPLE_PORT picks which; TENANCY_TEST_PORT is
// the server, for the set-up made as a superuser).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { SERVER, freshDatabase, superuser } from '../support.mjs';
import { drizzle } from 'drizzle-orm/node-postgres';
import { migrate } from 'drizzle-orm/node-postgres/migrator';
import { buildApp } from '../app.mjs';

const DB = 'tenancy_example_node';
const PORT = process.env.TENANCY_EXAMPLE_PORT ?? SERVER;
const SECRET = Buffer.from(Array.from({ length: 32 }, (_, i) => i));


let app;

before(async () => {
  await freshDatabase(DB);
  await superuser(DB, async (c) => {
    await c.query("SELECT tenancy.grant_admin('tenancy_admin')");
    await c.query('SELECT tenancy.add_signing_key($1, $2)', ['auth', SECRET]);
    // The migration Drizzle generated (drizzle/) creates orders: tenancy
    // protects it as it is created.
    await migrate(drizzle(c), { migrationsFolder: fileURLToPath(new URL('../drizzle', import.meta.url)) });
    await c.query('GRANT SELECT, INSERT ON orders TO tenancy_app');
  });
  app = buildApp({
    databaseUrl: `postgresql://tenancy_app@127.0.0.1:${PORT}/${DB}`,
    adminUrl: `postgresql://tenancy_admin@127.0.0.1:${PORT}/${DB}`,
  });
  for (const identifier of ['acme', 'globex']) {
    const res = await app.inject({ method: 'POST', url: '/admin/tenants', payload: { identifier, name: identifier } });
    assert.equal(res.statusCode, 201, res.body);
  }
});

after(() => app?.close());

const as = (tenant) => ({ 'x-tenant': tenant });

function jwt(claims) {
  const b64 = (data) => Buffer.from(data).toString('base64url');
  const signed = `${b64('{"alg":"HS256","typ":"JWT"}')}.${b64(JSON.stringify(claims))}`;
  return `${signed}.${createHmac('sha256', SECRET).update(signed).digest('base64url')}`;
}

test('the migration left the table protected', async () => {
  const [row] = await superuser(DB, async (c) => (await c.query(
    "SELECT relrowsecurity AND relforcerowsecurity AS protected FROM pg_class WHERE oid = 'orders'::regclass")).rows);
  assert.equal(row.protected, true);
});

test('tenants see only their rows, on every pooled connection', async () => {
  for (const [tenant, item] of [['acme', 'anvil'], ['acme', 'rocket'], ['globex', 'laser']]) {
    const res = await app.inject({ method: 'POST', url: '/orders', headers: as(tenant), payload: { item } });
    assert.equal(res.statusCode, 201, res.body);
  }
  // Concurrent requests of both tenants over a pool of 5.
  const results = await Promise.all(Array.from({ length: 40 }, (_, i) => {
    const tenant = i % 2 ? 'acme' : 'globex';
    return app.inject({ method: 'GET', url: '/orders', headers: as(tenant) }).then((r) => [tenant, r.json()]);
  }));
  for (const [tenant, items] of results) {
    assert.deepEqual(items, tenant === 'acme' ? ['anvil', 'rocket'] : ['laser']);
  }
  const me = await app.inject({ method: 'GET', url: '/me', headers: as('acme') });
  assert.deepEqual(me.json(), { identifier: 'acme', name: 'acme', status: 'active' });
});

test('the application audits its own events', async () => {
  await app.inject({ method: 'POST', url: '/orders', headers: as('globex'), payload: { item: 'magnet' } });
  const rows = await superuser(DB, async (c) => (await c.query(
    "SELECT tenant_identifier, role FROM tenancy.audit_log WHERE action = 'app.order.created'")).rows);
  assert.ok(rows.some((r) => r.tenant_identifier === 'globex' && r.role === 'tenancy_app'));
});

test('SQLSTATEs become HTTP statuses', async () => {
  assert.equal((await app.inject({ method: 'GET', url: '/orders' })).statusCode, 400);
  const unknown = await app.inject({ method: 'GET', url: '/orders', headers: as('nobody') });
  assert.equal(unknown.statusCode, 404);
  assert.equal(unknown.json().sqlstate, 'P0002');
  await app.inject({ method: 'POST', url: '/admin/tenants', payload: { identifier: 'initech', name: 'Initech' } });
  assert.equal((await app.inject({ method: 'GET', url: '/orders', headers: as('initech') })).statusCode, 200);
  await app.inject({ method: 'POST', url: '/admin/tenants/initech/suspend' });
  assert.equal((await app.inject({ method: 'GET', url: '/orders', headers: as('initech') })).statusCode, 403);
  await app.inject({ method: 'DELETE', url: '/admin/tenants/initech' });
  assert.equal((await app.inject({ method: 'GET', url: '/orders', headers: as('initech') })).statusCode, 410);
  const taken = await app.inject({ method: 'POST', url: '/admin/tenants', payload: { identifier: 'acme', name: 'Again' } });
  assert.equal(taken.statusCode, 409);
});

test('a JWT verified by the database chooses the tenant; a forged one is refused', async () => {
  const now = Math.floor(Date.now() / 1000);
  // (iat: after the tenant's registration, which was in this second or the last)
  const token = jwt({ tenant: 'acme', iat: now + 1, exp: now + 60 });
  const res = await app.inject({ method: 'GET', url: '/orders', headers: { authorization: `Bearer ${token}` } });
  assert.equal(res.statusCode, 200, res.body);
  assert.deepEqual(res.json(), ['anvil', 'rocket']);
  const forged = `${token.slice(0, -4)}AAAA`;
  const refused = await app.inject({ method: 'GET', url: '/orders', headers: { authorization: `Bearer ${forged}` } });
  assert.equal(refused.statusCode, 401);
  // The error response (and what the handler logs) carries no parameter:
  // Drizzle's own message would hold the JWT.
  assert.ok(!refused.body.includes(forged.split('.')[1]), refused.body);
});

test('a row for another tenant is refused, not written', async () => {
  const [globex] = await superuser(DB, async (c) => (await c.query(
    "SELECT id FROM tenancy.tenants WHERE identifier = 'globex'")).rows);
  const client = new pg.Client({ connectionString: `postgresql://tenancy_app@127.0.0.1:${PORT}/${DB}` });
  await client.connect();
  try {
    await client.query('BEGIN');
    await client.query("SELECT tenancy.set_tenant('acme', true)");
    await assert.rejects(client.query("INSERT INTO orders (tenant_id, item) VALUES ($1, 'planted')", [globex.id]),
      (err) => err.code === '42501');
    await client.query('ROLLBACK');
  } finally {
    await client.end();
  }
});
