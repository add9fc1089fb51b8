import { UsageError } from '../errors.js';
import { TASK_STATUSES, type TaskStatus } from './statuses.js';

/** The most tasks one page of a listing returns. */
export const MAX_LIST_LIMIT = 1000;

/**
 * A listing counts its matches up to this many; past it, `total` is this figure and
 * `totalExact` is false. An exact count of a million rows would cost more than the page itself.
 */
export const COUNT_CAP = 10_000;

export const SORT_FIELDS = ['created', 'updated', 'name', 'status'] as const;
export type SortField = (typeof SORT_FIELDS)[number];
export const SORT_ORDERS = ['asc', 'desc'] as const;
export type SortOrder = (typeof SORT_ORDERS)[number];

/** Which tasks a listing shows; every field narrows it, and an absent field does not. */
export interface TaskFilter {
  status?: TaskStatus[];
  /** Task names, as their handlers are registered. */
  name?: string[];
  queue?: string[];
  owner?: string;
  category?: string[];
  /** A piece of the label, matched without regard to case. */
  labelContains?: string;
  createdAfter?: Date;
  createdBefore?: Date;
  /** Only the children of this task. */
  parentId?: string;
}

export interface ListOptions extends TaskFilter {
  /** 1 to MAX_LIST_LIMIT. */
  limit: number;
  offset: number;
  /** `created` by default. */
  sort?: SortField;
  /** `desc` by default: the newest first. */
  order?: SortOrder;
}

const SORT_COLUMNS: Record<SortField, string> = {
  created: 'created_at',
  updated: 'updated_at',
  name: 'name',
  status: 'status',
};

/** A WHERE clause and its parameters, numbered from $1. */
export interface SqlFilter {
  clause: string;
  values: unknown[];
}

/** Refuses what no query could mean, naming the field and what it takes. */
export function checkListOptions(options: ListOptions): void {
  const { limit, offset } = options;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIST_LIMIT)
    throw new UsageError(`limit must be an integer from 1 to ${MAX_LIST_LIMIT} (got ${limit})`);
  // Past the safe integers a number no longer counts rows exactly, and PostgreSQL's bigint ends.
  if (!Number.isSafeInteger(offset) || offset < 0)
    throw new UsageError(
      `offset must be an integer from 0 to ${Number.MAX_SAFE_INTEGER} (got ${offset})`,
    );
  if (options.sort !== undefined && !SORT_FIELDS.includes(options.sort))
    throw new UsageError(`sort must be one of ${SORT_FIELDS.join(', ')} (got "${options.sort}")`);
  if (options.order !== undefined && !SORT_ORDERS.includes(options.order))
    throw new UsageError(`order must be asc or desc (got "${options.order}")`);
  for (const status of options.status ?? []) {
    if (!(TASK_STATUSES as readonly string[]).includes(status))
      throw new UsageError(`status must be among ${TASK_STATUSES.join(', ')} (got "${status}")`);
  }
  for (const [field, date] of [
    ['createdAfter', options.createdAfter],
    ['createdBefore', options.createdBefore],
  ] as const) {
    if (date !== undefined && Number.isNaN(date.getTime()))
      throw new UsageError(`${field} must be a valid date`);
  }
}

/** Builds the WHERE clause of a filter; every value goes through a parameter. */
export function filterSql(filter: TaskFilter, values: unknown[] = []): SqlFilter {
  const where: string[] = [];
  const add = (sql: (placeholder: string) => string, value: unknown) => {
    values.push(value);
    where.push(sql(`$${values.length}`));
  };
  if (filter.status?.length) add((p) => `status = ANY(${p}::text[])`, filter.status);
  if (filter.name?.length) add((p) => `name = ANY(${p}::text[])`, filter.name);
  if (filter.queue?.length) add((p) => `queue = ANY(${p}::text[])`, filter.queue);
  if (filter.owner !== undefined) add((p) => `owner = ${p}`, filter.owner);
  if (filter.category?.length) add((p) => `category = ANY(${p}::text[])`, filter.category);
  if (filter.labelContains) add((p) => `label ILIKE ${p}`, `%${escapeLike(filter.labelContains)}%`);
  if (filter.createdAfter) add((p) => `created_at > ${p}`, filter.createdAfter);
  if (filter.createdBefore) add((p) => `created_at < ${p}`, filter.createdBefore);
  if (filter.parentId !== undefined) add((p) => `parent_id = ${p}::uuid`, filter.parentId);
  return { clause: where.length ? `WHERE ${where.join(' AND ')}` : '', values };
}

/** The ORDER BY of a listing; ties break on creation time and id, so that pages never overlap. */
export function orderSql(options: ListOptions): string {
  const column = SORT_COLUMNS[options.sort ?? 'created'];
  const order = options.order === 'asc' ? 'ASC' : 'DESC';
  const ties = column === 'created_at' ? `id ${order}` : `created_at ${order}, id ${order}`;
  return `ORDER BY ${column} ${order}, ${ties}`;
}

/** `%`, `_` and the escape character itself match literally in a label search. */
function escapeLike(text: string): string {
  return text.replace(/[\\%_]/g, (character) => `\\${character}`);
}
