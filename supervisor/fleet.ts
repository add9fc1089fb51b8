import type { FromWorker, ToWorker } from './protocol.js';
import type { Holding, RestartReason } from './worker-slot.js';

/** What /healthz and the metrics show of one worker. */
export interface WorkerStatus {
  id: string;
  slot: number;
  pid: number | null;
  state: string;
  rssBytes: number;
  tasksDone: number;
  running: number;
  restarts: number;
}

export interface StopSummary {
  /** Tasks running when the stop signal came. */
  runningAtSignal: number;
  /** Workers that had to be killed after the deadline. */
  killed: string[];
}

export interface FleetEvents {
  orphans: [{ workerId: string; holdings: Holding[]; reason: string }];
  restart: [RestartReason];
  work: [Extract<FromWorker, { type: 'task-started' | 'task-ended' }>];
}

/** The workers of a supervisor, as processes or as threads of one in-process worker. */
export interface Fleet {
  readonly isolation: 'process' | 'thread';
  readonly isPaused: boolean;
  start(): Promise<void>;
  pause(): void;
  resume(): void;
  configure(message: Extract<ToWorker, { type: 'configure' }>): void;
  runningByQueue(): Map<string, number>;
  /** The ids of the tasks the workers hold now. */
  heldTaskIds(): string[];
  /** Whether one of the workers holds this task now. */
  holds(taskId: string): boolean;
  /**
   * Replaces the worker (process isolation) or the thread (thread isolation) that runs a task
   * whose handler ignored its cancel; counted as a restart for `recycle`. False if none runs it.
   */
  recycleHolder(taskId: string): boolean;
  status(): WorkerStatus[];
  stop(signal: NodeJS.Signals, timeoutSeconds: number): Promise<StopSummary>;
  forceStop(): Promise<void>;
  on<K extends keyof FleetEvents>(event: K, listener: (...args: FleetEvents[K]) => void): this;
}
