import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import { exited } from './cli.js';
import { SUPERVISOR } from './paths.js';
import { waitFor } from './wait.js';

/** The node flags of a script's `#!/usr/bin/env -S node ...` line, to start it as its bin does. */
function readShebangFlags(script: string): string[] {
  const first = readFileSync(script, 'utf8').split('\n', 1)[0] ?? '';
  const match = /^#!\/usr\/bin\/env -S node((?: +--\S+)*)\s*$/.exec(first);
  return match ? match[1]!.trim().split(/ +/).filter(Boolean) : [];
}

const SUPERVISOR_V8_FLAGS = readShebangFlags(SUPERVISOR);

export interface RunningSupervisor {
  process: ChildProcess;
  url: string;
  output(): string;
  health(): Promise<Health>;
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export interface Health {
  status: string;
  pid: number;
  isolation: string;
  paused: boolean;
  workers: {
    id: string;
    slot: number;
    pid: number | null;
    state: string;
    restarts: number;
    tasksDone: number;
    running: number;
  }[];
  queues: { name: string; weight: { configured: number; effective: number } }[];
  restarts: Record<string, number>;
}

/** A directory with a configuration file, for one supervisor test. */
export async function supervisorHome(
  config: Record<string, unknown>,
): Promise<{ home: string; configFile: string }> {
  const home = await fs.mkdtemp(path.join(os.tmpdir(), 'taskq-supervisor-'));
  const configFile = path.join(home, 'taskq.json');
  await fs.writeFile(configFile, JSON.stringify(config, null, 2));
  return { home, configFile };
}

/**
 * Starts the real `taskq-supervisor` and waits until its HTTP server answers. `prefix` runs it
 * through another command, such as `ip netns exec`.
 */
export async function startSupervisor(
  args: string[],
  env: NodeJS.ProcessEnv,
  prefix: string[] = [],
): Promise<RunningSupervisor> {
  // Started as its bin's first line and `npm start` start it, with the same V8 flags.
  const [command, ...rest] = [
    ...prefix,
    process.execPath,
    ...SUPERVISOR_V8_FLAGS,
    SUPERVISOR,
    '--http-port=0',
    ...args,
  ];
  const child = spawn(command!, rest, {
    // The address is read from an info line, so the level is at most info.
    env: {
      ...process.env,
      ...env,
      TASKQ_LOG_LEVEL: env.TASKQ_LOG_LEVEL === 'debug' ? 'debug' : 'info',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (chunk) => (output += chunk));
  child.stderr!.on('data', (chunk) => (output += chunk));

  const address = await waitFor(
    'the supervisor to listen',
    () => {
      if (child.exitCode !== null)
        throw new Error(`the supervisor exited with ${child.exitCode}:\n${output}`);
      return /"address":"(http:\/\/[^"]+)"/.exec(output)?.[1];
    },
    { timeoutMs: 30_000 },
  );
  const health = async () => (await (await fetch(`${address}/healthz`)).json()) as Health;
  return {
    process: child,
    url: address,
    output: () => output,
    health,
    stop: async (signal: NodeJS.Signals = 'SIGTERM') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited(child);
    },
  };
}
