import assert from 'node:assert/strict';
import { test } from 'node:test';

import { validateConfig } from '../../src/config/validate.js';
import { ConfigError } from '../../src/errors.js';
import { compileSchema } from './schema-walk.js';
import { CONTEXT, problemsOf, type RawConfig } from './settings.js';

interface ErrorCase {
  name: string;
  raw: unknown;
  problems: [path: string, message: string][];
  /** False where the rule relates several settings, which a JSON Schema cannot state. */
  schemaRefuses?: false;
}

const one = (queue: RawConfig = {}): RawConfig => ({ queues: [{ name: 'default', ...queue }] });
const QUEUE_HINT =
  'must be a name of letters, digits, "_", "." or "-" starting with a letter, at most 80 long';
const QUEUES_HINT =
  'must be a list of at least one queue, such as [{"name": "default", "broker": "postgres"}]';
const ROOT_KEYS =
  '$schema, database, queues, defaultQueue, associations, strategy, handlers, worker, retry, ' +
  'supervisor, http, metrics, retention, results';

const cases: ErrorCase[] = [
  {
    name: 'a queue weight that is not a number is refused with the queue index and the value',
    raw: { queues: [{ name: 'a' }, { name: 'b', weight: 'high' }] },
    problems: [['queues[1].weight', 'must be a number >= 0 (got "high")']],
  },
  {
    name: 'a fractional integer setting is refused, stating both bounds',
    raw: { ...one(), database: { poolSize: 2.5 } },
    problems: [['database.poolSize', 'must be an integer >= 1 and <= 200 (got 2.5)']],
  },
  {
    name: 'a switch that is not a boolean asks for true or false',
    raw: { ...one(), retry: { backoff: 'yes' } },
    problems: [['retry.backoff', 'must be true or false (got "yes")']],
  },
  {
    name: 'an empty embedded data directory is refused as an empty string',
    raw: { ...one(), database: { embedded: { dataDir: '' } } },
    problems: [['database.embedded.dataDir', 'must be a non-empty string (got "")']],
  },
  {
    name: 'a schema name that is no lower-case SQL identifier is refused',
    raw: { ...one(), database: { schema: 'Task-Log' } },
    problems: [['database.schema', 'must be a lower-case SQL identifier (got "Task-Log")']],
  },
  {
    name: 'a database url of another database is refused without repeating its password',
    raw: { ...one(), database: { url: 'mysql://root:s3cret@db/app' } },
    problems: [
      [
        'database.url',
        'must be a connection string such as postgres://user@host:5432/db, or null for the ' +
          'embedded server (got a value of type string)',
      ],
    ],
  },
  {
    name: 'an unknown strategy lists the strategies',
    raw: { ...one(), strategy: 'fastest' },
    problems: [['strategy', 'must be one of weight, strict-priority (got "fastest")']],
  },
  {
    name: 'an unknown broker type written as a word lists the broker types',
    raw: one({ broker: 'redis' }),
    problems: [['queues[0].broker.type', 'must be one of memory, postgres, sqs (got "redis")']],
  },
  {
    name: 'an unknown broker type in a broker object lists the broker types',
    raw: one({ broker: { type: 'kafka', receive: 5 } }),
    problems: [['queues[0].broker.type', 'must be one of memory, postgres, sqs (got "kafka")']],
  },
  {
    name: 'a section that is not an object is refused',
    raw: { ...one(), worker: 5 },
    problems: [['worker', 'must be an object (got 5)']],
  },
  {
    name: 'a misspelt key is reported as unknown, with the keys known in its section',
    raw: { ...one(), retry: { limt: 5 } },
    problems: [
      [
        'retry.limt',
        'is not a known setting; known settings here: ' +
          'limit, delaySeconds, backoff, maxDelaySeconds, lostAttemptsLimit',
      ],
    ],
  },
  {
    name: 'a misspelt top-level key lists the top-level settings',
    raw: { ...one(), queue: 'default' },
    problems: [['queue', `is not a known setting; known settings here: ${ROOT_KEYS}`]],
  },
  {
    name: 'an option of another broker type is unknown on this broker',
    raw: one({ broker: { type: 'postgres', visibilityTimeoutSeconds: 30 } }),
    problems: [
      [
        'queues[0].broker.visibilityTimeoutSeconds',
        'is not a known setting; known settings here: type, receive, leaseSeconds',
      ],
    ],
  },
  {
    name: 'an empty list of queues is refused with an example of a queue',
    raw: { queues: [] },
    problems: [['queues', `${QUEUES_HINT} (got [])`]],
  },
  {
    name: 'a configuration without queues is refused',
    raw: { strategy: 'weight' },
    problems: [['queues', `${QUEUES_HINT} (got nothing)`]],
  },
  {
    name: 'a queue name used twice is reported where it repeats, naming the first use',
    raw: { queues: [{ name: 'a' }, { name: 'b' }, { name: 'a' }] },
    problems: [['queues[2].name', 'repeats "a" of queues[0]; names must be unique']],
    schemaRefuses: false,
  },
  {
    name: 'queues that all weigh 0 are refused, as no task would ever run',
    raw: {
      queues: [
        { name: 'a', weight: 0 },
        { name: 'b', weight: 0 },
      ],
    },
    problems: [
      ['queues', 'must have at least one queue with a weight above 0, or no task would ever run'],
    ],
    schemaRefuses: false,
  },
  {
    name: 'a queue without a name is refused',
    raw: { queues: [{ weight: 1 }] },
    problems: [['queues[0].name', 'is required']],
  },
  {
    name: 'a queue name that cannot be an identifier says which characters are allowed',
    raw: { queues: [{ name: '1st queue' }] },
    problems: [['queues[0].name', `${QUEUE_HINT} (got "1st queue")`]],
  },
  {
    name: 'an sqs receive above 10 is refused, naming the limit of SQS',
    raw: one({ broker: { type: 'sqs', receive: 11 } }),
    problems: [
      [
        'queues[0].broker.receive',
        'must be at most 10, the most messages SQS returns in one receive (got 11)',
      ],
    ],
  },
  {
    name: 'an sqs endpoint that is not an http or https URL is refused',
    raw: one({ broker: { type: 'sqs', endpoint: 'ftp://127.0.0.1:4566' } }),
    problems: [
      [
        'queues[0].broker.endpoint',
        'must be an http:// or https:// URL (got "ftp://127.0.0.1:4566")',
      ],
    ],
  },
  {
    name: 'a defaultQueue that is not a queue lists the queues',
    raw: { queues: [{ name: 'a' }, { name: 'b' }], defaultQueue: 'reports' },
    problems: [['defaultQueue', 'must name one of the queues (a, b) (got "reports")']],
    schemaRefuses: false,
  },
  {
    name: 'an association to a queue that does not exist names the task and lists the queues',
    raw: { ...one(), associations: { 'reports.generate': 'reports' } },
    problems: [
      ['associations["reports.generate"]', 'must name one of the queues (default) (got "reports")'],
    ],
    schemaRefuses: false,
  },
  {
    name: 'associations that are not an object are refused',
    raw: { ...one(), associations: ['reports.generate'] },
    problems: [['associations', 'must map task names to queue names (got ["reports.generate"])']],
  },
  {
    name: 'a handlers setting that is not a path is refused',
    raw: { ...one(), handlers: 42 },
    problems: [['handlers', 'must be the path of a module exporting handlers (got 42)']],
  },
  {
    name: 'a configuration that is not an object is refused as a whole',
    raw: [{ name: 'default' }],
    problems: [['(top level)', 'must be a JSON object (got [{"name":"default"}])']],
  },
  {
    name: 'a long value is cut short in the message',
    raw: { ...one(), strategy: 'w'.repeat(100) },
    problems: [['strategy', `must be one of weight, strict-priority (got "${'w'.repeat(56)}...)`]],
  },
];

const schemaAccepts = compileSchema();

for (const { name, raw, problems, schemaRefuses } of cases) {
  test(name, () => {
    const found = problemsOf(raw).map((problem) => [problem.path, problem.message]);

    assert.deepEqual(found, problems);
    if (schemaRefuses !== false) assert.equal(schemaAccepts(raw), false, 'the schema refuses it');
  });
}

test('several problems are all reported in one error, one line each', () => {
  const raw = {
    queues: [{ name: 'a', weight: 'high' }, { name: 'a' }],
    strategy: 'fastest',
    worker: { concurency: 4 },
  };

  assert.throws(
    () => validateConfig(raw, CONTEXT),
    (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      assert.equal(error.code, 'CONFIG_INVALID');
      assert.equal(
        error.message,
        [
          'test.json has 4 problem(s):',
          '  - queues[0].weight must be a number >= 0 (got "high")',
          '  - queues[1].name repeats "a" of queues[0]; names must be unique',
          '  - strategy must be one of weight, strict-priority (got "fastest")',
          '  - worker.concurency is not a known setting; known settings here: concurrency, ' +
            'idlePollMaxSeconds, heartbeatSeconds, shutdownTimeoutSeconds, taskTimeoutSeconds',
        ].join('\n'),
      );
      return true;
    },
  );
});
