import { pathToFileURL } from 'node:url';

import { isPlainObject } from '../config/checker.js';
import type { RetryConfig } from '../config/types.js';
import { TaskqError, UnknownTaskError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import type { ReportInput } from './report.js';

/** What a handler is given besides its parameters. */
export interface TaskContext {
  taskId: string;
  /** 1 for the first run, 2 for the first retry, and so on. */
  attempt: number;
  queue: string;
  /** Aborted when the task is cancelled or the worker must stop before the task ends. */
  signal: AbortSignal;
  logger: Logger;
  /** Records how far the task is, 0 to 1, with an optional message. */
  progress(fraction: number, message?: string): void;
  /** Enqueues a task whose parent is this one. */
  enqueueChild(
    name: string,
    parameters?: unknown,
    options?: { label?: string; queue?: string },
  ): Promise<string>;
  /** Writes the task's result file; its name and size are recorded in the task log. */
  writeResultFile(
    fileName: string,
    content: string | Uint8Array,
  ): Promise<{ path: string; bytes: number }>;
}

export type HandlerFunction<P = unknown> = (
  parameters: P,
  context: TaskContext,
) => ReportInput | Promise<ReportInput> | unknown;

export interface HandlerDefinition<P = unknown> {
  run: HandlerFunction<P>;
  /** TAO's categories: export, import, delivery_comp ... shown in the task list. */
  category?: string;
  /**
   * Longest run of one attempt; past it the handler's AbortSignal fires and the attempt fails
   * (and is retried as `retry` says). Overrides worker.taskTimeoutSeconds.
   */
  timeoutSeconds?: number;
  /** Overrides the configuration's retry defaults for this task. */
  retry?: Partial<RetryConfig>;
  /** Chooses the queue from the parameters; undefined falls through to the association map. */
  queue?: (parameters: P) => string | undefined;
  /** Checks the parameters at enqueue; a throw refuses the task with the thrown message. */
  validate?: (parameters: unknown) => void;
}

export type HandlerModule = Record<string, HandlerFunction | HandlerDefinition>;

/** Declares handlers with their types checked; the identity function at run time. */
export function defineHandlers<T extends HandlerModule>(handlers: T): T {
  return handlers;
}

/** The handlers of one process, by task name. */
export class HandlerRegistry {
  private readonly handlers = new Map<string, HandlerDefinition>();

  constructor(module: HandlerModule = {}) {
    for (const [name, entry] of Object.entries(module)) this.register(name, entry);
  }

  register(name: string, entry: HandlerFunction | HandlerDefinition): void {
    if (typeof entry === 'function') this.handlers.set(name, { run: entry });
    else if (isPlainObject(entry) && typeof entry.run === 'function') {
      checkTimeout(name, entry.timeoutSeconds);
      this.handlers.set(name, entry);
    } else {
      throw new TaskqError(
        'HANDLER_INVALID',
        `Handler "${name}" must be a function or an object with a run function`,
      );
    }
  }

  names(): string[] {
    return [...this.handlers.keys()].sort();
  }

  find(name: string): HandlerDefinition | undefined {
    return this.handlers.get(name);
  }

  get(name: string): HandlerDefinition {
    const handler = this.handlers.get(name);
    if (!handler) throw new UnknownTaskError(name, this.names());
    return handler;
  }
}

function checkTimeout(name: string, timeoutSeconds: unknown): void {
  if (timeoutSeconds === undefined) return;
  if (typeof timeoutSeconds !== 'number' || !Number.isFinite(timeoutSeconds) || timeoutSeconds <= 0)
    throw new TaskqError(
      'HANDLER_INVALID',
      `Handler "${name}": timeoutSeconds must be a positive number of seconds ` +
        `(got ${JSON.stringify(timeoutSeconds) ?? String(timeoutSeconds)}); leave it out for no limit`,
    );
}

/** Imports the handlers module named in the configuration (its `handlers` or default export). */
export async function loadHandlers(modulePath: string | null): Promise<HandlerRegistry> {
  if (modulePath === null) return new HandlerRegistry();
  let imported: Record<string, unknown>;
  try {
    imported = (await import(pathToFileURL(modulePath).href)) as Record<string, unknown>;
  } catch (error) {
    throw new TaskqError(
      'HANDLERS_UNLOADABLE',
      `Cannot load the handlers module ${modulePath}: ${(error as Error).message}. ` +
        'Check the "handlers" setting of the configuration (or TASKQ_HANDLERS).',
      { cause: error },
    );
  }
  const module = imported.handlers ?? imported.default;
  if (!isPlainObject(module)) {
    throw new TaskqError(
      'HANDLERS_UNLOADABLE',
      `The handlers module ${modulePath} must export "handlers" (or a default export): an object ` +
        'mapping task names to handler functions',
    );
  }
  return new HandlerRegistry(module as HandlerModule);
}
