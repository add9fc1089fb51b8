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
 * Stride scheduling over running time: each queue has a pass that grows by (seconds of work) /
 * weight, and the candidate with the lowest pass goes next. What counts is the time tasks run,
 * not their number, so a queue of long tasks cannot take more than its weight's share of the
 * worker by taking few of them. A receive charges its tasks at once at the queue's estimated
 * task length (so that the other slots see them before they end), and each task corrects the
 * charge by its real length when it ends, which keeps the shares exact over a run.
 *
 * A queue coming back from idle starts level with the others instead of claiming the turns it
 * missed. Queues of weight 0 are taken only when no queue with a weight has work.
 */
export class WeightSelector implements QueueSelector {
  private readonly pass = new Map<string, number>();
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
    for (const queue of candidates) {
      if ((this.weights.get(queue) ?? 0) <= 0) continue;
      let pass = this.pass.get(queue) ?? this.virtualTime;
      if (!this.present.has(queue)) pass = Math.max(pass, this.virtualTime);
      this.pass.set(queue, pass);
      if (pass < bestPass) {
        best = queue;
        bestPass = pass;
      }
    }
    this.present = new Set(candidates);
    if (best === undefined) return this.nextUnweighted(candidates);
    this.virtualTime = bestPass;
    return best;
  }

  charge(queue: string, tasks: number): void {
    this.advance(queue, tasks * this.estimateOf(queue));
  }

  ran(queue: string, seconds: number): void {
    const cost = Math.max(MIN_TASK_COST_SECONDS, seconds);
    const estimate = this.estimateOf(queue);
    this.advance(queue, cost - estimate);
    this.estimate.set(queue, estimate + ESTIMATE_SMOOTHING * (cost - estimate));
  }

  private estimateOf(queue: string): number {
    return this.estimate.get(queue) ?? MIN_TASK_COST_SECONDS;
  }

  private advance(queue: string, seconds: number): void {
    const weight = this.weights.get(queue) ?? 0;
    if (weight <= 0 || seconds === 0) return;
    this.pass.set(queue, (this.pass.get(queue) ?? this.virtualTime) + seconds / weight);
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
