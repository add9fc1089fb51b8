import type pg from 'pg';

import { notifyControl } from '../database/control-channel.js';
import { TaskNotFoundError, TransitionRefusedError } from '../errors.js';
import { isUuid } from '../tasks/message.js';
import type { Report } from '../tasks/report.js';
import {
  checkListOptions,
  COUNT_CAP,
  filterSql,
  orderSql,
  type ListOptions,
  type TaskFilter,
} from './filters.js';
import { removeResultFiles, type ResultFile } from './result-files.js';
import { stuckTasks, type StuckFilter, type StuckTask } from './stuck.js';
import {
  archiveAllFinished,
  deleteExpired,
  type ArchiveAllOptions,
  type DeleteExpiredOptions,
} from './sweeps.js';
import { TaskLog } from './task-log.js';
import { publicStatus, statusLabel, type PublicStatus, type TaskStatus } from './statuses.js';

export type { ListOptions, StuckFilter, StuckTask };

/** A task as the CLI, the API and the web page show it. */
export interface TaskRecord {
  id: string;
  name: string;
  queue: string;
  label: string;
  owner: string;
  category: string;
  parentId: string | null;
  status: TaskStatus;
  publicStatus: PublicStatus;
  statusLabel: string;
  report: Report | null;
  progress: number | null;
  progressMessage: string | null;
  attempts: number;
  maxAttempts: number;
  worker: string | null;
  resultFile: ResultFile | null;
  /** The task this one runs again, when it is a rerun. */
  rerunOf: string | null;
  createdAt: string;
  updatedAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  archivedAt: string | null;
}

export interface TaskEvent {
  /** The stored event's number; null for a step the task's row records. */
  id: number | null;
  at: string;
  kind: string;
  fromStatus: string | null;
  toStatus: string | null;
  actor: string;
  detail: unknown;
}

/** One page of a listing. */
export interface TaskPage {
  tasks: TaskRecord[];
  /** The matches, counted up to COUNT_CAP. */
  total: number;
  /** False when the count stopped at COUNT_CAP: there are at least `total` matches. */
  totalExact: boolean;
}

/** What an archive of several tasks did to each. */
export interface ArchiveManyResult {
  archived: string[];
  refused: { id: string; reason: string }[];
}

/** Limits an operator's action to the tasks of one owner. */
export interface OwnerScope {
  owner?: string;
}

export interface TaskStats {
  enqueued: number;
  inProgress: number;
  completed: number;
  failed: number;
  cancelled: number;
  archived: number;
}

interface TaskRow {
  id: string;
  name: string;
  queue: string;
  label: string;
  owner: string;
  category: string;
  parent_id: string | null;
  status: TaskStatus;
  report: Report | null;
  progress: number | null;
  progress_message: string | null;
  attempts: number;
  max_attempts: number;
  worker: string | null;
  result_file: TaskRecord['resultFile'];
  rerun_of: string | null;
  created_at_iso: string;
  updated_at_iso: string;
  started_at_iso: string | null;
  finished_at_iso: string | null;
  archived_at_iso: string | null;
}

/**
 * A timestamp column as JavaScript's `toISOString` writes it, named `<column>_iso`. PostgreSQL
 * formats it for less than the driver takes to parse it into a Date that would only be
 * formatted again. The name differs from the column's so that ORDER BY still means the column
 * (and its index), not the text.
 */
const iso = (column: string) =>
  `to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS ${column}_iso`;

const COLUMNS = `id, name, queue, label, owner, category, parent_id, status, report, progress,
  progress_message, attempts, max_attempts, worker, result_file, rerun_of,
  ${['created_at', 'updated_at', 'started_at', 'finished_at', 'archived_at'].map(iso).join(', ')}`;

function toRecord(row: TaskRow): TaskRecord {
  return {
    id: row.id,
    name: row.name,
    queue: row.queue,
    label: row.label,
    owner: row.owner,
    category: row.category,
    parentId: row.parent_id,
    status: row.status,
    publicStatus: publicStatus(row.status),
    statusLabel: statusLabel(row.status),
    report: row.report,
    progress: row.progress,
    progressMessage: row.progress_message,
    attempts: row.attempts,
    maxAttempts: row.max_attempts,
    worker: row.worker,
    resultFile: row.result_file,
    rerunOf: row.rerun_of,
    createdAt: row.created_at_iso,
    updatedAt: row.updated_at_iso,
    startedAt: row.started_at_iso,
    finishedAt: row.finished_at_iso,
    archivedAt: row.archived_at_iso,
  };
}

/**
 * Reads of the task log and the operator's actions on it: what the CLI, the REST API and the
 * web page call. Operations that need a broker as well (restarting stuck tasks, reruns) are in
 * TaskOperations (src/tasklog/operations.ts), built on these.
 *
 * Bad input (a malformed id, a limit out of range, an unknown status) throws a UsageError
 * naming the field; a task that does not exist, or belongs to another owner than the one given,
 * throws TaskNotFoundError; a transition its status forbids throws TransitionRefusedError.
 */
export class TaskLogQueries {
  constructor(
    readonly pool: pg.Pool,
    readonly schema: string,
  ) {}

  /** One task; with `owner`, only if it belongs to that owner. */
  async get(id: string, scope: OwnerScope = {}): Promise<TaskRecord> {
    if (!isUuid(id)) throw new TaskNotFoundError(id);
    const { rows } = await this.pool.query<TaskRow>(
      `SELECT ${COLUMNS} FROM ${this.schema}.tasks WHERE id = $1 AND ($2::text IS NULL OR owner = $2)`,
      [id, scope.owner ?? null],
    );
    if (!rows[0]) throw new TaskNotFoundError(id);
    return toRecord(rows[0]);
  }

  /**
   * The task's history, oldest first: the events stored for it, joined with the steps that its
   * row records without an event (enqueued, the start of the current attempt, finished; see
   * `TaskLog`). Those carry `id: null`.
   */
  async events(id: string): Promise<TaskEvent[]> {
    if (!isUuid(id)) throw new TaskNotFoundError(id);
    const [task, stored] = await Promise.all([
      this.pool.query<TaskRow>(`SELECT ${COLUMNS} FROM ${this.schema}.tasks WHERE id = $1`, [id]),
      this.pool.query<{
        id: string;
        at: Date;
        kind: string;
        from_status: string | null;
        to_status: string | null;
        actor: string;
        detail: Record<string, unknown> | null;
      }>(
        `SELECT id, at, kind, from_status, to_status, actor, detail FROM ${this.schema}.events
         WHERE task_id = $1 ORDER BY id`,
        [id],
      ),
    ]);
    const row = task.rows[0];
    if (!row) throw new TaskNotFoundError(id);
    const events: TaskEvent[] = stored.rows.map((event) => ({
      id: Number(event.id),
      at: event.at.toISOString(),
      kind: event.kind,
      fromStatus: event.from_status,
      toStatus: event.to_status,
      actor: event.actor,
      detail: event.detail,
    }));
    return [...events, ...rowEvents(row, events)].sort(
      (a, b) => a.at.localeCompare(b.at) || (a.id ?? Infinity) - (b.id ?? Infinity),
    );
  }

  /**
   * A page of tasks matching a filter, sorted (newest first by default). The page reads an
   * index in the sort order and stops at `offset + limit` rows; the count stops at COUNT_CAP.
   */
  async list(options: ListOptions): Promise<TaskPage> {
    const [tasks, counted] = await Promise.all([this.page(options), this.count(options)]);
    return { tasks, ...counted };
  }

  /** The tasks of one page of a listing, without the count. */
  async page(options: ListOptions): Promise<TaskRecord[]> {
    checkListOptions(options);
    const { clause, values } = filterSql(options);
    const n = values.length;
    const { rows } = await this.pool.query<TaskRow>(
      `SELECT ${COLUMNS} FROM ${this.schema}.tasks ${clause}
       ${orderSql(options)} LIMIT $${n + 1} OFFSET $${n + 2}`,
      [...values, options.limit, options.offset],
    );
    return rows.map(toRecord);
  }

  /** How many tasks match a filter, counted up to COUNT_CAP. */
  async count(filter: TaskFilter): Promise<Omit<TaskPage, 'tasks'>> {
    const { clause, values } = filterSql(filter);
    const n = values.length;
    const count = await this.pool.query<{ total: string }>(
      `SELECT count(*) AS total FROM (SELECT 1 FROM ${this.schema}.tasks ${clause} LIMIT $${n + 1}) AS page`,
      [...values, COUNT_CAP + 1],
    );
    const total = Number(count.rows[0]?.total ?? 0);
    return { total: Math.min(total, COUNT_CAP), totalExact: total <= COUNT_CAP };
  }

  /** Tasks of one queue that have not moved for `ageSeconds`: see src/tasklog/stuck.ts. */
  async stuck(filter: StuckFilter): Promise<StuckTask[]> {
    return stuckTasks(this.pool, this.schema, filter);
  }

  async stats(owner?: string): Promise<TaskStats> {
    const { rows } = await this.pool.query<{ status: TaskStatus; count: string }>(
      `SELECT status, count(*) AS count FROM ${this.schema}.tasks
       WHERE ($1::text IS NULL OR owner = $1) GROUP BY status`,
      [owner ?? null],
    );
    const stats: TaskStats = {
      enqueued: 0,
      inProgress: 0,
      completed: 0,
      failed: 0,
      cancelled: 0,
      archived: 0,
    };
    for (const row of rows) {
      const count = Number(row.count);
      const key = publicStatus(row.status);
      if (key === 'created') stats.enqueued += count;
      else if (key === 'in_progress') stats.inProgress += count;
      else stats[key] += count;
    }
    return stats;
  }

  /**
   * Archives a finished task; one still in progress only with `force`. Its result file is
   * removed once the archive has committed.
   */
  async archive(
    id: string,
    options: { force: boolean; actor: string } & OwnerScope,
  ): Promise<TaskRecord> {
    const allowed = options.force
      ? ['enqueued', 'dequeued', 'running', 'child_running', 'completed', 'failed', 'cancelled']
      : ['completed', 'failed', 'cancelled'];
    const before = await this.get(id, options);
    const task = await this.transition(id, 'archived', allowed, options, 'archived', (current) =>
      current.status === 'archived'
        ? `Task ${id} is already archived`
        : `Task ${id} is ${current.status} (in progress); archive it anyway with --force`,
    );
    if (before.resultFile) await removeResultFiles([before.resultFile]);
    return task;
  }

  /** Archives several tasks, each as `archive` would; a refusal of one leaves the others. */
  async archiveMany(
    ids: string[],
    options: { force: boolean; actor: string } & OwnerScope,
  ): Promise<ArchiveManyResult> {
    const result: ArchiveManyResult = { archived: [], refused: [] };
    for (const id of ids) {
      try {
        await this.archive(id, options);
        result.archived.push(id);
      } catch (error) {
        if (!(error instanceof TransitionRefusedError || error instanceof TaskNotFoundError))
          throw error;
        result.refused.push({ id, reason: error.message });
      }
    }
    return result;
  }

  /** Archives every finished task (of one owner, finished long enough ago), in batches. */
  async archiveAllFinished(options: ArchiveAllOptions): Promise<number> {
    return archiveAllFinished(this.pool, this.schema, {
      ...options,
      onBatch: async (count, files) => {
        await removeResultFiles(files);
        await options.onBatch?.(count, files);
      },
    });
  }

  /** Deletes expired finished and archived tasks with their events and files, in batches. */
  async deleteExpired(options: DeleteExpiredOptions): Promise<number> {
    return deleteExpired(this.pool, this.schema, {
      ...options,
      onBatch: async (count, files) => {
        await removeResultFiles(files);
        await options.onBatch?.(count, files);
      },
    });
  }

  /** Cancels a task that has not started; one past `enqueued` only with `force`. */
  async cancel(
    id: string,
    options: { force: boolean; actor: string } & OwnerScope,
  ): Promise<TaskRecord> {
    const allowed = options.force
      ? ['enqueued', 'dequeued', 'running', 'child_running']
      : ['enqueued'];
    await this.get(id, options);
    return this.transition(id, 'cancelled', allowed, options, 'cancelled', (task) =>
      ['completed', 'failed', 'cancelled', 'archived'].includes(task.status)
        ? `Task ${id} is already ${task.status}; there is nothing to cancel`
        : `Task ${id} is ${task.status}, past enqueued; cancel it anyway with --force`,
    );
  }

  private async transition(
    id: string,
    to: TaskStatus,
    allowed: string[],
    scope: { actor: string } & OwnerScope,
    kind: string,
    refusal: (task: TaskRecord) => string,
  ): Promise<TaskRecord> {
    if (!isUuid(id)) throw new TaskNotFoundError(id);
    const s = this.schema;
    const { rows } = await this.pool.query<{ id: string; previous: TaskStatus }>(
      `WITH target AS (
         SELECT id, status FROM ${s}.tasks
         WHERE id = $1 AND ($6::text IS NULL OR owner = $6) FOR UPDATE
       ), changed AS (
         UPDATE ${s}.tasks t SET status = $2, updated_at = now(), lease_expires_at = NULL,
                finished_at = COALESCE(t.finished_at, now()),
                archived_at = CASE WHEN $2 = 'archived' THEN now() ELSE t.archived_at END,
                result_file = CASE WHEN $2 = 'archived' THEN NULL ELSE t.result_file END
         FROM target WHERE t.id = target.id AND target.status = ANY($3::text[])
         RETURNING t.id, target.status AS previous, t.attempts, t.worker, t.started_at
       ), events AS (
         INSERT INTO ${s}.events (task_id, kind, from_status, to_status, actor, detail)
         SELECT id, $4, previous, $2, $5,
                CASE WHEN previous = 'running' THEN jsonb_build_object(
                  'attempt', attempts, 'worker', worker, 'startedAt', started_at) END
         FROM changed
       )
       SELECT id, previous FROM changed`,
      [id, to, allowed, kind, scope.actor, scope.owner ?? null],
    );
    if (rows.length === 0) throw new TransitionRefusedError(refusal(await this.get(id, scope)));
    // The worker that runs it hears of it at once and aborts its handler.
    if (rows[0]!.previous === 'running')
      await notifyControl(this.pool, { schema: this.schema, kind: 'cancel', taskId: id });
    // A cancelled or archived child counts as ended: its parent may be done now.
    await new TaskLog(this.pool, this.schema).resolveParents([id], scope.actor);
    return this.get(id);
  }
}

/** The steps of a task's life that its row records in place of events. */
function rowEvents(row: TaskRow, stored: TaskEvent[]): TaskEvent[] {
  const steps: TaskEvent[] = [];
  const step = (
    at: string,
    kind: string,
    from: string | null,
    to: string,
    actor: string,
    detail: unknown = null,
  ) =>
    steps.push({
      id: null,
      at,
      kind,
      fromStatus: from,
      toStatus: to,
      actor,
      detail,
    });

  if (!stored.some((event) => event.kind === 'adopted')) {
    step(row.created_at_iso, 'enqueued', null, 'enqueued', row.owner);
  }
  // Every attempt but the current one has its start in the event that ended it.
  let recorded = false;
  for (const event of stored) {
    const detail = event.detail as { startedAt?: unknown; worker?: unknown; attempt?: unknown };
    if (typeof detail?.startedAt !== 'string') continue;
    const at = new Date(detail.startedAt);
    if (Number.isNaN(at.getTime())) continue;
    if (row.started_at_iso !== null && at.getTime() === Date.parse(row.started_at_iso))
      recorded = true;
    const actor = typeof detail.worker === 'string' ? detail.worker : event.actor;
    step(at.toISOString(), 'started', null, 'running', actor, { attempt: detail.attempt ?? null });
  }
  if (row.started_at_iso && row.worker && !recorded) {
    step(row.started_at_iso, 'started', null, 'running', row.worker, { attempt: row.attempts });
  }
  if (
    row.finished_at_iso &&
    (row.status === 'completed' || row.status === 'failed') &&
    !stored.some((event) => event.toStatus === row.status)
  ) {
    step(row.finished_at_iso, 'finished', 'running', row.status, row.worker ?? row.owner);
  }
  return steps;
}
