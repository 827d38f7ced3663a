// Drizzle's schema tools and tenancy: `drizzle-kit push` compares the
// database with the schema and removes what the schema lacks. Against a
// protected table whose policy the schema does not declare, it would run
// DISABLE ROW LEVEL SECURITY and DROP POLICY: tenancy refuses (55000) and
// the table stays protected. With the policy declared as tenancy generates
// it, push finds nothing to change.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SERVER, freshDatabase, superuser } from '../support.mjs';
import { drizzle } from 'drizzle-orm/node-postgres';
import { migrate } from 'drizzle-orm/node-postgres/migrator';

const DB = 'tenancy_example_node_kit';
const HERE = fileURLToPath(new URL('..', import.meta.url));
const URL_ = `postgresql://postgres@127.0.0.1:${SERVER}/${DB}`;


const protection = () => superuser(DB, async (c) => (await c.query(
  `SELECT c.relrowsecurity AND c.relforcerowsecurity AS forced,
          (SELECT count(*)::int FROM pg_policy p WHERE p.polrelid = c.oid) AS policies
     FROM pg_class c WHERE c.oid = 'orders'::regclass`)).rows[0]);

function push(schema) {
  const dir = mkdtempSync(join(tmpdir(), 'tenancy-drizzle-'));
  const config = join(dir, 'drizzle.config.mjs');
  writeFileSync(config, `export default ${JSON.stringify({
    dialect: 'postgresql', schema, dbCredentials: { url: URL_ }, tablesFilter: ['orders'],
  })};\n`);
  const run = spawnSync('npx', ['drizzle-kit', 'push', '--force', '--config', config],
    { cwd: HERE, encoding: 'utf8', timeout: 120_000 });
  return { status: run.status, output: `${run.stdout}${run.stderr}` };
}

before(async () => {
  await freshDatabase(DB);
  await superuser(DB, async (c) => {
    await migrate(drizzle(c), { migrationsFolder: join(HERE, 'drizzle') });
  });
});

test('drizzle-kit push without the policy in the schema is refused, and isolation stays', async () => {
  const run = push(join(HERE, 'schema.mjs'));
  // (drizzle-kit reports the error but exits with 0)
  assert.match(run.output, /cannot disable row-level security: table public.orders is protected by tenancy/);
  assert.match(run.output, /55000/);
  assert.deepEqual(await protection(), { forced: true, policies: 1 });
});

test('drizzle-kit push with the policy declared as tenancy generates it changes nothing', async () => {
  const run = push(join(HERE, 'schema-with-policy.mjs'));
  assert.equal(run.status, 0, run.output);
  assert.doesNotMatch(run.output, /error/i);
  assert.match(run.output, /No changes detected|Changes applied/);
  assert.deepEqual(await protection(), { forced: true, policies: 1 });
  const [policy] = await superuser(DB, async (c) => (await c.query(
    "SELECT qual, with_check FROM pg_policies WHERE tablename = 'orders'")).rows);
  assert.deepEqual(policy, {
    qual: '(tenant_id = tenancy.current_tenant())',
    with_check: '(tenant_id = tenancy.current_tenant())',
  });
});
