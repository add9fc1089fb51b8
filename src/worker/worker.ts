import { EventEmitter } from 'node:events';

import type { Broker, ReceivedMessage } from '../brokers/broker.js';
import { transaction } from '../database/connection.js';
import type { Logger } from '../log/logger.js';
import type { StrategyName } from '../config/types.js';
import { createSelector, type QueueSelector } from '../queues/strategies.js';
import type { Runtime } from '../runtime.js';
import { decodeMessage, type TaskMessage } from '../tasks/message.js';
import { errorReport, report, type Report } from '../tasks/report.js';
import type { Outcome, StartResult } from '../tasklog/task-log.js';
import { CancelAbort, runAttempt, ShutdownAbort, type AttemptDeps } from './attempt.js';
import { TaskAbort } from './abort.js';
import { Batcher } from './batcher.js';
import { WorkerControl, type Controllable } from './control.js';
import { inlineExecutor, type Executor } from './executor.js';

export const WORKER_STATES = ['starting', 'running', 'paused', 'stopping', 'stopped'] as const;
export type WorkerState = (typeof WORKER_STATES)[number];

export interface WorkerOptions {
  /** Names this worker in the task log and in logs. */
  id: string;
  /** The queues to take tasks from; all configured queues by default. */
  queues?: string[];
  concurrency?: number;
  /** Stop after starting this many tasks. */
  limit?: number;
  executor?: Executor;
  /** Tasks enqueued by handlers (children) go through this; without it children are refused. */
  enqueue?: (
    name: string,
    parameters: unknown,
    options: { label?: string; queue?: string; parentId: string },
  ) => Promise<string>;
  /** Start paused (a supervisor's fleet that is paused). */
  paused?: boolean;
}

/** An outcome on its way to the task log, with the task it ends. */
interface Finishing {
  outcome: Outcome;
  task: ActiveTask;
}

interface Finished {
  written: boolean;
  /** Acknowledged to its broker in the same transaction. */
  acked: boolean;
  /** Not written because an operator handed the task back to its queue while it ran. */
  requeued: boolean;
}

/** A task this worker holds, from its start in the task log to its broker's ack. */
interface ActiveTask {
  message: TaskMessage;
  received: ReceivedMessage;
  broker: Broker;
  abort: TaskAbort;
  startedAt: number;
  /** How long the handler ran, once it has returned. */
  runSeconds: number | null;
  leasedAt: number;
  /** Given back to the broker; a late outcome must not touch the message any more. */
  released: boolean;
  /** When an operator's cancel reached it; its message is acknowledged then. */
  cancelledAt: number | null;
}

/** How a task left the worker: its outcome, or released back to its queue, or lost to an error. */
export type TaskEnd =
  'completed' | 'failed' | 'cancelled' | 'retried' | 'child_running' | 'released' | 'lost';

export interface TaskStarted {
  id: string;
  name: string;
  queue: string;
  receipt: string;
  /** From the moment the task became available to its start. */
  waitSeconds: number;
}

export interface TaskEnded {
  id: string;
  name: string;
  queue: string;
  status: TaskEnd;
  durationSeconds: number;
}

export interface WorkerEvents {
  state: [WorkerState];
  'task-started': [TaskStarted];
  'task-ended': [TaskEnded];
  /** A timed-out handler went on past its grace; only ending its process or thread stops it. */
  'handler-abandoned': [string];
}

/**
 * The worker: a loop with `concurrency` slots. For each free slot it asks the selector for a
 * queue, receives up to the free slots, moves the tasks to running in the task log (one
 * compare-and-set for the batch), runs them, records their outcomes in batches and only then
 * acknowledges or releases their messages.
 */
export class Worker extends EventEmitter<WorkerEvents> implements Controllable {
  readonly id: string;
  private state: WorkerState = 'starting';
  private readonly queues: string[];
  private readonly concurrency: number;
  private readonly limit: number;
  private readonly executor: Executor;
  private readonly logger: Logger;
  private selector: QueueSelector;
  private strategy: StrategyName;
  private weights: ReadonlyMap<string, number>;
  private readonly taskLeaseSeconds: number;
  private readonly active = new Map<string, ActiveTask>();
  private readonly idleUntil = new Map<string, number>();
  private readonly idleStreak = new Map<string, number>();
  private readonly receiving = new Set<string>();
  /** Queues whose last receive brought a full batch. */
  private readonly backlogged = new Set<string>();
  private readonly troubled = new Set<string>();
  /** Outcomes not written since the last one that was; see outcomeNotRecorded. */
  private unrecordedOutcomes = 0;
  private readonly finishBatcher: Batcher<Finishing, Finished>;
  private readonly ackBatchers = new Map<Broker, Batcher<ReceivedMessage, void>>();
  private readonly attemptDeps: AttemptDeps;
  private reserved = 0;
  private finished = 0;
  private launched = 0;
  private paused: boolean;
  /** Queues paused in the database (taskq pause), apart from the pause of the whole worker. */
  private pausedQueues: ReadonlySet<string> | 'all' = new Set();
  private wake: () => void = () => {};
  private stopRequested = false;
  private runPromise: Promise<void> | undefined;
  private readonly drained = new EventEmitter();

  constructor(
    private readonly runtime: Runtime,
    options: WorkerOptions,
  ) {
    super();
    const { config } = runtime;
    this.id = options.id;
    this.queues = options.queues ?? config.queues.map((queue) => queue.name);
    this.concurrency = options.concurrency ?? config.worker.concurrency;
    this.limit = options.limit ?? Infinity;
    this.executor = options.executor ?? inlineExecutor;
    this.paused = options.paused ?? false;
    // A worker process's logger already names the worker; a standalone one's does not.
    this.logger = runtime.logger.bindings().worker
      ? runtime.logger
      : runtime.logger.child({ worker: this.id });
    this.weights = configuredWeights(runtime);
    this.strategy = config.strategy;
    this.selector = createSelector(config.strategy, this.weights);
    this.taskLeaseSeconds = Math.max(3, config.worker.heartbeatSeconds * 3);
    this.finishBatcher = new Batcher((items) => this.writeOutcomes(items));
    this.attemptDeps = {
      taskLog: runtime.taskLog,
      executor: this.executor,
      logger: this.logger,
      retryDefaults: config.retry,
      taskTimeoutSeconds: config.worker.taskTimeoutSeconds,
      abortGraceSeconds: config.supervisor.cancelGraceSeconds,
      onAbandoned: (taskId) => {
        this.logger.error(
          { taskId, graceSeconds: config.supervisor.cancelGraceSeconds },
          'the handler of a timed-out task ignored its AbortSignal; its attempt ends without it',
        );
        this.emit('handler-abandoned', taskId);
      },
      resultsDir: config.results.directory,
      enqueueChild: async (parentId, name, parameters, childOptions) => {
        if (!options.enqueue) throw new Error('This worker cannot enqueue child tasks');
        return options.enqueue(name, parameters, { ...childOptions, parentId });
      },
    };
  }

  get currentState(): WorkerState {
    return this.state;
  }

  /** The ids of the tasks this worker holds, with their queues and broker receipts. */
  holdings(): { id: string; queue: string; receipt: string }[] {
    return [...this.active.values()].map((task) => ({
      id: task.message.id,
      queue: task.received.queue,
      receipt: task.received.receipt,
    }));
  }

  get activeCount(): number {
    return this.active.size;
  }

  /** Runs until stopped (or until `limit` tasks have run); resolves when everything is released. */
  run(): Promise<void> {
    this.runPromise ??= this.loop();
    return this.runPromise;
  }

  /** No task starts after this returns; running ones finish. Repeating it changes nothing. */
  pause(): void {
    if (this.paused) return;
    this.paused = true;
    if (this.state === 'running') this.setState('paused');
    this.wake();
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    if (this.state === 'paused') this.setState('running');
    this.wake();
  }

  /** No task starts on these queues ('all': on any) until they are resumed; running ones finish. */
  setPausedQueues(queues: ReadonlySet<string> | 'all'): void {
    this.pausedQueues = queues;
    this.wake();
  }

  holds(id: string): boolean {
    return this.active.has(id);
  }

  /**
   * A task cancelled in the task log while it runs here: its handler is told to stop and its
   * message is acknowledged at once, so that it is never delivered again. The task keeps its
   * slot until the handler returns (or its worker is recycled), and what it returns is ignored.
   */
  async cancelRunning(id: string): Promise<void> {
    const task = this.active.get(id);
    if (!task || task.released || task.runSeconds !== null) return;
    task.released = true;
    task.cancelledAt = Date.now();
    task.abort.abort(new CancelAbort());
    await this.ack(task).catch((error) =>
      this.logger.warn({ err: error, taskId: id }, 'could not acknowledge a cancelled task'),
    );
  }

  /** Changes the weights the selector uses (the supervisor's weight controller calls this). */
  setWeights(weights: ReadonlyMap<string, number>): void {
    this.weights = weights;
    this.selector.setWeights(weights);
    this.wake();
  }

  /** Switches the selection strategy (a reloaded configuration). */
  setStrategy(strategy: StrategyName): void {
    // A new selector starts its accounting over: only a real change of strategy may do that.
    if (strategy === this.strategy) return;
    this.strategy = strategy;
    this.selector = createSelector(strategy, this.weights);
    this.wake();
  }

  /** Tasks this worker has finished since it started, whatever their outcome. */
  get tasksDone(): number {
    return this.finished;
  }

  /**
   * Stops taking tasks and lets the running ones finish for up to `timeoutSeconds`; then aborts
   * them through their AbortSignal and releases them to their brokers. Resolves when done.
   */
  async stop(timeoutSeconds = this.runtime.config.worker.shutdownTimeoutSeconds): Promise<void> {
    this.stopRequested = true;
    if (this.state !== 'stopped') this.setState('stopping');
    this.wake();
    const deadline = AbortSignal.timeout(Math.max(0, timeoutSeconds * 1000));
    await this.untilDrained(deadline);
    if (this.active.size > 0) await this.abortAndRelease('shutdown deadline passed');
    await this.run();
  }

  /** Aborts running tasks at once and releases them: a second stop signal. */
  async forceStop(): Promise<void> {
    this.stopRequested = true;
    this.setState('stopping');
    this.wake();
    await this.abortAndRelease('forced stop');
    await this.run();
  }

  private setState(state: WorkerState): void {
    if (this.state === state) return;
    this.state = state;
    this.logger.info({ state }, `worker ${state}`);
    this.emit('state', state);
  }

  private async loop(): Promise<void> {
    const unsubscribe = this.queues.map((queue) =>
      this.runtime.brokers.get(queue).onWork(() => {
        this.idleUntil.delete(queue);
        this.idleStreak.delete(queue);
        this.wake();
      }),
    );
    const heartbeat = setInterval(() => void this.heartbeat(), this.heartbeatIntervalMs());
    heartbeat.unref();
    const control = new WorkerControl(this.runtime, this, this.logger);
    if (!this.stopRequested) this.setState(this.paused ? 'paused' : 'running');

    try {
      // The queue pauses are read before the first receive, so that none starts a paused task.
      await control.start();
      while (!this.stopRequested && this.launched < this.limit) await this.step();
      while (this.active.size > 0 || this.reserved > 0) await this.waitForChange(1000);
      await this.finishBatcher.idle();
      for (const batcher of this.ackBatchers.values()) await batcher.idle();
    } finally {
      clearInterval(heartbeat);
      await control.close();
      for (const off of unsubscribe) off();
      this.setState('stopped');
    }
  }

  /** One turn of the loop: start a receive if a slot and a queue allow it, else wait. */
  private async step(): Promise<void> {
    const free = this.concurrency - this.active.size - this.reserved;
    if (this.paused || free <= 0) return this.waitForChange(1000);

    const now = Date.now();
    // A queue with a backlog stays a candidate while its receive is under way (on a long-polling
    // broker, such as SQS); were its turns given to other queues meanwhile, it would fall short
    // of its share. When it is the pick, the worker waits for that receive.
    const candidates = this.queues.filter(
      (queue) =>
        !this.queuePaused(queue) &&
        (!this.receiving.has(queue) || this.backlogged.has(queue)) &&
        (this.idleUntil.get(queue) ?? 0) <= now,
    );
    const queue = this.selector.next(candidates);
    if (queue !== undefined && this.receiving.has(queue)) return this.waitForChange(1000);
    if (queue === undefined) {
      const next = Math.min(...this.queues.map((q) => this.idleUntil.get(q) ?? now + 1000));
      return this.waitForChange(Math.max(1, next - now));
    }

    const broker = this.runtime.brokers.get(queue);
    const max = Math.min(free, broker.receiveLimit, this.limit - this.launched);
    this.reserved += max;
    this.receiving.add(queue);
    // The next receive may begin as soon as this one returns, while its tasks are being started.
    const received = this.receive(queue, broker, max)
      .then((messages) => {
        // A full batch suggests that more is waiting.
        if (messages.length >= max) this.backlogged.add(queue);
        else this.backlogged.delete(queue);
        return messages;
      })
      .finally(() => {
        this.receiving.delete(queue);
        this.wake();
      });
    void received
      .then(async (messages) => {
        let admitted = 0;
        try {
          if (messages.length > 0) admitted = await this.startMessages(broker, messages);
        } finally {
          // The selector counted every message; the tasks that run end through `forget`.
          this.selector.discharge(queue, messages.length - admitted);
        }
      })
      .catch((error) => {
        // Their leases run out and the broker hands the messages out again.
        this.logger.error({ err: error, queue }, 'could not start received tasks');
      })
      .finally(() => {
        this.reserved -= max;
        this.wake();
      });
    if (!broker.longPoll) await received;
  }

  private waitForChange(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.wake = () => {};
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wake = done;
    });
  }

  /** Receives up to `max` messages; returns those to start (none when paused or stopping). */
  private async receive(queue: string, broker: Broker, max: number): Promise<ReceivedMessage[]> {
    let messages: ReceivedMessage[];
    try {
      messages = await broker.receive(max);
      this.brokerState(queue, null);
    } catch (error) {
      this.brokerState(queue, error);
      this.markIdle(queue);
      return [];
    }
    if (messages.length === 0) {
      this.markIdle(queue);
      return [];
    }
    this.idleStreak.delete(queue);

    if (this.paused || this.stopRequested || this.queuePaused(queue)) {
      await broker.release(messages, 0);
      return [];
    }
    this.selector.charge(queue, messages.length);
    this.launched += messages.length;
    return messages;
  }

  /** Logs a broker's trouble once when it starts and once when it ends, not on every poll. */
  private brokerState(queue: string, error: unknown): void {
    if (error === null) {
      if (this.troubled.delete(queue)) this.logger.info({ queue }, 'queue reachable again');
      return;
    }
    if (!this.troubled.has(queue)) {
      this.troubled.add(queue);
      this.logger.warn({ queue, err: error }, 'cannot receive from queue; backing off');
    }
  }

  /** A queue that had nothing is polled again after a delay doubling up to the configured cap. */
  private markIdle(queue: string): void {
    const streak = (this.idleStreak.get(queue) ?? 0) + 1;
    this.idleStreak.set(queue, streak);
    const capMs = this.runtime.config.worker.idlePollMaxSeconds * 1000;
    const delay = this.troubled.has(queue) ? capMs * 2 : Math.min(capMs, 25 * 2 ** streak);
    this.idleUntil.set(queue, Date.now() + delay);
  }

  /** Starts received messages; returns how many became running tasks of this worker. */
  private async startMessages(broker: Broker, messages: ReceivedMessage[]): Promise<number> {
    const valid: { received: ReceivedMessage; message: TaskMessage }[] = [];
    for (const received of messages) {
      const decoded = decodeMessage(received.body);
      if (decoded.ok) valid.push({ received, message: decoded.message });
      else await this.rejectMessage(broker, received, decoded.taskId, decoded.reason);
    }
    if (valid.length === 0) return 0;

    const queue = valid[0]!.received.queue;
    if (this.paused || this.stopRequested || this.queuePaused(queue)) {
      // Paused while the messages were on their way: they go back untouched.
      await broker.release(
        valid.map((entry) => entry.received),
        0,
      );
      return 0;
    }
    const ids = valid.map((entry) => entry.message.id);
    // Where a broker's handle is not the task id, the task log keeps it for `taskq stuck`.
    const receipts = valid.some((entry) => entry.received.receipt !== entry.message.id)
      ? valid.map((entry) => entry.received.receipt)
      : null;
    let results = await this.runtime.taskLog.start(ids, this.id, this.taskLeaseSeconds, receipts);
    const orphans = valid
      .filter((_, index) => results[index]!.previous === null)
      .map((entry) => entry.message);
    if (orphans.length > 0) {
      const { limit, lostAttemptsLimit } = this.runtime.config.retry;
      await this.runtime.taskLog.adopt(orphans, limit + 1 + lostAttemptsLimit, this.id);
      const again = await this.runtime.taskLog.start(
        orphans.map((m) => m.id),
        this.id,
        this.taskLeaseSeconds,
        valid
          .filter((_, index) => results[index]!.previous === null)
          .map((e) => e.received.receipt),
      );
      const byId = new Map(again.map((result) => [result.id, result]));
      results = results.map((result) => byId.get(result.id) ?? result);
    }

    const started: ActiveTask[] = [];
    const seen = new Set<string>();
    for (const [index, entry] of valid.entries()) {
      if (seen.has(entry.message.id)) {
        // A second copy in the same batch: the compare-and-set admitted the task once.
        await broker.release([entry.received], this.taskLeaseSeconds);
        continue;
      }
      seen.add(entry.message.id);
      const task = await this.admit(broker, entry.received, entry.message, results[index]!);
      if (task) started.push(task);
    }
    if (this.paused || this.stopRequested || this.queuePaused(queue)) {
      const reason = this.stopRequested ? 'stopping' : 'paused before the task started';
      await this.giveBack(started, reason);
      return started.length;
    }
    const byId = new Map(results.map((result) => [result.id, result]));
    for (const task of started) void this.execute(task, byId.get(task.message.id)!);
    return started.length;
  }

  /** Decides what to do with a message after the compare-and-set; returns the task to run. */
  private async admit(
    broker: Broker,
    received: ReceivedMessage,
    message: TaskMessage,
    result: StartResult,
  ): Promise<ActiveTask | null> {
    if (!result.started) {
      if (result.previous === 'running') {
        // Another worker holds it with a live lease: look again once that lease could be over.
        await broker.release([received], this.taskLeaseSeconds);
      } else if (result.previous === 'enqueued' || result.previous === 'dequeued') {
        // Still waiting, yet not started: its enqueue committed between the start and the look
        // that followed (a broker outside the database can hand a message out before its row
        // commits). The message comes back in a moment and starts then.
        await broker.release([received], 1);
      } else {
        // Finished, cancelled before pickup, or archived: the message has nothing left to do.
        await broker.ack([received]);
      }
      return null;
    }
    const handler = this.runtime.handlers.find(message.name);
    if (!handler) {
      const known = this.runtime.handlers.names().join(', ') || '(none)';
      const why = `No handler for task "${message.name}" in this version of the application; known tasks: ${known}`;
      await this.failUnrunnable(broker, received, message.id, report('error', why));
      return null;
    }
    if (result.attempts > result.maxAttempts) {
      const why =
        `Gave up after ${result.maxAttempts} attempt(s); the last ones ended without an outcome ` +
        '(their worker was lost). retry.lostAttemptsLimit sets how many lost attempts a task may have.';
      await this.failUnrunnable(broker, received, message.id, report('error', why));
      return null;
    }
    const task: ActiveTask = {
      message,
      received,
      broker,
      abort: new TaskAbort(),
      startedAt: Date.now(),
      runSeconds: null,
      leasedAt: Date.now(),
      released: false,
      cancelledAt: null,
    };
    this.active.set(message.id, task);
    const waitSeconds = result.waitedSeconds ?? 0;
    this.emit('task-started', {
      id: message.id,
      name: message.name,
      queue: received.queue,
      receipt: received.receipt,
      waitSeconds,
    });
    return task;
  }

  private async execute(task: ActiveTask, start: StartResult): Promise<void> {
    const handler = this.runtime.handlers.get(task.message.name);
    let outcome: Outcome;
    const started = performance.now();
    try {
      outcome = await runAttempt(
        this.attemptDeps,
        task.message,
        handler,
        start.attempts,
        start.maxAttempts,
        task.abort,
      );
    } catch (error) {
      outcome = {
        id: task.message.id,
        attempt: start.attempts,
        status: 'failed',
        report: errorReport(error, 'The worker failed to run the task'),
      };
    }
    task.runSeconds = (performance.now() - started) / 1000;
    if (task.cancelledAt !== null) return this.stoppedAfterCancel(task);
    if (task.released) return this.forget(task, 'released');
    if (task.abort.reason instanceof ShutdownAbort) {
      // Aborted because the worker stops: the task did not fail, it runs again elsewhere.
      return this.giveBack([task], 'aborted by shutdown');
    }

    let ended: TaskEnd = 'lost';
    try {
      const { written, acked, requeued } = await this.finishBatcher.add({ outcome, task });
      this.outcomesRecorded();
      if (task.released) return this.forget(task, 'released');
      if (acked) {
        // Acknowledged in the transaction that recorded the outcome.
      } else if (requeued) {
        // Restarted by an operator (`taskq stuck restart --force`): it runs again, same id.
        await task.broker.release([task.received], 0);
      } else if (!written || outcome.status === 'completed' || outcome.status === 'child_running') {
        await this.ack(task);
      } else if (outcome.status === 'enqueued') {
        await task.broker.release([task.received], outcome.delaySeconds ?? 0);
      } else {
        await task.broker.deadLetter([task.received], outcome.report.message);
      }
      // Not written: the task log holds another status, set meanwhile by an operator.
      if (requeued) ended = 'released';
      else if (!written) ended = 'cancelled';
      else ended = outcome.status === 'enqueued' ? 'retried' : outcome.status;
    } catch (error) {
      // The lease runs out and the task comes back: at least once, never lost.
      this.outcomeNotRecorded(task.message.id, error);
    }
    this.forget(task, ended);
  }

  /**
   * Outcomes that cannot be written come in runs (the database is away): the first of a run is
   * logged, the rest only counted, and the end of the run says how many there were.
   */
  private outcomeNotRecorded(taskId: string, error: unknown): void {
    this.unrecordedOutcomes += 1;
    if (this.unrecordedOutcomes === 1)
      this.logger.error(
        { err: error, taskId },
        'could not record the outcome of a task; it will run again (more such failures are ' +
          'counted until outcomes are recorded again)',
      );
  }

  private outcomesRecorded(): void {
    if (this.unrecordedOutcomes === 0) return;
    this.logger.info(
      { unrecorded: this.unrecordedOutcomes },
      'recording outcomes again; the tasks whose outcome was not recorded will run again',
    );
    this.unrecordedOutcomes = 0;
  }

  /** The handler of a cancelled task returned: the task log notes when, and the slot is free. */
  private async stoppedAfterCancel(task: ActiveTask): Promise<void> {
    const afterSeconds = (Date.now() - task.cancelledAt!) / 1000;
    await this.runtime.taskLog
      .recordStopped(task.message.id, this.id, { afterSeconds, how: 'the handler returned' })
      .catch((error) => this.logger.warn({ err: error }, 'could not record a stopped task'));
    this.forget(task, 'cancelled');
  }

  private queuePaused(queue: string): boolean {
    return this.pausedQueues === 'all' || this.pausedQueues.has(queue);
  }

  /** Acks go out in batches per broker, like the outcomes before them. */
  private ack(task: ActiveTask): Promise<void> {
    let batcher = this.ackBatchers.get(task.broker);
    if (!batcher) {
      const broker = task.broker;
      batcher = new Batcher<ReceivedMessage, void>(async (messages) => {
        await broker.ack(messages);
        return [];
      });
      this.ackBatchers.set(broker, batcher);
    }
    return batcher.add(task.received);
  }

  private forget(task: ActiveTask, status: TaskEnd): void {
    if (this.active.get(task.message.id) !== task) return;
    this.active.delete(task.message.id);
    this.finished += 1;
    const queue = task.received.queue;
    const durationSeconds = task.runSeconds ?? (Date.now() - task.startedAt) / 1000;
    this.selector.ran(queue, durationSeconds);
    this.emit('task-ended', {
      id: task.message.id,
      name: task.message.name,
      queue,
      status,
      durationSeconds,
    });
    this.drained.emit('change');
    this.wake();
  }

  /**
   * Records a batch of outcomes. The messages of tasks that are done, on a broker that shares
   * the task log's database, are acknowledged in the same transaction: one commit for both.
   */
  private async writeOutcomes(items: Finishing[]): Promise<Finished[]> {
    const finished = await this.recordOutcomes(items);
    // Tasks that just ended may end their parents, and parents whose children all ended already
    // end at once.
    const related = items
      .filter((item, index) => finished[index]!.written && item.outcome.status !== 'enqueued')
      .filter(
        (item) => item.task.message.parentId !== null || item.outcome.status === 'child_running',
      )
      .map((item) => item.outcome.id);
    if (related.length > 0) {
      await this.runtime.taskLog.resolveParents(related, this.id).catch((error) => {
        this.logger.warn({ err: error }, 'could not end the parents of finished tasks');
      });
    }
    return finished;
  }

  private async recordOutcomes(items: Finishing[]): Promise<Finished[]> {
    const outcomes = items.map((item) => item.outcome);
    const notWritten = (written: Set<string>) =>
      outcomes.filter((outcome) => !written.has(outcome.id)).map((outcome) => outcome.id);
    const done = (item: Finishing, written: Set<string>, requeued: Set<string>) =>
      (!written.has(item.outcome.id) && !requeued.has(item.outcome.id)) ||
      item.outcome.status === 'completed' ||
      item.outcome.status === 'child_running';
    if (!items.some((item) => item.task.broker.transactional)) {
      const written = await this.runtime.taskLog.finish(outcomes, this.id);
      const requeued = await this.runtime.taskLog.requeued(notWritten(written));
      return items.map((item) => ({
        written: written.has(item.outcome.id),
        acked: false,
        requeued: requeued.has(item.outcome.id),
      }));
    }
    return transaction(this.runtime.db.pool, async (client) => {
      const written = await this.runtime.taskLog.finish(outcomes, this.id, client);
      const requeued = await this.runtime.taskLog.requeued(notWritten(written), client);
      const acks = new Map<Broker, ReceivedMessage[]>();
      const acked = (item: Finishing) =>
        item.task.broker.transactional && !item.task.released && done(item, written, requeued);
      for (const item of items) {
        if (!acked(item)) continue;
        acks.set(item.task.broker, [...(acks.get(item.task.broker) ?? []), item.task.received]);
      }
      for (const [broker, messages] of acks) await broker.ack(messages, client);
      return items.map((item) => ({
        written: written.has(item.outcome.id),
        acked: acked(item),
        requeued: requeued.has(item.outcome.id),
      }));
    });
  }

  private async rejectMessage(
    broker: Broker,
    received: ReceivedMessage,
    taskId: string | null,
    reason: string,
  ): Promise<void> {
    this.logger.error({ queue: received.queue, taskId }, `unreadable message: ${reason}`);
    const why = report('error', `The message could not be read: ${reason}`);
    if (taskId) await this.runtime.taskLog.failWithoutRunning(taskId, why, this.id);
    await broker.deadLetter([received], why.message);
  }

  private async failUnrunnable(
    broker: Broker,
    received: ReceivedMessage,
    taskId: string,
    why: Report,
  ): Promise<void> {
    this.logger.error({ taskId, queue: received.queue }, why.message);
    await this.runtime.taskLog.failWithoutRunning(taskId, why, this.id);
    await broker.deadLetter([received], why.message);
  }

  /** Aborts every running task and gives it back to its broker at once. */
  private async abortAndRelease(reason: string): Promise<void> {
    const tasks = [...this.active.values()].filter((task) => !task.released);
    for (const task of tasks) task.abort.abort(new ShutdownAbort());
    // Handlers that honour their signal end within a moment; the rest are released anyway.
    await this.untilDrained(AbortSignal.timeout(1000));
    await this.giveBack(
      tasks.filter((task) => this.active.has(task.message.id)),
      reason,
    );
    // Cancelled tasks whose handlers ignore their signal: their messages are acknowledged
    // already, and the worker stops without waiting for them.
    for (const task of this.active.values())
      if (task.cancelledAt !== null) this.forget(task, 'cancelled');
  }

  private async giveBack(candidates: ActiveTask[], reason: string): Promise<void> {
    const tasks = candidates.filter((task) => !task.released);
    if (tasks.length === 0) return;
    for (const task of tasks) task.released = true;
    await this.runtime.taskLog.release(
      tasks.map((task) => task.message.id),
      this.id,
      this.id,
      reason,
    );
    for (const task of tasks) {
      await task.broker
        .release([task.received], 0)
        .catch((error) => this.logger.warn({ err: error }, 'release failed'));
      this.forget(task, 'released');
    }
    this.logger.info({ count: tasks.length, reason }, 'released tasks to their queues');
  }

  private untilDrained(signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const check = () => {
        // A cancelled task whose handler ignores its signal does not hold the drain up.
        const running = [...this.active.values()].filter((task) => task.cancelledAt === null);
        if (running.length === 0 || signal.aborted) {
          this.drained.off('change', check);
          signal.removeEventListener('abort', check);
          resolve();
        }
      };
      this.drained.on('change', check);
      signal.addEventListener('abort', check, { once: true });
      check();
    });
  }

  private heartbeatIntervalMs(): number {
    const leases = this.queues.map((queue) => this.runtime.brokers.get(queue).leaseSeconds);
    return Math.max(
      100,
      Math.min(this.runtime.config.worker.heartbeatSeconds, ...leases.map((lease) => lease / 4)) *
        1000,
    );
  }

  /** Renews the task-log lease of every running task, and the broker lease of long-running ones. */
  private async heartbeat(): Promise<void> {
    const tasks = [...this.active.values()].filter((task) => !task.released);
    if (tasks.length === 0) return;
    try {
      const renewed = await this.runtime.taskLog.heartbeat(
        tasks.map((task) => task.message.id),
        this.id,
        this.taskLeaseSeconds,
      );
      for (const task of tasks) {
        if (renewed.has(task.message.id) || task.runSeconds !== null || task.abort.aborted)
          continue;
        // Cancelled (or given to another worker) while it ran: the handler is told to stop.
        this.logger.info(
          { taskId: task.message.id },
          'task no longer running in the task log; aborting it',
        );
        task.abort.abort(new CancelAbort());
      }
      const now = Date.now();
      for (const task of tasks) {
        if (now - task.leasedAt < (task.broker.leaseSeconds * 1000) / 2) continue;
        await task.broker.extendLease([task.received], task.broker.leaseSeconds);
        task.leasedAt = now;
      }
    } catch (error) {
      this.logger.warn({ err: error }, 'heartbeat failed');
    }
  }
}

function configuredWeights(runtime: Runtime): Map<string, number> {
  return new Map(runtime.config.queues.map((queue) => [queue.name, queue.weight]));
}
