import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import pg from 'pg';

import { runCli } from '../support/cli.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { TEST_HANDLERS } from '../support/paths.js';
import { startSupervisor, type RunningSupervisor } from '../support/supervisor.js';
import { waitFor } from '../support/wait.js';

/**
 * A full run of a supervisor whose database URL carries a password and whose API has tokens,
 * with the most logging there is: neither the password nor any token, nor a wrong token a
 * caller sent, may appear in what the supervisor, its workers and the CLI print, or in the
 * files of the state directory. The secrets are random, so no other text can hold them.
 */

const secret = (prefix: string) => `${prefix}-${randomBytes(16).toString('hex')}`;

const ADMIN_TOKEN = secret('admin');
const USER_TOKEN = secret('user');
const WRONG_TOKEN = secret('wrong');
const PASSWORD_CORE = secret('pw');
/** With characters a URL must escape; the search is for its core, in any escaping. */
const PASSWORD = `${PASSWORD_CORE}/@:%`;
const ROLE = `taskq_secrets_${randomBytes(5).toString('hex')}`;

/** Every text that must not be written anywhere. */
const SECRETS = [ADMIN_TOKEN, USER_TOKEN, WRONG_TOKEN, PASSWORD_CORE];

let database: TestDatabase;
let configDir: string;
let stateDir: string;
let databaseUrl: string;
let env: NodeJS.ProcessEnv;
let supervisor: RunningSupervisor;
/** What the CLI printed during the run, stdout and stderr. */
let cliOutput = '';

function assertNoSecret(text: string, where: string): void {
  for (const value of SECRETS)
    assert.ok(!text.includes(value), `${where} holds the secret ${value.slice(0, 8)}...`);
}

/** The test database's URL, as the role with a password. */
function urlAsRole(base: string): string {
  const url = new URL(base);
  url.username = ROLE;
  url.password = encodeURIComponent(PASSWORD);
  return url.toString();
}

/** A login role with a password that owns the test database, so that it can migrate it. */
async function createRole(url: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const role = client.escapeIdentifier(ROLE);
    await client.query(`CREATE ROLE ${role} LOGIN PASSWORD ${client.escapeLiteral(PASSWORD)}`);
    const name = client.escapeIdentifier(new URL(url).pathname.slice(1));
    await client.query(`ALTER DATABASE ${name} OWNER TO ${role}`);
  } finally {
    await client.end();
  }
}

/** Gives the database back to the server's own user, then drops the role and what it made. */
async function dropRole(url: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const name = client.escapeIdentifier(new URL(url).pathname.slice(1));
    await client.query(`ALTER DATABASE ${name} OWNER TO CURRENT_USER`);
    await client.query(`DROP OWNED BY ${client.escapeIdentifier(ROLE)}`);
    await client.query(`DROP ROLE ${client.escapeIdentifier(ROLE)}`);
  } finally {
    await client.end();
  }
}

/** Who created the task log's table: the role, when taskq connected with the password. */
async function tasksTableOwner(): Promise<string | undefined> {
  const client = new pg.Client({ connectionString: database.url });
  await client.connect();
  try {
    const { rows } = await client.query<{ owner: string }>(
      `SELECT tableowner AS owner FROM pg_tables WHERE schemaname = 'taskq' AND tablename = 'tasks'`,
    );
    return rows[0]?.owner;
  } finally {
    await client.end();
  }
}

async function call(
  method: string,
  route: string,
  token: string,
  body?: unknown,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${supervisor.url}${route}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

async function enqueue(token: string, body: Record<string, unknown>): Promise<string> {
  const answer = await call('POST', '/api/v1/tasks', token, body);
  assert.equal(answer.status, 201, JSON.stringify(answer.body));
  return answer.body.id as string;
}

function untilFinished(id: string) {
  return waitFor(`task ${id} to finish`, async () => {
    const { body } = await call('GET', `/api/v1/tasks/${id}`, ADMIN_TOKEN);
    const status = (body.task as { status: string }).status;
    return ['completed', 'failed'].includes(status) ? status : null;
  });
}

async function cli(args: string[], url = databaseUrl) {
  const result = await runCli(args, {
    env: { ...env, TASKQ_DATABASE_URL: url, TASKQ_LOG_LEVEL: 'debug' },
  });
  cliOutput += result.stdout + result.stderr;
  return result;
}

/** A port on loopback where nothing listens. */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** The text of every file under `dir`. */
async function filesUnder(dir: string): Promise<{ file: string; text: string }[]> {
  const files: { file: string; text: string }[] = [];
  for (const name of await fs.readdir(dir, { recursive: true })) {
    const file = path.join(dir, name);
    if ((await fs.stat(file)).isFile())
      files.push({ file, text: await fs.readFile(file, 'latin1') });
  }
  return files;
}

before(async () => {
  database = await createTestDatabase();
  await createRole(database.url);
  databaseUrl = urlAsRole(database.url);

  // The configuration holds a token by design, so it lives apart from the state directory.
  configDir = await fs.mkdtemp(path.join(os.tmpdir(), 'taskq-secrets-config-'));
  stateDir = await fs.mkdtemp(path.join(os.tmpdir(), 'taskq-secrets-state-'));
  const configFile = path.join(configDir, 'taskq.json');
  await fs.writeFile(
    configFile,
    JSON.stringify({
      handlers: TEST_HANDLERS,
      queues: [
        { name: 'default', broker: 'postgres' },
        { name: 'spare', broker: 'postgres' },
      ],
      worker: { heartbeatSeconds: 1 },
      http: {
        tokens: [
          { tokenEnv: 'TASKQ_TEST_SECRET_TOKEN', owner: 'ops', role: 'admin' },
          { token: USER_TOKEN, owner: 'alice', role: 'user' },
        ],
      },
    }),
  );
  env = {
    TASKQ_DATABASE_URL: databaseUrl,
    TASKQ_CONFIG: configFile,
    TASKQ_HOME: stateDir,
    TASKQ_TEST_SECRET_TOKEN: ADMIN_TOKEN,
    TASKQ_LOG_LEVEL: 'debug',
  };
  supervisor = await startSupervisor(['--workers=2'], env);
});

after(async () => {
  await supervisor?.stop();
  if (database) {
    await dropRole(database.url);
    await database.drop();
  }
  await fs.rm(configDir, { recursive: true, force: true });
  await fs.rm(stateDir, { recursive: true, force: true });
});

describe('a supervisor with a database password and API tokens', () => {
  test('runs tasks enqueued through the API and the CLI as the role with the password', async () => {
    await waitFor('the workers to run', async () =>
      (await supervisor.health()).workers.every((worker) => worker.state === 'running'),
    );
    const me = await call('GET', '/api/v1/me', ADMIN_TOKEN);
    assert.deepEqual(me.body, { role: 'admin', owner: 'ops' });

    const ids = [
      await enqueue(ADMIN_TOKEN, { name: 'example.echo', parameters: { text: 'hello' } }),
      await enqueue(ADMIN_TOKEN, { name: 'example.export', parameters: { rows: 3 } }),
      await enqueue(ADMIN_TOKEN, { name: 'example.parent', parameters: { count: 2 } }),
      await enqueue(ADMIN_TOKEN, { name: 'test.flaky', parameters: { failures: 1 } }),
      await enqueue(ADMIN_TOKEN, { name: 'example.fail', queue: 'spare' }),
      await enqueue(USER_TOKEN, { name: 'example.echo', label: 'from alice' }),
    ];
    const fromCli = await cli(['enqueue', 'example.echo', '--params', '{"text":"cli"}']);
    assert.equal(fromCli.code, 0, fromCli.stderr);
    ids.push(fromCli.stdout.trim());

    const statuses = await Promise.all(ids.map(untilFinished));
    assert.deepEqual(statuses, [
      'completed',
      'completed',
      'completed',
      'completed',
      'failed',
      'completed',
      'completed',
    ]);
    const owner = await call('GET', `/api/v1/tasks/${ids[5]}`, ADMIN_TOKEN);
    assert.equal((owner.body.task as { owner: string }).owner, 'alice');
    assert.equal(await tasksTableOwner(), ROLE, 'the task log was made by the role');
  });

  test('refuses a wrong token, a token without its scheme and a user token on admin routes', async () => {
    const wrong = await call('GET', '/api/v1/tasks', WRONG_TOKEN);
    assert.equal(wrong.status, 401);
    assert.equal((wrong.body.error as { code: string }).code, 'UNAUTHORIZED');

    const bare = await fetch(`${supervisor.url}/api/v1/tasks`, {
      headers: { authorization: WRONG_TOKEN },
    });
    assert.equal(bare.status, 401);
    assertNoSecret(await bare.text(), 'the answer to a bare token');

    const pause = await call('POST', '/api/v1/fleet/pause', USER_TOKEN);
    assert.equal(pause.status, 403);
    assertNoSecret(JSON.stringify([wrong.body, pause.body]), 'the answers');
  });

  test('stops on SIGTERM having written no secret to its output or its state directory', async () => {
    const { code } = await supervisor.stop();
    assert.equal(code, 0, supervisor.output());
    const output = supervisor.output();
    // The run was logged at its most, by the supervisor and by each worker.
    const debugLines = output.split('\n').filter((line) => line.includes('"level":20'));
    assert.ok(debugLines.length >= 3, output);
    assert.ok((output.match(/"msg":"worker running"/g)?.length ?? 0) >= 2, output);
    assertNoSecret(output, "the supervisor's and workers' output");
    assertNoSecret(cliOutput, "the CLI's output");

    const files = await filesUnder(stateDir);
    assert.ok(files.length > 0, 'the state directory is empty');
    for (const { file, text } of files) assertNoSecret(text, file);
  });
});

describe('the CLI on a database it cannot reach', () => {
  test('names the server without the password, in the URL or in its query', async () => {
    const port = await closedPort();
    const unreachable = new URL(databaseUrl);
    unreachable.port = String(port);
    const inQuery = new URL(unreachable);
    inQuery.password = '';
    inQuery.searchParams.set('password', PASSWORD);

    const urls = { 'in the URL': unreachable.toString(), 'in the query': inQuery.toString() };
    for (const [where, url] of Object.entries(urls)) {
      const result = await cli(['enqueue', 'example.echo'], url);
      assert.equal(result.code, 1, result.stdout);
      assert.match(
        result.stderr,
        new RegExp(`Cannot connect to PostgreSQL at .*127\\.0\\.0\\.1:${port}`),
      );
      assert.match(result.stderr, /ECONNREFUSED/);
      assertNoSecret(result.stdout + result.stderr, `the CLI's output, a password ${where}`);
    }
  });
});
