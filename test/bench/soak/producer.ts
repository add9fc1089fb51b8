import { setTimeout as delay } from 'node:timers/promises';

import type { EnqueueRequest, TaskqClient } from '../../../src/client.js';

export interface ProducerOptions {
  client: TaskqClient;
  request: EnqueueRequest;
  tasksPerSecond: number;
  batchIntervalMs: number;
  signal: AbortSignal;
}

export interface ProducerTotals {
  enqueued: number;
  /** Tasks due by the schedule that were never enqueued, because a batch came too late. */
  shortfall: number;
}

/**
 * Enqueues at a steady rate until the signal aborts: every batch interval, one enqueueMany of
 * the tasks the schedule says are due by now. The schedule runs on the clock, not on the
 * batches, so a slow batch does not lower the rate; a batch catches up at most one interval
 * behind, so that a stall of the database never comes back as a burst. What it gives up is
 * counted as shortfall.
 */
export async function produceSteadily(options: ProducerOptions): Promise<ProducerTotals> {
  const { client, request, tasksPerSecond, batchIntervalMs, signal } = options;
  const perBatch = (tasksPerSecond * batchIntervalMs) / 1000;
  const largestBatch = Math.ceil(2 * perBatch);
  const startedAt = performance.now();
  const totals: ProducerTotals = { enqueued: 0, shortfall: 0 };

  while (!signal.aborted) {
    const due = Math.floor(((performance.now() - startedAt) / 1000) * tasksPerSecond);
    const owed = due - totals.enqueued - totals.shortfall;
    const count = Math.min(owed, largestBatch);
    totals.shortfall += owed - count;
    if (count > 0) {
      await client.enqueueMany(Array.from({ length: count }, () => request));
      totals.enqueued += count;
    }

    // To the next boundary of the schedule, skipping those a slow batch overran.
    const untilNextTick = batchIntervalMs - ((performance.now() - startedAt) % batchIntervalMs);
    await delay(untilNextTick, undefined, { signal }).catch(() => undefined);
  }
  return totals;
}
