import type { Argv } from 'yargs';

import { UsageError } from '../../errors.js';
import type { Runtime } from '../../runtime.js';
import type { Report } from '../../tasks/report.js';
import {
  MAX_LIST_LIMIT,
  SORT_FIELDS,
  SORT_ORDERS,
  type ListOptions,
  type SortField,
  type SortOrder,
} from '../../tasklog/filters.js';
import { TaskOperations } from '../../tasklog/operations.js';
import type { TaskRecord } from '../../tasklog/queries.js';
import { TASK_STATUSES, type TaskStatus } from '../../tasklog/statuses.js';
import { cliActor, printTable, withRuntime, type GlobalArgs } from '../context.js';
import { list } from './stuck.js';

interface LogArgs extends GlobalArgs {
  stats?: boolean;
  available?: boolean;
  limit: number;
  offset: number;
  'get-task'?: string;
  archive?: string;
  'archive-all-finished'?: boolean;
  'older-than'?: number;
  cancel?: string;
  rerun?: string;
  download?: string;
  output?: string;
  force?: boolean;
  owner?: string;
  status?: string;
  task?: string;
  queue?: string;
  category?: string;
  label?: string;
  'created-after'?: string;
  'created-before'?: string;
  sort?: string;
  order?: string;
  json?: boolean;
}

const ACTIONS = [
  'stats',
  'available',
  'get-task',
  'archive',
  'archive-all-finished',
  'cancel',
  'rerun',
  'download',
] as const;
type Action = (typeof ACTIONS)[number];

/** Task ids are UUIDs; anything else would reach the database as a malformed value. */
const TASK_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const EXAMPLE_ID = '0b6f8c52-5d1e-4c1a-9a47-2f3d9e8b7c10';

/** Archives of all finished tasks go this many rows per transaction. */
const ARCHIVE_BATCH_SIZE = 1000;

export function logCommand(yargs: Argv<GlobalArgs>) {
  return yargs.command<LogArgs>(
    'log',
    'Read the task log and act on its tasks',
    (y) =>
      y
        .option('stats', { type: 'boolean', describe: 'Counts of tasks by status' })
        .option('available', { type: 'boolean', describe: 'List tasks, newest first' })
        .option('limit', {
          type: 'number',
          default: 20,
          describe: `With --available: how many (at most ${MAX_LIST_LIMIT})`,
        })
        .option('offset', {
          type: 'number',
          default: 0,
          describe: 'With --available: how many to skip',
        })
        .option('status', {
          type: 'string',
          describe: 'With --available: statuses, comma-separated',
        })
        .option('task', {
          type: 'string',
          describe: 'With --available: task names, comma-separated',
        })
        .option('queue', { type: 'string', describe: 'With --available: queues, comma-separated' })
        .option('category', {
          type: 'string',
          describe: 'With --available: categories, comma-separated',
        })
        .option('label', {
          type: 'string',
          describe: 'With --available: labels containing this text, any case',
        })
        .option('created-after', {
          type: 'string',
          describe: 'With --available: created after this ISO date',
        })
        .option('created-before', {
          type: 'string',
          describe: 'With --available: created before this ISO date',
        })
        .option('sort', {
          type: 'string',
          describe: `With --available: ${SORT_FIELDS.join(', ')} (default created)`,
        })
        .option('order', {
          type: 'string',
          describe: 'With --available: asc or desc (default desc)',
        })
        .option('get-task', {
          type: 'string',
          describe: 'Show one task with its report and events',
        })
        .option('archive', { type: 'string', describe: 'Archive finished tasks: ID[,ID...]' })
        .option('archive-all-finished', {
          type: 'boolean',
          describe: 'Archive every completed, failed and cancelled task, in batches',
        })
        .option('older-than', {
          type: 'number',
          describe: 'With --archive-all-finished: only tasks finished this many seconds ago',
        })
        .option('cancel', {
          type: 'string',
          describe: 'Cancel a task that has not started; with --force, also stop a running one',
        })
        .option('rerun', {
          type: 'string',
          describe: 'Enqueue a new task like this one, linked to it',
        })
        .option('download', { type: 'string', describe: "Copy a task's result file" })
        .option('output', {
          type: 'string',
          describe:
            'With --download: the file or directory to write (default: the current directory)',
        })
        .option('force', {
          type: 'boolean',
          describe: 'With --archive or --cancel: also for tasks in progress',
        })
        .option('owner', { type: 'string', describe: 'Only the tasks of this owner' })
        .option('json', { type: 'boolean', describe: 'JSON for scripts instead of tables' })
        .example('$0 log --available --limit=50', 'The 50 newest tasks')
        .example('$0 log --available --status=failed --label=report --sort=updated', 'Filtered')
        .example('$0 log --get-task <id>', 'One task, its report and its history')
        .example('$0 log --cancel <id> --force', 'Cancel a task even if it already started')
        .example('$0 log --archive-all-finished --older-than=86400', 'Archive what ended a day ago')
        .example('$0 log --download <id> --output=report.csv', "Save a task's result file"),
    async (args) => {
      const action = chosenAction(args);
      const listOptions = action === 'available' ? listOptionsOf(args) : undefined;
      await withRuntime(args, (runtime) => runAction(runtime, action, args, listOptions));
    },
  );
}

function chosenAction(args: LogArgs): Action {
  const chosen = ACTIONS.filter((action) => args[action] !== undefined && args[action] !== false);
  if (chosen.length !== 1) {
    throw new UsageError(
      `taskq log needs exactly one of ${ACTIONS.map((a) => `--${a}`).join(', ')}`,
    );
  }
  for (const flag of ['get-task', 'cancel', 'rerun', 'download'] as const)
    checkIds(flag, args[flag]);
  checkIds('archive', args.archive, true);
  const olderThan = args['older-than'];
  if (olderThan !== undefined && (!Number.isFinite(olderThan) || olderThan < 0))
    throw new UsageError(`--older-than must be a number of seconds >= 0 (got ${olderThan})`);
  if (olderThan !== undefined && chosen[0] !== 'archive-all-finished')
    throw new UsageError('--older-than goes with --archive-all-finished');
  if (args.output !== undefined && chosen[0] !== 'download')
    throw new UsageError('--output goes with --download');
  return chosen[0]!;
}

function checkIds(flag: string, value: string | undefined, many = false): void {
  if (value === undefined) return;
  const ids = many ? value.split(',').map((id) => id.trim()) : [value];
  const bad = ids.find((id) => !TASK_ID.test(id));
  if (bad === undefined) return;
  throw new UsageError(
    `--${flag} needs ${many ? 'task ids, comma-separated,' : 'a task id'} as enqueue prints ` +
      `them, such as ${EXAMPLE_ID} (got "${bad}")`,
  );
}

function listOptionsOf(args: LogArgs): ListOptions {
  if (!Number.isInteger(args.limit) || args.limit < 1 || args.limit > MAX_LIST_LIMIT) {
    throw new UsageError(
      `--limit must be an integer from 1 to ${MAX_LIST_LIMIT} (got ${args.limit}); ` +
        'page through more with --offset',
    );
  }
  if (!Number.isInteger(args.offset) || args.offset < 0)
    throw new UsageError(`--offset must be an integer >= 0 (got ${args.offset})`);
  const status = list(args.status);
  for (const value of status ?? []) {
    if (!(TASK_STATUSES as readonly string[]).includes(value))
      throw new UsageError(`--status takes ${TASK_STATUSES.join(', ')} (got "${value}")`);
  }
  if (args.sort !== undefined && !(SORT_FIELDS as readonly string[]).includes(args.sort))
    throw new UsageError(`--sort takes ${SORT_FIELDS.join(', ')} (got "${args.sort}")`);
  if (args.order !== undefined && !(SORT_ORDERS as readonly string[]).includes(args.order))
    throw new UsageError(`--order takes asc or desc (got "${args.order}")`);
  return {
    limit: args.limit,
    offset: args.offset,
    status: status as TaskStatus[] | undefined,
    name: list(args.task),
    queue: list(args.queue),
    category: list(args.category),
    owner: args.owner,
    labelContains: args.label || undefined,
    createdAfter: dateOf('created-after', args['created-after']),
    createdBefore: dateOf('created-before', args['created-before']),
    sort: args.sort as SortField | undefined,
    order: args.order as SortOrder | undefined,
  };
}

function dateOf(flag: string, value: string | undefined): Date | undefined {
  if (value === undefined) return undefined;
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) {
    throw new UsageError(
      `--${flag} must be a date such as 2025-01-31 or 2025-01-31T12:00:00Z (got "${value}")`,
    );
  }
  return date;
}

async function runAction(
  runtime: Runtime,
  action: Action,
  args: LogArgs,
  listOptions: ListOptions | undefined,
): Promise<void> {
  const { queries } = runtime;
  const actor = cliActor();
  const scope = { owner: args.owner };
  const operations = new TaskOperations(runtime, actor);
  switch (action) {
    case 'stats':
      return print(args, await queries.stats(args.owner), (stats) =>
        printTable([stats as unknown as Record<string, unknown>], Object.keys(stats)),
      );
    case 'available': {
      const page = await queries.list(listOptions!);
      return print(args, page, ({ tasks, total, totalExact }) => {
        printTable(tasks.map(summaryRow), [
          'id',
          'task',
          'label',
          'queue',
          'status',
          'owner',
          'attempts',
          'created',
        ]);
        console.log(`${tasks.length} of ${totalExact ? '' : 'more than '}${total}`);
      });
    }
    case 'get-task': {
      const task = await queries.get(args['get-task']!, scope);
      const events = await queries.events(task.id);
      return print(args, { ...task, events }, () => printTask(task, events));
    }
    case 'archive': {
      const ids = list(args.archive) ?? [];
      const options = { force: args.force ?? false, actor, ...scope };
      if (ids.length === 1) {
        const task = await queries.archive(ids[0]!, options);
        return print(args, task, () => console.log(`${task.id} archived`));
      }
      const result = await queries.archiveMany(ids, options);
      print(args, result, () => {
        for (const id of result.archived) console.log(`${id} archived`);
        for (const { reason } of result.refused) console.error(reason);
      });
      if (result.refused.length > 0) process.exitCode = 1;
      return;
    }
    case 'archive-all-finished': {
      const archived = await queries.archiveAllFinished({
        owner: args.owner,
        olderThanSeconds: args['older-than'],
        batchSize: ARCHIVE_BATCH_SIZE,
        actor,
      });
      return print(args, { archived }, () => console.log(`${archived} task(s) archived`));
    }
    case 'cancel': {
      const task = await queries.cancel(args.cancel!, {
        force: args.force ?? false,
        actor,
        ...scope,
      });
      return print(args, task, () => console.log(`${task.id} cancelled`));
    }
    case 'rerun': {
      const rerun = await operations.rerun(args.rerun!, scope);
      return print(args, { ...rerun, rerunOf: args.rerun }, () => console.log(rerun.id));
    }
    case 'download': {
      const file = await operations.downloadResultFile(args.download!, args.output ?? '.', scope);
      return print(args, file, () => console.log(`${file.path} (${file.bytes} bytes)`));
    }
  }
}

function print<T>(args: LogArgs, value: T, human: (value: T) => void): void {
  if (args.json) console.log(JSON.stringify(value, null, 2));
  else human(value);
}

function summaryRow(task: TaskRecord): Record<string, unknown> {
  return {
    id: task.id,
    task: task.name,
    label: task.label,
    queue: task.queue,
    status: task.status,
    owner: task.owner,
    attempts: task.attempts,
    created: task.createdAt,
  };
}

function printTask(
  task: TaskRecord,
  events: { at: string; kind: string; toStatus: string | null; actor: string }[],
): void {
  const fields: [string, unknown][] = [
    ['id', task.id],
    ['task', task.name],
    ['label', task.label],
    ['queue', task.queue],
    ['status', `${task.status} (${task.statusLabel})`],
    ['owner', task.owner],
    ['category', task.category],
    ['attempts', `${task.attempts} of at most ${task.maxAttempts}`],
    [
      'progress',
      task.progress === null
        ? null
        : `${Math.round(task.progress * 100)}% ${task.progressMessage ?? ''}`.trim(),
    ],
    ['parent', task.parentId],
    ['rerun of', task.rerunOf],
    [
      'result file',
      task.resultFile ? `${task.resultFile.name} (${task.resultFile.bytes} bytes)` : null,
    ],
    ['created', task.createdAt],
    ['updated', task.updatedAt],
  ];
  for (const [name, value] of fields) console.log(`${name.padEnd(12)} ${value ?? '-'}`);
  console.log('report');
  if (task.report) printReport(task.report, 1);
  else console.log('  -');
  console.log('events');
  for (const event of events)
    console.log(
      `  ${event.at}  ${event.kind.padEnd(9)} ${event.toStatus ?? ''}  by ${event.actor}`,
    );
}

function printReport(report: Report, depth: number): void {
  console.log(`${'  '.repeat(depth)}[${report.type}] ${report.message}`);
  for (const child of report.children) printReport(child, depth + 1);
}
