import { ControlListener } from '../database/control-channel.js';
import type { Logger } from '../log/logger.js';
import { pausedQueues, type PausedQueues } from '../queues/pauses.js';
import type { Runtime } from '../runtime.js';

/** How often the pauses are read again, in case a notice was lost with a connection. */
export const PAUSE_REREAD_MS = 5000;

/** What an operator's action asks of a worker. */
export interface Controllable {
  /** The queues on which no task may start; 'all' for every queue. */
  setPausedQueues(queues: ReadonlySet<string> | 'all'): void;
  /** Whether the worker holds this task now. */
  holds(id: string): boolean;
  /** Aborts a task cancelled in the task log and acknowledges its message. */
  cancelRunning(id: string): Promise<void>;
}

/**
 * Keeps a worker in step with the operators' actions that reach it through the database: queue
 * pauses (read at start, on every notice, every few seconds and after a reconnect) and cancels
 * of the tasks it runs (on the notice, checked against the task log before anything is done).
 */
export class WorkerControl {
  private readonly listener: ControlListener;
  private timer: NodeJS.Timeout | null = null;
  private reading: Promise<void> | null = null;
  private readAgain = false;

  constructor(
    private readonly runtime: Runtime,
    private readonly worker: Controllable,
    private readonly logger: Logger,
  ) {
    const { db, config } = runtime;
    this.listener = new ControlListener(db.url, config.database.schema, logger);
    this.listener.on('pause', () => void this.readPauses());
    this.listener.on('connected', () => void this.readPauses());
    this.listener.on('cancel', (id) => void this.cancel(id));
  }

  /** Resolves once the pauses have been read once, so that no task starts on a paused queue. */
  async start(): Promise<void> {
    await Promise.all([this.listener.start(), this.readPauses()]);
    this.timer = setInterval(() => void this.readPauses(), PAUSE_REREAD_MS);
    this.timer.unref();
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.listener.close();
    await this.reading;
  }

  /** One read at a time; a notice during a read makes one more read after it. */
  private readPauses(): Promise<void> {
    if (this.reading) {
      this.readAgain = true;
      return this.reading;
    }
    this.reading = (async () => {
      do {
        this.readAgain = false;
        try {
          this.worker.setPausedQueues(pausedSet(await pausedQueues(this.runtime.taskLog)));
        } catch (error) {
          this.logger.warn({ err: error }, 'could not read the paused queues; trying again');
        }
      } while (this.readAgain);
      this.reading = null;
    })();
    return this.reading;
  }

  private async cancel(id: string): Promise<void> {
    if (!this.worker.holds(id)) return;
    try {
      const { status } = await this.runtime.queries.get(id);
      // The notice is sent when a running task is cancelled or archived; the row says so still.
      if (status !== 'cancelled' && status !== 'archived') return;
      this.logger.info({ taskId: id, status }, 'task cancelled while it ran; aborting it');
      await this.worker.cancelRunning(id);
    } catch (error) {
      this.logger.warn(
        { err: error, taskId: id },
        'could not act on a cancel; the next heartbeat will',
      );
    }
  }
}

/** The queues a worker must not start tasks on. */
export function pausedSet(state: PausedQueues): ReadonlySet<string> | 'all' {
  if (state.all) return 'all';
  return new Set(state.queues.map((pause) => pause.queue!));
}
