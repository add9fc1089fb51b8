import assert from 'node:assert/strict';
import { after, test } from 'node:test';

import { startSupervisor, type RunningSupervisor } from '../support/supervisor.js';
import { waitFor } from '../support/wait.js';
import { openWorkload, type Workload } from './workload.js';

const TASKS = 2_000;

let workload: Workload | undefined;
let supervisor: RunningSupervisor | undefined;

after(async () => {
  await supervisor?.stop('SIGKILL');
  await workload?.close();
});

interface Misbehaving {
  name: string;
  parameters: Record<string, unknown>;
  /** What the task's report must say once it has failed. */
  report: RegExp;
}

/**
 * Handlers that end their own process. The tasks that run beside them lose their attempt each
 * time, so they go once the others have ended: a task run beside them could otherwise use up
 * its allowance of lost attempts and fail for their fault.
 */
const KILLERS: Misbehaving[] = [
  { name: 'fault.exhaust-memory', parameters: {}, report: /worker was lost/ },
  { name: 'fault.exit', parameters: { code: 0 }, report: /worker was lost/ },
  { name: 'fault.exit', parameters: { code: 3 }, report: /worker was lost/ },
];

/** Handlers that misbehave within their process. */
const MISBEHAVING: Misbehaving[] = [
  { name: 'fault.hang', parameters: {}, report: /ran past its timeout of 1 s/ },
  { name: 'fault.hang', parameters: {}, report: /ran past its timeout of 1 s/ },
  { name: 'fault.throw', parameters: { kind: 'string' }, report: /^a plain string$/ },
  { name: 'fault.throw', parameters: { kind: 'number' }, report: /^Non-error value thrown: 42$/ },
  { name: 'fault.throw', parameters: { kind: 'null' }, report: /^Non-error value thrown: null$/ },
  {
    name: 'fault.throw',
    parameters: { kind: 'undefined' },
    report: /^Non-error value thrown: undefined$/,
  },
  {
    name: 'fault.throw',
    parameters: { kind: 'object' },
    report: /^Non-error value thrown: \{"reason":"an object"\}$/,
  },
  {
    name: 'fault.throw',
    parameters: { kind: 'symbol' },
    report: /^Non-error value thrown: Symbol\(a symbol\)$/,
  },
];

test('handlers that hang, exhaust memory, throw non-Errors or exit: each fails with a clear report, the rest of the work completes', async () => {
  workload = await openWorkload({
    queues: [{ name: 'default', broker: { type: 'postgres', leaseSeconds: 10 } }],
    worker: { heartbeatSeconds: 1, shutdownTimeoutSeconds: 3 },
    supervisor: { cancelGraceSeconds: 1, heartbeatTimeoutSeconds: 5 },
  });
  const ids = await workload.enqueue(TASKS, { ms: 50 });
  // A small heap, so that the hoarding handler runs its process out of memory in seconds.
  supervisor = await startSupervisor(['--workers=2'], {
    ...workload.env,
    NODE_OPTIONS: '--max-old-space-size=160',
  });
  await expectFailures(workload, MISBEHAVING);
  await expectFailures(workload, KILLERS);
  await workload.waitForCompleted(ids, 240_000);

  const result = await workload.verify('misbehaving handlers beside the workload', ids, null);
  assert.equal(result.completed, TASKS);
  const health = await supervisor.health();
  console.log(`# restarts: ${JSON.stringify(health.restarts)}`);
  // One death may end several of them at once, when one worker held them together.
  assert.ok(
    health.restarts.crash! + health.restarts.unresponsive! >= 1,
    'the handlers that end their process did',
  );
  assert.ok(
    health.workers.every((worker) => worker.state === 'running'),
    'the fleet is whole',
  );
  assert.deepEqual(await supervisor.stop('SIGTERM'), { code: 0, signal: null });
});

/** Enqueues the tasks and waits until each has failed with the report it must have. */
async function expectFailures(workload: Workload, tasks: Misbehaving[]): Promise<void> {
  const enqueued = await workload.client.enqueueMany(
    tasks.map(({ name, parameters }) => ({ name, parameters })),
  );
  const ids = enqueued.map((task) => task.id);
  const ended = await waitFor(
    `${tasks.map((task) => task.name).join(', ')} to end`,
    async () => {
      const { rows } = await workload.pool.query<{ id: string; status: string; report: unknown }>(
        'SELECT id, status, report FROM taskq.tasks WHERE id = ANY($1::uuid[])',
        [ids],
      );
      return rows.every((row) => row.status === 'failed') ? rows : undefined;
    },
    { timeoutMs: 240_000, intervalMs: 250 },
  );
  const byId = new Map(ended.map((row) => [row.id, row]));
  tasks.forEach((expected, index) => {
    const row = byId.get(ids[index]!)!;
    const message = (row.report as { message?: string } | null)?.message ?? '';
    assert.match(
      message,
      expected.report,
      `${expected.name} ${JSON.stringify(expected.parameters)}`,
    );
  });
}
