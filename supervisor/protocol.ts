import type { StrategyName, TaskqConfig } from '../src/config/types.js';
import type { TaskEnded, TaskStarted, WorkerState } from '../src/worker/worker.js';

/**
 * The messages between the supervisor and its worker processes, over the IPC channel of
 * `child_process.fork`. Stop, pause and resume travel as real signals; everything else is here.
 */
export type ToWorker =
  | { type: 'ping'; seq: number }
  | {
      type: 'configure';
      strategy: StrategyName;
      weights: [string, number][];
      /** Where the worker's own enqueues (children) go, as the supervisor's configuration says. */
      routing: Pick<TaskqConfig, 'associations' | 'defaultQueue'>;
    }
  | { type: 'stop'; timeoutSeconds: number }
  | { type: 'metrics-request'; seq: number };

export type FromWorker =
  | { type: 'state'; state: WorkerState }
  | ({ type: 'task-started' } & TaskStarted)
  | ({ type: 'task-ended' } & TaskEnded)
  | { type: 'pong'; seq: number; rssBytes: number; tasksDone: number; running: number }
  | { type: 'metrics'; seq: number; metrics: unknown }
  /** A timed-out handler goes on past its grace: only a new process stops it. */
  | { type: 'handler-abandoned'; taskId: string };

/** Environment of a forked worker: how the supervisor hands it its identity and start state. */
export const WORKER_ENV = {
  id: 'TASKQ_WORKER_ID',
  startPaused: 'TASKQ_WORKER_START_PAUSED',
  shutdownTimeoutSeconds: 'TASKQ_WORKER_SHUTDOWN_TIMEOUT_SECONDS',
} as const;

export function isFromWorker(value: unknown): value is FromWorker {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { type?: unknown }).type === 'string'
  );
}

export function isToWorker(value: unknown): value is ToWorker {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { type?: unknown }).type === 'string'
  );
}
