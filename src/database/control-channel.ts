import { EventEmitter } from 'node:events';

import pg from 'pg';

import type { Logger } from '../log/logger.js';

/**
 * The NOTIFY channel on which operators' actions reach every taskq process that shares the
 * database: a task cancelled (or archived) while it runs, and a queue paused or resumed. The
 * payload is JSON and names the task log's schema, so that two installations on one database
 * do not act on each other's news.
 */
export const CONTROL_CHANNEL = 'taskq_control';

export type ControlNotice =
  { schema: string; kind: 'cancel'; taskId: string } | { schema: string; kind: 'pause' };

export interface ControlEvents {
  /** A task left `running` by an operator's hand: its handler must stop. */
  cancel: [string];
  /** The paused queues changed. */
  pause: [];
  /** The listening connection is (again) up: news sent while it was down may have been missed. */
  connected: [];
}

/** Sends a notice; on a transaction's client it goes out when the transaction commits. */
export async function notifyControl(
  db: pg.Pool | pg.PoolClient,
  notice: ControlNotice,
): Promise<void> {
  await db.query('SELECT pg_notify($1, $2)', [CONTROL_CHANNEL, JSON.stringify(notice)]);
}

const FIRST_RECONNECT_MS = 100;
const MAX_RECONNECT_MS = 5000;

/**
 * One connection that LISTENs on the control channel and reconnects with a doubling delay when
 * it is lost. Subscribers re-read what they follow on `connected`, which covers the notices
 * sent while no one listened.
 */
export class ControlListener extends EventEmitter<ControlEvents> {
  private client: pg.Client | null = null;
  private closed = false;
  private reconnectDelayMs = FIRST_RECONNECT_MS;
  private opening: Promise<void> | undefined;
  /** Connections already given up, so that an error and an end of one reconnect only once. */
  private readonly lost = new WeakSet<pg.Client>();

  constructor(
    private readonly url: string,
    private readonly schema: string,
    private readonly logger: Logger,
  ) {
    super();
    this.setMaxListeners(0);
  }

  /** Connects; resolves after the first attempt, whether it succeeded or will be retried. */
  start(): Promise<void> {
    this.opening ??= this.connect();
    return this.opening;
  }

  async close(): Promise<void> {
    this.closed = true;
    const client = this.client;
    this.client = null;
    if (!client) return;
    client.removeAllListeners('end');
    await client.end().catch(() => undefined);
  }

  private async connect(): Promise<void> {
    if (this.closed) return;
    const client = new pg.Client({ connectionString: this.url, application_name: 'taskq-control' });
    client.on('notification', (note) => {
      if (note.channel === CONTROL_CHANNEL) this.dispatch(note.payload);
    });
    client.on('error', (error) => this.reconnect(client, error));
    client.on('end', () => this.reconnect(client, null));
    try {
      await client.connect();
      await client.query(`LISTEN ${CONTROL_CHANNEL}`);
      if (this.closed) {
        await client.end().catch(() => undefined);
        return;
      }
      this.client = client;
      if (this.reconnectDelayMs > FIRST_RECONNECT_MS)
        this.logger.info('listening for cancels and pauses again');
      this.reconnectDelayMs = FIRST_RECONNECT_MS;
      this.emit('connected');
    } catch (error) {
      this.reconnect(client, error);
    }
  }

  private dispatch(payload: string | undefined): void {
    let notice: Partial<ControlNotice>;
    try {
      notice = JSON.parse(payload ?? '') as Partial<ControlNotice>;
    } catch {
      return;
    }
    if (notice.schema !== this.schema) return;
    if (notice.kind === 'cancel' && typeof notice.taskId === 'string')
      this.emit('cancel', notice.taskId);
    else if (notice.kind === 'pause') this.emit('pause');
  }

  private reconnect(client: pg.Client, error: unknown): void {
    if (this.closed || this.lost.has(client)) return;
    this.lost.add(client);
    if (this.client === client || this.reconnectDelayMs === FIRST_RECONNECT_MS)
      this.logger.warn(
        { err: error },
        'lost the connection that listens for cancels and pauses; reconnecting',
      );
    this.client = null;
    client.removeAllListeners('end');
    void client.end().catch(() => undefined);
    const delay = this.reconnectDelayMs;
    this.reconnectDelayMs = Math.min(delay * 2, MAX_RECONNECT_MS);
    setTimeout(() => void this.connect(), delay).unref();
  }
}
