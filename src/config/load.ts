import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

import { ConfigError } from '../errors.js';
import { isPlainObject } from './checker.js';
import type { TaskqConfig } from './types.js';
import { validateConfig } from './validate.js';

export const DEFAULT_CONFIG_PATH = 'config/taskq.json';

export interface LoadOptions {
  /** An explicit file (the --config flag); it must exist. */
  configPath?: string;
  /** Values from command-line flags, in the shape of the file; they win over everything. */
  overrides?: Record<string, unknown>;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

/** Used when no file exists at the default path: one queue, on the postgres broker. */
export const BUILT_IN_CONFIG = {
  queues: [{ name: 'default', broker: { type: 'postgres' }, weight: 1 }],
};

/** Where taskq keeps runtime state: TASKQ_HOME, else `.taskq` in the working directory. */
export function stateDirectory(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): string {
  return path.resolve(cwd, env.TASKQ_HOME ?? '.taskq');
}

/** The file a command reads: --config, else TASKQ_CONFIG, else config/taskq.json. */
export function configFilePath(options: LoadOptions = {}): { file: string; explicit: boolean } {
  const env = options.env ?? process.env;
  const cwd = options.cwd ?? process.cwd();
  const explicit = options.configPath ?? env.TASKQ_CONFIG;
  return {
    file: path.resolve(cwd, explicit ?? DEFAULT_CONFIG_PATH),
    explicit: explicit !== undefined,
  };
}

/** Reads and parses a configuration file without validating it. */
export function readConfigFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    const reason =
      (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'does not exist' : 'cannot be read';
    throw new ConfigError(file, [
      { path: '(file)', message: `${reason}; pass --config with an existing file` },
    ]);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    const detail = error instanceof Error ? error.message : String(error);
    throw new ConfigError(file, [{ path: '(file)', message: `is not valid JSON: ${detail}` }]);
  }
  if (!isPlainObject(parsed)) {
    throw new ConfigError(file, [
      { path: '(file)', message: 'must hold a JSON object at the top level' },
    ]);
  }
  return parsed;
}

/**
 * Loads the configuration with the precedence defaults < file < environment < flags, and
 * validates the result as a whole.
 */
export function loadConfig(options: LoadOptions = {}): TaskqConfig {
  const env = options.env ?? process.env;
  const cwd = options.cwd ?? process.cwd();
  const { file, explicit } = configFilePath(options);

  const fromFile =
    explicit || existsSync(file) ? readConfigFile(file) : structuredClone(BUILT_IN_CONFIG);
  const merged = deepMerge(deepMerge(fromFile, fromEnvironment(env, cwd)), options.overrides ?? {});
  return validateConfig(merged, {
    source: existsSync(file) ? path.relative(cwd, file) || file : 'built-in configuration',
    baseDir: path.dirname(file),
    stateDir: stateDirectory(env, cwd),
  });
}

/** The environment variables that stand for configuration settings. */
function fromEnvironment(env: NodeJS.ProcessEnv, cwd: string): Record<string, unknown> {
  const result: Record<string, unknown> = {};
  if (env.TASKQ_DATABASE_URL) result.database = { url: env.TASKQ_DATABASE_URL };
  if (env.TASKQ_HANDLERS) result.handlers = path.resolve(cwd, env.TASKQ_HANDLERS);
  if (env.TASKQ_STRATEGY) result.strategy = env.TASKQ_STRATEGY;
  return result;
}

/** Objects merge key by key; arrays and scalars from `over` replace those of `base`. */
export function deepMerge(
  base: Record<string, unknown>,
  over: Record<string, unknown>,
): Record<string, unknown> {
  const result: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(over)) {
    if (value === undefined) continue;
    const current = result[key];
    result[key] =
      isPlainObject(current) && isPlainObject(value) ? deepMerge(current, value) : value;
  }
  return result;
}

export type { TaskqConfig };
