import { pino, type Logger as PinoLogger } from 'pino';

export type Logger = PinoLogger;

export interface LoggerOptions {
  /** pino level name; TASKQ_LOG_LEVEL overrides the default of "info". */
  level?: string;
  /** Human-readable lines instead of JSON (TASKQ_LOG_PRETTY=1). */
  pretty?: boolean;
  /** Bound to every line, for example `{ worker: 'w3' }`. */
  bindings?: Record<string, unknown>;
}

/** Paths that must never reach a log line, whatever object is logged. */
const REDACTED_PATHS = [
  'password',
  'token',
  'databaseUrl',
  'url',
  'parameters',
  '*.password',
  '*.token',
  '*.databaseUrl',
  '*.url',
  '*.parameters',
];

/**
 * The one logger of a taskq process: JSON lines on stderr (file descriptor 2), so that stdout
 * stays free for a command's results.
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  const level = options.level ?? process.env.TASKQ_LOG_LEVEL ?? 'info';
  const pretty = options.pretty ?? process.env.TASKQ_LOG_PRETTY === '1';
  const base = { pid: process.pid, ...options.bindings };
  const redact = { paths: REDACTED_PATHS, censor: '[redacted]' };

  if (pretty) {
    const transport = pino.transport({
      target: 'pino-pretty',
      options: { destination: 2, colorize: process.stderr.isTTY },
    });
    return pino({ level, base, redact }, transport);
  }
  return pino({ level, base, redact }, pino.destination({ fd: 2, sync: true }));
}

/**
 * Removes the password from a connection string before it is shown to anyone: the one of the
 * user part, and any query parameter such as `password` or `sslpassword`, which pg reads too.
 */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    for (const name of [...parsed.searchParams.keys()])
      if (/password/i.test(name)) parsed.searchParams.set(name, '***');
    return parsed.toString();
  } catch {
    return '[unparsable url]';
  }
}
