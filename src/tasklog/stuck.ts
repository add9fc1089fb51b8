import type pg from 'pg';

import { UsageError } from '../errors.js';

/** The statuses in which a task can be stuck: on its way to a worker, or running on one. */
export const STUCK_STATUSES = ['enqueued', 'dequeued', 'running'] as const;
export type StuckStatus = (typeof STUCK_STATUSES)[number];

/** A task younger than this is never called stuck: a busy queue would be full of them. */
export const MIN_STUCK_AGE_SECONDS = 60;
export const DEFAULT_STUCK_AGE_SECONDS = 300;
/** The most stuck tasks one summary or restart handles; run it again for the rest. */
export const MAX_STUCK_TASKS = 1000;

export interface StuckFilter {
  queue: string;
  /** Not updated for at least this many seconds. */
  ageSeconds: number;
  /** All of STUCK_STATUSES by default. */
  status?: StuckStatus[];
  /** Only these task names (a whitelist). */
  names?: string[];
  owner?: string;
  /** MAX_STUCK_TASKS by default. */
  limit?: number;
}

/** A stuck task, with what its restart needs to rebuild its message. */
export interface StuckTask {
  id: string;
  name: string;
  label: string;
  queue: string;
  owner: string;
  status: StuckStatus;
  /** Seconds since the task log last changed the task. */
  ageSeconds: number;
  attempts: number;
  maxAttempts: number;
  /** The worker that last held the task. */
  worker: string | null;
  /** True while that worker keeps renewing the task's lease: it is alive and runs the task. */
  leaseLive: boolean;
  /** The broker's handle of the message from the task's last start. */
  receipt: string | null;
  parameters: unknown;
  parentId: string | null;
  createdAt: Date;
  updatedAt: Date;
}

interface StuckRow {
  id: string;
  name: string;
  label: string;
  queue: string;
  owner: string;
  status: StuckStatus;
  age_seconds: number;
  attempts: number;
  max_attempts: number;
  worker: string | null;
  lease_live: boolean;
  receipt: string | null;
  parameters: unknown;
  parent_id: string | null;
  created_at: Date;
  updated_at: Date;
}

export function checkStuckFilter(filter: StuckFilter): void {
  const { ageSeconds } = filter;
  if (!Number.isFinite(ageSeconds) || ageSeconds < MIN_STUCK_AGE_SECONDS) {
    throw new UsageError(
      `age must be a number of seconds >= ${MIN_STUCK_AGE_SECONDS} (got ${ageSeconds}): ` +
        'a younger task may simply be waiting its turn',
    );
  }
  for (const status of filter.status ?? []) {
    if (!(STUCK_STATUSES as readonly string[]).includes(status))
      throw new UsageError(`status must be among ${STUCK_STATUSES.join(', ')} (got "${status}")`);
  }
  const limit = filter.limit ?? MAX_STUCK_TASKS;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_STUCK_TASKS)
    throw new UsageError(`limit must be an integer from 1 to ${MAX_STUCK_TASKS} (got ${limit})`);
}

/**
 * The stuck tasks of one queue, the longest-unchanged first. The query reads the `tasks_stuck`
 * index (queue, updated_at) over the stuck statuses only, so it costs the same whether the task
 * log holds a thousand finished tasks or millions.
 */
export async function stuckTasks(
  pool: pg.Pool,
  schema: string,
  filter: StuckFilter,
): Promise<StuckTask[]> {
  checkStuckFilter(filter);
  const { rows } = await pool.query<StuckRow>(
    `SELECT id, name, label, queue, owner, status, attempts, max_attempts, worker, receipt,
            parameters, parent_id, created_at, updated_at,
            extract(epoch FROM now() - updated_at)::float8 AS age_seconds,
            COALESCE(status = 'running' AND lease_expires_at > now(), false) AS lease_live
     FROM ${schema}.tasks
     WHERE queue = $1 AND status IN ('enqueued', 'dequeued', 'running')
       AND status = ANY($2::text[])
       AND updated_at < now() - $3 * interval '1 second'
       AND ($4::text[] IS NULL OR name = ANY($4::text[]))
       AND ($5::text IS NULL OR owner = $5)
     ORDER BY updated_at
     LIMIT $6`,
    [
      filter.queue,
      filter.status?.length ? filter.status : STUCK_STATUSES,
      filter.ageSeconds,
      filter.names?.length ? filter.names : null,
      filter.owner ?? null,
      filter.limit ?? MAX_STUCK_TASKS,
    ],
  );
  return rows.map((row) => ({
    id: row.id,
    name: row.name,
    label: row.label,
    queue: row.queue,
    owner: row.owner,
    status: row.status,
    ageSeconds: Math.floor(row.age_seconds),
    attempts: row.attempts,
    maxAttempts: row.max_attempts,
    worker: row.worker,
    leaseLive: row.lease_live,
    receipt: row.receipt,
    parameters: row.parameters,
    parentId: row.parent_id,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  }));
}

/**
 * Hands stuck tasks back to their queue in the task log: each becomes `enqueued` again (same
 * id, attempts kept, and one more attempt allowed if its last was used up) with a `restarted` event, if it is still stuck as the summary saw it. A
 * task running under a live lease is moved only with `force`; its worker's heartbeat then finds
 * it no longer running there and aborts the handler. Returns the ids moved.
 */
export async function restartInTaskLog(
  pool: pg.Pool,
  schema: string,
  tasks: { id: string; detail: Record<string, unknown> }[],
  options: { ageSeconds: number; force: boolean; actor: string },
): Promise<Set<string>> {
  if (tasks.length === 0) return new Set();
  const { rows } = await pool.query<{ id: string }>(
    `WITH input AS (
       SELECT * FROM unnest($1::uuid[], $2::jsonb[]) AS i(id, detail)
     ), target AS (
       -- A restart ends a running attempt early: its event carries the attempt's start, as
       -- every such event does, for the task's history (TaskLogQueries.events).
       SELECT t.id, t.status,
              input.detail || CASE WHEN t.status = 'running'
                                   THEN jsonb_build_object('startedAt', t.started_at,
                                                           'worker', t.worker, 'attempt', t.attempts)
                                   ELSE '{}'::jsonb END AS detail
       FROM ${schema}.tasks t JOIN input ON input.id = t.id
       WHERE t.status IN ('enqueued', 'dequeued', 'running')
         AND t.updated_at < now() - $3 * interval '1 second'
         AND ($4 OR t.status <> 'running' OR t.lease_expires_at IS NULL OR t.lease_expires_at <= now())
       FOR UPDATE OF t
     ), restarted AS (
       UPDATE ${schema}.tasks t
       SET status = 'enqueued', updated_at = now(), available_at = now(), lease_expires_at = NULL,
           max_attempts = GREATEST(t.max_attempts, t.attempts + 1)
       FROM target WHERE t.id = target.id
       RETURNING t.id, target.status AS previous, target.detail
     ), events AS (
       INSERT INTO ${schema}.events (task_id, kind, from_status, to_status, actor, detail)
       SELECT id, 'restarted', previous, 'enqueued', $5, detail FROM restarted
     )
     SELECT id FROM restarted`,
    [
      tasks.map((task) => task.id),
      tasks.map((task) => JSON.stringify(task.detail)),
      options.ageSeconds,
      options.force,
      options.actor,
    ],
  );
  return new Set(rows.map((row) => row.id));
}
