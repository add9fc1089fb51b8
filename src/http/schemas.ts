import { REPORT_TYPES } from '../tasks/report.js';
import { PUBLIC_STATUSES, TASK_STATUSES } from '../tasklog/statuses.js';

/**
 * The shapes of the REST API, as JSON Schema. Fastify checks requests and writes responses with
 * them, and the OpenAPI document at /api/v1/openapi.json is built from them, so the document
 * cannot drift from what the server does. Each shared shape has an `$id`, referred to as
 * `Name#` in routes and as `#/components/schemas/Name` in the document.
 */
export type Schema = Record<string, unknown>;

const nullable = (type: string, extra: Schema = {}): Schema => ({ type: [type, 'null'], ...extra });
const dateTime = { type: 'string', format: 'date-time' };

export const REPORT: Schema = {
  $id: 'Report',
  description: "A task's report: TAO's tree of typed messages.",
  type: 'object',
  required: ['type', 'message', 'children'],
  properties: {
    type: { type: 'string', enum: [...REPORT_TYPES] },
    message: { type: 'string' },
    data: {},
    children: { type: 'array', items: { $ref: 'Report#' } },
  },
};

export const TASK: Schema = {
  $id: 'Task',
  description: 'One task of the task log.',
  type: 'object',
  required: [
    'id',
    'name',
    'queue',
    'label',
    'owner',
    'category',
    'parentId',
    'status',
    'publicStatus',
    'statusLabel',
    'report',
    'progress',
    'progressMessage',
    'attempts',
    'maxAttempts',
    'worker',
    'resultFile',
    'rerunOf',
    'createdAt',
    'updatedAt',
    'startedAt',
    'finishedAt',
    'archivedAt',
  ],
  properties: {
    id: { type: 'string', format: 'uuid' },
    name: { type: 'string', description: 'The task name, as its handler is registered.' },
    queue: { type: 'string' },
    label: { type: 'string' },
    owner: { type: 'string' },
    category: { type: 'string' },
    parentId: nullable('string'),
    status: { type: 'string', enum: [...TASK_STATUSES] },
    publicStatus: { type: 'string', enum: [...PUBLIC_STATUSES] },
    statusLabel: { type: 'string' },
    report: { oneOf: [{ $ref: 'Report#' }, { type: 'null' }] },
    progress: nullable('number', { minimum: 0, maximum: 1 }),
    progressMessage: nullable('string'),
    attempts: { type: 'integer' },
    maxAttempts: { type: 'integer' },
    worker: nullable('string'),
    resultFile: {
      oneOf: [
        {
          type: 'object',
          required: ['name', 'bytes'],
          properties: { name: { type: 'string' }, bytes: { type: 'integer' } },
        },
        { type: 'null' },
      ],
    },
    rerunOf: nullable('string', { description: 'The task this one runs again.' }),
    createdAt: dateTime,
    updatedAt: dateTime,
    startedAt: nullable('string', { format: 'date-time' }),
    finishedAt: nullable('string', { format: 'date-time' }),
    archivedAt: nullable('string', { format: 'date-time' }),
  },
};

export const TASK_EVENT: Schema = {
  $id: 'TaskEvent',
  description: "One entry of a task's history: a status change or an operator's action.",
  type: 'object',
  required: ['id', 'at', 'kind', 'fromStatus', 'toStatus', 'actor', 'detail'],
  properties: {
    id: { type: 'integer' },
    at: dateTime,
    kind: { type: 'string' },
    fromStatus: nullable('string'),
    toStatus: nullable('string'),
    actor: { type: 'string' },
    detail: {},
  },
};

export const TASK_PAGE: Schema = {
  $id: 'TaskPage',
  type: 'object',
  required: ['tasks', 'total', 'totalExact', 'limit', 'offset'],
  properties: {
    tasks: { type: 'array', items: { $ref: 'Task#' } },
    total: { type: 'integer', description: 'Matching tasks, counted up to 10,000.' },
    totalExact: {
      type: 'boolean',
      description: 'False when the count stopped: there are at least total matching tasks.',
    },
    limit: { type: 'integer' },
    offset: { type: 'integer' },
  },
};

export const TASK_STATS: Schema = {
  $id: 'TaskStats',
  type: 'object',
  required: ['enqueued', 'inProgress', 'completed', 'failed', 'cancelled', 'archived'],
  properties: Object.fromEntries(
    ['enqueued', 'inProgress', 'completed', 'failed', 'cancelled', 'archived'].map((key) => [
      key,
      { type: 'integer' },
    ]),
  ),
};

export const WORKER: Schema = {
  $id: 'Worker',
  type: 'object',
  required: ['id', 'slot', 'pid', 'state', 'rssBytes', 'tasksDone', 'running', 'restarts'],
  properties: {
    id: { type: 'string' },
    slot: { type: 'integer' },
    pid: nullable('integer'),
    state: { type: 'string' },
    rssBytes: { type: 'integer' },
    tasksDone: { type: 'integer' },
    running: { type: 'integer' },
    restarts: { type: 'integer' },
  },
};

export const FLEET: Schema = {
  $id: 'Fleet',
  type: 'object',
  required: ['pid', 'isolation', 'paused', 'stopping', 'workers'],
  properties: {
    pid: { type: 'integer', description: "The supervisor's process id." },
    isolation: { type: 'string', enum: ['process', 'thread'] },
    paused: { type: 'boolean' },
    stopping: { type: 'boolean' },
    workers: { type: 'array', items: { $ref: 'Worker#' } },
  },
};

export const QUEUE: Schema = {
  $id: 'Queue',
  type: 'object',
  required: ['name', 'broker', 'weight', 'waiting', 'inFlight', 'running', 'paused', 'history'],
  properties: {
    name: { type: 'string' },
    broker: { type: 'string' },
    weight: {
      type: 'object',
      required: ['configured', 'effective'],
      properties: { configured: { type: 'number' }, effective: { type: 'number' } },
    },
    waiting: nullable('integer', { description: 'Tasks waiting; null when the broker is down.' }),
    inFlight: nullable('integer'),
    running: { type: 'integer' },
    paused: { type: 'boolean' },
    history: {
      type: 'array',
      description: 'Samples of the last minutes, oldest first.',
      items: {
        type: 'object',
        required: ['at', 'waiting', 'inFlight', 'ended'],
        properties: {
          at: dateTime,
          waiting: nullable('integer'),
          inFlight: nullable('integer'),
          ended: { type: 'integer', description: 'Tasks that ended since the sample before.' },
        },
      },
    },
  },
};

export const ERROR: Schema = {
  $id: 'Error',
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message', 'details'],
      properties: {
        code: { type: 'string' },
        message: { type: 'string' },
        details: { type: 'object', additionalProperties: true },
      },
    },
  },
};

export const TAO_TASK: Schema = {
  $id: 'TaoTask',
  description: "A task as TAO's TaskQueueRestApi shows it.",
  type: 'object',
  required: ['id', 'taskName', 'taskLabel', 'status', 'statusLabel', 'createdAt', 'updatedAt'],
  properties: {
    id: { type: 'string' },
    taskName: { type: 'string' },
    taskLabel: { type: 'string' },
    status: { type: 'string', enum: [...PUBLIC_STATUSES] },
    statusLabel: { type: 'string' },
    masterStatus: { type: 'boolean' },
    createdAt: { type: 'integer', description: 'Unix time in seconds.' },
    createdAtElapsed: { type: 'integer', description: 'Seconds since createdAt.' },
    updatedAt: { type: 'integer' },
    updatedAtElapsed: { type: 'integer' },
    report: { oneOf: [{ $ref: 'Report#' }, { type: 'null' }] },
    category: { type: 'string' },
    hasFile: { type: 'boolean' },
  },
};

/** TAO's envelope: `data` on success, `errorCode` and `errorMsg` otherwise. */
export function taoEnvelope(data: Schema): Schema {
  return {
    type: 'object',
    required: ['success'],
    properties: {
      success: { type: 'boolean' },
      data,
      errorCode: { type: 'integer' },
      errorMsg: { type: 'string' },
      version: { type: 'string' },
    },
  };
}

export const SHARED_SCHEMAS = [
  REPORT,
  TASK,
  TASK_EVENT,
  TASK_PAGE,
  TASK_STATS,
  WORKER,
  FLEET,
  QUEUE,
  ERROR,
  TAO_TASK,
];

export const ref = (id: string): Schema => ({ $ref: `${id}#` });

/** The error responses a route may give, each in the one error shape. */
export function errorResponses(...codes: number[]): Record<number, Schema> {
  return Object.fromEntries(codes.map((code) => [code, ref('Error')]));
}

export const TASK_ID_PARAMS: Schema = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', description: 'A task id (UUID).' } },
};

export const FORCE_BODY: Schema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    force: {
      type: 'boolean',
      default: false,
      description: 'Also for a task in progress, which is otherwise refused with 409.',
    },
  },
};
