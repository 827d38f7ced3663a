// What the example's tests share: a superuser connection to the scratch
// server of scripts/test.sh (TENANCY_TEST_PORT), for set-up and checks.
import pg from 'pg';

export const SERVER = process.env.TENANCY_TEST_PORT;

export async function superuser(database, work) {
  const client = new pg.Client({ host: '127.0.0.1', port: SERVER, user: 'postgres', database });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

// Drop and recreate `name`, with the extension created in it.
export async function freshDatabase(name) {
  await superuser('postgres', async (c) => {
    await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await c.query(`CREATE DATABASE ${name}`);
  });
  await superuser(name, (c) => c.query('CREATE EXTENSION tenancy'));
}
