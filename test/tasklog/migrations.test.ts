import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import pg from 'pg';

import { MIGRATION_VERSIONS, migrate } from '../../src/database/migrations.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

let database: TestDatabase;
const pools: pg.Pool[] = [];

before(async () => {
  database = await createTestDatabase();
});

after(async () => {
  for (const pool of pools) await pool.end();
  await database.drop();
});

test('five processes migrating a new database at once: one applies each step, all succeed', async () => {
  for (let n = 0; n < 5; n += 1) {
    const pool = new pg.Pool({ connectionString: database.url, max: 1 });
    // An idle connection closed by the server is replaced on next use; it is no failure here.
    pool.on('error', () => undefined);
    pools.push(pool);
  }
  const applied = await Promise.all(pools.map((pool) => migrate(pool, 'taskq')));
  const steps = applied.flat().sort((a, b) => a - b);
  assert.deepEqual(
    steps,
    [...MIGRATION_VERSIONS].sort((a, b) => a - b),
  );

  const { rows } = await pools[0]!.query<{ version: number }>(
    'SELECT version FROM taskq.migrations ORDER BY version',
  );
  assert.deepEqual(
    rows.map((row) => row.version),
    steps,
  );
});

test('migrating an up-to-date task log again changes nothing', async () => {
  assert.deepEqual(await migrate(pools[0]!, 'taskq'), []);
});
