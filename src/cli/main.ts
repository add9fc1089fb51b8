import yargs, { type Argv } from 'yargs';
import { hideBin } from 'yargs/helpers';

import { ConfigError, TaskqError, UsageError } from '../errors.js';
import { associateCommand } from './commands/associate.js';
import { enqueueCommand } from './commands/enqueue.js';
import { initCommand } from './commands/init.js';
import { logCommand } from './commands/log.js';
import { pauseCommands } from './commands/pause.js';
import { stuckCommand } from './commands/stuck.js';
import { workerCommand } from './commands/worker.js';
import type { GlobalArgs } from './context.js';

export const EXIT = { ok: 0, failure: 1, usage: 2 } as const;

/** Builds the `taskq` command line; `commands` lets other issues' commands join without edits here. */
export function buildCli(argv: string[]): Argv<GlobalArgs> {
  let cli = yargs(argv)
    .scriptName('taskq')
    .usage('$0 <command> [options]')
    .option('config', {
      type: 'string',
      describe: 'Configuration file (default config/taskq.json, or TASKQ_CONFIG)',
    })
    .option('log-level', {
      type: 'string',
      describe: 'trace, debug, info, warn, error (default info, or TASKQ_LOG_LEVEL)',
    })
    .option('pretty', {
      type: 'boolean',
      describe: 'Readable log lines instead of JSON',
    }) as Argv<GlobalArgs>;
  const commands = [
    initCommand,
    enqueueCommand,
    associateCommand,
    workerCommand,
    logCommand,
    stuckCommand,
    pauseCommands,
  ];
  for (const add of commands) cli = add(cli) as Argv<GlobalArgs>;
  return cli
    .demandCommand(1, 'Name a command; see taskq --help')
    .strict()
    .recommendCommands()
    .help()
    .alias('h', 'help')
    .wrap(Math.min(110, process.stdout.columns || 100))
    .fail((message, error, y) => {
      if (error) throw error;
      throw new UsageError(`${message}\n\n${y.help() && ''}Run taskq --help for the usage.`);
    });
}

/** Runs the CLI and returns the exit code: 0 ok, 1 failure, 2 usage or configuration error. */
export async function main(argv: string[] = hideBin(process.argv)): Promise<number> {
  try {
    await buildCli(argv).parseAsync();
    return EXIT.ok;
  } catch (error) {
    if (error instanceof UsageError || error instanceof ConfigError) {
      console.error(error.message);
      return EXIT.usage;
    }
    if (error instanceof TaskqError) {
      console.error(error.message);
      return EXIT.failure;
    }
    console.error(error instanceof Error ? (error.stack ?? error.message) : String(error));
    return EXIT.failure;
  }
}
