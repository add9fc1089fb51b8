import assert from 'node:assert/strict';
import { test } from 'node:test';

import { AggregatorRegistry } from 'prom-client';

import { FleetSnapshots } from '../../src/metrics/fleet-snapshots.js';
import type { MetricSnapshot, WorkerSnapshot } from '../../src/metrics/snapshot.js';
import { parseExposition, valueOf, type Exposition } from './exposition.js';

/** What a worker process that completed `completed` tasks sends, with a gauge and a process metric. */
function snapshotOf(worker: string, completed: number, rssBytes = 1000): WorkerSnapshot {
  const metrics: MetricSnapshot[] = [
    {
      name: 'taskq_tasks_processed_total',
      help: 'processed',
      type: 'counter',
      aggregator: 'sum',
      values: [{ value: completed, labels: { queue: 'q', task: 't', status: 'completed' } }],
    },
    {
      name: 'taskq_task_duration_seconds',
      help: 'duration',
      type: 'histogram',
      aggregator: 'sum',
      values: [
        {
          value: completed,
          labels: { le: 1, queue: 'q', task: 't' },
          metricName: 'taskq_task_duration_seconds_bucket',
        },
        {
          value: completed,
          labels: { le: '+Inf', queue: 'q', task: 't' },
          metricName: 'taskq_task_duration_seconds_bucket',
        },
        {
          value: completed / 10,
          labels: { queue: 'q', task: 't' },
          metricName: 'taskq_task_duration_seconds_sum',
        },
        {
          value: completed,
          labels: { queue: 'q', task: 't' },
          metricName: 'taskq_task_duration_seconds_count',
        },
      ],
    },
    {
      name: 'process_resident_memory_bytes',
      help: 'rss',
      type: 'gauge',
      aggregator: 'sum',
      values: [{ value: rssBytes, labels: {} }],
    },
    {
      name: 'process_start_time_seconds',
      help: 'start',
      type: 'gauge',
      aggregator: 'omit',
      values: [{ value: 1, labels: {} }],
    },
  ];
  return { worker, metrics };
}

async function render(snapshots: FleetSnapshots): Promise<Exposition> {
  return parseExposition(await AggregatorRegistry.aggregate(snapshots.lists()).metrics());
}

const completed = (page: Exposition) =>
  valueOf(page, 'taskq_tasks_processed_total', { queue: 'q', task: 't', status: 'completed' });

test('the fleet sums task counters across slots and keeps one process-metric series per worker', async () => {
  const snapshots = new FleetSnapshots();
  snapshots.record('0', snapshotOf('w0.1', 3, 100));
  snapshots.record('1', snapshotOf('w1.1', 4, 200));
  const page = await render(snapshots);

  assert.equal(completed(page), 7);
  assert.equal(valueOf(page, 'taskq_task_duration_seconds_count', { queue: 'q', task: 't' }), 7);
  assert.equal(valueOf(page, 'process_resident_memory_bytes', { worker: 'w0.1' }), 100);
  assert.equal(valueOf(page, 'process_resident_memory_bytes', { worker: 'w1.1' }), 200);
  // prom-client's cluster aggregator would omit it; per worker it stays.
  assert.equal(valueOf(page, 'process_start_time_seconds', { worker: 'w1.1' }), 1);
});

test('an exited process leaves its counters in its slot; its replacement counts on top; its gauges go', async () => {
  const snapshots = new FleetSnapshots();
  snapshots.record('0', snapshotOf('w0.1', 5));
  snapshots.retire('0', 'w0.1');
  let page = await render(snapshots);
  assert.equal(completed(page), 5);
  assert.equal(page.types.get('process_resident_memory_bytes'), undefined);

  snapshots.record('0', snapshotOf('w0.2', 2));
  snapshots.retire('0', 'w0.2');
  snapshots.record('0', snapshotOf('w0.3', 1));
  page = await render(snapshots);
  assert.equal(completed(page), 5 + 2 + 1);
  assert.equal(
    valueOf(page, 'taskq_task_duration_seconds_bucket', { le: '+Inf', queue: 'q', task: 't' }),
    8,
  );
  assert.equal(valueOf(page, 'process_resident_memory_bytes', { worker: 'w0.3' }), 1000);
  assert.ok(Number.isNaN(valueOf(page, 'process_resident_memory_bytes', { worker: 'w0.2' })));
});

test('a final snapshot read after its process exited replaces that process’s share, counted once', async () => {
  const snapshots = new FleetSnapshots();
  snapshots.record('0', snapshotOf('w0.1', 5));
  snapshots.retire('0', 'w0.1');
  snapshots.record('0', snapshotOf('w0.2', 1));
  snapshots.record('0', snapshotOf('w0.1', 9));
  assert.equal(completed(await render(snapshots)), 9 + 1);

  // Once a later process has exited too, the first one's words count for nothing more.
  snapshots.retire('0', 'w0.2');
  snapshots.record('0', snapshotOf('w0.1', 50));
  assert.equal(completed(await render(snapshots)), 9 + 1);
});

test('a process whose exit was not reported is retired when its successor reports', async () => {
  const snapshots = new FleetSnapshots();
  snapshots.record('0', snapshotOf('w0.1', 4));
  snapshots.record('0', snapshotOf('w0.2', 1));
  const page = await render(snapshots);
  assert.equal(completed(page), 5);
  assert.ok(Number.isNaN(valueOf(page, 'process_resident_memory_bytes', { worker: 'w0.1' })));
});

test('a process that exited without ever reporting cannot add anything later', async () => {
  const snapshots = new FleetSnapshots();
  snapshots.record('0', snapshotOf('w0.1', 4));
  snapshots.retire('0', 'w0.1');
  snapshots.retire('0', 'w0.2');
  snapshots.record('0', snapshotOf('w0.2', 7));
  assert.equal(completed(await render(snapshots)), 4);
});
