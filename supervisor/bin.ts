#!/usr/bin/env -S node --max-semi-space-size=2
import os from 'node:os';

import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';

import { ConfigError, TaskqError, UsageError } from '../src/errors.js';
import { createLogger } from '../src/log/logger.js';
import { installSignalHandlers } from '../src/worker/signals.js';
import { Supervisor } from './supervisor.js';

interface Args {
  workers: number;
  isolation: 'process' | 'thread';
  queue?: string;
  config?: string;
  'shutdown-timeout-seconds': number;
  'http-host'?: string;
  'http-port'?: number;
  'max-memory-mb'?: number;
  'max-tasks'?: number;
  'log-level'?: string;
  pretty?: boolean;
}

function parseArgs(argv: string[]): Args {
  return yargs(argv)
    .scriptName('taskq-supervisor')
    .usage('$0 [options]\n\nKeeps a fleet of workers busy with the configured queues.')
    .option('workers', {
      type: 'number',
      default: os.availableParallelism(),
      describe: 'Worker processes (or threads)',
    })
    .option('isolation', {
      choices: ['process', 'thread'] as const,
      default: 'process' as const,
      describe: 'Workers as processes or threads',
    })
    .option('queue', { type: 'string', describe: 'Dedicate the fleet to this queue' })
    .option('config', {
      type: 'string',
      describe: 'Configuration file (default config/taskq.json, or TASKQ_CONFIG)',
    })
    .option('shutdown-timeout-seconds', {
      type: 'number',
      default: 30,
      describe: 'On SIGTERM, how long running tasks may finish',
    })
    .option('http-host', {
      type: 'string',
      describe: 'Address of the HTTP server (default 127.0.0.1)',
    })
    .option('http-port', { type: 'number', describe: 'Port of the HTTP server (default 9464)' })
    .option('max-memory-mb', {
      type: 'number',
      describe: 'Recycle a worker past this resident memory',
    })
    .option('max-tasks', { type: 'number', describe: 'Recycle a worker after this many tasks' })
    .option('log-level', { type: 'string', describe: 'trace, debug, info, warn, error' })
    .option('pretty', { type: 'boolean', describe: 'Readable log lines instead of JSON' })
    .example('$0 --workers=8', '8 worker processes on every queue, shared by weight')
    .example('kill -USR2 $(cat .taskq/supervisor.pid)', 'Pause the fleet (SIGCONT resumes)')
    .example('kill -HUP $(cat .taskq/supervisor.pid)', 'Reload weights, associations and strategy')
    .check((args) => {
      if (!Number.isInteger(args.workers) || args.workers < 1)
        throw new UsageError(`--workers must be a positive integer (got ${args.workers})`);
      if (!(args['shutdown-timeout-seconds'] >= 0)) {
        throw new UsageError(
          `--shutdown-timeout-seconds must be a number >= 0 (got ${args['shutdown-timeout-seconds']})`,
        );
      }
      return true;
    })
    .strict()
    .help()
    .fail((message, error) => {
      throw error ?? new UsageError(`${message}\nRun taskq-supervisor --help for the usage.`);
    })
    .parseSync() as Args;
}

function overrides(args: Args): Record<string, unknown> {
  const http: Record<string, unknown> = {};
  if (args['http-host'] !== undefined) http.host = args['http-host'];
  if (args['http-port'] !== undefined) http.port = args['http-port'];
  const supervisor: Record<string, unknown> = {};
  if (args['max-memory-mb'] !== undefined) supervisor.maxMemoryMb = args['max-memory-mb'];
  if (args['max-tasks'] !== undefined) supervisor.maxTasks = args['max-tasks'];
  return { http, supervisor };
}

async function main(): Promise<number> {
  let args: Args;
  try {
    args = parseArgs(hideBin(process.argv));
  } catch (error) {
    console.error((error as Error).message);
    return 2;
  }
  // Worker processes inherit the environment, so they log the same way.
  if (args['log-level']) process.env.TASKQ_LOG_LEVEL = args['log-level'];
  if (args.pretty) process.env.TASKQ_LOG_PRETTY = '1';
  const logger = createLogger();
  let supervisor: Supervisor;
  try {
    supervisor = new Supervisor({
      load: { configPath: args.config, overrides: overrides(args) },
      workers: args.workers,
      isolation: args.isolation,
      queue: args.queue,
      shutdownTimeoutSeconds: args['shutdown-timeout-seconds'],
      logger,
    });
    await supervisor.start();
  } catch (error) {
    const usage =
      error instanceof ConfigError ||
      error instanceof UsageError ||
      (error instanceof TaskqError && error.code === 'SUPERVISOR_RUNNING');
    console.error(
      error instanceof TaskqError ? error.message : ((error as Error).stack ?? String(error)),
    );
    return usage ? 2 : 1;
  }

  const removeHandlers = installSignalHandlers(
    {
      stop: (signal) => supervisor.stop(signal),
      forceStop: () => supervisor.forceStop(),
      pause: () => supervisor.pause(),
      resume: () => supervisor.resume(),
    },
    logger,
  );
  const onHangup = () => {
    logger.info({ signal: 'SIGHUP' }, 'SIGHUP: reloading the configuration');
    supervisor.reload();
  };
  process.on('SIGHUP', onHangup);
  await supervisor.done;
  removeHandlers();
  process.off('SIGHUP', onHangup);
  return 0;
}

process.exitCode = await main();
