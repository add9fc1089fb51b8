import type { Argv } from 'yargs';

import { isPlainObject } from '../../config/checker.js';
import { openRuntime } from '../../runtime.js';
import { commandConfig, commandLogger, rewriteConfigFile, type GlobalArgs } from '../context.js';

interface AssociateArgs extends GlobalArgs {
  task: string;
  queue: string;
}

/** Weight of a queue that `associate` creates, as TAO's ManageAssociationMap does. */
const NEW_QUEUE_WEIGHT = 30;

export function associateCommand(yargs: Argv<GlobalArgs>) {
  return yargs.command<AssociateArgs>(
    'associate',
    'Send a task to a queue, creating the queue if needed',
    (y) =>
      y
        .option('task', {
          alias: 't',
          type: 'string',
          demandOption: true,
          describe: 'The task name',
        })
        .option('queue', { alias: 'q', type: 'string', demandOption: true, describe: 'The queue' })
        .example(
          '$0 associate -t reports.generate -q reports',
          'reports.generate tasks now go to queue "reports"',
        ),
    async (args) => {
      const file = await rewriteConfigFile(args, (raw) => {
        const queues = Array.isArray(raw.queues) ? (raw.queues as unknown[]) : [];
        raw.queues = queues;
        if (!queues.some((queue) => isPlainObject(queue) && queue.name === args.queue)) {
          queues.push({
            name: args.queue,
            broker: { type: defaultBroker(queues) },
            weight: NEW_QUEUE_WEIGHT,
          });
          console.error(`created queue ${args.queue} (weight ${NEW_QUEUE_WEIGHT})`);
        }
        raw.associations = {
          ...(isPlainObject(raw.associations) ? raw.associations : {}),
          [args.task]: args.queue,
        };
      });
      const config = commandConfig(args);
      const runtime = await openRuntime(config, commandLogger(args), { initQueues: false });
      try {
        await runtime.brokers.get(args.queue).init();
      } finally {
        await runtime.close();
      }
      console.log(`${args.task} -> ${args.queue} (${file})`);
    },
  );
}

/** A new queue goes on the broker of the default queue, so it works where the others do. */
function defaultBroker(queues: unknown[]): string {
  const first = queues.find(isPlainObject);
  const broker = first?.broker;
  if (typeof broker === 'string') return broker;
  if (isPlainObject(broker) && typeof broker.type === 'string') return broker.type;
  return 'postgres';
}
