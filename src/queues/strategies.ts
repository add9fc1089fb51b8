import type { StrategyName } from '../config/types.js';

/**
 * Picks the queue a worker receives from next, among the queues that may have work. Weights
 * come from the configuration or, under a supervisor, from its weight controller.
 */
export interface QueueSelector {
  next(candidates: readonly string[]): string | undefined;
  /** Tells the selector how many tasks the last receive from `queue` brought. */
  charge(queue: string, tasks: number): void;
  /** Tells the selector that a task of `queue` ran for `seconds`. */
  ran(queue: string, seconds: number): void;
  /** Tells the selector that `tasks` charged to `queue` will not run (given back, refused). */
  discharge(queue: string, tasks: number): void;
  setWeights(weights: ReadonlyMap<string, number>): void;
}

/**
 * The least a task costs, in seconds, however short it ran: tasks that take next to no time
 * still take a receive and an outcome, and among queues of such tasks, shares are shares of
 * tasks, steady whatever the jitter of their few microseconds.
 */
const MIN_TASK_COST_SECONDS = 0.005;
/** How much one finished task moves a queue's estimate of its task cost. */
const ESTIMATE_SMOOTHING = 0.1;

/**
 * Stride scheduling over running time: each queue's pass is the work it has had, in seconds of
 * running time divided by its weight, and the candidate with the lowest pass goes next. What
 * counts is the time tasks run, not their number, so a queue of long tasks cannot take more than
 * its weight's share of the worker by taking few of them. A task is added to its queue's pass
 * when it ends, at its real cost and the weight of that moment; until then it counts at the
 * queue's estimated task cost, so that the other slots see the tasks under way.
 *
 * A queue coming back from idle starts level with the others instead of claiming the turns it
 * missed. Queues of weight 0 are taken only when no queue with a weight has work.
 */
export class WeightSelector implements QueueSelector {
  /** Work done per queue, in seconds per unit of weight. */
  private readonly done = new Map<string, number>();
  /** Tasks charged and not ended, per queue. */
  private readonly underWay = new Map<string, number>();
  private readonly estimate = new Map<string, number>();
  /** The queues of the last call to `next`: the others are back from idle when they return. */
  private present = new Set<string>();
  private virtualTime = 0;
  private weights: ReadonlyMap<string, number>;
  private zeroIndex = 0;

  constructor(weights: ReadonlyMap<string, number>) {
    this.weights = weights;
  }

  setWeights(weights: ReadonlyMap<string, number>): void {
    this.weights = weights;
  }

  next(candidates: readonly string[]): string | undefined {
    let best: string | undefined;
    let bestPass = Infinity;
    let bestDone = 0;
    for (const queue of candidates) {
      const weight = this.weights.get(queue) ?? 0;
      if (weight <= 0) continue;
      let done = this.done.get(queue) ?? this.virtualTime;
      if (!this.present.has(queue)) done = Math.max(done, this.virtualTime);
      this.done.set(queue, done);
      const pass = done + ((this.underWay.get(queue) ?? 0) * this.estimateOf(queue)) / weight;
      if (pass < bestPass) {
        best = queue;
        bestPass = pass;
        bestDone = done;
      }
    }
    this.present = new Set(candidates);
    if (best === undefined) return this.nextUnweighted(candidates);
    this.virtualTime = bestDone;
    return best;
  }

  charge(queue: string, tasks: number): void {
    if (tasks > 0) this.underWay.set(queue, (this.underWay.get(queue) ?? 0) + tasks);
  }

  discharge(queue: string, tasks: number): void {
    if (tasks > 0) this.underWay.set(queue, Math.max(0, (this.underWay.get(queue) ?? 0) - tasks));
  }

  ran(queue: string, seconds: number): void {
    this.discharge(queue, 1);
    const cost = Math.max(MIN_TASK_COST_SECONDS, seconds);
    const estimate = this.estimateOf(queue);
    this.estimate.set(queue, estimate + ESTIMATE_SMOOTHING * (cost - estimate));
    const weight = this.weights.get(queue) ?? 0;
    if (weight > 0) {
      this.done.set(queue, (this.done.get(queue) ?? this.virtualTime) + cost / weight);
    }
  }

  private estimateOf(queue: string): number {
    return this.estimate.get(queue) ?? MIN_TASK_COST_SECONDS;
  }

  private nextUnweighted(candidates: readonly string[]): string | undefined {
    if (candidates.length === 0) return undefined;
    this.zeroIndex = (this.zeroIndex + 1) % candidates.length;
    return candidates[this.zeroIndex];
  }
}

/** Always the candidate of the highest weight; ties go to the queue listed first. */
export class StrictPrioritySelector implements QueueSelector {
  private weights: ReadonlyMap<string, number>;

  constructor(weights: ReadonlyMap<string, number>) {
    this.weights = weights;
  }

  setWeights(weights: ReadonlyMap<string, number>): void {
    this.weights = weights;
  }

  charge(): void {}

  ran(): void {}

  discharge(): void {}

  next(candidates: readonly string[]): string | undefined {
    let best: string | undefined;
    for (const queue of candidates) {
      if (best === undefined || (this.weights.get(queue) ?? 0) > (this.weights.get(best) ?? 0))
        best = queue;
    }
    return best;
  }
}

export function createSelector(
  strategy: StrategyName,
  weights: ReadonlyMap<string, number>,
): QueueSelector {
  return strategy === 'strict-priority'
    ? new StrictPrioritySelector(weights)
    : new WeightSelector(weights);
}
