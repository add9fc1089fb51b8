import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { SQS_MAX_MESSAGE_BYTES } from '../../src/brokers/sqs.js';
import { TaskqClient } from '../../src/client.js';
import type { Runtime } from '../../src/runtime.js';
import { Worker } from '../../src/worker/worker.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { startEmulator, type Emulator } from '../support/fauxqs.js';
import { testConfig, testRuntime } from '../support/runtime.js';
import { waitFor } from '../support/wait.js';

let database: TestDatabase;
let emulator: Emulator;
let runtime: Runtime;
let client: TaskqClient;

before(async () => {
  database = await createTestDatabase();
  emulator = await startEmulator();
  const config = await testConfig(database.url, {
    queues: [{ name: 'big', broker: emulator.brokerConfig({ waitTimeSeconds: 1 }) }],
  });
  runtime = await testRuntime(config);
  client = new TaskqClient(runtime);
});

after(async () => {
  await runtime?.close();
  await emulator?.close();
  await database?.drop();
});

async function taskCount(): Promise<number> {
  const { rows } = await runtime.db.pool.query<{ count: string }>(
    `SELECT count(*) FROM ${runtime.config.database.schema}.tasks`,
  );
  return Number(rows[0]!.count);
}

test('enqueue refuses a task too large for SQS, naming its size and the limit, and writes nothing', async () => {
  const before = await taskCount();
  await assert.rejects(
    client.enqueue('example.noop', { blob: 'z'.repeat(SQS_MAX_MESSAGE_BYTES) }),
    (error: Error & { code?: string }) => {
      assert.equal(error.code, 'MESSAGE_TOO_LARGE');
      assert.match(error.message, /is 10\d{5} bytes as a message/);
      assert.match(error.message, /queue "big" \(sqs\) takes at most 1048576/);
      return true;
    },
  );
  assert.equal(await taskCount(), before, 'no task-log row was written');
  assert.deepEqual(await runtime.brokers.get('big').counts(), { waiting: 0, inFlight: 0 });
});

test('a task just under the SQS limit is enqueued and runs', async () => {
  const blob = 'z'.repeat(SQS_MAX_MESSAGE_BYTES - 1024);
  const { id } = await client.enqueue('example.noop', { blob });
  const worker = new Worker(runtime, { id: 'w-big', queues: ['big'], limit: 1 });
  await worker.run();
  await waitFor('the large task to complete', async () => {
    return (await runtime.queries.get(id)).status === 'completed';
  });
});
