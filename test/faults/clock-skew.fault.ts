import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { after, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';

import { runCli } from '../support/cli.js';
import { ROOT } from '../support/paths.js';
import { startSupervisor, type RunningSupervisor } from '../support/supervisor.js';
import { waitFor } from '../support/wait.js';
import { openWorkload, type Workload } from './workload.js';

const SKEW_MS = 90_000;
const TASKS = 12;
const TASK_MS = 25_000;
const SKEWED_CLOCK = path.join(ROOT, 'dist/test/faults/skewed-clock.js');

let workload: Workload | undefined;
const supervisors: RunningSupervisor[] = [];

after(async () => {
  for (const supervisor of supervisors) await supervisor.stop('SIGKILL');
  await workload?.close();
});

/** The environment of a process whose wall clock is `skewMs` off. */
function skewed(env: NodeJS.ProcessEnv, home: string, skewMs: number): NodeJS.ProcessEnv {
  return {
    ...env,
    TASKQ_HOME: home,
    TASKQ_FAULT_CLOCK_SKEW_MS: String(skewMs),
    NODE_OPTIONS: `--import=${SKEWED_CLOCK}`,
  };
}

function sample(text: string, name: string, labels: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && l.includes(labels));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

test('two supervisors whose clocks are 3 minutes apart raise no stuck-task alarm', async () => {
  workload = await openWorkload({
    queues: [{ name: 'default', broker: { type: 'postgres', leaseSeconds: 20 } }],
    worker: { heartbeatSeconds: 2, concurrency: 4 },
    metrics: { stuckAfterSeconds: 30 },
  });
  const homes = ['ahead', 'behind'].map((name) => path.join(workload!.home, name));
  for (const home of homes) await fs.mkdir(home);
  const ids = await workload.enqueue(TASKS, { ms: TASK_MS });
  supervisors.push(
    await startSupervisor(['--workers=2'], skewed(workload.env, homes[0]!, SKEW_MS)),
    await startSupervisor(['--workers=2'], skewed(workload.env, homes[1]!, -SKEW_MS)),
  );
  // The clocks are really off in those processes: their log lines carry their own time.
  const logged = supervisors.map((s) => Number(/"time":(\d+)/.exec(s.output())![1]));
  assert.ok(logged[0]! - logged[1]! > SKEW_MS, `clocks apart: ${logged[0]! - logged[1]!} ms`);

  await waitFor(
    'every task to run, on both hosts',
    async () => {
      const { rows } = await workload!.pool.query<{ hosts: number; running: number }>(
        `SELECT count(DISTINCT split_part(worker, '/', 1))::int AS hosts, count(*)::int AS running
         FROM taskq.tasks WHERE status = 'running'`,
      );
      return rows[0]!.running === TASKS && rows[0]!.hosts === 2;
    },
    { timeoutMs: 60_000, intervalMs: 250 },
  );
  await delay(5_000);

  for (const [index, supervisor] of supervisors.entries()) {
    const metrics = await (await fetch(`${supervisor.url}/metrics`)).text();
    const stuck = sample(metrics, 'taskq_stuck_tasks', 'queue="default"');
    const oldest = sample(metrics, 'taskq_oldest_task_age_seconds', 'state="running"');
    console.log(`# supervisor ${index}: stuck ${stuck}, oldest running ${oldest} s`);
    assert.equal(stuck, 0, `supervisor ${index} counts no stuck task`);
    assert.ok(oldest !== undefined && oldest < TASK_MS / 1000, `oldest running age ${oldest} s`);
    // The tasks waited a second or so, whatever the clock of the host that started them says.
    const waited = sample(metrics, 'taskq_task_wait_seconds_sum', 'queue="default"')!;
    const started = sample(metrics, 'taskq_task_wait_seconds_count', 'queue="default"')!;
    assert.ok(started > 0 && waited / started < 10, `mean wait ${waited / started} s`);
  }
  for (const home of homes) {
    const env = skewed(workload.env, home, home.endsWith('ahead') ? SKEW_MS : -SKEW_MS);
    const summary = await runCli(['stuck', 'summary', '--queue=default', '--age=60', '--json'], {
      env,
    });
    assert.equal(summary.code, 0, summary.stderr);
    assert.equal(JSON.parse(summary.stdout).totals.tasks, 0, `no stuck task seen from ${home}`);
  }

  await workload.waitForCompleted(ids, 120_000);
  const result = await workload.verify('two supervisors 3 min apart in clock', ids, null);
  assert.equal(result.completed, TASKS);
  for (const supervisor of supervisors)
    assert.deepEqual(await supervisor.stop('SIGTERM'), { code: 0, signal: null });
});
