import { ControlListener } from '../src/database/control-channel.js';
import type { Logger } from '../src/log/logger.js';
import { isQueuePaused, pausedQueues, type PausedQueues } from '../src/queues/pauses.js';
import type { Runtime } from '../src/runtime.js';
import { PAUSE_REREAD_MS } from '../src/worker/control.js';
import type { Fleet } from './fleet.js';

/** How often the tasks the fleet holds are checked for a cancel whose notice was missed. */
const CANCEL_RECHECK_MS = 2000;

export interface ControlWatchOptions {
  runtime: Runtime;
  fleet: Fleet;
  /** Read at each cancel: SIGHUP may change it. */
  cancelGraceSeconds: () => number;
  logger: Logger;
}

/**
 * The supervisor's side of the operators' actions in the database. It keeps the paused queues
 * for /healthz and the metrics (the workers apply them themselves), and it enforces the cancel
 * grace: when a task that one of its workers runs is cancelled, the worker aborts the handler;
 * if the handler is still running `cancelGraceSeconds` later, the supervisor recycles the worker.
 * This works even when the handler blocks its worker's event loop.
 */
export class ControlWatch {
  private readonly listener: ControlListener;
  private pauses: PausedQueues = { all: null, queues: [] };
  private readonly graceTimers = new Map<string, NodeJS.Timeout>();
  private readonly timers: NodeJS.Timeout[] = [];

  constructor(private readonly options: ControlWatchOptions) {
    const { runtime, logger } = options;
    this.listener = new ControlListener(runtime.db.url, runtime.config.database.schema, logger);
    this.listener.on('pause', () => void this.readPauses());
    this.listener.on('connected', () => {
      void this.readPauses();
      void this.recheckCancels();
    });
    this.listener.on('cancel', (id) => this.cancelled(id));
  }

  async start(): Promise<void> {
    await Promise.all([this.listener.start(), this.readPauses()]);
    this.timers.push(
      setInterval(() => void this.readPauses(), PAUSE_REREAD_MS),
      setInterval(() => void this.recheckCancels(), CANCEL_RECHECK_MS),
    );
    for (const timer of this.timers) timer.unref();
  }

  async close(): Promise<void> {
    for (const timer of [...this.timers, ...this.graceTimers.values()]) clearTimeout(timer);
    this.graceTimers.clear();
    await this.listener.close();
  }

  /** What is paused in the database, as last read. */
  get pausedQueues(): PausedQueues {
    return this.pauses;
  }

  isPaused(queue: string): boolean {
    return isQueuePaused(this.pauses, queue);
  }

  private async readPauses(): Promise<void> {
    try {
      this.pauses = await pausedQueues(this.options.runtime.taskLog);
    } catch (error) {
      this.options.logger.warn({ err: error }, 'could not read the paused queues');
    }
  }

  /** A task of the fleet was cancelled: its handler gets the grace to stop. */
  private cancelled(id: string): void {
    const { fleet, logger } = this.options;
    if (this.graceTimers.has(id) || !fleet.holds(id)) return;
    const graceSeconds = this.options.cancelGraceSeconds();
    const startedAt = Date.now();
    const timer = setTimeout(() => {
      this.graceTimers.delete(id);
      if (!fleet.holds(id) || !fleet.recycleHolder(id)) return;
      logger.warn(
        { taskId: id, graceSeconds },
        'the handler of a cancelled task ignored its AbortSignal; recycling its worker',
      );
      const afterSeconds = (Date.now() - startedAt) / 1000;
      void this.options.runtime.taskLog
        .recordStopped(id, 'supervisor', { afterSeconds, how: 'its worker was recycled' })
        .catch((error) => logger.warn({ err: error }, 'could not record a stopped task'));
    }, graceSeconds * 1000);
    timer.unref();
    this.graceTimers.set(id, timer);
  }

  /** The fallback for missed notices: held tasks that the task log shows cancelled or archived. */
  private async recheckCancels(): Promise<void> {
    const held = this.options.fleet.heldTaskIds();
    if (held.length === 0) return;
    try {
      const { rows } = await this.options.runtime.db.pool.query<{ id: string }>(
        `SELECT id FROM ${this.options.runtime.config.database.schema}.tasks
         WHERE id = ANY($1::uuid[]) AND status IN ('cancelled', 'archived')`,
        [held],
      );
      for (const row of rows) this.cancelled(row.id);
    } catch (error) {
      this.options.logger.warn(
        { err: error },
        'could not check the tasks of the fleet for cancels',
      );
    }
  }
}
