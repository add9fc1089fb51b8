import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';

import { handlers } from '../../workers/examples/index.js';
import { exited } from '../support/cli.js';
import { waitFor } from '../support/wait.js';
import { parseJson, sandbox, type Sandbox } from './sandbox.js';

const TASK_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const WAIT = { timeoutMs: 60_000, intervalMs: 50 };

interface TaskJson {
  id: string;
  status: string;
  label: string;
  attempts: number;
  report: { type: string; message: string } | null;
  events: { kind: string; toStatus: string | null }[];
}

/** A sandbox on a fresh test database where `taskq init` has run. */
async function initialised(t: TestContext): Promise<Sandbox> {
  const box = await sandbox(t, 'test');
  const init = await box.run(['init']);
  assert.equal(init.code, 0, init.stderr);
  return box;
}

async function enqueue(box: Sandbox, args: string[]): Promise<string> {
  const result = await box.run(['enqueue', ...args]);
  assert.equal(result.code, 0, result.stderr);
  const id = result.stdout.trim();
  assert.match(id, TASK_ID);
  return id;
}

async function getTask(box: Sandbox, id: string): Promise<TaskJson> {
  const result = await box.run(['log', '--get-task', id, '--json']);
  assert.equal(result.code, 0, result.stderr);
  return parseJson<TaskJson>(result);
}

async function taskStatus(box: Sandbox, id: string): Promise<string | undefined> {
  const rows = await box.query<{ status: string }>('SELECT status FROM taskq.tasks WHERE id = $1', [
    id,
  ]);
  return rows[0]?.status;
}

test('walkthrough: init, enqueue, worker --limit=1, log --get-task shows the report', async (t) => {
  const box = await sandbox(t, 'test');

  const init = await box.run(['init']);
  assert.equal(init.code, 0, init.stderr);
  assert.equal(
    init.stdout,
    'queue default ready (postgres, weight 1)\ntask log ready (schema taskq)\n',
  );

  const id = await enqueue(box, ['example.echo', '--params', '{"text":"hi"}', '--label', 'Say hi']);

  const worker = await box.run(['worker', '--queue=default', '--limit=1']);
  assert.equal(worker.code, 0, worker.stderr);

  const log = await box.run(['log', '--get-task', id]);
  assert.equal(log.code, 0, log.stderr);
  assert.match(log.stdout, new RegExp(`^id +${id}$`, 'm'));
  assert.match(log.stdout, /^label +Say hi$/m);
  assert.match(log.stdout, /^status +completed \(Completed\)$/m);
  assert.match(log.stdout, /^report\n {2}\[success\] echo: hi$/m);
});

test('the --json output of enqueue and of every log action parses', async (t) => {
  const box = await initialised(t);

  const enqueued = parseJson<{ id: string; queue: string }>(
    await box.run(['enqueue', 'example.noop', '--label', 'JSON', '--json']),
  );
  assert.match(enqueued.id, TASK_ID);
  assert.equal(enqueued.queue, 'default');

  const task = await getTask(box, enqueued.id);
  assert.equal(task.status, 'enqueued');
  assert.equal(task.label, 'JSON');
  assert.deepEqual(
    task.events.map((event) => event.kind),
    ['enqueued'],
  );

  const page = parseJson<{ tasks: { id: string }[]; total: number }>(
    await box.run(['log', '--available', '--json']),
  );
  assert.deepEqual(
    page.tasks.map((entry) => entry.id),
    [enqueued.id],
  );
  assert.equal(page.total, 1);

  const stats = parseJson<Record<string, number>>(await box.run(['log', '--stats', '--json']));
  assert.equal(stats.enqueued, 1);
  assert.equal(stats.completed, 0);
});

test('enqueue of an unknown task is refused, listing the known tasks, exit 1', async (t) => {
  const box = await sandbox(t, 'test');

  const result = await box.run(['enqueue', 'example.nope']);

  assert.equal(result.code, 1, result.stderr);
  const known = Object.keys(handlers).sort().join(', ');
  assert.equal(result.stderr, `Unknown task "example.nope". Known tasks: ${known}\n`);
  assert.equal(result.stdout, '');
});

test('log --get-task of an id that is not in the task log says so, exit 1', async (t) => {
  const box = await sandbox(t, 'test');
  const id = '0b6f8c52-5d1e-4c1a-9a47-2f3d9e8b7c10';

  const result = await box.run(['log', '--get-task', id]);

  assert.equal(result.code, 1, result.stderr);
  assert.equal(result.stderr, `No task with id "${id}" in the task log\n`);
});

test('log --archive of an enqueued task needs --force, and the refusal says so', async (t) => {
  const box = await initialised(t);
  const id = await enqueue(box, ['example.noop']);

  const refused = await box.run(['log', '--archive', id]);
  assert.equal(refused.code, 1, refused.stderr);
  assert.equal(
    refused.stderr,
    `Task ${id} is enqueued (in progress); archive it anyway with --force\n`,
  );
  assert.equal((await getTask(box, id)).status, 'enqueued');

  const forced = await box.run(['log', '--archive', id, '--force']);
  assert.equal(forced.code, 0, forced.stderr);
  assert.equal(forced.stdout, `${id} archived\n`);
  assert.equal((await getTask(box, id)).status, 'archived');
});

test('log --cancel of a running task needs --force; the cancellation then holds', async (t) => {
  const box = await initialised(t);
  const id = await enqueue(box, ['example.sleep', '--params', '{"ms": 600000}']);
  const worker = box.start(['worker', '--queue=default'], { TASKQ_LOG_LEVEL: 'info' });
  await waitFor(
    'the task to be running',
    async () => (await taskStatus(box, id)) === 'running',
    WAIT,
  );

  const refused = await box.run(['log', '--cancel', id]);
  assert.equal(refused.code, 1, refused.stderr);
  assert.equal(
    refused.stderr,
    `Task ${id} is running, past enqueued; cancel it anyway with --force\n`,
  );
  assert.equal(await taskStatus(box, id), 'running');

  const forced = await box.run(['log', '--cancel', id, '--force']);
  assert.equal(forced.code, 0, forced.stderr);
  assert.equal(forced.stdout, `${id} cancelled\n`);

  // The sleep goes on, as the worker does not abort a task cancelled while it runs: a second
  // SIGTERM makes it abort the task instead of waiting for the shutdown timeout.
  worker.kill('SIGTERM');
  await waitFor('the worker to drain', () => worker.output().includes('SIGTERM: draining'), WAIT);
  worker.kill('SIGTERM');
  assert.deepEqual(await exited(worker), { code: 0, signal: null }, worker.output());
  const task = await getTask(box, id);
  assert.equal(task.status, 'cancelled', 'the worker does not overwrite the cancellation');
  assert.equal(task.report, null);
});

test('a task cancelled before a worker picks it up stays cancelled and never runs', async (t) => {
  const box = await initialised(t);
  const id = await enqueue(box, ['example.echo', '--params', '{"text":"never"}']);
  const cancel = await box.run(['log', '--cancel', id]);
  assert.equal(cancel.code, 0, cancel.stderr);
  const waiting = await box.query<{ state: string }>('SELECT state FROM pgboss.job WHERE id = $1', [
    id,
  ]);
  assert.deepEqual(
    waiting.map((row) => row.state),
    ['created'],
    'the message waits in its queue until a worker takes it',
  );
  // A task that must run beside it, so that "never runs" cannot come from an idle worker.
  const later = await enqueue(box, ['example.echo', '--params', '{"text":"later"}']);

  const worker = box.start(['worker', '--queue=default']);
  await waitFor(
    'the later task to complete',
    async () => (await taskStatus(box, later)) === 'completed',
    WAIT,
  );
  await waitFor(
    'the worker to acknowledge the cancelled task’s message',
    async () => {
      // An acknowledged job is deleted: the task log keeps the outcome.
      const rows = await box.query<{ state: string }>(
        'SELECT state FROM pgboss.job WHERE id = $1',
        [id],
      );
      return rows.length === 0;
    },
    WAIT,
  );
  worker.kill('SIGTERM');
  assert.deepEqual(await exited(worker), { code: 0, signal: null }, worker.output());

  const task = await getTask(box, id);
  assert.equal(task.status, 'cancelled');
  assert.equal(task.attempts, 0);
  assert.equal(task.report, null);
  assert.deepEqual(
    task.events.map((event) => event.kind),
    ['enqueued', 'cancelled'],
  );
});
