/**
 * taskq's public surface: what an application imports. Everything else is internal and may
 * change without notice.
 */
export { TaskqClient, type Enqueued, type EnqueueOptions, type EnqueueRequest } from './client.js';
export { loadConfig, type LoadOptions } from './config/load.js';
export type { QueueConfig, TaskqConfig, BrokerOptions, StrategyName } from './config/types.js';
export {
  ConfigError,
  TaskqError,
  TaskNotFoundError,
  TransitionRefusedError,
  UnknownTaskError,
  UsageError,
  type ConfigProblem,
} from './errors.js';
export { createLogger, type Logger } from './log/logger.js';
export {
  isQueuePaused,
  pausedQueues,
  pauseQueues,
  resumeQueues,
  type PausedQueues,
  type PauseOptions,
  type PauseStore,
  type QueuePause,
} from './queues/pauses.js';
export { openRuntime, type Runtime, type RuntimeOptions } from './runtime.js';
export {
  defineHandlers,
  HandlerRegistry,
  loadHandlers,
  type HandlerDefinition,
  type HandlerFunction,
  type HandlerModule,
  type TaskContext,
} from './tasks/handlers.js';
export { type Report, type ReportInput, type ReportType } from './tasks/report.js';
export {
  TaskLogQueries,
  type ArchiveManyResult,
  type OwnerScope,
  type TaskEvent,
  type TaskPage,
  type TaskRecord,
  type TaskStats,
} from './tasklog/queries.js';
export {
  COUNT_CAP,
  MAX_LIST_LIMIT,
  SORT_FIELDS,
  type ListOptions,
  type SortField,
  type SortOrder,
  type TaskFilter,
} from './tasklog/filters.js';
export {
  TaskOperations,
  type RestartAction,
  type RestartOptions,
  type RestartOutcome,
  type StuckEntry,
  type StuckSummary,
} from './tasklog/operations.js';
export {
  MIN_STUCK_AGE_SECONDS,
  STUCK_STATUSES,
  type StuckFilter,
  type StuckStatus,
  type StuckTask,
} from './tasklog/stuck.js';
export type { ArchiveAllOptions, DeleteExpiredOptions } from './tasklog/sweeps.js';
export type { ResultFile } from './tasklog/result-files.js';
export { type PublicStatus, type TaskStatus } from './tasklog/statuses.js';
export { Worker, type WorkerOptions, type WorkerState } from './worker/worker.js';
export type {
  Broker,
  MessagePresence,
  MessageRef,
  QueueCounts,
  ReceivedMessage,
  OutgoingMessage,
} from './brokers/broker.js';
