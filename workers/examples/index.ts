import { setTimeout as delay } from 'node:timers/promises';

import { defineHandlers } from '../../src/tasks/handlers.js';
import type { ReportInput } from '../../src/tasks/report.js';

/** Reads one field of the parameters, whatever shape they came in. */
function field(parameters: unknown, name: string): unknown {
  return typeof parameters === 'object' && parameters !== null
    ? (parameters as Record<string, unknown>)[name]
    : undefined;
}

function numberField(parameters: unknown, name: string, fallback: number): number {
  const value = field(parameters, name);
  return typeof value === 'number' && Number.isFinite(value) ? value : fallback;
}

/**
 * Example handlers: the README's first run and the tests use them. Each shows one thing a
 * handler can do.
 */
export const handlers = defineHandlers({
  /** Returns its text: the smallest useful task. */
  'example.echo': {
    category: 'unrelated_resource',
    run: (parameters): ReportInput => ({
      type: 'success',
      message: `echo: ${String(field(parameters, 'text') ?? '')}`,
    }),
  },

  /** Does nothing at all: for throughput measurements. */
  'example.noop': () => undefined,

  /** Sleeps for `ms` milliseconds, and stops early when aborted. */
  'example.sleep': async (parameters, { signal }) => {
    const ms = numberField(parameters, 'ms', 1000);
    await delay(ms, undefined, { signal });
    return `slept ${ms} ms`;
  },

  /** Always fails, with the given message; `retries` sets its retry limit. */
  'example.fail': {
    retry: { limit: 0 },
    run: (parameters) => {
      throw new Error(String(field(parameters, 'message') ?? 'example.fail failed as asked'));
    },
  },

  /** Burns the CPU for `ms` milliseconds without yielding: what thread isolation is for. */
  'example.cpu': {
    category: 'unrelated_resource',
    run: (parameters) => {
      const until = Date.now() + numberField(parameters, 'ms', 500);
      let spins = 0;
      while (Date.now() < until) spins += 1;
      return { type: 'success', message: `spun ${spins} times` };
    },
  },

  /** Reports its progress in `steps` steps of `stepMs` each. */
  'example.progress': async (parameters, { progress, signal }) => {
    const steps = numberField(parameters, 'steps', 5);
    const stepMs = numberField(parameters, 'stepMs', 200);
    for (let step = 1; step <= steps; step += 1) {
      await delay(stepMs, undefined, { signal });
      progress(step / steps, `step ${step} of ${steps}`);
    }
    return `finished ${steps} steps`;
  },

  /** Writes a CSV result file that `taskq log --download` fetches. */
  'example.export': {
    category: 'export',
    run: async (parameters, { writeResultFile }) => {
      const rows = numberField(parameters, 'rows', 10);
      const lines = ['n,square', ...Array.from({ length: rows }, (_, n) => `${n},${n * n}`)];
      const file = await writeResultFile('export.csv', `${lines.join('\n')}\n`);
      return { type: 'success', message: `exported ${rows} rows`, data: { bytes: file.bytes } };
    },
  },

  /** Enqueues `count` echo tasks as its children. */
  'example.parent': async (parameters, { enqueueChild }) => {
    const count = numberField(parameters, 'count', 2);
    const ids: string[] = [];
    for (let n = 1; n <= count; n += 1)
      ids.push(await enqueueChild('example.echo', { text: `child ${n}` }, { label: `Child ${n}` }));
    return { type: 'info', message: `enqueued ${count} children`, data: { children: ids } };
  },
});
