import { EventEmitter } from 'node:events';

/**
 * News of new work for the brokers that have no notification channel of their own (memory, and
 * SQS within one process): listeners hear of a push at once, and of a delayed message when it
 * becomes visible. Of several delayed wake-ups only the earliest is kept: a later one would be
 * found by that wake-up's receive or by the worker's idle poll.
 */
export class WorkAnnouncer {
  private readonly events = new EventEmitter();
  private timer: NodeJS.Timeout | undefined;
  private wakeAt = Infinity;

  constructor() {
    // Every worker of the process subscribes; there is no leak to warn about.
    this.events.setMaxListeners(0);
  }

  subscribe(listener: () => void): () => void {
    this.events.on('work', listener);
    return () => this.events.off('work', listener);
  }

  announce(delaySeconds = 0): void {
    if (delaySeconds <= 0) {
      this.events.emit('work');
      return;
    }
    const at = Date.now() + delaySeconds * 1000;
    if (at >= this.wakeAt) return;
    clearTimeout(this.timer);
    this.wakeAt = at;
    this.timer = setTimeout(() => {
      this.wakeAt = Infinity;
      this.events.emit('work');
    }, delaySeconds * 1000);
    this.timer.unref();
  }

  close(): void {
    clearTimeout(this.timer);
    this.wakeAt = Infinity;
    this.events.removeAllListeners();
  }
}
