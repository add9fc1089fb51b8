import { TaskqError } from '../errors.js';

/**
 * Deepest nesting of objects and lists that task parameters may have. JSON itself sets no
 * limit, but the code that writes, stores and reads parameters recurses once per level, and a
 * task whose parameters nest this deep is a mistake rather than a design.
 */
export const MAX_PARAMETER_DEPTH = 100;

/**
 * Refuses parameters that would not reach the handler as they were given: JSON has no
 * functions, symbols or BigInts, turns NaN and Infinity into null and a Map or a Set into {},
 * cannot write a cycle; PostgreSQL stores no NUL character. The message names the task, the
 * place inside the parameters (`parameters.items[2].id`) and what to pass instead.
 */
export function checkParameters(taskName: string, parameters: unknown): void {
  const problem = parametersProblem(parameters);
  if (problem === null) return;
  throw new TaskqError(
    'PARAMETERS_INVALID',
    `Parameters of task "${taskName}" refused: ${problem}`,
  );
}

/** What is wrong with parameters, starting with where (`parameters.items[2]`); null if nothing. */
export function parametersProblem(parameters: unknown): string | null {
  const problem = findProblem(parameters, 'parameters', 1, []);
  if (problem === null) return null;
  const at = problem.at.length > 80 ? `${problem.at.slice(0, 77)}...` : problem.at;
  return `${at} ${problem.message}`;
}

interface Problem {
  at: string;
  message: string;
}

function findProblem(
  value: unknown,
  at: string,
  depth: number,
  ancestors: object[],
): Problem | null {
  switch (typeof value) {
    case 'string':
      return value.includes('\u0000') ? { at, message: NUL } : null;
    case 'number':
      return Number.isFinite(value)
        ? null
        : { at, message: `is ${value}, which JSON cannot hold; pass a finite number or null` };
    case 'boolean':
      return null;
    case 'bigint':
      return { at, message: 'is a BigInt, which JSON cannot hold; pass it as a string' };
    case 'function':
    case 'symbol':
      return { at, message: `is a ${typeof value}, which JSON cannot hold; pass data only` };
    case 'undefined':
      return null;
  }
  if (value === null) return null;
  return findInObject(value as object, at, depth, ancestors);
}

const NUL = 'holds a NUL character (\\u0000), which PostgreSQL cannot store';

function findInObject(value: object, at: string, depth: number, ancestors: object[]) {
  if (ancestors.includes(value))
    return { at, message: 'refers back to itself (a cycle), which JSON cannot write' };
  if (depth > MAX_PARAMETER_DEPTH)
    return { at, message: `nests deeper than ${MAX_PARAMETER_DEPTH} levels; pass flatter data` };
  if (value instanceof Map || value instanceof Set)
    return { at, message: `is a ${value.constructor.name}, which JSON writes as {}; pass a list` };
  // Dates and other objects with toJSON are written as their toJSON says.
  if ('toJSON' in value && typeof value.toJSON === 'function') return null;

  const inside = [...ancestors, value];
  if (Array.isArray(value)) {
    for (const [index, item] of value.entries()) {
      const found = findProblem(item, `${at}[${index}]`, depth + 1, inside);
      if (found) return found;
    }
    return null;
  }
  for (const [key, item] of Object.entries(value)) {
    const where = /^[A-Za-z_$][\w$]*$/.test(key) ? `${at}.${key}` : `${at}[${JSON.stringify(key)}]`;
    if (key.includes('\u0000')) return { at: where, message: `has a key that ${NUL}` };
    const found = findProblem(item, where, depth + 1, inside);
    if (found) return found;
  }
  return null;
}
