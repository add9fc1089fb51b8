import {
  cumulativeMetrics,
  labelProcessMetrics,
  sumSnapshots,
  type MetricSnapshot,
  type WorkerSnapshot,
} from './snapshot.js';

/** The metrics one slot's processes reported, past and present. */
interface SlotHistory {
  /** The counters of every process of the slot before `exited`, added up. */
  retired: MetricSnapshot[];
  /** The counters of the process that exited last: a late final snapshot may still replace them. */
  exited: WorkerSnapshot | null;
  /** The last snapshot of the running process, gauges and process metrics included. */
  live: WorkerSnapshot | null;
  /** Processes that exited, whose snapshots arriving late are ignored (all but `exited`). */
  gone: Set<string>;
}

/**
 * The last metrics of each worker process of a fleet, kept per slot so that the fleet's totals
 * never go backwards: when a process exits, its counters and histograms are folded into its
 * slot's retired totals, and its replacement counts on top of them. Gauges and process metrics
 * of an exited process are dropped with it.
 *
 * A snapshot carries the id of the process that took it, so one that arrives after its process
 * was retired (its final words, read after the exit) updates that process's share only.
 */
export class FleetSnapshots {
  private readonly slots = new Map<string, SlotHistory>();

  /** Keeps `snapshot` as the newest of its process, the process running in `slot`. */
  record(slot: string, snapshot: WorkerSnapshot): void {
    const history = this.history(slot);
    if (history.gone.has(snapshot.worker)) return;
    if (history.exited?.worker === snapshot.worker) {
      history.exited = { worker: snapshot.worker, metrics: cumulativeMetrics(snapshot.metrics) };
      return;
    }
    // A new process whose predecessor's exit was not reported: retire that one first.
    if (history.live && history.live.worker !== snapshot.worker)
      this.retire(slot, history.live.worker);
    history.live = snapshot;
  }

  /** The process `worker` of `slot` has exited. */
  retire(slot: string, worker: string): void {
    const history = this.history(slot);
    if (history.live?.worker !== worker) {
      // It never reported; whatever it might still send counts for nothing.
      if (history.exited?.worker !== worker) history.gone.add(worker);
      return;
    }
    if (history.exited) {
      history.retired = sumSnapshots([history.retired, history.exited.metrics]);
      history.gone.add(history.exited.worker);
    }
    history.exited = { worker, metrics: cumulativeMetrics(history.live.metrics) };
    history.live = null;
  }

  /**
   * Every slot's contribution, ready for `AggregatorRegistry.aggregate()`: retired totals, and
   * the live process's metrics with its process metrics labelled by worker.
   */
  lists(): MetricSnapshot[][] {
    const lists: MetricSnapshot[][] = [];
    for (const history of this.slots.values()) {
      lists.push(history.retired);
      if (history.exited) lists.push(history.exited.metrics);
      if (history.live) lists.push(labelProcessMetrics(history.live.metrics, history.live.worker));
    }
    return lists;
  }

  private history(slot: string): SlotHistory {
    let history = this.slots.get(slot);
    if (!history) {
      history = { retired: [], exited: null, live: null, gone: new Set() };
      this.slots.set(slot, history);
    }
    return history;
  }
}
