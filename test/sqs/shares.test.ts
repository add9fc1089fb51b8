import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { TaskqClient } from '../../src/client.js';
import type { Runtime } from '../../src/runtime.js';
import { Worker } from '../../src/worker/worker.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { startEmulator, type Emulator } from '../support/fauxqs.js';
import { testConfig, testRuntime } from '../support/runtime.js';

/** TAO's example: `priority` on SQS, `standard` and `background` on PostgreSQL. */
const WEIGHTS = { priority: 90, standard: 30, background: 10 };
const STARTS = 390;
/**
 * Weights share the running time of the slots (acks included), so the tasks take long enough
 * for their shares of the time and of the count to agree.
 */
const TASK_MS = 40;

let database: TestDatabase;
let emulator: Emulator;
let runtime: Runtime;

before(async () => {
  database = await createTestDatabase();
  emulator = await startEmulator();
  const config = await testConfig(database.url, {
    strategy: 'weight',
    queues: [
      {
        name: 'priority',
        broker: emulator.brokerConfig({ receive: 10, waitTimeSeconds: 1 }),
        weight: WEIGHTS.priority,
      },
      { name: 'standard', broker: { type: 'postgres' }, weight: WEIGHTS.standard },
      { name: 'background', broker: { type: 'postgres' }, weight: WEIGHTS.background },
    ],
  });
  runtime = await testRuntime(config, { supervise: true });
});

after(async () => {
  await runtime?.close();
  await emulator?.close();
  await database?.drop();
});

test('a worker on SQS and postgres queues gives each queue its weighted share of the running time', async () => {
  const client = new TaskqClient(runtime);
  const total = Object.values(WEIGHTS).reduce((sum, weight) => sum + weight, 0);
  // Every queue holds more than its share of the run, so none runs dry and yields its turns.
  for (const [queue, weight] of Object.entries(WEIGHTS)) {
    const count = Math.ceil(((STARTS * weight) / total) * 1.5);
    await client.enqueueMany(
      Array.from({ length: count }, () => ({
        name: 'example.sleep',
        parameters: { ms: TASK_MS },
        queue,
      })),
    );
  }

  const startedAt = new Map<string, number>();
  const slotMs = new Map<string, number>();
  const worker = new Worker(runtime, { id: 'w-shares', concurrency: 10, limit: STARTS });
  worker.on('task-started', ({ id }) => startedAt.set(id, performance.now()));
  worker.on('task-ended', ({ id, queue }) => {
    const ms = performance.now() - startedAt.get(id)!;
    slotMs.set(queue, (slotMs.get(queue) ?? 0) + ms);
  });
  await worker.run();

  const totalMs = [...slotMs.values()].reduce((sum, ms) => sum + ms, 0);
  for (const [queue, weight] of Object.entries(WEIGHTS)) {
    const share = (slotMs.get(queue) ?? 0) / totalMs;
    const expected = weight / total;
    assert.ok(
      Math.abs(share - expected) <= 0.04,
      `queue ${queue} got ${(share * 100).toFixed(1)}% of the slot time, expected ${(expected * 100).toFixed(1)}%`,
    );
  }
});
