import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { TaskqClient } from '../../src/client.js';
import type { Runtime } from '../../src/runtime.js';
import { TaskOperations } from '../../src/tasklog/operations.js';
import { Worker } from '../../src/worker/worker.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { TEST_HANDLERS } from '../support/paths.js';
import { testConfig, testRuntime } from '../support/runtime.js';
import { waitFor } from '../support/wait.js';

let database: TestDatabase;
let runtime: Runtime;

before(async () => {
  database = await createTestDatabase();
  const config = await testConfig(database.url, {
    handlers: TEST_HANDLERS,
    queues: [
      { name: 'default', broker: { type: 'postgres' } },
      { name: 'other', broker: { type: 'postgres' } },
    ],
    retention: { finishedDays: 30, archivedDays: 7, batchSize: 50 },
  });
  runtime = await testRuntime(config);
});

after(async () => {
  await runtime?.close();
  await database?.drop();
});

const operations = () => new TaskOperations(runtime, 'test');

async function runUntilDone(ids: string[]): Promise<void> {
  const worker = new Worker(runtime, { id: 'w-ops', concurrency: 10 });
  const running = worker.run();
  try {
    await waitFor('the tasks to end', async () => {
      const statuses = await Promise.all(ids.map((id) => runtime.queries.get(id)));
      return statuses.every((task) => ['completed', 'failed'].includes(task.status));
    });
  } finally {
    await worker.stop();
    await running;
  }
}

test('each listing filter narrows the page, and sort and order hold', async () => {
  const alice = new TaskqClient(runtime, 'alice');
  const bob = new TaskqClient(runtime, 'bob');
  const a = await alice.enqueue('example.echo', { text: 'a' }, { label: 'Monthly REPORT one' });
  const b = await bob.enqueue('example.noop', {}, { label: 'cleanup', queue: 'other' });
  const c = await alice.enqueue('test.hang-first', {}, { label: '100%_done' });
  await runtime.db.pool.query(
    `UPDATE taskq.tasks SET created_at = now() - interval '2 days' WHERE id = $1`,
    [a.id],
  );
  const ids = async (filter: Record<string, unknown>) =>
    (await runtime.queries.list({ limit: 100, offset: 0, ...filter })).tasks.map((t) => t.id);

  assert.deepEqual(await ids({ owner: 'bob' }), [b.id]);
  assert.deepEqual(await ids({ name: ['example.echo'] }), [a.id]);
  assert.deepEqual(await ids({ queue: ['other'] }), [b.id]);
  assert.deepEqual(await ids({ category: ['unknown'], owner: 'alice' }), [c.id]);
  assert.deepEqual(await ids({ category: ['unrelated_resource'], owner: 'alice' }), [a.id]);
  assert.deepEqual(await ids({ labelContains: 'report' }), [a.id]);
  assert.deepEqual(await ids({ labelContains: '%_' }), [c.id], '% and _ match literally');
  assert.deepEqual(await ids({ status: ['enqueued'], owner: 'bob' }), [b.id]);
  assert.deepEqual(await ids({ status: ['completed'] }), []);
  const dayAgo = new Date(Date.now() - 86_400_000);
  assert.deepEqual(await ids({ createdBefore: dayAgo }), [a.id]);
  assert.ok(!(await ids({ createdAfter: dayAgo })).includes(a.id));
  assert.deepEqual(await ids({ sort: 'created', order: 'asc', owner: 'alice' }), [a.id, c.id]);
  assert.deepEqual(await ids({ sort: 'name', order: 'asc', owner: 'alice' }), [a.id, c.id]);
  assert.deepEqual(await ids({ sort: 'name', order: 'desc', owner: 'alice' }), [c.id, a.id]);

  const page = await runtime.queries.list({ limit: 1, offset: 1, owner: 'alice' });
  assert.deepEqual(
    page.tasks.map((t) => t.id),
    [a.id],
  );
  assert.equal(page.total, 2);
  assert.equal(page.totalExact, true);
  await assert.rejects(
    runtime.queries.list({ limit: 5000, offset: 0 }),
    /limit must be an integer from 1 to 1000 \(got 5000\)/,
  );
  await runtime.queries.cancel(c.id, { force: false, actor: 'test' });
  await runtime.queries.cancel(a.id, { force: false, actor: 'test' });
  await runtime.queries.cancel(b.id, { force: false, actor: 'test' });
});

test('stats, archive and cancel limited to an owner see only that owner’s tasks', async () => {
  const carol = new TaskqClient(runtime, 'carol');
  const task = await carol.enqueue('example.noop', {});
  assert.equal((await runtime.queries.stats('carol')).enqueued, 1);
  assert.equal((await runtime.queries.stats('dave')).enqueued, 0);
  await assert.rejects(
    runtime.queries.cancel(task.id, { force: false, actor: 'dave', owner: 'dave' }),
    { code: 'TASK_NOT_FOUND' },
  );
  assert.equal((await runtime.queries.get(task.id)).status, 'enqueued');
  const cancelled = await runtime.queries.cancel(task.id, {
    force: false,
    actor: 'carol',
    owner: 'carol',
  });
  assert.equal(cancelled.status, 'cancelled');
  await assert.rejects(
    runtime.queries.archive(task.id, { force: false, actor: 'dave', owner: 'dave' }),
    { code: 'TASK_NOT_FOUND' },
  );
  const archived = await runtime.queries.archive(task.id, {
    force: false,
    actor: 'c',
    owner: 'carol',
  });
  assert.equal(archived.status, 'archived');
  assert.ok(archived.archivedAt);
});

test('a rerun is a new task with the same name, parameters and label, linked both ways', async () => {
  const original = await new TaskqClient(runtime, 'erin').enqueue(
    'example.echo',
    { text: 'again' },
    { label: 'Echo again', queue: 'other' },
  );
  await runUntilDone([original.id]);
  const rerun = await operations().rerun(original.id);
  assert.notEqual(rerun.id, original.id);
  const task = await runtime.queries.get(rerun.id);
  assert.equal(task.name, 'example.echo');
  assert.equal(task.label, 'Echo again');
  assert.equal(task.owner, 'erin');
  assert.equal(task.queue, 'other');
  assert.equal(task.rerunOf, original.id);
  const { rows } = await runtime.db.pool.query<{ parameters: unknown }>(
    'SELECT parameters FROM taskq.tasks WHERE id = $1',
    [rerun.id],
  );
  assert.deepEqual(rows[0]!.parameters, { text: 'again' });
  const originalEvents = await runtime.queries.events(original.id);
  assert.deepEqual(
    originalEvents.filter((e) => e.kind === 'rerun').map((e) => e.detail),
    [{ rerunAs: rerun.id }],
  );
  const rerunEvents = await runtime.queries.events(rerun.id);
  assert.deepEqual(
    rerunEvents.filter((e) => e.kind === 'rerun-of').map((e) => e.detail),
    [{ rerunOf: original.id }],
  );
  await runUntilDone([rerun.id]);
});

test('a result file is downloaded, and archiving the task removes it', async () => {
  const { id } = await new TaskqClient(runtime).enqueue('test.hang-first', { ms: 1 });
  // The first attempt sleeps 1 ms, then writes the file.
  await runUntilDone([id]);
  const task = await runtime.queries.get(id);
  assert.equal(task.resultFile?.name, 'result.txt');
  assert.ok(task.resultFile.path.startsWith(runtime.config.results.directory));

  const out = await fs.mkdtemp(path.join(os.tmpdir(), 'taskq-download-'));
  const file = await operations().downloadResultFile(id, out);
  assert.equal(file.path, path.join(out, 'result.txt'));
  assert.equal(readFileSync(file.path, 'utf8'), 'attempt 1\n');

  await runtime.queries.archiveMany([id], { force: false, actor: 'test' });
  assert.equal(existsSync(task.resultFile.path), false, 'the file went with the archive');
  assert.equal((await runtime.queries.get(id)).resultFile, null);
  await assert.rejects(operations().downloadResultFile(id, out), /has no result file/);
  await fs.rm(out, { recursive: true, force: true });
});

test('retention deletes old finished and archived tasks with their events and files, and nothing newer', async () => {
  const ids = [];
  for (let n = 0; n < 4; n += 1)
    ids.push((await new TaskqClient(runtime).enqueue('test.hang-first', { ms: 1 })).id);
  await runUntilDone(ids);
  const files = await Promise.all(
    ids.map(async (id) => (await runtime.queries.get(id)).resultFile!),
  );
  await runtime.queries.archive(ids[2]!, { force: false, actor: 'test' });
  await runtime.queries.archive(ids[3]!, { force: false, actor: 'test' });
  // ids[0]: finished 31 days ago; ids[1]: 29 days ago; ids[2]: archived 8 days ago; ids[3]: 6.
  await runtime.db.pool.query(
    `UPDATE taskq.tasks SET finished_at = now() - (CASE id WHEN $1 THEN 31 ELSE 29 END) * interval '1 day',
            archived_at = CASE id WHEN $3 THEN now() - interval '8 days' WHEN $4 THEN now() - interval '6 days' END
     WHERE id = ANY(ARRAY[$1, $2, $3, $4]::uuid[])`,
    ids,
  );
  const deleted = await operations().applyRetention();
  assert.ok(deleted >= 2, `deleted ${deleted}`);
  const { rows } = await runtime.db.pool.query<{ id: string }>(
    'SELECT id FROM taskq.tasks WHERE id = ANY($1::uuid[]) ORDER BY id',
    [ids],
  );
  assert.deepEqual(rows.map((row) => row.id).sort(), [ids[1]!, ids[3]!].sort());
  const events = await runtime.db.pool.query('SELECT 1 FROM taskq.events WHERE task_id = ANY($1)', [
    [ids[0], ids[2]],
  ]);
  assert.equal(events.rowCount, 0, 'their events went too');
  assert.equal(existsSync(files[0]!.path), false, 'the old finished task’s file is gone');
  assert.equal(existsSync(files[1]!.path), true, 'the newer one’s file stays');
});

test('archiving 100,000 finished tasks goes in batches while a worker keeps running tasks', async () => {
  await runtime.db.pool.query(
    `INSERT INTO taskq.tasks (id, name, queue, parameters, owner, status, max_attempts, created_at,
                              updated_at, finished_at)
     SELECT gen_random_uuid(), 'bulk.done', 'default', '{}', 'bulk', 'completed', 1,
            now() - interval '1 day', now() - interval '1 day', now() - interval '1 day' + n * interval '1 ms'
     FROM generate_series(1, 100000) AS n`,
  );
  const client = new TaskqClient(runtime, 'live');
  const live = await client.enqueueMany(
    Array.from({ length: 300 }, () => ({ name: 'example.noop', parameters: {} })),
  );
  const worker = new Worker(runtime, { id: 'w-during-archive', concurrency: 10 });
  const running = worker.run();
  const batches: number[] = [];
  try {
    const archived = await runtime.queries.archiveAllFinished({
      owner: 'bulk',
      batchSize: 1000,
      actor: 'test',
      onBatch: async (count) => void batches.push(count),
    });
    assert.equal(archived, 100_000);
    await waitFor('the live tasks to complete', async () => {
      const { rows } = await runtime.db.pool.query<{ left: string }>(
        `SELECT count(*) AS left FROM taskq.tasks WHERE owner = 'live' AND status <> 'completed'`,
      );
      return rows[0]!.left === '0';
    });
  } finally {
    await worker.stop();
    await running;
  }
  assert.equal(batches.length, 100, 'one transaction per 1,000 tasks');
  assert.ok(batches.every((count) => count === 1000));
  const { rows } = await runtime.db.pool.query<{ status: string; count: string }>(
    `SELECT status, count(*) AS count FROM taskq.tasks WHERE owner = 'bulk' GROUP BY status`,
  );
  assert.deepEqual(rows, [{ status: 'archived', count: '100000' }]);
  const events = await runtime.db.pool.query<{ count: string }>(
    `SELECT count(*) AS count FROM taskq.events WHERE kind = 'archived' AND actor = 'test'
       AND from_status = 'completed'`,
  );
  assert.ok(Number(events.rows[0]!.count) >= 100_000);
  assert.equal(live.length, 300);
});
