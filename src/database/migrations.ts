import type pg from 'pg';

import { transaction } from './connection.js';

/**
 * The task log's schema, one numbered step at a time. A step is never edited once released; a
 * change is a new step. The schema name is a validated identifier (see SCHEMA_PATTERN), which is
 * why it may be written into the SQL text; every value goes through a parameter.
 */
interface Migration {
  version: number;
  name: string;
  sql: (schema: string) => string;
}

export const TASK_STATUSES = [
  'enqueued',
  'dequeued',
  'running',
  'child_running',
  'completed',
  'failed',
  'cancelled',
  'archived',
] as const;

const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'task log',
    sql: (s) => `
      CREATE TABLE ${s}.tasks (
        id uuid PRIMARY KEY,
        name text NOT NULL,
        queue text NOT NULL,
        parameters jsonb NOT NULL,
        label text NOT NULL DEFAULT '',
        owner text NOT NULL,
        category text NOT NULL DEFAULT 'unknown',
        parent_id uuid,
        status text NOT NULL CHECK (status IN (${TASK_STATUSES.map((x) => `'${x}'`).join(', ')})),
        report jsonb,
        progress real,
        progress_message text,
        attempts integer NOT NULL DEFAULT 0,
        max_attempts integer NOT NULL,
        worker text,
        lease_expires_at timestamptz,
        result_file jsonb,
        created_at timestamptz NOT NULL DEFAULT now(),
        available_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        started_at timestamptz,
        finished_at timestamptz
      );
      CREATE INDEX tasks_created_at ON ${s}.tasks (created_at DESC);
      CREATE INDEX tasks_active ON ${s}.tasks (status, updated_at)
        WHERE status IN ('enqueued', 'dequeued', 'running', 'child_running');
      CREATE INDEX tasks_parent ON ${s}.tasks (parent_id) WHERE parent_id IS NOT NULL;
      CREATE INDEX tasks_owner_created_at ON ${s}.tasks (owner, created_at DESC);

      CREATE TABLE ${s}.events (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        task_id uuid NOT NULL,
        at timestamptz NOT NULL DEFAULT now(),
        kind text NOT NULL,
        from_status text,
        to_status text,
        actor text NOT NULL,
        detail jsonb
      );
      CREATE INDEX events_task ON ${s}.events (task_id, id);
    `,
  },
  {
    version: 2,
    name: 'operations: stuck tasks, reruns, archive and retention',
    // Every index on the task log is paid for by each start and finish of every task, so the
    // operations add only what the queries cannot do without: the archived tasks in the order
    // of their archiving (for retention) and the reruns of a task. Stuck tasks read
    // tasks_active; the listing, the archive and the retention of finished tasks walk
    // tasks_created_at and test each row.
    sql: (s) => `
      ALTER TABLE ${s}.tasks
        ADD COLUMN rerun_of uuid,
        ADD COLUMN archived_at timestamptz,
        ADD COLUMN receipt text;
      CREATE INDEX tasks_archived ON ${s}.tasks (archived_at, id) WHERE status = 'archived';
      CREATE INDEX tasks_rerun_of ON ${s}.tasks (rerun_of) WHERE rerun_of IS NOT NULL;
    `,
  },
  {
    // Depends on version 1 only.
    version: 3,
    name: 'queue pauses',
    sql: (s) => `
      CREATE TABLE ${s}.queue_pauses (
        queue text PRIMARY KEY,
        paused_at timestamptz NOT NULL DEFAULT now(),
        paused_by text NOT NULL
      );
      CREATE TABLE ${s}.queue_pause_events (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        at timestamptz NOT NULL DEFAULT now(),
        queue text NOT NULL,
        action text NOT NULL CHECK (action IN ('paused', 'resumed')),
        actor text NOT NULL
      );
    `,
  },
];

/** The versions of every step, in the order they apply. */
export const MIGRATION_VERSIONS: readonly number[] = MIGRATIONS.map((step) => step.version);
export const LATEST_VERSION = Math.max(...MIGRATION_VERSIONS);

/**
 * Brings the task log's schema up to date. Safe when several processes run it at once: a
 * transaction-scoped advisory lock lets one of them apply the steps while the others wait and
 * then find nothing left to do.
 */
export async function migrate(pool: pg.Pool, schema: string): Promise<number[]> {
  return transaction(pool, async (client) => {
    await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`taskq.migrate.${schema}`]);
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
    await client.query(`
      CREATE TABLE IF NOT EXISTS ${schema}.migrations (
        version integer PRIMARY KEY,
        name text NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT now()
      )`);
    const { rows } = await client.query<{ version: number }>(
      `SELECT version FROM ${schema}.migrations`,
    );
    const done = new Set(rows.map((row) => row.version));

    const applied: number[] = [];
    for (const step of MIGRATIONS) {
      if (done.has(step.version)) continue;
      await client.query(step.sql(schema));
      await client.query(`INSERT INTO ${schema}.migrations (version, name) VALUES ($1, $2)`, [
        step.version,
        step.name,
      ]);
      applied.push(step.version);
    }
    return applied;
  });
}
