import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { exited } from '../support/cli.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { ROOT, SUPERVISOR, TEST_HANDLERS } from '../support/paths.js';
import { startSupervisor, supervisorHome, type RunningSupervisor } from '../support/supervisor.js';
import { waitFor } from '../support/wait.js';
import { OpenApiCheck } from './openapi-check.js';

/** The OpenAPI document as the repository keeps it, for clients generated from it. */
const OPENAPI_FILE = path.join(ROOT, 'supervisor', 'openapi.json');
const ADMIN = 'admin-secret-token-0001';
const ALICE = 'alice-secret-token-0002';
const BOB = 'bob-secret-token-000003';

/** The configuration file, laid out by hand, so that a rewrite that changes its layout shows. */
const CONFIG_TEXT = `{
  "handlers": ${JSON.stringify(TEST_HANDLERS)},
  "queues": [
    { "name": "default", "broker": "postgres", "weight": 3 },
    { "name": "spare", "broker": "postgres" }
  ],
  "worker": { "heartbeatSeconds": 1 },
  "http": {
    "tokens": [
      { "tokenEnv": "TASKQ_TEST_ADMIN_TOKEN", "owner": "ops", "role": "admin" },
      { "token": "${ALICE}", "owner": "alice", "role": "user" },
      { "token": "${BOB}", "owner": "bob", "role": "user" }
    ]
  }
}
`;

let database: TestDatabase;
let home: string;
let configFile: string;
let supervisor: RunningSupervisor;
let env: NodeJS.ProcessEnv;
let openapi: OpenApiCheck;

interface Answer<T = Record<string, unknown>> {
  status: number;
  body: T;
  headers: Headers;
}

/** Calls the API and checks the answer against the OpenAPI document. */
async function call<T = Record<string, unknown>>(
  method: string,
  path: string,
  options: { token?: string | null; body?: unknown; raw?: string } = {},
): Promise<Answer<T>> {
  const token = options.token === undefined ? ADMIN : options.token;
  const headers: Record<string, string> = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (options.body !== undefined || options.raw !== undefined)
    headers['content-type'] = 'application/json';
  const response = await fetch(`${supervisor.url}${path}`, {
    method,
    headers,
    body: options.raw ?? (options.body === undefined ? undefined : JSON.stringify(options.body)),
  });
  const type = response.headers.get('content-type');
  const text = await response.text();
  const body = (type?.startsWith('application/json') ? JSON.parse(text) : text) as T;
  if (path.startsWith('/api/v1/') || path.startsWith('/taoTaskQueue/'))
    openapi.check(method, path, response.status, body, type);
  return { status: response.status, body, headers: response.headers };
}

async function enqueue(body: Record<string, unknown>, token: string = ADMIN): Promise<string> {
  const answer = await call<{ id: string }>('POST', '/api/v1/tasks', { body, token });
  assert.equal(answer.status, 201, JSON.stringify(answer.body));
  return answer.body.id;
}

async function taskOf(id: string) {
  const answer = await call<{ task: Record<string, unknown>; events: { kind: string }[] }>(
    'GET',
    `/api/v1/tasks/${id}`,
  );
  assert.equal(answer.status, 200);
  return answer.body;
}

function untilStatus(id: string, status: string) {
  return waitFor(`task ${id} to be ${status}`, async () => {
    const { task } = await taskOf(id);
    return task.status === status ? task : null;
  });
}

/**
 * Enqueues through node:http a task whose text parameter has `size` characters, the body's
 * length declared or sent in chunks. The server answers a body past its limit before reading
 * all of it and closes the connection, which fetch would report as a failure of its own.
 */
function postOversized(size: number, declared: boolean): Promise<Answer> {
  const body = JSON.stringify({ name: 'example.echo', parameters: { text: 'x'.repeat(size) } });
  return new Promise((resolve, reject) => {
    const request = http.request(`${supervisor.url}/api/v1/tasks`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${ADMIN}`,
        'content-type': 'application/json',
        ...(declared ? { 'content-length': Buffer.byteLength(body) } : {}),
      },
    });
    request.on('response', (response) => {
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (text += chunk));
      response.on('end', () => {
        const headers = new Headers(response.headers as Record<string, string>);
        resolve({ status: response.statusCode!, body: JSON.parse(text), headers });
      });
    });
    // The rest of the body meeting a closed connection is expected; no answer at all is not.
    request.on('error', (error) => setTimeout(() => reject(error), 1000).unref());
    request.end(body);
  });
}

function expectError(answer: Answer, status: number, code: string): Record<string, unknown> {
  assert.equal(answer.status, status, JSON.stringify(answer.body));
  const error = (answer.body as { error: { code: string; details: Record<string, unknown> } })
    .error;
  assert.equal(error.code, code);
  return error.details;
}

before(async () => {
  database = await createTestDatabase();
  ({ home, configFile } = await supervisorHome({}));
  await fs.writeFile(configFile, CONFIG_TEXT);
  env = {
    TASKQ_DATABASE_URL: database.url,
    TASKQ_CONFIG: configFile,
    TASKQ_HOME: home,
    TASKQ_TEST_ADMIN_TOKEN: ADMIN,
  };
  supervisor = await startSupervisor(['--workers=1'], env);
  await waitFor('the worker to run', async () =>
    (await supervisor.health()).workers.every((worker) => worker.state === 'running'),
  );
  const document = await fetch(`${supervisor.url}/api/v1/openapi.json`);
  openapi = new OpenApiCheck((await document.json()) as Record<string, unknown>);
});

after(async () => {
  await supervisor?.stop();
  await database?.drop();
  await fs.rm(home, { recursive: true, force: true });
});

describe('the OpenAPI document', () => {
  test('is OpenAPI 3.1 with a schema for every JSON answer and the bearer scheme', () => {
    const document = openapi.document as {
      openapi: string;
      components: { securitySchemes: Record<string, { scheme: string }> };
    };
    assert.equal(document.openapi, '3.1.0');
    assert.equal(document.components.securitySchemes.bearer!.scheme, 'bearer');
    assert.ok(openapi.all.length >= 20, `${openapi.all.length} operations`);
    assert.ok(openapi.all.includes('get /taoTaskQueue/TaskQueueRestApi/get'));
  });

  test(`is the one kept in the repository, ${path.relative(ROOT, OPENAPI_FILE)}`, async () => {
    if (process.env.TASKQ_WRITE_OPENAPI === '1') {
      // Written as the project's formatter writes it, so that `npm run lint` accepts it as is.
      const prettier = await import('prettier');
      const options = await prettier.resolveConfig(OPENAPI_FILE);
      const text = JSON.stringify(openapi.document);
      await fs.writeFile(
        OPENAPI_FILE,
        await prettier.format(text, { ...options, filepath: OPENAPI_FILE }),
      );
    }
    const kept = JSON.parse(await fs.readFile(OPENAPI_FILE, 'utf8')) as unknown;
    assert.deepEqual(
      openapi.document,
      kept,
      `the served document differs from ${OPENAPI_FILE}: after a change to the API, run ` +
        '`npm run build && TASKQ_WRITE_OPENAPI=1 node --test dist/test/http/api.test.js` ' +
        'and commit the file',
    );
  });
});

describe('authentication and roles', () => {
  test('a request without a token, or with a wrong one, is refused with 401', async () => {
    for (const [method, path] of [
      ['GET', '/api/v1/tasks'],
      ['GET', '/api/v1/fleet'],
      ['POST', '/api/v1/fleet/pause'],
      ['GET', '/taoTaskQueue/TaskQueueRestApi/getStatus?id=x'],
    ] as const) {
      const none = await call(method, path, { token: null });
      if (path.startsWith('/api')) expectError(none, 401, 'UNAUTHORIZED');
      else assert.equal(none.status, 401);
      const wrong = await call(method, path, { token: 'not-a-token-of-this-server' });
      assert.equal(wrong.status, 401);
    }
    assert.equal((await supervisor.health()).paused, false, 'nothing changed');
  });

  test('health, metrics, the page and the OpenAPI document need no token', async () => {
    for (const path of ['/healthz', '/metrics', '/', '/ui/app.js', '/api/v1/openapi.json'])
      assert.equal((await fetch(`${supervisor.url}${path}`)).status, 200, path);
  });

  test('/api/v1/me names the role and the owner of the token', async () => {
    assert.deepEqual((await call('GET', '/api/v1/me')).body, { role: 'admin', owner: 'ops' });
    assert.deepEqual((await call('GET', '/api/v1/me', { token: ALICE })).body, {
      role: 'user',
      owner: 'alice',
    });
  });

  test('a user token is refused admin actions with 403', async () => {
    expectError(await call('POST', '/api/v1/fleet/pause', { token: ALICE }), 403, 'FORBIDDEN');
    expectError(
      await call('PATCH', '/api/v1/queues/spare', { token: ALICE, body: { weight: 2 } }),
      403,
      'FORBIDDEN',
    );
    expectError(
      await call('POST', '/api/v1/stuck/restart', { token: ALICE, body: { queue: 'default' } }),
      403,
      'FORBIDDEN',
    );
    assert.equal((await supervisor.health()).paused, false);
  });

  test('a user sees and acts on its own tasks only; its owner is forced', async () => {
    const mine = await enqueue({ name: 'test.count', delaySeconds: 600 }, ALICE);
    const theirs = await enqueue({ name: 'test.count', delaySeconds: 600 }, BOB);
    const forced = await call<{ id: string }>('POST', '/api/v1/tasks', {
      token: ALICE,
      body: { name: 'test.count', owner: 'bob' },
    });
    expectError(forced, 403, 'FORBIDDEN');

    const list = await call<{ tasks: { owner: string }[] }>('GET', '/api/v1/tasks?owner=bob', {
      token: ALICE,
    });
    assert.ok(list.body.tasks.length >= 1);
    assert.ok(list.body.tasks.every((task) => task.owner === 'alice'));
    expectError(
      await call('GET', `/api/v1/tasks/${theirs}`, { token: ALICE }),
      404,
      'TASK_NOT_FOUND',
    );
    expectError(
      await call('POST', `/api/v1/tasks/${theirs}/cancel`, { token: ALICE, body: {} }),
      404,
      'TASK_NOT_FOUND',
    );
    const tao = await call('GET', `/taoTaskQueue/TaskQueueRestApi/get?id=${theirs}`, {
      token: ALICE,
    });
    assert.equal(tao.status, 404);
    const cancelled = await call<{ status: string }>('POST', `/api/v1/tasks/${mine}/cancel`, {
      token: ALICE,
      body: {},
    });
    assert.equal(cancelled.body.status, 'cancelled');
    assert.equal((await taskOf(theirs)).task.status, 'enqueued', "bob's task is untouched");
  });
});

describe('tasks', () => {
  test('enqueue, run to completion, then read the task, its status, events and listing', async () => {
    const id = await enqueue({ name: 'example.echo', parameters: { text: 'hi' }, label: 'Say hi' });
    await untilStatus(id, 'completed');
    const { task, events } = await taskOf(id);
    assert.equal(task.label, 'Say hi');
    assert.equal(task.owner, 'ops');
    assert.deepEqual(task.report, { type: 'success', message: 'echo: hi', children: [] });
    assert.deepEqual(
      events.map((event) => event.kind),
      ['enqueued', 'started', 'finished'],
    );
    const status = await call('GET', `/api/v1/tasks/${id}/status`);
    assert.equal(status.body.status, 'completed');

    const listed = await call<{ tasks: { id: string }[]; total: number; totalExact: boolean }>(
      'GET',
      '/api/v1/tasks?status=completed&task=example.echo&label=SAY&sort=updated&limit=5',
    );
    assert.deepEqual(
      listed.body.tasks.map((t) => t.id),
      [id],
    );
    assert.equal(listed.body.totalExact, true);
    const stats = await call<{ completed: number }>('GET', '/api/v1/stats');
    assert.ok(stats.body.completed >= 1);
  });

  test('children of a parent task are listed by parent', async () => {
    const parent = await enqueue({ name: 'example.parent', parameters: { count: 2 } });
    await untilStatus(parent, 'completed');
    const children = await call<{ tasks: { parentId: string; label: string }[]; total: number }>(
      'GET',
      `/api/v1/tasks/${parent}/children`,
    );
    assert.equal(children.body.total, 2);
    assert.ok(children.body.tasks.every((child) => child.parentId === parent));
  });

  test('cancel: refused past enqueued without force (409 with the hint), done with force', async () => {
    const id = await enqueue({ name: 'example.sleep', parameters: { ms: 30_000 } });
    await untilStatus(id, 'running');
    const refused = await call('POST', `/api/v1/tasks/${id}/cancel`, { body: {} });
    const details = expectError(refused, 409, 'TRANSITION_REFUSED');
    assert.equal(details.force, true);
    const archive = await call('POST', `/api/v1/tasks/${id}/archive`);
    expectError(archive, 409, 'TRANSITION_REFUSED');
    const forced = await call<{ status: string }>('POST', `/api/v1/tasks/${id}/cancel`, {
      body: { force: true },
    });
    assert.equal(forced.body.status, 'cancelled');
    const again = await call('POST', `/api/v1/tasks/${id}/cancel`, { body: { force: true } });
    expectError(again, 409, 'TRANSITION_REFUSED');
  });

  test('archive one, a list (each on its own), and all finished', async () => {
    const one = await enqueue({ name: 'example.echo' });
    const two = await enqueue({ name: 'example.echo' });
    const waiting = await enqueue({ name: 'test.count', delaySeconds: 600 });
    await untilStatus(one, 'completed');
    await untilStatus(two, 'completed');
    const archived = await call<{ status: string }>('POST', `/api/v1/tasks/${one}/archive`, {
      body: {},
    });
    assert.equal(archived.body.status, 'archived');

    const many = await call<{ archived: string[]; refused: { id: string }[] }>(
      'POST',
      '/api/v1/tasks/archive',
      { body: { ids: [two, waiting] } },
    );
    assert.deepEqual(many.body.archived, [two]);
    assert.deepEqual(
      many.body.refused.map((r) => r.id),
      [waiting],
    );

    const done = await enqueue({ name: 'example.echo' });
    await untilStatus(done, 'completed');
    const all = await call<{ count: number }>('POST', '/api/v1/tasks/archive', {
      body: { allFinished: true },
    });
    assert.ok(all.body.count >= 1);
    assert.equal((await taskOf(done)).task.status, 'archived');
    expectError(await call('POST', '/api/v1/tasks/archive', { body: {} }), 400, 'BAD_REQUEST');
  });

  test('rerun makes a new task linked to the old one', async () => {
    const id = await enqueue({ name: 'example.echo', parameters: { text: 'again' } });
    await untilStatus(id, 'completed');
    const rerun = await call<{ id: string; rerunOf: string }>('POST', `/api/v1/tasks/${id}/rerun`);
    assert.equal(rerun.status, 201);
    assert.notEqual(rerun.body.id, id);
    const copy = await untilStatus(rerun.body.id, 'completed');
    assert.equal(copy.rerunOf, id);
    assert.deepEqual((copy.report as { message: string }).message, 'echo: again');
  });

  test('the result file downloads as an attachment; a task without one answers 404', async () => {
    const id = await enqueue({ name: 'example.export', parameters: { rows: 3 } });
    await untilStatus(id, 'completed');
    const response = await fetch(`${supervisor.url}/api/v1/tasks/${id}/result`, {
      headers: { authorization: `Bearer ${ADMIN}` },
    });
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-disposition')!, /attachment; filename="export.csv"/);
    assert.equal(await response.text(), 'n,square\n0,0\n1,1\n2,4\n');
    openapi.check('GET', `/api/v1/tasks/${id}/result`, 200, null, null);
    const echo = await enqueue({ name: 'example.echo' });
    await untilStatus(echo, 'completed');
    expectError(await call('GET', `/api/v1/tasks/${echo}/result`), 404, 'RESULT_FILE_NOT_FOUND');
  });

  test('bad input is a 400 that names the field; an unknown id is a 404', async () => {
    const limit = expectError(await call('GET', '/api/v1/tasks?limit=abc'), 400, 'BAD_REQUEST');
    assert.equal(limit.field, 'limit');
    const status = expectError(await call('GET', '/api/v1/tasks?status=bogus'), 400, 'BAD_REQUEST');
    assert.equal(status.field, 'status');
    const name = expectError(await call('POST', '/api/v1/tasks', { body: {} }), 400, 'BAD_REQUEST');
    assert.equal(name.field, 'name');
    const unknown = await call('POST', '/api/v1/tasks', { body: { name: 'no.such.task' } });
    assert.equal(expectError(unknown, 400, 'UNKNOWN_TASK').field, 'name');
    const queue = await call('POST', '/api/v1/tasks', {
      body: { name: 'example.echo', queue: 'nope' },
    });
    assert.equal(expectError(queue, 400, 'BAD_REQUEST').field, 'queue');
    const json = await call('POST', '/api/v1/tasks', { raw: '{"name": ' });
    assert.equal(json.status, 400);
    const missing = '00000000-0000-4000-8000-000000000000';
    expectError(await call('GET', `/api/v1/tasks/${missing}`), 404, 'TASK_NOT_FOUND');
    expectError(await call('GET', '/api/v1/tasks/not-a-uuid/status'), 404, 'TASK_NOT_FOUND');
    expectError(await call('GET', '/api/v1/nothing-here'), 404, 'NOT_FOUND');
  });

  test('a body past the 1 MiB limit is a 413 in the error shape, its length declared or not', async () => {
    for (const declared of [true, false]) {
      const answer = await postOversized(1024 * 1024, declared);
      assert.equal(answer.status, 413, JSON.stringify(answer.body));
      assert.match(answer.headers.get('content-type') ?? '', /^application\/json/);
      const { error } = answer.body as { error: { code: unknown; message: unknown } };
      assert.equal(error.code, 'BODY_TOO_LARGE');
      assert.match(String(error.message), /too large: this server reads at most 1048576 bytes/);
    }
    // A body just below the limit is read, and refused for what it says instead.
    const below = await call('POST', '/api/v1/tasks', {
      body: { name: 'no.such.task', parameters: { text: 'x'.repeat(1000 * 1000) } },
    });
    expectError(below, 400, 'UNKNOWN_TASK');
  });
});

describe('fleet, queues and stuck tasks', () => {
  test('pause and resume the fleet as SIGUSR2 and SIGCONT do', async () => {
    const paused = await call<{ paused: boolean; workers: unknown[] }>(
      'POST',
      '/api/v1/fleet/pause',
    );
    assert.equal(paused.body.paused, true);
    await waitFor('the worker to pause', async () =>
      (await supervisor.health()).workers.every((worker) => worker.state === 'paused'),
    );
    const id = await enqueue({ name: 'example.echo' });
    const fleet = await call<{ workers: { state: string }[] }>('GET', '/api/v1/fleet');
    assert.equal(fleet.body.workers[0]!.state, 'paused');
    assert.equal((await taskOf(id)).task.status, 'enqueued');
    const resumed = await call<{ paused: boolean }>('POST', '/api/v1/fleet/resume');
    assert.equal(resumed.body.paused, false);
    await untilStatus(id, 'completed');
  });

  test("a queue's weight changes at once and in the file, which keeps its layout", async () => {
    const queues = await call<{ queues: { name: string }[] }>('GET', '/api/v1/queues');
    assert.deepEqual(
      queues.body.queues.map((q) => q.name),
      ['default', 'spare'],
    );
    const changed = await call<{ weight: { configured: number } }>(
      'PATCH',
      '/api/v1/queues/spare',
      {
        body: { weight: 7 },
      },
    );
    assert.equal(changed.body.weight.configured, 7);
    const text = await fs.readFile(configFile, 'utf8');
    assert.equal(
      text,
      CONFIG_TEXT.replace(
        '{ "name": "spare", "broker": "postgres" }',
        '{ "name": "spare", "broker": "postgres", "weight": 7 }',
      ),
    );
    const health = await supervisor.health();
    assert.equal(health.queues.find((q) => q.name === 'spare')!.weight.configured, 7);
    expectError(
      await call('PATCH', '/api/v1/queues/nope', { body: { weight: 1 } }),
      404,
      'QUEUE_NOT_FOUND',
    );
    const negative = await call('PATCH', '/api/v1/queues/spare', { body: { weight: -1 } });
    assert.equal(expectError(negative, 400, 'BAD_REQUEST').field, 'weight');
  });

  test('queues pause and resume one by one or all at once, kept in the database', async () => {
    const paused = await call<{ paused: boolean }>('POST', '/api/v1/queues/spare/pause');
    assert.equal(paused.body.paused, true);
    const list = await call<{ queues: { name: string; paused: boolean }[] }>(
      'GET',
      '/api/v1/queues',
    );
    assert.deepEqual(
      list.body.queues.map((q) => [q.name, q.paused]),
      [
        ['default', false],
        ['spare', true],
      ],
    );
    assert.equal(
      (await call<{ paused: boolean }>('POST', '/api/v1/queues/spare/resume')).body.paused,
      false,
    );
    const all = await call<{ allPaused: boolean }>('POST', '/api/v1/queues/pause');
    assert.equal(all.body.allPaused, true);
    const id = await enqueue({ name: 'example.echo', queue: 'default' });
    expectError(await call('POST', '/api/v1/queues/default/resume'), 409, 'TRANSITION_REFUSED');
    assert.equal((await taskOf(id)).task.status, 'enqueued');
    assert.equal(
      (await call<{ allPaused: boolean }>('POST', '/api/v1/queues/resume')).body.allPaused,
      false,
    );
    await untilStatus(id, 'completed');
    expectError(await call('POST', '/api/v1/queues/nope/pause'), 404, 'QUEUE_NOT_FOUND');
    expectError(
      await call('POST', '/api/v1/queues/spare/pause', { token: ALICE }),
      403,
      'FORBIDDEN',
    );
  });

  test('stuck summary and a dry-run restart take the CLI options', async () => {
    const summary = await call<{ totals: { tasks: number } }>(
      'GET',
      '/api/v1/stuck?queue=default&ageSeconds=60&status=running',
    );
    assert.equal(summary.status, 200);
    assert.equal(summary.body.totals.tasks, 0);
    const missing = expectError(await call('GET', '/api/v1/stuck'), 400, 'BAD_REQUEST');
    assert.equal(missing.field, 'queue');
    const young = expectError(
      await call('GET', '/api/v1/stuck?queue=default&ageSeconds=5'),
      400,
      'BAD_REQUEST',
    );
    assert.equal(young.field, 'ageSeconds');
    const restart = await call<{ outcomes: unknown[] }>('POST', '/api/v1/stuck/restart', {
      body: { queue: 'default', dryRun: true },
    });
    assert.deepEqual(restart.body.outcomes, []);
  });
});

describe("TAO's TaskQueueRestApi", () => {
  test('get and getStatus answer in TAO shape, with 400 and 404 as TAO errors', async () => {
    const id = await enqueue({ name: 'example.echo', label: 'TAO task' });
    await untilStatus(id, 'completed');
    const got = await call<{ success: boolean; data: Record<string, unknown> }>(
      'GET',
      `/taoTaskQueue/TaskQueueRestApi/get?id=${id}`,
    );
    assert.equal(got.body.success, true);
    assert.equal(got.body.data.taskLabel, 'TAO task');
    assert.equal(got.body.data.status, 'completed');
    assert.equal(typeof got.body.data.createdAt, 'number');
    const status = await call('GET', `/taoTaskQueue/TaskQueueRestApi/getStatus?id=${id}`);
    assert.deepEqual(status.body, { success: true, data: 'completed' });
    const missing = await call('GET', '/taoTaskQueue/TaskQueueRestApi/getStatus');
    assert.equal(missing.status, 400);
    assert.equal((missing.body as { errorCode: number }).errorCode, 400);
    const unknown = await call('GET', '/taoTaskQueue/TaskQueueRestApi/get?id=nope');
    assert.deepEqual(
      [unknown.status, (unknown.body as { success: boolean }).success],
      [404, false],
    );
  });
});

describe('coverage and servers without tokens', () => {
  test('no token ever reaches the log', () => {
    for (const secret of [ADMIN, ALICE, BOB]) assert.ok(!supervisor.output().includes(secret));
    assert.match(supervisor.output(), /queue weight changed through the API/);
  });

  test('every documented operation was called by the tests above', () => {
    const missed = openapi.all.filter((operation) => !openapi.seen.has(operation));
    assert.deepEqual(missed, []);
  });

  test('with no token on loopback, the API reads but refuses changes with 403', async () => {
    const other = await supervisorHome({
      handlers: TEST_HANDLERS,
      queues: [{ name: 'default', broker: 'postgres' }],
    });
    const reader = await startSupervisor(['--workers=1'], {
      ...env,
      TASKQ_CONFIG: other.configFile,
      TASKQ_HOME: other.home,
    });
    try {
      const list = await fetch(`${reader.url}/api/v1/tasks`);
      assert.equal(list.status, 200);
      const me = (await (await fetch(`${reader.url}/api/v1/me`)).json()) as { role: string };
      assert.equal(me.role, 'reader');
      const pause = await fetch(`${reader.url}/api/v1/fleet/pause`, { method: 'POST' });
      assert.equal(pause.status, 403);
      assert.match(
        ((await pause.json()) as { error: { message: string } }).error.message,
        /http\.tokens/,
      );
      assert.equal((await reader.health()).paused, false);
    } finally {
      await reader.stop();
      await fs.rm(other.home, { recursive: true, force: true });
    }
  });

  test('beyond loopback with no token, the supervisor refuses to start (exit 2)', async () => {
    const other = await supervisorHome({
      handlers: TEST_HANDLERS,
      queues: [{ name: 'default', broker: 'postgres' }],
      http: { host: '0.0.0.0', port: 0 },
    });
    const child = spawn(process.execPath, [SUPERVISOR, '--workers=1'], {
      env: { ...process.env, ...env, TASKQ_CONFIG: other.configFile, TASKQ_HOME: other.home },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stderr.on('data', (chunk) => (output += chunk));
    const { code } = await exited(child);
    await fs.rm(other.home, { recursive: true, force: true });
    assert.equal(code, 2);
    assert.match(output, /http\.tokens is empty while http\.host is 0\.0\.0\.0/);
    assert.doesNotMatch(output, /address/);
  });
});
