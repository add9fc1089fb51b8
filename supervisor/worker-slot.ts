import { fork, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import os from 'node:os';

import type { Logger } from '../src/log/logger.js';
import type { WorkerState } from '../src/worker/worker.js';
import { isFromWorker, type FromWorker, type ToWorker } from './protocol.js';

/**
 * A worker's young generation is capped at 2 MB a half: V8 otherwise grows it to 16 MB a half
 * during a burst of tasks and never gives it back, which is most of an idle worker's memory.
 * Measured on no-op tasks, the smaller cap costs no throughput. The supervisor's own entry
 * (`taskq-supervisor`, `npm start`) starts with the same cap.
 */
export const WORKER_V8_FLAGS = ['--max-semi-space-size=2'];

/** A task a worker told the supervisor it holds. */
export interface Holding {
  id: string;
  queue: string;
  receipt: string;
}

export const SLOT_STATES = [
  'starting',
  'running',
  'paused',
  'stopping',
  'backoff',
  'given-up',
  'stopped',
] as const;
export type SlotState = (typeof SLOT_STATES)[number];

export const RESTART_REASONS = ['crash', 'recycle', 'unresponsive'] as const;
export type RestartReason = (typeof RESTART_REASONS)[number];

export interface SlotOptions {
  index: number;
  entry: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  logger: Logger;
  maxRestarts: number;
  restartWindowSeconds: number;
}

export interface SlotEvents {
  /** The process ended with tasks still held: they must be released at once. */
  orphans: [{ workerId: string; holdings: Holding[]; reason: string }];
  restart: [RestartReason];
  exit: [{ workerId: string; code: number | null; signal: NodeJS.Signals | null }];
  message: [FromWorker];
}

const FIRST_BACKOFF_MS = 100;
const MAX_BACKOFF_MS = 30_000;
const HEALTHY_AFTER_MS = 60_000;

/**
 * One place in the fleet, held by one worker process at a time. The slot restarts its process
 * when it dies, with a backoff that doubles from 100 ms to 30 s and resets after a minute of
 * health, and gives up after `maxRestarts` restarts within `restartWindowSeconds`: restart
 * intensity, as an Erlang/OTP supervisor has it.
 */
export class WorkerSlot extends EventEmitter<SlotEvents> {
  readonly index: number;
  private child: ChildProcess | null = null;
  private generation = 0;
  private workerState: WorkerState | 'starting' = 'starting';
  private slotState: SlotState = 'starting';
  private readonly holdings = new Map<string, Holding>();
  private readonly restartTimes: number[] = [];
  private consecutiveFailures = 0;
  private startedAt = 0;
  private restartTimer: NodeJS.Timeout | null = null;
  private nextExitReason: RestartReason = 'crash';
  private stopping = false;
  paused = false;
  restarts = 0;
  rssBytes = 0;
  tasksDone = 0;
  lastPongAt = 0;

  constructor(private readonly options: SlotOptions) {
    super();
    this.index = options.index;
  }

  /**
   * Names the current process in the task log: host, supervisor, slot and incarnation. The
   * supervisor's pid keeps apart the workers of two supervisors on one host (or on hosts that
   * share a name, as containers may).
   */
  get workerId(): string {
    return `${os.hostname()}:${process.pid}/w${this.index}.${this.generation}`;
  }

  get pid(): number | null {
    return this.child?.pid ?? null;
  }

  get state(): SlotState {
    if (this.slotState !== 'running') return this.slotState;
    if (this.workerState === 'starting') return 'starting';
    return this.workerState === 'paused'
      ? 'paused'
      : this.workerState === 'stopping'
        ? 'stopping'
        : 'running';
  }

  get alive(): boolean {
    return this.child !== null && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** The tasks the current process holds. */
  held(): Holding[] {
    return [...this.holdings.values()];
  }

  start(): void {
    this.generation += 1;
    this.holdings.clear();
    this.slotState = 'running';
    this.workerState = 'starting';
    this.startedAt = Date.now();
    this.lastPongAt = Date.now();
    this.nextExitReason = 'crash';
    const env = {
      ...this.options.env,
      TASKQ_WORKER_ID: this.workerId,
      TASKQ_WORKER_START_PAUSED: this.paused ? '1' : '0',
    };
    const child = fork(this.options.entry, this.options.args, {
      env,
      execArgv: [...process.execArgv, ...WORKER_V8_FLAGS],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.child = child;
    const workerId = this.workerId;
    child.on('message', (message) => this.onMessage(message));
    child.on('exit', (code, signal) => this.onExit(child, workerId, code, signal));
    child.on('error', (error) =>
      this.options.logger.error({ err: error, workerId }, 'worker process error'),
    );
    this.options.logger.info({ workerId, pid: child.pid }, 'worker process started');
  }

  send(message: ToWorker): void {
    if (this.child?.connected) this.child.send(message, (error) => error && undefined);
  }

  /** Pauses the worker; one still starting gets the pause when it reports its state. */
  pause(): void {
    this.paused = true;
    if (this.workerState !== 'starting') this.signal('SIGUSR2');
  }

  resume(): void {
    this.paused = false;
    if (this.workerState !== 'starting') this.signal('SIGCONT');
  }

  signal(signal: NodeJS.Signals): void {
    if (this.alive) this.child!.kill(signal);
  }

  /**
   * Drains the current process and starts a new one in its place (not counted as a crash);
   * with `killAfterSeconds`, a process still alive that long after is killed.
   */
  recycle(reason: 'recycle' | 'unresponsive', killAfterSeconds?: number): void {
    this.nextExitReason = reason;
    this.signal(reason === 'unresponsive' ? 'SIGKILL' : 'SIGTERM');
    const child = this.child;
    if (killAfterSeconds === undefined || !child) return;
    const timer = setTimeout(() => {
      if (this.child === child && this.alive) this.signal('SIGKILL');
    }, killAfterSeconds * 1000);
    timer.unref();
    child.once('exit', () => clearTimeout(timer));
  }

  /** Stops for good: no restart after the process exits. Resolves when it has. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    this.stopping = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    if (!this.alive) {
      this.slotState = 'stopped';
      return;
    }
    this.slotState = 'stopping';
    const exited = new Promise<void>((resolve) => this.once('exit', () => resolve()));
    this.signal(signal);
    await exited;
  }

  private onMessage(message: unknown): void {
    if (!isFromWorker(message)) return;
    switch (message.type) {
      case 'state':
        // A pause or resume that came while the process was starting reaches it now.
        if (this.workerState === 'starting' && (message.state === 'paused') !== this.paused) {
          this.signal(this.paused ? 'SIGUSR2' : 'SIGCONT');
        }
        this.workerState = message.state;
        break;
      case 'task-started':
        this.holdings.set(message.id, {
          id: message.id,
          queue: message.queue,
          receipt: message.receipt,
        });
        break;
      case 'task-ended':
        this.holdings.delete(message.id);
        break;
      case 'pong':
        this.lastPongAt = Date.now();
        this.rssBytes = message.rssBytes;
        this.tasksDone = message.tasksDone;
        break;
    }
    this.emit('message', message);
  }

  private onExit(
    child: ChildProcess,
    workerId: string,
    code: number | null,
    signal: NodeJS.Signals | null,
  ): void {
    if (child !== this.child) return;
    const holdings = this.held();
    this.holdings.clear();
    this.child = null;
    this.emit('exit', { workerId, code, signal });
    if (holdings.length > 0)
      this.emit('orphans', {
        workerId,
        holdings,
        reason: `worker exited (${signal ?? `code ${code}`})`,
      });

    if (this.stopping) {
      this.slotState = 'stopped';
      return;
    }
    const reason = this.nextExitReason;
    if (reason === 'recycle') {
      this.restarts += 1;
      this.emit('restart', reason);
      this.start();
      return;
    }
    this.options.logger.warn(
      { workerId, code, signal, reason },
      'worker process exited unexpectedly',
    );
    this.scheduleRestart(reason);
  }

  private scheduleRestart(reason: RestartReason): void {
    const now = Date.now();
    if (now - this.startedAt > HEALTHY_AFTER_MS) this.consecutiveFailures = 0;
    const windowStart = now - this.options.restartWindowSeconds * 1000;
    while (this.restartTimes.length > 0 && this.restartTimes[0]! < windowStart)
      this.restartTimes.shift();
    if (this.restartTimes.length >= this.options.maxRestarts) {
      this.slotState = 'given-up';
      this.options.logger.error(
        {
          slot: this.index,
          restarts: this.restartTimes.length,
          windowSeconds: this.options.restartWindowSeconds,
        },
        'worker slot restarted too often; giving it up (the other slots go on)',
      );
      return;
    }
    const delay = Math.min(MAX_BACKOFF_MS, FIRST_BACKOFF_MS * 2 ** this.consecutiveFailures);
    this.consecutiveFailures += 1;
    this.restartTimes.push(now);
    this.slotState = 'backoff';
    this.restartTimer = setTimeout(() => {
      this.restartTimer = null;
      if (this.stopping) return;
      this.restarts += 1;
      this.emit('restart', reason);
      this.start();
    }, delay);
  }
}
