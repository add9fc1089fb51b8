import type { QueueConfig, TaskqConfig } from '../config/types.js';
import type { Database } from '../database/connection.js';
import type { Logger } from '../log/logger.js';
import type { Broker } from './broker.js';
import { MemoryBroker } from './memory.js';
import { PostgresBackend, PostgresBroker } from './postgres.js';

export interface BrokerSetOptions {
  /**
   * Run pg-boss's maintenance here (it hands out again the jobs whose lease ran out): true in
   * workers and supervisors, false in short commands. pg-boss lets one process at a time do it.
   */
  supervise: boolean;
}

/** The brokers of every configured queue, sharing what one process should share. */
export class BrokerSet {
  private readonly brokers = new Map<string, Broker>();
  private postgres: PostgresBackend | null = null;

  constructor(
    private readonly config: TaskqConfig,
    private readonly db: Database,
    private readonly logger: Logger,
    private readonly options: BrokerSetOptions,
  ) {}

  async open(): Promise<void> {
    for (const queue of this.config.queues) this.brokers.set(queue.name, await this.create(queue));
    // Maintenance starts with pg-boss, which a process that creates no queue would never start.
    if (this.options.supervise && this.postgres) await this.postgres.start();
  }

  get(queue: string): Broker {
    const broker = this.brokers.get(queue);
    if (!broker) throw new Error(`No broker for queue "${queue}"`);
    return broker;
  }

  has(queue: string): boolean {
    return this.brokers.has(queue);
  }

  all(): Broker[] {
    return [...this.brokers.values()];
  }

  /** Adds the brokers of queues that a reloaded configuration introduced. */
  async add(queue: QueueConfig): Promise<Broker> {
    const broker = this.brokers.get(queue.name) ?? (await this.create(queue));
    this.brokers.set(queue.name, broker);
    return broker;
  }

  async close(): Promise<void> {
    for (const broker of this.brokers.values()) await broker.close();
    await this.postgres?.close();
  }

  private async create(queue: QueueConfig): Promise<Broker> {
    const options = queue.broker;
    switch (options.type) {
      case 'memory':
        return new MemoryBroker(queue.name, options);
      case 'postgres':
        return new PostgresBroker(queue.name, options, this.postgresBackend());
      case 'sqs': {
        const { SqsBroker } = await import('./sqs.js');
        return new SqsBroker(queue.name, options, this.logger.child({ queue: queue.name }));
      }
    }
  }

  private postgresBackend(): PostgresBackend {
    if (this.postgres) return this.postgres;
    const leases = this.config.queues.flatMap((q) =>
      q.broker.type === 'postgres' ? [q.broker.leaseSeconds] : [],
    );
    this.postgres = new PostgresBackend({
      pool: this.db.pool,
      url: this.db.url,
      bossSchema: this.config.database.bossSchema,
      logger: this.logger.child({ component: 'pg-boss' }),
      supervise: this.options.supervise,
      maintenanceIntervalSeconds: Math.max(1, Math.min(60, Math.floor(Math.min(...leases) / 2))),
    });
    return this.postgres;
  }
}
