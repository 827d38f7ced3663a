// Tenant isolation through node-postgres (`pg`), as the application role.
// Run by scripts/test.sh (node --test) against its scratch cluster.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';

const port = process.env.TENANCY_TEST_PORT;
const db = 'tenancy_driver_node';
const connect = async (user, database = db) => {
  const client = new pg.Client({ host: '127.0.0.1', port, user, database });
  await client.connect();
  return client;
};
const open = [];
const app = async () => {
  const client = await connect('tenancy_app');
  open.push(client);
  return client;
};

before(async () => {
  const server = await connect('postgres', 'postgres');
  await server.query(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
  await server.query(`CREATE DATABASE ${db}`);
  await server.end();
  const admin = await connect('postgres');
  await admin.query('CREATE EXTENSION tenancy');
  for (const t of ['js-a', 'js-b']) await admin.query('SELECT tenancy.register_tenant($1, $1)', [t]);
  await admin.query(`CREATE TABLE items (tenant_id uuid NOT NULL, id serial, name text,
                     PRIMARY KEY (tenant_id, id))`);
  await admin.query('GRANT SELECT, INSERT, UPDATE, DELETE ON items TO tenancy_app');
  await admin.query('GRANT USAGE ON SEQUENCE items_id_seq TO tenancy_app');
  await admin.end();
});

after(async () => {
  await Promise.all(open.map((c) => c.end()));
});

test('reads and writes stay in their tenant', async () => {
  const [a, b] = [await app(), await app()];
  await a.query('SELECT tenancy.set_tenant($1)', ['js-a']);
  await b.query('SELECT tenancy.set_tenant($1)', ['js-b']);
  await a.query("INSERT INTO items (name) VALUES ('a1'), ('a2')");
  await b.query("INSERT INTO items (name) VALUES ('b1')");
  assert.deepEqual((await a.query('SELECT name FROM items ORDER BY name')).rows.map((r) => r.name), ['a1', 'a2']);
  assert.deepEqual((await b.query('SELECT name FROM items ORDER BY name')).rows.map((r) => r.name), ['b1']);
  assert.equal((await b.query("DELETE FROM items WHERE name LIKE 'a%'")).rowCount, 0);
  const bId = (await b.query('SELECT tenancy.current_tenant() AS id')).rows[0].id;
  await assert.rejects(a.query("INSERT INTO items (tenant_id, name) VALUES ($1, 'planted')", [bId]), { code: '42501' });
});

test('transaction scope ends with the transaction', async () => {
  const c = await app();
  await c.query('BEGIN');
  await c.query('SELECT tenancy.set_tenant($1, is_local => true)', ['js-a']);
  assert.equal((await c.query('SELECT tenancy.current_tenant_identifier() AS t')).rows[0].t, 'js-a');
  await c.query('COMMIT');
  assert.equal((await c.query('SELECT tenancy.current_tenant() AS t')).rows[0].t, null);
  assert.equal((await c.query('SELECT count(*)::int AS n FROM items')).rows[0].n, 0);
});

test('forging and bad tenants are refused with SQLSTATEs', async () => {
  const admin = await connect('postgres');
  const victim = (await admin.query("SELECT id FROM tenancy.tenants WHERE identifier = 'js-a'")).rows[0].id;
  await admin.end();
  const c = await app();
  // A fresh backend has not loaded the library: the SET only makes a
  // placeholder, which loading the library (first tenancy call) discards.
  await c.query(`SET tenancy.tenant = '${victim}'`);
  assert.equal((await c.query('SELECT tenancy.current_tenant() AS t')).rows[0].t, null);
  assert.equal((await c.query('SELECT count(*)::int AS n FROM items')).rows[0].n, 0);
  // From then on the setting is superuser-only.
  await assert.rejects(c.query(`SET tenancy.tenant = '${victim}'`), { code: '42501' });
  await assert.rejects(c.query(`SELECT set_config('tenancy.tenant', '${victim}', false)`), { code: '42501' });
  await assert.rejects(c.query("SELECT tenancy.set_tenant('nobody')"), { code: 'P0002' });
});

test('a bound token stays out of pg_stat_activity', async () => {
  const admin = await connect('postgres');
  await admin.query("SELECT tenancy.add_signing_key('js-key')");
  const token = (await admin.query("SELECT tenancy.issue_token('js-a') AS t")).rows[0].t;
  await admin.end();
  const [presenter, neighbour] = [await app(), await app()];
  const pid = (await presenter.query('SELECT pg_backend_pid() AS pid')).rows[0].pid;
  // The token as a bind parameter: the statement text holds $1 only.
  await presenter.query('SELECT tenancy.set_tenant_token($1)', [token]);
  assert.equal((await presenter.query('SELECT tenancy.current_tenant_identifier() AS t')).rows[0].t, 'js-a');
  await presenter.query('SELECT tenancy.set_tenant_token($1)', [token]);
  const seen = (await neighbour.query('SELECT query FROM pg_stat_activity WHERE pid = $1', [pid])).rows[0].query;
  assert.ok(seen.includes('$1') && !seen.includes(token), seen);
});

test('errors keep every field with the library loaded', async () => {
  // Do no harm: tenancy's hooks see every statement of a backend that loaded
  // it; an error raised inside one reaches node-postgres' error unchanged.
  const admin = await connect('postgres');
  open.push(admin);
  await admin.query('SELECT tenancy.current_tenant()'); // loads the library
  await admin.query(`CREATE TABLE u (id int CONSTRAINT u_pk PRIMARY KEY,
                     x int CONSTRAINT u_x_positive CHECK (x > 0))`);
  await admin.query('INSERT INTO u VALUES (1, 1)');
  await admin.query('CREATE PROCEDURE p() LANGUAGE plpgsql AS $$ BEGIN INSERT INTO u VALUES (2, -1); END $$');
  await admin.query('PREPARE ins AS INSERT INTO u VALUES (1, 5)');
  await assert.rejects(admin.query('EXECUTE ins'), (e) =>
    e.code === '23505' && e.constraint === 'u_pk' && e.table === 'u' && e.schema === 'public');
  await assert.rejects(admin.query('CALL p()'), (e) =>
    e.code === '23514' && e.constraint === 'u_x_positive' && e.where.includes('PL/pgSQL function p() line 1'));
  await assert.rejects(admin.query('CREATE TABLE v (y no_such_type)'), (e) =>
    e.code === '42704' && e.position === '19');
  await admin.query('DROP TABLE u CASCADE; DROP PROCEDURE p()');
});
