import { setTimeout as sleep } from 'node:timers/promises';

import type pg from 'pg';

import type { ResultFile } from './result-files.js';

export interface ArchiveAllOptions {
  /** Only the tasks of this owner. */
  owner?: string;
  /** Only tasks that finished at least this long ago; 0 or absent for every finished task. */
  olderThanSeconds?: number;
  /** Tasks archived per transaction. */
  batchSize: number;
  actor: string;
  /** Called after each batch, with the batch's result files, once it has committed. */
  onBatch?: (archived: number, files: ResultFile[]) => Promise<void>;
  /** Stops between batches. */
  signal?: AbortSignal;
}

export interface DeleteExpiredOptions {
  /** Completed, failed and cancelled tasks that finished before this go; null keeps them. */
  finishedBefore: Date | null;
  /** Archived tasks archived before this go; null keeps them. */
  archivedBefore: Date | null;
  batchSize: number;
  onBatch?: (deleted: number, files: ResultFile[]) => Promise<void>;
  signal?: AbortSignal;
}

/**
 * After each batch a sweep rests for this many times as long as the batch took, so that a sweep
 * of a million rows takes at most about half of a database core and the workers beside it keep
 * their pace; it runs longer instead.
 */
const REST_PER_BATCH_TIME = 1;

/** Rests after a batch begun at `startedMs`, unless the sweep is being stopped. */
async function rest(startedMs: number, signal?: AbortSignal): Promise<void> {
  const ms = (performance.now() - startedMs) * REST_PER_BATCH_TIME;
  await sleep(ms, undefined, { signal }).catch(() => undefined);
}

interface SweptRow {
  id: string;
  key: Date;
  result_file: ResultFile | null;
}

/**
 * Archives every finished task (completed, failed, cancelled), one batch per transaction. The
 * batches walk the creation-time index in (created_at, id) order from where the last one
 * stopped, so each reads only its own rows (and the few tasks still in progress among them),
 * and memory stays one batch whatever the table's size. A task finishes after it is created,
 * so "finished before the cutoff" bounds the walk by creation time too. Tasks that finish after the sweep began are left for the next one. Rows another
 * transaction holds are skipped, never waited for.
 */
export async function archiveAllFinished(
  pool: pg.Pool,
  schema: string,
  options: ArchiveAllOptions,
): Promise<number> {
  const cutoff = await cutoffTime(pool, options.olderThanSeconds ?? 0);
  let after: { key: Date; id: string } | null = null;
  let total = 0;
  while (!options.signal?.aborted) {
    const batchStarted = performance.now();
    const { rows } = await pool.query<SweptRow>(
      `WITH batch AS (
         SELECT id, status, created_at, result_file FROM ${schema}.tasks
         WHERE status IN ('completed', 'failed', 'cancelled') AND finished_at < $1
           AND created_at < $1
           AND ($2::timestamptz IS NULL OR (created_at, id) > ($2, $3::uuid))
           AND ($4::text IS NULL OR owner = $4)
         ORDER BY created_at, id LIMIT $5
         FOR UPDATE SKIP LOCKED
       ), changed AS (
         UPDATE ${schema}.tasks t
         SET status = 'archived', archived_at = now(), updated_at = now(), result_file = NULL
         FROM batch WHERE t.id = batch.id
         RETURNING t.id, batch.status AS previous, batch.created_at AS key, batch.result_file
       ), events AS (
         INSERT INTO ${schema}.events (task_id, kind, from_status, to_status, actor)
         SELECT id, 'archived', previous, 'archived', $6 FROM changed
       )
       SELECT id, key, result_file FROM changed`,
      [
        cutoff,
        after?.key ?? null,
        after?.id ?? null,
        options.owner ?? null,
        options.batchSize,
        options.actor,
      ],
    );
    if (rows.length === 0) break;
    total += rows.length;
    // Batches that repeat part of a millisecond (JavaScript dates stop there) skip it again:
    // the rows archived already no longer match.
    after = lastKey(rows);
    await options.onBatch?.(rows.length, files(rows));
    await rest(batchStarted, options.signal);
  }
  return total;
}

/**
 * Deletes expired tasks with their events, one batch per transaction: finished tasks by the
 * time they finished (walking the creation-time index, as a task finishes after it is created),
 * archived ones by the time they were archived. Each batch reads the front of its index, which
 * the previous batch has just emptied.
 */
export async function deleteExpired(
  pool: pg.Pool,
  schema: string,
  options: DeleteExpiredOptions,
): Promise<number> {
  const sweeps = [
    {
      before: options.finishedBefore,
      column: 'finished_at',
      order: 'created_at',
      statuses: `('completed', 'failed', 'cancelled')`,
    },
    {
      before: options.archivedBefore,
      column: 'archived_at',
      order: 'archived_at',
      statuses: `('archived')`,
    },
  ];
  let total = 0;
  for (const sweep of sweeps) {
    if (sweep.before === null) continue;
    while (!options.signal?.aborted) {
      const batchStarted = performance.now();
      const { rows } = await pool.query<SweptRow>(
        `WITH batch AS (
           SELECT id FROM ${schema}.tasks
           WHERE status IN ${sweep.statuses} AND ${sweep.column} < $1 AND ${sweep.order} < $1
           ORDER BY ${sweep.order}, id LIMIT $2
           FOR UPDATE SKIP LOCKED
         ), deleted AS (
           DELETE FROM ${schema}.tasks t USING batch WHERE t.id = batch.id
           RETURNING t.id, t.${sweep.column} AS key, t.result_file
         ), events AS (
           DELETE FROM ${schema}.events e USING deleted WHERE e.task_id = deleted.id
         )
         SELECT id, key, result_file FROM deleted`,
        [sweep.before, options.batchSize],
      );
      if (rows.length === 0) break;
      total += rows.length;
      await options.onBatch?.(rows.length, files(rows));
      await rest(batchStarted, options.signal);
    }
  }
  return total;
}

/** The server's clock decides ages, as it wrote the times being compared. */
async function cutoffTime(pool: pg.Pool, olderThanSeconds: number): Promise<Date> {
  const { rows } = await pool.query<{ cutoff: Date }>(
    `SELECT now() - $1 * interval '1 second' AS cutoff`,
    [olderThanSeconds],
  );
  return rows[0]!.cutoff;
}

/** The greatest (key, id) of a batch: where the next batch starts. */
function lastKey(rows: SweptRow[]): { key: Date; id: string } {
  let last = rows[0]!;
  for (const row of rows) {
    const time = row.key.getTime() - last.key.getTime();
    if (time > 0 || (time === 0 && row.id > last.id)) last = row;
  }
  return { key: last.key, id: last.id };
}

function files(rows: SweptRow[]): ResultFile[] {
  return rows.flatMap((row) => (row.result_file ? [row.result_file] : []));
}
