import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, test } from 'node:test';

import { TaskqClient } from '../../src/client.js';
import { pauseQueues } from '../../src/queues/pauses.js';
import type { Runtime } from '../../src/runtime.js';
import { HandlerRegistry } from '../../src/tasks/handlers.js';
import { runCli } from '../support/cli.js';
import { createTestDatabase } from '../support/database.js';
import { startEmulator } from '../support/fauxqs.js';
import { handlers } from '../support/handlers.js';
import { TEST_HANDLERS } from '../support/paths.js';
import { testConfig, testRuntime } from '../support/runtime.js';
import { startSupervisor, supervisorHome, type RunningSupervisor } from '../support/supervisor.js';
import { waitFor } from '../support/wait.js';

interface Setup {
  runtime: Runtime;
  client: TaskqClient;
  env: NodeJS.ProcessEnv;
  /** Where the test handlers write their marker files. */
  markers: string;
}

const cleanups: (() => Promise<unknown>)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
});

async function setup(config: Record<string, unknown>): Promise<Setup> {
  const database = await createTestDatabase();
  cleanups.push(() => database.drop());
  const full = { handlers: TEST_HANDLERS, worker: { heartbeatSeconds: 10 }, ...config };
  const { home, configFile } = await supervisorHome(full);
  cleanups.push(() => fs.rm(home, { recursive: true, force: true }));
  const markers = await fs.mkdtemp(path.join(os.tmpdir(), 'taskq-markers-'));
  cleanups.push(() => fs.rm(markers, { recursive: true, force: true }));
  const runtime = await testRuntime(await testConfig(database.url, full), {
    handlers: new HandlerRegistry(handlers),
  });
  cleanups.push(() => runtime.close());
  const env = { TASKQ_DATABASE_URL: database.url, TASKQ_CONFIG: configFile, TASKQ_HOME: home };
  return { runtime, client: new TaskqClient(runtime, 'test'), env, markers };
}

async function supervise(
  s: Setup,
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<RunningSupervisor> {
  const supervisor = await startSupervisor(args, { ...s.env, ...env });
  cleanups.push(() => supervisor.stop('SIGKILL'));
  await waitFor('every worker to run', async () =>
    (await supervisor.health()).workers.every((worker) => worker.state === 'running'),
  );
  return supervisor;
}

const status = async (s: Setup, id: string) => (await s.runtime.queries.get(id)).status;
const marker = (s: Setup, id: string, kind: 'started' | 'abort') =>
  path.join(s.markers, `${id}.${kind}`);
const markedAt = (s: Setup, id: string, kind: 'started' | 'abort') =>
  existsSync(marker(s, id, kind)) ? Number(readFileSync(marker(s, id, kind), 'utf8')) : null;

async function metrics(supervisor: RunningSupervisor): Promise<string> {
  return (await fetch(`${supervisor.url}/metrics`)).text();
}

const ONE_QUEUE = { queues: [{ name: 'default', broker: { type: 'postgres' } }] };

describe('cancelling a running task', () => {
  for (const isolation of ['process', 'thread'] as const) {
    test(`with ${isolation} isolation, --cancel --force aborts the handler within 2 s; its late report changes nothing`, async () => {
      const s = await setup(ONE_QUEUE);
      const supervisor = await supervise(s, ['--workers=2', `--isolation=${isolation}`]);
      const { id } = await s.client.enqueue('test.wait-abort', {
        markers: s.markers,
        lateMs: 1000,
      });
      await waitFor('the handler to start', () => markedAt(s, id, 'started'));

      const cancel = await runCli(['log', '--cancel', id, '--force'], { env: s.env });
      const cancelledAt = Date.now();
      assert.equal(cancel.code, 0, cancel.stderr);
      assert.match(cancel.stdout, /cancelled/);
      const abortedAt = await waitFor('the AbortSignal to fire', () => markedAt(s, id, 'abort'), {
        timeoutMs: 5000,
      });
      assert.ok(abortedAt - cancelledAt < 2000, `aborted ${abortedAt - cancelledAt} ms later`);

      // The handler returns a success a second after its abort; the task stays cancelled.
      const events = await waitFor('the task log to note the stop', async () => {
        const all = await s.runtime.queries.events(id);
        return all.some((event) => event.kind === 'stopped') ? all : null;
      });
      const task = await s.runtime.queries.get(id);
      assert.equal(task.status, 'cancelled');
      assert.equal(task.report, null, 'the late report was not written');
      const cancelEvent = events.find((event) => event.kind === 'cancelled')!;
      assert.match(cancelEvent.actor, /^cli:/);
      const stopped = events.find((event) => event.kind === 'stopped')!;
      assert.ok((stopped.detail as { afterSeconds: number }).afterSeconds >= 1);
      assert.deepEqual(
        await s.runtime.brokers.get('default').counts(),
        { waiting: 0, inFlight: 0 },
        'the message was acknowledged, never to be delivered again',
      );
      assert.deepEqual((await supervisor.health()).restarts, {
        crash: 0,
        recycle: 0,
        unresponsive: 0,
      });
      assert.deepEqual(await supervisor.stop(), { code: 0, signal: null });
    });
  }

  test('with thread isolation, a handler that ignores its AbortSignal past the grace has its thread ended', async () => {
    const s = await setup({ ...ONE_QUEUE, supervisor: { cancelGraceSeconds: 1 } });
    const supervisor = await supervise(s, ['--workers=2', '--isolation=thread']);
    const { id } = await s.client.enqueue('test.ignore-abort', { markers: s.markers });
    await waitFor('the handler to start', () => markedAt(s, id, 'started'));

    const cancel = await runCli(['log', '--cancel', id, '--force'], { env: s.env });
    assert.equal(cancel.code, 0, cancel.stderr);
    await waitFor('the AbortSignal to fire', () => markedAt(s, id, 'abort'), { timeoutMs: 3000 });
    await waitFor(
      'the thread to be ended',
      async () => (await supervisor.health()).restarts.recycle === 1,
      { timeoutMs: 15_000 },
    );
    assert.equal((await s.runtime.queries.get(id)).status, 'cancelled');

    // The pool replaced the thread: the fleet goes on.
    const after = await s.client.enqueue('example.echo', { text: 'after' });
    await waitFor(
      'a task after the end of the thread',
      async () => (await status(s, after.id)) === 'completed',
    );
    assert.deepEqual(await supervisor.stop(), { code: 0, signal: null });
  });

  test('a handler that ignores its AbortSignal past cancelGraceSeconds gets its worker recycled', async () => {
    const s = await setup({ ...ONE_QUEUE, supervisor: { cancelGraceSeconds: 1 } });
    const supervisor = await supervise(s, ['--workers=1', '--shutdown-timeout-seconds=2']);
    const before = (await supervisor.health()).workers[0]!;
    const { id } = await s.client.enqueue('test.ignore-abort', { markers: s.markers });
    await waitFor('the handler to start', () => markedAt(s, id, 'started'));

    const cancel = await runCli(['log', '--cancel', id, '--force'], { env: s.env });
    assert.equal(cancel.code, 0, cancel.stderr);
    await waitFor('the AbortSignal to fire', () => markedAt(s, id, 'abort'), { timeoutMs: 3000 });
    await waitFor(
      'the worker to be recycled',
      async () => {
        const worker = (await supervisor.health()).workers[0]!;
        return worker.pid !== before.pid && worker.state === 'running';
      },
      { timeoutMs: 15_000 },
    );
    const health = await supervisor.health();
    assert.equal(health.restarts.recycle, 1);
    assert.equal(health.restarts.crash, 0);
    assert.match(await metrics(supervisor), /taskq_worker_restarts_total\{reason="recycle"\} 1/);

    const task = await s.runtime.queries.get(id);
    assert.equal(task.status, 'cancelled');
    assert.equal(task.attempts, 1, 'the cancelled task never ran again');
    const stopped = (await s.runtime.queries.events(id)).find((event) => event.kind === 'stopped');
    assert.equal(stopped?.actor, 'supervisor');
    assert.deepEqual(await s.runtime.brokers.get('default').counts(), {
      waiting: 0,
      inFlight: 0,
    });

    // The new worker takes tasks.
    const next = await s.client.enqueue('example.echo', { text: 'after' });
    await waitFor('the next task to run', async () => (await status(s, next.id)) === 'completed');
    await supervisor.stop();
  });
});

describe('parents and children in worker processes', () => {
  test('a parent ends as its children do, in every outcome, with children on an SQS queue too', async () => {
    const emulator = await startEmulator();
    cleanups.push(() => emulator.close());
    const s = await setup({
      queues: [
        { name: 'default', broker: { type: 'postgres' } },
        // A long poll reserves the worker's free slots while it waits (a limit of the SQS
        // receive); a short one keeps the postgres queue's tasks from waiting behind it.
        {
          name: 'side',
          broker: emulator.brokerConfig({ prefix: `TQ_${Date.now()}_`, waitTimeSeconds: 1 }),
        },
      ],
    });
    const supervisor = await supervise(s, ['--workers=2']);
    const parent = (children: { name: string; parameters?: unknown; queue?: string }[]) =>
      s.client.enqueue('test.parent', { children }).then((task) => task.id);
    const childrenOf = async (id: string) =>
      (
        await s.runtime.db.pool.query<{ id: string; status: string }>(
          'SELECT id, status FROM taskq.tasks WHERE parent_id = $1 ORDER BY created_at',
          [id],
        )
      ).rows;

    const completing = await parent([
      { name: 'example.echo' },
      { name: 'example.echo', queue: 'side' },
    ]);
    const failing = await parent([
      { name: 'example.echo', queue: 'side' },
      { name: 'example.fail', parameters: { message: 'child broke' } },
    ]);
    const runningChild = await parent([
      { name: 'test.wait-abort', parameters: { markers: s.markers } },
    ]);
    for (const [id, expected] of [
      [completing, 'completed'],
      [failing, 'failed'],
    ] as const)
      await waitFor(`parent ${expected}`, async () => (await status(s, id)) === expected, {
        timeoutMs: 30_000,
      });
    assert.deepEqual(
      (await childrenOf(completing)).map((child) => child.status),
      ['completed', 'completed'],
    );
    assert.match(
      (await s.runtime.queries.get(failing)).report!.message,
      /^1 of 2 child task\(s\) failed/,
    );

    // A child cancelled while it runs: the parent fails rather than waits.
    const [running] = await childrenOf(runningChild);
    await waitFor('the child to run', () => markedAt(s, running!.id, 'started'));
    await s.runtime.queries.cancel(running!.id, { force: true, actor: 'test' });
    await waitFor('the parent to fail', async () => (await status(s, runningChild)) === 'failed');

    // Children held back on a paused queue: one cancelled before it starts, one archived.
    await pauseQueues(s.runtime.taskLog, ['side'], 'test');
    const cancelling = await parent([{ name: 'example.echo', queue: 'side' }]);
    const archiving = await parent([{ name: 'example.echo', queue: 'side' }]);
    for (const id of [cancelling, archiving])
      await waitFor('the parent to wait', async () => (await status(s, id)) === 'child_running');
    const [waiting] = await childrenOf(cancelling);
    const [archived] = await childrenOf(archiving);
    assert.equal(waiting!.status, 'enqueued');
    await s.runtime.queries.cancel(waiting!.id, { force: false, actor: 'test' });
    await s.runtime.queries.archive(archived!.id, { force: true, actor: 'test' });
    await waitFor('the parent to fail', async () => (await status(s, cancelling)) === 'failed');
    assert.equal(
      (await s.runtime.queries.get(cancelling)).report!.message,
      '0 of 1 child task(s) failed and 1 were cancelled',
    );
    await waitFor(
      'the parent to complete',
      async () => (await status(s, archiving)) === 'completed',
    );
    const ended = (await s.runtime.queries.events(cancelling)).at(-1)!;
    assert.equal(ended.kind, 'children-ended');
    assert.deepEqual(ended.detail, { children: 1, failed: 0, cancelled: 1 });
    await supervisor.stop();
  });
});

describe('queue pauses kept in the database', () => {
  const TWO_QUEUES = {
    queues: [
      { name: 'default', broker: { type: 'postgres' } },
      { name: 'other', broker: { type: 'postgres' } },
    ],
  };

  test('taskq pause --queue holds a queue for every supervisor, across restarts, until taskq resume', async () => {
    const s = await setup(TWO_QUEUES);
    const first = await supervise(s, ['--workers=2']);
    const paused = await runCli(['pause', '--queue=default'], { env: s.env });
    assert.equal(paused.code, 0, paused.stderr);
    assert.match(paused.stdout, /^default paused since .* by cli:/m);
    await waitFor('/healthz to show the pause', async () => {
      const health = (await first.health()) as unknown as { pausedQueues: string[] };
      return health.pausedQueues.join() === 'default';
    });
    assert.match(await metrics(first), /taskq_queue_paused\{queue="default"\} 1/);
    assert.match(await metrics(first), /taskq_queue_paused\{queue="other"\} 0/);
    assert.match(await metrics(first), /taskq_fleet_paused 0/);

    const held = await s.client.enqueue('example.echo', { text: 'held' }, { queue: 'default' });
    const free = await s.client.enqueue('example.echo', { text: 'free' }, { queue: 'other' });
    await waitFor('the other queue to run', async () => (await status(s, free.id)) === 'completed');
    assert.equal(await status(s, held.id), 'enqueued');

    // A restart, and a second supervisor on the same database, keep the queue paused.
    await first.stop();
    const secondHome = await fs.mkdtemp(path.join(os.tmpdir(), 'taskq-second-'));
    cleanups.push(() => fs.rm(secondHome, { recursive: true, force: true }));
    const second = await supervise(s, ['--workers=1']);
    const third = await supervise(s, ['--workers=1'], { TASKQ_HOME: secondHome });
    const afterRestart = await s.client.enqueue('example.echo', {}, { queue: 'other' });
    await waitFor('a task to run', async () => (await status(s, afterRestart.id)) === 'completed');
    assert.equal(await status(s, held.id), 'enqueued');
    assert.deepEqual(
      await s.runtime.brokers.get('default').counts(),
      { waiting: 1, inFlight: 0 },
      'the waiting message stays in its queue, untouched',
    );

    const resumed = await runCli(['resume', '--queue=default'], { env: s.env });
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.match(resumed.stdout, /no queue is paused/);
    await waitFor('the held task to run', async () => (await status(s, held.id)) === 'completed');
    for (const supervisor of [second, third]) {
      const health = (await supervisor.health()) as unknown as { pausedQueues: string[] };
      assert.deepEqual(health.pausedQueues, []);
      assert.match(await metrics(supervisor), /taskq_queue_paused\{queue="default"\} 0/);
    }
    await Promise.all([second.stop(), third.stop()]);
  });

  test('taskq pause without --queue holds every queue; a bad queue name is a usage error', async () => {
    const s = await setup(TWO_QUEUES);
    const supervisor = await supervise(s, ['--workers=1']);
    const bad = await runCli(['pause', '--queue=nope'], { env: s.env });
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /Queue "nope" is not configured \(configured: default, other\)/);

    assert.equal((await runCli(['pause'], { env: s.env })).code, 0);
    await waitFor('/healthz to show the pause', async () => {
      const health = (await supervisor.health()) as unknown as { pausedQueues: string[] };
      return health.pausedQueues.join() === 'default,other';
    });
    const tasks = await Promise.all(
      ['default', 'other'].map((queue) => s.client.enqueue('example.echo', {}, { queue })),
    );
    const partial = await runCli(['resume', '--queue=other'], { env: s.env });
    assert.equal(partial.code, 1);
    assert.match(partial.stderr, /all queues are paused/);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    for (const task of tasks) assert.equal(await status(s, task.id), 'enqueued');

    assert.equal((await runCli(['resume'], { env: s.env })).code, 0);
    await waitFor('both tasks to run', async () => {
      const statuses = await Promise.all(tasks.map((task) => status(s, task.id)));
      return statuses.every((value) => value === 'completed');
    });
    await supervisor.stop();
  });
});
