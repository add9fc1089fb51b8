/**
 * The entry of a worker process forked by the supervisor: `taskq worker`, plus the IPC channel
 * over which it reports the tasks it holds and answers pings. Stop, pause and resume arrive as
 * signals, exactly as they do for a standalone worker.
 */
import { setTimeout as delay } from 'node:timers/promises';

import { TaskqClient } from '../src/client.js';
import { loadConfig } from '../src/config/load.js';
import type { TaskqConfig } from '../src/config/types.js';
import { isConnectionError } from '../src/database/connection.js';
import { createLogger } from '../src/log/logger.js';
import { WorkerMetrics } from '../src/metrics/worker-metrics.js';
import { openRuntime, type Runtime } from '../src/runtime.js';
import { installSignalHandlers, workerSignalTarget } from '../src/worker/signals.js';
import { Worker } from '../src/worker/worker.js';
import { WORKER_ENV, isToWorker, type FromWorker } from '../supervisor/protocol.js';

// Until the worker exists, a pause or resume must not end the process (SIGUSR2's default);
// the supervisor sends the state it wants again once the worker reports its own.
process.on('SIGUSR2', () => {});
process.on('SIGCONT', () => {});

/** How long an orphaned worker may take past its shutdown timeout before it exits anyway. */
const ORPHAN_EXIT_GRACE_SECONDS = 5;

const id = process.env[WORKER_ENV.id] ?? `worker:${process.pid}`;
const logger = createLogger({ bindings: { worker: id } });

function send(message: FromWorker): void {
  if (process.connected) process.send?.(message);
}

/** Resolves once the message is written to the channel, so that it outlives a disconnect. */
function sendNow(message: FromWorker): Promise<void> {
  return new Promise((resolve) => {
    if (!process.connected || !process.send) return resolve();
    process.send(message, undefined, undefined, () => resolve());
  });
}

/** Longest wait between two tries to reach the database at start. */
const START_RETRY_MAX_MS = 5_000;

/**
 * Opens the runtime, waiting for the database as long as it cannot be reached: a worker that
 * starts while PostgreSQL restarts must not crash until its slot's restart limit gives up on it.
 * Meanwhile it answers the supervisor's pings, and a stop or a lost supervisor ends the wait
 * (null).
 */
async function openWhenReachable(config: TaskqConfig): Promise<Runtime | null> {
  let stopped = false;
  const duringStart = (message: unknown) => {
    if (!isToWorker(message)) return;
    if (message.type === 'ping') {
      const rssBytes = process.memoryUsage.rss();
      send({ type: 'pong', seq: message.seq, rssBytes, tasksDone: 0, running: 0 });
    } else if (message.type === 'stop') stopped = true;
  };
  const onDisconnect = () => (stopped = true);
  process.on('message', duringStart);
  process.on('disconnect', onDisconnect);
  try {
    for (
      let delayMs = 250, waiting = false;
      ;
      delayMs = Math.min(delayMs * 2, START_RETRY_MAX_MS)
    ) {
      try {
        const runtime = await openRuntime(config, logger, { supervise: true, initQueues: false });
        if (waiting) logger.info('the database is reachable; starting');
        return runtime;
      } catch (error) {
        if (!isConnectionError(error)) throw error;
        if (!waiting) logger.warn({ err: error }, 'the database is unreachable; waiting for it');
        waiting = true;
      }
      if (!stopped) await delay(delayMs);
      if (stopped) return null;
    }
  } finally {
    process.off('message', duringStart);
    process.off('disconnect', onDisconnect);
  }
}

async function main(): Promise<void> {
  const queue = process.argv.find((arg) => arg.startsWith('--queue='))?.slice('--queue='.length);
  const config = loadConfig();
  const runtime = await openWhenReachable(config);
  if (!runtime) return;
  const client = new TaskqClient(runtime, id);
  const worker = new Worker(runtime, {
    id,
    queues: queue ? [queue] : undefined,
    paused: process.env[WORKER_ENV.startPaused] === '1',
    enqueue: (name, parameters, options) =>
      client.enqueue(name, parameters, options).then((task) => task.id),
  });
  // Enqueues (children) and process metrics: the supervisor asks at each scrape, and gets the
  // last ones at exit. What the tasks do it counts from the task reports sent below.
  const metrics = config.metrics.enabled ? new WorkerMetrics({ processMetrics: true }) : null;
  metrics?.observe(runtime.events);
  const sendMetrics = async (seq: number) => {
    if (metrics)
      await sendNow({
        type: 'metrics',
        seq,
        metrics: { worker: id, metrics: await metrics.getMetricsAsJSON() },
      });
  };
  const shutdownSeconds = Number(
    process.env[WORKER_ENV.shutdownTimeoutSeconds] ?? config.worker.shutdownTimeoutSeconds,
  );

  worker.on('state', (state) => send({ type: 'state', state }));
  worker.on('task-started', (task) => send({ type: 'task-started', ...task }));
  worker.on('task-ended', (task) => send({ type: 'task-ended', ...task }));
  worker.on('handler-abandoned', (taskId) => send({ type: 'handler-abandoned', taskId }));
  process.on('message', (message) => {
    if (!isToWorker(message)) return;
    if (message.type === 'ping') {
      const rssBytes = process.memoryUsage.rss();
      send({
        type: 'pong',
        seq: message.seq,
        rssBytes,
        tasksDone: worker.tasksDone,
        running: worker.activeCount,
      });
    } else if (message.type === 'configure') {
      worker.setStrategy(message.strategy);
      worker.setWeights(new Map(message.weights));
      // A reloaded association map reaches the children this worker's tasks enqueue.
      runtime.dispatcher.update({ queues: runtime.config.queues, ...message.routing });
    } else if (message.type === 'stop') {
      void worker.stop(message.timeoutSeconds);
    } else if (message.type === 'metrics-request') {
      void sendMetrics(message.seq);
    }
  });
  // Without its supervisor a worker stops taking tasks: nothing would release them if it died.
  process.on('disconnect', () => {
    if (worker.currentState === 'stopping' || worker.currentState === 'stopped') return;
    logger.warn('the supervisor is gone; stopping');
    void worker.stop(shutdownSeconds);
    // A drain that cannot finish (a database that stopped answering holds every release and
    // close) must not leave an orphan behind: the leases give its tasks back in the end.
    setTimeout(
      () => {
        logger.error({ shutdownSeconds }, 'the drain without a supervisor did not end; exiting');
        process.exit(1);
      },
      (shutdownSeconds + ORPHAN_EXIT_GRACE_SECONDS) * 1000,
    ).unref();
  });

  const removeHandlers = installSignalHandlers(workerSignalTarget(worker, shutdownSeconds), logger);
  try {
    await worker.run();
  } finally {
    removeHandlers();
    await runtime.close();
    await sendMetrics(0);
    process.disconnect?.();
  }
}

main().catch((error) => {
  logger.fatal({ err: error }, 'worker failed to start or run');
  process.exitCode = 1;
});
