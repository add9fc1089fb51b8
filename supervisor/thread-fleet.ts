import { EventEmitter } from 'node:events';
import os from 'node:os';

import { TaskqClient } from '../src/client.js';
import { TaskqError } from '../src/errors.js';
import type { Runtime } from '../src/runtime.js';
import { Worker } from '../src/worker/worker.js';
import type { Fleet, FleetEvents, StopSummary, WorkerStatus } from './fleet.js';
import type { ToWorker } from './protocol.js';
import { ThreadExecutor } from './thread-executor.js';

export interface ThreadFleetOptions {
  threads: number;
  queue?: string;
  runtime: Runtime;
}

/**
 * `--isolation=thread`: one worker inside the supervisor's process, whose handlers run in a
 * piscina pool of N threads, `worker.concurrency` at a time in each (as many as N worker
 * processes would run). No IPC and no process per worker; a handler that crashes
 * its thread fails its task, but one that crashes the process takes the fleet with it.
 */
export class ThreadFleet extends EventEmitter<FleetEvents> implements Fleet {
  readonly isolation = 'thread' as const;
  readonly worker: Worker;
  private readonly executor: ThreadExecutor;
  private running: Promise<void> | null = null;

  constructor(options: ThreadFleetOptions) {
    super();
    const { runtime } = options;
    if (!runtime.config.handlers) {
      throw new TaskqError(
        'HANDLERS_REQUIRED',
        'Thread isolation needs a handlers module: set "handlers" in the configuration',
      );
    }
    const perThread = runtime.config.worker.concurrency;
    this.executor = new ThreadExecutor(runtime.config.handlers, options.threads, perThread);
    const client = new TaskqClient(runtime, 'worker');
    this.worker = new Worker(runtime, {
      id: `${os.hostname()}/threads.${process.pid}`,
      queues: options.queue ? [options.queue] : undefined,
      concurrency: options.threads * perThread,
      executor: this.executor,
      enqueue: (name, parameters, enqueueOptions) =>
        client.enqueue(name, parameters, enqueueOptions).then((task) => task.id),
    });
    this.worker.on('task-started', (task) => this.emit('work', { type: 'task-started', ...task }));
    this.worker.on('task-ended', (task) => this.emit('work', { type: 'task-ended', ...task }));
    // A timed-out handler that ignores its AbortSignal past the grace: its thread is ended.
    this.worker.on('handler-abandoned', (taskId) => {
      if (this.executor.terminate(taskId)) this.emit('restart', 'recycle');
    });
  }

  async start(): Promise<void> {
    this.running = this.worker.run();
  }

  get isPaused(): boolean {
    return this.worker.currentState === 'paused';
  }

  pause(): void {
    this.worker.pause();
  }

  resume(): void {
    this.worker.resume();
  }

  configure(message: Extract<ToWorker, { type: 'configure' }>): void {
    this.worker.setStrategy(message.strategy);
    this.worker.setWeights(new Map(message.weights));
  }

  heldTaskIds(): string[] {
    return this.worker.holdings().map((task) => task.id);
  }

  holds(taskId: string): boolean {
    return this.worker.holds(taskId);
  }

  recycleHolder(taskId: string): boolean {
    if (!this.executor.terminate(taskId)) return false;
    this.emit('restart', 'recycle');
    return true;
  }

  runningByQueue(): Map<string, number> {
    const running = new Map<string, number>();
    for (const task of this.worker.holdings())
      running.set(task.queue, (running.get(task.queue) ?? 0) + 1);
    return running;
  }

  status(): WorkerStatus[] {
    return [
      {
        id: this.worker.id,
        slot: 0,
        pid: process.pid,
        state: this.worker.currentState,
        rssBytes: process.memoryUsage.rss(),
        tasksDone: this.worker.tasksDone,
        running: this.worker.activeCount,
        restarts: 0,
      },
    ];
  }

  async stop(_signal: NodeJS.Signals, timeoutSeconds: number): Promise<StopSummary> {
    const runningAtSignal = this.worker.activeCount;
    await this.worker.stop(timeoutSeconds);
    await this.running;
    await this.executor.close();
    return { runningAtSignal, killed: [] };
  }

  async forceStop(): Promise<void> {
    await this.worker.forceStop();
  }
}
