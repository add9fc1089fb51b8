import { EventEmitter } from 'node:events';

import pg from 'pg';
import PgBoss from 'pg-boss';

import type { PostgresBrokerOptions } from '../config/types.js';
import type { SqlStatement } from '../database/connection.js';
import { TaskqError } from '../errors.js';
import { transaction } from '../database/connection.js';
import type { Logger } from '../log/logger.js';
import type { TaskMessage } from '../tasks/message.js';
import type {
  Broker,
  MessagePresence,
  MessageRef,
  OutgoingMessage,
  QueueCounts,
  ReceivedMessage,
} from './broker.js';

/**
 * The messages a worker holds, as ($2, $3, $4): every job id, for the key lookup; the ids whose
 * delivery is unknown; and `id/delivery` for the others. A job's id is its task's id on every
 * delivery, so the delivery tells this worker's copy from a later one: once a lease has run out
 * and another worker received the job, a late ack, release, lease extension or dead-letter from
 * the first worker must not touch it. An unknown delivery (0) stands for whichever is under way:
 * the supervisor releasing the tasks of a worker that died.
 */
const THIS_DELIVERY = `j.id = ANY($2::uuid[])
  AND (j.id = ANY($3::uuid[]) OR j.id::text || '/' || (j.retry_count + 1) = ANY($4::text[]))`;

function held(messages: ReceivedMessage[]): [string[], string[], string[]] {
  const known = messages.filter((message) => message.deliveries > 0);
  return [
    messages.map((message) => message.receipt),
    messages.filter((message) => message.deliveries === 0).map((message) => message.receipt),
    known.map((message) => `${message.receipt}/${message.deliveries}`),
  ];
}

/** The NOTIFY channel on which an enqueue tells workers which queue has new work. */
export const WORK_CHANNEL = 'taskq_work';

/**
 * pg-boss's own retry limit is set out of reach: taskq decides retries and dead-lettering from
 * the task log, and pg-boss's expiry of a lease must always give the job back, never fail it.
 */
const BOSS_RETRY_LIMIT = 1_000_000;

type Db = { executeSql(text: string, values?: unknown[]): Promise<{ rows: unknown[] }> };

function asDb(client: pg.Pool | pg.PoolClient): Db {
  return {
    executeSql: (text, values) =>
      values?.length ? client.query(text, values) : client.query(text),
  };
}

export interface PostgresBackendOptions {
  pool: pg.Pool;
  url: string;
  bossSchema: string;
  logger: Logger;
  /** Run pg-boss's maintenance (lease expiry, archiving) in this process. */
  supervise: boolean;
  /** How often the maintenance runs; it bounds how late an expired lease is noticed. */
  maintenanceIntervalSeconds: number;
}

/**
 * What the postgres queues of one process share: one pg-boss instance on the task log's pool,
 * and one listening connection for the NOTIFY that announces new work.
 */
export class PostgresBackend {
  readonly boss: PgBoss;
  private readonly events = new EventEmitter();
  private listener: pg.Client | null = null;
  private listening = false;
  private closed = false;
  private reconnectDelayMs = 100;
  private starting: Promise<void> | undefined;
  /** Enqueues of this process whose statement has not returned yet. */
  enqueuesUnderWay = 0;
  /** Queues whose announcement is being sent, and those that need one more after it. */
  private readonly announcing = new Set<string>();
  private readonly announceAgain = new Set<string>();

  constructor(private readonly options: PostgresBackendOptions) {
    this.events.setMaxListeners(0);
    this.boss = new PgBoss({
      db: asDb(options.pool),
      schema: options.bossSchema,
      supervise: options.supervise,
      schedule: false,
      migrate: true,
      maintenanceIntervalSeconds: options.maintenanceIntervalSeconds,
    } as PgBoss.ConstructorOptions);
    this.boss.on('error', (error) =>
      options.logger.warn({ err: error }, 'pg-boss maintenance failed'),
    );
  }

  get schema(): string {
    return this.options.bossSchema;
  }

  get pool(): pg.Pool {
    return this.options.pool;
  }

  /** Installs or upgrades pg-boss's schema; concurrent starts are safe. */
  start(): Promise<void> {
    this.starting ??= this.boss.start().then(() => undefined);
    return this.starting;
  }

  /**
   * Tells every listening worker that `queue` has new work, in a transaction of its own after
   * the enqueue has committed. PostgreSQL serializes the commits of the transactions that
   * notify, so enqueues that notified themselves could not commit together. While one announcement of a queue is on its way, further ones fold into a single
   * next one. A process that dies before announcing leaves its work to the workers' idle poll.
   */
  announce(queue: string): void {
    if (this.closed) return;
    if (this.announcing.has(queue)) {
      this.announceAgain.add(queue);
      return;
    }
    this.announcing.add(queue);
    void this.options.pool
      .query('SELECT pg_notify($1, $2)', [WORK_CHANNEL, queue])
      .catch((error: unknown) =>
        this.options.logger.warn({ err: error, queue }, 'could not announce new work'),
      )
      .finally(() => {
        this.announcing.delete(queue);
        if (this.announceAgain.delete(queue)) this.announce(queue);
      });
  }

  /** Subscribes to the new-work announcements of one queue, connecting on first use. */
  onWork(queue: string, listener: () => void): () => void {
    this.events.on(queue, listener);
    if (!this.listening) {
      this.listening = true;
      void this.listen();
    }
    return () => this.events.off(queue, listener);
  }

  private async listen(): Promise<void> {
    if (this.closed) return;
    const client = new pg.Client({
      connectionString: this.options.url,
      application_name: 'taskq-listen',
    });
    client.on('notification', (note) => {
      if (note.channel === WORK_CHANNEL && note.payload) this.events.emit(note.payload);
    });
    client.on('error', (error) => this.reconnect(client, error));
    client.on('end', () => this.reconnect(client, null));
    try {
      await client.connect();
      await client.query(`LISTEN ${WORK_CHANNEL}`);
      this.listener = client;
      if (this.reconnectDelayMs > 100) this.options.logger.info('listening for new work again');
      this.reconnectDelayMs = 100;
      // Anything enqueued while no one listened is found by this wake-up.
      for (const queue of this.events.eventNames()) this.events.emit(queue);
    } catch (error) {
      this.reconnect(client, error);
    }
  }

  private reconnect(client: pg.Client, error: unknown): void {
    if (this.closed || (this.listener !== null && this.listener !== client)) return;
    if (this.listener === client || this.reconnectDelayMs === 100) {
      this.options.logger.warn(
        { err: error },
        'lost the connection that listens for new work; reconnecting',
      );
    }
    this.listener = null;
    client.removeAllListeners('end');
    void client.end().catch(() => undefined);
    const delay = this.reconnectDelayMs;
    this.reconnectDelayMs = Math.min(delay * 2, 5000);
    setTimeout(() => void this.listen(), delay).unref();
  }

  async close(): Promise<void> {
    this.closed = true;
    this.events.removeAllListeners();
    const client = this.listener;
    this.listener = null;
    if (client) {
      client.removeAllListeners('end');
      await client.end().catch(() => undefined);
    }
    await this.boss.stop({ graceful: false, close: false, wait: true }).catch(() => undefined);
  }
}

/** A queue on PostgreSQL through pg-boss: one pg-boss queue per taskq queue. */
export class PostgresBroker implements Broker {
  readonly type = 'postgres' as const;
  readonly transactional = true;
  readonly longPoll = false;
  /** PostgreSQL's jsonb takes up to 255 MB; far below that, a task this large is a mistake. */
  readonly maxMessageBytes = 64 * 1024 * 1024;
  readonly receiveLimit: number;
  readonly leaseSeconds: number;

  constructor(
    readonly queue: string,
    options: PostgresBrokerOptions,
    private readonly backend: PostgresBackend,
  ) {
    this.receiveLimit = options.receive;
    this.leaseSeconds = options.leaseSeconds;
  }

  async init(): Promise<void> {
    await this.backend.start();
    const settings = {
      retryLimit: BOSS_RETRY_LIMIT,
      retryDelay: 0,
      retryBackoff: false,
      expireInSeconds: this.leaseSeconds,
    };
    const existing = await this.backend.boss.getQueue(this.queue);
    if (existing)
      await this.backend.boss.updateQueue(this.queue, { name: this.queue, ...settings });
    else await this.backend.boss.createQueue(this.queue, { name: this.queue, ...settings });
  }

  async push(messages: OutgoingMessage[], db?: pg.PoolClient): Promise<void> {
    const jobs = messages.map(({ message, delaySeconds }) => ({
      id: message.id,
      name: this.queue,
      data: message,
      startAfter: delaySeconds > 0 ? `${delaySeconds} seconds` : undefined,
      retryLimit: BOSS_RETRY_LIMIT,
      expireInSeconds: this.leaseSeconds,
    }));
    const target = db ?? this.backend.pool;
    await this.backend.boss
      .insert(jobs as unknown as PgBoss.JobInsert[], { db: asDb(target) } as PgBoss.InsertOptions)
      .catch((error: unknown) => {
        throw this.explain(error);
      });
    // Inside a caller's transaction, the NOTIFY must wait for its commit to mean anything.
    if (db) await db.query('SELECT pg_notify($1, $2)', [WORK_CHANNEL, this.queue]);
    else this.backend.announce(this.queue);
  }

  /**
   * The task-log insert and the jobs in one statement: one round trip, one commit. The jobs are
   * written as pg-boss's insert writes them, with the queue's settings; a queue that `init`
   * never created has no partition, and the statement fails whole.
   *
   * The workers are told in the same statement when no other enqueue of this process is under
   * way, which is quickest; otherwise by `announce` after the commit, which lets concurrent
   * enqueues commit together (see there).
   */
  async pushAlong(messages: OutgoingMessage[], companion: SqlStatement): Promise<void> {
    const s = this.backend.schema;
    const n = companion.values.length;
    const p = (k: number) => `$${n + k}`;
    const inline = this.backend.enqueuesUnderWay === 0;
    const insertJobs = `
      INSERT INTO ${s}.job (id, name, data, start_after, expire_in, keep_until, retry_limit,
                            retry_delay, retry_backoff, dead_letter, policy)
      SELECT m.id, ${p(1)}, m.data, now() + m.delay * interval '1 second',
             COALESCE(q.expire_seconds, ${p(5)}) * interval '1 second',
             now() + m.delay * interval '1 second'
               + COALESCE(q.retention_minutes, 14 * 24 * 60) * interval '1 minute',
             COALESCE(q.retry_limit, ${p(6)}), COALESCE(q.retry_delay, 0),
             COALESCE(q.retry_backoff, false), q.dead_letter, q.policy
      FROM unnest(${p(2)}::uuid[], ${p(3)}::jsonb[], ${p(4)}::float8[]) AS m(id, data, delay)
      LEFT JOIN ${s}.queue q ON q.name = ${p(1)}`;
    const values = [
      ...companion.values,
      this.queue,
      messages.map(({ message }) => message.id),
      messages.map(({ message }) => JSON.stringify(message)),
      messages.map(({ delaySeconds }) => delaySeconds),
      this.leaseSeconds,
      BOSS_RETRY_LIMIT,
    ];
    this.backend.enqueuesUnderWay += 1;
    try {
      if (inline) {
        await this.backend.pool.query(
          `WITH tasks AS (${companion.text}), jobs AS (${insertJobs})
           SELECT pg_notify(${p(7)}, ${p(1)})`,
          [...values, WORK_CHANNEL],
        );
      } else {
        await this.backend.pool.query(`WITH tasks AS (${companion.text}) ${insertJobs}`, values);
      }
    } catch (error) {
      throw this.explain(error);
    } finally {
      this.backend.enqueuesUnderWay -= 1;
    }
    if (!inline) this.backend.announce(this.queue);
  }

  /**
   * Takes the jobs that became available first. pg-boss's own fetch orders by priority and
   * creation, which sorts every waiting job of the queue on each call; taskq sets no priority,
   * so ordering by availability alone lets pg-boss's fetch index hand out a batch in the order
   * it stores them, at a cost that does not grow with the queue's depth.
   */
  async receive(max: number): Promise<ReceivedMessage[]> {
    const s = this.backend.schema;
    const { rows } = await this.backend.pool.query<{
      id: string;
      data: unknown;
      retry_count: number;
      created_on: Date;
    }>(
      `WITH next AS (
         SELECT id FROM ${s}.job
         WHERE name = $1 AND state < 'active' AND start_after < now()
         ORDER BY start_after
         LIMIT $2
         FOR UPDATE SKIP LOCKED
       )
       UPDATE ${s}.job j
       SET state = 'active', started_on = now(),
           retry_count = CASE WHEN j.started_on IS NULL THEN j.retry_count ELSE j.retry_count + 1 END
       -- By key, whatever the planner estimates of the partition: a join could scan all of it.
       WHERE j.name = $1 AND j.id = ANY(ARRAY(SELECT id FROM next))
       RETURNING j.id, j.data, j.retry_count, j.created_on`,
      [this.queue, Math.min(max, this.receiveLimit)],
    );
    return rows.map((job) => ({
      queue: this.queue,
      body: job.data,
      receipt: job.id,
      deliveries: job.retry_count + 1,
      sentAt: job.created_on,
    }));
  }

  /**
   * Deletes the jobs: the task log keeps the outcome, so a completed copy in pg-boss's table
   * would only be written to be archived later. A delete writes no new row version.
   */
  async ack(messages: ReceivedMessage[], db?: pg.PoolClient): Promise<void> {
    if (messages.length === 0) return;
    await (db ?? this.backend.pool).query(
      `DELETE FROM ${this.backend.schema}.job j
       WHERE j.name = $1 AND j.state = 'active' AND ${THIS_DELIVERY}`,
      [this.queue, ...held(messages)],
    );
  }

  /** pg-boss has no call that hands an active job back, so this is one UPDATE of its job table. */
  async release(messages: ReceivedMessage[], delaySeconds: number): Promise<void> {
    if (messages.length === 0) return;
    await this.backend.pool.query(
      `UPDATE ${this.backend.schema}.job j
       SET state = 'retry', start_after = now() + $5 * interval '1 second'
       WHERE j.name = $1 AND j.state = 'active' AND ${THIS_DELIVERY}`,
      [this.queue, ...held(messages), delaySeconds],
    );
    if (delaySeconds <= 0) this.backend.announce(this.queue);
  }

  /** Leaves the job in pg-boss's `failed` state, its dead-letter state, with the reason. */
  async deadLetter(messages: ReceivedMessage[], reason: string): Promise<void> {
    if (messages.length === 0) return;
    await this.backend.pool.query(
      `UPDATE ${this.backend.schema}.job j
       SET state = 'failed', completed_on = now(), output = $5
       WHERE j.name = $1 AND j.state < 'completed' AND ${THIS_DELIVERY}`,
      [this.queue, ...held(messages), JSON.stringify({ reason })],
    );
  }

  async extendLease(messages: ReceivedMessage[], seconds: number): Promise<void> {
    if (messages.length === 0) return;
    await this.backend.pool.query(
      `UPDATE ${this.backend.schema}.job j
       SET expire_in = (now() - j.started_on) + $5 * interval '1 second'
       WHERE j.name = $1 AND j.state = 'active' AND ${THIS_DELIVERY}`,
      [this.queue, ...held(messages), seconds],
    );
  }

  async counts(): Promise<QueueCounts> {
    const { rows } = await this.backend.pool.query<{ waiting: string; in_flight: string }>(
      `SELECT count(*) FILTER (WHERE state < 'active') AS waiting,
              count(*) FILTER (WHERE state = 'active') AS in_flight
       FROM ${this.backend.schema}.job WHERE name = $1`,
      [this.queue],
    );
    return { waiting: Number(rows[0]?.waiting ?? 0), inFlight: Number(rows[0]?.in_flight ?? 0) };
  }

  /** A job is the task's message (the job id is the task id) while it is created, retry or active. */
  async probe(refs: MessageRef[]): Promise<Map<string, MessagePresence>> {
    const ids = refs.map((ref) => ref.taskId);
    const { rows } = await this.backend.pool.query<{ id: string }>(
      `SELECT id FROM ${this.backend.schema}.job
       WHERE name = $1 AND id = ANY($2::uuid[]) AND state < 'completed'`,
      [this.queue, ids],
    );
    const held = new Set(rows.map((row) => row.id));
    return new Map(ids.map((id) => [id, held.has(id) ? 'present' : 'missing']));
  }

  async redeliver(refs: MessageRef[]): Promise<Set<string>> {
    if (refs.length === 0) return new Set();
    const { rows } = await this.backend.pool.query<{ id: string }>(
      `UPDATE ${this.backend.schema}.job
       SET state = CASE WHEN state = 'active' THEN 'retry'::${this.backend.schema}.job_state ELSE state END,
           start_after = now()
       WHERE name = $1 AND id = ANY($2::uuid[]) AND state < 'completed'
       RETURNING id`,
      [this.queue, refs.map((ref) => ref.taskId)],
    );
    if (rows.length > 0)
      await this.backend.pool.query('SELECT pg_notify($1, $2)', [WORK_CHANNEL, this.queue]);
    return new Set(rows.map((row) => row.id));
  }

  /**
   * The job of an orphan may still sit in pg-boss's tables in a final state (completed or
   * failed, or in its archive), where it would keep the new job of the same id out: it goes
   * first, in the transaction that inserts the new one.
   */
  async requeue(messages: TaskMessage[]): Promise<void> {
    if (messages.length === 0) return;
    const ids = messages.map((message) => message.id);
    const s = this.backend.schema;
    await transaction(this.backend.pool, async (client) => {
      await client.query(
        `DELETE FROM ${s}.job WHERE name = $1 AND id = ANY($2::uuid[]) AND state >= 'completed'`,
        [this.queue, ids],
      );
      await client.query(`DELETE FROM ${s}.archive WHERE name = $1 AND id = ANY($2::uuid[])`, [
        this.queue,
        ids,
      ]);
      await this.push(
        messages.map((message) => ({ message, delaySeconds: 0 })),
        client,
      );
    });
  }

  onWork(listener: () => void): () => void {
    return this.backend.onWork(this.queue, listener);
  }

  /** A queue that `taskq init` never created shows up as a missing table or queue. */
  private explain(error: unknown): unknown {
    const code = (error as { code?: string }).code;
    if (!['42P01', '3F000', '23503', '23514'].includes(code ?? '')) return error;
    return new TaskqError(
      'QUEUE_NOT_INITIALIZED',
      `Queue "${this.queue}" does not exist in PostgreSQL yet; run \`taskq init\` (or start the supervisor) first`,
      { cause: error },
    );
  }

  async close(): Promise<void> {}
}
