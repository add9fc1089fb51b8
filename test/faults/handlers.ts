import { setTimeout as delay } from 'node:timers/promises';

import pg from 'pg';

import { defineHandlers } from '../../src/tasks/handlers.js';
import { handlers as testHandlers } from '../support/handlers.js';

/**
 * The handlers of the fault suite: `fault.record`, the known workload, writes a row of its own
 * for every run that gets to its end, in a table apart from the task log, so that the suite
 * counts completions and duplicate runs without trusting the task log; the others misbehave on
 * purpose.
 */

let pool: pg.Pool | null = null;

/** The workload's table, in the database the worker uses (TASKQ_DATABASE_URL). */
function records(): pg.Pool {
  if (!pool) {
    pool = new pg.Pool({ connectionString: process.env.TASKQ_DATABASE_URL, max: 4 });
    pool.on('error', () => undefined);
  }
  return pool;
}

export const RUNS_TABLE_SQL = `CREATE TABLE IF NOT EXISTS fault_runs (
  task_id uuid NOT NULL,
  attempt int NOT NULL,
  pid int NOT NULL,
  recorded_at timestamptz NOT NULL DEFAULT clock_timestamp()
)`;

export const handlers = defineHandlers({
  ...testHandlers,

  /** Sleeps `ms`, then records that this run of the task got to its end. */
  'fault.record': {
    // A database that is away for a while fails the record; the task tries again.
    retry: { limit: 30, delaySeconds: 0.2, backoff: true, maxDelaySeconds: 2 },
    run: async (parameters, { taskId, attempt }) => {
      const ms = Number((parameters as { ms?: number }).ms ?? 0);
      if (ms > 0) await delay(ms);
      await records().query('INSERT INTO fault_runs (task_id, attempt, pid) VALUES ($1, $2, $3)', [
        taskId,
        attempt,
        process.pid,
      ]);
      return 'recorded';
    },
  },

  /** Never returns and never looks at its signal. */
  'fault.hang': {
    timeoutSeconds: 1,
    retry: { limit: 0 },
    run: () => new Promise(() => {}),
  },

  /** Holds on to ever more memory until its process runs out. */
  'fault.exhaust-memory': {
    retry: { limit: 0 },
    run: async () => {
      const hoard: number[][] = [];
      for (;;) {
        hoard.push(Array.from({ length: 1_000_000 }, (_, i) => i));
        await delay(1);
      }
    },
  },

  /** Throws the value its parameters name, none of them an Error. */
  'fault.throw': {
    retry: { limit: 0 },
    run: (parameters) => {
      const kind = (parameters as { kind: string }).kind;
      const values: Record<string, unknown> = {
        string: 'a plain string',
        number: 42,
        null: null,
        undefined: undefined,
        object: { reason: 'an object' },
        symbol: Symbol('a symbol'),
      };
      throw values[kind];
    },
  },

  /** Ends its own process with the code its parameters give. */
  'fault.exit': {
    retry: { limit: 0 },
    run: (parameters) => process.exit(Number((parameters as { code?: number }).code ?? 0)),
  },

  /** Writes a result file of `bytes` bytes. */
  'fault.result-file': {
    retry: { limit: 0 },
    run: async (parameters, { writeResultFile }) => {
      const bytes = Number((parameters as { bytes: number }).bytes);
      const file = await writeResultFile('result.bin', new Uint8Array(bytes).fill(7));
      return { type: 'success', message: `wrote ${file.bytes} bytes` };
    },
  },
});
