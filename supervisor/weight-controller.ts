import type { QueueConfig } from '../src/config/types.js';
import type { BrokerSet } from '../src/brokers/index.js';
import type { Logger } from '../src/log/logger.js';

export interface QueueView {
  name: string;
  broker: string;
  configuredWeight: number;
  effectiveWeight: number;
  waiting: number | null;
  inFlight: number | null;
  running: number;
}

/**
 * How far one step may move a weight, and how far it may drift from the configured one. The
 * workers already share their running time by weight; the controller only corrects what they
 * cannot see alone (a fleet's workers holding different mixes), so its steps are small and its
 * reach bounded, and it reads running work averaged over a few seconds: the count of a light
 * queue's running tasks is a small, jumpy number, and chasing it would only add noise.
 */
const STEP_LIMIT = 1.1;
const DRIFT_LIMIT = 3;
const MIN_RUNNING_FOR_FEEDBACK = 4;
/** Weight of the newest reading in the running-work average (about ten readings' memory). */
const RUNNING_SMOOTHING = 0.1;

/**
 * Turns configured weights, queue depths and running work into the weights the workers use.
 *
 * Workers share tasks by weight among the queues that have work, and skip a queue as soon as a
 * receive finds it empty, so an empty queue's share goes to the others at once. What workers
 * cannot see alone is the fleet's running work: among backlogged queues, the share of running
 * tasks is compared with the share the configured weights promise, and each effective weight is
 * nudged toward closing the gap, so that a queue whose tasks run long does not take more than
 * its share of the fleet's time.
 */
export class WeightController {
  private effective = new Map<string, number>();
  private views: QueueView[] = [];
  private timer: NodeJS.Timeout | null = null;
  private ticking = false;
  private readonly runningAverage = new Map<string, number>();

  constructor(
    private queues: QueueConfig[],
    private readonly brokers: BrokerSet,
    private readonly running: () => Map<string, number>,
    private readonly publish: (weights: Map<string, number>) => void,
    private readonly logger: Logger,
    private readonly intervalMs = 500,
  ) {
    this.effective = new Map(queues.map((queue) => [queue.name, queue.weight]));
    this.views = queues.map((queue) => this.view(queue, null, 0));
  }

  start(): void {
    this.timer = setInterval(() => void this.tick(), this.intervalMs);
    this.timer.unref();
    void this.tick();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /** A reloaded configuration: new configured weights take effect at once. */
  update(queues: QueueConfig[]): void {
    this.queues = queues;
    this.effective = new Map(queues.map((queue) => [queue.name, queue.weight]));
    // The views show the new weights at once; depths stay as last read until the next tick.
    const before = new Map(this.views.map((view) => [view.name, view]));
    this.views = queues.map((queue) => {
      const view = before.get(queue.name);
      const counts =
        view?.waiting != null ? { waiting: view.waiting, inFlight: view.inFlight ?? 0 } : null;
      return this.view(queue, counts, view?.running ?? 0);
    });
    this.publish(new Map(this.effective));
    void this.tick();
  }

  weights(): Map<string, number> {
    return new Map(this.effective);
  }

  snapshot(): QueueView[] {
    return this.views;
  }

  async tick(): Promise<void> {
    if (this.ticking) return;
    this.ticking = true;
    try {
      const running = this.running();
      const averaged = this.averageRunning(running);
      const counts = await Promise.all(
        this.queues.map((queue) =>
          this.brokers
            .get(queue.name)
            .counts()
            .catch(() => null),
        ),
      );
      const next = this.compute(counts, averaged);
      const changed = this.queues.some(
        (queue) =>
          Math.abs((next.get(queue.name) ?? 0) - (this.effective.get(queue.name) ?? 0)) >
          0.02 * queue.weight,
      );
      this.effective = next;
      this.views = this.queues.map((queue, index) =>
        this.view(queue, counts[index] ?? null, running.get(queue.name) ?? 0),
      );
      if (changed) this.publish(new Map(next));
    } catch (error) {
      this.logger.warn({ err: error }, 'weight controller could not read the queues');
    } finally {
      this.ticking = false;
    }
  }

  private averageRunning(now: Map<string, number>): Map<string, number> {
    for (const queue of this.queues) {
      const current = now.get(queue.name) ?? 0;
      const before = this.runningAverage.get(queue.name) ?? current;
      this.runningAverage.set(queue.name, before + RUNNING_SMOOTHING * (current - before));
    }
    return new Map(this.runningAverage);
  }

  private compute(
    counts: ({ waiting: number; inFlight: number } | null)[],
    running: Map<string, number>,
  ): Map<string, number> {
    const next = new Map<string, number>();
    const backlogged = this.queues.filter(
      (queue, index) => queue.weight > 0 && (counts[index]?.waiting ?? 1) > 0,
    );
    const totalWeight = backlogged.reduce((sum, queue) => sum + queue.weight, 0);
    const totalRunning = backlogged.reduce((sum, queue) => sum + (running.get(queue.name) ?? 0), 0);

    for (const [index, queue] of this.queues.entries()) {
      const waiting = counts[index]?.waiting ?? 1;
      // An empty queue keeps its weight: workers skip it while it stays empty, and take it up
      // again the moment an enqueue announces new work, without waiting for this controller.
      if (queue.weight === 0 || waiting === 0) {
        next.set(queue.name, queue.weight);
        continue;
      }
      const previous = this.effective.get(queue.name) || queue.weight;
      if (backlogged.length < 2 || totalRunning < MIN_RUNNING_FOR_FEEDBACK) {
        next.set(queue.name, queue.weight);
        continue;
      }
      const target = queue.weight / totalWeight;
      const actual = Math.max((running.get(queue.name) ?? 0) / totalRunning, 0.01);
      const step = Math.min(STEP_LIMIT, Math.max(1 / STEP_LIMIT, Math.sqrt(target / actual)));
      const bounded = Math.min(
        queue.weight * DRIFT_LIMIT,
        Math.max(queue.weight / DRIFT_LIMIT, previous * step),
      );
      next.set(queue.name, bounded);
    }
    return next;
  }

  private view(
    queue: QueueConfig,
    counts: { waiting: number; inFlight: number } | null,
    running: number,
  ): QueueView {
    return {
      name: queue.name,
      broker: queue.broker.type,
      configuredWeight: queue.weight,
      effectiveWeight: this.effective.get(queue.name) ?? queue.weight,
      waiting: counts?.waiting ?? null,
      inFlight: counts?.inFlight ?? null,
      running,
    };
  }
}
