import type pg from 'pg';

import { NAME_PATTERN } from '../config/defaults.js';
import { notifyControl } from '../database/control-channel.js';
import { transaction } from '../database/connection.js';
import { TransitionRefusedError, UsageError } from '../errors.js';

/**
 * Queue pauses that last: kept in the task log's database, so that they hold for every
 * supervisor and worker on that database and survive their restarts. A paused queue starts no
 * new task; the tasks running on it finish, and its waiting messages stay in the broker.
 *
 * Every change is announced on the control channel when it commits; workers also re-read the
 * pauses every few seconds and whenever their listening connection comes back.
 */

/** Where the pauses are kept: the task log's pool and schema (a TaskLog or TaskLogQueries). */
export interface PauseStore {
  pool: pg.Pool;
  schema: string;
}

export interface QueuePause {
  /** The queue's name; null for the pause of all queues. */
  queue: string | null;
  pausedAt: string;
  pausedBy: string;
}

export interface PausedQueues {
  /** Set while all queues are paused (`taskq pause` without --queue). */
  all: QueuePause | null;
  /** Queues paused one by one. */
  queues: QueuePause[];
}

/** The row that stands for "all queues"; no queue name can start with "*". */
const ALL = '*';

export interface PauseOptions {
  /** The configured queue names; a name outside them is refused. */
  configured?: readonly string[];
}

/** Pauses the named queues, or all of them; pausing a paused queue keeps its first pause. */
export async function pauseQueues(
  store: PauseStore,
  names: readonly string[] | 'all',
  actor: string,
  options: PauseOptions = {},
): Promise<PausedQueues> {
  const rows = names === 'all' ? [ALL] : checkNames(names, options.configured);
  await transaction(store.pool, async (client) => {
    await client.query(
      `WITH paused AS (
         INSERT INTO ${store.schema}.queue_pauses (queue, paused_by)
         SELECT unnest($1::text[]), $2 ON CONFLICT (queue) DO NOTHING
         RETURNING queue
       )
       INSERT INTO ${store.schema}.queue_pause_events (queue, action, actor)
       SELECT queue, 'paused', $2 FROM paused`,
      [rows, actor],
    );
    await notifyControl(client, { schema: store.schema, kind: 'pause' });
  });
  return pausedQueues(store);
}

/**
 * Resumes the named queues, or every queue (which also ends each queue's own pause). A queue
 * cannot be resumed alone while all queues are paused: that is refused and changes nothing.
 */
export async function resumeQueues(
  store: PauseStore,
  names: readonly string[] | 'all',
  actor: string,
  options: PauseOptions = {},
): Promise<PausedQueues> {
  const rows = names === 'all' ? null : checkNames(names, options.configured);
  await transaction(store.pool, async (client) => {
    let condition = 'true';
    if (rows !== null) {
      const all = await client.query<{ paused_by: string }>(
        `SELECT paused_by FROM ${store.schema}.queue_pauses WHERE queue = $1 FOR UPDATE`,
        [ALL],
      );
      if (all.rows[0]) {
        throw new TransitionRefusedError(
          `${rows.join(', ')} stay(s) paused: all queues are paused (by ${all.rows[0].paused_by}). ` +
            'Resume them all with "taskq resume" (no --queue), then pause the others one by one.',
        );
      }
      condition = 'queue = ANY($2::text[])';
    }
    await client.query(
      `WITH resumed AS (
         DELETE FROM ${store.schema}.queue_pauses WHERE ${condition} RETURNING queue
       )
       INSERT INTO ${store.schema}.queue_pause_events (queue, action, actor)
       SELECT queue, 'resumed', $1 FROM resumed`,
      rows === null ? [actor] : [actor, rows],
    );
    await notifyControl(client, { schema: store.schema, kind: 'pause' });
  });
  return pausedQueues(store);
}

/** What is paused now. */
export async function pausedQueues(store: PauseStore): Promise<PausedQueues> {
  const { rows } = await store.pool.query<{ queue: string; paused_at: Date; paused_by: string }>(
    `SELECT queue, paused_at, paused_by FROM ${store.schema}.queue_pauses ORDER BY queue`,
  );
  const toPause = (row: (typeof rows)[number]): QueuePause => ({
    queue: row.queue === ALL ? null : row.queue,
    pausedAt: row.paused_at.toISOString(),
    pausedBy: row.paused_by,
  });
  const all = rows.find((row) => row.queue === ALL);
  return {
    all: all ? toPause(all) : null,
    queues: rows.filter((row) => row.queue !== ALL).map(toPause),
  };
}

/** Whether `queue` is paused in `state`, by its own pause or by the pause of all queues. */
export function isQueuePaused(state: PausedQueues, queue: string): boolean {
  return state.all !== null || state.queues.some((pause) => pause.queue === queue);
}

function checkNames(names: readonly string[], configured?: readonly string[]): string[] {
  if (names.length === 0) throw new UsageError('Name at least one queue to pause or resume');
  for (const name of names) {
    if (!NAME_PATTERN.test(name)) {
      throw new UsageError(
        `Queue name "${name}" is not valid: a letter, then up to 79 letters, digits, "_", "." or "-"`,
      );
    }
    if (configured && !configured.includes(name)) {
      throw new UsageError(
        `Queue "${name}" is not configured (configured: ${configured.join(', ')}); check the name or the configuration file`,
      );
    }
  }
  return [...new Set(names)];
}
