import fs from 'node:fs/promises';
import path from 'node:path';

import type { RetryConfig } from '../config/types.js';
import { TaskqError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import type { HandlerDefinition, TaskContext } from '../tasks/handlers.js';
import type { TaskMessage } from '../tasks/message.js';
import { errorReport, hasError, report, toReport, type Report } from '../tasks/report.js';
import type { Outcome, TaskLog } from '../tasklog/task-log.js';
import { retryDelaySeconds } from './backoff.js';
import type { TaskAbort } from './abort.js';
import type { Executor } from './executor.js';

/** Raised into a handler's AbortSignal when its worker stops before the task ends. */
export class ShutdownAbort extends TaskqError {
  constructor() {
    super('SHUTDOWN', 'The worker is stopping; the task will run again elsewhere');
  }
}

/** Raised into a handler's AbortSignal when its task was cancelled while it ran. */
export class CancelAbort extends TaskqError {
  constructor() {
    super('CANCELLED', 'The task was cancelled while it ran');
  }
}

/** Raised into a handler's AbortSignal when its task runs past its timeout. */
export class TimeoutAbort extends TaskqError {
  constructor(readonly timeoutSeconds: number) {
    super(
      'TIMEOUT',
      `The task ran past its timeout of ${timeoutSeconds} s (the handler's timeoutSeconds, ` +
        'else worker.taskTimeoutSeconds)',
    );
  }
}

/** Progress is written at most this often per task; the latest value wins. */
const PROGRESS_INTERVAL_MS = 250;

export interface AttemptDeps {
  taskLog: TaskLog;
  executor: Executor;
  logger: Logger;
  retryDefaults: RetryConfig;
  /** The timeout of a task whose handler sets none; null for none. */
  taskTimeoutSeconds: number | null;
  /** How long a handler may ignore its AbortSignal after a timeout before it is abandoned. */
  abortGraceSeconds: number;
  /**
   * A timed-out handler ignored its AbortSignal past the grace: its attempt ends without it, and
   * whatever it still does must be stopped by ending its thread or process.
   */
  onAbandoned: (taskId: string) => void;
  resultsDir: string;
  enqueueChild: (
    parentId: string,
    name: string,
    parameters: unknown,
    options: { label?: string; queue?: string },
  ) => Promise<string>;
}

/**
 * One run of one task: builds the handler's context, runs it, and turns what it returned or
 * threw into the outcome that the task log records.
 */
export async function runAttempt(
  deps: AttemptDeps,
  message: TaskMessage,
  handler: HandlerDefinition,
  attempt: number,
  maxAttempts: number,
  abort: TaskAbort,
): Promise<Outcome> {
  // The logger, the progress writer and the signal are made when the handler first uses them:
  // a short task that uses none of them costs no more than its call.
  let logger: Logger | undefined;
  const taskLogger = () =>
    (logger ??= deps.logger.child({ taskId: message.id, task: message.name, attempt }));
  let progress: ReturnType<typeof progressWriter> | undefined;
  let children = 0;
  const context: TaskContext = {
    taskId: message.id,
    attempt,
    queue: message.queue,
    get signal() {
      return abort.signal;
    },
    get logger() {
      return taskLogger();
    },
    progress: (fraction, text) => {
      progress ??= progressWriter(deps.taskLog, message.id, taskLogger);
      progress.update(fraction, text);
    },
    enqueueChild: async (name, parameters, options = {}) => {
      const id = await deps.enqueueChild(message.id, name, parameters, options);
      children += 1;
      return id;
    },
    writeResultFile: (fileName, content) => writeResultFile(deps, message.id, fileName, content),
  };

  let result: Report;
  const timeoutSeconds = handler.timeoutSeconds ?? deps.taskTimeoutSeconds;
  const running = deps.executor.run(message.name, handler, message.parameters, context);
  try {
    result = toReport(
      await (timeoutSeconds === null
        ? running
        : withinTimeout(running, abort, timeoutSeconds, deps, message.id)),
    );
  } catch (thrown) {
    result = errorReport(thrown);
  } finally {
    if (progress) await progress.flush();
  }
  // What a handler answers once its time is up does not count: the attempt timed out.
  if (abort.reason instanceof TimeoutAbort) result = errorReport(abort.reason);

  if (!hasError(result)) {
    // A parent ends when its children do; the task log completes it then.
    const status = children > 0 ? 'child_running' : 'completed';
    return { id: message.id, attempt, status, report: result };
  }
  const retry = { ...deps.retryDefaults, ...handler.retry };
  // A cancel or a shutdown is not a failure to retry; a timeout is.
  const stopped = abort.aborted && !(abort.reason instanceof TimeoutAbort);
  if (attempt < Math.min(maxAttempts, retry.limit + 1) && !stopped) {
    const delaySeconds = retryDelaySeconds(attempt, retry);
    const note = report(
      'info',
      `Attempt ${attempt} failed; retrying in ${delaySeconds} s`,
      undefined,
      [result],
    );
    return { id: message.id, attempt, status: 'enqueued', report: note, delaySeconds };
  }
  return { id: message.id, attempt, status: 'failed', report: result };
}

/**
 * Settles with the handler's run, aborting it when its time is up. A handler that ignores the
 * abort for the grace is abandoned: the attempt ends without it.
 */
function withinTimeout(
  running: Promise<unknown>,
  abort: TaskAbort,
  timeoutSeconds: number,
  deps: AttemptDeps,
  taskId: string,
): Promise<unknown> {
  let timer: NodeJS.Timeout | undefined;
  const abandoned = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      abort.abort(new TimeoutAbort(timeoutSeconds));
      timer = setTimeout(() => {
        deps.onAbandoned(taskId);
        reject(abort.reason);
      }, deps.abortGraceSeconds * 1000);
    }, timeoutSeconds * 1000);
  });
  return Promise.race([running, abandoned]).finally(() => clearTimeout(timer));
}

function progressWriter(taskLog: TaskLog, taskId: string, logger: () => Logger) {
  let latest: { fraction: number; message: string | null } | null = null;
  let timer: NodeJS.Timeout | null = null;
  let writing: Promise<void> = Promise.resolve();

  const write = () => {
    timer = null;
    const value = latest;
    latest = null;
    if (!value) return;
    writing = writing
      .then(() => taskLog.progress(taskId, value.fraction, value.message))
      .catch((error) => logger().warn({ err: error }, 'could not record progress'));
  };

  return {
    update(fraction: number, message?: string): void {
      if (!Number.isFinite(fraction)) return;
      latest = { fraction: Math.min(1, Math.max(0, fraction)), message: message ?? null };
      timer ??= setTimeout(write, PROGRESS_INTERVAL_MS);
    },
    async flush(): Promise<void> {
      if (timer) clearTimeout(timer);
      write();
      await writing;
    },
  };
}

async function writeResultFile(
  deps: AttemptDeps,
  taskId: string,
  fileName: string,
  content: string | Uint8Array,
): Promise<{ path: string; bytes: number }> {
  const name = path.basename(fileName);
  if (!name || name !== fileName || name === '.' || name === '..') {
    throw new TaskqError(
      'RESULT_FILE_NAME',
      `Result file name "${fileName}" must be a plain file name, without directories`,
    );
  }
  const directory = path.join(deps.resultsDir, taskId);
  const file = path.join(directory, name);
  const bytes = typeof content === 'string' ? Buffer.byteLength(content) : content.byteLength;
  try {
    await fs.mkdir(directory, { recursive: true });
    await fs.writeFile(file, content);
  } catch (error) {
    // A half-written file is worse than none: the task log would offer it for download.
    await fs.rm(file, { force: true }).catch(() => undefined);
    const code = (error as NodeJS.ErrnoException).code;
    const hint =
      code === 'ENOSPC' || code === 'EDQUOT'
        ? 'the disk of results.directory is full; free space there or point results.directory elsewhere'
        : (error as Error).message;
    throw new TaskqError(
      'RESULT_FILE_WRITE',
      `Could not write result file "${name}" (${bytes} bytes) in ${deps.resultsDir}: ${hint}`,
      { cause: error },
    );
  }
  await deps.taskLog.recordResultFile(taskId, { name, path: file, bytes });
  return { path: file, bytes };
}
