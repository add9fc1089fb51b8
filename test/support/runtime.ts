import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import type { TaskqConfig } from '../../src/config/types.js';
import { validateConfig } from '../../src/config/validate.js';
import { createLogger } from '../../src/log/logger.js';
import { openRuntime, type Runtime, type RuntimeOptions } from '../../src/runtime.js';
import { EXAMPLE_HANDLERS } from './paths.js';

/** A configuration for tests: the given file content on the given database, in a temporary state directory. */
export async function testConfig(
  url: string,
  raw: Record<string, unknown> = {},
): Promise<TaskqConfig> {
  const stateDir = await fs.mkdtemp(path.join(os.tmpdir(), 'taskq-test-state-'));
  return validateConfig(
    {
      handlers: EXAMPLE_HANDLERS,
      queues: [{ name: 'default', broker: { type: 'postgres' } }],
      ...raw,
      database: { url, ...(raw.database as object) },
    },
    { source: 'test configuration', baseDir: process.cwd(), stateDir },
  );
}

export async function testRuntime(
  config: TaskqConfig,
  options: RuntimeOptions = {},
): Promise<Runtime> {
  return openRuntime(
    config,
    createLogger({ level: process.env.TASKQ_TEST_LOG_LEVEL ?? 'silent' }),
    options,
  );
}
