import type { Argv } from 'yargs';

import { TaskqClient } from '../../client.js';
import { UsageError } from '../../errors.js';
import { withRuntime, type GlobalArgs } from '../context.js';

interface EnqueueArgs extends GlobalArgs {
  task: string;
  params?: string;
  label?: string;
  queue?: string;
  owner?: string;
  'delay-seconds'?: number;
  json?: boolean;
}

export function enqueueCommand(yargs: Argv<GlobalArgs>) {
  return yargs.command<EnqueueArgs>(
    'enqueue <task>',
    'Add a task to its queue and print its id',
    (y) =>
      y
        .positional('task', {
          type: 'string',
          demandOption: true,
          describe: 'The task name, as its handler is registered',
        })
        .option('params', { type: 'string', describe: 'Parameters as a JSON object' })
        .option('label', { type: 'string', describe: 'A label people will read in the task log' })
        .option('queue', {
          type: 'string',
          describe: 'Put it on this queue instead of the dispatcher’s choice',
        })
        .option('owner', { type: 'string', describe: 'Who the task belongs to' })
        .option('delay-seconds', {
          type: 'number',
          describe: 'Make it available only after this many seconds',
        })
        .option('json', { type: 'boolean', describe: 'Print {id, queue, ...} as JSON' })
        .example(
          `$0 enqueue example.echo --params '{"text":"hi"}' --label "Say hi"`,
          'Prints the new task id',
        ),
    async (args) => {
      const parameters = parseParams(args.params);
      const result = await withRuntime(args, (runtime) =>
        new TaskqClient(runtime, args.owner ?? 'cli').enqueue(args.task, parameters, {
          label: args.label,
          queue: args.queue,
          owner: args.owner,
          delaySeconds: args['delay-seconds'],
        }),
      );
      console.log(args.json ? JSON.stringify(result) : result.id);
    },
  );
}

function parseParams(text: string | undefined): unknown {
  if (text === undefined) return {};
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new UsageError(`--params must be JSON, such as '{"id": 7}': ${(error as Error).message}`);
  }
}
