import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import { after, before, test } from 'node:test';

import { TaskqClient } from '../../src/client.js';
import type { Runtime } from '../../src/runtime.js';
import { HandlerRegistry } from '../../src/tasks/handlers.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { handlers } from '../support/handlers.js';
import { TEST_HANDLERS } from '../support/paths.js';
import { testConfig, testRuntime } from '../support/runtime.js';
import { startSupervisor, supervisorHome, type RunningSupervisor } from '../support/supervisor.js';
import { waitFor } from '../support/wait.js';

const CONFIG = {
  handlers: TEST_HANDLERS,
  queues: [{ name: 'default', broker: { type: 'postgres' } }],
  worker: { heartbeatSeconds: 0.5 },
};

let database: TestDatabase;
let runtime: Runtime;
let client: TaskqClient;
let home: string;
let supervisor: RunningSupervisor;

before(async () => {
  database = await createTestDatabase();
  const files = await supervisorHome(CONFIG);
  home = files.home;
  runtime = await testRuntime(await testConfig(database.url, CONFIG), {
    handlers: new HandlerRegistry(handlers),
  });
  client = new TaskqClient(runtime, 'test');
  supervisor = await startSupervisor(['--isolation=thread', '--workers=2'], {
    TASKQ_DATABASE_URL: database.url,
    TASKQ_CONFIG: files.configFile,
    TASKQ_HOME: home,
  });
});

after(async () => {
  await supervisor.stop('SIGKILL');
  await runtime.close();
  await database.drop();
  await fs.rm(home, { recursive: true, force: true });
});

const status = async (id: string) => (await runtime.queries.get(id)).status;

test('thread isolation: CPU-bound handlers run while /healthz, leases and SIGUSR2 stay responsive', async () => {
  const busy = await Promise.all([1, 2].map(() => client.enqueue('example.cpu', { ms: 4000 })));
  await waitFor('both CPU tasks to run', async () =>
    (await Promise.all(busy.map((task) => status(task.id)))).every((s) => s === 'running'),
  );

  const lease = async (id: string) =>
    (
      await runtime.db.pool.query<{ at: Date }>(
        'SELECT lease_expires_at AS at FROM taskq.tasks WHERE id = $1',
        [id],
      )
    ).rows[0]!.at.getTime();
  const firstLease = await lease(busy[0]!.id);

  for (let n = 0; n < 5; n += 1) {
    const started = Date.now();
    const health = await supervisor.health();
    assert.equal(health.isolation, 'thread');
    assert.ok(
      Date.now() - started < 250,
      `healthz answered in ${Date.now() - started} ms while both threads compute`,
    );
  }
  await waitFor(
    'the lease to be renewed during the computation',
    async () => (await lease(busy[0]!.id)) > firstLease,
  );

  supervisor.process.kill('SIGUSR2');
  await waitFor('the pause', async () => (await supervisor.health()).paused);
  const held = await client.enqueue('example.echo', { text: 'held' });
  await waitFor(
    'the CPU tasks to finish',
    async () =>
      (await Promise.all(busy.map((task) => status(task.id)))).every((s) => s === 'completed'),
    {
      timeoutMs: 30_000,
    },
  );
  await new Promise((resolve) => setTimeout(resolve, 1000));
  assert.equal(await status(held.id), 'enqueued', 'no task starts while the fleet is paused');

  supervisor.process.kill('SIGCONT');
  await waitFor('the held task to run', async () => (await status(held.id)) === 'completed');
  const report = (await runtime.queries.get(busy[0]!.id)).report;
  assert.match(report?.message ?? '', /^spun \d+ times$/);
});

test('thread isolation: progress and result files travel from the thread to the task log', async () => {
  const progress = await client.enqueue('example.progress', { steps: 3, stepMs: 100 });
  const exported = await client.enqueue('example.export', { rows: 5 });
  await waitFor(
    'both to complete',
    async () =>
      (await status(progress.id)) === 'completed' && (await status(exported.id)) === 'completed',
  );
  const task = await runtime.queries.get(progress.id);
  assert.equal(task.progress, 1);
  const file = (await runtime.queries.get(exported.id)).resultFile;
  assert.equal(file?.name, 'export.csv');
  assert.equal((await fs.readFile(file!.path, 'utf8')).split('\n')[0], 'n,square');
});

test('thread isolation: SIGTERM drains and exits 0', async () => {
  const { id } = await client.enqueue('example.sleep', { ms: 500 });
  await waitFor('the task to run', async () => (await status(id)) === 'running');
  assert.deepEqual(await supervisor.stop('SIGTERM'), { code: 0, signal: null });
  assert.equal(await status(id), 'completed');
});
