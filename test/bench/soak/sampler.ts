import { readFile } from 'node:fs/promises';

import type pg from 'pg';

import type { Health } from '../../support/supervisor.js';

/** What the soak records every few seconds. Rates are per second over the interval. */
export interface Sample {
  /** Seconds since the soak began, by the database's clock. */
  elapsedSeconds: number;
  at: Date;
  completedPerSecond: number;
  enqueuedPerSecond: number;
  /** Tasks enqueued and not yet received when the sample was taken. */
  backlog: number;
  /** Wait (started_at - created_at) of the tasks that started in the interval; null if none did. */
  waitP50Ms: number | null;
  waitP99Ms: number | null;
  supervisor: ProcessMemory;
  /** One per worker slot, in slot order. */
  workers: ProcessMemory[];
}

export interface ProcessMemory {
  pid: number | null;
  /** Resident memory; null when the process was gone (a worker between two lives). */
  rssMb: number | null;
}

/** A worker slot whose process changed between two samples. */
export interface WorkerRestart {
  elapsedSeconds: number;
  slot: number;
  oldPid: number | null;
  newPid: number | null;
}

interface IntervalRow {
  at: Date;
  completed: number;
  enqueued: number;
  backlog: number;
  p50: number | null;
  p99: number | null;
  oldest_open: Date | null;
}

/**
 * One statement per sample, whatever the size of the task log. A task that started or finished
 * after the previous sample was still open then (enqueued, received or running) or created
 * since, so the statement reads only the tasks created from the oldest task open at the
 * previous sample on, through the created_at index: the sixtieth minute costs what the first
 * does, and the sampler does not load the database it measures more and more.
 */
const INTERVAL_SQL = (schema: string) => `
  WITH recent AS (
    SELECT status, created_at, started_at, finished_at
    FROM ${schema}.tasks
    WHERE created_at >= $1
  )
  SELECT
    now() AS at,
    count(*) FILTER (WHERE status = 'completed' AND finished_at > $2)::int AS completed,
    count(*) FILTER (WHERE created_at > $2)::int AS enqueued,
    count(*) FILTER (WHERE status = 'enqueued')::int AS backlog,
    percentile_cont(0.5) WITHIN GROUP (
      ORDER BY extract(epoch FROM started_at - created_at) * 1000
    ) FILTER (WHERE started_at > $2) AS p50,
    percentile_cont(0.99) WITHIN GROUP (
      ORDER BY extract(epoch FROM started_at - created_at) * 1000
    ) FILTER (WHERE started_at > $2) AS p99,
    min(created_at) FILTER (
      WHERE status IN ('enqueued', 'dequeued', 'running', 'child_running')
    ) AS oldest_open
  FROM recent`;

/**
 * Takes the soak's samples: the interval's figures from the task log, and the resident memory
 * of the supervisor and of each worker from /proc, by the pids /healthz gives.
 */
export class SoakSampler {
  readonly restarts: WorkerRestart[] = [];
  private previousAt: Date;
  private lowerBound: Date;
  private pids: (number | null)[] = [];

  constructor(
    private readonly pool: pg.Pool,
    private readonly schema: string,
    private readonly health: () => Promise<Health>,
    /** The database's time when the soak began; no task may be open then. */
    private readonly startedAt: Date,
  ) {
    this.previousAt = startedAt;
    this.lowerBound = startedAt;
  }

  async sample(): Promise<Sample> {
    const { rows } = await this.pool.query<IntervalRow>(INTERVAL_SQL(this.schema), [
      this.lowerBound,
      this.previousAt,
    ]);
    const row = rows[0]!;
    const health = await this.health();
    const seconds = (row.at.getTime() - this.previousAt.getTime()) / 1000;
    const elapsedSeconds = (row.at.getTime() - this.startedAt.getTime()) / 1000;

    this.previousAt = row.at;
    this.lowerBound = row.oldest_open && row.oldest_open < row.at ? row.oldest_open : row.at;
    const workers = [...health.workers].sort((a, b) => a.slot - b.slot);
    this.noteRestarts(
      elapsedSeconds,
      workers.map((worker) => worker.pid),
    );

    return {
      elapsedSeconds,
      at: row.at,
      completedPerSecond: row.completed / seconds,
      enqueuedPerSecond: row.enqueued / seconds,
      backlog: row.backlog,
      waitP50Ms: row.p50,
      waitP99Ms: row.p99,
      supervisor: await processMemory(health.pid),
      workers: await Promise.all(workers.map((worker) => processMemory(worker.pid))),
    };
  }

  private noteRestarts(elapsedSeconds: number, pids: (number | null)[]): void {
    pids.forEach((pid, slot) => {
      const oldPid = this.pids[slot];
      if (oldPid !== undefined && oldPid !== pid) {
        this.restarts.push({ elapsedSeconds, slot, oldPid, newPid: pid });
        console.error(`  worker slot ${slot}: pid ${oldPid} -> ${pid} at ${elapsedSeconds} s`);
      }
    });
    this.pids = pids;
  }
}

async function processMemory(pid: number | null): Promise<ProcessMemory> {
  if (pid === null) return { pid, rssMb: null };
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const kilobytes = /^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1];
    return { pid, rssMb: kilobytes === undefined ? null : Number(kilobytes) / 1024 };
  } catch {
    // The process ended between /healthz and this read.
    return { pid, rssMb: null };
  }
}

/**
 * The p50 and p99 wait of the tasks that started in each of the given windows (seconds since
 * the soak began), over whole windows rather than from the samples' own percentiles. One scan
 * of the task log, at the end of the soak.
 */
export async function waitPercentilesByWindow(
  pool: pg.Pool,
  schema: string,
  startedAt: Date,
  windows: { fromSeconds: number; toSeconds: number }[],
): Promise<{ p50: number | null; p99: number | null }[]> {
  const { rows } = await pool.query<{ window: number; p50: number | null; p99: number | null }>(
    `SELECT w.index AS window,
            percentile_cont(0.5) WITHIN GROUP (ORDER BY t.wait_ms) AS p50,
            percentile_cont(0.99) WITHIN GROUP (ORDER BY t.wait_ms) AS p99
     FROM unnest($2::float8[], $3::float8[]) WITH ORDINALITY AS w(from_s, to_s, index)
     JOIN LATERAL (
       SELECT extract(epoch FROM started_at - created_at) * 1000 AS wait_ms
       FROM ${schema}.tasks
       WHERE started_at >= $1::timestamptz + make_interval(secs => w.from_s)
         AND started_at < $1::timestamptz + make_interval(secs => w.to_s)
     ) t ON true
     GROUP BY w.index`,
    [
      startedAt,
      windows.map((window) => window.fromSeconds),
      windows.map((window) => window.toSeconds),
    ],
  );
  return windows.map((_, index) => {
    const row = rows.find((entry) => Number(entry.window) === index + 1);
    return { p50: row?.p50 ?? null, p99: row?.p99 ?? null };
  });
}
