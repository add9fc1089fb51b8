import type {
  HttpConfig,
  MetricsConfig,
  RetentionConfig,
  RetryConfig,
  SupervisorConfig,
  WorkerConfig,
} from './types.js';

/** Every default in one place; the JSON Schema in config/ states the same values. */
export const DEFAULTS = {
  database: {
    schema: 'taskq',
    bossSchema: 'pgboss',
    poolSize: 10,
    embeddedDataDir: 'pgdata',
    embeddedPort: 0,
  },
  strategy: 'weight',
  weight: 1,
  broker: {
    memory: { receive: 10, sync: false },
    postgres: { receive: 100, leaseSeconds: 900 },
    sqs: {
      receive: 10,
      prefix: 'TQ_',
      visibilityTimeoutSeconds: 300,
      waitTimeSeconds: 20,
    },
  },
  worker: {
    concurrency: 10,
    idlePollMaxSeconds: 1,
    heartbeatSeconds: 10,
    shutdownTimeoutSeconds: 30,
    taskTimeoutSeconds: null,
  } satisfies WorkerConfig,
  retry: {
    limit: 3,
    delaySeconds: 1,
    backoff: true,
    maxDelaySeconds: 300,
    lostAttemptsLimit: 2,
  } satisfies RetryConfig,
  supervisor: {
    maxRestarts: 10,
    restartWindowSeconds: 60,
    heartbeatTimeoutSeconds: 10,
    maxMemoryMb: null,
    maxTasks: null,
    cancelGraceSeconds: 10,
  } satisfies SupervisorConfig,
  http: { host: '127.0.0.1', port: 9464, tokens: [] } satisfies HttpConfig,
  metrics: { enabled: true, stuckAfterSeconds: 300 } satisfies MetricsConfig,
  retention: {
    finishedDays: null,
    archivedDays: null,
    intervalSeconds: 3600,
    batchSize: 1000,
  } satisfies RetentionConfig,
  /** Result files go to this directory under the state directory unless `results.directory` says otherwise. */
  resultsDirectory: 'results',
} as const;

/** The SQS service refuses more than 10 messages per ReceiveMessage call. */
export const SQS_MAX_RECEIVE = 10;

/** Names of queues and schemas: they end up in SQL identifiers and SQS queue names. */
export const NAME_PATTERN = /^[A-Za-z][A-Za-z0-9_.-]{0,79}$/;
/** Shortest token the configuration accepts: a guessable token is no protection. */
export const MIN_TOKEN_LENGTH = 16;
export const ENV_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]*$/;
export const SCHEMA_PATTERN = /^[a-z_][a-z0-9_]{0,62}$/;
