import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';

import { TaskqClient } from '../../src/client.js';
import type { Runtime } from '../../src/runtime.js';
import { HandlerRegistry, type HandlerModule } from '../../src/tasks/handlers.js';
import { Worker } from '../../src/worker/worker.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { testConfig, testRuntime } from '../support/runtime.js';
import { waitFor } from '../support/wait.js';

const GRACE_SECONDS = 0.5;

/** What each handler saw of its signal, by task id. */
const abortReasons = new Map<string, string>();

const handlers: HandlerModule = {
  /** Waits for its signal, then answers success: an answer that must not count. */
  'timeout.polite': {
    timeoutSeconds: 0.3,
    retry: { limit: 1, delaySeconds: 0 },
    run: async (_parameters, { taskId, signal }) => {
      await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve()));
      abortReasons.set(taskId, (signal.reason as { code?: string }).code ?? '?');
      return 'finished after the abort';
    },
  },
  /** Never returns and never looks at its signal. */
  'timeout.deaf': {
    timeoutSeconds: 0.3,
    retry: { limit: 0 },
    run: () => new Promise(() => {}),
  },
  /** Sleeps `ms`; its timeout comes from worker.taskTimeoutSeconds. */
  'timeout.default': async (parameters) => {
    await delay(Number((parameters as { ms: number }).ms));
    return 'slept';
  },
};

let database: TestDatabase;
let runtime: Runtime;
let client: TaskqClient;

before(async () => {
  database = await createTestDatabase();
  const config = await testConfig(database.url, {
    queues: [{ name: 'default', broker: { type: 'postgres', leaseSeconds: 30 } }],
    worker: { heartbeatSeconds: 1, taskTimeoutSeconds: 0.4 },
    retry: { limit: 0 },
    supervisor: { cancelGraceSeconds: GRACE_SECONDS },
  });
  runtime = await testRuntime(config, { handlers: new HandlerRegistry(handlers) });
  client = new TaskqClient(runtime, 'test');
});

after(async () => {
  await runtime.close();
  await database.drop();
});

async function runUntilEnded(worker: Worker, ids: string[]): Promise<void> {
  const running = worker.run();
  await waitFor('the tasks to end', async () => {
    const tasks = await Promise.all(ids.map((id) => runtime.queries.get(id)));
    return tasks.every((task) => task.status === 'completed' || task.status === 'failed');
  });
  await worker.stop();
  await running;
}

test('a task past its timeout has its signal aborted, fails with a timeout report and is retried', async () => {
  const { id } = await client.enqueue('timeout.polite', {});
  await runUntilEnded(new Worker(runtime, { id: 'w-polite' }), [id]);

  const task = await runtime.queries.get(id);
  assert.equal(task.status, 'failed');
  assert.equal(task.attempts, 2, 'retried once, as its retry limit says');
  assert.match(task.report!.message, /ran past its timeout of 0\.3 s/);
  assert.equal(abortReasons.get(id), 'TIMEOUT');
});

test('a handler that ignores its signal is abandoned after the grace and its attempt recorded', async () => {
  const { id } = await client.enqueue('timeout.deaf', {});
  const worker = new Worker(runtime, { id: 'w-deaf' });
  const abandoned: string[] = [];
  worker.on('handler-abandoned', (taskId) => abandoned.push(taskId));
  const startedAt = Date.now();
  await runUntilEnded(worker, [id]);

  const task = await runtime.queries.get(id);
  assert.equal(task.status, 'failed');
  assert.match(task.report!.message, /ran past its timeout/);
  assert.deepEqual(abandoned, [id]);
  assert.ok(Date.now() - startedAt >= (0.3 + GRACE_SECONDS) * 1000, 'the grace was given');
  assert.equal(worker.activeCount, 0, 'the abandoned handler holds no slot');
});

test('worker.taskTimeoutSeconds bounds a handler that sets no timeout of its own', async () => {
  const quick = await client.enqueue('timeout.default', { ms: 10 });
  const slow = await client.enqueue('timeout.default', { ms: 5000 });
  await runUntilEnded(new Worker(runtime, { id: 'w-default' }), [quick.id, slow.id]);

  assert.equal((await runtime.queries.get(quick.id)).status, 'completed');
  const task = await runtime.queries.get(slow.id);
  assert.equal(task.status, 'failed');
  assert.match(task.report!.message, /ran past its timeout of 0\.4 s/);
});

test('a handler whose timeoutSeconds is not a positive number is refused when registered', () => {
  assert.throws(
    () => new HandlerRegistry({ bad: { timeoutSeconds: -1, run: () => 'x' } }),
    /Handler "bad": timeoutSeconds must be a positive number of seconds \(got -1\)/,
  );
});
