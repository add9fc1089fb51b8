import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';

import { sandbox } from './sandbox.js';

// These commands must fail before they connect: their database url leads nowhere, and a
// command that tried to connect would exit 1 with a connection error instead of 2.

const HELP_EXAMPLES: [command: string, example: string][] = [
  ['init', 'taskq init --broker=postgres --queue=reports'],
  ['enqueue', 'taskq enqueue example.echo --params'],
  ['associate', 'taskq associate -t reports.generate -q reports'],
  ['worker', 'taskq worker --queue=default --limit=1'],
  ['log', 'taskq log --get-task <id>'],
];

for (const [command, example] of HELP_EXAMPLES) {
  test(`${command} --help shows the command's options and examples, exit 0`, async (t) => {
    const box = await sandbox(t, 'none');

    const result = await box.run([command, '--help']);

    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, new RegExp(`^taskq ${command}`));
    assert.match(result.stdout, /\nOptions:\n/);
    assert.match(result.stdout, /\nExamples:\n/);
    assert.ok(result.stdout.includes(example), result.stdout);
  });
}

test('taskq --help lists every command, exit 0', async (t) => {
  const box = await sandbox(t, 'none');

  const result = await box.run(['--help']);

  assert.equal(result.code, 0, result.stderr);
  for (const [command] of HELP_EXAMPLES)
    assert.match(result.stdout, new RegExp(`taskq ${command}`));
});

const USAGE_ERRORS: [name: string, args: string[], message: string][] = [
  ['an unknown command is refused, named', ['frobnicate'], 'Unknown argument: frobnicate'],
  ['no command at all asks for one', [], 'Name a command; see taskq --help'],
  [
    'worker --limit without --queue is refused, naming --queue',
    ['worker', '--limit=1'],
    '--limit needs --queue: a limit applies to one dedicated queue',
  ],
  [
    'worker --limit that is not a positive integer is refused',
    ['worker', '--queue=default', '--limit=0'],
    '--limit must be a positive integer (got 0)',
  ],
  [
    'worker --concurrency that is not a positive integer is refused',
    ['worker', '--concurrency=1.5'],
    '--concurrency must be a positive integer (got 1.5)',
  ],
  [
    'worker --queue naming no configured queue is refused, listing the queues',
    ['worker', '--queue=nope'],
    '--queue nope is not a configured queue; configured: default',
  ],
  [
    'enqueue with --params that are not JSON is refused, naming --params',
    ['enqueue', 'example.echo', '--params', '{text: hi}'],
    `--params must be JSON, such as '{"id": 7}': `,
  ],
  [
    'enqueue with an unknown option is refused, naming it',
    ['enqueue', 'example.echo', '--priority=3'],
    'Unknown argument: priority',
  ],
  [
    'associate without --queue is refused, naming it',
    ['associate', '-t', 'example.echo'],
    'Missing required argument: queue',
  ],
  [
    'init with an unknown --broker is refused, listing the brokers',
    ['init', '--broker=redis'],
    'Argument: broker, Given: "redis", Choices: "memory", "postgres", "rds", "sqs"',
  ],
  [
    'log without an action is refused, listing the actions',
    ['log'],
    'taskq log needs exactly one of --stats, --available, --get-task, --archive, --archive-all-finished, --cancel, --rerun, --download',
  ],
  [
    'log with two actions is refused, listing the actions',
    ['log', '--stats', '--available'],
    'taskq log needs exactly one of --stats, --available, --get-task, --archive, --archive-all-finished, --cancel, --rerun, --download',
  ],
  [
    'log --get-task with something that is not a task id is refused, naming --get-task',
    ['log', '--get-task', 'nope'],
    '--get-task needs a task id as enqueue prints them, such as ',
  ],
  [
    'log --limit out of range is refused, naming --limit',
    ['log', '--available', '--limit=0'],
    '--limit must be an integer from 1 to 1000 (got 0)',
  ],
];

for (const [name, args, message] of USAGE_ERRORS) {
  test(`${name}, exit 2`, async (t) => {
    const box = await sandbox(t, 'none');

    const result = await box.run(args);

    assert.equal(result.code, 2, result.stderr);
    assert.ok(result.stderr.includes(message), result.stderr);
    assert.equal(result.stdout, '');
  });
}

const COMMANDS_READING_THE_CONFIGURATION: string[][] = [
  ['init'],
  ['enqueue', 'example.echo'],
  ['associate', '-t', 'example.echo', '-q', 'default'],
  ['worker'],
  ['log', '--stats'],
];

for (const args of COMMANDS_READING_THE_CONFIGURATION) {
  test(`${args[0]} with an invalid configuration lists every problem, exit 2`, async (t) => {
    const box = await sandbox(t, 'none');
    const file = path.join(box.dir, 'config', 'taskq.json');
    mkdirSync(path.dirname(file));
    writeFileSync(
      file,
      JSON.stringify({
        queues: [{ name: 'default', weight: 'high' }, { name: 'default' }],
        strategy: 'fastest',
      }),
    );

    const result = await box.run(args);

    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stderr, /config\/taskq\.json has 3 problem\(s\):\n/);
    for (const line of [
      '  - queues[0].weight must be a number >= 0 (got "high")',
      '  - queues[1].name repeats "default" of queues[0]; names must be unique',
      '  - strategy must be one of weight, strict-priority (got "fastest")',
    ])
      assert.ok(result.stderr.includes(line), `${line}\nnot in\n${result.stderr}`);
  });
}

test('a --config file that does not exist is refused, naming the file, exit 2', async (t) => {
  const box = await sandbox(t, 'none');
  const file = path.join(box.dir, 'missing.json');

  const result = await box.run(['enqueue', 'example.echo', '--config', file]);

  assert.equal(result.code, 2, result.stderr);
  assert.equal(
    result.stderr,
    `${file} has 1 problem(s):\n  - (file) does not exist; pass --config with an existing file\n`,
  );
});
