import { defineHandlers, type HandlerFunction } from '../../src/tasks/handlers.js';
import { handlers as examples } from '../../workers/examples/index.js';

/** Names of the benchmark's many task kinds: metrics.task00 to metrics.task49. */
export const TASK_NAMES = Array.from(
  { length: 50 },
  (_, n) => `metrics.task${String(n).padStart(2, '0')}`,
);

const noop: HandlerFunction = () => undefined;

/**
 * The examples plus 50 no-op task names, so that a benchmark can fill /metrics with the series
 * of many tasks, and `metrics.fanout`, which enqueues one task of each name as its children
 * (enqueues counted by the workers).
 */
export const handlers = defineHandlers({
  ...examples,
  ...Object.fromEntries(TASK_NAMES.map((name) => [name, noop])),
  'metrics.fanout': async (_parameters, { enqueueChild }) => {
    for (const name of TASK_NAMES) await enqueueChild(name, {});
    return `enqueued ${TASK_NAMES.length} children`;
  },
});
