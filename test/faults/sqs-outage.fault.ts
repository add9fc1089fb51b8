import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';

import { startEmulator, type Emulator } from '../support/fauxqs.js';
import { startSupervisor, type RunningSupervisor } from '../support/supervisor.js';
import { waitFor } from '../support/wait.js';
import { assertOutageLogged, openWorkload, type Workload } from './workload.js';

const TASKS = 3_000;
const DOWN_MS = 10_000;

let emulator: Emulator | undefined;
let workload: Workload | undefined;
let supervisor: RunningSupervisor | undefined;

after(async () => {
  await supervisor?.stop('SIGKILL');
  await workload?.close();
  await emulator?.close();
});

test('the SQS emulator stopped for 10 s: workers back off, say so once, and every task completes', async () => {
  emulator = await startEmulator();
  workload = await openWorkload({
    queues: [
      {
        name: 'default',
        broker: emulator.brokerConfig({ visibilityTimeoutSeconds: 10, waitTimeSeconds: 1 }),
      },
    ],
    worker: { heartbeatSeconds: 2, shutdownTimeoutSeconds: 5 },
  });
  const ids = await workload.enqueue(TASKS, { ms: 10 });
  supervisor = await startSupervisor(['--workers=2'], workload.env);
  await waitFor('a sixth of the tasks to run', async () => (await workload!.recorded(ids)) >= 500, {
    timeoutMs: 120_000,
  });

  await emulator.stop();
  await delay(DOWN_MS);
  await emulator.restart();
  const upAt = await workload.now();

  await workload.waitForCompleted(ids, 240_000);
  const result = await workload.verify(`SQS emulator down ${DOWN_MS / 1000} s`, ids, upAt);
  assert.equal(result.completed, TASKS);

  assertOutageLogged(supervisor.output(), 2);
  assert.deepEqual(await supervisor.stop('SIGTERM'), { code: 0, signal: null });
});
