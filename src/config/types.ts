/** The brokers a queue can live on. */
export const BROKER_TYPES = ['memory', 'postgres', 'sqs'] as const;
export type BrokerType = (typeof BROKER_TYPES)[number];

/** How a worker picks the next queue to receive from. */
export const STRATEGIES = ['weight', 'strict-priority'] as const;
export type StrategyName = (typeof STRATEGIES)[number];

export interface MemoryBrokerOptions {
  type: 'memory';
  /** Up to this many messages per receive. */
  receive: number;
  /** Run a task inside `enqueue` and return its report, as no worker will see the queue. */
  sync: boolean;
}

export interface PostgresBrokerOptions {
  type: 'postgres';
  receive: number;
  /** How long a received task stays leased before the broker hands it out again. */
  leaseSeconds: number;
}

export interface SqsBrokerOptions {
  type: 'sqs';
  receive: number;
  region: string | null;
  profile: string | null;
  endpoint: string | null;
  /** Prefix of the SQS queue name; the full name is prefix + queue name. */
  prefix: string;
  visibilityTimeoutSeconds: number;
  waitTimeSeconds: number;
  fifo: boolean;
  /** When set, `taskq init` creates `<name>-dlq` and a redrive policy with this receive count. */
  deadLetterMaxReceiveCount: number | null;
}

export type BrokerOptions = MemoryBrokerOptions | PostgresBrokerOptions | SqsBrokerOptions;

export interface QueueConfig {
  name: string;
  broker: BrokerOptions;
  weight: number;
}

export interface DatabaseConfig {
  /** A PostgreSQL connection string; null runs the embedded server. */
  url: string | null;
  /** Schema of the task log. */
  schema: string;
  /** Schema of pg-boss's tables, for queues on the postgres broker. */
  bossSchema: string;
  poolSize: number;
  embedded: { dataDir: string; port: number };
}

export interface WorkerConfig {
  /** Tasks a worker runs at the same time. */
  concurrency: number;
  /** Longest sleep between polls of a queue that had no work. */
  idlePollMaxSeconds: number;
  /** Running tasks renew their lease this often. */
  heartbeatSeconds: number;
  /** On a stop signal, running tasks get this long before they are aborted and released. */
  shutdownTimeoutSeconds: number;
  /** Longest run of an attempt whose handler sets no timeoutSeconds; null sets none. */
  taskTimeoutSeconds: number | null;
}

export interface RetryConfig {
  /** Retries after the first attempt; 0 means a failure is final. */
  limit: number;
  delaySeconds: number;
  backoff: boolean;
  maxDelaySeconds: number;
  /**
   * Attempts, beyond the retries, that may end without an outcome because their worker was lost
   * (killed, crashed, cut off) before the task is failed: enough to survive lost workers, few
   * enough to stop a handler that takes its process down every time.
   */
  lostAttemptsLimit: number;
}

export interface SupervisorConfig {
  /** Restarts of one worker slot within `restartWindowSeconds` past which the slot is given up. */
  maxRestarts: number;
  restartWindowSeconds: number;
  /** A worker that has not answered a ping for this long is killed and restarted. */
  heartbeatTimeoutSeconds: number;
  /** A worker past this resident memory is drained and replaced; null for no limit. */
  maxMemoryMb: number | null;
  /** A worker that has run this many tasks is drained and replaced; null for no limit. */
  maxTasks: number | null;
  /**
   * How long the handler of a task cancelled while it runs may ignore its AbortSignal before
   * the supervisor recycles the worker (or, with thread isolation, the thread) that runs it.
   */
  cancelGraceSeconds: number;
}

export interface MetricsConfig {
  /** Serve GET /metrics and count tasks in every worker; false turns both off. */
  enabled: boolean;
  /** A task running longer than this counts in taskq_stuck_tasks. */
  stuckAfterSeconds: number;
}

/** Who may call the REST API: admins see and do everything, users only their own tasks. */
export const API_ROLES = ['admin', 'user'] as const;
export type ApiRole = (typeof API_ROLES)[number];

/** A bearer token of the REST API, given in the file or read from an environment variable. */
export interface HttpTokenConfig {
  token: string | null;
  /** Name of an environment variable holding the token, read when the server starts. */
  tokenEnv: string | null;
  /** Owner of the tasks this token enqueues, and the only owner a `user` token sees. */
  owner: string;
  role: ApiRole;
}

export interface HttpConfig {
  /** 127.0.0.1 unless set otherwise. */
  host: string;
  port: number;
  /** Bearer tokens of the REST API; none leaves it read-only, and on loopback only. */
  tokens: HttpTokenConfig[];
}

export interface RetentionConfig {
  /** Completed, failed and cancelled tasks finished this many days ago are deleted; null keeps them. */
  finishedDays: number | null;
  /** Archived tasks archived this many days ago are deleted; null keeps them. */
  archivedDays: number | null;
  /** How often the supervisor looks for tasks to delete. */
  intervalSeconds: number;
  /** Tasks deleted per transaction, so that a large sweep never locks the task log for long. */
  batchSize: number;
}

export interface ResultsConfig {
  /** Absolute directory of the files that handlers write, one subdirectory per task. */
  directory: string;
}

/** The resolved configuration: every field present, every path absolute. */
export interface TaskqConfig {
  /** Where the configuration came from, for messages. */
  source: string;
  /** Directory for runtime state: pid files, the embedded server's data, result files. */
  stateDir: string;
  database: DatabaseConfig;
  queues: QueueConfig[];
  defaultQueue: string;
  associations: Record<string, string>;
  strategy: StrategyName;
  /** Absolute path of the module exporting the task handlers; null for none. */
  handlers: string | null;
  worker: WorkerConfig;
  retry: RetryConfig;
  supervisor: SupervisorConfig;
  http: HttpConfig;
  metrics: MetricsConfig;
  retention: RetentionConfig;
  results: ResultsConfig;
}
