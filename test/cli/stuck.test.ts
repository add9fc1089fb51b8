import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { test, type TestContext } from 'node:test';

import { exited } from '../support/cli.js';
import { TEST_HANDLERS } from '../support/paths.js';
import { waitFor } from '../support/wait.js';
import { parseJson, sandbox, type Sandbox } from './sandbox.js';

const WAIT = { timeoutMs: 60_000, intervalMs: 50 };

interface SummaryJson {
  tasks: {
    id: string;
    status: string;
    worker: string | null;
    leaseLive: boolean;
    orphan: boolean;
  }[];
  totals: { tasks: number; orphans: number };
}

/** A sandbox whose workers renew leases every half second, with the test handlers. */
async function prepared(t: TestContext): Promise<Sandbox> {
  const box = await sandbox(t, 'test');
  const config = path.join(box.dir, 'taskq.json');
  writeFileSync(
    config,
    JSON.stringify({
      queues: [{ name: 'default', broker: 'postgres' }],
      worker: { heartbeatSeconds: 0.5 },
    }),
  );
  Object.assign(box.env, { TASKQ_CONFIG: config, TASKQ_HANDLERS: TEST_HANDLERS });
  const init = await box.run(['init']);
  assert.equal(init.code, 0, init.stderr);
  return box;
}

async function status(box: Sandbox, id: string): Promise<string | undefined> {
  const rows = await box.query<{ status: string }>('SELECT status FROM taskq.tasks WHERE id = $1', [
    id,
  ]);
  return rows[0]?.status;
}

/** Ten minutes without a change, as if the task had been stuck that long. */
async function backdate(box: Sandbox, id: string, leaseToo: boolean): Promise<void> {
  await box.query(
    `UPDATE taskq.tasks SET updated_at = now() - interval '600 seconds',
            lease_expires_at = CASE WHEN $2 THEN now() - interval '1 second' ELSE lease_expires_at END
     WHERE id = $1`,
    [id, leaseToo],
  );
}

async function runningTask(
  box: Sandbox,
): Promise<{ id: string; worker: ReturnType<Sandbox['start']> }> {
  const enqueued = await box.run(['enqueue', 'test.hang-first']);
  assert.equal(enqueued.code, 0, enqueued.stderr);
  const id = enqueued.stdout.trim();
  const worker = box.start(['worker', '--queue=default']);
  await waitFor('the task to run', async () => (await status(box, id)) === 'running', WAIT);
  return { id, worker };
}

test('a task whose worker was killed is found by stuck summary and completes after stuck restart, same id', async (t) => {
  const box = await prepared(t);
  const { id, worker } = await runningTask(box);
  worker.kill('SIGKILL');
  await exited(worker);
  await backdate(box, id, true);

  const summary = await box.run(['stuck', 'summary', '--queue=default', '--age=300', '--json']);
  assert.equal(summary.code, 0, summary.stderr);
  const listed = parseJson<SummaryJson>(summary).tasks.find((task) => task.id === id);
  assert.ok(listed, 'the summary lists the task');
  assert.equal(listed.status, 'running');
  assert.equal(listed.leaseLive, false);
  assert.equal(listed.orphan, false);
  assert.ok(listed.worker);

  const table = await box.run(['stuck', 'summary', '--queue=default']);
  assert.match(table.stdout, new RegExp(`^${id} +test.hang-first .* running +\\d+s +1 `, 'm'));
  assert.match(table.stdout, /^1 stuck, 0 orphan\(s\), 0 on a live worker$/m);

  const dry = await box.run(['stuck', 'restart', '--queue=default', '--dry-run', '--json']);
  assert.equal(dry.code, 0, dry.stderr);
  assert.deepEqual(
    parseJson<{ action: string }[]>(dry).map((o) => o.action),
    ['would-redeliver'],
  );
  assert.equal(await status(box, id), 'running', 'the dry run changed nothing');

  const restart = await box.run(['stuck', 'restart', '--queue=default', '--json']);
  assert.equal(restart.code, 0, restart.stderr);
  assert.deepEqual(parseJson<{ id: string; action: string }[]>(restart), [
    { id, name: 'test.hang-first', action: 'redelivered', aborted: false },
  ]);

  const again = await box.run(['worker', '--queue=default', '--limit=1']);
  assert.equal(again.code, 0, again.stderr);
  assert.equal(await status(box, id), 'completed');
  const task = await box.run(['log', '--get-task', id, '--json']);
  const events = parseJson<{ events: { kind: string }[] }>(task).events;
  assert.deepEqual(
    events.map((event) => event.kind),
    ['enqueued', 'started', 'restarted', 'started', 'finished'],
  );
});

test('a task on a live worker is left alone, and with --force is aborted there and run again', async (t) => {
  const box = await prepared(t);
  const { id, worker } = await runningTask(box);
  await backdate(box, id, false);

  const plain = await box.run(['stuck', 'restart', '--queue=default', '--json']);
  assert.equal(plain.code, 0, plain.stderr);
  assert.deepEqual(
    parseJson<{ action: string }[]>(plain).map((o) => o.action),
    ['skipped-live'],
  );
  assert.equal(await status(box, id), 'running');

  const forced = await box.run(['stuck', 'restart', '--queue=default', '--force', '--json']);
  assert.equal(forced.code, 0, forced.stderr);
  assert.deepEqual(parseJson<{ action: string; aborted: boolean }[]>(forced), [
    { id, name: 'test.hang-first', action: 'redelivered', aborted: true },
  ]);
  // The same worker sees the abort on its heartbeat, lets the message go and runs it again.
  await waitFor('the task to complete', async () => (await status(box, id)) === 'completed', WAIT);
  const rows = await box.query<{ attempts: number }>(
    'SELECT attempts FROM taskq.tasks WHERE id = $1',
    [id],
  );
  assert.equal(rows[0]!.attempts, 2);
  worker.kill('SIGTERM');
  await exited(worker);
});

test('stuck refuses an age under 60 seconds and an unknown queue with exit code 2', async (t) => {
  const box = await prepared(t);
  const young = await box.run(['stuck', 'summary', '--queue=default', '--age=30']);
  assert.equal(young.code, 2);
  assert.match(young.stderr, /--age must be a number of seconds >= 60 \(got 30\)/);
  const unknown = await box.run(['stuck', 'restart', '--queue=nope']);
  assert.equal(unknown.code, 2);
  assert.match(
    unknown.stderr,
    /--queue must name a configured queue \(got "nope"; configured: default\)/,
  );
});
