import type { TaskqConfig } from '../../src/config/types.js';
import { validateConfig, type ValidateContext } from '../../src/config/validate.js';
import { ConfigError, type ConfigProblem } from '../../src/errors.js';

/** A step into a configuration: a key of an object or an index of a list. */
export type Segment = string | number;

export type RawConfig = Record<string, unknown>;

/**
 * A small configuration the validator accepts, everything but the queues defaulted. The second
 * queue lets the first one's weight be 0 (one queue of weight 0 could run nothing). The token
 * gives the settings inside a token entry a valid entry around them.
 */
export const MINIMAL: RawConfig = {
  queues: [{ name: 'default' }, { name: 'spare' }],
  http: { tokens: [{ tokenEnv: 'TASKQ_ADMIN_TOKEN', owner: 'ops', role: 'admin' }] },
};

export const CONTEXT: ValidateContext = {
  source: 'test.json',
  baseDir: '/srv/app/config',
  stateDir: '/srv/app/.taskq',
};

/** Writes a path the way the validator names it in its problems: `queues[0].broker.receive`. */
export function pathText(path: readonly Segment[]): string {
  return path
    .map((segment, index) =>
      typeof segment === 'number' ? `[${segment}]` : index === 0 ? segment : `.${segment}`,
    )
    .join('');
}

export function getAt(raw: unknown, path: readonly Segment[]): unknown {
  let value = raw;
  for (const segment of path) {
    if (typeof value !== 'object' || value === null) return undefined;
    value = (value as Record<Segment, unknown>)[segment];
  }
  return value;
}

/** A copy of `raw` with `value` at `path`, objects created on the way; undefined removes it. */
export function setAt(raw: RawConfig, path: readonly Segment[], value: unknown): RawConfig {
  const copy = structuredClone(raw);
  let parent: Record<Segment, unknown> = copy;
  for (const [index, segment] of path.slice(0, -1).entries()) {
    const next = parent[segment];
    if (typeof next !== 'object' || next === null) {
      parent[segment] = typeof path[index + 1] === 'number' ? [] : {};
    }
    parent = parent[segment] as Record<Segment, unknown>;
  }
  const last = path[path.length - 1]!;
  if (value === undefined) {
    if (Array.isArray(parent)) parent.splice(Number(last), 1);
    else delete parent[last];
  } else {
    parent[last] = structuredClone(value);
  }
  return copy;
}

/** The problems the validator reports for `raw`; an empty list when it accepts it. */
export function problemsOf(raw: unknown): ConfigProblem[] {
  try {
    validateConfig(raw, CONTEXT);
    return [];
  } catch (error) {
    if (error instanceof ConfigError) return [...error.problems];
    throw error;
  }
}

/** The resolved configuration of `raw`, which must be valid. */
export function resolve(raw: unknown): TaskqConfig {
  return validateConfig(raw, CONTEXT);
}
