import { EventEmitter } from 'node:events';

import type { TaskqConfig } from '../src/config/types.js';
import type { Logger } from '../src/log/logger.js';
import type { Fleet, FleetEvents, StopSummary, WorkerStatus } from './fleet.js';
import type { ToWorker } from './protocol.js';
import { WorkerSlot } from './worker-slot.js';

export interface ProcessFleetOptions {
  workers: number;
  entry: string;
  /** Arguments of every worker process, such as `--queue=NAME`. */
  args: string[];
  env: NodeJS.ProcessEnv;
  config: TaskqConfig;
  logger: Logger;
  /** Limits past which a worker is drained and replaced. */
  maxMemoryMb: number | null;
  maxTasks: number | null;
  /** How long a worker drains when it is recycled. */
  shutdownTimeoutSeconds: number;
}

const PING_INTERVAL_MS = 1000;
/** A recycled worker still alive this long past its drain is killed. */
const KILL_AFTER_DRAIN_SECONDS = 5;

/**
 * N worker processes, each in a slot that restarts it. The fleet pings every worker each
 * second; a worker that stops answering is killed, and one past its memory or task limit is
 * recycled, one at a time so that capacity never drops by more than one worker.
 */
export class ProcessFleet extends EventEmitter<FleetEvents> implements Fleet {
  readonly isolation = 'process' as const;
  private readonly slots: WorkerSlot[];
  private pingTimer: NodeJS.Timeout | null = null;
  private seq = 0;
  private recycling: WorkerSlot | null = null;
  private paused = false;
  private lastConfigure: ToWorker | null = null;

  constructor(private readonly options: ProcessFleetOptions) {
    super();
    const { supervisor } = options.config;
    this.slots = Array.from(
      { length: options.workers },
      (_, index) =>
        new WorkerSlot({
          index,
          entry: options.entry,
          args: options.args,
          env: options.env,
          logger: options.logger,
          maxRestarts: supervisor.maxRestarts,
          restartWindowSeconds: supervisor.restartWindowSeconds,
        }),
    );
    for (const slot of this.slots) {
      slot.on('orphans', (orphans) => this.emit('orphans', orphans));
      slot.on('restart', (reason) => this.emit('restart', reason));
      slot.on('message', (message) => {
        if (message.type === 'task-started' || message.type === 'task-ended')
          this.emit('work', message);
        if (message.type === 'handler-abandoned') this.recycleAbandoned(slot, message.taskId);
        // A worker that (re)started gets the current weights as soon as it reports its state.
        if (message.type === 'state' && message.state !== 'stopping' && this.lastConfigure)
          slot.send(this.lastConfigure);
      });
      slot.on('exit', () => {
        if (this.recycling === slot) this.recycling = null;
      });
    }
  }

  /** The slots, for observers that talk to each worker process, such as the metrics. */
  get workerSlots(): readonly WorkerSlot[] {
    return this.slots;
  }

  async start(): Promise<void> {
    for (const slot of this.slots) slot.start();
    this.pingTimer = setInterval(() => this.checkHealth(), PING_INTERVAL_MS);
    this.pingTimer.unref();
  }

  pause(): void {
    this.paused = true;
    for (const slot of this.slots) slot.pause();
  }

  resume(): void {
    this.paused = false;
    for (const slot of this.slots) slot.resume();
  }

  get isPaused(): boolean {
    return this.paused;
  }

  configure(message: Extract<ToWorker, { type: 'configure' }>): void {
    this.lastConfigure = message;
    for (const slot of this.slots) slot.send(message);
  }

  heldTaskIds(): string[] {
    return this.slots.flatMap((slot) => slot.held().map((held) => held.id));
  }

  holds(taskId: string): boolean {
    return this.holder(taskId) !== undefined;
  }

  /** A worker whose handler ran past its timeout and grace: its other tasks drain first. */
  private recycleAbandoned(slot: WorkerSlot, taskId: string): void {
    this.options.logger.warn(
      { taskId, worker: slot.workerId },
      'a timed-out handler ignored its AbortSignal; recycling its worker',
    );
    slot.recycle('recycle', this.options.shutdownTimeoutSeconds + KILL_AFTER_DRAIN_SECONDS);
  }

  /** Drains the worker and starts another; a worker still alive past the drain is killed. */
  recycleHolder(taskId: string): boolean {
    const slot = this.holder(taskId);
    if (!slot) return false;
    slot.recycle('recycle', this.options.shutdownTimeoutSeconds + KILL_AFTER_DRAIN_SECONDS);
    return true;
  }

  private holder(taskId: string): WorkerSlot | undefined {
    return this.slots.find((slot) => slot.alive && slot.held().some((held) => held.id === taskId));
  }

  runningByQueue(): Map<string, number> {
    const running = new Map<string, number>();
    for (const slot of this.slots)
      for (const holding of slot.held())
        running.set(holding.queue, (running.get(holding.queue) ?? 0) + 1);
    return running;
  }

  status(): WorkerStatus[] {
    return this.slots.map((slot) => ({
      id: slot.workerId,
      slot: slot.index,
      pid: slot.pid,
      state: slot.state,
      rssBytes: slot.rssBytes,
      tasksDone: slot.tasksDone,
      running: slot.held().length,
      restarts: slot.restarts,
    }));
  }

  /**
   * Forwards the stop signal; each worker drains for `timeoutSeconds` and then releases what
   * still runs. Workers still alive a few seconds past that are killed and their tasks released
   * by the supervisor.
   */
  async stop(signal: NodeJS.Signals, timeoutSeconds: number): Promise<StopSummary> {
    if (this.pingTimer) clearInterval(this.pingTimer);
    const running = this.slots.reduce((sum, slot) => sum + slot.held().length, 0);
    const killed: string[] = [];
    const graceMs = (timeoutSeconds + 5) * 1000;
    await Promise.all(
      this.slots.map(async (slot) => {
        const stopped = slot.stop(signal);
        const timer = setTimeout(() => {
          if (!slot.alive) return;
          killed.push(slot.workerId);
          slot.signal('SIGKILL');
        }, graceMs);
        await stopped;
        clearTimeout(timer);
      }),
    );
    return { runningAtSignal: running, killed };
  }

  /** A second stop signal: every worker aborts and releases its tasks, then is killed if it lingers. */
  async forceStop(): Promise<void> {
    for (const slot of this.slots) slot.signal('SIGTERM');
    const deadline = Date.now() + 3000;
    while (this.slots.some((slot) => slot.alive) && Date.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 50));
    for (const slot of this.slots) slot.signal('SIGKILL');
  }

  private checkHealth(): void {
    const now = Date.now();
    const { heartbeatTimeoutSeconds } = this.options.config.supervisor;
    this.seq += 1;
    for (const slot of this.slots) {
      if (!slot.alive) continue;
      if (now - slot.lastPongAt > heartbeatTimeoutSeconds * 1000) {
        this.options.logger.error(
          { workerId: slot.workerId },
          `worker did not answer for ${heartbeatTimeoutSeconds} s; killing it`,
        );
        slot.recycle('unresponsive');
        continue;
      }
      slot.send({ type: 'ping', seq: this.seq });
    }
    this.recycleOne();
  }

  private recycleOne(): void {
    if (this.recycling?.alive) return;
    const { maxMemoryMb, maxTasks } = this.options;
    const due = this.slots.find(
      (slot) =>
        slot.alive &&
        slot.state === 'running' &&
        ((maxMemoryMb !== null && slot.rssBytes > maxMemoryMb * 1024 * 1024) ||
          (maxTasks !== null && slot.tasksDone >= maxTasks)),
    );
    if (!due) return;
    this.options.logger.info(
      {
        workerId: due.workerId,
        rssMb: Math.round(due.rssBytes / 1048576),
        tasksDone: due.tasksDone,
      },
      'recycling a worker past its limits',
    );
    this.recycling = due;
    due.recycle('recycle');
  }
}
