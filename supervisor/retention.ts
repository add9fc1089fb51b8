import type { Logger } from '../src/log/logger.js';
import type { Runtime } from '../src/runtime.js';
import { TaskOperations } from '../src/tasklog/operations.js';

/**
 * Deletes expired tasks in the background, as the `retention` settings say: one sweep at start
 * and then every `retention.intervalSeconds`, each in batches (see TaskLogQueries.deleteExpired)
 * so that the workers' writes never wait long behind it. Off when neither period is set.
 */
export class RetentionSweeper {
  private timer: NodeJS.Timeout | null = null;
  private sweeping: Promise<void> | null = null;
  private readonly abort = new AbortController();

  constructor(
    private readonly runtime: Runtime,
    private readonly logger: Logger,
  ) {}

  start(): void {
    const { finishedDays, archivedDays, intervalSeconds } = this.runtime.config.retention;
    if (finishedDays === null && archivedDays === null) return;
    const sweep = () => {
      this.sweeping ??= this.sweep().finally(() => (this.sweeping = null));
    };
    sweep();
    this.timer = setInterval(sweep, intervalSeconds * 1000);
    this.timer.unref();
  }

  /** Stops the timer and ends a sweep in progress after its current batch. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.abort.abort();
    await this.sweeping;
  }

  private async sweep(): Promise<void> {
    try {
      const deleted = await new TaskOperations(this.runtime, 'retention').applyRetention(
        this.abort.signal,
      );
      if (deleted > 0) this.logger.info({ deleted }, 'deleted expired tasks');
    } catch (error) {
      this.logger.warn({ err: error }, 'retention sweep failed; the next one tries again');
    }
  }
}
