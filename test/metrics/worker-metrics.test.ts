import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { Registry } from 'prom-client';

import { TaskqClient } from '../../src/client.js';
import type { MetricSnapshot } from '../../src/metrics/snapshot.js';
import { TaskMetrics } from '../../src/metrics/task-metrics.js';
import { WorkerMetrics } from '../../src/metrics/worker-metrics.js';
import type { Runtime } from '../../src/runtime.js';
import { Worker } from '../../src/worker/worker.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { TEST_HANDLERS } from '../support/paths.js';
import { testConfig, testRuntime } from '../support/runtime.js';
import { waitFor } from '../support/wait.js';
import { parseExposition, valueOf } from './exposition.js';

let database: TestDatabase;
let runtime: Runtime;
let client: TaskqClient;

before(async () => {
  database = await createTestDatabase();
  runtime = await testRuntime(
    await testConfig(database.url, {
      handlers: TEST_HANDLERS,
      queues: [{ name: 'default', broker: 'postgres' }],
    }),
  );
  client = new TaskqClient(runtime, 'test');
});

after(async () => {
  await runtime.close();
  await database.drop();
});

async function finished(ids: string[]): Promise<boolean> {
  const tasks = await Promise.all(ids.map((id) => runtime.queries.get(id)));
  return tasks.every((task) => ['completed', 'failed'].includes(task.status));
}

test('TaskMetrics attached to an in-process Worker counts its tasks; WorkerMetrics counts this runtime’s enqueues', async () => {
  const registry = new Registry();
  const tasks = new TaskMetrics(registry);
  const enqueues = new WorkerMetrics({ registry });
  const stopObserving = enqueues.observe(runtime.events);
  const worker = new Worker(runtime, { id: 'in-process', concurrency: 4 });
  const detach = tasks.attach(worker);
  const running = worker.run();

  const ids = [
    ...(await client.enqueueMany([{ name: 'example.echo' }, { name: 'example.echo' }])),
    await client.enqueue('example.fail', {}),
    await client.enqueue('test.flaky', { failures: 1 }),
  ].map((task) => task.id);
  await waitFor('the tasks to finish', () => finished(ids));

  const page = parseExposition(await registry.metrics());
  const labels = (task: string) => ({ queue: 'default', task });
  assert.equal(valueOf(page, 'taskq_tasks_enqueued_total', labels('example.echo')), 2);
  assert.equal(valueOf(page, 'taskq_tasks_enqueued_total', labels('example.fail')), 1);
  assert.equal(valueOf(page, 'taskq_tasks_enqueued_total', labels('test.flaky')), 1);
  const processed = (task: string, status: string) =>
    valueOf(page, 'taskq_tasks_processed_total', { ...labels(task), status });
  assert.equal(processed('example.echo', 'completed'), 2);
  assert.equal(processed('example.fail', 'failed'), 1);
  assert.equal(processed('test.flaky', 'completed'), 1);
  assert.equal(valueOf(page, 'taskq_tasks_retried_total', labels('test.flaky')), 1);
  assert.equal(valueOf(page, 'taskq_task_duration_seconds_count', labels('test.flaky')), 2);
  assert.equal(valueOf(page, 'taskq_task_wait_seconds_count', { queue: 'default' }), 5);
  assert.ok(!page.types.has('process_cpu_seconds_total'), 'no process metrics unless asked for');

  // Detached, they count nothing more of the same worker.
  detach();
  stopObserving();
  const more = await client.enqueue('example.echo', {});
  await waitFor('the last task to finish', () => finished([more.id]));
  await worker.stop(1);
  await running;
  const again = parseExposition(await registry.metrics());
  assert.equal(valueOf(again, 'taskq_tasks_enqueued_total', labels('example.echo')), 2);
  assert.equal(
    valueOf(again, 'taskq_tasks_processed_total', {
      ...labels('example.echo'),
      status: 'completed',
    }),
    2,
  );
});

test('a snapshot is a copy: what is counted after it does not change it', async () => {
  const metrics = new WorkerMetrics();
  const stop = metrics.observe(runtime.events);
  const enqueued = () => runtime.events.emit('enqueued', { queue: 'default', name: 'x', count: 1 });
  const count = (list: MetricSnapshot[]) =>
    list.find((metric) => metric.name === 'taskq_tasks_enqueued_total')!.values[0]!.value;

  enqueued();
  const first = await metrics.getMetricsAsJSON();
  enqueued();
  const second = await metrics.getMetricsAsJSON();
  stop();
  assert.deepEqual([count(first), count(second)], [1, 2]);
});
