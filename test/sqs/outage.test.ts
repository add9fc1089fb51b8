import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Writable } from 'node:stream';

import { pino } from 'pino';

import { TaskqClient } from '../../src/client.js';
import type { TaskqConfig } from '../../src/config/types.js';
import { openRuntime, type Runtime } from '../../src/runtime.js';
import { Worker } from '../../src/worker/worker.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { startEmulator, type Emulator } from '../support/fauxqs.js';
import { testConfig } from '../support/runtime.js';
import { waitFor } from '../support/wait.js';

const TASKS = 120;

let database: TestDatabase;
let emulator: Emulator;
let config: TaskqConfig;
const runtimes: Runtime[] = [];

/** The log lines of one runtime, parsed, for counting what its workers said. */
function capturedLogger(): { logger: pino.Logger; lines: { msg: string; queue?: string }[] } {
  const lines: { msg: string; queue?: string }[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n')) if (line) lines.push(JSON.parse(line));
      done();
    },
  });
  return { logger: pino({ level: 'info' }, stream), lines };
}

before(async () => {
  database = await createTestDatabase();
  emulator = await startEmulator();
  config = await testConfig(database.url, {
    queues: [
      {
        name: 'jobs',
        broker: emulator.brokerConfig({ visibilityTimeoutSeconds: 2, waitTimeSeconds: 1 }),
      },
    ],
    worker: { heartbeatSeconds: 1, idlePollMaxSeconds: 1 },
  });
});

after(async () => {
  for (const runtime of runtimes) await runtime.close();
  await emulator?.close();
  await database?.drop();
});

test('workers ride out the emulator stopping and restarting mid-run, and no task is lost or run twice', async () => {
  const processes = await Promise.all(
    ['w1', 'w2'].map(async (id) => {
      const { logger, lines } = capturedLogger();
      const runtime = await openRuntime(config, logger);
      runtimes.push(runtime);
      let failedReceives = 0;
      const broker = runtime.brokers.get('jobs');
      const receive = broker.receive.bind(broker);
      broker.receive = (max) =>
        receive(max).catch((error: unknown) => {
          failedReceives += 1;
          throw error;
        });
      const worker = new Worker(runtime, { id, concurrency: 4 });
      return { runtime, lines, worker, failed: () => failedReceives };
    }),
  );
  const [first] = processes;
  const client = new TaskqClient(first!.runtime);
  await client.enqueueMany(
    Array.from({ length: TASKS }, () => ({ name: 'example.sleep', parameters: { ms: 100 } })),
  );
  const runs = processes.map(({ worker }) => worker.run());

  const completed = async () => {
    const { rows } = await first!.runtime.db.pool.query<{ count: string }>(
      `SELECT count(*) FROM ${config.database.schema}.tasks WHERE status = 'completed'`,
    );
    return Number(rows[0]!.count);
  };
  await waitFor('a quarter of the tasks to complete', async () => (await completed()) >= TASKS / 4);

  await emulator.stop();
  // Each worker keeps polling through the outage, and fails several times over.
  await waitFor('every worker to fail several receives', () =>
    processes.every((p) => p.failed() >= 3),
  );
  await assert.rejects(client.enqueue('example.noop'), 'an enqueue during the outage fails');
  await emulator.restart();

  await waitFor('every task to complete', async () => (await completed()) === TASKS, {
    timeoutMs: 60_000,
  });
  for (const { worker } of processes) await worker.stop();
  await Promise.all(runs);

  const { rows } = await first!.runtime.db.pool.query<{ id: string; attempts: number }>(
    `SELECT id, attempts FROM ${config.database.schema}.tasks`,
  );
  assert.equal(rows.length, TASKS, 'the enqueue that failed left no task behind');
  assert.deepEqual(
    rows.filter((row) => row.attempts !== 1),
    [],
    'every task ran exactly once',
  );
  for (const { lines } of processes) {
    const said = (text: string) => lines.filter((line) => line.msg === text).length;
    assert.equal(said('cannot receive from queue; backing off'), 1);
    assert.equal(said('queue reachable again'), 1);
  }
  assert.deepEqual(await first!.runtime.brokers.get('jobs').counts(), { waiting: 0, inFlight: 0 });
});
