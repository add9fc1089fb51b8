import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import { BUILT_IN_CONFIG, configFilePath, loadConfig, readConfigFile } from '../config/load.js';
import type { TaskqConfig } from '../config/types.js';
import { validateConfig } from '../config/validate.js';
import { createLogger, type Logger } from '../log/logger.js';
import { openRuntime, type Runtime, type RuntimeOptions } from '../runtime.js';

/** Options every command takes. */
export interface GlobalArgs {
  config?: string;
  'log-level'?: string;
  pretty?: boolean;
}

export function commandLogger(args: GlobalArgs): Logger {
  return createLogger({ level: args['log-level'], pretty: args.pretty });
}

export function commandConfig(args: GlobalArgs, overrides?: Record<string, unknown>): TaskqConfig {
  return loadConfig({ configPath: args.config, overrides });
}

/** Opens the runtime for one command and closes it whatever the command does. */
export async function withRuntime<T>(
  args: GlobalArgs,
  body: (runtime: Runtime) => Promise<T>,
  options: RuntimeOptions & { overrides?: Record<string, unknown> } = {},
): Promise<T> {
  const logger = commandLogger(args);
  const config = commandConfig(args, options.overrides);
  const runtime = await openRuntime(config, logger, { initQueues: false, ...options });
  try {
    return await body(runtime);
  } finally {
    await runtime.close();
  }
}

/**
 * Rewrites the configuration file with `change` applied to its parsed content, keeping every
 * other setting; a missing file starts as the built-in configuration. The new content is
 * validated first and written atomically (a temporary file renamed over the old one), so a
 * failed change leaves the file as it was.
 */
export async function rewriteConfigFile(
  args: GlobalArgs,
  change: (raw: Record<string, unknown>) => void,
): Promise<string> {
  const { file } = configFilePath({ configPath: args.config });
  const raw = await fs
    .access(file)
    .then(() => readConfigFile(file))
    .catch((error: unknown) => {
      // No file yet: the change applies to the built-in configuration, which was in effect.
      if ((error as NodeJS.ErrnoException).code === 'ENOENT')
        return { $schema: './taskq.schema.json', ...structuredClone(BUILT_IN_CONFIG) };
      throw error;
    });
  change(raw);
  validateConfig(raw, { source: file, baseDir: path.dirname(file), stateDir: process.cwd() });

  await fs.mkdir(path.dirname(file), { recursive: true });
  const temporary = `${file}.${process.pid}.tmp`;
  await fs.writeFile(temporary, `${JSON.stringify(raw, null, 2)}\n`);
  await fs.rename(temporary, file);
  return file;
}

/** Who acts from this command line, for the task log's events: `cli:<user>@<host>`. */
export function cliActor(): string {
  let user = process.env.USER ?? 'unknown';
  try {
    user = os.userInfo().username;
  } catch {
    // No passwd entry (a container's arbitrary uid): the environment's name stays.
  }
  return `cli:${user}@${os.hostname()}`;
}

/** Prints rows as an aligned table for people. */
export function printTable(rows: Record<string, unknown>[], columns: string[]): void {
  const cells = rows.map((row) => columns.map((column) => formatCell(row[column])));
  const widths = columns.map((column, index) =>
    Math.max(column.length, ...cells.map((cell) => cell[index]!.length)),
  );
  const line = (values: string[]) =>
    values
      .map((value, index) => value.padEnd(widths[index]!))
      .join('  ')
      .trimEnd();
  console.log(line(columns));
  for (const cell of cells) console.log(line(cell));
}

function formatCell(value: unknown): string {
  if (value === null || value === undefined) return '-';
  if (typeof value === 'string') return value.length > 48 ? `${value.slice(0, 45)}...` : value;
  return String(value);
}
