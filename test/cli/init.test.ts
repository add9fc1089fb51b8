import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';

import { parseJson, sandbox, type Sandbox } from './sandbox.js';

// Each test works on a copy of the shipped config/taskq.json, named with --config. Its handlers
// path is relative to config/, so TASKQ_HANDLERS (which wins over the file) names them.

function readJson(file: string): Record<string, unknown> {
  return JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
}

async function queuesOfPgBoss(box: Sandbox): Promise<string[]> {
  const rows = await box.query<{ name: string }>('SELECT name FROM pgboss.queue ORDER BY name');
  return rows.map((row) => row.name);
}

test('init creates the task log and every configured queue, one line each', async (t) => {
  const box = await sandbox(t, 'test');
  const file = box.copyShippedConfig();
  const before = readFileSync(file, 'utf8');

  const result = await box.run(['init', '--config', file]);

  assert.equal(result.code, 0, result.stderr);
  assert.equal(
    result.stdout,
    [
      'queue priority ready (postgres, weight 90)',
      'queue default ready (postgres, weight 30)',
      'queue background ready (postgres, weight 10)',
      'task log ready (schema taskq)',
      '',
    ].join('\n'),
  );
  assert.deepEqual(await queuesOfPgBoss(box), ['background', 'default', 'priority']);
  assert.deepEqual(await box.query('SELECT id FROM taskq.tasks'), []);
  assert.equal(readFileSync(file, 'utf8'), before, 'init without options leaves the file alone');
});

test('init --broker --queue --receive --strategy adds the queue, keeping the rest', async (t) => {
  const box = await sandbox(t, 'test');
  const file = box.copyShippedConfig();
  const shipped = readJson(file);

  const result = await box.run([
    'init',
    '--config',
    file,
    '--broker=rds',
    '--queue=reports',
    '--receive=5',
    '--strategy=strict-priority',
  ]);

  assert.equal(result.code, 0, result.stderr);
  assert.equal(
    result.stdout,
    'queue reports ready (postgres, weight 30)\ntask log ready (schema taskq)\n',
  );
  assert.deepEqual(readJson(file), {
    ...shipped,
    strategy: 'strict-priority',
    queues: [
      ...(shipped.queues as unknown[]),
      { name: 'reports', broker: { type: 'postgres', receive: 5 }, weight: 30 },
    ],
  });
  assert.deepEqual(await queuesOfPgBoss(box), ['reports'], 'only the named queue is created');
});

test('init --queue=EXISTING --receive=5 changes that queue’s broker only', async (t) => {
  const box = await sandbox(t, 'test');
  const file = box.copyShippedConfig();
  const shipped = readJson(file);

  const result = await box.run(['init', '--config', file, '--queue=background', '--receive=5']);

  assert.equal(result.code, 0, result.stderr);
  const queues = structuredClone(shipped.queues) as { broker: Record<string, unknown> }[];
  queues[2]!.broker.receive = 5;
  assert.deepEqual(readJson(file), { ...shipped, queues });
});

test('associate -t TASK -q NEW adds queue NEW of weight 30, and enqueue uses it', async (t) => {
  const box = await sandbox(t, 'test');
  const file = box.copyShippedConfig();
  const shipped = readJson(file);
  assert.equal((await box.run(['init', '--config', file])).code, 0);

  const result = await box.run([
    'associate',
    '-t',
    'example.noop',
    '-q',
    'newqueue',
    '--config',
    file,
  ]);

  assert.equal(result.code, 0, result.stderr);
  assert.equal(result.stdout, `example.noop -> newqueue (${file})\n`);
  assert.match(result.stderr, /^created queue newqueue \(weight 30\)$/m);
  assert.deepEqual(readJson(file), {
    ...shipped,
    queues: [
      ...(shipped.queues as unknown[]),
      { name: 'newqueue', broker: { type: 'postgres' }, weight: 30 },
    ],
    associations: { ...(shipped.associations as object), 'example.noop': 'newqueue' },
  });
  assert.ok((await queuesOfPgBoss(box)).includes('newqueue'), 'the queue is created in pg-boss');

  const enqueued = parseJson<{ queue: string }>(
    await box.run(['enqueue', 'example.noop', '--json', '--config', file]),
  );
  assert.equal(enqueued.queue, 'newqueue');
});

test('associate to an existing queue records the association and adds no queue', async (t) => {
  const box = await sandbox(t, 'test');
  const file = box.copyShippedConfig();
  const shipped = readJson(file);

  const result = await box.run([
    'associate',
    '-t',
    'example.echo',
    '-q',
    'priority',
    '--config',
    file,
  ]);

  assert.equal(result.code, 0, result.stderr);
  assert.doesNotMatch(result.stderr, /created queue/);
  assert.deepEqual(readJson(file), {
    ...shipped,
    associations: { ...(shipped.associations as object), 'example.echo': 'priority' },
  });
});

test('init --strategy without a configuration file writes the built-in one with the change', async (t) => {
  const box = await sandbox(t, 'test');

  const result = await box.run(['init', '--strategy=strict-priority']);

  assert.equal(result.code, 0, result.stderr);
  assert.deepEqual(readJson(path.join(box.dir, 'config', 'taskq.json')), {
    $schema: './taskq.schema.json',
    queues: [{ name: 'default', broker: { type: 'postgres' }, weight: 1 }],
    strategy: 'strict-priority',
  });
});

test('associate without a configuration file keeps the built-in default queue', async (t) => {
  const box = await sandbox(t, 'test');

  const result = await box.run(['associate', '-t', 'example.noop', '-q', 'reports']);

  assert.equal(result.code, 0, result.stderr);
  const written = readJson(path.join(box.dir, 'config', 'taskq.json'));
  assert.deepEqual(written.queues, [
    { name: 'default', broker: { type: 'postgres' }, weight: 1 },
    { name: 'reports', broker: { type: 'postgres' }, weight: 30 },
  ]);
  assert.deepEqual(written.associations, { 'example.noop': 'reports' });
});
