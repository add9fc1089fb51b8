import type { Fleet } from './fleet.js';
import type { QueueView } from './weight-controller.js';

export interface QueueSample {
  at: string;
  waiting: number | null;
  inFlight: number | null;
  /** Tasks of the queue that ended since the sample before. */
  ended: number;
}

const SAMPLE_INTERVAL_MS = 5000;
/** Ten minutes of samples. */
const SAMPLES_KEPT = 120;

/**
 * The last minutes of each queue, for the web page's charts: depth and in-flight tasks as the
 * weight controller last read them, and the tasks that ended, counted from the workers' reports.
 * Kept in the supervisor's memory only; a restart starts the charts afresh.
 */
export class QueueHistory {
  private readonly samples = new Map<string, QueueSample[]>();
  private readonly ended = new Map<string, number>();
  private timer: NodeJS.Timeout | null = null;

  constructor(
    fleet: Fleet,
    private readonly views: () => QueueView[],
    private readonly intervalMs = SAMPLE_INTERVAL_MS,
  ) {
    fleet.on('work', (message) => {
      if (message.type !== 'task-ended') return;
      this.ended.set(message.queue, (this.ended.get(message.queue) ?? 0) + 1);
    });
  }

  start(): void {
    this.timer = setInterval(() => this.sample(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  of(queue: string): QueueSample[] {
    return this.samples.get(queue) ?? [];
  }

  private sample(): void {
    const at = new Date().toISOString();
    for (const view of this.views()) {
      const list = this.samples.get(view.name) ?? [];
      list.push({
        at,
        waiting: view.waiting,
        inFlight: view.inFlight,
        ended: this.ended.get(view.name) ?? 0,
      });
      if (list.length > SAMPLES_KEPT) list.shift();
      this.samples.set(view.name, list);
      this.ended.set(view.name, 0);
    }
  }
}
