import { randomUUID } from 'node:crypto';

import type { OutgoingMessage } from './brokers/broker.js';
import type { MemoryBroker } from './brokers/memory.js';
import { transaction } from './database/connection.js';
import { TaskqError } from './errors.js';
import type { Runtime } from './runtime.js';
import { MESSAGE_VERSION, type TaskMessage } from './tasks/message.js';
import { checkParameters } from './tasks/parameters.js';
import type { Report } from './tasks/report.js';
import type { NewTaskRow } from './tasklog/task-log.js';
import { Worker } from './worker/worker.js';

/** The longest delay an enqueue takes: past a year, a delay is a mistake, not a schedule. */
export const MAX_DELAY_SECONDS = 365 * 24 * 3600;

export interface EnqueueOptions {
  label?: string;
  /** Overrides the dispatcher's choice. */
  queue?: string;
  owner?: string;
  parentId?: string | null;
  delaySeconds?: number;
  /** The task this one runs again; the task log links the two (see TaskOperations.rerun). */
  rerunOf?: string | null;
}

export interface EnqueueRequest extends EnqueueOptions {
  name: string;
  parameters?: unknown;
}

export interface Enqueued {
  id: string;
  queue: string;
  /** Set when the queue is a synchronous memory queue: the task already ran. */
  report?: Report;
  status?: string;
}

/** Who enqueues when no owner is given: the application, named by its process. */
export const DEFAULT_OWNER = 'system';

/**
 * Puts tasks into their queues. The task-log row and the broker message are written together:
 * on a transactional broker (postgres) in one statement; on the others the message is sent
 * inside the task log's transaction, before it commits, and a failed send rolls the row back.
 * A message whose row then fails to commit is adopted by the worker that receives it.
 */
export class TaskqClient {
  constructor(
    private readonly runtime: Runtime,
    private readonly actor = DEFAULT_OWNER,
  ) {}

  async enqueue(
    name: string,
    parameters: unknown = {},
    options: EnqueueOptions = {},
  ): Promise<Enqueued> {
    const [result] = await this.enqueueMany([{ name, parameters, ...options }]);
    return result!;
  }

  async enqueueMany(requests: EnqueueRequest[]): Promise<Enqueued[]> {
    const prepared = requests.map((request) => this.prepare(request));
    const byQueue = new Map<string, typeof prepared>();
    for (const entry of prepared) {
      const list = byQueue.get(entry.row.queue) ?? [];
      list.push(entry);
      byQueue.set(entry.row.queue, list);
    }

    const results = new Map<string, Enqueued>();
    for (const [queue, entries] of byQueue) {
      const broker = this.runtime.brokers.get(queue);
      const rows = entries.map((entry) => entry.row);
      const outgoing = entries.map((entry) => entry.outgoing);
      if (broker.pushAlong) {
        await broker.pushAlong(outgoing, this.runtime.taskLog.insertStatement(rows));
      } else {
        await transaction(this.runtime.db.pool, async (client) => {
          await this.runtime.taskLog.insert(client, rows);
          await broker.push(outgoing, broker.transactional ? client : undefined);
        });
      }
      for (const entry of entries) results.set(entry.row.id, { id: entry.row.id, queue });
      this.announce(
        queue,
        entries.map((entry) => entry.row.name),
      );
      if (broker.type === 'memory' && (broker as MemoryBroker).sync) {
        await this.runNow(queue, entries.length, results);
      }
    }
    return prepared.map((entry) => results.get(entry.row.id)!);
  }

  private announce(queue: string, names: string[]): void {
    if (this.runtime.events.listenerCount('enqueued') === 0) return;
    const counts = new Map<string, number>();
    for (const name of names) counts.set(name, (counts.get(name) ?? 0) + 1);
    for (const [name, count] of counts)
      this.runtime.events.emit('enqueued', { queue, name, count });
  }

  private prepare(request: EnqueueRequest): { row: NewTaskRow; outgoing: OutgoingMessage } {
    const { config, handlers, dispatcher } = this.runtime;
    const handler = handlers.get(request.name);
    const parameters = request.parameters ?? {};
    checkParameters(request.name, parameters);
    if (request.label?.includes('\u0000')) {
      throw new TaskqError(
        'LABEL_INVALID',
        `The label of task "${request.name}" holds a NUL character (\\u0000), which PostgreSQL cannot store`,
      );
    }
    try {
      handler.validate?.(parameters);
    } catch (error) {
      throw new TaskqError(
        'PARAMETERS_INVALID',
        `Parameters of task "${request.name}" refused: ${(error as Error).message}`,
        {
          cause: error,
        },
      );
    }
    const queue = dispatcher.queueFor(request.name, parameters, handler, request.queue);
    const delaySeconds = request.delaySeconds ?? 0;
    if (!Number.isFinite(delaySeconds) || delaySeconds < 0 || delaySeconds > MAX_DELAY_SECONDS) {
      throw new TaskqError(
        'DELAY_INVALID',
        `delaySeconds must be a number from 0 to ${MAX_DELAY_SECONDS} (a year) ` +
          `(got ${String(request.delaySeconds)})`,
      );
    }

    const message: TaskMessage = {
      v: MESSAGE_VERSION,
      id: randomUUID(),
      name: request.name,
      queue,
      parameters,
      label: request.label ?? request.name,
      owner: request.owner ?? this.actor,
      parentId: request.parentId ?? null,
      createdAt: new Date().toISOString(),
    };
    const bytes = Buffer.byteLength(JSON.stringify(message));
    const broker = this.runtime.brokers.get(queue);
    if (bytes > broker.maxMessageBytes) {
      throw new TaskqError(
        'MESSAGE_TOO_LARGE',
        `Task "${request.name}" is ${bytes} bytes as a message; queue "${queue}" (${broker.type}) takes at most ` +
          `${broker.maxMessageBytes}. Pass a reference to the data (a file or a row id) instead of the data itself.`,
      );
    }
    const retry = { ...config.retry, ...handler.retry };
    return {
      row: {
        id: message.id,
        name: message.name,
        queue,
        parameters,
        label: message.label,
        owner: message.owner,
        category: handler.category ?? 'unknown',
        parentId: message.parentId,
        // Retries count failures; a lost worker's attempt draws on an allowance of its own.
        maxAttempts: retry.limit + 1 + retry.lostAttemptsLimit,
        delaySeconds,
        rerunOf: request.rerunOf ?? null,
      },
      outgoing: { message, delaySeconds },
    };
  }

  /** Runs the tasks just pushed to a synchronous memory queue, in this process, before returning. */
  private async runNow(
    queue: string,
    count: number,
    results: Map<string, Enqueued>,
  ): Promise<void> {
    const worker = new Worker(this.runtime, {
      id: `${this.actor}:sync:${process.pid}`,
      queues: [queue],
      limit: count,
      concurrency: count,
      enqueue: (name, parameters, options) =>
        this.enqueue(name, parameters, options).then((r) => r.id),
    });
    await worker.run();
    for (const [id, result] of results) {
      if (result.queue !== queue) continue;
      const task = await this.runtime.queries.get(id);
      result.report = task.report ?? undefined;
      result.status = task.status;
    }
  }
}
