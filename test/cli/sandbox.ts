import type { ChildProcess } from 'node:child_process';
import { chmodSync, copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';

import pg from 'pg';

import { isAlive, stopServer } from '../../src/database/embedded.js';
import { exited, runCli, startCli, type CliResult } from '../support/cli.js';
import { createTestDatabase } from '../support/database.js';
import { EXAMPLE_HANDLERS, ROOT } from '../support/paths.js';

/**
 * Where commands run in a CLI test: a temporary working directory, a temporary TASKQ_HOME and
 * the example handlers, on one of three databases: a fresh database on the test server, the
 * embedded server (no database url at all), or none (a url nothing listens on, for commands
 * that must fail before they connect).
 */
export type SandboxDatabase = 'test' | 'embedded' | 'none';

export interface Sandbox {
  /** The working directory of every command. */
  dir: string;
  /** TASKQ_HOME: runtime state, and the embedded server's data. */
  stateDir: string;
  env: NodeJS.ProcessEnv;
  run(args: string[], env?: NodeJS.ProcessEnv): Promise<CliResult>;
  /** Starts a long-running command; the sandbox stops it at the end if it still runs. */
  start(args: string[], env?: NodeJS.ProcessEnv): ChildProcess & { output: () => string };
  /** Runs SQL on the sandbox's test database. */
  query<Row extends pg.QueryResultRow>(sql: string, values?: unknown[]): Promise<Row[]>;
  /** Copies the shipped config/taskq.json into the working directory and returns its path. */
  copyShippedConfig(): string;
}

const UNREACHABLE_DATABASE = 'postgres://nobody@127.0.0.1:1/nothing';

export async function sandbox(t: TestContext, database: SandboxDatabase): Promise<Sandbox> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'taskq-cli-'));
  // The embedded server runs as the postgres user when the tests run as root.
  chmodSync(dir, 0o755);
  const stateDir = path.join(dir, 'state');
  const children: ChildProcess[] = [];
  const testDatabase = database === 'test' ? await createTestDatabase() : null;
  const pool = testDatabase ? new pg.Pool({ connectionString: testDatabase.url, max: 2 }) : null;
  // An idle connection the server ends is no failure; a query on a broken one fails its test.
  pool?.on('error', () => undefined);

  t.after(async () => {
    for (const child of children.reverse()) {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited(child);
    }
    await pool?.end();
    await testDatabase?.drop();
    if (database === 'embedded') await stopServer(path.join(stateDir, 'pgdata'));
    rmSync(dir, { recursive: true, force: true });
  });

  const env: NodeJS.ProcessEnv = {
    TASKQ_DATABASE_URL:
      testDatabase?.url ?? (database === 'none' ? UNREACHABLE_DATABASE : undefined),
    TASKQ_HOME: stateDir,
    TASKQ_HANDLERS: EXAMPLE_HANDLERS,
    TASKQ_LOG_LEVEL: 'warn',
    TASKQ_CONFIG: undefined,
    TASKQ_STRATEGY: undefined,
  };
  return {
    dir,
    stateDir,
    env,
    run: (args, extra) => runCli(args, { cwd: dir, env: { ...env, ...extra } }),
    start: (args, extra) => {
      const child = startCli(args, { cwd: dir, env: { ...env, ...extra } });
      children.push(child);
      return child;
    },
    query: async <Row extends pg.QueryResultRow>(sql: string, values: unknown[] = []) => {
      if (!pool) throw new Error('this sandbox has no test database');
      return (await pool.query<Row>(sql, values)).rows;
    },
    copyShippedConfig: () => {
      const file = path.join(dir, 'taskq.json');
      copyFileSync(path.join(ROOT, 'config/taskq.json'), file);
      return file;
    },
  };
}

/** The pid of the embedded server of a state directory, if its pid file names a live process. */
export function embeddedServerPid(stateDir: string): number | null {
  let text: string;
  try {
    text = readFileSync(path.join(stateDir, 'pgdata', 'postmaster.pid'), 'utf8');
  } catch {
    return null;
  }
  const pid = Number(text.split('\n')[0]);
  return Number.isInteger(pid) && pid > 0 && isAlive(pid) ? pid : null;
}

/** Parses a command's JSON output, failing with the output when it is not JSON. */
export function parseJson<T>(result: CliResult): T {
  try {
    return JSON.parse(result.stdout) as T;
  } catch {
    throw new Error(
      `stdout is not JSON (exit ${result.code}):\n${result.stdout}\n${result.stderr}`,
    );
  }
}
