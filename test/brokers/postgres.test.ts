import pg from 'pg';

import { PostgresBackend, PostgresBroker } from '../../src/brokers/postgres.js';
import { createLogger } from '../../src/log/logger.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { brokerContract } from './contract.js';

let database: TestDatabase;
let pool: pg.Pool;
let backend: PostgresBackend;

brokerContract(
  'postgres',
  async (queue, leaseSeconds) =>
    new PostgresBroker(queue, { type: 'postgres', receive: 10, leaseSeconds }, backend),
  {
    leaseSeconds: 1,
    setup: async () => {
      database = await createTestDatabase();
      pool = new pg.Pool({ connectionString: database.url });
      backend = new PostgresBackend({
        pool,
        url: database.url,
        bossSchema: 'pgboss',
        logger: createLogger({ level: 'silent' }),
        supervise: true,
        maintenanceIntervalSeconds: 1,
      });
      await backend.start();
    },
    teardown: async () => {
      await backend.close();
      await pool.end();
      await database.drop();
    },
  },
);
