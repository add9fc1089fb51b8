import fs from 'node:fs/promises';

import { createTestDatabase } from '../support/database.js';
import { TEST_HANDLERS } from '../support/paths.js';
import { testConfig, testRuntime } from '../support/runtime.js';
import { startSupervisor, supervisorHome } from '../support/supervisor.js';
import { percentile, round, type BenchResult } from './types.js';

const ROWS = 1_000_000;
const LATENCY_REQUESTS = 500;
const RATE_PER_SECOND = 500;
const RATE_SECONDS = 10;
const TOKEN = 'bench-admin-token-000001';
const PAGE_FILES = ['/ui/app.js', '/ui/api.js', '/ui/view.js', '/ui/style.css'];

/** The REST API's figures: a page of a million-row task log, a sustained rate, the page weight. */
export async function benchApi(): Promise<BenchResult[]> {
  const database = await createTestDatabase();
  const config = await testConfig(database.url);
  const runtime = await testRuntime(config);
  const { home, configFile } = await supervisorHome({
    handlers: TEST_HANDLERS,
    queues: [{ name: 'default', broker: 'postgres' }],
    http: { tokens: [{ token: TOKEN, owner: 'bench', role: 'admin' }] },
  });
  try {
    await fillTaskLog(runtime.db.pool);
    const supervisor = await startSupervisor(['--workers=1'], {
      TASKQ_DATABASE_URL: database.url,
      TASKQ_CONFIG: configFile,
      TASKQ_HOME: home,
    });
    try {
      const list = `${supervisor.url}/api/v1/tasks?limit=50`;
      const health = `${supervisor.url}/healthz`;
      await latencies(list, 50);
      const listTimes = await latencies(list, LATENCY_REQUESTS);
      const healthTimes = await latencies(health, LATENCY_REQUESTS);
      const listRate = await sustained(list);
      const healthRate = await sustained(health);
      const page = await pageWeight(supervisor.url);
      const p99 = percentile(listTimes, 99);
      console.error(
        `  list p50 ${round(percentile(listTimes, 50))} ms, p99 ${round(p99)} ms; ` +
          `rate ${round(listRate.rate)}/s with ${listRate.errors} errors, p99 ${round(listRate.p99)} ms`,
      );
      return [
        {
          name: `GET /api/v1/tasks?limit=50, ${ROWS} tasks in the log, p99 of ${LATENCY_REQUESTS}`,
          value: p99,
          unit: 'ms',
          baseline: { name: 'GET /healthz p99', value: percentile(healthTimes, 99) },
          target: 'p99 < 50 ms',
          pass: p99 < 50,
        },
        {
          name: `GET /api/v1/tasks?limit=50 at ${RATE_PER_SECOND}/s for ${RATE_SECONDS} s, served rate`,
          value: listRate.rate,
          unit: 'req/s',
          baseline: { name: 'GET /healthz at the same rate', value: healthRate.rate },
          target: `>= ${RATE_PER_SECOND * 0.98}/s, no errors`,
          pass: listRate.rate >= RATE_PER_SECOND * 0.98 && listRate.errors === 0,
        },
        {
          name: 'web page first load: JavaScript and CSS',
          value: page.scripts / 1024,
          unit: 'KB',
          baseline: { name: 'the HTML page itself', value: page.html / 1024 },
          target: '< 200 KB',
          pass: page.scripts < 200 * 1024,
        },
      ];
    } finally {
      await supervisor.stop();
    }
  } finally {
    await runtime.close();
    await database.drop();
    await fs.rm(home, { recursive: true, force: true });
  }
}

/** A million finished tasks, one statement, spread over the last 30 days. */
async function fillTaskLog(pool: import('pg').Pool): Promise<void> {
  const started = performance.now();
  await pool.query(
    `INSERT INTO taskq.tasks (id, name, queue, parameters, label, owner, status, max_attempts,
                              attempts, report, created_at, updated_at, started_at, finished_at)
     SELECT gen_random_uuid(), 'example.echo', 'default', '{}'::jsonb, 'Task ' || n,
            'owner' || (n % 50), (ARRAY['completed', 'failed', 'cancelled'])[1 + n % 3], 4, 1,
            '{"type": "success", "message": "done", "children": []}'::jsonb,
            now() - (n || ' seconds')::interval * 2.5, now() - (n || ' seconds')::interval * 2.5,
            now() - (n || ' seconds')::interval * 2.5, now() - (n || ' seconds')::interval * 2.5
     FROM generate_series(1, $1) AS n`,
    [ROWS],
  );
  await pool.query('VACUUM ANALYZE taskq.tasks');
  // The fill passes the whole table through the WAL; without a checkpoint here, the server may
  // write it out during the measurements. Not every role may ask for one; the figures do not
  // depend on it for their correctness, only for their noise.
  await pool.query('CHECKPOINT').catch(() => undefined);
  console.error(`  ${ROWS} tasks written in ${round((performance.now() - started) / 1000)} s`);
}

async function get(url: string): Promise<number> {
  const response = await fetch(url, { headers: { authorization: `Bearer ${TOKEN}` } });
  await response.arrayBuffer();
  return response.status;
}

async function latencies(url: string, count: number): Promise<number[]> {
  const times: number[] = [];
  for (let n = 0; n < count; n += 1) {
    const started = performance.now();
    const status = await get(url);
    if (status !== 200) throw new Error(`GET ${url}: ${status}`);
    times.push(performance.now() - started);
  }
  return times.sort((a, b) => a - b);
}

/** Starts RATE_PER_SECOND requests a second, each on schedule, and counts what completed. */
async function sustained(url: string): Promise<{ rate: number; errors: number; p99: number }> {
  const total = RATE_PER_SECOND * RATE_SECONDS;
  const interval = 1000 / RATE_PER_SECOND;
  const started = performance.now();
  const pending: Promise<void>[] = [];
  const times: number[] = [];
  let errors = 0;
  for (let n = 0; n < total; n += 1) {
    const due = started + n * interval;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait));
    const sent = performance.now();
    pending.push(
      get(url).then(
        (status) => {
          if (status === 200) times.push(performance.now() - sent);
          else errors += 1;
        },
        () => void (errors += 1),
      ),
    );
  }
  await Promise.all(pending);
  const seconds = (performance.now() - started) / 1000;
  return {
    rate: times.length / seconds,
    errors,
    p99: percentile(
      times.sort((a, b) => a - b),
      99,
    ),
  };
}

async function pageWeight(base: string): Promise<{ html: number; scripts: number }> {
  const bytes = async (path: string) =>
    (await (await fetch(`${base}${path}`)).arrayBuffer()).byteLength;
  const html = await bytes('/');
  let scripts = 0;
  for (const file of PAGE_FILES) scripts += await bytes(file);
  return { html, scripts };
}
