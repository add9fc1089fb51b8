import fs from 'node:fs/promises';
import path from 'node:path';

import type { MessagePresence } from '../brokers/broker.js';
import { TaskqClient } from '../client.js';
import { TaskqError, TransitionRefusedError, UsageError } from '../errors.js';
import type { Runtime } from '../runtime.js';
import { MESSAGE_VERSION, type TaskMessage } from '../tasks/message.js';
import type { OwnerScope } from './queries.js';
import { restartInTaskLog, type StuckFilter, type StuckTask } from './stuck.js';

/** A stuck task as the summary shows it. */
export interface StuckEntry extends Omit<StuckTask, 'parameters' | 'receipt'> {
  /** Whether the broker still holds its message; 'unknown' on SQS, which cannot tell. */
  message: MessagePresence;
  orphan: boolean;
}

export interface StuckSummary {
  queue: string;
  ageSeconds: number;
  tasks: StuckEntry[];
  totals: {
    tasks: number;
    orphans: number;
    /** Running on a worker that still renews its lease: restarted only with `force`. */
    live: number;
    byStatus: Record<string, number>;
  };
}

/** What a restart did, or (dry run) would do, to one task. */
export type RestartAction =
  | 'redelivered'
  | 'requeued'
  | 'skipped-live'
  | 'skipped-changed'
  | 'would-redeliver'
  | 'would-requeue';

export interface RestartOutcome {
  id: string;
  name: string;
  action: RestartAction;
  /** Aborted on its live worker first (`force`). */
  aborted: boolean;
}

export interface RestartOptions extends StuckFilter {
  dryRun?: boolean;
  /** Also restart tasks that run on a live worker, aborting them there first. */
  force?: boolean;
}

/**
 * The operator's actions that need brokers as well as the task log: restarting stuck tasks,
 * running a task again, deleting expired tasks and reading result files. One instance per
 * runtime; `actor` names who acts in the events written.
 */
export class TaskOperations {
  constructor(
    private readonly runtime: Runtime,
    private readonly actor = 'operator',
  ) {}

  /** The stuck tasks of a queue, each with whether its broker message still exists. */
  async stuckSummary(filter: StuckFilter): Promise<StuckSummary> {
    this.checkQueue(filter.queue);
    const tasks = await this.runtime.queries.stuck(filter);
    const presence = await this.probe(filter.queue, tasks);
    const entries = tasks.map(({ parameters: _p, receipt: _r, ...task }) => {
      const message = presence.get(task.id) ?? 'unknown';
      return { ...task, message, orphan: message === 'missing' };
    });
    const byStatus: Record<string, number> = {};
    for (const entry of entries) byStatus[entry.status] = (byStatus[entry.status] ?? 0) + 1;
    return {
      queue: filter.queue,
      ageSeconds: filter.ageSeconds,
      tasks: entries,
      totals: {
        tasks: entries.length,
        orphans: entries.filter((entry) => entry.orphan).length,
        live: entries.filter((entry) => entry.leaseLive).length,
        byStatus,
      },
    };
  }

  /**
   * Makes stuck tasks run again under the same ids. In the task log each goes back to
   * `enqueued` with a `restarted` event; then a message the broker still holds is made
   * available at once, and an orphan's message is sent anew. A task running on a live worker
   * is left alone unless `force`, which aborts it there (its worker's heartbeat sees the task
   * no longer running for it, aborts the handler and releases the message instead of acking it).
   */
  async restartStuck(options: RestartOptions): Promise<RestartOutcome[]> {
    this.checkQueue(options.queue);
    const broker = this.runtime.brokers.get(options.queue);
    const tasks = await this.runtime.queries.stuck(options);
    const presence = await this.probe(options.queue, tasks);
    const force = options.force ?? false;
    const outcomes: RestartOutcome[] = [];
    const chosen = tasks.filter((task) => {
      if (!task.leaseLive || force) return true;
      outcomes.push({ id: task.id, name: task.name, action: 'skipped-live', aborted: false });
      return false;
    });
    if (options.dryRun) {
      for (const task of chosen) {
        const action = presence.get(task.id) === 'missing' ? 'would-requeue' : 'would-redeliver';
        outcomes.push({ id: task.id, name: task.name, action, aborted: task.leaseLive });
      }
      return outcomes;
    }

    const moved = await restartInTaskLog(
      this.runtime.db.pool,
      this.runtime.config.database.schema,
      chosen.map((task) => ({
        id: task.id,
        detail: {
          reason: 'stuck',
          ageSeconds: task.ageSeconds,
          worker: task.worker,
          message: presence.get(task.id) ?? 'unknown',
          aborted: task.leaseLive,
        },
      })),
      { ageSeconds: options.ageSeconds, force, actor: this.actor },
    );
    const restarted = chosen.filter((task) => moved.has(task.id));
    for (const task of chosen.filter((t) => !moved.has(t.id)))
      outcomes.push({ id: task.id, name: task.name, action: 'skipped-changed', aborted: false });

    // Messages that the probe found, or could not tell about, are handed back through the
    // broker; what it does not find is sent anew.
    const candidates = restarted.filter((task) => presence.get(task.id) !== 'missing');
    const redelivered = await broker.redeliver(
      candidates.map((task) => ({ taskId: task.id, receipt: task.receipt })),
    );
    const orphans = restarted.filter((task) => !redelivered.has(task.id));
    await broker.requeue(orphans.map(toMessage));
    for (const task of restarted) {
      const action = redelivered.has(task.id) ? 'redelivered' : 'requeued';
      outcomes.push({ id: task.id, name: task.name, action, aborted: task.leaseLive });
    }
    this.runtime.logger.warn(
      { queue: options.queue, restarted: restarted.length, requeued: orphans.length },
      'restarted stuck tasks',
    );
    return outcomes;
  }

  /**
   * Enqueues a new task with the name, parameters, label, owner and queue of an earlier one,
   * linked to it: the new row's `rerun_of` names the original, and both get an event (`rerun`
   * on the original, `rerun-of` on the new task).
   */
  async rerun(id: string, scope: OwnerScope = {}): Promise<{ id: string; queue: string }> {
    const original = await this.runtime.queries.get(id, scope);
    const { rows } = await this.runtime.db.pool.query<{ parameters: unknown }>(
      `SELECT parameters FROM ${this.runtime.config.database.schema}.tasks WHERE id = $1`,
      [id],
    );
    const queue = this.runtime.brokers.has(original.queue) ? original.queue : undefined;
    const enqueued = await new TaskqClient(this.runtime, this.actor).enqueue(
      original.name,
      rows[0]?.parameters ?? {},
      { label: original.label, owner: original.owner, queue, rerunOf: original.id },
    );
    // The new row's rerun_of is the link; these events show it in both tasks' histories.
    await this.runtime.db.pool.query(
      `INSERT INTO ${this.runtime.config.database.schema}.events (task_id, kind, actor, detail)
       VALUES ($1::uuid, 'rerun', $3, jsonb_build_object('rerunAs', $2::text)),
              ($2::uuid, 'rerun-of', $3, jsonb_build_object('rerunOf', $1::text))`,
      [original.id, enqueued.id, this.actor],
    );
    return { id: enqueued.id, queue: enqueued.queue };
  }

  /**
   * Deletes what the retention settings say has expired: finished tasks past
   * `retention.finishedDays`, archived ones past `retention.archivedDays`, with their events and
   * result files, in batches of `retention.batchSize`. Returns how many tasks were deleted.
   */
  async applyRetention(signal?: AbortSignal): Promise<number> {
    const { finishedDays, archivedDays, batchSize } = this.runtime.config.retention;
    if (finishedDays === null && archivedDays === null) return 0;
    const daysAgo = (days: number | null) =>
      days === null ? null : new Date(Date.now() - days * 86_400_000);
    return this.runtime.queries.deleteExpired({
      finishedBefore: daysAgo(finishedDays),
      archivedBefore: daysAgo(archivedDays),
      batchSize,
      signal,
    });
  }

  /** Copies a task's result file to `output` (a file, or a directory to put it in). */
  async downloadResultFile(
    id: string,
    output: string,
    scope: OwnerScope = {},
  ): Promise<{ path: string; bytes: number }> {
    const task = await this.runtime.queries.get(id, scope);
    if (!task.resultFile) {
      throw new TransitionRefusedError(
        `Task ${id} has no result file (status ${task.status}); only a task whose handler ` +
          'wrote one through writeResultFile, and that is not archived, has one',
      );
    }
    const target = await fs.stat(output).then(
      (stat) => (stat.isDirectory() ? path.join(output, task.resultFile!.name) : output),
      () => output,
    );
    try {
      await fs.copyFile(task.resultFile.path, target);
    } catch (error) {
      throw new TaskqError(
        'RESULT_FILE_UNREADABLE',
        `Could not copy the result file of task ${id} from ${task.resultFile.path} to ${target}: ` +
          `${(error as Error).message}`,
        { cause: error },
      );
    }
    return { path: target, bytes: task.resultFile.bytes };
  }

  private checkQueue(queue: string): void {
    if (this.runtime.brokers.has(queue)) return;
    const known = this.runtime.config.queues.map((q) => q.name).join(', ');
    throw new UsageError(
      `queue must name a configured queue (got "${queue}"; configured: ${known})`,
    );
  }

  private async probe(queue: string, tasks: StuckTask[]): Promise<Map<string, MessagePresence>> {
    if (tasks.length === 0) return new Map();
    return this.runtime.brokers
      .get(queue)
      .probe(tasks.map((task) => ({ taskId: task.id, receipt: task.receipt })));
  }
}

/** The message of a task, rebuilt from its row, for an orphan sent anew. */
function toMessage(task: StuckTask): TaskMessage {
  return {
    v: MESSAGE_VERSION,
    id: task.id,
    name: task.name,
    queue: task.queue,
    parameters: task.parameters,
    label: task.label,
    owner: task.owner,
    parentId: task.parentId,
    createdAt: task.createdAt.toISOString(),
  };
}
