import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import type { ReceivedMessage } from '../../src/brokers/broker.js';
import { TaskqClient } from '../../src/client.js';
import type { Runtime } from '../../src/runtime.js';
import { decodeMessage } from '../../src/tasks/message.js';
import { Worker } from '../../src/worker/worker.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { startEmulator, type Emulator } from '../support/fauxqs.js';
import { testConfig, testRuntime } from '../support/runtime.js';
import { waitFor } from '../support/wait.js';

const VISIBILITY_SECONDS = 2;

let database: TestDatabase;
let emulator: Emulator;
let runtime: Runtime;

before(async () => {
  database = await createTestDatabase();
  emulator = await startEmulator();
  const config = await testConfig(database.url, {
    queues: [
      {
        name: 'long',
        broker: emulator.brokerConfig({
          visibilityTimeoutSeconds: VISIBILITY_SECONDS,
          waitTimeSeconds: 1,
        }),
      },
    ],
    worker: { heartbeatSeconds: 1 },
  });
  runtime = await testRuntime(config);
});

after(async () => {
  await runtime?.close();
  await emulator?.close();
  await database?.drop();
});

test('a task running for several visibility timeouts is extended and never delivered twice', async () => {
  const broker = runtime.brokers.get('long');
  const deliveries: { taskId: string | null; count: number }[] = [];
  const receive = broker.receive.bind(broker);
  broker.receive = async (max: number): Promise<ReceivedMessage[]> => {
    const messages = await receive(max);
    for (const message of messages) {
      const decoded = decodeMessage(message.body);
      deliveries.push({
        taskId: decoded.ok ? decoded.message.id : null,
        count: message.deliveries,
      });
    }
    return messages;
  };

  const runMs = VISIBILITY_SECONDS * 1000 * 3.5;
  const { id } = await new TaskqClient(runtime).enqueue('example.sleep', { ms: runMs });
  // A second slot keeps polling the queue, so a message whose lease ran out would be taken again.
  const worker = new Worker(runtime, { id: 'w-long', concurrency: 2 });
  const running = worker.run();
  try {
    await waitFor(
      'the long task to complete',
      async () => {
        return (await runtime.queries.get(id)).status === 'completed';
      },
      { timeoutMs: runMs + 20_000 },
    );
  } finally {
    await worker.stop();
    await running;
  }

  assert.deepEqual(deliveries, [{ taskId: id, count: 1 }]);
  assert.equal((await runtime.queries.get(id)).attempts, 1);
  assert.deepEqual(await broker.counts(), { waiting: 0, inFlight: 0 });
});
