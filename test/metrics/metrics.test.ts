import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { TaskqClient } from '../../src/client.js';
import type { Runtime } from '../../src/runtime.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { TEST_HANDLERS } from '../support/paths.js';
import { testConfig, testRuntime } from '../support/runtime.js';
import { waitFor } from '../support/wait.js';
import { select, seriesKey, valueOf, type Exposition } from './exposition.js';
import {
  createHome,
  startFleet,
  type SupervisorHome,
  type SupervisorProcess,
} from './supervisor-process.js';

const CONFIG = {
  handlers: TEST_HANDLERS,
  queues: [
    { name: 'default', broker: 'postgres', weight: 1 },
    { name: 'other', broker: 'postgres', weight: 2 },
  ],
  associations: { 'example.fail': 'other' },
  worker: { concurrency: 4 },
  metrics: { stuckAfterSeconds: 1 },
};
const WORKERS = 2;
const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/i;

const COUNTERS = [
  'taskq_tasks_enqueued_total',
  'taskq_tasks_processed_total',
  'taskq_tasks_retried_total',
  'taskq_worker_restarts_total',
  'taskq_orphaned_tasks_released_total',
];
const HISTOGRAMS = ['taskq_task_duration_seconds', 'taskq_task_wait_seconds'];
const GAUGES = [
  'taskq_queue_depth',
  'taskq_queue_in_flight',
  'taskq_oldest_task_age_seconds',
  'taskq_stuck_tasks',
  'taskq_queue_weight',
  'taskq_workers',
  'taskq_fleet_paused',
];

let database: TestDatabase;
let home: SupervisorHome;
let runtime: Runtime;
let client: TaskqClient;
let supervisor: SupervisorProcess;

before(async () => {
  database = await createTestDatabase();
  home = await createHome(database.url, CONFIG);
  runtime = await testRuntime(await testConfig(database.url, CONFIG));
  client = new TaskqClient(runtime, 'test');
  supervisor = await startFleet({
    home,
    workers: WORKERS,
    args: ['--shutdown-timeout-seconds=1'],
  });
});

after(async () => {
  await supervisor?.stop();
  await runtime?.close();
  await database?.drop();
  await home?.remove();
});

async function activeTasks(): Promise<number> {
  const { rows } = await runtime.db.pool.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM taskq.tasks WHERE status IN ('enqueued', 'dequeued', 'running')`,
  );
  return rows[0]!.n;
}

/** Scrapes until `ready` holds for the page, and returns that page. */
function scrapeUntil(what: string, ready: (page: Exposition) => boolean): Promise<Exposition> {
  return waitFor(what, async () => {
    const page = await supervisor.scrape();
    return ready(page) ? page : null;
  });
}

/** Every counter and histogram series of a page, by series. */
function cumulativeSeries(page: Exposition): Map<string, number> {
  const names = new Set([
    ...COUNTERS,
    ...HISTOGRAMS.flatMap((h) => [`${h}_bucket`, `${h}_count`, `${h}_sum`]),
  ]);
  return new Map(
    page.samples.filter((sample) => names.has(sample.name)).map((s) => [seriesKey(s), s.value]),
  );
}

function assertHistogram(
  page: Exposition,
  name: string,
  labels: Record<string, string>,
  count: number,
): void {
  const buckets = select(page, `${name}_bucket`, labels);
  assert.ok(buckets.length > 2, `${name} ${JSON.stringify(labels)} has buckets`);
  const values = buckets.map((bucket) => bucket.value);
  assert.deepEqual(
    values,
    [...values].sort((a, b) => a - b),
    `${name} buckets never decrease`,
  );
  assert.equal(buckets.at(-1)!.labels.le, '+Inf');
  assert.equal(buckets.at(-1)!.value, count, `${name} +Inf bucket ${JSON.stringify(labels)}`);
  assert.equal(
    valueOf(page, `${name}_count`, labels),
    count,
    `${name}_count ${JSON.stringify(labels)}`,
  );
  assert.ok(valueOf(page, `${name}_sum`, labels) >= 0);
}

describe('GET /metrics of a real supervisor with two worker processes', () => {
  test('after 10 completed, 3 failed and 2 retried tasks, every counter and histogram reads exactly that', async () => {
    // The 10 echo tasks are a parent's children: enqueued inside a worker, where they are counted.
    await client.enqueue('example.parent', { count: 10 });
    for (let n = 0; n < 3; n += 1) await client.enqueue('example.fail', {});
    for (let n = 0; n < 2; n += 1) await client.enqueue('test.flaky', { failures: 1 });
    await waitFor('every task to finish', async () => (await activeTasks()) === 0 || null);
    const processed = (page: Exposition, queue: string, task: string, status: string) =>
      valueOf(page, 'taskq_tasks_processed_total', { queue, task, status });
    const page = await scrapeUntil(
      'the 15 ended tasks and the 10 enqueued children in the metrics',
      (p) =>
        processed(p, 'default', 'example.echo', 'completed') === 10 &&
        processed(p, 'other', 'example.fail', 'failed') === 3 &&
        processed(p, 'default', 'test.flaky', 'completed') === 2 &&
        valueOf(p, 'taskq_tasks_enqueued_total', { queue: 'default', task: 'example.echo' }) === 10,
    );

    for (const name of COUNTERS) assert.equal(page.types.get(name), 'counter', name);
    for (const name of HISTOGRAMS) assert.equal(page.types.get(name), 'histogram', name);
    for (const name of GAUGES) assert.equal(page.types.get(name), 'gauge', name);

    // The parent ends when its children have, in the task log; no worker reports that end, so
    // taskq_tasks_processed_total has no series for it (see TaskMetrics).
    assert.deepEqual(
      select(page, 'taskq_tasks_processed_total')
        .map((s) => `${s.labels.queue} ${s.labels.task} ${s.labels.status} ${s.value}`)
        .sort(),
      [
        'default example.echo completed 10',
        'default test.flaky completed 2',
        'other example.fail failed 3',
      ],
    );
    assert.equal(
      valueOf(page, 'taskq_tasks_retried_total', { queue: 'default', task: 'test.flaky' }),
      2,
    );
    assert.equal(select(page, 'taskq_tasks_retried_total').length, 1);

    // Enqueues are counted in the process that makes them: the test's own are not in the fleet's.
    assert.deepEqual(
      select(page, 'taskq_tasks_enqueued_total').map((s) => [s.labels, s.value]),
      [[{ queue: 'default', task: 'example.echo' }, 10]],
    );

    assertHistogram(
      page,
      'taskq_task_duration_seconds',
      { queue: 'default', task: 'example.echo' },
      10,
    );
    assertHistogram(
      page,
      'taskq_task_duration_seconds',
      { queue: 'default', task: 'example.parent' },
      1,
    );
    assertHistogram(
      page,
      'taskq_task_duration_seconds',
      { queue: 'other', task: 'example.fail' },
      3,
    );
    // Two attempts each: the failed one that was retried, and the one that completed.
    assertHistogram(
      page,
      'taskq_task_duration_seconds',
      { queue: 'default', task: 'test.flaky' },
      4,
    );
    assertHistogram(page, 'taskq_task_wait_seconds', { queue: 'default' }, 1 + 10 + 4);
    assertHistogram(page, 'taskq_task_wait_seconds', { queue: 'other' }, 3);
  });

  test('queue gauges: depth and oldest waiting age of a paused fleet, weights, in-flight and stuck running tasks', async () => {
    supervisor.signal('SIGUSR2');
    await scrapeUntil(
      'the fleet to read as paused',
      (p) =>
        valueOf(p, 'taskq_fleet_paused') === 1 &&
        valueOf(p, 'taskq_workers', { state: 'paused' }) === WORKERS,
    );
    await client.enqueue('example.echo', { text: 'held' });
    await client.enqueue('example.echo', { text: 'held' });
    const paused = await scrapeUntil(
      'two tasks waiting for over a second',
      (p) =>
        valueOf(p, 'taskq_queue_depth', { queue: 'default' }) === 2 &&
        valueOf(p, 'taskq_oldest_task_age_seconds', { queue: 'default', state: 'waiting' }) >= 1,
    );
    assert.equal(valueOf(paused, 'taskq_queue_depth', { queue: 'other' }), 0);
    assert.equal(valueOf(paused, 'taskq_workers', { state: 'running' }), 0);
    assert.equal(
      valueOf(paused, 'taskq_queue_weight', { queue: 'default', kind: 'configured' }),
      1,
    );
    assert.equal(valueOf(paused, 'taskq_queue_weight', { queue: 'other', kind: 'configured' }), 2);
    assert.ok(valueOf(paused, 'taskq_queue_weight', { queue: 'default', kind: 'effective' }) > 0);
    assert.equal(
      valueOf(paused, 'taskq_oldest_task_age_seconds', { queue: 'other', state: 'waiting' }),
      0,
    );

    supervisor.signal('SIGCONT');
    await scrapeUntil(
      'the fleet to run the held tasks',
      (p) =>
        valueOf(p, 'taskq_fleet_paused') === 0 &&
        valueOf(p, 'taskq_workers', { state: 'running' }) === WORKERS &&
        valueOf(p, 'taskq_queue_depth', { queue: 'default' }) === 0,
    );

    // Past metrics.stuckAfterSeconds (1 s here) a running task counts as stuck.
    await client.enqueue('example.sleep', { ms: 120_000 });
    const stuck = await scrapeUntil(
      'a task running past the stuck threshold',
      (p) => valueOf(p, 'taskq_stuck_tasks', { queue: 'default' }) === 1,
    );
    assert.ok(
      valueOf(stuck, 'taskq_oldest_task_age_seconds', { queue: 'default', state: 'running' }) >= 1,
    );
    assert.equal(valueOf(stuck, 'taskq_queue_in_flight', { queue: 'default' }), 1);
    assert.equal(valueOf(stuck, 'taskq_stuck_tasks', { queue: 'other' }), 0);
  });

  test('a worker killed with SIGKILL: scrapes go on answering, no counter goes down, the restart and its released task count', async () => {
    const before = cumulativeSeries(await supervisor.scrape());
    const { workers } = await supervisor.health();
    const holder = workers.find((worker) => worker.running > 0);
    assert.ok(holder?.pid, 'a worker runs the sleeping task of the previous test');
    process.kill(holder.pid, 'SIGKILL');

    const seen: Exposition[] = [await supervisor.scrape()];
    const after = await waitFor('the restart and the released task in the metrics', async () => {
      const page = await supervisor.scrape();
      seen.push(page);
      const restarted =
        valueOf(page, 'taskq_worker_restarts_total', { reason: 'crash' }) === 1 &&
        valueOf(page, 'taskq_orphaned_tasks_released_total', { queue: 'default' }) === 1 &&
        valueOf(page, 'taskq_workers', { state: 'running' }) === WORKERS;
      return restarted ? page : null;
    });
    for (const page of seen) {
      const now = cumulativeSeries(page);
      for (const [series, value] of before)
        assert.ok(
          (now.get(series) ?? -1) >= value,
          `${series} went from ${value} to ${now.get(series)}`,
        );
    }
    assert.equal(valueOf(after, 'taskq_worker_restarts_total', { reason: 'recycle' }), 0);
    assert.equal(valueOf(after, 'taskq_worker_restarts_total', { reason: 'unresponsive' }), 0);
    assert.equal(valueOf(after, 'taskq_orphaned_tasks_released_total', { queue: 'other' }), 0);
    const workerLabels = new Set(
      select(after, 'process_resident_memory_bytes').map((s) => s.labels.worker),
    );
    assert.ok(!workerLabels.has(holder.id), 'the killed worker has no process metrics any more');

    // The replacement counts on top of what its slot had counted before.
    await client.enqueue('example.parent', { count: 5 });
    await scrapeUntil(
      '15 echo tasks in all',
      (p) =>
        valueOf(p, 'taskq_tasks_processed_total', {
          queue: 'default',
          task: 'example.echo',
          status: 'completed',
        }) >= 15 &&
        valueOf(p, 'taskq_tasks_enqueued_total', { queue: 'default', task: 'example.echo' }) === 15,
    );
  });

  test('no label value is a task id, and process metrics are one series per live worker and the supervisor', async () => {
    const { workers } = await supervisor.health();
    const expected = ['supervisor', ...workers.map((worker) => worker.id)].sort();
    const workersOf = (page: Exposition, name: string) =>
      select(page, name)
        .map((sample) => sample.labels.worker ?? '(none)')
        .sort();
    // A worker just restarted may miss a scrape or two: an answer later than 25 ms waits for the next.
    const page = await scrapeUntil(
      'every live worker in the process metrics',
      (p) => workersOf(p, 'process_cpu_seconds_total').join() === expected.join(),
    );

    for (const sample of page.samples)
      for (const [label, value] of Object.entries(sample.labels))
        assert.doesNotMatch(value, UUID, `${sample.name} label ${label}`);
    for (const name of [
      'process_cpu_seconds_total',
      'process_resident_memory_bytes',
      'process_start_time_seconds',
      'nodejs_eventloop_lag_seconds',
    ])
      assert.deepEqual(workersOf(page, name), expected, name);
    assert.equal(page.types.get('nodejs_eventloop_lag_seconds'), 'gauge');
  });
});

describe('metrics turned off', () => {
  test('with metrics.enabled false the supervisor serves no /metrics, and /healthz still answers', async () => {
    const offHome = await createHome(database.url, { ...CONFIG, metrics: { enabled: false } });
    const off = await startFleet({ home: offHome, workers: 1 });
    try {
      assert.equal((await fetch(`${off.url}/metrics`)).status, 404);
      assert.equal((await off.health()).workers.length, 1);
    } finally {
      await off.stop();
      await offHome.remove();
    }
  });
});
