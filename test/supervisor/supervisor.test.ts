import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, test } from 'node:test';

import { TaskqClient } from '../../src/client.js';
import type { Runtime } from '../../src/runtime.js';
import { HandlerRegistry } from '../../src/tasks/handlers.js';
import { exited } from '../support/cli.js';
import { createTestDatabase } from '../support/database.js';
import { handlers } from '../support/handlers.js';
import { TEST_HANDLERS } from '../support/paths.js';
import { testConfig, testRuntime } from '../support/runtime.js';
import { startSupervisor, supervisorHome, type RunningSupervisor } from '../support/supervisor.js';
import { waitFor } from '../support/wait.js';

interface Setup {
  runtime: Runtime;
  client: TaskqClient;
  env: NodeJS.ProcessEnv;
  configFile: string;
  home: string;
}

const cleanups: (() => Promise<unknown>)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
});

/** A database, a configuration file and a client for one test; all removed after it. */
async function setup(config: Record<string, unknown>): Promise<Setup> {
  const database = await createTestDatabase();
  cleanups.push(() => database.drop());
  const full = { handlers: TEST_HANDLERS, worker: { heartbeatSeconds: 1 }, ...config };
  const { home, configFile } = await supervisorHome(full);
  cleanups.push(() => fs.rm(home, { recursive: true, force: true }));
  const runtime = await testRuntime(await testConfig(database.url, full), {
    handlers: new HandlerRegistry(handlers),
  });
  cleanups.push(() => runtime.close());
  const env = { TASKQ_DATABASE_URL: database.url, TASKQ_CONFIG: configFile, TASKQ_HOME: home };
  return { runtime, client: new TaskqClient(runtime, 'test'), env, configFile, home };
}

async function supervise(s: Setup, args: string[]): Promise<RunningSupervisor> {
  const supervisor = await startSupervisor(args, s.env);
  cleanups.push(() => supervisor.stop('SIGKILL'));
  await waitFor('every worker to run', async () => {
    const health = await supervisor.health();
    return health.workers.every(
      (worker) => worker.state === 'running' || worker.state === 'paused',
    );
  });
  return supervisor;
}

const status = async (s: Setup, id: string) => (await s.runtime.queries.get(id)).status;

const ONE_QUEUE = { queues: [{ name: 'default', broker: { type: 'postgres' } }] };

describe('taskq-supervisor', () => {
  test('SIGUSR2 pauses the whole fleet: a task enqueued then waits; SIGCONT runs it', async () => {
    const s = await setup(ONE_QUEUE);
    const supervisor = await supervise(s, ['--workers=2']);
    supervisor.process.kill('SIGUSR2');
    supervisor.process.kill('SIGUSR2');
    await waitFor('every worker paused', async () => {
      const health = await supervisor.health();
      return health.paused && health.workers.every((worker) => worker.state === 'paused');
    });

    const { id } = await s.client.enqueue('example.echo', { text: 'held' });
    // A running fleet is woken by the enqueue at once and polls every second at the least.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    assert.equal(await status(s, id), 'enqueued');

    supervisor.process.kill('SIGCONT');
    await waitFor(
      'the task to run after SIGCONT',
      async () => (await status(s, id)) === 'completed',
    );
    assert.equal((await supervisor.health()).paused, false);
    assert.deepEqual(await supervisor.stop(), { code: 0, signal: null });
  });

  test('a worker started while the fleet is paused starts paused', async () => {
    const s = await setup(ONE_QUEUE);
    const supervisor = await supervise(s, ['--workers=2']);
    supervisor.process.kill('SIGUSR2');
    await waitFor('the pause', async () => (await supervisor.health()).paused);
    const victim = (await supervisor.health()).workers[0]!;
    process.kill(victim.pid!, 'SIGKILL');
    await waitFor('the replacement to start paused', async () => {
      const worker = (await supervisor.health()).workers[0]!;
      return worker.pid !== victim.pid && worker.state === 'paused';
    });
    const { id } = await s.client.enqueue('example.echo', { text: 'held' });
    await new Promise((resolve) => setTimeout(resolve, 1500));
    assert.equal(await status(s, id), 'enqueued');
    supervisor.process.kill('SIGCONT');
    await waitFor('the task to run', async () => (await status(s, id)) === 'completed');
  });

  test('SIGTERM with a short timeout releases long tasks; a new supervisor completes them, nothing lost', async () => {
    const s = await setup(ONE_QUEUE);
    const first = await supervise(s, ['--workers=2', '--shutdown-timeout-seconds=0.5']);
    const quick = await s.client.enqueue('example.sleep', { ms: 100 });
    const long = await Promise.all(
      [1, 2, 3].map(() => s.client.enqueue('example.sleep', { ms: 4000 })),
    );
    await waitFor('the long tasks to run', async () => {
      const statuses = await Promise.all(long.map((task) => status(s, task.id)));
      return statuses.filter((value) => value === 'running').length >= 2;
    });
    assert.deepEqual(await first.stop('SIGTERM'), { code: 0, signal: null });
    assert.match(first.output(), /"msg":"fleet stopped"/);
    for (const task of long) assert.notEqual(await status(s, task.id), 'running');

    const second = await supervise(s, ['--workers=2']);
    await waitFor(
      'every task to complete',
      async () => {
        const statuses = await Promise.all([quick, ...long].map((task) => status(s, task.id)));
        return statuses.every((value) => value === 'completed');
      },
      { timeoutMs: 30_000 },
    );
    const released = await Promise.all(
      long.map(async (task) =>
        (await s.runtime.queries.events(task.id)).some((e) => e.kind === 'released'),
      ),
    );
    assert.ok(released.some(Boolean), 'at least one long task was released at the deadline');
    await second.stop();
  });

  test('a worker killed mid-task has its task released at once and run elsewhere, both attempts logged', async () => {
    const s = await setup(ONE_QUEUE);
    const supervisor = await supervise(s, ['--workers=2']);
    const { id } = await s.client.enqueue('example.sleep', { ms: 1500 });
    const holder = await waitFor('the task to run', async () => {
      const task = await s.runtime.queries.get(id);
      return task.status === 'running' ? task.worker : null;
    });
    const victim = (await supervisor.health()).workers.find((worker) => worker.id === holder)!;
    const killedAt = Date.now();
    process.kill(victim.pid!, 'SIGKILL');

    await waitFor(
      'the second attempt to start',
      async () => (await s.runtime.queries.get(id)).attempts === 2,
    );
    // The queue's lease is 900 s: only the supervisor's release can explain a restart this fast.
    assert.ok(Date.now() - killedAt < 10_000);
    await waitFor('the task to complete', async () => (await status(s, id)) === 'completed');
    const events = await s.runtime.queries.events(id);
    const released = events.find((event) => event.kind === 'released');
    assert.equal(released?.actor, 'supervisor');
    assert.equal(events.filter((event) => event.kind === 'started').length, 2);
    await waitFor(
      'the restart to show',
      async () => (await supervisor.health()).restarts.crash >= 1,
    );
  });

  test('a slot that crashes on every start is given up after its restart limit; the others go on', async () => {
    const s = await setup({
      ...ONE_QUEUE,
      supervisor: { maxRestarts: 3, restartWindowSeconds: 60 },
    });
    const supervisor = await startSupervisor(['--workers=2'], {
      ...s.env,
      TASKQ_TEST_CRASH_SLOT0: '1',
    });
    cleanups.push(() => supervisor.stop('SIGKILL'));
    await waitFor(
      'slot 0 to be given up',
      async () => (await supervisor.health()).workers[0]!.state === 'given-up',
      {
        timeoutMs: 30_000,
      },
    );
    const health = await supervisor.health();
    assert.equal(health.workers[0]!.restarts, 3);
    assert.match(supervisor.output(), /restarted too often; giving it up/);

    const tasks = await Promise.all(
      [1, 2, 3].map((n) => s.client.enqueue('example.echo', { text: `still flowing ${n}` })),
    );
    await waitFor('the other slot to run them', async () => {
      const statuses = await Promise.all(tasks.map((task) => status(s, task.id)));
      return statuses.every((value) => value === 'completed');
    });
    assert.equal((await supervisor.health()).workers[1]!.state, 'running');
  });

  test('SIGHUP applies new weights; a broken file is refused and the running weights stay', async () => {
    const config = {
      queues: [
        { name: 'a', broker: { type: 'postgres' }, weight: 90 },
        { name: 'b', broker: { type: 'postgres' }, weight: 10 },
      ],
      worker: { heartbeatSeconds: 1, concurrency: 1 },
    };
    const s = await setup(config);
    const supervisor = await supervise(s, ['--workers=1']);

    const shareOfA = async () => {
      const batch = await s.client.enqueueMany(
        ['a', 'b'].flatMap((queue) =>
          Array.from({ length: 100 }, () => ({
            name: 'example.sleep',
            parameters: { ms: 5 },
            queue,
          })),
        ),
      );
      const ids = new Set(batch.map((task) => task.id));
      // Take the first 60 completions while both queues still have work.
      const done = await waitFor(
        '60 completions',
        async () => {
          const { rows } = await s.runtime.db.pool.query<{ id: string; queue: string }>(
            `SELECT id, queue FROM taskq.tasks WHERE status = 'completed' ORDER BY finished_at`,
          );
          const ours = rows.filter((row) => ids.has(row.id));
          return ours.length >= 60 ? ours.slice(0, 60) : null;
        },
        { timeoutMs: 30_000 },
      );
      const share = done.filter((row) => row.queue === 'a').length / done.length;
      await supervisor.process.kill('SIGUSR2');
      await waitFor('the pause', async () =>
        (await supervisor.health()).workers.every((worker) => worker.state === 'paused'),
      );
      await s.runtime.db.pool.query(
        `UPDATE taskq.tasks SET status = 'cancelled' WHERE status = 'enqueued'`,
      );
      await s.runtime.db.pool.query(`DELETE FROM pgboss.job WHERE state < 'active'`);
      supervisor.process.kill('SIGCONT');
      await waitFor('no task running', async () =>
        (await supervisor.health()).workers.every((worker) => worker.running === 0),
      );
      return share;
    };

    const before = await shareOfA();
    assert.ok(before > 0.75, `queue a's share with weights 90/10 was ${before}`);

    await fs.writeFile(
      s.configFile,
      JSON.stringify({
        ...config,
        handlers: TEST_HANDLERS,
        queues: [
          { name: 'a', broker: { type: 'postgres' }, weight: 10 },
          { name: 'b', broker: { type: 'postgres' }, weight: 90 },
        ],
      }),
    );
    supervisor.process.kill('SIGHUP');
    await waitFor(
      'the new weights',
      async () =>
        (await supervisor.health()).queues.find((queue) => queue.name === 'a')?.weight
          .configured === 10,
    );
    const after = await shareOfA();
    assert.ok(after < 0.25, `queue a's share with weights 10/90 was ${after}`);

    await fs.writeFile(s.configFile, '{ "queues": [ { "name": "a", "weight": "high" } ]');
    supervisor.process.kill('SIGHUP');
    await waitFor('the refusal', () =>
      supervisor.output().includes('configuration reload refused'),
    );
    const health = await supervisor.health();
    assert.equal(health.queues.find((queue) => queue.name === 'b')?.weight.configured, 90);
    const { id } = await s.client.enqueue('example.echo', {}, { queue: 'b' });
    await waitFor('work to go on', async () => (await status(s, id)) === 'completed');
  });

  test('SIGHUP applies new associations to the children that worker processes enqueue', async () => {
    const config = {
      queues: [
        { name: 'a', broker: { type: 'postgres' }, weight: 50 },
        { name: 'b', broker: { type: 'postgres' }, weight: 50 },
      ],
      associations: { 'example.echo': 'a' },
    };
    const s = await setup(config);
    const supervisor = await supervise(s, ['--workers=1']);
    const childQueue = async () => {
      const parent = await s.client.enqueue(
        'test.parent',
        { children: [{ name: 'example.echo' }] },
        { queue: 'a' },
      );
      const child = await waitFor('the child', async () => {
        const { rows } = await s.runtime.db.pool.query<{ queue: string; status: string }>(
          'SELECT queue, status FROM taskq.tasks WHERE parent_id = $1',
          [parent.id],
        );
        return rows[0]?.status === 'completed' ? rows[0] : null;
      });
      return child.queue;
    };
    assert.equal(await childQueue(), 'a');

    await fs.writeFile(
      s.configFile,
      JSON.stringify({ ...config, handlers: TEST_HANDLERS, associations: { 'example.echo': 'b' } }),
    );
    supervisor.process.kill('SIGHUP');
    await waitFor('the reload', () => supervisor.output().includes('configuration reloaded'));
    assert.equal(await childQueue(), 'b');
  });

  test('a worker past --max-tasks is drained and replaced, and no task is lost', async () => {
    const s = await setup(ONE_QUEUE);
    const supervisor = await supervise(s, ['--workers=2', '--max-tasks=5']);
    const tasks = await s.client.enqueueMany(
      Array.from({ length: 40 }, () => ({ name: 'example.sleep', parameters: { ms: 20 } })),
    );
    await waitFor(
      'every task to complete',
      async () => {
        const { rows } = await s.runtime.db.pool.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM taskq.tasks WHERE status = 'completed'`,
        );
        return rows[0]!.n === tasks.length;
      },
      { timeoutMs: 60_000 },
    );
    await waitFor(
      'the recycles to show',
      async () => (await supervisor.health()).restarts.recycle >= 2,
    );
    assert.equal((await supervisor.health()).restarts.crash, 0);
  });

  test('a worker past --max-memory-mb is recycled, one at a time', async () => {
    const s = await setup(ONE_QUEUE);
    const supervisor = await supervise(s, ['--workers=2', '--max-memory-mb=16']);
    let mostDown = 0;
    await waitFor(
      'three recycles',
      async () => {
        const health = await supervisor.health();
        mostDown = Math.max(
          mostDown,
          health.workers.filter((worker) => worker.state !== 'running').length,
        );
        return health.restarts.recycle >= 3;
      },
      { timeoutMs: 60_000, intervalMs: 20 },
    );
    assert.ok(mostDown <= 1, `at most one worker was down at a time (saw ${mostDown})`);
    const { id } = await s.client.enqueue('example.echo', {});
    await waitFor('tasks to still run', async () => (await status(s, id)) === 'completed');
  });

  test('a second supervisor on the same state directory is refused with exit 2, naming the pid', async () => {
    const s = await setup(ONE_QUEUE);
    const first = await supervise(s, ['--workers=1']);
    const pid = Number((await fs.readFile(path.join(s.home, 'supervisor.pid'), 'utf8')).trim());
    assert.equal(pid, first.process.pid);

    const { spawn } = await import('node:child_process');
    const { SUPERVISOR } = await import('../support/paths.js');
    const second = spawn(process.execPath, [SUPERVISOR, '--workers=1', '--http-port=0'], {
      env: { ...process.env, ...s.env },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    second.stderr!.on('data', (chunk) => (stderr += chunk));
    const result = await exited(second);
    assert.equal(result.code, 2);
    assert.match(stderr, new RegExp(`already running with pid ${pid}`));

    await first.stop();
    await assert.rejects(
      fs.access(path.join(s.home, 'supervisor.pid')),
      'the pid file is removed on exit',
    );
  });
});
