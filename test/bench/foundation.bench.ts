import { readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import PgBoss from 'pg-boss';

import { TaskqClient, type EnqueueRequest } from '../../src/client.js';
import type { Runtime } from '../../src/runtime.js';
import { exited, startCli } from '../support/cli.js';
import { createTestDatabase } from '../support/database.js';
import { EXAMPLE_HANDLERS } from '../support/paths.js';
import { testConfig, testRuntime } from '../support/runtime.js';
import { waitFor } from '../support/wait.js';
import { percentile, round, type BenchResult } from './types.js';

const TASKS = 20_000;
const BATCH = 1_000;
const SINGLE_ENQUEUES = 3_000;
const IN_FLIGHT = 10;
const LATENCY_RATE_PER_SECOND = 200;
const LATENCY_SECONDS = 10;
const IDLE_SECONDS = 10;

const WORKER_CONFIG = {
  handlers: EXAMPLE_HANDLERS,
  queues: [
    { name: 'bench', broker: { type: 'postgres', receive: BATCH }, weight: 1 },
    { name: 'other', broker: { type: 'postgres' }, weight: 1 },
    { name: 'latency', broker: { type: 'postgres' }, weight: 1 },
  ],
  defaultQueue: 'bench',
  worker: { concurrency: 2 * BATCH },
};

/** The foundation's figures: throughput, enqueue rates, latency and idle cost, each next to pg-boss. */
export async function benchFoundation(figures: Map<string, number>): Promise<BenchResult[]> {
  const database = await createTestDatabase();
  const home = await fs.mkdtemp(path.join(os.tmpdir(), 'taskq-bench-'));
  const configFile = path.join(home, 'taskq.json');
  await fs.writeFile(configFile, JSON.stringify(WORKER_CONFIG));
  const env = {
    TASKQ_DATABASE_URL: database.url,
    TASKQ_CONFIG: configFile,
    TASKQ_HOME: home,
    TASKQ_LOG_LEVEL: 'warn',
  };

  const boss = new PgBoss({
    connectionString: database.url,
    schema: 'bossbench',
    supervise: false,
    schedule: false,
  });
  boss.on('error', () => undefined);
  await boss.start();
  const runtime = await testRuntime(await testConfig(database.url, WORKER_CONFIG));
  const client = new TaskqClient(runtime, 'bench');

  try {
    const results: BenchResult[] = [];
    const bossThroughput = await pgBossThroughput(boss);
    const add = (result: BenchResult) => {
      console.error(
        `  ${result.name}: ${round(result.value)} ${result.unit} (${result.baseline.name}: ${round(result.baseline.value)})`,
      );
      results.push(result);
    };
    const single = await taskqThroughput(runtime, client, env, bossThroughput);
    figures.set('single-worker-rate', single.value);
    add(single);
    for (const result of await enqueueRates(boss, client)) add(result);
    add(await latency(boss, runtime, client, env));
    add(await idleCpu(boss, runtime, env));
    return results;
  } finally {
    await boss.stop({ graceful: false, wait: true });
    await runtime.close();
    await database.drop();
    await fs.rm(home, { recursive: true, force: true });
  }
}

async function completedJobs(boss: PgBoss, queue: string): Promise<number> {
  const rows = await boss
    .getDb()
    .executeSql(
      `SELECT count(*)::int AS n FROM bossbench.job WHERE name = $1 AND state = 'completed'`,
      [queue],
    );
  return (rows.rows[0] as { n: number }).n;
}

async function insertJobs(boss: PgBoss, queue: string, count: number): Promise<void> {
  for (let done = 0; done < count; done += BATCH) {
    await boss.insert(
      Array.from({ length: Math.min(BATCH, count - done) }, () => ({ name: queue, data: {} })),
    );
  }
}

/** pg-boss alone: its best of work() (10 calls, batches of 1,000) and a fetch/complete loop. */
async function pgBossThroughput(boss: PgBoss): Promise<{ name: string; value: number }> {
  await boss.createQueue('work');
  await insertJobs(boss, 'work', TASKS);
  // A new partition has no planner statistics until analyzed; pg-boss's best figure needs them.
  await boss.getDb().executeSql('ANALYZE bossbench.job', []);
  const started = Date.now();
  const workers: string[] = [];
  for (let n = 0; n < 10; n += 1) {
    workers.push(
      await boss.work(
        'work',
        { batchSize: BATCH, pollingIntervalSeconds: 0.5 },
        async () => undefined,
      ),
    );
  }
  await waitFor(
    'pg-boss work() to finish',
    async () => (await completedJobs(boss, 'work')) >= TASKS,
    { timeoutMs: 120_000, intervalMs: 20 },
  );
  const workRate = TASKS / ((Date.now() - started) / 1000);
  for (const id of workers) await boss.offWork({ id } as never);

  await boss.createQueue('loop');
  await insertJobs(boss, 'loop', TASKS);
  await boss.getDb().executeSql('ANALYZE bossbench.job', []);
  const loopStarted = Date.now();
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      for (;;) {
        const jobs = await boss.fetch('loop', { batchSize: BATCH });
        if (jobs.length === 0) return;
        await boss.complete(
          'loop',
          jobs.map((job) => job.id),
        );
      }
    }),
  );
  const loopRate = TASKS / ((Date.now() - loopStarted) / 1000);
  console.error(`pg-boss: work() ${round(workRate)}/s, fetch+complete loop ${round(loopRate)}/s`);
  return workRate >= loopRate
    ? { name: 'pg-boss work()', value: workRate }
    : { name: 'pg-boss fetch+complete', value: loopRate };
}

async function countStatus(
  runtime: Runtime,
  status: string,
  name = 'example.noop',
): Promise<number> {
  const { rows } = await runtime.db.pool.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM taskq.tasks WHERE status = $1 AND name = $2`,
    [status, name],
  );
  return rows[0]!.n;
}

async function startWorker(env: NodeJS.ProcessEnv, args: string[] = []) {
  const worker = startCli(['worker', ...args], { env: { ...env, TASKQ_LOG_LEVEL: 'info' } });
  await waitFor(
    'the bench worker to run',
    () => worker.output().includes('"msg":"worker running"'),
    { timeoutMs: 30_000 },
  );
  return worker;
}

async function stopWorker(worker: ReturnType<typeof startCli>): Promise<void> {
  worker.kill('SIGTERM');
  await exited(worker);
}

/** 20,000 no-op tasks through one `taskq worker` process, the task log and reports included. */
async function taskqThroughput(
  runtime: Runtime,
  client: TaskqClient,
  env: NodeJS.ProcessEnv,
  baseline: { name: string; value: number },
): Promise<BenchResult> {
  const requests: EnqueueRequest[] = Array.from({ length: BATCH }, () => ({
    name: 'example.noop',
    queue: 'bench',
  }));
  for (let done = 0; done < TASKS; done += BATCH) await client.enqueueMany(requests);
  await runtime.db.pool.query('ANALYZE');

  const worker = await startWorker(env);
  const started = Date.now();
  await waitFor(
    'the worker to finish',
    async () => (await countStatus(runtime, 'completed')) >= TASKS,
    { timeoutMs: 180_000, intervalMs: 20 },
  );
  const rate = TASKS / ((Date.now() - started) / 1000);
  await stopWorker(worker);
  return {
    name: `${TASKS} no-op tasks, one taskq worker, postgres broker`,
    value: rate,
    unit: 'tasks/s',
    baseline,
    target: '>= 60% of baseline',
    pass: rate >= 0.6 * baseline.value,
  };
}

async function inFlight(count: number, once: () => Promise<unknown>): Promise<number> {
  let next = 0;
  const started = Date.now();
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (next < count) {
        next += 1;
        await once();
      }
    }),
  );
  return count / ((Date.now() - started) / 1000);
}

async function enqueueRates(boss: PgBoss, client: TaskqClient): Promise<BenchResult[]> {
  await boss.createQueue('send');
  const sendRate = await inFlight(SINGLE_ENQUEUES, () => boss.send('send', {}));
  const enqueueRate = await inFlight(SINGLE_ENQUEUES, () =>
    client.enqueue('example.noop', {}, { queue: 'other' }),
  );

  const batches = TASKS / BATCH;
  const insertStarted = Date.now();
  await insertJobs(boss, 'send', TASKS);
  const insertRate = TASKS / ((Date.now() - insertStarted) / 1000);
  const requests: EnqueueRequest[] = Array.from({ length: BATCH }, () => ({
    name: 'example.noop',
    queue: 'other',
  }));
  const manyStarted = Date.now();
  for (let n = 0; n < batches; n += 1) await client.enqueueMany(requests);
  const manyRate = TASKS / ((Date.now() - manyStarted) / 1000);

  return [
    {
      name: `enqueue one at a time, ${IN_FLIGHT} in flight, task-log row included`,
      value: enqueueRate,
      unit: 'tasks/s',
      baseline: { name: 'pg-boss send()', value: sendRate },
      target: '>= 70% of baseline',
      pass: enqueueRate >= 0.7 * sendRate,
    },
    {
      name: `enqueueMany in batches of ${BATCH}, task-log rows included`,
      value: manyRate,
      unit: 'tasks/s',
      baseline: { name: 'pg-boss insert()', value: insertRate },
      target: '>= 60% of baseline',
      pass: manyRate >= 0.6 * insertRate,
    },
  ];
}

async function paced(total: number, once: (n: number) => Promise<void>): Promise<void> {
  const started = Date.now();
  const pending: Promise<void>[] = [];
  for (let n = 0; n < total; n += 1) {
    const due = started + (n * 1000) / LATENCY_RATE_PER_SECOND;
    const wait = due - Date.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    pending.push(once(n));
  }
  await Promise.all(pending);
}

/** Enqueue-to-start latency at a steady 200 tasks a second. */
async function latency(
  boss: PgBoss,
  runtime: Runtime,
  client: TaskqClient,
  env: NodeJS.ProcessEnv,
): Promise<BenchResult> {
  const total = LATENCY_RATE_PER_SECOND * LATENCY_SECONDS;

  await boss.createQueue('latency');
  const bossLatencies: number[] = [];
  const workId = await boss.work<{ t: number }>(
    'latency',
    { batchSize: 200, pollingIntervalSeconds: 0.5 },
    async (jobs) => {
      for (const job of jobs) bossLatencies.push(Date.now() - job.data.t);
    },
  );
  await paced(total, async () => void (await boss.send('latency', { t: Date.now() })));
  await waitFor('pg-boss to start every job', () => bossLatencies.length >= total, {
    timeoutMs: 60_000,
  });
  await boss.offWork({ id: workId } as never);

  await runtime.db.pool.query(`DELETE FROM taskq.tasks WHERE name = 'example.echo'`);
  const worker = await startWorker(env, ['--queue=latency', '--concurrency=50']);
  await paced(
    total,
    async () => void (await client.enqueue('example.echo', {}, { queue: 'latency' })),
  );
  await waitFor(
    'every task to complete',
    async () => (await countStatus(runtime, 'completed', 'example.echo')) >= total,
    {
      timeoutMs: 60_000,
    },
  );
  await stopWorker(worker);
  const { rows } = await runtime.db.pool.query<{ ms: number }>(
    `SELECT extract(epoch FROM started_at - created_at) * 1000 AS ms FROM taskq.tasks WHERE name = 'example.echo' AND attempts = 1`,
  );
  const taskq = rows.map((row) => Number(row.ms)).sort((a, b) => a - b);
  const pgboss = bossLatencies.sort((a, b) => a - b);
  const [p50, p99] = [percentile(taskq, 50), percentile(taskq, 99)];
  console.error(
    `latency: taskq p50 ${round(p50)} ms p99 ${round(p99)} ms; pg-boss p50 ${percentile(pgboss, 50)} ms p99 ${percentile(pgboss, 99)} ms`,
  );
  return {
    name: `enqueue-to-start p99 at ${LATENCY_RATE_PER_SECOND}/s (p50 ${round(p50)} ms)`,
    value: p99,
    unit: 'ms',
    baseline: {
      name: `pg-boss work() p99 (p50 ${percentile(pgboss, 50)} ms)`,
      value: percentile(pgboss, 99),
    },
    target: 'p50 < 5 ms and p99 < 20 ms',
    pass: p50 < 5 && p99 < 20,
  };
}

function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  // utime and stime are fields 14 and 15 of the line, 12 and 13 after the command name.
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** CPU used by a worker whose queues are all empty, next to pg-boss's work() on the same queues. */
async function idleCpu(
  boss: PgBoss,
  runtime: Runtime,
  env: NodeJS.ProcessEnv,
): Promise<BenchResult> {
  // The enqueue figures leave tasks on queue "other": an idle worker must find every queue empty.
  await runtime.db.pool.query(`DELETE FROM pgboss.job`);
  await runtime.db.pool.query(
    `UPDATE taskq.tasks SET status = 'cancelled' WHERE status IN ('enqueued', 'running')`,
  );
  const baselineIds: string[] = [];
  for (const queue of ['idle_a', 'idle_b']) {
    await boss.createQueue(queue);
    baselineIds.push(
      await boss.work(queue, { pollingIntervalSeconds: 0.5 }, async () => undefined),
    );
  }
  const bossBefore = process.cpuUsage();
  await new Promise((resolve) => setTimeout(resolve, IDLE_SECONDS * 1000));
  const bossUsage = process.cpuUsage(bossBefore);
  for (const id of baselineIds) await boss.offWork({ id } as never);
  const bossPercent = ((bossUsage.user + bossUsage.system) / 1e6 / IDLE_SECONDS) * 100;

  const worker = await startWorker(env);
  await new Promise((resolve) => setTimeout(resolve, 2000));
  const before = cpuSeconds(worker.pid!);
  await new Promise((resolve) => setTimeout(resolve, IDLE_SECONDS * 1000));
  const percent = ((cpuSeconds(worker.pid!) - before) / IDLE_SECONDS) * 100;
  await stopWorker(worker);
  return {
    name: 'idle worker, every queue empty, CPU of one core',
    value: percent,
    unit: '%',
    baseline: { name: 'pg-boss work() on 2 queues (bench process)', value: bossPercent },
    target: '< 2%',
    pass: percent < 2,
  };
}
