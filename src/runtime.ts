import { EventEmitter } from 'node:events';

import { BrokerSet } from './brokers/index.js';
import type { TaskqConfig } from './config/types.js';
import { openDatabase, type Database } from './database/connection.js';
import { migrate } from './database/migrations.js';
import type { Logger } from './log/logger.js';
import { Dispatcher } from './queues/dispatcher.js';
import { loadHandlers, type HandlerRegistry } from './tasks/handlers.js';
import { TaskLogQueries } from './tasklog/queries.js';
import { TaskLog } from './tasklog/task-log.js';

export interface RuntimeEvents {
  /** Tasks written to the task log and their queue, counted per task name. */
  enqueued: [{ queue: string; name: string; count: number }];
}

/** Everything a taskq process works with, opened once and closed in reverse order. */
export interface Runtime {
  /** What happens in this process, for observers such as the metrics. */
  events: EventEmitter<RuntimeEvents>;
  config: TaskqConfig;
  logger: Logger;
  db: Database;
  taskLog: TaskLog;
  queries: TaskLogQueries;
  handlers: HandlerRegistry;
  brokers: BrokerSet;
  dispatcher: Dispatcher;
  close(): Promise<void>;
}

export interface RuntimeOptions {
  /** Run broker maintenance (pg-boss's lease expiry) in this process. */
  supervise?: boolean;
  /** Create the queues where the brokers keep them (as `taskq init` does). */
  initQueues?: boolean;
  /** A handler registry to use instead of the configured module. */
  handlers?: HandlerRegistry;
}

export async function openRuntime(
  config: TaskqConfig,
  logger: Logger,
  options: RuntimeOptions = {},
): Promise<Runtime> {
  const cleanups: (() => Promise<void>)[] = [];
  const closeAll = async () => {
    for (const cleanup of cleanups.reverse())
      await cleanup().catch((error) => logger.warn({ err: error }, 'cleanup failed'));
  };
  try {
    const handlers = options.handlers ?? (await loadHandlers(config.handlers));
    const db = await openDatabase(config.database, logger);
    cleanups.push(() => db.close());
    await migrate(db.pool, config.database.schema);

    const brokers = new BrokerSet(config, db, logger, { supervise: options.supervise ?? false });
    cleanups.push(() => brokers.close());
    await brokers.open();
    if (options.initQueues ?? true) for (const broker of brokers.all()) await broker.init();

    return {
      events: new EventEmitter<RuntimeEvents>(),
      config,
      logger,
      db,
      taskLog: new TaskLog(db.pool, config.database.schema),
      queries: new TaskLogQueries(db.pool, config.database.schema),
      handlers,
      brokers,
      dispatcher: new Dispatcher(config),
      close: closeAll,
    };
  } catch (error) {
    await closeAll();
    throw error;
  }
}
