import type { Logger } from '../log/logger.js';

export interface Stoppable {
  /** Drains; `signal` is the one received, for a supervisor that forwards it. */
  stop(signal?: NodeJS.Signals): Promise<void>;
  forceStop(): Promise<void>;
  pause(): void;
  resume(): void;
}

export const STOP_SIGNALS = ['SIGTERM', 'SIGINT', 'SIGQUIT'] as const;

/**
 * Signals of a process that owns a worker (or a fleet): the first stop signal drains, a second
 * one forces; SIGUSR2 pauses and SIGCONT resumes. Only entry points call this: library code
 * never installs signal handlers. Returns a function that removes the handlers.
 */
export function installSignalHandlers(target: Stoppable, logger: Logger): () => void {
  let stopping = false;
  const onStop = (signal: NodeJS.Signals) => {
    if (!stopping) {
      stopping = true;
      logger.info({ signal }, `${signal}: draining; send it again to stop at once`);
      void target.stop(signal);
      return;
    }
    logger.warn({ signal }, `${signal} again: aborting running tasks and releasing them`);
    void target.forceStop();
  };
  const onPause = () => {
    logger.info({ signal: 'SIGUSR2' }, 'SIGUSR2: pausing');
    target.pause();
  };
  const onResume = () => {
    logger.info({ signal: 'SIGCONT' }, 'SIGCONT: resuming');
    target.resume();
  };

  for (const signal of STOP_SIGNALS) process.on(signal, onStop);
  process.on('SIGUSR2', onPause);
  process.on('SIGCONT', onResume);
  return () => {
    for (const signal of STOP_SIGNALS) process.off(signal, onStop);
    process.off('SIGUSR2', onPause);
    process.off('SIGCONT', onResume);
  };
}

/** What the signals of a worker's own process do to it: drain for `timeoutSeconds`, or force. */
export function workerSignalTarget(
  worker: {
    stop(timeoutSeconds?: number): Promise<void>;
    forceStop(): Promise<void>;
    pause(): void;
    resume(): void;
  },
  timeoutSeconds?: number,
): Stoppable {
  return {
    stop: () => worker.stop(timeoutSeconds),
    forceStop: () => worker.forceStop(),
    pause: () => worker.pause(),
    resume: () => worker.resume(),
  };
}
