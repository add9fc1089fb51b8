import type pg from 'pg';

import { transaction, type SqlStatement } from '../database/connection.js';

import type { Report } from '../tasks/report.js';
import type { TaskMessage } from '../tasks/message.js';
import type { TaskStatus } from './statuses.js';

/** A new task, as written at enqueue. */
export interface NewTaskRow {
  id: string;
  name: string;
  queue: string;
  parameters: unknown;
  label: string;
  owner: string;
  category: string;
  parentId: string | null;
  maxAttempts: number;
  delaySeconds: number;
  /** The task this one runs again (`taskq log --rerun`); null for a task of its own. */
  rerunOf?: string | null;
}

/** What `start` found for one task id. */
export interface StartResult {
  id: string;
  /** The status before the attempt; null when the task log has no row for the id. */
  previous: TaskStatus | null;
  started: boolean;
  attempts: number;
  maxAttempts: number;
  /**
   * How long the task waited from becoming available to this start, by the database's clock
   * (hosts' clocks may disagree with it); null when it did not start.
   */
  waitedSeconds: number | null;
}

interface StartRow {
  id: string;
  previous: TaskStatus;
  started: boolean;
  attempts: number;
  max_attempts: number;
  waited_seconds: number | null;
}

/** How one attempt ended. `enqueued` means "retry after delaySeconds". */
export interface Outcome {
  id: string;
  attempt: number;
  status: 'completed' | 'failed' | 'enqueued' | 'child_running';
  report: Report;
  delaySeconds?: number;
}

/**
 * The task log's writes on the worker's hot path. Every transition is a compare-and-set on the
 * task's current status (and, for the end of an attempt, on the attempt number and the worker).
 *
 * The usual life of a task, enqueued then started then finished, is recorded in its own row
 * (`created_at`, `started_at`, `finished_at`, `worker`); every other transition also writes an
 * event, in the same statement, and an event that ends an attempt early carries that attempt's
 * start. `TaskLogQueries.events` joins both into the task's history. One row write per
 * transition instead of two is what keeps the task log from halving a worker's throughput.
 */
export class TaskLog {
  constructor(
    readonly pool: pg.Pool,
    readonly schema: string,
  ) {}

  /**
   * Inserts tasks; `db` is the enqueue transaction. The row itself records the enqueue (its
   * `created_at`, owner, and for a rerun `rerun_of`), so no event is written for it: see
   * `TaskLogQueries.events`.
   */
  async insert(db: pg.Pool | pg.PoolClient, rows: NewTaskRow[]): Promise<void> {
    const { text, values } = this.insertStatement(rows);
    await db.query(text, values);
  }

  /**
   * The insert as a statement that a transactional broker can join to its own in one round
   * trip: a plain INSERT (no WITH), with values $1 to $11.
   */
  insertStatement(rows: NewTaskRow[]): SqlStatement {
    return {
      text: `INSERT INTO ${this.schema}.tasks (id, name, queue, parameters, label, owner, category,
                                   parent_id, status, max_attempts, available_at, rerun_of)
       SELECT id, name, queue, parameters, label, owner, category, parent_id, 'enqueued',
              max_attempts, now() + delay * interval '1 second', rerun_of
       FROM unnest($1::uuid[], $2::text[], $3::text[], $4::jsonb[], $5::text[], $6::text[],
                   $7::text[], $8::uuid[], $9::int[], $10::float8[], $11::uuid[])
         AS i(id, name, queue, parameters, label, owner, category, parent_id, max_attempts, delay,
              rerun_of)`,
      values: [
        rows.map((r) => r.id),
        rows.map((r) => r.name),
        rows.map((r) => r.queue),
        rows.map((r) => JSON.stringify(r.parameters ?? null)),
        rows.map((r) => r.label),
        rows.map((r) => r.owner),
        rows.map((r) => r.category),
        rows.map((r) => r.parentId),
        rows.map((r) => r.maxAttempts),
        rows.map((r) => r.delaySeconds),
        rows.map((r) => r.rerunOf ?? null),
      ],
    };
  }

  /**
   * Writes the rows of messages that have none, which happens when a broker accepted a message
   * but the enqueue's transaction did not commit. The message carries the whole task.
   */
  async adopt(messages: TaskMessage[], maxAttempts: number, actor: string): Promise<void> {
    const s = this.schema;
    await this.pool.query(
      `WITH input AS (
         SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::jsonb[], $5::text[], $6::text[],
                              $7::uuid[], $8::timestamptz[])
           AS i(id, name, queue, parameters, label, owner, parent_id, created_at)
       ), inserted AS (
         INSERT INTO ${s}.tasks (id, name, queue, parameters, label, owner, parent_id, status,
                                 max_attempts, created_at)
         SELECT id, name, queue, parameters, label, owner, parent_id, 'enqueued', $9, created_at
         FROM input
         ON CONFLICT (id) DO NOTHING
         RETURNING id
       )
       INSERT INTO ${s}.events (task_id, kind, to_status, actor, detail)
       SELECT id, 'adopted', 'enqueued', $10, '{"reason": "message had no task-log row"}'
       FROM inserted`,
      [
        messages.map((m) => m.id),
        messages.map((m) => m.name),
        messages.map((m) => m.queue),
        messages.map((m) => JSON.stringify(m.parameters ?? null)),
        messages.map((m) => m.label),
        messages.map((m) => m.owner),
        messages.map((m) => m.parentId),
        messages.map((m) => m.createdAt),
        maxAttempts,
        actor,
      ],
    );
  }

  /**
   * Moves tasks to `running` for one attempt. A task starts only from enqueued or dequeued, or
   * from running when its holder's lease has run out (the holder is gone); so a message that is
   * delivered twice never runs twice at the same time. `receipts` (one per id) are the
   * brokers' handles of the messages, kept so that an operator can hand a stuck task's message
   * back (`taskq stuck restart`); null where the task id is the handle (postgres).
   */
  async start(
    ids: string[],
    worker: string,
    leaseSeconds: number,
    receipts: string[] | null = null,
  ): Promise<StartResult[]> {
    const s = this.schema;
    // The common case, a task waiting in its queue, in one statement that reads nothing first.
    const { rows } = await this.pool.query<StartRow>(
      receipts
        ? `UPDATE ${s}.tasks t
           SET status = 'running', attempts = t.attempts + 1, worker = $2, started_at = now(),
               updated_at = now(), lease_expires_at = now() + $3 * interval '1 second',
               receipt = m.receipt
           FROM unnest($1::uuid[], $4::text[]) AS m(id, receipt)
           WHERE t.id = ANY($1::uuid[]) AND t.id = m.id AND t.status IN ('enqueued', 'dequeued')
           RETURNING t.id, 'enqueued' AS previous, true AS started, t.attempts, t.max_attempts,
                     GREATEST(0, extract(epoch FROM now() - t.available_at))::float8 AS waited_seconds`
        : `UPDATE ${s}.tasks
           SET status = 'running', attempts = attempts + 1, worker = $2, started_at = now(),
               updated_at = now(), lease_expires_at = now() + $3 * interval '1 second',
               receipt = NULL
           WHERE id = ANY($1::uuid[]) AND status IN ('enqueued', 'dequeued')
           RETURNING id, 'enqueued' AS previous, true AS started, attempts, max_attempts,
                     GREATEST(0, extract(epoch FROM now() - available_at))::float8 AS waited_seconds`,
      receipts ? [ids, worker, leaseSeconds, receipts] : [ids, worker, leaseSeconds],
    );
    if (rows.length < ids.length) {
      const begun = new Set(rows.map((row) => row.id));
      // A task whose holder's lease ran out is taken over; the event keeps the lost attempt.
      const { rows: taken } = await this.pool.query<StartRow>(
        `WITH started AS (
           UPDATE ${s}.tasks t
           SET attempts = t.attempts + 1, worker = $2, started_at = now(), updated_at = now(),
               lease_expires_at = now() + $3 * interval '1 second',
               receipt = m.receipt
           FROM (SELECT id, worker, started_at FROM ${s}.tasks WHERE id = ANY($1::uuid[])) AS before,
                unnest($4::uuid[], $5::text[]) AS m(id, receipt)
           WHERE t.id = before.id AND m.id = t.id AND t.status = 'running'
             AND t.lease_expires_at < now()
           RETURNING t.id, before.worker AS previous_worker, before.started_at AS previous_start,
                     t.attempts, t.max_attempts, GREATEST(0, extract(epoch FROM now() - t.available_at))::float8 AS waited_seconds
         ), events AS (
           INSERT INTO ${s}.events (task_id, kind, from_status, to_status, actor, detail)
           SELECT id, 'lease-expired', 'running', 'running', $2,
                  jsonb_build_object('attempt', attempts - 1, 'worker', previous_worker,
                                     'startedAt', previous_start)
           FROM started
         )
         SELECT id, 'running' AS previous, true AS started, attempts, max_attempts, waited_seconds
         FROM started`,
        [
          ids.filter((id) => !begun.has(id)),
          worker,
          leaseSeconds,
          ids,
          receipts ?? ids.map(() => null),
        ],
      );
      rows.push(...taken);
    }
    const found = new Map(rows.map((row) => [row.id, row]));
    const missing = ids.filter((id) => !found.has(id));
    if (missing.length > 0) {
      // Not started: the worker needs their status to decide what to do with the messages.
      const others = await this.pool.query<StartRow>(
        `SELECT id, status AS previous, false AS started, attempts, max_attempts,
                NULL::float8 AS waited_seconds
         FROM ${s}.tasks WHERE id = ANY($1::uuid[])`,
        [missing],
      );
      for (const row of others.rows) found.set(row.id, row);
    }
    return ids.map((id) => {
      const row = found.get(id);
      if (!row)
        return {
          id,
          previous: null,
          started: false,
          attempts: 0,
          maxAttempts: 0,
          waitedSeconds: null,
        };
      return {
        id,
        previous: row.previous,
        started: row.started,
        attempts: row.attempts,
        maxAttempts: row.max_attempts,
        waitedSeconds: row.waited_seconds,
      };
    });
  }

  /**
   * Records the end of attempts. An outcome is written only while the task is still running the
   * same attempt on the same worker: a task cancelled or released meanwhile keeps its status,
   * and a late report from an aborted handler changes nothing. Returns the ids written.
   */
  async finish(
    outcomes: Outcome[],
    worker: string,
    db: pg.Pool | pg.PoolClient = this.pool,
  ): Promise<Set<string>> {
    const s = this.schema;
    const { rows } = await db.query<{ id: string }>(
      `WITH input AS (
         SELECT * FROM unnest($1::uuid[], $2::int[], $3::text[], $4::jsonb[], $5::float8[])
           AS i(id, attempt, status, report, delay)
       ), done AS (
         UPDATE ${s}.tasks t
         SET status = i.status, report = i.report, updated_at = now(), lease_expires_at = NULL,
             finished_at = CASE WHEN i.status IN ('completed', 'failed') THEN now() END,
             available_at = CASE WHEN i.status = 'enqueued' THEN now() + i.delay * interval '1 second'
                                 ELSE t.available_at END,
             progress = CASE WHEN i.status = 'completed' THEN 1 ELSE t.progress END
         FROM input i
         WHERE t.id = ANY($1::uuid[]) AND t.id = i.id AND t.status = 'running'
           AND t.attempts = i.attempt AND t.worker = $6
         RETURNING t.id, i.status, i.delay, i.attempt, i.report, t.started_at
       ), events AS (
         -- Completed and failed need no event: the row records them. A retry and a wait for
         -- children do, since the row moves on.
         INSERT INTO ${s}.events (task_id, kind, from_status, to_status, actor, detail)
         SELECT id, CASE WHEN status = 'enqueued' THEN 'retry' ELSE 'finished' END, 'running', status, $6,
                jsonb_build_object('attempt', attempt, 'startedAt', started_at,
                                   'delaySeconds', CASE WHEN status = 'enqueued' THEN delay END,
                                   'report', CASE WHEN status = 'enqueued' THEN report END)
         FROM done WHERE status IN ('enqueued', 'child_running')
       )
       SELECT id FROM done`,
      [
        outcomes.map((o) => o.id),
        outcomes.map((o) => o.attempt),
        outcomes.map((o) => o.status),
        outcomes.map((o) => JSON.stringify(o.report)),
        outcomes.map((o) => o.delaySeconds ?? 0),
        worker,
      ],
    );
    return new Set(rows.map((row) => row.id));
  }

  /**
   * Ends the parents among `ids` (or the parents of `ids`) that wait in child_running for
   * children that have all ended. A cancelled or archived child counts as ended, so a parent
   * never waits forever. The parent fails if a child failed or was cancelled (its work was not
   * all done), and its report then says how many; otherwise it completes. An archived child
   * does not change the outcome: archiving removes a task from view, it says nothing of how the
   * task went.
   *
   * Each parent is locked first and its children counted in a statement of their own, so that
   * of two children ending at once, the later one to get here sees both ended.
   */
  async resolveParents(ids: string[], actor: string): Promise<string[]> {
    if (ids.length === 0) return [];
    const s = this.schema;
    return transaction(this.pool, async (client) => {
      const { rows: parents } = await client.query<{ id: string }>(
        `SELECT id FROM ${s}.tasks
         WHERE status = 'child_running'
           AND (id = ANY($1::uuid[]) OR id IN (SELECT parent_id FROM ${s}.tasks WHERE id = ANY($1::uuid[])))
         ORDER BY id FOR UPDATE`,
        [ids],
      );
      if (parents.length === 0) return [];
      const { rows } = await client.query<{ id: string }>(
        `WITH ready AS (
           SELECT p.id, count(*) AS total,
                  count(*) FILTER (WHERE c.status = 'failed') AS failed,
                  count(*) FILTER (WHERE c.status = 'cancelled') AS cancelled
           FROM ${s}.tasks p JOIN ${s}.tasks c ON c.parent_id = p.id
           WHERE p.id = ANY($1::uuid[])
           GROUP BY p.id
           HAVING bool_and(c.status IN ('completed', 'failed', 'cancelled', 'archived'))
         ), ended AS (
           UPDATE ${s}.tasks t
           SET status = CASE WHEN ready.failed + ready.cancelled > 0 THEN 'failed' ELSE 'completed' END,
               report = CASE WHEN ready.failed + ready.cancelled = 0 THEN t.report
                        ELSE jsonb_build_object(
                          'type', 'error',
                          'message', format('%s of %s child task(s) failed and %s were cancelled',
                                            ready.failed, ready.total, ready.cancelled),
                          'children', jsonb_build_array(t.report)) END,
               finished_at = now(), updated_at = now(), progress = 1
           FROM ready WHERE t.id = ready.id
           RETURNING t.id, t.status, ready.total, ready.failed, ready.cancelled
         ), events AS (
           INSERT INTO ${s}.events (task_id, kind, from_status, to_status, actor, detail)
           SELECT id, 'children-ended', 'child_running', status, $2,
                  jsonb_build_object('children', total, 'failed', failed, 'cancelled', cancelled)
           FROM ended
         )
         SELECT id FROM ended`,
        [parents.map((parent) => parent.id), actor],
      );
      return rows.map((row) => row.id);
    });
  }

  /**
   * Gives running tasks back to the queue without an outcome: on shutdown, on pause after the
   * start, and when a dead worker's tasks are released. The attempt stays counted.
   */
  async release(
    ids: string[],
    worker: string | null,
    actor: string,
    reason: string,
  ): Promise<string[]> {
    const s = this.schema;
    const { rows } = await this.pool.query<{ id: string }>(
      `WITH released AS (
         UPDATE ${s}.tasks SET status = 'enqueued', lease_expires_at = NULL, updated_at = now(),
                               available_at = now()
         WHERE id = ANY($1::uuid[]) AND status = 'running' AND ($2::text IS NULL OR worker = $2)
         RETURNING id, attempts, worker, started_at
       ), events AS (
         INSERT INTO ${s}.events (task_id, kind, from_status, to_status, actor, detail)
         SELECT id, 'released', 'running', 'enqueued', $3,
                jsonb_build_object('reason', $4::text, 'attempt', attempts, 'worker', worker,
                                   'startedAt', started_at)
         FROM released
       )
       SELECT id FROM released`,
      [ids, worker, actor, reason],
    );
    return rows.map((row) => row.id);
  }

  /**
   * Fails a task that cannot run at all (unknown handler, unreadable message, too many
   * attempts); a parent waiting for it may end with it.
   */
  async failWithoutRunning(id: string, report: Report, actor: string): Promise<void> {
    const s = this.schema;
    await this.pool.query(
      `WITH failed AS (
         UPDATE ${s}.tasks SET status = 'failed', report = $2, updated_at = now(), finished_at = now(),
                               lease_expires_at = NULL
         WHERE id = $1 AND status IN ('enqueued', 'dequeued', 'running')
         RETURNING id
       )
       INSERT INTO ${s}.events (task_id, kind, to_status, actor, detail)
       SELECT id, 'finished', 'failed', $3, jsonb_build_object('reason', $2::jsonb->>'message') FROM failed`,
      [id, JSON.stringify(report), actor],
    );
    await this.resolveParents([id], actor);
  }

  /**
   * Notes when the handler of a task cancelled while it ran actually stopped (it returned after
   * its AbortSignal fired, or its worker was recycled), in the task's events.
   */
  async recordStopped(id: string, actor: string, detail: Record<string, unknown>): Promise<void> {
    await this.pool.query(
      `INSERT INTO ${this.schema}.events (task_id, kind, actor, detail) VALUES ($1, 'stopped', $2, $3)`,
      [id, actor, JSON.stringify(detail)],
    );
  }

  /**
   * Renews the lease of the tasks a live worker runs; returns the ids still running there, so
   * that the worker can abort the others (cancelled, or released by an operator, meanwhile).
   */
  async heartbeat(ids: string[], worker: string, leaseSeconds: number): Promise<Set<string>> {
    if (ids.length === 0) return new Set();
    const { rows } = await this.pool.query<{ id: string }>(
      `UPDATE ${this.schema}.tasks SET lease_expires_at = now() + $3 * interval '1 second'
       WHERE id = ANY($1::uuid[]) AND status = 'running' AND worker = $2
       RETURNING id`,
      [ids, worker, leaseSeconds],
    );
    return new Set(rows.map((row) => row.id));
  }

  /**
   * Of tasks whose outcome was not written, the ones an operator handed back to their queue
   * (`taskq stuck restart --force`) while they ran: their messages must be released, not acked.
   */
  async requeued(ids: string[], db: pg.Pool | pg.PoolClient = this.pool): Promise<Set<string>> {
    if (ids.length === 0) return new Set();
    const { rows } = await db.query<{ id: string }>(
      `SELECT id FROM ${this.schema}.tasks WHERE id = ANY($1::uuid[]) AND status = 'enqueued'`,
      [ids],
    );
    return new Set(rows.map((row) => row.id));
  }

  async progress(id: string, fraction: number, message: string | null): Promise<void> {
    await this.pool.query(
      `UPDATE ${this.schema}.tasks SET progress = $2, progress_message = $3, updated_at = now()
       WHERE id = $1 AND status = 'running'`,
      [id, fraction, message],
    );
  }

  /** Notes the result file a handler wrote, for download and for removal with the task. */
  async recordResultFile(
    id: string,
    file: { name: string; path: string; bytes: number },
  ): Promise<void> {
    await this.pool.query(`UPDATE ${this.schema}.tasks SET result_file = $2 WHERE id = $1`, [
      id,
      JSON.stringify(file),
    ]);
  }
}
