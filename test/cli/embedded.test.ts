import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';

import { isAlive } from '../../src/database/embedded.js';
import { exited } from '../support/cli.js';
import { waitFor } from '../support/wait.js';
import { embeddedServerPid, parseJson, sandbox, type Sandbox } from './sandbox.js';

// No database url at all: every command uses the embedded server in TASKQ_HOME.

const WAIT = { timeoutMs: 60_000, intervalMs: 100 };

async function runOk(box: Sandbox, args: string[]): Promise<string> {
  const result = await box.run(args);
  assert.equal(result.code, 0, `taskq ${args.join(' ')}\n${result.stderr}`);
  return result.stdout;
}

test('with no database url, the walkthrough runs on an embedded server it stops', async (t) => {
  const box = await sandbox(t, 'embedded');
  assert.equal(box.env.TASKQ_DATABASE_URL, undefined);

  await runOk(box, ['init']);
  assert.ok(existsSync(path.join(box.stateDir, 'pgdata', 'PG_VERSION')), 'the server was created');
  const id = (
    await runOk(box, ['enqueue', 'example.echo', '--params', '{"text":"hi"}', '--label', 'Say hi'])
  ).trim();
  await runOk(box, ['worker', '--queue=default', '--limit=1']);
  const log = await runOk(box, ['log', '--get-task', id]);

  assert.match(log, /^status +completed \(Completed\)$/m);
  assert.match(log, /^report\n {2}\[success\] echo: hi$/m);
  assert.equal(embeddedServerPid(box.stateDir), null, 'no server runs after the last command');
});

test('two commands on one TASKQ_HOME share one server; the last to leave stops it', async (t) => {
  const box = await sandbox(t, 'embedded');
  await runOk(box, ['init']);

  const worker = box.start(['worker', '--queue=default'], { TASKQ_LOG_LEVEL: 'info' });
  await waitFor(
    'the worker to run',
    () => worker.output().includes('"msg":"worker running"'),
    WAIT,
  );
  const server = embeddedServerPid(box.stateDir);
  assert.ok(server !== null, 'the worker started the server');

  const id = (
    await runOk(box, ['enqueue', 'example.echo', '--params', '{"text":"shared"}'])
  ).trim();
  assert.equal(embeddedServerPid(box.stateDir), server, 'enqueue used the running server');
  await waitFor(
    'the worker to complete the task',
    async () => {
      const task = parseJson<{ status: string }>(
        await box.run(['log', '--get-task', id, '--json']),
      );
      return task.status === 'completed';
    },
    WAIT,
  );
  assert.equal(embeddedServerPid(box.stateDir), server, 'the server outlives the short commands');

  worker.kill('SIGTERM');
  assert.deepEqual(await exited(worker), { code: 0, signal: null }, worker.output());
  await waitFor('the server to stop', () => !isAlive(server), WAIT);
  assert.equal(embeddedServerPid(box.stateDir), null);
});
