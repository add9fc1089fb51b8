import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';

import { loadConfig, type LoadOptions } from '../../src/config/load.js';
import { ConfigError, type ConfigProblem } from '../../src/errors.js';

/** A working directory of its own, removed after the test. */
function workDir(t: TestContext): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'taskq-config-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function writeJson(file: string, value: unknown): string {
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, JSON.stringify(value));
  return file;
}

/** The ConfigError loadConfig throws: its source and its problems. */
function loadError(options: LoadOptions): {
  source: string;
  message: string;
  problems: ConfigProblem[];
} {
  try {
    loadConfig(options);
  } catch (error) {
    assert.ok(error instanceof ConfigError, `a ConfigError, not ${String(error)}`);
    return { source: error.source, message: error.message, problems: [...error.problems] };
  }
  assert.fail('the configuration was accepted');
}

const FILE = {
  queues: [{ name: 'mail' }, { name: 'default', broker: 'postgres' }],
  strategy: 'strict-priority',
  handlers: './handlers.js',
  database: { url: 'postgres://file@db:5432/taskq', schema: 'jobs', poolSize: 3 },
  worker: { concurrency: 4 },
};

test('without a file, the built-in configuration has one postgres queue named default', (t) => {
  const cwd = workDir(t);

  const config = loadConfig({ cwd, env: {} });

  assert.equal(config.source, 'built-in configuration');
  assert.deepEqual(config.queues, [
    { name: 'default', broker: { type: 'postgres', receive: 100, leaseSeconds: 900 }, weight: 1 },
  ]);
  assert.equal(config.database.url, null);
  assert.equal(config.stateDir, path.join(cwd, '.taskq'));
  assert.equal(config.database.embedded.dataDir, path.join(cwd, '.taskq', 'pgdata'));
});

test('a setting in config/taskq.json of the working directory wins over its default', (t) => {
  const cwd = workDir(t);
  writeJson(path.join(cwd, 'config/taskq.json'), FILE);

  const config = loadConfig({ cwd, env: {} });

  assert.equal(config.source, path.join('config', 'taskq.json'));
  assert.equal(config.worker.concurrency, 4);
  assert.equal(
    config.worker.heartbeatSeconds,
    10,
    'a setting the file leaves out keeps its default',
  );
  assert.equal(config.strategy, 'strict-priority');
  assert.equal(config.handlers, path.join(cwd, 'config', 'handlers.js'), 'relative to the file');
});

test('the environment wins over the file', (t) => {
  const cwd = workDir(t);
  const configPath = writeJson(path.join(cwd, 'taskq.json'), FILE);

  const config = loadConfig({
    cwd,
    configPath,
    env: {
      TASKQ_DATABASE_URL: 'postgres://env@db:5432/taskq',
      TASKQ_STRATEGY: 'weight',
      TASKQ_HANDLERS: 'build/handlers.js',
    },
  });

  assert.equal(config.database.url, 'postgres://env@db:5432/taskq');
  assert.equal(config.database.schema, 'jobs', 'the rest of the section stays as in the file');
  assert.equal(config.strategy, 'weight');
  assert.equal(config.handlers, path.join(cwd, 'build', 'handlers.js'), 'relative to cwd');
});

test('flags win over the environment, merging into a section key by key', (t) => {
  const cwd = workDir(t);
  const configPath = writeJson(path.join(cwd, 'taskq.json'), FILE);

  const config = loadConfig({
    cwd,
    configPath,
    env: { TASKQ_DATABASE_URL: 'postgres://env@db:5432/taskq', TASKQ_STRATEGY: 'weight' },
    overrides: {
      database: { url: 'postgres://flag@db:5432/taskq', poolSize: 7 },
      strategy: 'strict-priority',
    },
  });

  assert.equal(config.database.url, 'postgres://flag@db:5432/taskq');
  assert.equal(config.database.poolSize, 7);
  assert.equal(config.database.schema, 'jobs');
  assert.equal(config.strategy, 'strict-priority');
});

test('a list given by flags replaces the whole list of the file', (t) => {
  const cwd = workDir(t);
  const configPath = writeJson(path.join(cwd, 'taskq.json'), FILE);

  const config = loadConfig({
    cwd,
    configPath,
    env: {},
    overrides: { queues: [{ name: 'only' }] },
  });

  assert.deepEqual(
    config.queues.map((queue) => queue.name),
    ['only'],
  );
  assert.equal(config.defaultQueue, 'only', 'the first queue when none is named default');
});

test('TASKQ_CONFIG names the file, and --config wins over it', (t) => {
  const cwd = workDir(t);
  writeJson(path.join(cwd, 'from-env.json'), { queues: [{ name: 'env' }] });
  writeJson(path.join(cwd, 'from-flag.json'), { queues: [{ name: 'flag' }] });
  const env = { TASKQ_CONFIG: 'from-env.json' };

  assert.equal(loadConfig({ cwd, env }).queues[0]!.name, 'env');
  assert.equal(loadConfig({ cwd, env, configPath: 'from-flag.json' }).queues[0]!.name, 'flag');
});

test('TASKQ_HOME sets the state directory, which holds the embedded data directory', (t) => {
  const cwd = workDir(t);

  const config = loadConfig({ cwd, env: { TASKQ_HOME: 'state' } });

  assert.equal(config.stateDir, path.join(cwd, 'state'));
  assert.equal(config.database.embedded.dataDir, path.join(cwd, 'state', 'pgdata'));
});

test('a problem that comes from the environment is reported like one of the file', (t) => {
  const cwd = workDir(t);

  const { problems } = loadError({ cwd, env: { TASKQ_STRATEGY: 'fastest' } });

  assert.deepEqual(problems, [
    { path: 'strategy', message: 'must be one of weight, strict-priority (got "fastest")' },
  ]);
});

test('a file that is not valid JSON is refused, naming the file and the parse error', (t) => {
  const cwd = workDir(t);
  const configPath = path.join(cwd, 'broken.json');
  writeFileSync(configPath, '{"queues": [{"name": "default"},]}');

  const { source, message, problems } = loadError({ cwd, configPath, env: {} });

  assert.equal(source, configPath);
  assert.ok(message.startsWith(`${configPath} has 1 problem(s):\n  - (file) is not valid JSON: `));
  assert.equal(problems.length, 1);
  assert.match(problems[0]!.message, /^is not valid JSON: \S/);
});

test('a missing file named by --config is an error, not a reason to use the built-in one', (t) => {
  const cwd = workDir(t);
  const configPath = path.join(cwd, 'missing.json');

  const error = loadError({ cwd, configPath, env: {} });

  assert.equal(error.source, configPath);
  assert.deepEqual(error.problems, [
    { path: '(file)', message: 'does not exist; pass --config with an existing file' },
  ]);
});

test('a missing file named by TASKQ_CONFIG is an error too', (t) => {
  const cwd = workDir(t);

  const { source } = loadError({ cwd, env: { TASKQ_CONFIG: 'missing.json' } });

  assert.equal(source, path.join(cwd, 'missing.json'));
});

test('a path to a directory is refused as a file that cannot be read', (t) => {
  const cwd = workDir(t);

  const { problems } = loadError({ cwd, configPath: cwd, env: {} });

  assert.deepEqual(problems, [
    { path: '(file)', message: 'cannot be read; pass --config with an existing file' },
  ]);
});

test('a file holding a JSON list instead of an object is refused', (t) => {
  const cwd = workDir(t);
  const configPath = writeJson(path.join(cwd, 'list.json'), [{ name: 'default' }]);

  const { problems } = loadError({ cwd, configPath, env: {} });

  assert.deepEqual(problems, [
    { path: '(file)', message: 'must hold a JSON object at the top level' },
  ]);
});

test('problems of a file are reported under its path relative to the working directory', (t) => {
  const cwd = workDir(t);
  writeJson(path.join(cwd, 'config/taskq.json'), { queues: [{ name: 'a', weight: 'high' }] });

  const { message } = loadError({ cwd, env: {} });

  assert.equal(
    message,
    'config/taskq.json has 1 problem(s):\n  - queues[0].weight must be a number >= 0 (got "high")',
  );
});
