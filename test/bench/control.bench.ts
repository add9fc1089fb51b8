import { readFileSync, existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import { TaskqClient } from '../../src/client.js';
import type { Runtime } from '../../src/runtime.js';
import { HandlerRegistry } from '../../src/tasks/handlers.js';
import { runCli } from '../support/cli.js';
import { createTestDatabase } from '../support/database.js';
import { handlers } from '../support/handlers.js';
import { TEST_HANDLERS } from '../support/paths.js';
import { testConfig, testRuntime } from '../support/runtime.js';
import { startSupervisor, supervisorHome, type RunningSupervisor } from '../support/supervisor.js';
import { waitFor } from '../support/wait.js';
import { percentile, round, type BenchResult } from './types.js';

const WORKERS = 4;
const ROUNDS = 8;
/** The heartbeat of the baseline: how a worker noticed a cancel before the control channel. */
const HEARTBEAT_SECONDS = 2;

interface Env {
  runtime: Runtime;
  client: TaskqClient;
  env: NodeJS.ProcessEnv;
  markers: string;
  supervisor: RunningSupervisor;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The operators' actions: how soon `taskq pause --queue` stops every worker starting tasks on
 * the queue (next to the SIGUSR2 pause of one fleet), and how soon `taskq log --cancel --force`
 * fires a running handler's AbortSignal (next to the heartbeat that noticed it before).
 */
export async function benchControl(): Promise<BenchResult[]> {
  const database = await createTestDatabase();
  const config = {
    handlers: TEST_HANDLERS,
    queues: [{ name: 'default', broker: { type: 'postgres', receive: 100 } }],
    worker: { heartbeatSeconds: HEARTBEAT_SECONDS },
  };
  const { home, configFile } = await supervisorHome(config);
  const markers = await fs.mkdtemp(path.join(os.tmpdir(), 'taskq-bench-markers-'));
  const runtime = await testRuntime(await testConfig(database.url, config), {
    handlers: new HandlerRegistry(handlers),
  });
  const env = {
    TASKQ_DATABASE_URL: database.url,
    TASKQ_CONFIG: configFile,
    TASKQ_HOME: home,
    TASKQ_LOG_LEVEL: 'warn',
  };
  const supervisor = await startSupervisor([`--workers=${WORKERS}`], env);
  try {
    await waitFor(
      'every worker to run',
      async () => (await supervisor.health()).workers.every((w) => w.state === 'running'),
      { timeoutMs: 60_000 },
    );
    const bench = { runtime, client: new TaskqClient(runtime, 'bench'), env, markers, supervisor };
    return [await pauseLatency(bench), await cancelLatency(bench)];
  } finally {
    await supervisor.stop();
    await runtime.close();
    await database.drop();
    await fs.rm(home, { recursive: true, force: true });
    await fs.rm(markers, { recursive: true, force: true });
  }
}

/** Keeps a backlog of short tasks, so that every worker is busy starting tasks. */
async function feed(env: Env): Promise<void> {
  for (;;) {
    const { rows } = await env.runtime.db.pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM taskq.tasks WHERE status = 'enqueued'`,
    );
    if (rows[0]!.n >= 1500) return;
    await env.client.enqueueMany(
      Array.from({ length: 500 }, () => ({ name: 'example.sleep', parameters: { ms: 20 } })),
    );
  }
}

async function lastStartAfter(env: Env, since: number): Promise<number> {
  const { rows } = await env.runtime.db.pool.query<{ last: Date | null }>(
    `SELECT max(started_at) AS last FROM taskq.tasks WHERE queue = 'default'`,
  );
  return Math.max(0, (rows[0]!.last?.getTime() ?? since) - since);
}

async function pauseLatency(env: Env): Promise<BenchResult> {
  const signal: number[] = [];
  const database: number[] = [];
  for (let round = 0; round < ROUNDS; round += 1) {
    // The baseline: SIGUSR2 pauses this supervisor's fleet.
    await feed(env);
    await sleep(500);
    const signalledAt = Date.now();
    env.supervisor.process.kill('SIGUSR2');
    await waitFor('the fleet to pause', async () =>
      (await env.supervisor.health()).workers.every((w) => w.state === 'paused'),
    );
    await sleep(1500);
    signal.push(await lastStartAfter(env, signalledAt));
    env.supervisor.process.kill('SIGCONT');

    // The figure: taskq pause --queue, kept in the database, from the moment it commits.
    await feed(env);
    await sleep(500);
    const paused = await runCli(['pause', '--queue=default'], { env: env.env });
    if (paused.code !== 0) throw new Error(`taskq pause failed: ${paused.stderr}`);
    const { rows } = await env.runtime.db.pool.query<{ at: Date }>(
      `SELECT paused_at AS at FROM taskq.queue_pauses WHERE queue = 'default'`,
    );
    await sleep(1500);
    database.push(await lastStartAfter(env, rows[0]!.at.getTime()));
    await runCli(['resume'], { env: env.env });
  }
  await runCli(['pause'], { env: env.env });
  await env.runtime.db.pool.query(
    `UPDATE taskq.tasks SET status = 'cancelled' WHERE status = 'enqueued'`,
  );
  await env.runtime.db.pool.query(`DELETE FROM pgboss.job WHERE state < 'active'`);
  await runCli(['resume'], { env: env.env });

  const value = percentile(
    database.sort((a, b) => a - b),
    100,
  );
  console.error(`  pause: ${database.join(', ')} ms; SIGUSR2: ${signal.join(', ')} ms`);
  return {
    name: `taskq pause --queue: last task started after it (max of ${ROUNDS}, ${WORKERS} workers)`,
    value,
    unit: 'ms',
    baseline: {
      name: 'SIGUSR2 fleet pause',
      value: percentile(
        signal.sort((a, b) => a - b),
        100,
      ),
    },
    target: '< 1000 ms',
    pass: value < 1000,
  };
}

async function cancelLatency(env: Env): Promise<BenchResult> {
  const viaNotice: number[] = [];
  const viaHeartbeat: number[] = [];
  for (let round = 0; round < ROUNDS; round += 1) {
    viaNotice.push(
      await abortAfter(env, async (id) => {
        const cancel = await runCli(['log', '--cancel', id, '--force'], { env: env.env });
        if (cancel.code !== 0) throw new Error(`taskq log --cancel failed: ${cancel.stderr}`);
      }),
    );
    // The baseline: the same change without its notice, which only the heartbeat notices.
    viaHeartbeat.push(
      await abortAfter(env, async (id) => {
        await env.runtime.db.pool.query(
          `WITH changed AS (UPDATE taskq.tasks SET status = 'cancelled', updated_at = now()
                            WHERE id = $1 RETURNING id)
           INSERT INTO taskq.events (task_id, kind, to_status, actor)
           SELECT id, 'cancelled', 'cancelled', 'bench' FROM changed`,
          [id],
        );
      }),
    );
  }
  const sorted = viaNotice.sort((a, b) => a - b);
  console.error(`  cancel: ${sorted.join(', ')} ms; heartbeat: ${viaHeartbeat.join(', ')} ms`);
  const value = percentile(sorted, 100);
  return {
    name: `taskq log --cancel --force: AbortSignal fires (max of ${ROUNDS})`,
    value,
    unit: 'ms',
    baseline: {
      name: `heartbeat every ${HEARTBEAT_SECONDS} s`,
      value: percentile(
        viaHeartbeat.sort((a, b) => a - b),
        100,
      ),
    },
    target: '< 1000 ms',
    pass: value < 1000,
  };
}

/** Runs a task that waits for its abort, cancels it with `cancel`, and times the abort. */
async function abortAfter(env: Env, cancel: (id: string) => Promise<void>): Promise<number> {
  const { id } = await env.client.enqueue('test.wait-abort', { markers: env.markers });
  const marker = (kind: string) => path.join(env.markers, `${id}.${kind}`);
  await waitFor('the handler to start', () => existsSync(marker('started')));
  await cancel(id);
  const { rows } = await env.runtime.db.pool.query<{ at: Date }>(
    `SELECT at FROM taskq.events WHERE task_id = $1 AND kind = 'cancelled'`,
    [id],
  );
  const abortedAt = await waitFor(
    'the AbortSignal',
    () => (existsSync(marker('abort')) ? Number(readFileSync(marker('abort'), 'utf8')) : null),
    { timeoutMs: 30_000 },
  );
  return Math.max(0, round(abortedAt - rows[0]!.at.getTime(), 0));
}
