import os from 'node:os';

import type { Argv } from 'yargs';

import { TaskqClient } from '../../client.js';
import { UsageError } from '../../errors.js';
import { openRuntime } from '../../runtime.js';
import { installSignalHandlers, workerSignalTarget } from '../../worker/signals.js';
import { Worker } from '../../worker/worker.js';
import { commandConfig, commandLogger, type GlobalArgs } from '../context.js';

interface WorkerArgs extends GlobalArgs {
  queue?: string;
  limit?: number;
  concurrency?: number;
  id?: string;
}

export function workerCommand(yargs: Argv<GlobalArgs>) {
  return yargs.command<WorkerArgs>(
    'worker',
    'Run tasks until stopped (SIGTERM drains, SIGUSR2 pauses, SIGCONT resumes)',
    (y) =>
      y
        .option('queue', {
          type: 'string',
          describe: 'Only this queue (default: all, by the strategy)',
        })
        .option('limit', { type: 'number', describe: 'Stop after this many tasks (needs --queue)' })
        .option('concurrency', { type: 'number', describe: 'Tasks run at the same time' })
        .option('id', { type: 'string', describe: 'Name of this worker in the task log' })
        .example('$0 worker', 'Work on every queue')
        .example(
          '$0 worker --queue=default --limit=1',
          'Run one task of queue "default", then exit',
        ),
    async (args) => {
      if (args.limit !== undefined && !args.queue)
        throw new UsageError('--limit needs --queue: a limit applies to one dedicated queue');
      if (args.limit !== undefined && (!Number.isInteger(args.limit) || args.limit < 1)) {
        throw new UsageError(`--limit must be a positive integer (got ${args.limit})`);
      }
      if (
        args.concurrency !== undefined &&
        (!Number.isInteger(args.concurrency) || args.concurrency < 1)
      ) {
        throw new UsageError(`--concurrency must be a positive integer (got ${args.concurrency})`);
      }
      const logger = commandLogger(args);
      const config = commandConfig(args);
      if (args.queue && !config.queues.some((queue) => queue.name === args.queue)) {
        throw new UsageError(
          `--queue ${args.queue} is not a configured queue; configured: ${config.queues.map((q) => q.name).join(', ')}`,
        );
      }
      const runtime = await openRuntime(config, logger, { supervise: true });
      const client = new TaskqClient(runtime, 'worker');
      const worker = new Worker(runtime, {
        id: args.id ?? process.env.TASKQ_WORKER_ID ?? `${os.hostname()}:${process.pid}`,
        queues: args.queue ? [args.queue] : undefined,
        concurrency: args.concurrency,
        limit: args.limit,
        enqueue: (name, parameters, options) =>
          client.enqueue(name, parameters, options).then((task) => task.id),
      });
      const removeHandlers = installSignalHandlers(workerSignalTarget(worker), logger);
      try {
        await worker.run();
      } finally {
        removeHandlers();
        await runtime.close();
      }
    },
  );
}
