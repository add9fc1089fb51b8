import assert from 'node:assert/strict';
import { test } from 'node:test';

import pg from 'pg';

import { PostgresBackend, PostgresBroker } from '../../src/brokers/postgres.js';
import { TaskqClient } from '../../src/client.js';
import { createLogger } from '../../src/log/logger.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { testConfig, testRuntime } from '../support/runtime.js';
import { waitFor } from '../support/wait.js';
import { brokerContract } from './contract.js';

let database: TestDatabase;
let pool: pg.Pool;
let backend: PostgresBackend;

brokerContract(
  'postgres',
  async (queue, leaseSeconds) =>
    new PostgresBroker(queue, { type: 'postgres', receive: 10, leaseSeconds }, backend),
  {
    leaseSeconds: 1,
    setup: async () => {
      database = await createTestDatabase();
      pool = new pg.Pool({ connectionString: database.url });
      backend = new PostgresBackend({
        pool,
        url: database.url,
        bossSchema: 'pgboss',
        logger: createLogger({ level: 'silent' }),
        supervise: true,
        maintenanceIntervalSeconds: 1,
      });
      await backend.start();
    },
    teardown: async () => {
      await backend.close();
      await pool.end();
      await database.drop();
    },
  },
);

test('a process that supervises without creating its queues still hands out expired leases again', async () => {
  const own = await createTestDatabase();
  const config = await testConfig(own.url, {
    queues: [{ name: 'default', broker: { type: 'postgres', leaseSeconds: 2 } }],
  });
  // The queues exist, as `taskq init` or a supervisor leaves them.
  const creator = await testRuntime(config);
  await creator.close();
  // As a forked worker opens its runtime: maintenance on, queues not created again.
  const worker = await testRuntime(config, { supervise: true, initQueues: false });
  try {
    const broker = worker.brokers.get('default');
    await new TaskqClient(worker).enqueue('example.noop', {});
    const [held] = await broker.receive(1);
    assert.ok(held, 'the message was received');
    const again = await waitFor(
      'the message to come back after its lease',
      async () => (await broker.receive(1))[0],
      { timeoutMs: 15_000, intervalMs: 250 },
    );
    assert.equal(again.receipt, held.receipt);
    assert.equal(again.deliveries, 2);
  } finally {
    await worker.close();
    await own.drop();
  }
});
