import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';

import fc from 'fast-check';
import pg from 'pg';

import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { TEST_HANDLERS } from '../support/paths.js';
import { startSupervisor, supervisorHome, type RunningSupervisor } from '../support/supervisor.js';
import { waitFor } from '../support/wait.js';

const ADMIN = 'admin-secret-token-fuzz-0001';
/** The supervisor's bodyLimit (supervisor/http-server.ts) is 1 MiB. */
const BODY_LIMIT_BYTES = 1024 * 1024;
const QUEUES = ['default', 'mem'];

type Json = Record<string, unknown>;

interface Operation {
  method: string;
  template: string;
  query: { name: string; schema: Json }[];
  body: Json | null;
}

let database: TestDatabase;
let home: string;
let supervisor: RunningSupervisor;
let pool: pg.Pool;
let operations: Operation[];
let snapshot: string;

before(async () => {
  database = await createTestDatabase();
  ({ home } = await supervisorHome({}));
  const configFile = `${home}/taskq.json`;
  await fs.writeFile(
    configFile,
    JSON.stringify({
      handlers: TEST_HANDLERS,
      queues: [
        { name: 'default', broker: 'postgres' },
        { name: 'mem', broker: 'memory' },
      ],
      http: { tokens: [{ token: ADMIN, owner: 'ops', role: 'admin' }] },
    }),
  );
  supervisor = await startSupervisor(['--workers=1'], {
    TASKQ_DATABASE_URL: database.url,
    TASKQ_CONFIG: configFile,
    TASKQ_HOME: home,
  });
  pool = new pg.Pool({ connectionString: database.url, max: 2 });
  await waitFor('the worker to run', async () =>
    (await supervisor.health()).workers.every((worker) => worker.state === 'running'),
  );
  // One real task, so that listings and counts have something to leak or to change.
  const enqueued = await send('POST', '/api/v1/tasks', {
    type: 'application/json',
    body: JSON.stringify({ name: 'example.noop', label: 'the only task' }),
  });
  assert.equal(enqueued.status, 201);
  await waitFor('the task to complete', async () => (await state()).includes('"completed"'));

  const document = (await (await fetch(`${supervisor.url}/api/v1/openapi.json`)).json()) as Json;
  operations = operationsOf(document);
  snapshot = await state();
});

after(async () => {
  await pool?.end();
  await supervisor?.stop();
  await database?.drop();
  await fs.rm(home, { recursive: true, force: true });
});

/** Everything a request could change: the task log, the broker's jobs, pauses and weights. */
async function state(): Promise<string> {
  const { rows: tasks } = await pool.query(
    'SELECT id, status, label, archived_at FROM taskq.tasks ORDER BY id',
  );
  const { rows: events } = await pool.query('SELECT count(*) AS n FROM taskq.events');
  const { rows: jobs } = await pool.query('SELECT count(*) AS n FROM pgboss.job');
  const health = await supervisor.health();
  return JSON.stringify({
    tasks,
    events: events[0].n,
    jobs: jobs[0].n,
    paused: health.paused,
    weights: health.queues.map((queue) => [queue.name, queue.weight.configured]),
  });
}

function operationsOf(document: Json): Operation[] {
  const result: Operation[] = [];
  for (const [template, methods] of Object.entries(document.paths as Json)) {
    for (const [method, raw] of Object.entries(methods as Json)) {
      const operation = raw as {
        parameters?: { in: string; name: string; schema: Json }[];
        requestBody?: { content: { 'application/json': { schema: Json } } };
      };
      result.push({
        method: method.toUpperCase(),
        template,
        query: (operation.parameters ?? []).filter((parameter) => parameter.in === 'query'),
        body: operation.requestBody?.content['application/json'].schema ?? null,
      });
    }
  }
  return result;
}

interface Answer {
  status: number;
  type: string | null;
  body: unknown;
}

async function send(
  method: string,
  path: string,
  options: { type?: string; body?: string | Buffer } = {},
): Promise<Answer> {
  if (options.body !== undefined && options.body.length > BODY_LIMIT_BYTES)
    return sendOversized(method, path, options.type ?? 'application/json', options.body);
  const headers: Record<string, string> = { authorization: `Bearer ${ADMIN}` };
  if (options.type) headers['content-type'] = options.type;
  const response = await fetch(`${supervisor.url}${path}`, {
    method,
    headers,
    body: options.body,
  });
  const type = response.headers.get('content-type');
  const text = await response.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // Left as text; the shape check below reports it.
  }
  return { status: response.status, type, body };
}

/**
 * Sends a body past the limit with node:http: the server answers 413 and closes the connection
 * before it has read the whole body, which fetch reports as a failure of its own.
 */
function sendOversized(
  method: string,
  path: string,
  type: string,
  body: string | Buffer,
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const request = http.request(`${supervisor.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${ADMIN}`, 'content-type': type },
    });
    request.on('response', (response) => {
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (text += chunk));
      response.on('end', () =>
        resolve({
          status: response.statusCode ?? 0,
          type: response.headers['content-type'] ?? null,
          body: JSON.parse(text) as unknown,
        }),
      );
    });
    // The connection closing under the unsent rest of the body is expected; only a request
    // that got no answer fails.
    request.on('error', (error) => setTimeout(() => reject(error), 1000).unref());
    request.end(body);
  });
}

/** A refusal: a 4xx status and the API's error shape (TAO's envelope on TAO's endpoints). */
function assertRefused(answer: Answer, what: string): void {
  const shown = `${what} -> ${answer.status} ${JSON.stringify(answer.body).slice(0, 300)}`;
  assert.ok(answer.status >= 400 && answer.status < 500, shown);
  assert.match(answer.type ?? '', /^application\/json/, shown);
  if (what.includes(' /taoTaskQueue/')) {
    const body = answer.body as { success: unknown; errorCode: unknown; errorMsg: unknown };
    assert.equal(body.success, false, shown);
    assert.equal(body.errorCode, answer.status, shown);
    assert.equal(typeof body.errorMsg, 'string', shown);
    return;
  }
  assertErrorShape(answer, shown);
}

function assertErrorShape(answer: Answer, shown: string): void {
  const { error } = answer.body as { error?: Json };
  assert.ok(error && typeof error === 'object', shown);
  assert.deepEqual(
    Object.keys(error).filter((key) => !['code', 'message', 'details'].includes(key)),
    [],
    shown,
  );
  assert.equal(typeof error.code, 'string', shown);
  assert.ok(typeof error.message === 'string' && error.message.length > 0, shown);
  if (error.details !== undefined) assert.equal(typeof error.details, 'object', shown);
}

/** Any answer but a server error; a refusal in the error shape. */
function assertNoServerError(answer: Answer, what: string): void {
  const shown = `${what} -> ${answer.status} ${JSON.stringify(answer.body).slice(0, 300)}`;
  assert.ok(answer.status < 500, shown);
  if (answer.status >= 400) assertRefused(answer, what);
}

const SQL_INJECTIONS = [
  "' OR '1'='1",
  "'; DROP TABLE taskq.tasks; --",
  '1; UPDATE taskq.tasks SET status = $$failed$$',
  '" OR ""="',
  '$1',
  '%',
  '\\',
];

/** Text no id, name or number of the API takes, the configured queue names left out. */
const hostileText = fc
  .oneof(
    fc.constantFrom(...SQL_INJECTIONS),
    fc.constantFrom('\u0000', 'a\u0000b', '../../etc/passwd', '..', '💥', '\uFFFF', ' '),
    fc.constantFrom('-1', '1e309', '99999999999999999999999', 'NaN', 'null', '[]', '{}'),
    fc.constant('x'.repeat(5000)),
    fc.string({ minLength: 1, maxLength: 40 }),
    fc.uuid(),
  )
  .filter((text) => !QUEUES.includes(text));

/** Fills the path's parameters with `value`. */
const pathOf = (template: string, value: string) =>
  template.replace(/\{[^}]+\}/g, encodeURIComponent(value));

describe('every route of the OpenAPI document', () => {
  test('path parameters that name nothing are refused with 4xx', async () => {
    const templated = operations.filter((operation) => operation.template.includes('{'));
    assert.ok(templated.length >= 8, `${templated.length} routes with path parameters`);
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...templated), hostileText, async (operation, value) => {
        const path = pathOf(operation.template, value);
        const body = operation.body ? '{}' : undefined;
        const answer = await send(operation.method, path, {
          type: body ? 'application/json' : undefined,
          body,
        });
        assertRefused(
          answer,
          `${operation.method} ${operation.template} with ${value.slice(0, 40)}`,
        );
      }),
      { seed: 1701, numRuns: 250 },
    );
  });

  test('query parameters of hostile text never cause a 5xx, and bad numbers are refused', async () => {
    const queried = operations.flatMap((operation) =>
      operation.query.map((parameter) => ({ operation, parameter })),
    );
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...queried), hostileText, async (target, value) => {
        const { operation, parameter } = target;
        const path = pathOf(operation.template, '00000000-0000-4000-8000-000000000000');
        const answer = await send(
          operation.method,
          `${path}?${parameter.name}=${encodeURIComponent(value)}`,
        );
        const what = `${operation.method} ${operation.template}?${parameter.name}=${value.slice(0, 40)}`;
        const numeric = ['integer', 'number'].includes(String(parameter.schema.type));
        if (numeric && !/^\d{1,6}$/.test(value)) assertRefused(answer, what);
        else assertNoServerError(answer, what);
      }),
      { seed: 1702, numRuns: 400 },
    );
  });

  test('huge limits and negative or huge offsets are refused with 4xx', async () => {
    const paged = operations.filter((operation) =>
      operation.query.some((parameter) => ['limit', 'offset'].includes(parameter.name)),
    );
    const huge = ['1e309', '9223372036854775807', `1${'0'.repeat(30)}`];
    const values: Record<string, string[]> = {
      limit: ['-1', '0', '1.5', '100000', ...huge],
      offset: ['-1', '1.5', 'ten', ...huge],
    };
    for (const operation of paged) {
      for (const parameter of operation.query.filter((p) => ['limit', 'offset'].includes(p.name))) {
        for (const value of values[parameter.name]!) {
          const path = pathOf(operation.template, '00000000-0000-4000-8000-000000000000');
          const extra = operation.template === '/api/v1/stuck' ? '&queue=default' : '';
          const answer = await send('GET', `${path}?${parameter.name}=${value}${extra}`);
          const what = `GET ${operation.template}?${parameter.name}=${value}`;
          if (operation.template.includes('{')) assertNoServerError(answer, what);
          else assertRefused(answer, what);
        }
      }
    }
  });
});

const writes = () => operations.filter((operation) => operation.method !== 'GET');

/** A path for a write that names no task and no queue, so that a request let through fails. */
const writePath = (operation: Operation) =>
  pathOf(
    operation.template,
    operation.template.includes('{name}')
      ? 'no-such-queue'
      : '00000000-0000-4000-8000-000000000000',
  );

describe('request bodies', () => {
  const BROKEN: [what: string, type: string, body: () => string | Buffer][] = [
    ['malformed JSON', 'application/json', () => '{"name": "example.noop",'],
    ['JSON with a trailing comma', 'application/json', () => '{"force": true,}'],
    ['a prototype key', 'application/json', () => '{"__proto__": {"force": true}}'],
    ['a constructor prototype', 'application/json', () => '{"constructor": {"prototype": {}}}'],
    ['an unsupported content type', 'application/xml', () => '<force>true</force>'],
    ['a form', 'application/x-www-form-urlencoded', () => 'force=true'],
    ['binary', 'application/octet-stream', () => Buffer.from([0, 1, 2, 255])],
    ['JSON past the body limit', 'application/json', () => oversized()],
    ['text past the body limit', 'text/plain', () => 'x'.repeat(BODY_LIMIT_BYTES + 1)],
  ];

  for (const [what, type, body] of BROKEN) {
    test(`${what} is refused with 4xx on every write`, async () => {
      for (const operation of writes()) {
        const answer = await send(operation.method, writePath(operation), { type, body: body() });
        assertRefused(answer, `${operation.method} ${operation.template} with ${what}`);
      }
    });
  }

  test('a value of the wrong kind in any field is refused with 4xx', async () => {
    const fields = writes().flatMap((operation) =>
      Object.entries((operation.body?.properties ?? {}) as Record<string, Json>)
        .filter(([, schema]) => schema.type !== undefined)
        .map(([name, schema]) => ({ operation, name, schema })),
    );
    assert.ok(fields.length >= 10, `${fields.length} fields`);
    await fc.assert(
      fc.asyncProperty(
        fc
          .constantFrom(...fields)
          .chain((field) => fc.tuple(fc.constant(field), wrongValueFor(field.schema))),
        async ([{ operation, name }, value]) => {
          // The rest of the body refers to nothing, so that a value let through still fails.
          const base = BASE_BODIES[operation.template] ?? {};
          const body = JSON.stringify({ ...base, [name]: value });
          const answer = await send(operation.method, writePath(operation), {
            type: 'application/json',
            body,
          });
          assertRefused(answer, `${operation.method} ${operation.template} ${body.slice(0, 80)}`);
        },
      ),
      { seed: 1703, numRuns: 300 },
    );
  });

  test('parameters of an enqueue that PostgreSQL cannot store are refused with 4xx', async () => {
    const bodies = [
      { name: 'example.noop', parameters: { text: 'a\u0000b' } },
      { name: 'example.noop', label: 'nul \u0000 label' },
      { name: 'example.noop', delaySeconds: 1e300 },
    ].map((body) => JSON.stringify(body));
    const deep = `{"name": "example.noop", "parameters": ${'['.repeat(5000)}${']'.repeat(5000)}}`;
    for (const body of [...bodies, deep]) {
      const answer = await send('POST', '/api/v1/tasks', { type: 'application/json', body });
      assertRefused(answer, `POST /api/v1/tasks ${body.slice(0, 60)}`);
    }
  });
});

/** A body whose every request fails: an unknown task, an unknown queue, no ids. */
const BASE_BODIES: Record<string, Json> = {
  '/api/v1/tasks': { name: 'no.such.task' },
  '/api/v1/stuck/restart': { queue: 'no-such-queue', dryRun: true },
  '/api/v1/tasks/archive': {},
};

/** A JSON object just past the body limit. */
function oversized(): string {
  return JSON.stringify({
    name: 'example.noop',
    parameters: { text: 'x'.repeat(BODY_LIMIT_BYTES) },
  });
}

/** Values that JSON Schema refuses for `schema`, even with Fastify's coercion of types. */
function wrongValueFor(schema: Json): fc.Arbitrary<unknown> {
  const types = ([] as unknown[]).concat(schema.type);
  const values: unknown[] = [{}, { nested: { deeper: [1] } }];
  // Fastify coerces a scalar into a list of one, and null into an empty value of the type.
  if (!types.includes('string') && !types.includes('array'))
    values.push('not a value', SQL_INJECTIONS[1], '\u0000');
  if (!types.includes('array')) values.push([]);
  if (types.includes('string')) {
    if (typeof schema.maxLength === 'number') values.push('x'.repeat(schema.maxLength + 1));
    if (typeof schema.minLength === 'number' && schema.minLength > 0) values.push('');
  }
  if (types.includes('number') || types.includes('integer')) {
    if (typeof schema.minimum === 'number') values.push(schema.minimum - 1, -1e308);
    if (typeof schema.maximum === 'number') values.push(schema.maximum + 1, 1e308);
    values.push('1e999x');
  }
  if (types.includes('array')) {
    values.push([]);
    if (typeof schema.maxItems === 'number')
      values.push(Array.from({ length: schema.maxItems + 1 }, (_, index) => `id-${index}`));
  }
  return fc.constantFrom(...values.filter((value) => !(types.includes('null') && value === null)));
}

describe('after all of the above', () => {
  test('the task log, the queues, pauses and weights are as they were', async () => {
    assert.equal(await state(), snapshot);
  });

  test('the supervisor logged no failed request', () => {
    assert.doesNotMatch(supervisor.output(), /API request failed/);
  });
});
