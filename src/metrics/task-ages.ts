import type pg from 'pg';

/** How long the oldest tasks of a queue have waited and run, from the task log. */
export interface QueueAges {
  /** The longest a visible task has waited to start; 0 when none waits. */
  oldestWaitingSeconds: number;
  /** The longest the current attempt of a running task has run; 0 when none runs. */
  oldestRunningSeconds: number;
  /** Running tasks whose attempt started more than the stuck threshold ago. */
  stuck: number;
}

export interface TaskAgesOptions {
  pool: pg.Pool;
  schema: string;
  /** Read at each query, so that a reloaded configuration applies. */
  stuckAfterSeconds: () => number;
  /** A reading younger than this is served again instead of querying. */
  maxAgeMs?: number;
}

interface AgeRow {
  queue: string;
  oldest_waiting: number | null;
  oldest_running: number | null;
  stuck: number;
}

/**
 * Reads the ages of every queue's oldest waiting and running tasks with one grouped query on the
 * active tasks (the tasks_active index), and keeps the reading for up to two seconds so that
 * scrapes close together share it. Concurrent reads share the query in flight.
 */
export class TaskAges {
  private reading: { at: number; ages: Promise<Map<string, QueueAges>> } | null = null;
  private readonly maxAgeMs: number;

  constructor(private readonly options: TaskAgesOptions) {
    this.maxAgeMs = options.maxAgeMs ?? 2000;
  }

  /** The ages of `queues`; a queue with no active task reads all zeros. */
  async read(queues: readonly string[]): Promise<Map<string, QueueAges>> {
    if (!this.reading || Date.now() - this.reading.at > this.maxAgeMs) {
      const ages = this.query();
      this.reading = { at: Date.now(), ages };
      // A failed query is not kept: the next scrape tries again.
      ages.catch(() => {
        if (this.reading?.ages === ages) this.reading = null;
      });
    }
    const found = await this.reading.ages;
    return new Map(
      queues.map((queue) => [
        queue,
        found.get(queue) ?? { oldestWaitingSeconds: 0, oldestRunningSeconds: 0, stuck: 0 },
      ]),
    );
  }

  private async query(): Promise<Map<string, QueueAges>> {
    const { rows } = await this.options.pool.query<AgeRow>(
      `SELECT queue,
              extract(epoch FROM now() - min(available_at)
                FILTER (WHERE status = 'enqueued' AND available_at <= now()))::float8
                AS oldest_waiting,
              extract(epoch FROM now() - min(started_at) FILTER (WHERE status = 'running'))::float8
                AS oldest_running,
              (count(*) FILTER (WHERE status = 'running'
                AND started_at < now() - $1 * interval '1 second'))::int AS stuck
       FROM ${this.options.schema}.tasks
       WHERE status IN ('enqueued', 'running')
       GROUP BY queue`,
      [this.options.stuckAfterSeconds()],
    );
    return new Map(
      rows.map((row) => [
        row.queue,
        {
          oldestWaitingSeconds: Math.max(0, row.oldest_waiting ?? 0),
          oldestRunningSeconds: Math.max(0, row.oldest_running ?? 0),
          stuck: row.stuck,
        },
      ]),
    );
  }
}
