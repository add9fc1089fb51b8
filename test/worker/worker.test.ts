import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import type { MemoryBroker } from '../../src/brokers/memory.js';
import { TaskqClient } from '../../src/client.js';
import type { Runtime } from '../../src/runtime.js';
import { HandlerRegistry } from '../../src/tasks/handlers.js';
import { Worker } from '../../src/worker/worker.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { handlers, runs } from '../support/handlers.js';
import { testConfig, testRuntime } from '../support/runtime.js';
import { waitFor } from '../support/wait.js';

let database: TestDatabase;
let runtime: Runtime;
let client: TaskqClient;

before(async () => {
  database = await createTestDatabase();
  const config = await testConfig(database.url, {
    queues: [
      { name: 'default', broker: { type: 'postgres', leaseSeconds: 5 } },
      { name: 'mem', broker: { type: 'memory' } },
      { name: 'sync', broker: { type: 'memory', sync: true } },
    ],
    worker: { heartbeatSeconds: 1 },
  });
  runtime = await testRuntime(config, { handlers: new HandlerRegistry(handlers), supervise: true });
  client = new TaskqClient(runtime, 'test');
});

after(async () => {
  await runtime.close();
  await database.drop();
});

async function runUntil(worker: Worker, done: () => Promise<boolean>): Promise<void> {
  const running = worker.run();
  await waitFor('the worker to get there', done);
  await worker.stop();
  await running;
}

const status = async (id: string) => (await runtime.queries.get(id)).status;

const childEnqueue = (
  name: string,
  parameters: unknown,
  options: { label?: string; queue?: string; parentId: string },
) => client.enqueue(name, parameters, options).then((task) => task.id);

describe('worker', () => {
  test('a task runs to completed with its report, one attempt, and its events in order', async () => {
    const { id } = await client.enqueue('example.echo', { text: 'hi' }, { label: 'Say hi' });
    await runUntil(
      new Worker(runtime, { id: 'w-echo' }),
      async () => (await status(id)) === 'completed',
    );
    const task = await runtime.queries.get(id);
    assert.equal(task.report?.message, 'echo: hi');
    assert.equal(task.attempts, 1);
    assert.equal(task.label, 'Say hi');
    const kinds = (await runtime.queries.events(id)).map(
      (event) => `${event.kind}:${event.toStatus}`,
    );
    assert.deepEqual(kinds, ['enqueued:enqueued', 'started:running', 'finished:completed']);
    assert.equal((await runtime.brokers.get('default').counts()).inFlight, 0);
  });

  test('a failing task is retried with backoff until it succeeds', async () => {
    const { id } = await client.enqueue('test.flaky', { failures: 2 });
    await runUntil(
      new Worker(runtime, { id: 'w-flaky' }),
      async () => (await status(id)) === 'completed',
    );
    const task = await runtime.queries.get(id);
    assert.equal(task.attempts, 3);
    const retries = (await runtime.queries.events(id)).filter((event) => event.kind === 'retry');
    assert.equal(retries.length, 2);
  });

  test('a task that fails past its retry limit is failed with an error report and leaves its queue', async () => {
    const { id } = await client.enqueue('example.fail', { message: 'boom' });
    await runUntil(
      new Worker(runtime, { id: 'w-fail' }),
      async () => (await status(id)) === 'failed',
    );
    const task = await runtime.queries.get(id);
    assert.equal(task.report?.type, 'error');
    assert.equal(task.report?.message, 'boom');
    await waitFor('the queue to be empty', async () => {
      const counts = await runtime.brokers.get('default').counts();
      return counts.waiting === 0 && counts.inFlight === 0;
    });
  });

  test('a warning inside the report completes the task; an error inside it fails the task', async () => {
    const warned = await client.enqueue('test.warning');
    const failed = await client.enqueue('test.nested-error');
    await runUntil(new Worker(runtime, { id: 'w-reports' }), async () => {
      return (await status(warned.id)) === 'completed' && (await status(failed.id)) === 'failed';
    });
    assert.equal((await runtime.queries.get(warned.id)).report?.children[0]?.type, 'warning');
  });

  test('a thrown non-Error value becomes a readable error report', async () => {
    const { id } = await client.enqueue('test.throw-string');
    await runUntil(
      new Worker(runtime, { id: 'w-string' }),
      async () => (await status(id)) === 'failed',
    );
    assert.equal((await runtime.queries.get(id)).report?.message, 'a plain string');
  });

  test('a message naming a handler this version lacks is failed and acknowledged, not retried', async () => {
    const registry = new HandlerRegistry({ ...handlers, 'gone.task': () => 'never runs' });
    const oldClient = new TaskqClient({ ...runtime, handlers: registry }, 'test');
    const { id } = await oldClient.enqueue('gone.task');
    await runUntil(
      new Worker(runtime, { id: 'w-unknown' }),
      async () => (await status(id)) === 'failed',
    );
    const task = await runtime.queries.get(id);
    assert.match(
      task.report?.message ?? '',
      /No handler for task "gone.task".*known tasks: .*example\.echo/,
    );
    assert.equal(task.attempts, 1);
    const counts = await runtime.brokers.get('default').counts();
    assert.deepEqual(counts, { waiting: 0, inFlight: 0 });
  });

  test('a task cancelled before pickup is recorded as cancelled and never run', async () => {
    const { id } = await client.enqueue('test.count', {});
    await runtime.queries.cancel(id, { force: false, actor: 'test' });
    const marker = await client.enqueue('example.echo', { text: 'after' });
    await runUntil(
      new Worker(runtime, { id: 'w-cancel' }),
      async () => (await status(marker.id)) === 'completed',
    );
    assert.equal(await status(id), 'cancelled');
    assert.equal(runs.get(id), undefined);
    await waitFor('the cancelled message to be acknowledged', async () => {
      const counts = await runtime.brokers.get('default').counts();
      return counts.waiting === 0 && counts.inFlight === 0;
    });
  });

  test('a message delivered twice never runs twice at the same time', async () => {
    const broker = runtime.brokers.get('mem') as MemoryBroker;
    const { id } = await client.enqueue('test.count', { ms: 600 }, { queue: 'mem' });
    const [sent] = await broker.receive(1);
    await broker.release([sent!], 0);
    // A second copy of the same task, as an at-least-once broker may deliver.
    await broker.push([{ message: sent!.body as never, delaySeconds: 0 }]);

    const first = new Worker(runtime, { id: 'w-dup-1', queues: ['mem'] });
    const second = new Worker(runtime, { id: 'w-dup-2', queues: ['mem'] });
    const running = [first.run(), second.run()];
    await waitFor('the task to complete', async () => (await status(id)) === 'completed');
    await Promise.all([first.stop(), second.stop()]);
    await Promise.all(running);
    assert.equal(runs.get(id), 1);
  });

  test('a running task cancelled with force is aborted at once and stays cancelled', async () => {
    const { id } = await client.enqueue('example.sleep', { ms: 60_000 });
    const worker = new Worker(runtime, { id: 'w-cancel-running' });
    const running = worker.run();
    await waitFor('the task to run', async () => (await status(id)) === 'running');
    await runtime.queries.cancel(id, { force: true, actor: 'test' });
    await waitFor('the handler to be aborted', () => worker.activeCount === 0, { timeoutMs: 3000 });
    assert.equal(await status(id), 'cancelled');
    const kinds = (await runtime.queries.events(id)).map((event) => event.kind);
    assert.deepEqual(kinds.slice(-2), ['cancelled', 'stopped']);
    await worker.stop();
    await running;
    const counts = await runtime.brokers.get('default').counts();
    assert.deepEqual(counts, { waiting: 0, inFlight: 0 }, 'the cancelled task left its queue');
  });

  test('a parent waits in child_running until its children end, then completes', async () => {
    const { id } = await client.enqueue('example.parent', { count: 2 });
    const worker = new Worker(runtime, { id: 'w-parent', enqueue: childEnqueue });
    await runUntil(worker, async () => (await status(id)) === 'completed');
    const { rows } = await runtime.db.pool.query<{ status: string }>(
      `SELECT status FROM taskq.tasks WHERE parent_id = $1`,
      [id],
    );
    assert.deepEqual(
      rows.map((row) => row.status),
      ['completed', 'completed'],
    );
    const kinds = (await runtime.queries.events(id)).map(
      (event) => `${event.kind}:${event.toStatus}`,
    );
    assert.deepEqual(kinds.slice(-2), ['finished:child_running', 'children-ended:completed']);
  });

  test('a parent fails when a child fails, and fails rather than waits when its children are cancelled', async () => {
    const failing = await client.enqueue('test.parent', {
      children: [
        { name: 'example.echo' },
        { name: 'example.fail', parameters: { message: 'child broke' } },
      ],
    });
    const worker = new Worker(runtime, { id: 'w-parent-fail', enqueue: childEnqueue });
    await runUntil(worker, async () => (await status(failing.id)) === 'failed');

    // A child that waits a minute is cancelled: the parent must not wait for it.
    const cancelling = await client.enqueue('test.parent', {
      children: [{ name: 'example.echo' }, { name: 'example.echo' }],
    });
    const second = new Worker(runtime, {
      id: 'w-parent-cancel',
      queues: ['default'],
      enqueue: async (name, parameters, options) => {
        const child = await client.enqueue(name, parameters, { ...options, delaySeconds: 60 });
        return child.id;
      },
    });
    const running = second.run();
    await waitFor(
      'the parent to wait for its children',
      async () => (await status(cancelling.id)) === 'child_running',
    );
    const { rows } = await runtime.db.pool.query<{ id: string }>(
      `SELECT id FROM taskq.tasks WHERE parent_id = $1`,
      [cancelling.id],
    );
    for (const row of rows) await runtime.queries.cancel(row.id, { force: false, actor: 'test' });
    await waitFor('the parent to end', async () => (await status(cancelling.id)) === 'failed');
    const parent = await runtime.queries.get(cancelling.id);
    assert.equal(parent.report?.message, '0 of 2 child task(s) failed and 2 were cancelled');
    await second.stop();
    await running;
  });

  test('an enqueue to a synchronous memory queue runs the task and returns its report', async () => {
    const result = await client.enqueue('example.echo', { text: 'now' }, { queue: 'sync' });
    assert.equal(result.status, 'completed');
    assert.equal(result.report?.message, 'echo: now');
  });

  test('pause holds new tasks back and resume lets them run; both can be repeated', async () => {
    const worker = new Worker(runtime, { id: 'w-pause', queues: ['mem'] });
    const running = worker.run();
    worker.pause();
    worker.pause();
    assert.equal(worker.currentState, 'paused');
    const { id } = await client.enqueue('example.echo', { text: 'held' }, { queue: 'mem' });
    // A running worker takes a memory task within milliseconds; a paused one must not.
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(await status(id), 'enqueued');
    worker.resume();
    worker.resume();
    await waitFor('the task to run after resume', async () => (await status(id)) === 'completed');
    await worker.stop();
    await running;
  });

  test('stop with a deadline aborts a long task and releases it with its attempt counted', async () => {
    const { id } = await client.enqueue('example.sleep', { ms: 60_000 });
    const worker = new Worker(runtime, { id: 'w-stop' });
    const running = worker.run();
    await waitFor('the task to run', async () => (await status(id)) === 'running');
    await worker.stop(0.2);
    await running;
    const task = await runtime.queries.get(id);
    assert.equal(task.status, 'enqueued');
    assert.equal(task.attempts, 1);
    const kinds = (await runtime.queries.events(id)).map((event) => event.kind);
    assert.equal(kinds.at(-1), 'released');
    await runtime.queries.cancel(id, { force: false, actor: 'test' });
  });
});
