import type { ConfigProblem } from '../errors.js';

/** Shows a value the way it appeared in the file, for "(got ...)" in a message. */
export function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  // A number too large for a double reads as Infinity, which JSON would show as null.
  if (typeof value === 'number' && !Number.isFinite(value)) return String(value);
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch {
    // Nested too deeply for JSON.stringify's recursion, or holding a BigInt: the kind still helps.
    if (typeof value !== 'object' || value === null) return String(value);
    return Array.isArray(value) ? 'a list JSON cannot show' : 'an object JSON cannot show';
  }
  if (text === undefined) return String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Collects every problem of a configuration instead of stopping at the first one. Each check
 * returns the value when it is valid and the fallback otherwise, so that later checks still run.
 */
export class Checker {
  readonly problems: ConfigProblem[] = [];

  problem(path: string, message: string): void {
    this.problems.push({ path, message });
  }

  number(
    path: string,
    value: unknown,
    fallback: number,
    rule: { min?: number; max?: number; integer?: boolean } = {},
  ): number {
    if (value === undefined) return fallback;
    const { min, max, integer = false } = rule;
    const ok =
      typeof value === 'number' &&
      Number.isFinite(value) &&
      (!integer || Number.isInteger(value)) &&
      (min === undefined || value >= min) &&
      (max === undefined || value <= max);
    if (ok) return value;

    const kind = integer ? 'an integer' : 'a number';
    const bounds = [min !== undefined ? `>= ${min}` : '', max !== undefined ? `<= ${max}` : '']
      .filter(Boolean)
      .join(' and ');
    this.problem(
      path,
      `must be ${kind}${bounds ? ` ${bounds}` : ''} (got ${describeValue(value)})`,
    );
    return fallback;
  }

  boolean(path: string, value: unknown, fallback: boolean): boolean {
    if (value === undefined) return fallback;
    if (typeof value === 'boolean') return value;
    this.problem(path, `must be true or false (got ${describeValue(value)})`);
    return fallback;
  }

  string(
    path: string,
    value: unknown,
    fallback: string,
    rule: { pattern?: RegExp; hint?: string } = {},
  ): string {
    if (value === undefined) return fallback;
    if (
      typeof value === 'string' &&
      value.length > 0 &&
      (!rule.pattern || rule.pattern.test(value))
    ) {
      return value;
    }
    const hint = rule.hint ?? 'a non-empty string';
    this.problem(path, `must be ${hint} (got ${describeValue(value)})`);
    return fallback;
  }

  nullableString(path: string, value: unknown, fallback: string | null): string | null {
    if (value === null) return null;
    return this.string(path, value, fallback ?? '') || fallback;
  }

  oneOf<T extends string>(path: string, value: unknown, choices: readonly T[], fallback: T): T {
    if (value === undefined) return fallback;
    if (typeof value === 'string' && (choices as readonly string[]).includes(value))
      return value as T;
    this.problem(path, `must be one of ${choices.join(', ')} (got ${describeValue(value)})`);
    return fallback;
  }

  /** An object section; unknown keys are reported, as they are most often typos. */
  section(path: string, value: unknown, known: readonly string[]): Record<string, unknown> {
    if (value === undefined) return {};
    if (!isPlainObject(value)) {
      this.problem(path, `must be an object (got ${describeValue(value)})`);
      return {};
    }
    for (const key of Object.keys(value)) {
      if (!known.includes(key)) {
        const where = path ? `${path}.${key}` : key;
        this.problem(where, `is not a known setting; known settings here: ${known.join(', ')}`);
      }
    }
    return value;
  }
}
