import type { EventEmitter } from 'node:events';

import { collectDefaultMetrics, Counter, Registry } from 'prom-client';

import type { RuntimeEvents } from '../runtime.js';
import type { MetricSample, MetricSnapshot } from './snapshot.js';

export interface WorkerMetricsOptions {
  /** The registry to fill; a new one when left out. prom-client's global one is never used. */
  registry?: Registry;
  /** Also collect prom-client's default metrics of this process (CPU, memory, event loop). */
  processMetrics?: boolean;
}

/**
 * What only the process itself can count: the tasks it enqueues (a worker's are the children
 * its handlers enqueue) and, when asked, its process metrics. A worker process sends these to
 * its supervisor, which adds them up with every other process's.
 *
 * Enqueues are counted where they happen, so the supervisor's taskq_tasks_enqueued_total
 * misses those of processes that do not report to it: `taskq enqueue`, and an application
 * enqueueing through its own TaskqClient (which may serve a WorkerMetrics of its own).
 *
 * What workers do with tasks is counted by TaskMetrics, from the reports that reach the
 * supervisor anyway; these snapshots stay small, whatever the number of task names.
 */
export class WorkerMetrics {
  readonly registry: Registry;
  private readonly enqueued: Counter<'queue' | 'task'>;
  private lastSnapshot: Promise<unknown> = Promise.resolve();

  constructor(options: WorkerMetricsOptions = {}) {
    this.registry = options.registry ?? new Registry();
    this.enqueued = new Counter({
      name: 'taskq_tasks_enqueued_total',
      help: 'Tasks enqueued by taskq processes that report to the supervisor, by queue and task name.',
      labelNames: ['queue', 'task'],
      registers: [this.registry],
    });
    if (options.processMetrics) collectDefaultMetrics({ register: this.registry });
  }

  /** Counts the tasks enqueued through a runtime; the returned function stops counting. */
  observe(events: EventEmitter<RuntimeEvents>): () => void {
    const enqueued = ({ queue, name, count }: RuntimeEvents['enqueued'][0]) =>
      this.enqueued.inc({ queue, task: name }, count);
    events.on('enqueued', enqueued);
    return () => events.off('enqueued', enqueued);
  }

  /**
   * Every metric of the registry as plain data, copied: later counts do not change it.
   * Snapshots resolve in the order they were asked for, so a reader that keeps the last one it
   * received keeps the newest.
   */
  getMetricsAsJSON(): Promise<MetricSnapshot[]> {
    const next = this.lastSnapshot.then(async () => copy(await this.registry.getMetricsAsJSON()));
    this.lastSnapshot = next.catch(() => undefined);
    return next;
  }
}

/** prom-client hands out its live series objects; a snapshot must not move with them. */
function copy(metrics: Awaited<ReturnType<Registry['getMetricsAsJSON']>>): MetricSnapshot[] {
  return metrics.map((metric) => ({
    name: metric.name,
    help: metric.help,
    type: String(metric.type),
    aggregator: metric.aggregator,
    values: metric.values.map((sample) => ({
      ...sample,
      labels: { ...sample.labels } as MetricSample['labels'],
    })),
  }));
}
