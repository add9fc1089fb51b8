import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';

import {
  acquireEmbeddedServer,
  stopServer,
  type EmbeddedLease,
} from '../../src/database/embedded.js';
import { createLogger } from '../../src/log/logger.js';
import { startSupervisor, type RunningSupervisor } from '../support/supervisor.js';
import { waitFor } from '../support/wait.js';
import { assertOutageLogged, openWorkload, RESULTS_FILE, type Workload } from './workload.js';

const TASKS = 5_000;
const DOWN_MS = 8_000;

/**
 * PostgreSQL is restarted under a running fleet. The scenario runs an embedded server of its own,
 * so that stopping it touches nothing else on the machine.
 */
let stateDir: string | undefined;
const leases: EmbeddedLease[] = [];
let workload: Workload | undefined;
let supervisor: RunningSupervisor | undefined;

after(async () => {
  await supervisor?.stop('SIGKILL');
  await workload?.close();
  for (const lease of leases) await lease.release();
  if (stateDir) await fs.rm(stateDir, { recursive: true, force: true });
});

test('PostgreSQL restarted mid-run: workers and the supervisor reconnect, log the outage once, and every task completes', async () => {
  stateDir = await fs.mkdtemp(path.join(os.tmpdir(), 'taskq-fault-pg-'));
  await fs.chmod(stateDir, 0o755);
  const server = {
    dataDir: path.join(stateDir, 'pgdata'),
    port: 0,
    logger: createLogger({ level: 'warn' }),
  };
  leases.push(await acquireEmbeddedServer(server));
  workload = await openWorkload(
    {
      queues: [{ name: 'default', broker: { type: 'postgres', leaseSeconds: 15 } }],
      worker: { heartbeatSeconds: 2, shutdownTimeoutSeconds: 5 },
    },
    { serverUrl: leases[0]!.url },
  );
  const ids = await workload.enqueue(TASKS, { ms: 10 });
  supervisor = await startSupervisor(['--workers=2'], workload.env);
  await waitFor(
    'a fifth of the tasks to run',
    async () => (await workload!.recorded(ids)) >= 1000,
    {
      timeoutMs: 120_000,
    },
  );

  await stopServer(server.dataDir);
  // A worker that dies meanwhile is started again while the server is away: it must wait for
  // the server, not crash until its slot gives up on it.
  const victim = (await supervisor.health()).workers[0]!.pid!;
  process.kill(victim, 'SIGKILL');
  await delay(DOWN_MS);
  // The same data directory and the same port (kept in the state file).
  leases.push(await acquireEmbeddedServer(server));
  const upAt = await waitFor(
    'the restarted server to answer',
    () => workload!.now().catch(() => undefined),
    {
      timeoutMs: 30_000,
    },
  );

  await workload.waitForCompleted(ids, 240_000);
  const result = await workload.verify(
    `PostgreSQL down ${DOWN_MS / 1000} s and restarted`,
    ids,
    upAt,
  );
  assert.equal(result.completed, TASKS);
  const health = await supervisor.health();
  assert.ok(
    health.workers.every((worker) => worker.state === 'running'),
    `every worker runs again: ${JSON.stringify(health.workers)}`,
  );
  assert.deepEqual(
    health.restarts,
    { crash: 1, recycle: 0, unresponsive: 0 },
    'only the killed one',
  );

  // The whole log of the run stays beside the table, for whoever looks into a failure.
  await fs.mkdir(path.dirname(RESULTS_FILE), { recursive: true });
  await fs.writeFile(
    path.join(path.dirname(RESULTS_FILE), 'fault-database.log'),
    supervisor.output(),
  );
  assertOutageLogged(supervisor.output(), 2);
  assert.deepEqual(await supervisor.stop('SIGTERM'), { code: 0, signal: null });
});
