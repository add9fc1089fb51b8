import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { TaskqClient } from '../../src/client.js';
import type { Runtime } from '../../src/runtime.js';
import { exited, startCli } from '../support/cli.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { EXAMPLE_HANDLERS } from '../support/paths.js';
import { testConfig, testRuntime } from '../support/runtime.js';
import { waitFor } from '../support/wait.js';

let database: TestDatabase;
let runtime: Runtime;
let client: TaskqClient;
let env: NodeJS.ProcessEnv;
let home: string;

const CONFIG = {
  handlers: EXAMPLE_HANDLERS,
  queues: [{ name: 'default', broker: { type: 'postgres', leaseSeconds: 2 } }],
  worker: { heartbeatSeconds: 0.5, concurrency: 4 },
};

before(async () => {
  database = await createTestDatabase();
  home = await fs.mkdtemp(path.join(os.tmpdir(), 'taskq-worker-process-'));
  const configFile = path.join(home, 'taskq.json');
  await fs.writeFile(configFile, JSON.stringify(CONFIG));
  env = { TASKQ_DATABASE_URL: database.url, TASKQ_CONFIG: configFile, TASKQ_HOME: home };
  runtime = await testRuntime(await testConfig(database.url, CONFIG));
  client = new TaskqClient(runtime, 'test');
});

after(async () => {
  await runtime.close();
  await database.drop();
  await fs.rm(home, { recursive: true, force: true });
});

const status = async (id: string) => (await runtime.queries.get(id)).status;

async function startWorker() {
  const worker = startCli(['worker'], { env });
  await waitFor('the worker to run', () => worker.output().includes('"msg":"worker running"'));
  return worker;
}

describe('taskq worker as a process, with real signals', () => {
  test('SIGUSR2 holds new tasks back; SIGCONT lets them run; SIGTERM then exits 0', async () => {
    const worker = await startWorker();
    worker.kill('SIGUSR2');
    await waitFor('the pause', () => worker.output().includes('"state":"paused"'));
    const { id } = await client.enqueue('example.echo', { text: 'held' });
    // An active worker is woken by the enqueue at once and polls every second at the least.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    assert.equal(await status(id), 'enqueued', 'a paused worker started no task');

    worker.kill('SIGCONT');
    await waitFor('the task to run after SIGCONT', async () => (await status(id)) === 'completed');
    worker.kill('SIGTERM');
    assert.deepEqual(await exited(worker), { code: 0, signal: null });
  });

  test('SIGTERM lets a running task finish, then the worker exits 0', async () => {
    const worker = await startWorker();
    const { id } = await client.enqueue('example.sleep', { ms: 1500 });
    await waitFor('the task to run', async () => (await status(id)) === 'running');
    worker.kill('SIGTERM');
    assert.deepEqual(await exited(worker), { code: 0, signal: null });
    assert.equal(await status(id), 'completed');
  });

  test('a second SIGTERM aborts the running task and releases it to its queue', async () => {
    const worker = await startWorker();
    const { id } = await client.enqueue('example.sleep', { ms: 60_000 });
    await waitFor('the task to run', async () => (await status(id)) === 'running');
    worker.kill('SIGTERM');
    await waitFor('the drain to begin', () => worker.output().includes('draining'));
    worker.kill('SIGTERM');
    assert.deepEqual(await exited(worker), { code: 0, signal: null });

    const task = await runtime.queries.get(id);
    assert.equal(task.status, 'enqueued');
    assert.equal(task.attempts, 1);
    const events = await runtime.queries.events(id);
    assert.equal(events.at(-1)?.kind, 'released');
    assert.equal((await runtime.brokers.get('default').counts()).waiting, 1);
    await runtime.queries.cancel(id, { force: false, actor: 'test' });
  });

  test('a worker killed with SIGKILL mid-task: a new worker completes the task on its second attempt', async () => {
    const first = await startWorker();
    const { id } = await client.enqueue('example.sleep', { ms: 1000 });
    await waitFor('the task to run', async () => (await status(id)) === 'running');
    first.kill('SIGKILL');
    await exited(first);

    const second = await startWorker();
    await waitFor('the task to complete', async () => (await status(id)) === 'completed', {
      timeoutMs: 30_000,
    });
    second.kill('SIGTERM');
    await exited(second);
    const task = await runtime.queries.get(id);
    assert.equal(task.attempts, 2);
    const starts = (await runtime.queries.events(id)).filter((event) => event.kind === 'started');
    assert.equal(starts.length, 2);
  });
});
