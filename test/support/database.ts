import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import pg from 'pg';

import { acquireEmbeddedServer } from '../../src/database/embedded.js';
import { createLogger } from '../../src/log/logger.js';

export interface TestDatabase {
  url: string;
  drop(): Promise<void>;
}

/**
 * A database of its own for one test file: on TASKQ_TEST_DATABASE_URL's server when set, else
 * on an embedded server in a temporary directory. `drop` removes it and stops what it started.
 */
export async function createTestDatabase(): Promise<TestDatabase> {
  const name = `taskq_test_${randomBytes(5).toString('hex')}`;
  let serverUrl = process.env.TASKQ_TEST_DATABASE_URL;
  let stopServer: (() => Promise<void>) | null = null;
  let stateDir: string | null = null;

  if (!serverUrl) {
    stateDir = await fs.mkdtemp(path.join(os.tmpdir(), 'taskq-test-pg-'));
    await fs.chmod(stateDir, 0o755);
    const lease = await acquireEmbeddedServer({
      dataDir: path.join(stateDir, 'pgdata'),
      port: 0,
      logger: createLogger({ level: 'warn' }),
    });
    serverUrl = lease.url;
    stopServer = lease.release;
  }

  await adminQuery(serverUrl, `CREATE DATABASE ${name}`);
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      await adminQuery(serverUrl, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await stopServer?.();
      if (stateDir) await fs.rm(stateDir, { recursive: true, force: true });
    },
  };
}

async function adminQuery(url: string, sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}
