import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';

import type { MemoryBroker } from '../../src/brokers/memory.js';
import { TaskqClient } from '../../src/client.js';
import { TaskqError } from '../../src/errors.js';
import type { Runtime } from '../../src/runtime.js';
import { HandlerRegistry } from '../../src/tasks/handlers.js';
import type { TaskMessage } from '../../src/tasks/message.js';
import { MAX_PARAMETER_DEPTH } from '../../src/tasks/parameters.js';
import { Worker } from '../../src/worker/worker.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { handlers } from '../support/handlers.js';
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
    ],
    worker: { heartbeatSeconds: 1, idlePollMaxSeconds: 0.1 },
  });
  runtime = await testRuntime(config, { handlers: new HandlerRegistry(handlers) });
  client = new TaskqClient(runtime, 'test');
});

after(async () => {
  await runtime?.close();
  await database?.drop();
});

const taskCount = async () =>
  Number((await runtime.db.pool.query('SELECT count(*) AS n FROM taskq.tasks')).rows[0].n);

/** The refusal of an enqueue: a TaskqError with this code and a message matching `message`. */
async function refused(enqueue: Promise<unknown>, code: string, message: RegExp): Promise<void> {
  await assert.rejects(enqueue, (error: unknown) => {
    assert.ok(error instanceof TaskqError, `a TaskqError, not ${String(error)}`);
    assert.equal(error.code, code);
    assert.match(error.message, message);
    return true;
  });
}

const status = async (id: string) => (await runtime.queries.get(id)).status;

/** Runs a worker until `done`, failing if it stops on its own (a crash) before that. */
async function runUntil(id: string, done: () => Promise<boolean>): Promise<void> {
  const worker = new Worker(runtime, { id });
  let ended = false;
  const running = worker.run().finally(() => (ended = true));
  await waitFor(`worker ${id} to get there`, async () => {
    assert.equal(ended, false, 'the worker stopped on its own');
    return done();
  });
  await worker.stop();
  await running;
}

describe('enqueue refuses parameters that would not reach the handler as given', () => {
  const cycle: Record<string, unknown> = { name: 'loop' };
  cycle.self = { back: cycle };
  let deep: unknown = 'bottom';
  for (let level = 0; level < MAX_PARAMETER_DEPTH + 1; level += 1) deep = { down: deep };

  const cases: [what: string, parameters: unknown, message: RegExp][] = [
    ['a function', { callback: () => 1 }, /parameters\.callback is a function/],
    ['a BigInt', { amount: 10n ** 30n }, /parameters\.amount is a BigInt.*pass it as a string/],
    ['a symbol', [Symbol('x')], /parameters\[0\] is a symbol/],
    ['a cycle', cycle, /parameters\.self\.back refers back to itself/],
    ['NaN', { ratio: Number.NaN }, /parameters\.ratio is NaN/],
    ['a Map', { lookup: new Map([[1, 2]]) }, /parameters\.lookup is a Map/],
    ['a NUL character', { 'odd key': 'a\u0000b' }, /parameters\["odd key"\] holds a NUL/],
    ['nesting too deep', deep, new RegExp(`nests deeper than ${MAX_PARAMETER_DEPTH} levels`)],
  ];
  for (const [what, parameters, message] of cases) {
    test(`${what} is refused with PARAMETERS_INVALID naming the place, and nothing is written`, async () => {
      const before = await taskCount();

      await refused(client.enqueue('example.echo', parameters), 'PARAMETERS_INVALID', message);

      assert.equal(await taskCount(), before);
      assert.deepEqual(await runtime.brokers.get('default').counts(), { waiting: 0, inFlight: 0 });
    });
  }

  test('parameters nested exactly to the limit are taken, and come back intact', async () => {
    let nested: unknown = 'bottom';
    for (let level = 1; level < MAX_PARAMETER_DEPTH; level += 1) nested = [nested];

    const { id } = await client.enqueue('example.noop', nested, { queue: 'mem' });

    const { rows } = await runtime.db.pool.query(
      'SELECT parameters FROM taskq.tasks WHERE id = $1',
      [id],
    );
    assert.deepEqual(rows[0].parameters, nested);
    await runUntil('w-deep', async () => (await status(id)) === 'completed');
  });

  test('a label holding a NUL character is refused with LABEL_INVALID', async () => {
    await refused(
      client.enqueue('example.echo', {}, { label: 'a\u0000b' }),
      'LABEL_INVALID',
      /label of task "example\.echo" holds a NUL character/,
    );
  });

  test('parameters past the queue broker size limit are refused naming the size and the limit', async () => {
    const limit = runtime.brokers.get('mem').maxMessageBytes;
    const before = await taskCount();

    await refused(
      client.enqueue('example.echo', { text: 'x'.repeat(limit) }, { queue: 'mem' }),
      'MESSAGE_TOO_LARGE',
      new RegExp(`is \\d+ bytes as a message; queue "mem" \\(memory\\) takes at most ${limit}`),
    );

    assert.equal(await taskCount(), before);
  });
});

/** The state and output of a pg-boss job, as the broker left it. */
async function jobOf(id: string): Promise<{ state: string; retry_count: number; output: unknown }> {
  const { rows } = await runtime.db.pool.query(
    'SELECT state, retry_count, output FROM pgboss.job WHERE id = $1',
    [id],
  );
  return rows[0];
}

/** Puts a job into the default queue by hand, with `data` as its jsonb (text) or NULL. */
async function insertJob(data: string | null): Promise<string> {
  const id = randomUUID();
  await runtime.db.pool.query(
    `INSERT INTO pgboss.job (id, name, data) VALUES ($1, 'default', $2)`,
    [id, data],
  );
  return id;
}

/** A well-formed message of a task the task log does not know, with `change` applied. */
function message(change: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    v: 1,
    id: randomUUID(),
    name: 'example.echo',
    queue: 'default',
    parameters: { text: 'raw' },
    label: 'raw',
    owner: 'test',
    parentId: null,
    createdAt: new Date().toISOString(),
    ...change,
  };
}

const MALFORMED: [what: string, data: () => string | null, reason: RegExp][] = [
  ['a NULL body', () => null, /not a JSON object/],
  // A string is taken for the text of a message, as SQS carries it.
  ['a JSON string', () => JSON.stringify('hello'), /not valid JSON/],
  ['a JSON list', () => JSON.stringify([1, 2, 3]), /not a JSON object/],
  ['a number', () => '42', /not a JSON object/],
  [
    'an unknown version',
    () => JSON.stringify(message({ v: 99 })),
    /has version 99; .* reads version 1/,
  ],
  ['no version', () => JSON.stringify(message({ v: undefined })), /has version nothing/],
  ['no task id', () => JSON.stringify(message({ id: 'not-a-uuid' })), /no valid task id/],
  ['no name', () => JSON.stringify(message({ name: undefined })), /field "name" is missing/],
  ['a queue of the wrong type', () => JSON.stringify(message({ queue: 7 })), /field "queue"/],
  ['a label that is an object', () => JSON.stringify(message({ label: {} })), /field "label"/],
  ['a parent that is no id', () => JSON.stringify(message({ parentId: 'x' })), /"parentId"/],
  [
    'a creation time that is no time',
    () => JSON.stringify(message({ createdAt: 'yesterday' })),
    /"createdAt" is not an ISO 8601 time/,
  ],
];

describe('malformed messages in a postgres queue', () => {
  test('each is dead-lettered once with its reason; the worker goes on to run good tasks', async () => {
    const jobs = await Promise.all(
      MALFORMED.map(async ([what, data, reason]) => ({
        what,
        reason,
        id: await insertJob(data()),
      })),
    );
    const { id: good } = await client.enqueue('example.echo', { text: 'after the garbage' });

    await runUntil('w-garbage', async () => {
      const states = await Promise.all(jobs.map((job) => jobOf(job.id)));
      return (await status(good)) === 'completed' && states.every((job) => job.state === 'failed');
    });

    for (const job of jobs) {
      const { retry_count, output } = await jobOf(job.id);
      assert.equal(retry_count, 0, `${job.what}: delivered once, not retried`);
      assert.match((output as { reason: string }).reason, /^The message could not be read: /);
      assert.match((output as { reason: string }).reason, job.reason, job.what);
    }
    assert.equal((await runtime.queries.get(good)).report?.message, 'echo: after the garbage');
    assert.deepEqual(await runtime.brokers.get('default').counts(), { waiting: 0, inFlight: 0 });
  });

  test('a task whose message was tampered to an unknown version is failed with that report', async () => {
    const { id } = await client.enqueue('example.echo', { text: 'tampered' });
    await runtime.db.pool.query(
      `UPDATE pgboss.job SET data = jsonb_set(data, '{v}', '2') WHERE id = $1`,
      [id],
    );

    await runUntil('w-version', async () => (await status(id)) === 'failed');

    const task = await runtime.queries.get(id);
    assert.equal(task.report?.type, 'error');
    assert.equal(
      task.report?.message,
      'The message could not be read: the message has version 2; this taskq reads version 1',
    );
    assert.equal(task.attempts, 0, 'the handler never ran');
    assert.equal((await jobOf(id)).state, 'failed');
  });
});

describe('malformed messages in a memory queue', () => {
  const DEEP = (() => {
    let value: unknown = 0;
    for (let level = 0; level < MAX_PARAMETER_DEPTH + 5; level += 1) value = [value];
    return value;
  })();
  const RAW: [what: string, body: unknown, reason: RegExp][] = [
    ['undefined', undefined, /not a JSON object/],
    ['text that is not JSON', '{"v": 1,', /not valid JSON/],
    ['a BigInt version', message({ v: 10n }), /has version 10; /],
    ['a NUL in the name', message({ name: 'a\u0000b' }), /field "name" holds a NUL/],
    [
      'a NUL in the parameters',
      message({ parameters: { a: ['\u0000'] } }),
      /parameters\.a\[0\] holds a NUL/,
    ],
    ['parameters nested too deep', message({ parameters: DEEP }), /nests deeper than/],
    ['a date object for createdAt', message({ createdAt: new Date() }), /"createdAt" is missing/],
  ];

  test('each is dead-lettered with its reason and never handed out again', async () => {
    const broker = runtime.brokers.get('mem') as MemoryBroker;
    const already = broker.failed().length;
    await broker.push(RAW.map(([, body]) => ({ message: body as TaskMessage, delaySeconds: 0 })));
    const { id: good } = await client.enqueue(
      'example.echo',
      { text: 'still fine' },
      { queue: 'mem' },
    );

    await runUntil('w-memory', async () => (await status(good)) === 'completed');

    const failed = broker.failed().slice(already);
    assert.equal(failed.length, RAW.length);
    RAW.forEach(([what, , reason], index) => assert.match(failed[index]!.reason, reason, what));
    assert.deepEqual(await broker.counts(), { waiting: 0, inFlight: 0 });
  });

  test('a message of an unknown task id with a bad field leaves no row in the task log', async () => {
    const broker = runtime.brokers.get('mem') as MemoryBroker;
    const body = message({ createdAt: 'not a time' });
    await broker.push([{ message: body as unknown as TaskMessage, delaySeconds: 0 }]);

    await runUntil('w-adopt', async () => (await broker.counts()).waiting === 0);

    await assert.rejects(runtime.queries.get(body.id as string), /No task with id/);
  });
});
