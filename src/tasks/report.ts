import { isPlainObject } from '../config/checker.js';
import { toError } from '../errors.js';

export const REPORT_TYPES = ['success', 'info', 'warning', 'error'] as const;
export type ReportType = (typeof REPORT_TYPES)[number];

/** What a task tells about its run, as a tree: TAO's report shape. */
export interface Report {
  type: ReportType;
  message: string;
  data?: unknown;
  children: Report[];
}

/** What a handler may return: a report (children optional), a message, or nothing. */
export type ReportInput =
  | string
  | void
  | undefined
  | { type: ReportType; message: string; data?: unknown; children?: ReportInput[] };

export function report(
  type: ReportType,
  message: string,
  data?: unknown,
  children: Report[] = [],
): Report {
  return data === undefined ? { type, message, children } : { type, message, data, children };
}

/**
 * Turns a handler's return value into a Report. Anything that is not a report becomes the data
 * of a success report, so that returning a plain value is never an error.
 */
export function toReport(value: unknown, depth = 0): Report {
  if (value === undefined || value === null) return report('success', 'Completed');
  if (typeof value === 'string') return report('success', value);
  if (isReportLike(value) && depth < 32) {
    const children = Array.isArray(value.children)
      ? value.children.map((child) => toReport(child, depth + 1))
      : [];
    return report(value.type, String(value.message), value.data, children);
  }
  return report('success', 'Completed', value);
}

function isReportLike(
  value: unknown,
): value is { type: ReportType; message: unknown; data?: unknown; children?: unknown } {
  return (
    isPlainObject(value) &&
    typeof value.type === 'string' &&
    (REPORT_TYPES as readonly string[]).includes(value.type) &&
    'message' in value
  );
}

/** The report of a thrown value: its message, and its name and stack for whoever debugs it. */
export function errorReport(thrown: unknown, message?: string): Report {
  const error = toError(thrown);
  const data: Record<string, unknown> = { name: error.name };
  if (error.stack) data.stack = error.stack.split('\n').slice(0, 12).join('\n');
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' || typeof code === 'number') data.code = code;
  return report('error', message ? `${message}: ${error.message}` : error.message, data);
}

/** A task failed when any report in its tree is an error; warnings do not fail it. */
export function hasError(tree: Report): boolean {
  return tree.type === 'error' || tree.children.some(hasError);
}
