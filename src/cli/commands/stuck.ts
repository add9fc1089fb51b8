import type { Argv } from 'yargs';

import { UsageError } from '../../errors.js';
import { TaskOperations } from '../../tasklog/operations.js';
import {
  DEFAULT_STUCK_AGE_SECONDS,
  MIN_STUCK_AGE_SECONDS,
  STUCK_STATUSES,
  type StuckFilter,
  type StuckStatus,
} from '../../tasklog/stuck.js';
import { printTable, withRuntime, type GlobalArgs } from '../context.js';

interface StuckArgs extends GlobalArgs {
  action: string;
  queue: string;
  age: number;
  whitelist?: string;
  status?: string;
  'dry-run'?: boolean;
  force?: boolean;
  json?: boolean;
}

/** `taskq stuck summary|restart`: tasks that stopped moving, and running them again. */
export function stuckCommand(yargs: Argv<GlobalArgs>) {
  return yargs.command<StuckArgs>(
    'stuck <action>',
    'Find tasks that stopped moving (summary) and run them again under the same id (restart)',
    (y) =>
      y
        .positional('action', { type: 'string', choices: ['summary', 'restart'] })
        .option('queue', { type: 'string', demandOption: true, describe: 'The queue to look at' })
        .option('age', {
          type: 'number',
          default: DEFAULT_STUCK_AGE_SECONDS,
          describe: `Not updated for this many seconds (at least ${MIN_STUCK_AGE_SECONDS})`,
        })
        .option('whitelist', { type: 'string', describe: 'Only these task names, comma-separated' })
        .option('status', {
          type: 'string',
          describe: `Only these statuses, comma-separated (default ${STUCK_STATUSES.join(',')})`,
        })
        .option('dry-run', {
          type: 'boolean',
          describe: 'restart: say what would happen, do nothing',
        })
        .option('force', {
          type: 'boolean',
          describe: 'restart: also tasks running on a live worker, aborting them there first',
        })
        .option('json', { type: 'boolean', describe: 'JSON for scripts instead of tables' })
        .example('$0 stuck summary --queue=default --age=600', 'Tasks unchanged for 10 minutes')
        .example('$0 stuck restart --queue=default --dry-run', 'What a restart would do'),
    async (args) => {
      const filter = stuckFilter(args);
      await withRuntime(args, async (runtime) => {
        const queues = runtime.config.queues.map((queue) => queue.name);
        if (!queues.includes(filter.queue)) {
          throw new UsageError(
            `--queue must name a configured queue (got "${filter.queue}"; configured: ${queues.join(', ')})`,
          );
        }
        if (runtime.brokers.get(filter.queue).type === 'memory') {
          throw new UsageError(
            `--queue=${filter.queue} is a memory queue, which lives inside the process that runs ` +
              'it; call TaskOperations.stuckSummary or restartStuck in that process instead',
          );
        }
        const operations = new TaskOperations(runtime, 'cli');
        if (args.action === 'summary') {
          const summary = await operations.stuckSummary(filter);
          if (args.json) return console.log(JSON.stringify(summary, null, 2));
          printTable(
            summary.tasks.map((task) => ({
              id: task.id,
              task: task.name,
              label: task.label,
              status: task.status,
              age: `${task.ageSeconds}s`,
              attempts: task.attempts,
              worker:
                task.worker === null ? null : `${task.worker}${task.leaseLive ? ' (live)' : ''}`,
              message: task.orphan ? 'orphan' : task.message,
            })),
            ['id', 'task', 'label', 'status', 'age', 'attempts', 'worker', 'message'],
          );
          const { tasks, orphans, live } = summary.totals;
          return console.log(`${tasks} stuck, ${orphans} orphan(s), ${live} on a live worker`);
        }
        const outcomes = await operations.restartStuck({
          ...filter,
          dryRun: args['dry-run'] ?? false,
          force: args.force ?? false,
        });
        if (args.json) return console.log(JSON.stringify(outcomes, null, 2));
        printTable(
          outcomes.map((outcome) => ({ ...outcome, task: outcome.name })),
          ['id', 'task', 'action', 'aborted'],
        );
        const done = outcomes.filter((o) => o.action === 'redelivered' || o.action === 'requeued');
        console.log(
          args['dry-run']
            ? `dry run: ${outcomes.filter((o) => o.action.startsWith('would')).length} would restart`
            : `${done.length} restarted`,
        );
      });
    },
  );
}

function stuckFilter(args: StuckArgs): StuckFilter {
  if (!Number.isFinite(args.age) || args.age < MIN_STUCK_AGE_SECONDS) {
    throw new UsageError(
      `--age must be a number of seconds >= ${MIN_STUCK_AGE_SECONDS} (got ${args.age}); ` +
        'a younger task may simply be waiting its turn',
    );
  }
  const status = list(args.status);
  for (const value of status ?? []) {
    if (!(STUCK_STATUSES as readonly string[]).includes(value))
      throw new UsageError(`--status takes ${STUCK_STATUSES.join(', ')} (got "${value}")`);
  }
  if (args.action === 'summary' && (args['dry-run'] || args.force))
    throw new UsageError('--dry-run and --force go with stuck restart, not stuck summary');
  return {
    queue: args.queue,
    ageSeconds: args.age,
    names: list(args.whitelist),
    status: status as StuckStatus[] | undefined,
  };
}

/** A comma-separated flag as a list; absent or empty gives undefined. */
export function list(value: string | undefined): string[] | undefined {
  const items = (value ?? '')
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean);
  return items.length ? items : undefined;
}
