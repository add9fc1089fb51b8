import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import { TaskqClient } from '../../src/client.js';
import type { Runtime } from '../../src/runtime.js';
import { Worker } from '../../src/worker/worker.js';
import { runCli } from '../support/cli.js';
import { createTestDatabase } from '../support/database.js';
import { EXAMPLE_HANDLERS } from '../support/paths.js';
import { testConfig, testRuntime } from '../support/runtime.js';
import { waitFor } from '../support/wait.js';
import { percentile, type BenchResult } from './types.js';

const ROWS = 1_000_000;
const ARCHIVED = 100_000;
const THROUGHPUT_TASKS = 4_000;
const RUNS = 15;
const CONFIG = {
  handlers: EXAMPLE_HANDLERS,
  queues: [
    { name: 'default', broker: { type: 'postgres', receive: 100 } },
    { name: 'other', broker: { type: 'postgres' } },
  ],
  worker: { concurrency: 100 },
};

/**
 * The operations' figures on a task log of a million rows: the stuck summary and the listing
 * (query functions and the CLI end to end, next to a bare SELECT of the newest 20 rows), and a
 * worker's throughput while 100,000 tasks are archived, next to its throughput alone.
 */
export async function benchOperations(): Promise<BenchResult[]> {
  const database = await createTestDatabase();
  const home = await fs.mkdtemp(path.join(os.tmpdir(), 'taskq-bench-ops-'));
  const configFile = path.join(home, 'taskq.json');
  await fs.writeFile(configFile, JSON.stringify(CONFIG));
  const runtime = await testRuntime(await testConfig(database.url, CONFIG));
  const env = {
    TASKQ_DATABASE_URL: database.url,
    TASKQ_CONFIG: configFile,
    TASKQ_HOME: home,
    TASKQ_LOG_LEVEL: 'warn',
  };
  try {
    await fill(runtime);
    const pool = runtime.db.pool;
    const bare = await median(() =>
      pool.query('SELECT id, name, status FROM taskq.tasks ORDER BY created_at DESC LIMIT 20'),
    );
    const results: BenchResult[] = [];
    const queryTarget = (name: string, value: number): BenchResult => ({
      name,
      value,
      unit: 'ms',
      baseline: { name: 'bare SELECT newest 20', value: bare },
      target: '< 200 ms',
      pass: value < 200,
    });
    const stuck = await median(() => runtime.queries.stuck({ queue: 'default', ageSeconds: 300 }));
    results.push(queryTarget('stuck summary query, 1M-row task log', stuck));
    const list = await median(() => runtime.queries.list({ limit: 20, offset: 0 }));
    results.push(queryTarget('log --available query, 1M-row task log', list));
    const failed = await median(() =>
      runtime.queries.list({ limit: 20, offset: 0, status: ['failed'], sort: 'updated' }),
    );
    results.push(queryTarget('log --available --status=failed --sort=updated query', failed));

    const cli = (args: string[]) => median(() => runCli(args, { env }).then(ok), 5);
    const cliBaseline = await cli(['log', '--stats', '--owner=nobody']);
    for (const [name, args] of [
      ['CLI stuck summary end to end', ['stuck', 'summary', '--queue=default', '--json']],
      ['CLI log --available end to end', ['log', '--available', '--json']],
    ] as const) {
      const value = await cli([...args]);
      results.push({
        name,
        value,
        unit: 'ms',
        baseline: { name: 'CLI log --stats --owner=nobody', value: cliBaseline },
        target: '< baseline + 200 ms',
        pass: value < cliBaseline + 200,
      });
    }
    await printPlans(runtime);
    results.push(await archiveThroughput(runtime));
    return results;
  } finally {
    await runtime.close();
    await database.drop();
    await fs.rm(home, { recursive: true, force: true });
  }
}

/** A million tasks: mostly finished, 0.5% stuck in the active statuses, over two queues. */
async function fill(runtime: Runtime): Promise<void> {
  console.error(`  inserting ${ROWS} task-log rows ...`);
  await runtime.db.pool.query(
    `INSERT INTO taskq.tasks (id, name, queue, parameters, label, owner, category, status,
                              max_attempts, attempts, created_at, updated_at, finished_at)
     SELECT gen_random_uuid(), 'bench.task' || (n % 50), CASE WHEN n % 3 = 0 THEN 'other' ELSE 'default' END,
            '{}', 'label ' || n, 'owner' || (n % 10), 'export',
            s.status, 1, 1, t.at, t.at,
            CASE WHEN s.status IN ('completed', 'failed') THEN t.at END
     FROM generate_series(1, $1::int) AS n,
          LATERAL (SELECT now() - (($1::int - n) * interval '1 second') AS at) AS t,
          LATERAL (SELECT CASE WHEN n % 200 = 0 THEN (ARRAY['enqueued', 'running'])[1 + n % 2]
                               WHEN n % 50 = 0 THEN 'failed' ELSE 'completed' END AS status) AS s`,
    [ROWS],
  );
  await runtime.db.pool.query('ANALYZE taskq.tasks');
}

async function median(run: () => Promise<unknown>, runs = RUNS): Promise<number> {
  await run();
  const times: number[] = [];
  for (let n = 0; n < runs; n += 1) {
    const started = performance.now();
    await run();
    times.push(performance.now() - started);
  }
  return percentile(
    times.sort((a, b) => a - b),
    50,
  );
}

function ok(result: { code: number | null; stderr: string }): void {
  if (result.code !== 0) throw new Error(`the CLI failed: ${result.stderr}`);
}

/** The plans of the two queries, as the final report of the bench shows them. */
async function printPlans(runtime: Runtime): Promise<void> {
  const explain = async (title: string, sql: string, values: unknown[]) => {
    const { rows } = await runtime.db.pool.query<{ 'QUERY PLAN': string }>(
      `EXPLAIN (ANALYZE, BUFFERS) ${sql}`,
      values,
    );
    console.error(
      `\n  plan: ${title}\n${rows.map((row) => `    ${row['QUERY PLAN']}`).join('\n')}`,
    );
  };
  await explain(
    'stuck summary',
    `SELECT id, name, status, worker FROM taskq.tasks
     WHERE queue = $1 AND status IN ('enqueued', 'dequeued', 'running') AND status = ANY($2::text[])
       AND updated_at < now() - $3 * interval '1 second'
       AND ($4::text[] IS NULL OR name = ANY($4::text[])) AND ($5::text IS NULL OR owner = $5)
     ORDER BY updated_at LIMIT 1000`,
    ['default', ['enqueued', 'dequeued', 'running'], 300, null, null],
  );
  await explain(
    'log --available (page)',
    'SELECT id, name, status FROM taskq.tasks ORDER BY created_at DESC, id DESC LIMIT 20 OFFSET 0',
    [],
  );
  await explain(
    'log --available (capped count)',
    'SELECT count(*) FROM (SELECT 1 FROM taskq.tasks LIMIT $1) AS page',
    [10_001],
  );
  await explain(
    'log --available --status=failed',
    `SELECT id FROM taskq.tasks WHERE status = ANY($1::text[])
     ORDER BY created_at DESC, id DESC LIMIT 20`,
    [['failed']],
  );
}

/** Tasks a second for one worker running no-op tasks, with or without a big archive beside it. */
async function throughput(runtime: Runtime, beside?: () => Promise<unknown>): Promise<number> {
  const client = new TaskqClient(runtime, 'bench');
  const requests = Array.from({ length: THROUGHPUT_TASKS }, () => ({
    name: 'example.noop',
    parameters: {},
  }));
  for (let start = 0; start < requests.length; start += 1000)
    await client.enqueueMany(requests.slice(start, start + 1000));
  let done = 0;
  const worker = new Worker(runtime, { id: `w-bench-${Date.now()}`, queues: ['default'] });
  worker.on('task-ended', () => (done += 1));
  const started = performance.now();
  const running = worker.run();
  const side = beside?.();
  await waitFor('the tasks', () => done >= THROUGHPUT_TASKS, {
    timeoutMs: 600_000,
    intervalMs: 20,
  });
  const seconds = (performance.now() - started) / 1000;
  await worker.stop();
  await running;
  await side;
  return THROUGHPUT_TASKS / seconds;
}

async function archiveThroughput(runtime: Runtime): Promise<BenchResult> {
  const alone = await throughput(runtime);
  let archived = 0;
  const during = await throughput(runtime, async () => {
    archived = await runtime.queries.archiveAllFinished({
      owner: 'owner1',
      batchSize: 1000,
      actor: 'bench',
    });
  });
  console.error(`  archived ${archived} finished tasks of owner1 beside the worker`);
  return {
    name: 'worker throughput while archiving',
    value: during,
    unit: 'tasks/s',
    baseline: { name: 'worker alone', value: alone },
    target: '>= 70% of baseline',
    pass: during >= 0.7 * alone && archived >= ARCHIVED * 0.9,
  };
}
