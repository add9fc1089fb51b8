import type { StrategyName } from '../config/types.js';

/**
 * Picks the queue a worker receives from next, among the queues that may have work. Weights
 * come from the configuration or, under a supervisor, from its weight controller.
 */
export interface QueueSelector {
  next(candidates: readonly string[]): string | undefined;
  /** Tells the selector how many tasks the last receive from `queue` brought. */
  charge(queue: string, tasks: number): void;
  setWeights(weights: ReadonlyMap<string, number>): void;
}

/**
 * Stride scheduling over tasks, not polls: each queue has a pass that grows by 1/weight for
 * every task received from it, and the candidate with the lowest pass goes next. Over any run
 * each queue's share of tasks is its weight's share, however many tasks each receive brings.
 * A queue coming back from idle starts level with the others instead of claiming the turns it
 * missed. Queues of weight 0 are taken only when no queue with a weight has work.
 */
export class WeightSelector implements QueueSelector {
  private readonly pass = new Map<string, number>();
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
      const pass = Math.max(this.pass.get(queue) ?? 0, this.virtualTime);
      this.pass.set(queue, pass);
      if (pass < bestPass) {
        best = queue;
        bestPass = pass;
      }
    }
    if (best === undefined) return this.nextUnweighted(candidates);
    this.virtualTime = bestPass;
    return best;
  }

  charge(queue: string, tasks: number): void {
    const weight = this.weights.get(queue) ?? 0;
    if (weight <= 0 || tasks <= 0) return;
    this.pass.set(queue, (this.pass.get(queue) ?? this.virtualTime) + tasks / weight);
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
