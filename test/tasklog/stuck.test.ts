import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { TaskqClient } from '../../src/client.js';
import type { Runtime } from '../../src/runtime.js';
import { decodeMessage } from '../../src/tasks/message.js';
import { TaskOperations } from '../../src/tasklog/operations.js';
import { Worker } from '../../src/worker/worker.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { startEmulator, type Emulator } from '../support/fauxqs.js';
import { TEST_HANDLERS } from '../support/paths.js';
import { testConfig, testRuntime } from '../support/runtime.js';
import { waitFor } from '../support/wait.js';

let database: TestDatabase;
let emulator: Emulator;
let runtime: Runtime;

before(async () => {
  database = await createTestDatabase();
  emulator = await startEmulator();
  const config = await testConfig(database.url, {
    handlers: TEST_HANDLERS,
    queues: [
      { name: 'pg', broker: { type: 'postgres' } },
      { name: 'mem', broker: { type: 'memory' } },
      { name: 'sqs', broker: emulator.brokerConfig({ waitTimeSeconds: 1 }) },
    ],
    worker: { heartbeatSeconds: 0.5 },
  });
  runtime = await testRuntime(config);
});

after(async () => {
  await runtime?.close();
  await emulator?.close();
  await database?.drop();
});

/**
 * A task whose worker took its message, started it in the task log and died: the message is
 * leased, the task log says running, and nothing has changed for ten minutes.
 */
async function abandoned(queue: string): Promise<{ id: string; receipt: string }> {
  const { id } = await new TaskqClient(runtime).enqueue('test.hang-first', {}, { queue });
  const broker = runtime.brokers.get(queue);
  const [received] = await waitFor('the message', () =>
    broker.receive(1).then((m) => (m.length ? m : null)),
  );
  const decoded = decodeMessage(received!.body);
  assert.ok(decoded.ok && decoded.message.id === id);
  await runtime.taskLog.start([id], 'dead-worker', 3, [received!.receipt]);
  await backdate(id);
  return { id, receipt: received!.receipt };
}

async function backdate(id: string): Promise<void> {
  await runtime.db.pool.query(
    `UPDATE taskq.tasks SET updated_at = now() - interval '600 seconds',
            lease_expires_at = now() - interval '1 second' WHERE id = $1`,
    [id],
  );
}

/** Runs a worker on one queue until the task completes. */
async function completes(queue: string, id: string): Promise<void> {
  const worker = new Worker(runtime, { id: `w-${queue}`, queues: [queue], concurrency: 2 });
  const running = worker.run();
  try {
    await waitFor(`task ${id} to complete`, async () => {
      return (await runtime.queries.get(id)).status === 'completed';
    });
  } finally {
    await worker.stop();
    await running;
  }
}

const operations = () => new TaskOperations(runtime, 'test');

for (const queue of ['pg', 'mem', 'sqs']) {
  describe(`stuck tasks on the ${queue} queue`, () => {
    test('a task abandoned by a dead worker is found, restarted under its id and completes', async () => {
      const { id } = await abandoned(queue);
      const summary = await operations().stuckSummary({ queue, ageSeconds: 300 });
      const entry = summary.tasks.find((task) => task.id === id);
      assert.ok(entry, 'the summary lists the task');
      assert.equal(entry.status, 'running');
      assert.equal(entry.worker, 'dead-worker');
      assert.equal(entry.leaseLive, false);
      assert.ok(entry.ageSeconds >= 599, `age ${entry.ageSeconds}`);
      assert.equal(entry.message, queue === 'sqs' ? 'unknown' : 'present');
      assert.equal(entry.orphan, false);

      const outcomes = await operations().restartStuck({ queue, ageSeconds: 300 });
      assert.deepEqual(
        outcomes.filter((o) => o.id === id).map((o) => o.action),
        ['redelivered'],
      );
      await completes(queue, id);
      const events = await runtime.queries.events(id);
      assert.ok(events.some((event) => event.kind === 'restarted' && event.actor === 'test'));
    });

    test('an orphan, whose message is gone, is sent again under its id and completes', async () => {
      const { id, receipt } = await abandoned(queue);
      const broker = runtime.brokers.get(queue);
      await broker.ack([{ queue, body: null, receipt, deliveries: 1, sentAt: null }]);
      await waitFor('the message gone', async () => (await broker.counts()).inFlight === 0);

      const summary = await operations().stuckSummary({ queue, ageSeconds: 300 });
      const entry = summary.tasks.find((task) => task.id === id)!;
      assert.equal(entry.orphan, queue !== 'sqs', 'postgres and memory tell an orphan');
      if (queue !== 'sqs') assert.ok(summary.totals.orphans >= 1);

      const outcomes = await operations().restartStuck({ queue, ageSeconds: 300 });
      assert.deepEqual(
        outcomes.filter((o) => o.id === id).map((o) => o.action),
        ['requeued'],
      );
      await completes(queue, id);
      assert.equal((await runtime.queries.get(id)).id, id);
    });
  });
}

test('a dry run lists what it would do and changes nothing', async () => {
  const { id } = await abandoned('pg');
  const before = await runtime.queries.get(id);
  const outcomes = await operations().restartStuck({ queue: 'pg', ageSeconds: 300, dryRun: true });
  assert.deepEqual(
    outcomes.filter((o) => o.id === id).map((o) => o.action),
    ['would-redeliver'],
  );
  const afterwards = await runtime.queries.get(id);
  assert.equal(afterwards.status, 'running');
  assert.equal(afterwards.updatedAt, before.updatedAt);
  assert.ok(!(await runtime.queries.events(id)).some((event) => event.kind === 'restarted'));
  // Leaves the queue clean for the tests after it.
  await operations().restartStuck({ queue: 'pg', ageSeconds: 300 });
  await completes('pg', id);
});

test('the whitelist and the status filter narrow the stuck tasks', async () => {
  const { id } = await abandoned('pg');
  const named = await operations().stuckSummary({
    queue: 'pg',
    ageSeconds: 300,
    names: ['example.echo'],
  });
  assert.ok(!named.tasks.some((task) => task.id === id));
  const enqueuedOnly = await operations().stuckSummary({
    queue: 'pg',
    ageSeconds: 300,
    status: ['enqueued'],
  });
  assert.ok(!enqueuedOnly.tasks.some((task) => task.id === id));
  const listed = await operations().stuckSummary({
    queue: 'pg',
    ageSeconds: 300,
    names: ['test.hang-first'],
    status: ['running'],
  });
  assert.ok(listed.tasks.some((task) => task.id === id));
  await operations().restartStuck({ queue: 'pg', ageSeconds: 300 });
  await completes('pg', id);
});

test('an age under 60 seconds is refused, naming the age', async () => {
  await assert.rejects(operations().stuckSummary({ queue: 'pg', ageSeconds: 30 }), /age must be/);
});
