import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';

import { handlers as examples } from '../../workers/examples/index.js';
import { defineHandlers } from '../../src/tasks/handlers.js';

/** Counts of the runs of each task id in this process, for tests that look for duplicates. */
export const runs = new Map<string, number>();

/** The example handlers plus a few that only tests need. */
export const handlers = defineHandlers({
  ...examples,

  /** Fails its first `failures` attempts, then succeeds. */
  'test.flaky': {
    retry: { limit: 5, delaySeconds: 0.05, backoff: true, maxDelaySeconds: 1 },
    run: (parameters, { attempt }) => {
      const failures = Number((parameters as { failures?: number }).failures ?? 1);
      if (attempt <= failures) throw new Error(`attempt ${attempt} fails on purpose`);
      return `succeeded on attempt ${attempt}`;
    },
  },

  /** Records each run of each task id, and sleeps `ms` when asked. */
  'test.count': async (parameters, { taskId, signal }) => {
    runs.set(taskId, (runs.get(taskId) ?? 0) + 1);
    const ms = Number((parameters as { ms?: number }).ms ?? 0);
    if (ms > 0) await delay(ms, undefined, { signal });
    return 'counted';
  },

  /**
   * Hangs on its first attempt until aborted (or `ms`, a minute by default), and completes on
   * any later one: a task whose first worker dies or is stopped mid-run.
   */
  'test.hang-first': {
    retry: { limit: 0 },
    run: async (parameters, { attempt, signal, writeResultFile }) => {
      if (attempt === 1) {
        const ms = Number((parameters as { ms?: number }).ms ?? 60_000);
        await delay(ms, undefined, { signal });
      }
      await writeResultFile('result.txt', `attempt ${attempt}\n`);
      return `completed on attempt ${attempt}`;
    },
  },

  /** Enqueues the children described by its parameters: a task name, parameters and a queue. */
  'test.parent': async (parameters, { enqueueChild }) => {
    const children =
      (parameters as { children?: { name: string; parameters?: unknown; queue?: string }[] })
        .children ?? [];
    const ids: string[] = [];
    for (const child of children)
      ids.push(await enqueueChild(child.name, child.parameters ?? {}, { queue: child.queue }));
    return { type: 'info', message: `enqueued ${ids.length} children`, data: { children: ids } };
  },

  /**
   * Waits for its AbortSignal (at most `ms`), writes the time it fired to `<markers>/<id>.abort`,
   * then returns success after `lateMs` more: a late report that must change nothing.
   */
  'test.wait-abort': {
    retry: { limit: 0 },
    run: async (parameters, { taskId, signal }) => {
      const { markers, ms = 60_000, lateMs = 0 } = parameters as AbortParameters;
      writeFileSync(path.join(markers, `${taskId}.started`), String(Date.now()));
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, ms);
        signal.addEventListener('abort', () => {
          writeFileSync(path.join(markers, `${taskId}.abort`), String(Date.now()));
          clearTimeout(timer);
          resolve();
        });
      });
      if (lateMs > 0) await delay(lateMs);
      return { type: 'success', message: 'returned after the abort' };
    },
  },

  /** Notes its AbortSignal in `<markers>/<id>.abort` but goes on for `ms` regardless. */
  'test.ignore-abort': {
    retry: { limit: 0 },
    run: async (parameters, { taskId, signal }) => {
      const { markers, ms = 60_000 } = parameters as AbortParameters;
      writeFileSync(path.join(markers, `${taskId}.started`), String(Date.now()));
      signal.addEventListener('abort', () =>
        writeFileSync(path.join(markers, `${taskId}.abort`), String(Date.now())),
      );
      await delay(ms);
      return { type: 'success', message: 'finished, having ignored the abort' };
    },
  },

  /** Returns a report tree with a warning inside: the task still completes. */
  'test.warning': () => ({
    type: 'success',
    message: 'done with a warning',
    children: [{ type: 'warning', message: 'something to look at' }],
  }),

  /** Returns a report tree with an error inside: the task fails without throwing. */
  'test.nested-error': {
    retry: { limit: 0 },
    run: () => ({
      type: 'info',
      message: 'parent',
      children: [{ type: 'error', message: 'a child step failed' }],
    }),
  },

  /** Throws a value that is not an Error. */
  'test.throw-string': {
    retry: { limit: 0 },
    run: () => {
      throw 'a plain string';
    },
  },
});

interface AbortParameters {
  /** A directory where the handler writes its marker files. */
  markers: string;
  ms?: number;
  lateMs?: number;
}

/**
 * A worker process whose id names slot 0 dies as soon as it loads the handlers, when the test
 * asks for it: a crash loop, as a broken deployment or a bad native module would cause.
 */
if (
  process.env.TASKQ_TEST_CRASH_SLOT0 === '1' &&
  /\/w0\.\d+$/.test(process.env.TASKQ_WORKER_ID ?? '')
) {
  process.exit(3);
}
