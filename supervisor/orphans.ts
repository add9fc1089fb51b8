import type { ReceivedMessage } from '../src/brokers/broker.js';
import type { Runtime } from '../src/runtime.js';
import type { Holding } from './worker-slot.js';

/**
 * Gives the tasks of a worker that died back to their queues at once, instead of leaving them
 * until their lease runs out: the task log moves them back to enqueued (their attempt stays
 * counted) and their brokers make the messages visible again. Returns how many were released
 * per queue.
 */
export async function releaseOrphans(
  runtime: Runtime,
  workerId: string,
  holdings: Holding[],
  reason: string,
): Promise<Map<string, number>> {
  const released = new Set(
    await runtime.taskLog.release(
      holdings.map((h) => h.id),
      workerId,
      'supervisor',
      reason,
    ),
  );
  const byQueue = new Map<string, Holding[]>();
  for (const holding of holdings) {
    const list = byQueue.get(holding.queue) ?? [];
    list.push(holding);
    byQueue.set(holding.queue, list);
  }

  const counts = new Map<string, number>();
  for (const [queue, list] of byQueue) {
    if (!runtime.brokers.has(queue)) continue;
    const broker = runtime.brokers.get(queue);
    // A memory queue lives in the dead process; nothing outside it can release its messages.
    if (broker.type === 'memory') continue;
    const messages: ReceivedMessage[] = list.map((holding) => ({
      queue,
      body: null,
      receipt: holding.receipt,
      deliveries: 0,
      sentAt: null,
    }));
    await broker.release(messages, 0);
    counts.set(queue, list.filter((holding) => released.has(holding.id)).length);
  }
  return counts;
}
