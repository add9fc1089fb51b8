import os from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';

import { TaskqClient, type EnqueueRequest } from '../../src/client.js';
import type { Runtime } from '../../src/runtime.js';
import { TASK_NAMES } from '../metrics/handlers.js';
import { createHome, startFleet, type SupervisorProcess } from '../metrics/supervisor-process.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { ROOT } from '../support/paths.js';
import { testConfig, testRuntime } from '../support/runtime.js';
import { waitFor } from '../support/wait.js';
import { percentile, round, type BenchResult } from './types.js';

const WORKERS = 8;
const QUEUES = Array.from({ length: 10 }, (_, n) => `q${n}`);
const SCRAPES = 300;
/**
 * No-op tasks per throughput round. Rounds alternate off, on, on, off, so that a drift in the
 * machine's load weighs on both sides alike, and each side is rated by its median round.
 */
const TASKS_PER_ROUND = 20_000;
const ROUND_ORDER = [false, true, true, false, false, true, true, false];
/**
 * How often the rounds with metrics on are scraped: three times as often as the 15 s of the
 * scrape job in grafana/README.md. A scrape costs the fleet CPU (each worker collects its
 * process metrics), so at 1 s on a 2-core machine it alone would cost a few percent.
 */
const SCRAPE_INTERVAL_MS = 5000;

/** 10 queues, the 50 task names spread over them. */
function benchConfig(metricsEnabled: boolean): Record<string, unknown> {
  return {
    handlers: path.join(ROOT, 'dist/test/metrics/handlers.js'),
    queues: QUEUES.map((name) => ({ name, broker: { type: 'postgres', receive: 100 } })),
    defaultQueue: QUEUES[0],
    associations: Object.fromEntries(
      TASK_NAMES.map((name, n) => [name, QUEUES[n % QUEUES.length]]),
    ),
    worker: { concurrency: 100 },
    metrics: { enabled: metricsEnabled },
  };
}

/** The metrics' figures: how long a scrape of a full fleet takes, and what counting costs. */
export async function benchMetrics(): Promise<BenchResult[]> {
  const database = await createTestDatabase();
  const runtime = await testRuntime(await testConfig(database.url, benchConfig(true)));
  try {
    const client = new TaskqClient(runtime, 'bench');
    const scrape = await scrapeLatency(database, runtime, client);
    const throughput = await throughputCost(database, runtime, client);
    for (const result of [scrape, throughput])
      console.error(`  ${result.name}: ${round(result.value)} ${result.unit}`);
    return [scrape, throughput];
  } finally {
    await runtime.close();
    await database.drop();
  }
}

async function untilIdle(runtime: Runtime): Promise<void> {
  const count = async (statuses: string[]) => {
    const { rows } = await runtime.db.pool.query<{ status: string; n: number }>(
      `SELECT status, count(*)::int AS n FROM taskq.tasks WHERE status = ANY($1) GROUP BY status`,
      [statuses],
    );
    return rows;
  };
  try {
    await waitFor(
      'every task to finish',
      async () => (await count(['enqueued', 'running'])).length === 0,
      {
        timeoutMs: 300_000,
        intervalMs: 50,
      },
    );
  } catch (error) {
    const left = await count(['enqueued', 'dequeued', 'running', 'child_running']);
    throw new Error(`${(error as Error).message}; left: ${JSON.stringify(left)}`, { cause: error });
  }
}

/** Scrapes every `intervalMs` until `stop()`, which throws the error of a failed scrape. */
function scrapeEvery(supervisor: SupervisorProcess, intervalMs: number): { stop(): Promise<void> } {
  const stopped = new AbortController();
  const loop = (async () => {
    while (!stopped.signal.aborted) {
      await supervisor.scrape();
      await delay(intervalMs, undefined, { signal: stopped.signal }).catch(() => undefined);
    }
  })();
  // Seen by stop(); until then a failed scrape must not end the process.
  loop.catch(() => undefined);
  return {
    stop: async () => {
      stopped.abort();
      await loop;
    },
  };
}

async function withFleet<T>(
  database: TestDatabase,
  metricsEnabled: boolean,
  body: (supervisor: SupervisorProcess) => Promise<T>,
): Promise<T> {
  const home = await createHome(database.url, benchConfig(metricsEnabled));
  const supervisor = await startFleet({ home, workers: WORKERS });
  try {
    return await body(supervisor);
  } finally {
    await supervisor.stop();
    await home.remove();
  }
}

async function latencies(url: string, count: number): Promise<number[]> {
  const times: number[] = [];
  for (let n = 0; n < count; n += 1) {
    const started = performance.now();
    const response = await fetch(url);
    await response.text();
    if (!response.ok) throw new Error(`GET ${url}: ${response.status}`);
    times.push(performance.now() - started);
  }
  return times.sort((a, b) => a - b);
}

/**
 * GET /metrics of 8 workers that have each run tasks of all 50 names on 10 queues, some of them
 * failing, and enqueued children of each: every series the fleet can have.
 */
async function scrapeLatency(
  database: TestDatabase,
  runtime: Runtime,
  client: TaskqClient,
): Promise<BenchResult> {
  return withFleet(database, true, async (supervisor) => {
    const requests: EnqueueRequest[] = [
      ...Array.from({ length: 40 }, () => ({ name: 'metrics.fanout' })),
      ...Array.from({ length: 40 }, () => ({ name: 'example.fail', queue: 'q1' })),
    ];
    await client.enqueueMany(requests);
    await untilIdle(runtime);
    await latencies(`${supervisor.url}/metrics`, 10);
    const page = await supervisor.scrape();

    const scrapes = await latencies(`${supervisor.url}/metrics`, SCRAPES);
    const health = await latencies(`${supervisor.url}/healthz`, SCRAPES);
    const p99 = percentile(scrapes, 99);
    console.error(
      `scrape: ${page.samples.length} samples; p50 ${round(percentile(scrapes, 50))} ms, p99 ${round(p99)} ms; load average ${os.loadavg()[0]!.toFixed(1)} on ${os.availableParallelism()} CPUs`,
    );
    return {
      name: `GET /metrics, ${WORKERS} workers, ${QUEUES.length} queues, ${TASK_NAMES.length} task names, p99 of ${SCRAPES}`,
      value: p99,
      unit: 'ms',
      baseline: { name: 'GET /healthz p99', value: percentile(health, 99) },
      target: 'p99 < 50 ms',
      pass: p99 < 50,
    };
  });
}

/** Tasks a second through the fleet, from SIGCONT to the last task done. */
async function roundRate(
  database: TestDatabase,
  runtime: Runtime,
  client: TaskqClient,
  metricsEnabled: boolean,
): Promise<number> {
  // Every round starts from empty tables, or each would run slower than the one before.
  await runtime.db.pool.query('TRUNCATE taskq.tasks, taskq.events, pgboss.job');
  await runtime.db.pool.query('VACUUM ANALYZE taskq.tasks');
  return withFleet(database, metricsEnabled, async (supervisor) => {
    supervisor.signal('SIGUSR2');
    await waitFor('the fleet to pause', async () => (await supervisor.health()).paused);
    const names = TASK_NAMES.map((name) => ({ name }));
    for (let done = 0; done < TASKS_PER_ROUND; done += names.length * 20)
      await client.enqueueMany(Array.from({ length: 20 }, () => names).flat());
    await runtime.db.pool.query('ANALYZE');

    const scraper = metricsEnabled ? scrapeEvery(supervisor, SCRAPE_INTERVAL_MS) : null;
    const started = performance.now();
    supervisor.signal('SIGCONT');
    await untilIdle(runtime);
    const seconds = (performance.now() - started) / 1000;
    await scraper?.stop();
    return TASKS_PER_ROUND / seconds;
  });
}

/** The same no-op workload through the same fleet, metrics off and on, in alternating rounds. */
async function throughputCost(
  database: TestDatabase,
  runtime: Runtime,
  client: TaskqClient,
): Promise<BenchResult> {
  const rates = { on: [] as number[], off: [] as number[] };
  for (const enabled of ROUND_ORDER) {
    const rate = await roundRate(database, runtime, client, enabled);
    (enabled ? rates.on : rates.off).push(rate);
    console.error(
      `throughput, metrics ${enabled ? 'on' : 'off'}: ${round(rate)} tasks/s; load average ${os.loadavg()[0]!.toFixed(1)}`,
    );
  }
  const on = median(rates.on);
  const off = median(rates.off);
  return {
    name: `no-op tasks, ${WORKERS} workers, metrics on and scraped every ${SCRAPE_INTERVAL_MS / 1000} s, median of ${rates.on.length}`,
    value: on,
    unit: 'tasks/s',
    baseline: { name: `metrics off, median of ${rates.off.length}`, value: off },
    target: '>= 95% of baseline',
    pass: on >= 0.95 * off,
  };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length / 2;
  return Number.isInteger(middle)
    ? (sorted[middle - 1]! + sorted[middle]!) / 2
    : sorted[Math.floor(middle)]!;
}
