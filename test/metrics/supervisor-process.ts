import fs from 'node:fs/promises';

import {
  startSupervisor,
  supervisorHome,
  type Health,
  type RunningSupervisor,
} from '../support/supervisor.js';
import { waitFor } from '../support/wait.js';
import { parseExposition, type Exposition } from './exposition.js';

/** A temporary TASKQ_HOME holding a configuration file, and the environment that points at it. */
export interface SupervisorHome {
  env: NodeJS.ProcessEnv;
  remove(): Promise<void>;
}

export async function createHome(
  databaseUrl: string,
  config: Record<string, unknown>,
): Promise<SupervisorHome> {
  const { home, configFile } = await supervisorHome(config);
  return {
    env: {
      TASKQ_CONFIG: configFile,
      TASKQ_HOME: home,
      TASKQ_DATABASE_URL: databaseUrl,
      // The supervisor says at info where it listens; its output is kept, not printed.
      TASKQ_LOG_LEVEL: 'info',
    },
    remove: () => fs.rm(home, { recursive: true, force: true }),
  };
}

/** A real `taskq-supervisor` process, and its /metrics page. */
export interface SupervisorProcess {
  pid: number;
  /** http://127.0.0.1:PORT */
  url: string;
  port: number;
  /** GET /metrics, parsed; fails on any status but 200. */
  scrape(): Promise<Exposition>;
  health(): Promise<Health>;
  signal(signal: NodeJS.Signals): void;
  /** SIGTERM, then SIGKILL if it is still there after 20 s; safe to repeat. */
  stop(): Promise<void>;
}

/** Starts the supervisor and waits until every one of its `workers` runs. */
export async function startFleet(options: {
  home: SupervisorHome;
  workers: number;
  args?: string[];
}): Promise<SupervisorProcess> {
  const running = await startSupervisor(
    [`--workers=${options.workers}`, ...(options.args ?? [])],
    options.home.env,
  );
  const supervisor = wrap(running);
  try {
    await waitFor(
      `${options.workers} workers to run`,
      async () => {
        const { workers } = await supervisor.health();
        return workers.filter((worker) => worker.state === 'running').length === options.workers;
      },
      { timeoutMs: 30_000 },
    );
  } catch (error) {
    await supervisor.stop();
    throw error;
  }
  return supervisor;
}

function wrap(running: RunningSupervisor): SupervisorProcess {
  const child = running.process;
  return {
    pid: child.pid!,
    url: running.url,
    port: Number(new URL(running.url).port),
    scrape: async () => {
      const response = await fetch(`${running.url}/metrics`);
      const body = await response.text();
      if (response.status !== 200) throw new Error(`GET /metrics: ${response.status} ${body}`);
      return parseExposition(body);
    },
    health: running.health,
    signal: (signal) => child.kill(signal),
    stop: async () => {
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      await running.stop('SIGTERM');
      clearTimeout(timer);
    },
  };
}
