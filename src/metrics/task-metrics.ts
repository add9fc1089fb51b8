import type { EventEmitter } from 'node:events';

import { Counter, Histogram, type Registry } from 'prom-client';

import type { TaskEnd, TaskEnded, TaskStarted, WorkerEvents } from '../worker/worker.js';

/** From 5 ms to an hour: tasks range from no-ops to exports. */
const SECONDS_BUCKETS = [
  0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600,
];

/** Ends that finish a task, as the `status` of taskq_tasks_processed_total. */
const PROCESSED: ReadonlySet<TaskEnd> = new Set(['completed', 'failed', 'cancelled']);

/** Ends after which the handler ran to its end: the attempt has a duration worth recording. */
const RAN: ReadonlySet<TaskEnd> = new Set([...PROCESSED, 'retried', 'child_running']);

/**
 * What workers do with tasks: how many ended each way, how long attempts ran and how long
 * tasks waited to start. Fed by the task-started and task-ended events of a Worker (`attach`)
 * or by the same reports relayed from elsewhere (`started`, `ended`): the supervisor counts
 * here what its fleet reports, whether its workers are processes or threads.
 *
 * Labels are queue and task names only: a task name reaches a label once a handler of that
 * name was found, so the number of series stays bounded by the handlers registered.
 *
 * A parent task whose handler enqueued children ends its attempt in child_running (its run
 * time is recorded then) and ends for good in the task log when its last child does; no worker
 * reports that end, so taskq_tasks_processed_total does not count parents.
 */
export class TaskMetrics {
  private readonly processed: Counter<'queue' | 'task' | 'status'>;
  private readonly retried: Counter<'queue' | 'task'>;
  private readonly duration: Histogram<'queue' | 'task'>;
  private readonly wait: Histogram<'queue'>;
  private changes = 0;

  constructor(registry: Registry) {
    const registers = [registry];
    this.processed = new Counter({
      name: 'taskq_tasks_processed_total',
      help: 'Tasks that ended completed, failed or cancelled, by queue, task name and status.',
      labelNames: ['queue', 'task', 'status'],
      registers,
    });
    this.retried = new Counter({
      name: 'taskq_tasks_retried_total',
      help: 'Attempts that failed and put their task back for a retry.',
      labelNames: ['queue', 'task'],
      registers,
    });
    this.duration = new Histogram({
      name: 'taskq_task_duration_seconds',
      help: 'Run time of one attempt, from its start to its outcome.',
      labelNames: ['queue', 'task'],
      buckets: SECONDS_BUCKETS,
      registers,
    });
    this.wait = new Histogram({
      name: 'taskq_task_wait_seconds',
      help: 'Time from a task becoming available (enqueued, or its retry due) to its start.',
      labelNames: ['queue'],
      buckets: SECONDS_BUCKETS,
      registers,
    });
  }

  /** Counts the tasks that `worker` starts and ends; the returned function stops counting. */
  attach(worker: EventEmitter<WorkerEvents>): () => void {
    const started = (task: TaskStarted) => this.started(task);
    const ended = (task: TaskEnded) => this.ended(task);
    worker.on('task-started', started);
    worker.on('task-ended', ended);
    return () => {
      worker.off('task-started', started);
      worker.off('task-ended', ended);
    };
  }

  /** Grows with every count: a reader that rendered these metrics knows when to again. */
  get version(): number {
    return this.changes;
  }

  started(task: Pick<TaskStarted, 'queue' | 'waitSeconds'>): void {
    this.changes += 1;
    this.wait.observe({ queue: task.queue }, task.waitSeconds);
  }

  ended(task: Pick<TaskEnded, 'queue' | 'name' | 'status' | 'durationSeconds'>): void {
    this.changes += 1;
    const labels = { queue: task.queue, task: task.name };
    if (RAN.has(task.status)) this.duration.observe(labels, task.durationSeconds);
    if (PROCESSED.has(task.status)) this.processed.inc({ ...labels, status: task.status });
    else if (task.status === 'retried') this.retried.inc(labels);
  }
}
