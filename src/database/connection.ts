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
  try {
    await client.query('BEGIN');
    const result = await body(client);
    await client.query('COMMIT');
    return result;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    client.release();
  }
}
