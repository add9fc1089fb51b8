import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import { after, before, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';

import pg from 'pg';

import { TaskqClient } from '../../src/client.js';
import type { Runtime } from '../../src/runtime.js';
import { HandlerRegistry } from '../../src/tasks/handlers.js';
import { runCli } from '../support/cli.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { startEmulator, type Emulator } from '../support/fauxqs.js';
import { handlers } from '../support/handlers.js';
import { createHosts, forward, GATEWAY, hostsSupported, type Host } from '../support/hosts.js';
import { TEST_HANDLERS } from '../support/paths.js';
import { testConfig, testRuntime } from '../support/runtime.js';
import { startSupervisor, supervisorHome, type RunningSupervisor } from '../support/supervisor.js';
import { waitFor } from '../support/wait.js';

/**
 * Three supervisors, each on a host of its own (a network namespace), share one PostgreSQL
 * server and one SQS emulator, reached over the hosts' links. The tests run in order on one
 * fleet: the weights hold across it, a lasting queue pause stops every host, a stuck-task
 * summary on one host sees a task another host holds, and a host cut off the network gives its
 * tasks back to the others once their leases run out, with nothing lost.
 */

const HOSTS = 3;
const LEASE_SECONDS = 8;
const WEIGHTS = { high: 3, low: 1 };
const TASK_MS = 20;
const TOKEN = 'several-hosts-admin-token-0123456789';

const skip = hostsSupported() ? false : 'network namespaces need root on Linux';

let database: TestDatabase;
let emulator: Emulator;
let runtime: Runtime;
let client: TaskqClient;
let pool: pg.Pool;
let hosts: Host[] = [];
let removeHosts: () => Promise<void> = async () => undefined;
const closers: (() => Promise<unknown>)[] = [];
const supervisors: RunningSupervisor[] = [];
/** The environment of a process on a host: the shared services through the gateway. */
let hostEnv: NodeJS.ProcessEnv;
let home: string;
/** The task every test after the pause adds to: all of them must complete in the end. */
const everyTask: string[] = [];

before(async () => {
  if (skip) return;
  database = await createTestDatabase();
  emulator = await startEmulator();
  ({ hosts, remove: removeHosts } = await createHosts(HOSTS));

  const databaseUrl = new URL(database.url);
  const postgres = await forward(GATEWAY, {
    host: databaseUrl.hostname,
    port: Number(databaseUrl.port || 5432),
  });
  const sqsUrl = new URL(emulator.endpoint);
  const sqs = await forward(GATEWAY, { host: sqsUrl.hostname, port: Number(sqsUrl.port) });
  closers.push(postgres.close, sqs.close);

  const remoteDatabase = new URL(database.url);
  remoteDatabase.hostname = GATEWAY;
  remoteDatabase.port = String(postgres.port);
  const config = {
    handlers: TEST_HANDLERS,
    worker: { heartbeatSeconds: 1, concurrency: 4 },
    queues: [
      {
        name: 'high',
        broker: { type: 'postgres', leaseSeconds: LEASE_SECONDS },
        weight: WEIGHTS.high,
      },
      {
        name: 'low',
        broker: { type: 'postgres', leaseSeconds: LEASE_SECONDS },
        weight: WEIGHTS.low,
      },
      {
        name: 'slow',
        broker: { type: 'postgres', leaseSeconds: LEASE_SECONDS },
        weight: WEIGHTS.low,
      },
      {
        name: 'remote',
        broker: emulator.brokerConfig({
          endpoint: `http://${GATEWAY}:${sqs.port}`,
          visibilityTimeoutSeconds: LEASE_SECONDS,
          waitTimeSeconds: 1,
        }),
        weight: 1,
      },
    ],
    http: { tokens: [{ token: TOKEN, owner: 'ops', role: 'admin' }] },
  };
  const written = await supervisorHome(config);
  home = written.home;
  hostEnv = {
    TASKQ_DATABASE_URL: remoteDatabase.toString(),
    TASKQ_CONFIG: written.configFile,
    TASKQ_LOG_LEVEL: 'warn',
  };
  // This process works on the machine itself: it creates the queues and enqueues.
  runtime = await testRuntime(
    await testConfig(database.url, {
      ...config,
      queues: config.queues.map((queue) =>
        queue.name === 'remote' ? { ...queue, broker: emulator.brokerConfig() } : queue,
      ),
    }),
    { handlers: new HandlerRegistry(handlers), supervise: true },
  );
  client = new TaskqClient(runtime, 'test');
  pool = new pg.Pool({ connectionString: database.url, max: 2 });
  pool.on('error', () => undefined);

  for (const host of hosts) {
    const supervisor = await startSupervisor(
      ['--workers=1', `--http-host=${host.address}`],
      { ...hostEnv, TASKQ_HOME: `${home}/${host.name}`, TASKQ_LOG_LEVEL: 'info' },
      host.exec([]),
    );
    supervisors.push(supervisor);
  }
  await waitFor(
    'every host to run its worker',
    async () => {
      const states = await Promise.all(supervisors.map((s) => s.health()));
      return states.every((h) => h.workers.every((w) => w.state === 'running'));
    },
    { timeoutMs: 30_000 },
  );
});

after(async () => {
  for (const host of hosts) await host.mend().catch(() => undefined);
  for (const supervisor of supervisors) await supervisor.stop('SIGKILL');
  await runtime?.close();
  await pool?.end();
  for (const close of closers) await close().catch(() => undefined);
  await removeHosts();
  await emulator?.close();
  await database?.drop();
  if (home) await fs.rm(home, { recursive: true, force: true });
});

async function query<Row extends pg.QueryResultRow>(sql: string, values: unknown[] = []) {
  return (await pool.query<Row>(sql, values)).rows;
}

/** The host of a worker id: each names its supervisor's pid. */
function hostOf(worker: string | null): number {
  const index = supervisors.findIndex((s) => worker?.includes(`:${s.process.pid}/`));
  assert.ok(index >= 0, `worker ${worker} belongs to no host's supervisor`);
  return index;
}

function backlog(queue: string, count: number, ms = TASK_MS) {
  return client.enqueueMany(
    Array.from({ length: count }, () => ({
      name: 'example.sleep',
      parameters: { ms },
      queue,
    })),
  );
}

test(
  'weights hold across the hosts: each queue gets its weighted share of the whole fleet',
  { skip },
  async () => {
    everyTask.push(...(await backlog('high', 4000)).map((task) => task.id));
    everyTask.push(...(await backlog('low', 4000)).map((task) => task.id));
    // The window opens once every host has started on the backlog, and closes long before it
    // runs dry.
    await delay(2000);
    const [{ from }] = await query<{ from: Date }>('SELECT now() AS "from"');
    await delay(6000);
    const [{ to }] = await query<{ to: Date }>('SELECT now() AS "to"');
    const rows = await query<{ queue: string; worker: string; count: string }>(
      `SELECT queue, worker, count(*) FROM taskq.tasks
     WHERE started_at >= $1 AND started_at < $2 GROUP BY queue, worker`,
      [from, to],
    );
    const byQueue = new Map<string, number>();
    const byHost = new Map<number, number>();
    for (const row of rows) {
      byQueue.set(row.queue, (byQueue.get(row.queue) ?? 0) + Number(row.count));
      byHost.set(hostOf(row.worker), (byHost.get(hostOf(row.worker)) ?? 0) + Number(row.count));
    }
    const total = [...byQueue.values()].reduce((sum, n) => sum + n, 0);
    assert.ok(total > 200, `only ${total} tasks started in the window`);
    const share = (byQueue.get('high') ?? 0) / total;
    const expected = WEIGHTS.high / (WEIGHTS.high + WEIGHTS.low);
    assert.ok(
      Math.abs(share - expected) <= 0.1,
      `high got ${(share * 100).toFixed(1)}% of ${total} starts, expected ${(expected * 100).toFixed(0)}%`,
    );
    assert.equal(byHost.size, HOSTS, 'every host worked in the window');
  },
);

test(
  'a lasting pause of a queue, made from one host, stops that queue on every host',
  { skip },
  async () => {
    const paused = await runCli(['pause', '--queue=high'], {
      env: { ...hostEnv, TASKQ_HOME: `${home}/cli` },
      prefix: hosts[2]!.exec([]),
    });
    assert.equal(paused.code, 0, paused.stderr);
    // Tasks already received when the pause arrives may still start; after a second none may.
    await delay(1000);
    const [{ from }] = await query<{ from: Date }>('SELECT now() AS "from"');
    await delay(3000);
    const started = await query<{ queue: string; worker: string }>(
      'SELECT queue, worker FROM taskq.tasks WHERE started_at >= $1',
      [from],
    );
    assert.deepEqual(
      started.filter((row) => row.queue === 'high'),
      [],
      'no high task starts on any host',
    );
    const lowHosts = new Set(
      started.filter((row) => row.queue === 'low').map((row) => hostOf(row.worker)),
    );
    assert.equal(lowHosts.size, HOSTS, 'every host goes on with the queue that is not paused');

    const resumed = await runCli(['resume', '--queue=high'], {
      env: { ...hostEnv, TASKQ_HOME: `${home}/cli` },
      prefix: hosts[0]!.exec([]),
    });
    assert.equal(resumed.code, 0, resumed.stderr);
  },
);

test(
  "a host cut off the network gives its tasks back to the others after the lease; one host sees another's stuck task",
  { skip },
  async () => {
    // A task that hangs on its first attempt, held by some host, ages past the stuck threshold.
    const { id: hanging } = await client.enqueue(
      'test.hang-first',
      { ms: 600_000 },
      { queue: 'slow' },
    );
    everyTask.push(hanging);
    const { holder } = await waitFor(
      'the hanging task to start',
      async () => {
        const [row] = await query<{ status: string; worker: string | null }>(
          'SELECT status, worker FROM taskq.tasks WHERE id = $1',
          [hanging],
        );
        return row?.status === 'running' ? { holder: hostOf(row.worker) } : undefined;
      },
      { timeoutMs: 60_000 },
    );
    const other = (holder + 1) % HOSTS;

    // A stuck task is one unchanged for a minute at least.
    await delay(61_000);
    const summary = await runCli(
      ['stuck', 'summary', '--queue=slow', '--age=60', '--status=running', '--json'],
      { env: { ...hostEnv, TASKQ_HOME: `${home}/cli` }, prefix: hosts[other]!.exec([]) },
    );
    assert.equal(summary.code, 0, summary.stderr);
    const found = (
      JSON.parse(summary.stdout) as { tasks: { id: string; worker: string; leaseLive: boolean }[] }
    ).tasks;
    const entry = found.find((task) => task.id === hanging);
    assert.ok(entry, `the summary on host ${other} lists the task held by host ${holder}`);
    assert.equal(hostOf(entry.worker), holder);
    assert.equal(entry.leaseLive, true, 'its holder still renews the lease');

    // Work on every broker is under way on every host when the holder is cut off.
    for (const queue of ['high', 'low', 'remote'])
      everyTask.push(...(await backlog(queue, 600, 50)).map((task) => task.id));
    await delay(1500);
    await hosts[holder]!.cut();
    const cutAt = Date.now();

    await waitFor(
      'every task to complete on the hosts still connected',
      async () => {
        const [{ open }] = await query<{ open: string }>(
          `SELECT count(*) AS open FROM taskq.tasks WHERE id = ANY($1::uuid[]) AND status <> 'completed'`,
          [everyTask],
        );
        return Number(open) === 0;
      },
      { timeoutMs: 120_000, intervalMs: 500 },
    ).catch(async (error: Error) => {
      const open = await query(
        `SELECT queue, status, worker, attempts, count(*)::int FROM taskq.tasks
         WHERE id = ANY($1::uuid[]) AND status <> 'completed' GROUP BY 1, 2, 3, 4`,
        [everyTask],
      );
      throw new Error(`${error.message}; still open: ${JSON.stringify(open)}`);
    });
    const recoveredMs = Date.now() - cutAt;
    const [last] = await query<{ worker: string; attempts: number }>(
      'SELECT worker, attempts FROM taskq.tasks WHERE id = $1',
      [hanging],
    );
    assert.notEqual(hostOf(last!.worker), holder, 'the hanging task completed on another host');
    assert.ok(recoveredMs >= LEASE_SECONDS * 1000 * 0.5, 'the lease held the task for a while');
    console.log(
      `# cut-off host: ${everyTask.length} tasks all completed ${recoveredMs} ms after the cut`,
    );

    await hosts[holder]!.mend();
    for (const supervisor of supervisors) {
      const { code } = await supervisor.stop('SIGTERM');
      assert.equal(code, 0, supervisor.output().slice(-2000));
    }
  },
);
