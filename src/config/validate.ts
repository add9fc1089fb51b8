import path from 'node:path';

import { ConfigError } from '../errors.js';
import { Checker, describeValue, isPlainObject } from './checker.js';
import {
  DEFAULTS,
  ENV_NAME_PATTERN,
  MIN_TOKEN_LENGTH,
  NAME_PATTERN,
  SCHEMA_PATTERN,
  SQS_MAX_RECEIVE,
} from './defaults.js';
import {
  API_ROLES,
  BROKER_TYPES,
  STRATEGIES,
  type BrokerOptions,
  type DatabaseConfig,
  type HttpTokenConfig,
  type QueueConfig,
  type TaskqConfig,
} from './types.js';

export interface ValidateContext {
  /** Named in error messages: a file path, or "environment" and such. */
  source: string;
  /** Relative paths in the file (the handlers module) resolve against this directory. */
  baseDir: string;
  stateDir: string;
}

const ROOT_KEYS = [
  '$schema',
  'database',
  'queues',
  'defaultQueue',
  'associations',
  'strategy',
  'handlers',
  'worker',
  'retry',
  'supervisor',
  'http',
  'metrics',
  'retention',
  'results',
];

/**
 * Turns a parsed configuration file into a TaskqConfig with every default filled in, or throws
 * a ConfigError listing every problem found, each with its path and what would fix it.
 */
export function validateConfig(raw: unknown, context: ValidateContext): TaskqConfig {
  if (!isPlainObject(raw)) {
    throw new ConfigError(context.source, [
      { path: '(top level)', message: `must be a JSON object (got ${describeValue(raw)})` },
    ]);
  }
  const check = new Checker();
  const root = check.section('', raw, ROOT_KEYS);

  const database = checkDatabase(check, root.database, context.stateDir);
  const queues = checkQueues(check, root.queues);
  const names = queues.map((queue) => queue.name);
  const defaultQueue = checkQueueName(check, 'defaultQueue', root.defaultQueue, names);
  const associations = checkAssociations(check, root.associations, names);
  const strategy = check.oneOf('strategy', root.strategy, STRATEGIES, DEFAULTS.strategy);
  const handlers = checkHandlers(check, root.handlers, context.baseDir);
  const worker = checkWorker(check, root.worker);
  const retry = checkRetry(check, root.retry);
  const supervisor = checkSupervisor(check, root.supervisor);
  const http = checkHttp(check, root.http);
  const metrics = checkMetrics(check, root.metrics);
  const retention = checkRetention(check, root.retention);
  const results = checkResults(check, root.results, context);

  if (check.problems.length > 0) throw new ConfigError(context.source, check.problems);
  return {
    source: context.source,
    stateDir: context.stateDir,
    database,
    queues,
    defaultQueue,
    associations,
    strategy,
    handlers,
    worker,
    retry,
    supervisor,
    http,
    metrics,
    retention,
    results,
  };
}

function checkDatabase(check: Checker, value: unknown, stateDir: string): DatabaseConfig {
  const db = check.section('database', value, [
    'url',
    'schema',
    'bossSchema',
    'poolSize',
    'embedded',
  ]);
  const embedded = check.section('database.embedded', db.embedded, ['dataDir', 'port']);
  let url: string | null = null;
  if (db.url !== undefined && db.url !== null) {
    if (typeof db.url === 'string' && /^postgres(ql)?:\/\//.test(db.url)) url = db.url;
    else {
      check.problem(
        'database.url',
        'must be a connection string such as postgres://user@host:5432/db, or null for the ' +
          'embedded server (got a value of type ' +
          `${typeof db.url})`,
      );
    }
  }
  const schemaRule = { pattern: SCHEMA_PATTERN, hint: 'a lower-case SQL identifier' };
  const dataDir = check.string(
    'database.embedded.dataDir',
    embedded.dataDir,
    DEFAULTS.database.embeddedDataDir,
  );
  return {
    url,
    schema: check.string('database.schema', db.schema, DEFAULTS.database.schema, schemaRule),
    bossSchema: check.string(
      'database.bossSchema',
      db.bossSchema,
      DEFAULTS.database.bossSchema,
      schemaRule,
    ),
    poolSize: check.number('database.poolSize', db.poolSize, DEFAULTS.database.poolSize, {
      min: 1,
      max: 200,
      integer: true,
    }),
    embedded: {
      dataDir: path.resolve(stateDir, dataDir),
      port: check.number('database.embedded.port', embedded.port, DEFAULTS.database.embeddedPort, {
        min: 0,
        max: 65535,
        integer: true,
      }),
    },
  };
}

function checkQueues(check: Checker, value: unknown): QueueConfig[] {
  if (!Array.isArray(value) || value.length === 0) {
    check.problem(
      'queues',
      `must be a list of at least one queue, such as [{"name": "default", "broker": "postgres"}] ` +
        `(got ${describeValue(value)})`,
    );
    return [];
  }

  const queues = value.map((item, index) => checkQueue(check, `queues[${index}]`, item));
  const seen = new Map<string, number>();
  queues.forEach((queue, index) => {
    if (!queue.name) return;
    const first = seen.get(queue.name);
    if (first === undefined) seen.set(queue.name, index);
    else
      check.problem(
        `queues[${index}].name`,
        `repeats "${queue.name}" of queues[${first}]; names must be unique`,
      );
  });

  const weights = queues.map((queue) => queue.weight);
  if (weights.every((weight) => Number.isFinite(weight)) && !weights.some((weight) => weight > 0)) {
    check.problem(
      'queues',
      'must have at least one queue with a weight above 0, or no task would ever run',
    );
  }
  return queues;
}

function checkQueue(check: Checker, at: string, value: unknown): QueueConfig {
  const queue = check.section(at, value, ['name', 'broker', 'weight']);
  const name = check.string(`${at}.name`, queue.name, '', {
    pattern: NAME_PATTERN,
    hint: 'a name of letters, digits, "_", "." or "-" starting with a letter, at most 80 long',
  });
  if (queue.name === undefined) check.problem(`${at}.name`, 'is required');
  const weight = check.number(`${at}.weight`, queue.weight, DEFAULTS.weight, { min: 0 });
  const broker = checkBroker(check, `${at}.broker`, queue.broker);
  return { name, broker, weight };
}

function checkBroker(check: Checker, at: string, value: unknown): BrokerOptions {
  const raw =
    typeof value === 'string'
      ? { type: value }
      : value === undefined
        ? { type: 'postgres' }
        : value;
  const type = check.oneOf(
    `${at}.type`,
    isPlainObject(raw) ? raw.type : raw,
    BROKER_TYPES,
    'postgres',
  );
  if (type === 'memory') {
    const b = check.section(at, raw, ['type', 'receive', 'sync']);
    const defaults = DEFAULTS.broker.memory;
    return {
      type,
      receive: check.number(`${at}.receive`, b.receive, defaults.receive, {
        min: 1,
        max: 10000,
        integer: true,
      }),
      sync: check.boolean(`${at}.sync`, b.sync, defaults.sync),
    };
  }
  if (type === 'postgres') {
    const b = check.section(at, raw, ['type', 'receive', 'leaseSeconds']);
    const defaults = DEFAULTS.broker.postgres;
    return {
      type,
      receive: check.number(`${at}.receive`, b.receive, defaults.receive, {
        min: 1,
        max: 10000,
        integer: true,
      }),
      leaseSeconds: check.number(`${at}.leaseSeconds`, b.leaseSeconds, defaults.leaseSeconds, {
        min: 1,
        max: 86400,
        integer: true,
      }),
    };
  }
  return checkSqsBroker(check, at, raw);
}

function checkSqsBroker(check: Checker, at: string, raw: unknown): BrokerOptions {
  const keys = [
    'type',
    'receive',
    'region',
    'profile',
    'endpoint',
    'prefix',
    'visibilityTimeoutSeconds',
    'waitTimeSeconds',
    'fifo',
    'deadLetterMaxReceiveCount',
  ];
  const b = check.section(at, raw, keys);
  const defaults = DEFAULTS.broker.sqs;
  if (typeof b.receive === 'number' && b.receive > SQS_MAX_RECEIVE) {
    check.problem(
      `${at}.receive`,
      `must be at most ${SQS_MAX_RECEIVE}, the most messages SQS returns in one receive (got ${b.receive})`,
    );
  }
  const endpoint =
    b.endpoint === undefined ? null : check.nullableString(`${at}.endpoint`, b.endpoint, null);
  if (endpoint !== null && !/^https?:\/\//.test(endpoint)) {
    check.problem(
      `${at}.endpoint`,
      `must be an http:// or https:// URL (got ${describeValue(endpoint)})`,
    );
  }
  const dlq = b.deadLetterMaxReceiveCount;
  return {
    type: 'sqs',
    receive: check.number(`${at}.receive`, b.receive, defaults.receive, { min: 1, integer: true }),
    region: b.region === undefined ? null : check.nullableString(`${at}.region`, b.region, null),
    profile:
      b.profile === undefined ? null : check.nullableString(`${at}.profile`, b.profile, null),
    endpoint,
    prefix: b.prefix === '' ? '' : check.string(`${at}.prefix`, b.prefix, defaults.prefix),
    visibilityTimeoutSeconds: check.number(
      `${at}.visibilityTimeoutSeconds`,
      b.visibilityTimeoutSeconds,
      defaults.visibilityTimeoutSeconds,
      { min: 1, max: 43200, integer: true },
    ),
    waitTimeSeconds: check.number(
      `${at}.waitTimeSeconds`,
      b.waitTimeSeconds,
      defaults.waitTimeSeconds,
      {
        min: 0,
        max: 20,
        integer: true,
      },
    ),
    fifo: check.boolean(`${at}.fifo`, b.fifo, false),
    deadLetterMaxReceiveCount:
      dlq === undefined || dlq === null
        ? null
        : check.number(`${at}.deadLetterMaxReceiveCount`, dlq, 5, {
            min: 1,
            max: 1000,
            integer: true,
          }),
  };
}

function checkQueueName(check: Checker, at: string, value: unknown, names: string[]): string {
  const fallback = names[0] ?? '';
  if (value === undefined) return names.includes('default') ? 'default' : fallback;
  if (typeof value === 'string' && names.includes(value)) return value;
  check.problem(
    at,
    `must name one of the queues (${names.join(', ') || 'none defined'}) (got ${describeValue(value)})`,
  );
  return fallback;
}

function checkAssociations(
  check: Checker,
  value: unknown,
  names: string[],
): Record<string, string> {
  if (value === undefined) return {};
  if (!isPlainObject(value)) {
    check.problem(
      'associations',
      `must map task names to queue names (got ${describeValue(value)})`,
    );
    return {};
  }
  const result: Record<string, string> = {};
  for (const [task, queue] of Object.entries(value)) {
    // Defined rather than assigned: a task named "__proto__" keeps its entry and changes no
    // prototype.
    Object.defineProperty(result, task, {
      value: checkQueueName(check, `associations["${task}"]`, queue, names),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return result;
}

function checkHandlers(check: Checker, value: unknown, baseDir: string): string | null {
  if (value === undefined || value === null) return null;
  const module = check.string('handlers', value, '', {
    hint: 'the path of a module exporting handlers',
  });
  return module ? path.resolve(baseDir, module) : null;
}

function checkWorker(check: Checker, value: unknown): TaskqConfig['worker'] {
  const keys = [
    'concurrency',
    'idlePollMaxSeconds',
    'heartbeatSeconds',
    'shutdownTimeoutSeconds',
    'taskTimeoutSeconds',
  ];
  const w = check.section('worker', value, keys);
  const d = DEFAULTS.worker;
  return {
    concurrency: check.number('worker.concurrency', w.concurrency, d.concurrency, {
      min: 1,
      max: 10000,
      integer: true,
    }),
    idlePollMaxSeconds: check.number(
      'worker.idlePollMaxSeconds',
      w.idlePollMaxSeconds,
      d.idlePollMaxSeconds,
      {
        min: 0.05,
        max: 60,
      },
    ),
    heartbeatSeconds: check.number(
      'worker.heartbeatSeconds',
      w.heartbeatSeconds,
      d.heartbeatSeconds,
      {
        min: 0.1,
        max: 3600,
      },
    ),
    shutdownTimeoutSeconds: check.number(
      'worker.shutdownTimeoutSeconds',
      w.shutdownTimeoutSeconds,
      d.shutdownTimeoutSeconds,
      { min: 0, max: 86400 },
    ),
    taskTimeoutSeconds:
      w.taskTimeoutSeconds === undefined || w.taskTimeoutSeconds === null
        ? d.taskTimeoutSeconds
        : check.number('worker.taskTimeoutSeconds', w.taskTimeoutSeconds, 0, {
            min: 0.1,
            max: 604800,
          }),
  };
}

function checkRetry(check: Checker, value: unknown): TaskqConfig['retry'] {
  const r = check.section('retry', value, [
    'limit',
    'delaySeconds',
    'backoff',
    'maxDelaySeconds',
    'lostAttemptsLimit',
  ]);
  const d = DEFAULTS.retry;
  return {
    limit: check.number('retry.limit', r.limit, d.limit, { min: 0, max: 1000, integer: true }),
    delaySeconds: check.number('retry.delaySeconds', r.delaySeconds, d.delaySeconds, {
      min: 0,
      max: 86400,
    }),
    backoff: check.boolean('retry.backoff', r.backoff, d.backoff),
    maxDelaySeconds: check.number('retry.maxDelaySeconds', r.maxDelaySeconds, d.maxDelaySeconds, {
      min: 0,
      max: 86400,
    }),
    lostAttemptsLimit: check.number(
      'retry.lostAttemptsLimit',
      r.lostAttemptsLimit,
      d.lostAttemptsLimit,
      { min: 0, max: 100, integer: true },
    ),
  };
}

function checkSupervisor(check: Checker, value: unknown): TaskqConfig['supervisor'] {
  const keys = [
    'maxRestarts',
    'restartWindowSeconds',
    'heartbeatTimeoutSeconds',
    'maxMemoryMb',
    'maxTasks',
    'cancelGraceSeconds',
  ];
  const v = check.section('supervisor', value, keys);
  const d = DEFAULTS.supervisor;
  const optional = (key: 'maxMemoryMb' | 'maxTasks', min: number) =>
    v[key] === undefined || v[key] === null
      ? null
      : check.number(`supervisor.${key}`, v[key], 0, { min, integer: true });
  return {
    maxRestarts: check.number('supervisor.maxRestarts', v.maxRestarts, d.maxRestarts, {
      min: 0,
      max: 10000,
      integer: true,
    }),
    restartWindowSeconds: check.number(
      'supervisor.restartWindowSeconds',
      v.restartWindowSeconds,
      d.restartWindowSeconds,
      {
        min: 1,
        max: 86400,
      },
    ),
    heartbeatTimeoutSeconds: check.number(
      'supervisor.heartbeatTimeoutSeconds',
      v.heartbeatTimeoutSeconds,
      d.heartbeatTimeoutSeconds,
      { min: 0.5, max: 3600 },
    ),
    maxMemoryMb: optional('maxMemoryMb', 16),
    maxTasks: optional('maxTasks', 1),
    cancelGraceSeconds: check.number(
      'supervisor.cancelGraceSeconds',
      v.cancelGraceSeconds,
      d.cancelGraceSeconds,
      { min: 0.1, max: 86400 },
    ),
  };
}

function checkHttp(check: Checker, value: unknown): TaskqConfig['http'] {
  const v = check.section('http', value, ['host', 'port', 'tokens']);
  return {
    host: check.string('http.host', v.host, DEFAULTS.http.host),
    port: check.number('http.port', v.port, DEFAULTS.http.port, {
      min: 0,
      max: 65535,
      integer: true,
    }),
    tokens: checkTokens(check, v.tokens),
  };
}

function checkTokens(check: Checker, value: unknown): HttpTokenConfig[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) {
    check.problem(
      'http.tokens',
      'must be a list of tokens such as [{"tokenEnv": "TASKQ_ADMIN_TOKEN", "owner": "ops", ' +
        `"role": "admin"}] (got ${describeValue(value)})`,
    );
    return [];
  }
  return value.map((item, index) => checkToken(check, `http.tokens[${index}]`, item));
}

function checkToken(check: Checker, at: string, value: unknown): HttpTokenConfig {
  const t = check.section(at, value, ['token', 'tokenEnv', 'owner', 'role']);
  const token =
    t.token === undefined
      ? null
      : check.string(`${at}.token`, t.token, '', {
          pattern: new RegExp(`^.{${MIN_TOKEN_LENGTH},}$`, 's'),
          hint: `a secret of at least ${MIN_TOKEN_LENGTH} characters`,
        }) || null;
  const tokenEnv =
    t.tokenEnv === undefined
      ? null
      : check.string(`${at}.tokenEnv`, t.tokenEnv, '', {
          pattern: ENV_NAME_PATTERN,
          hint: 'the name of an environment variable, such as TASKQ_ADMIN_TOKEN',
        }) || null;
  if (t.token !== undefined && t.tokenEnv !== undefined)
    check.problem(`${at}.token`, 'cannot be given together with tokenEnv; keep one of the two');
  if (isPlainObject(value) && t.token === undefined && t.tokenEnv === undefined)
    check.problem(at, 'needs "token" or "tokenEnv" (the name of a variable holding the token)');
  if (isPlainObject(value) && t.owner === undefined) check.problem(`${at}.owner`, 'is required');
  if (isPlainObject(value) && t.role === undefined)
    check.problem(`${at}.role`, `is required: one of ${API_ROLES.join(', ')}`);
  return {
    token,
    tokenEnv,
    owner: check.string(`${at}.owner`, t.owner, ''),
    role: check.oneOf(`${at}.role`, t.role, API_ROLES, 'user'),
  };
}

function checkMetrics(check: Checker, value: unknown): TaskqConfig['metrics'] {
  const v = check.section('metrics', value, ['enabled', 'stuckAfterSeconds']);
  const d = DEFAULTS.metrics;
  return {
    enabled: check.boolean('metrics.enabled', v.enabled, d.enabled),
    stuckAfterSeconds: check.number(
      'metrics.stuckAfterSeconds',
      v.stuckAfterSeconds,
      d.stuckAfterSeconds,
      { min: 1, max: 604800 },
    ),
  };
}

function checkRetention(check: Checker, value: unknown): TaskqConfig['retention'] {
  const keys = ['finishedDays', 'archivedDays', 'intervalSeconds', 'batchSize'];
  const v = check.section('retention', value, keys);
  const d = DEFAULTS.retention;
  const days = (key: 'finishedDays' | 'archivedDays') =>
    v[key] === undefined || v[key] === null
      ? null
      : check.number(`retention.${key}`, v[key], 0, { min: 1, max: 36500, integer: true });
  return {
    finishedDays: days('finishedDays'),
    archivedDays: days('archivedDays'),
    intervalSeconds: check.number(
      'retention.intervalSeconds',
      v.intervalSeconds,
      d.intervalSeconds,
      { min: 1, max: 604800 },
    ),
    batchSize: check.number('retention.batchSize', v.batchSize, d.batchSize, {
      min: 1,
      max: 100000,
      integer: true,
    }),
  };
}

function checkResults(
  check: Checker,
  value: unknown,
  context: ValidateContext,
): TaskqConfig['results'] {
  const v = check.section('results', value, ['directory']);
  const fallback = path.join(context.stateDir, DEFAULTS.resultsDirectory);
  if (v.directory === undefined || v.directory === null) return { directory: fallback };
  const directory = check.string('results.directory', v.directory, '', {
    hint: 'a directory path, relative to the configuration file or absolute',
  });
  return { directory: directory ? path.resolve(context.baseDir, directory) : fallback };
}
