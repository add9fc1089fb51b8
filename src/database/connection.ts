import pg from 'pg';

import type { DatabaseConfig } from '../config/types.js';
import { TaskqError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import { redactUrl } from '../log/logger.js';
import { acquireEmbeddedServer } from './embedded.js';

export type Pool = pg.Pool;
export type PoolClient = pg.PoolClient;

/** A pool on the configured server, or on the embedded one when no URL is configured. */
/** One SQL statement with its values, for composing statements that must run as one. */
export interface SqlStatement {
  text: string;
  values: unknown[];
}

export interface Database {
  pool: pg.Pool;
  /** The connection string in use; child processes are handed it so they share the server. */
  url: string;
  embedded: boolean;
  close(): Promise<void>;
}

/**
 * Settings of every session of taskq's pools. A host cut off in the middle of a transaction
 * leaves it open on the server, row locks and all, until the server notices that its peer is
 * gone, and whoever touches those rows waits meanwhile: the lease expiry that would give the
 * host's tasks to the others among them. taskq's transactions last milliseconds, so one left
 * idle for 30 s is ended, and a silent peer is noticed in about 25 s.
 */
const SESSION_OPTIONS = [
  'idle_in_transaction_session_timeout=30000',
  'tcp_keepalives_idle=10',
  'tcp_keepalives_interval=5',
  'tcp_keepalives_count=3',
]
  .map((setting) => `-c ${setting}`)
  .join(' ');

export async function openDatabase(config: DatabaseConfig, logger: Logger): Promise<Database> {
  const lease = config.url
    ? null
    : await acquireEmbeddedServer({
        ...config.embedded,
        logger: logger.child({ component: 'embedded-postgres' }),
      });
  const url = config.url ?? lease!.url;

  const pool = new pg.Pool({
    connectionString: url,
    max: config.poolSize,
    application_name: 'taskq',
    options: SESSION_OPTIONS,
  });
  pool.on('error', (error) => logger.warn({ err: error }, 'an idle database connection failed'));
  try {
    await pool.query('SELECT 1');
  } catch (error) {
    await pool.end().catch(() => undefined);
    await lease?.release();
    const where = config.url ? 'database.url (or TASKQ_DATABASE_URL)' : 'the embedded server';
    throw new TaskqError(
      'DATABASE_UNREACHABLE',
      `Cannot connect to PostgreSQL at ${redactUrl(url)}: ${(error as Error).message}. Check ${where}; ` +
        'with neither database.url nor TASKQ_DATABASE_URL set, taskq runs an embedded server.',
      { cause: error },
    );
  }
  logger.debug({ url: redactUrl(url) }, 'database pool opened');

  let closing: Promise<void> | undefined;
  return {
    pool,
    url,
    embedded: lease !== null,
    close: () => {
      closing ??= (async () => {
        await pool.end();
        await lease?.release();
      })();
      return closing;
    },
  };
}

/** Runs `body` in a transaction on one connection, rolling back when it throws. */
export async function transaction<T>(
  pool: pg.Pool,
  body: (client: pg.PoolClient) => Promise<T>,
): Promise<T> {
  const client = await pool.connect();
  // A connection that dies while it is held here fails the statement under way; the 'error'
  // event it emits besides would end the process were nothing listening. The broken connection
  // is then destroyed rather than handed back to the pool.
  let broken: Error | undefined;
  const onError = (error: Error) => (broken = error);
  client.on('error', onError);
  try {
    await client.query('BEGIN');
    const result = await body(client);
    await client.query('COMMIT');
    return result;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    client.removeListener('error', onError);
    client.release(broken);
  }
}

/** SQLSTATEs of a server that is going away or not there yet, and socket failures. */
const CONNECTION_LOST = /^(08|57P0[1-3])/;
const SOCKET_ERRORS = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH']);

/**
 * Whether an error says the database could not be reached (now), rather than that something
 * was wrong with what was asked of it: what waiting and trying again can cure.
 */
export function isConnectionError(error: unknown): boolean {
  for (let cause = error; cause instanceof Error; cause = cause.cause) {
    if (cause instanceof TaskqError && cause.code === 'DATABASE_UNREACHABLE') return true;
    const code = (cause as { code?: unknown }).code;
    if (typeof code === 'string' && (CONNECTION_LOST.test(code) || SOCKET_ERRORS.has(code)))
      return true;
    if (/Connection terminated/.test(cause.message)) return true;
  }
  return false;
}
