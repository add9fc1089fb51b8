/**
 * Every error taskq raises on purpose is a TaskqError with a stable `code`, so that callers and
 * the CLI can branch on the code rather than on the wording of the message.
 */
export class TaskqError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** One problem in a configuration: where it is and what to do about it. */
export interface ConfigProblem {
  path: string;
  message: string;
}

/** A configuration with one or more problems; all of them are listed, not just the first. */
export class ConfigError extends TaskqError {
  readonly problems: readonly ConfigProblem[];
  readonly source: string;

  constructor(source: string, problems: readonly ConfigProblem[]) {
    const lines = problems.map((problem) => `  - ${problem.path} ${problem.message}`);
    super('CONFIG_INVALID', `${source} has ${problems.length} problem(s):\n${lines.join('\n')}`);
    this.source = source;
    this.problems = problems;
  }
}

/** Bad command-line usage: the CLI exits with code 2. */
export class UsageError extends TaskqError {
  constructor(message: string) {
    super('USAGE', message);
  }
}

/** A task name that no handler is registered for. */
export class UnknownTaskError extends TaskqError {
  constructor(name: string, known: readonly string[]) {
    const list = known.length > 0 ? known.join(', ') : '(none registered)';
    super('UNKNOWN_TASK', `Unknown task "${name}". Known tasks: ${list}`);
  }
}

/** A task id that is not in the task log. */
export class TaskNotFoundError extends TaskqError {
  constructor(id: string) {
    super('TASK_NOT_FOUND', `No task with id "${id}" in the task log`);
  }
}

/** A transition the task log refuses, such as archiving a task still in progress. */
export class TransitionRefusedError extends TaskqError {
  constructor(message: string) {
    super('TRANSITION_REFUSED', message);
  }
}

/** Returns an Error for any thrown value, so that reports never say "[object Object]". */
export function toError(value: unknown): Error {
  if (value instanceof Error) return value;
  if (typeof value === 'string') return new Error(value);
  let text: string | undefined;
  try {
    // undefined for undefined, symbols and functions; a throw for BigInts and cycles.
    text = JSON.stringify(value);
  } catch {
    text = undefined;
  }
  return new Error(`Non-error value thrown: ${text ?? String(value)}`);
}
