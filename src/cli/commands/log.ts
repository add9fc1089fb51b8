import type { Argv } from 'yargs';

import { UsageError } from '../../errors.js';
import type { Report } from '../../tasks/report.js';
import type { TaskRecord } from '../../tasklog/queries.js';
import { cliActor, printTable, withRuntime, type GlobalArgs } from '../context.js';

interface LogArgs extends GlobalArgs {
  stats?: boolean;
  available?: boolean;
  limit: number;
  offset: number;
  'get-task'?: string;
  archive?: string;
  cancel?: string;
  force?: boolean;
  owner?: string;
  json?: boolean;
}

const ACTIONS = ['stats', 'available', 'get-task', 'archive', 'cancel'] as const;

/** Task ids are UUIDs; anything else would reach the database as a malformed value. */
const TASK_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function logCommand(yargs: Argv<GlobalArgs>) {
  return yargs.command<LogArgs>(
    'log',
    'Read the task log and act on its tasks',
    (y) =>
      y
        .option('stats', { type: 'boolean', describe: 'Counts of tasks by status' })
        .option('available', { type: 'boolean', describe: 'List tasks, newest first' })
        .option('limit', { type: 'number', default: 20, describe: 'With --available: how many' })
        .option('offset', {
          type: 'number',
          default: 0,
          describe: 'With --available: how many to skip',
        })
        .option('get-task', {
          type: 'string',
          describe: 'Show one task with its report and events',
        })
        .option('archive', { type: 'string', describe: 'Archive a finished task' })
        .option('cancel', {
          type: 'string',
          describe: 'Cancel a task that has not started; with --force, also stop a running one',
        })
        .option('force', {
          type: 'boolean',
          describe: 'With --archive or --cancel: also for tasks in progress',
        })
        .option('owner', { type: 'string', describe: 'Only the tasks of this owner' })
        .option('json', { type: 'boolean', describe: 'JSON for scripts instead of tables' })
        .example('$0 log --available --limit=50', 'The 50 newest tasks')
        .example('$0 log --get-task <id>', 'One task, its report and its history')
        .example('$0 log --cancel <id> --force', 'Cancel a task even if it already started'),
    async (args) => {
      const chosen = ACTIONS.filter(
        (action) => args[action] !== undefined && args[action] !== false,
      );
      if (chosen.length !== 1) {
        throw new UsageError(
          `taskq log needs exactly one of ${ACTIONS.map((a) => `--${a}`).join(', ')}`,
        );
      }
      if (!Number.isInteger(args.limit) || args.limit < 1 || args.limit > 1000) {
        throw new UsageError(`--limit must be an integer from 1 to 1000 (got ${args.limit})`);
      }
      if (!Number.isInteger(args.offset) || args.offset < 0)
        throw new UsageError(`--offset must be an integer >= 0 (got ${args.offset})`);
      for (const action of ['get-task', 'archive', 'cancel'] as const) {
        const id = args[action];
        if (id === undefined || TASK_ID.test(id)) continue;
        throw new UsageError(
          `--${action} needs a task id as enqueue prints it, such as ` +
            `0b6f8c52-5d1e-4c1a-9a47-2f3d9e8b7c10 (got "${id}")`,
        );
      }

      await withRuntime(args, async ({ queries }) => {
        const actor = args.owner ?? cliActor();
        switch (chosen[0]) {
          case 'stats':
            return print(args, await queries.stats(args.owner), (stats) =>
              printTable([stats as unknown as Record<string, unknown>], Object.keys(stats)),
            );
          case 'available': {
            const page = await queries.list({
              limit: args.limit,
              offset: args.offset,
              owner: args.owner,
            });
            return print(args, page, ({ tasks, total }) => {
              printTable(tasks.map(summaryRow), [
                'id',
                'task',
                'label',
                'queue',
                'status',
                'attempts',
                'created',
              ]);
              console.log(`${tasks.length} of ${total}`);
            });
          }
          case 'get-task': {
            const task = await queries.get(args['get-task']!);
            const events = await queries.events(task.id);
            return print(args, { ...task, events }, () => printTask(task, events));
          }
          case 'archive':
            return print(
              args,
              await queries.archive(args.archive!, { force: args.force ?? false, actor }),
              (task) => console.log(`${task.id} archived`),
            );
          case 'cancel':
            return print(
              args,
              await queries.cancel(args.cancel!, { force: args.force ?? false, actor }),
              (task) => console.log(`${task.id} cancelled`),
            );
        }
      });
    },
  );
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
