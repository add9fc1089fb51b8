import assert from 'node:assert/strict';
import { after, test } from 'node:test';

import { startSupervisor, type RunningSupervisor } from '../support/supervisor.js';
import { openWorkload, type Workload } from './workload.js';

const TASKS = 20_000;
const KILL_EVERY_MS = 200;
const KILLING_MS = 60_000;

let workload: Workload | undefined;
let supervisor: RunningSupervisor | undefined;

after(async () => {
  await supervisor?.stop('SIGKILL');
  await workload?.close();
});

test('workers killed with SIGKILL every 200 ms for a minute: every task completes, none is lost', async () => {
  workload = await openWorkload({
    queues: [{ name: 'default', broker: { type: 'postgres', leaseSeconds: 30 } }],
    worker: { heartbeatSeconds: 2, shutdownTimeoutSeconds: 5 },
    // The fault is the point: the slots must keep coming back however often they die.
    supervisor: { maxRestarts: 10_000, restartWindowSeconds: 60 },
  });
  const ids = await workload.enqueue(TASKS, { ms: 5 });
  supervisor = await startSupervisor(['--workers=4'], workload.env);

  let kills = 0;
  const killUntil = Date.now() + KILLING_MS;
  while (Date.now() < killUntil) {
    // Any worker process that exists, whether still starting or already at work.
    const live = (await supervisor.health()).workers.filter((worker) => worker.pid !== null);
    const victim = live[Math.floor(Math.random() * live.length)];
    if (victim) {
      try {
        process.kill(victim.pid!, 'SIGKILL');
        kills += 1;
      } catch {
        // It died on its own between the look and the kill.
      }
    }
    await new Promise((resolve) => setTimeout(resolve, KILL_EVERY_MS));
  }
  const faultEnded = await workload.now();
  const doneDuringKills = await workload.recorded(ids);
  console.log(`# ${kills} workers killed; ${doneDuringKills} tasks recorded meanwhile`);
  // The restart backoff (100 ms doubling to 30 s) keeps a slot that keeps dying down for longer
  // and longer: about ten kills per slot fit in the minute.
  assert.ok(kills >= 20, `workers were killed all minute long (${kills} kills)`);

  await workload.waitForCompleted(ids, 240_000);
  const result = await workload.verify('workers SIGKILLed every 200 ms for 60 s', ids, faultEnded);
  assert.equal(result.completed, TASKS);
  assert.ok((await supervisor.health()).restarts.crash! >= kills, 'each kill was a restart');
  assert.deepEqual(await supervisor.stop('SIGTERM'), { code: 0, signal: null });
});
