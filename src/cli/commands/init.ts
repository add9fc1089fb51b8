import type { Argv } from 'yargs';

import { isPlainObject } from '../../config/checker.js';
import { STRATEGIES } from '../../config/types.js';
import { openRuntime } from '../../runtime.js';
import { commandConfig, commandLogger, rewriteConfigFile, type GlobalArgs } from '../context.js';

interface InitArgs extends GlobalArgs {
  broker?: string;
  queue?: string;
  receive?: number;
  strategy?: string;
  'aws-region'?: string;
  'aws-profile'?: string;
  'aws-endpoint'?: string;
}

/** `rds` is TAO's name of its PostgreSQL broker. */
const BROKER_NAMES: Record<string, string> = {
  memory: 'memory',
  postgres: 'postgres',
  rds: 'postgres',
  sqs: 'sqs',
};

export function initCommand(yargs: Argv<GlobalArgs>) {
  return yargs.command<InitArgs>(
    'init',
    'Create the task log and the queues; with options, change the configuration first',
    (y) =>
      y
        .option('broker', {
          type: 'string',
          choices: Object.keys(BROKER_NAMES),
          describe: 'Broker of the queues (rds = postgres)',
        })
        .option('queue', {
          type: 'string',
          describe: 'Only this queue (created in the configuration if missing)',
        })
        .option('receive', { type: 'number', describe: 'Messages taken per receive' })
        .option('strategy', {
          type: 'string',
          choices: [...STRATEGIES],
          describe: 'Queue selection strategy',
        })
        .option('aws-region', { type: 'string', describe: 'SQS: the AWS region' })
        .option('aws-profile', { type: 'string', describe: 'SQS: the AWS credentials profile' })
        .option('aws-endpoint', {
          type: 'string',
          describe: 'SQS: an endpoint URL (emulators, VPC endpoints)',
        })
        .example('$0 init', 'Create the task log and every configured queue')
        .example(
          '$0 init --broker=postgres --queue=reports --receive=50',
          'Put queue "reports" on PostgreSQL',
        ),
    async (args) => {
      const changes =
        args.broker ||
        args.receive !== undefined ||
        args.strategy ||
        args['aws-region'] ||
        args['aws-profile'] ||
        args['aws-endpoint'];
      if (changes || (args.queue && !queueExists(args))) {
        const file = await rewriteConfigFile(args, (raw) => applyInitOptions(raw, args));
        console.error(`updated ${file}`);
      }
      const logger = commandLogger(args);
      const config = commandConfig(args);
      const runtime = await openRuntime(config, logger, { initQueues: false });
      try {
        const queues = config.queues.filter((queue) => !args.queue || queue.name === args.queue);
        for (const queue of queues) {
          await runtime.brokers.get(queue.name).init();
          console.log(`queue ${queue.name} ready (${queue.broker.type}, weight ${queue.weight})`);
        }
        console.log(`task log ready (schema ${config.database.schema})`);
      } finally {
        await runtime.close();
      }
    },
  );
}

function queueExists(args: InitArgs): boolean {
  try {
    return commandConfig(args).queues.some((queue) => queue.name === args.queue);
  } catch {
    return false;
  }
}

function applyInitOptions(raw: Record<string, unknown>, args: InitArgs): void {
  if (args.strategy) raw.strategy = args.strategy;
  const queues = Array.isArray(raw.queues) ? (raw.queues as unknown[]) : [];
  raw.queues = queues;
  if (args.queue && !queues.some((q) => isPlainObject(q) && q.name === args.queue)) {
    queues.push({
      name: args.queue,
      broker: { type: BROKER_NAMES[args.broker ?? 'postgres'] },
      weight: 30,
    });
  }
  for (const queue of queues) {
    if (!isPlainObject(queue) || (args.queue && queue.name !== args.queue)) continue;
    const broker =
      typeof queue.broker === 'string'
        ? { type: queue.broker }
        : isPlainObject(queue.broker)
          ? queue.broker
          : {};
    const type = args.broker ? BROKER_NAMES[args.broker]! : String(broker.type ?? 'postgres');
    const next: Record<string, unknown> = type === broker.type ? { ...broker } : { type };
    if (args.receive !== undefined) next.receive = args.receive;
    if (type === 'sqs') {
      if (args['aws-region']) next.region = args['aws-region'];
      if (args['aws-profile']) next.profile = args['aws-profile'];
      if (args['aws-endpoint']) next.endpoint = args['aws-endpoint'];
    }
    queue.broker = next;
  }
}
