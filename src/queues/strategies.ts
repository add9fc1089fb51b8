import type { StrategyName } from '../config/types.js';

/**
 * Picks the queue a worker receives from next, among the queues that may have work. Weights
 * come from the configuration or, under a supervisor, from its weight controller.
 */
export interface QueueSelector {
  next(candidates: readonly string[]): string | undefined;
  setWeights(weights: ReadonlyMap<string, number>): void;
}

/**
 * Smooth weighted round robin: each pick adds every candidate's weight to its credit and takes
 * the candidate with the most credit, which then pays the sum back. Over any run of picks each
 * queue's share is its weight's share to within one pick, without the drift of random draws.
 * Queues of weight 0 are taken only when no queue with a weight has work.
 */
export class WeightSelector implements QueueSelector {
  private readonly credit = new Map<string, number>();
  private weights: ReadonlyMap<string, number>;
  private zeroIndex = 0;

  constructor(weights: ReadonlyMap<string, number>) {
    this.weights = weights;
  }

  setWeights(weights: ReadonlyMap<string, number>): void {
    this.weights = weights;
    this.credit.clear();
  }

  next(candidates: readonly string[]): string | undefined {
    const weighted = candidates.filter((queue) => (this.weights.get(queue) ?? 0) > 0);
    if (weighted.length === 0) return this.nextUnweighted(candidates);

    let total = 0;
    let best: string | undefined;
    let bestCredit = -Infinity;
    for (const queue of weighted) {
      const weight = this.weights.get(queue)!;
      const credit = (this.credit.get(queue) ?? 0) + weight;
      this.credit.set(queue, credit);
      total += weight;
      if (credit > bestCredit) {
        best = queue;
        bestCredit = credit;
      }
    }
    this.credit.set(best!, bestCredit - total);
    return best;
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
