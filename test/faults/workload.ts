import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';

import pg from 'pg';

import { TaskqClient } from '../../src/client.js';
import type { Runtime } from '../../src/runtime.js';
import { HandlerRegistry } from '../../src/tasks/handlers.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { ROOT } from '../support/paths.js';
import { testConfig, testRuntime } from '../support/runtime.js';
import { supervisorHome } from '../support/supervisor.js';
import { waitFor } from '../support/wait.js';
import { handlers, RUNS_TABLE_SQL } from './handlers.js';

/** Where each scenario leaves its row of the table that `npm run test:faults` prints. */
export const RESULTS_FILE = path.join(ROOT, 'test-artifacts', 'faults.jsonl');
export const FAULT_HANDLERS = path.join(ROOT, 'dist/test/faults/handlers.js');

/** One row of the fault table. */
export interface FaultResult {
  scenario: string;
  tasks: number;
  completed: number;
  duplicates: number;
  lost: number;
  /** From the end of the fault to the first task that completed after it. */
  recoverMs: number | null;
}

/**
 * The known workload of a fault scenario: a database of its own (or the given server's), the
 * runs table, a configuration file for the supervisors, and a runtime in this process that
 * creates the queues and enqueues.
 */
export interface Workload {
  readonly databaseUrl: string;
  readonly runtime: Runtime;
  readonly client: TaskqClient;
  readonly pool: pg.Pool;
  /** The environment of a supervisor or CLI process on this workload. */
  readonly env: NodeJS.ProcessEnv;
  readonly home: string;
  /** Enqueues `count` tasks of `fault.record` and returns their ids. */
  enqueue(count: number, options?: { ms?: number; queue?: string }): Promise<string[]>;
  /** The database's clock, which every timestamp of the task log uses. */
  now(): Promise<Date>;
  /** How many of `ids` recorded a run. */
  recorded(ids: string[]): Promise<number>;
  /** Waits until every one of `ids` is completed in the task log. */
  waitForCompleted(ids: string[], timeoutMs: number): Promise<void>;
  /** Checks the invariant over `ids`, then adds the scenario's row to the table. */
  verify(scenario: string, ids: string[], faultEndedAt: Date | null): Promise<FaultResult>;
  close(): Promise<void>;
}

export async function openWorkload(
  config: Record<string, unknown>,
  options: { serverUrl?: string } = {},
): Promise<Workload> {
  let database: TestDatabase | null = null;
  let databaseUrl = options.serverUrl;
  if (!databaseUrl) {
    database = await createTestDatabase();
    databaseUrl = database.url;
  }
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 3 });
  pool.on('error', () => undefined);
  await pool.query(RUNS_TABLE_SQL);

  const fileConfig = { handlers: FAULT_HANDLERS, ...config };
  const runtime = await testRuntime(await testConfig(databaseUrl, fileConfig), {
    handlers: new HandlerRegistry(handlers),
  });
  const client = new TaskqClient(runtime, 'fault-suite');
  const { home, configFile } = await supervisorHome(fileConfig);
  const env = {
    TASKQ_DATABASE_URL: databaseUrl,
    TASKQ_CONFIG: configFile,
    TASKQ_HOME: path.join(home, 'state'),
    TASKQ_LOG_LEVEL: 'info',
  };

  const one = async <Row extends pg.QueryResultRow>(sql: string, values: unknown[]) =>
    (await pool.query<Row>(sql, values)).rows[0]!;

  return {
    databaseUrl,
    runtime,
    client,
    pool,
    env,
    home,
    enqueue: async (count, { ms = 0, queue } = {}) => {
      const ids: string[] = [];
      for (let from = 0; from < count; from += 1000) {
        const batch = Array.from({ length: Math.min(1000, count - from) }, () => ({
          name: 'fault.record',
          parameters: { ms },
          queue,
        }));
        ids.push(...(await client.enqueueMany(batch)).map((task) => task.id));
      }
      return ids;
    },
    now: async () => (await one<{ now: Date }>('SELECT clock_timestamp() AS now', [])).now,
    recorded: async (ids) =>
      Number(
        (
          await one<{ n: string }>(
            'SELECT count(DISTINCT task_id) AS n FROM fault_runs WHERE task_id = ANY($1::uuid[])',
            [ids],
          )
        ).n,
      ),
    waitForCompleted: async (ids, timeoutMs) => {
      await waitFor(
        `${ids.length} tasks to complete`,
        async () => {
          const { open } = await one<{ open: string }>(
            `SELECT count(*) AS open FROM taskq.tasks
             WHERE id = ANY($1::uuid[]) AND status <> 'completed'`,
            [ids],
          );
          return Number(open) === 0;
        },
        { timeoutMs, intervalMs: 250 },
      ).catch(async (error: Error) => {
        const { rows } = await pool.query(
          `SELECT status, count(*)::int FROM taskq.tasks WHERE id = ANY($1::uuid[])
           GROUP BY status`,
          [ids],
        );
        throw new Error(`${error.message}; statuses: ${JSON.stringify(rows)}`);
      });
    },
    verify: (scenario, ids, faultEndedAt) => verify(pool, scenario, ids, faultEndedAt),
    close: async () => {
      await runtime.close();
      await pool.end();
      await database?.drop();
      await fs.rm(home, { recursive: true, force: true });
    },
  };
}

async function verify(
  pool: pg.Pool,
  scenario: string,
  ids: string[],
  faultEndedAt: Date | null,
): Promise<FaultResult> {
  const { rows } = await pool.query<{
    completed: string;
    runs: string;
    ran: string;
    open: string;
    recovered_at: Date | null;
  }>(
    `SELECT
       (SELECT count(*) FROM taskq.tasks t WHERE t.id = ANY($1::uuid[]) AND t.status = 'completed'
          AND EXISTS (SELECT 1 FROM fault_runs r WHERE r.task_id = t.id)) AS completed,
       (SELECT count(*) FROM fault_runs WHERE task_id = ANY($1::uuid[])) AS runs,
       (SELECT count(DISTINCT task_id) FROM fault_runs WHERE task_id = ANY($1::uuid[])) AS ran,
       (SELECT count(*) FROM taskq.tasks
          WHERE status IN ('enqueued', 'dequeued', 'running')) AS open,
       (SELECT min(recorded_at) FROM fault_runs WHERE recorded_at > $2) AS recovered_at`,
    [ids, faultEndedAt ?? new Date(0)],
  );
  const row = rows[0]!;
  const result: FaultResult = {
    scenario,
    tasks: ids.length,
    completed: Number(row.completed),
    duplicates: Number(row.runs) - Number(row.ran),
    lost: ids.length - Number(row.completed),
    recoverMs:
      faultEndedAt && row.recovered_at
        ? Math.max(0, row.recovered_at.getTime() - faultEndedAt.getTime())
        : null,
  };
  await fs.mkdir(path.dirname(RESULTS_FILE), { recursive: true });
  await fs.appendFile(RESULTS_FILE, `${JSON.stringify(result)}\n`);
  console.log(`# ${scenario}: ${JSON.stringify(result)}`);

  assert.equal(result.lost, 0, `${scenario}: every task completed once at least, with its record`);
  assert.equal(Number(row.open), 0, `${scenario}: no task is left enqueued or running`);
  return result;
}

/**
 * Checks that the workers of a supervisor's `output` told of an outage of their queue once per
 * change of state (unreachable, then reachable again), not once per poll while it lasted. A
 * worker may say it twice, should the queue flap as it comes back.
 */
export function assertOutageLogged(output: string, workers: number): void {
  const count = (text: string) => output.split('\n').filter((line) => line.includes(text)).length;
  const down = count('cannot receive from queue');
  const back = count('queue reachable again');
  console.log(`# outage lines: ${down} unreachable, ${back} reachable again`);
  // What the supervisor and its workers warned of, to tell why should a check fail.
  const warnings = output
    .split('\n')
    .filter((line) => /"level":([4-6]\d)/.test(line))
    .map((line) => line.slice(0, 300))
    .join('\n');
  assert.ok(
    down >= 1 && down <= 2 * workers,
    `one "unreachable" per worker (got ${down})\n${warnings}`,
  );
  assert.ok(back >= 1, `the workers say the queue is back\n${warnings}`);
}
