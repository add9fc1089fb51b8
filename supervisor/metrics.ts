import type { FastifyInstance } from 'fastify';
import { AggregatorRegistry, Registry } from 'prom-client';

import type { TaskqConfig } from '../src/config/types.js';
import type { Logger } from '../src/log/logger.js';
import { registerFleetMetrics } from '../src/metrics/fleet-metrics.js';
import { FleetSnapshots } from '../src/metrics/fleet-snapshots.js';
import {
  labelProcessMetrics,
  readWorkerSnapshot,
  type MetricSnapshot,
} from '../src/metrics/snapshot.js';
import { TaskAges } from '../src/metrics/task-ages.js';
import { TaskMetrics } from '../src/metrics/task-metrics.js';
import { WorkerMetrics } from '../src/metrics/worker-metrics.js';
import type { Runtime } from '../src/runtime.js';
import type { Fleet } from './fleet.js';
import { ProcessFleet } from './process-fleet.js';
import type { WeightController } from './weight-controller.js';
import type { RestartReason, WorkerSlot } from './worker-slot.js';

/**
 * How long a scrape waits for a worker process before it uses that worker's last snapshot. A
 * scrape waits for the slowest of its workers, and on a machine short of CPU a process may not
 * run for tens of milliseconds; an answer that comes late is kept for the next scrape, so a slow
 * worker's figures are one scrape old rather than the scrape slow.
 */
const WORKER_ANSWER_MS = 25;

/**
 * The metrics of worker processes, asked for over IPC at each scrape. A worker that does not
 * answer in time (busy, blocked by a handler, or restarting) counts with its last snapshot, and
 * the slots keep the totals of exited processes, so a scrape always answers and no counter goes
 * down.
 */
export class ProcessWorkerMetrics {
  private readonly snapshots = new FleetSnapshots();
  private readonly waiting = new Map<number, { slots: Set<number>; done: () => void }>();
  private seq = 0;

  constructor(
    private readonly slots: readonly WorkerSlot[],
    private readonly answerMs = WORKER_ANSWER_MS,
  ) {
    for (const slot of slots) {
      slot.on('message', (message) => {
        const snapshot = message.type === 'metrics' ? readWorkerSnapshot(message.metrics) : null;
        if (message.type !== 'metrics' || !snapshot) return;
        this.snapshots.record(String(slot.index), snapshot);
        const request = this.waiting.get(message.seq);
        request?.slots.delete(slot.index);
        if (request?.slots.size === 0) request.done();
      });
      slot.on('exit', ({ workerId }) => this.snapshots.retire(String(slot.index), workerId));
    }
  }

  async collect(): Promise<MetricSnapshot[][]> {
    const seq = (this.seq += 1);
    const alive = this.slots.filter((slot) => slot.alive);
    if (alive.length > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, this.answerMs);
        function done() {
          clearTimeout(timer);
          resolve();
        }
        this.waiting.set(seq, { slots: new Set(alive.map((slot) => slot.index)), done });
        for (const slot of alive) slot.send({ type: 'metrics-request', seq });
      });
      this.waiting.delete(seq);
    }
    return this.snapshots.lists();
  }
}

export interface SupervisorMetricsOptions {
  fleet: Fleet;
  controller: WeightController;
  runtime: Runtime;
  /** The configuration in force, read at each scrape (SIGHUP may replace it). */
  config: () => TaskqConfig;
  restarts: () => Readonly<Record<RestartReason, number>>;
  /** Whether a queue is paused in the database (taskq pause). */
  queuePaused: (queue: string) => boolean;
  orphansReleased: () => ReadonlyMap<string, number>;
  logger: Logger;
}

/**
 * GET /metrics of the supervisor, in Prometheus' text format, read at each scrape:
 *
 * - what the fleet's workers do with tasks, counted here from the task-started and task-ended
 *   reports every worker sends its supervisor (processes and threads alike);
 * - the queues and the fleet: depths and weights from the weight controller's last reading
 *   (twice a second), task ages from one grouped query on the task log (cached 2 s), worker
 *   states, restarts and released tasks from the supervisor's own records;
 * - what only each process sees, summed with prom-client's AggregatorRegistry: the tasks it
 *   enqueued, and its process metrics, labelled by worker ("supervisor" for this one).
 */
export class SupervisorMetrics {
  private readonly registry = new Registry();
  private readonly taskRegistry = new Registry();
  private readonly tasks = new TaskMetrics(this.taskRegistry);
  /** The task metrics' text, kept while no task starts or ends: most of the page, by far. */
  private taskText: { version: number; text: Promise<string> } | null = null;
  private readonly local = new WorkerMetrics({ processMetrics: true });
  private readonly workers: ProcessWorkerMetrics | null;
  /** Readings that failed at the last scrape, and at this one. */
  private failedBefore = new Set<string>();
  private failedNow = new Set<string>();

  constructor(private readonly options: SupervisorMetricsOptions) {
    const { fleet, controller, runtime } = options;
    const ages = new TaskAges({
      pool: runtime.db.pool,
      schema: runtime.config.database.schema,
      stuckAfterSeconds: () => options.config().metrics.stuckAfterSeconds,
    });
    registerFleetMetrics(this.registry, {
      queues: () => controller.snapshot(),
      ages: (queues) => ages.read(queues),
      workerStates: () => fleet.status().map((worker) => worker.state),
      paused: () => fleet.isPaused,
      queuePaused: options.queuePaused,
      restarts: options.restarts,
      orphansReleased: options.orphansReleased,
      onError: (what, error) => this.readingFailed(what, error),
    });
    fleet.on('work', (report) =>
      report.type === 'task-started' ? this.tasks.started(report) : this.tasks.ended(report),
    );
    this.local.observe(runtime.events);
    this.workers =
      fleet instanceof ProcessFleet ? new ProcessWorkerMetrics(fleet.workerSlots) : null;
  }

  /** The fleet's metrics in Prometheus' text format. */
  async render(): Promise<string> {
    this.failedNow = new Set();
    const [fleet, tasks, local, workers] = await Promise.all([
      this.registry.metrics(),
      this.taskMetricsText(),
      this.local.getMetricsAsJSON(),
      this.workers?.collect() ?? [],
    ]);
    const perProcess = AggregatorRegistry.aggregate([
      labelProcessMetrics(local, 'supervisor'),
      ...workers,
    ]);
    this.failedBefore = this.failedNow;
    return fleet + tasks + (await perProcess.metrics());
  }

  private taskMetricsText(): Promise<string> {
    if (this.taskText?.version !== this.tasks.version)
      this.taskText = { version: this.tasks.version, text: this.taskRegistry.metrics() };
    return this.taskText.text;
  }

  /** A fastify plugin for the supervisor's HTTP server. */
  readonly route = (app: FastifyInstance): void => {
    app.get('/metrics', async (_request, reply) => {
      const body = await this.render();
      return reply.type(this.registry.contentType).send(body);
    });
  };

  /** Logs a failing reading once, not at every scrape while it keeps failing. */
  private readingFailed(what: string, error: unknown): void {
    const known = this.failedBefore.has(what) || this.failedNow.has(what);
    this.failedNow.add(what);
    if (!known)
      this.options.logger.warn({ err: error }, `metrics: could not read ${what}; left out`);
  }
}
