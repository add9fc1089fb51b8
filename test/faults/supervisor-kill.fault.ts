import assert from 'node:assert/strict';
import { after, test } from 'node:test';

import { isAlive } from '../../src/database/embedded.js';
import { startSupervisor, type RunningSupervisor } from '../support/supervisor.js';
import { waitFor } from '../support/wait.js';
import { openWorkload, type Workload } from './workload.js';

const TASKS = 5_000;
const SHUTDOWN_TIMEOUT_SECONDS = 3;

let workload: Workload | undefined;
const supervisors: RunningSupervisor[] = [];

after(async () => {
  for (const supervisor of supervisors) await supervisor.stop('SIGKILL');
  await workload?.close();
});

test('the supervisor killed with SIGKILL: its workers leave, a new one takes over, every task completes', async () => {
  workload = await openWorkload({
    queues: [{ name: 'default', broker: { type: 'postgres', leaseSeconds: 10 } }],
    worker: { heartbeatSeconds: 2, shutdownTimeoutSeconds: SHUTDOWN_TIMEOUT_SECONDS },
  });
  const ids = await workload.enqueue(TASKS, { ms: 20 });
  const first = await startSupervisor(['--workers=2'], workload.env);
  supervisors.push(first);
  await waitFor('a tenth of the tasks to run', async () => (await workload!.recorded(ids)) >= 500, {
    timeoutMs: 120_000,
  });

  const pids = (await first.health()).workers.map((worker) => worker.pid!);
  assert.equal(pids.length, 2);
  await first.stop('SIGKILL');
  const killedAt = Date.now();
  // A worker sees its supervisor go, drains for its shutdown timeout and exits.
  await waitFor(
    'the workers of the killed supervisor to exit',
    () => pids.every((pid) => !isAlive(pid)),
    {
      timeoutMs: (SHUTDOWN_TIMEOUT_SECONDS + 10) * 1000,
    },
  );
  console.log(`# workers gone ${Date.now() - killedAt} ms after their supervisor`);

  // The pid file names a dead process: the new supervisor takes it over.
  const second = await startSupervisor(['--workers=2'], workload.env);
  supervisors.push(second);
  const restartedAt = await workload.now();
  await workload.waitForCompleted(ids, 240_000);
  const result = await workload.verify('supervisor SIGKILLed and restarted', ids, restartedAt);
  assert.equal(result.completed, TASKS);
  assert.deepEqual(await second.stop('SIGTERM'), { code: 0, signal: null });
});
