import type { Argv } from 'yargs';

import { openDatabase } from '../../database/connection.js';
import { migrate } from '../../database/migrations.js';
import {
  pauseQueues,
  resumeQueues,
  type PausedQueues,
  type PauseStore,
} from '../../queues/pauses.js';
import { cliActor, commandConfig, commandLogger, type GlobalArgs } from '../context.js';

interface PauseArgs extends GlobalArgs {
  queue?: string[];
  json?: boolean;
}

/** `taskq pause` and `taskq resume`: queue pauses kept in the database, for every supervisor. */
export function pauseCommands(yargs: Argv<GlobalArgs>) {
  return yargs
    .command<PauseArgs>(
      'pause',
      'Pause one queue or all of them for every worker on the database, until taskq resume',
      (y) =>
        options(y)
          .example('$0 pause --queue=reports', 'No task starts on queue "reports"')
          .example('$0 pause', 'No task starts on any queue'),
      (args) => change(args, 'pause'),
    )
    .command<PauseArgs>(
      'resume',
      'Resume queues paused with taskq pause',
      (y) =>
        options(y)
          .example('$0 resume --queue=reports', 'Tasks start on queue "reports" again')
          .example('$0 resume', 'Every queue runs again, including those paused one by one'),
      (args) => change(args, 'resume'),
    );
}

function options(y: Argv<GlobalArgs>) {
  return y
    .option('queue', {
      type: 'string',
      array: true,
      describe: 'The queue (repeat for several); all queues without it',
    })
    .option('json', { type: 'boolean', describe: 'JSON for scripts' });
}

async function change(args: PauseArgs, action: 'pause' | 'resume'): Promise<void> {
  const config = commandConfig(args);
  const configured = config.queues.map((queue) => queue.name);
  const names = args.queue?.length ? args.queue : 'all';
  const database = await openDatabase(config.database, commandLogger(args));
  try {
    await migrate(database.pool, config.database.schema);
    const store: PauseStore = { pool: database.pool, schema: config.database.schema };
    const apply = action === 'pause' ? pauseQueues : resumeQueues;
    const state = await apply(store, names, cliActor(), { configured });
    if (args.json) console.log(JSON.stringify(state, null, 2));
    else printState(state);
  } finally {
    await database.close();
  }
}

function printState(state: PausedQueues): void {
  if (state.all) {
    console.log(`all queues paused since ${state.all.pausedAt} by ${state.all.pausedBy}`);
  }
  for (const pause of state.queues)
    console.log(`${pause.queue} paused since ${pause.pausedAt} by ${pause.pausedBy}`);
  if (!state.all && state.queues.length === 0) console.log('no queue is paused');
}
