import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';

import type { FastifyInstance, FastifyRequest } from 'fastify';

import { TaskqClient } from '../../client.js';
import {
  MAX_LIST_LIMIT,
  SORT_FIELDS,
  type ListOptions,
  type SortField,
  type TaskFilter,
} from '../../tasklog/filters.js';
import { TaskOperations } from '../../tasklog/operations.js';
import type { TaskPage, TaskRecord } from '../../tasklog/queries.js';
import { PUBLIC_STATUSES, TASK_STATUSES, type TaskStatus } from '../../tasklog/statuses.js';
import { actorOf, type RouteContext } from '../api.js';
import { ownerScope } from '../auth.js';
import { ApiError, badRequest } from '../errors.js';
import { errorResponses, FORCE_BODY, ref, TASK_ID_PARAMS, type Schema } from '../schemas.js';

const STATUS_WORDS = [...new Set<string>([...TASK_STATUSES, ...PUBLIC_STATUSES])];

const csv = (what: string): Schema => ({
  type: 'string',
  minLength: 1,
  maxLength: 2000,
  description: `${what}, separated by commas.`,
});

/** The filters, sorting and pagination of `taskq log --available`. */
const LIST_QUERY: Schema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    status: {
      type: 'string',
      pattern: `^(${STATUS_WORDS.join('|')})(,(${STATUS_WORDS.join('|')}))*$`,
      description: `Statuses separated by commas; TAO's public statuses stand for theirs (${STATUS_WORDS.join(', ')}).`,
    },
    task: csv('Task names'),
    queue: csv('Queues'),
    category: csv('Categories'),
    label: {
      type: 'string',
      minLength: 1,
      maxLength: 200,
      description: 'A piece of the label, any case.',
    },
    owner: { type: 'string', minLength: 1, description: 'Only the tasks of this owner (admins).' },
    createdAfter: { type: 'string', format: 'date-time' },
    createdBefore: { type: 'string', format: 'date-time' },
    sort: { type: 'string', enum: [...SORT_FIELDS], default: 'created' },
    order: { type: 'string', enum: ['asc', 'desc'], default: 'desc' },
    limit: { type: 'integer', minimum: 1, maximum: MAX_LIST_LIMIT, default: 20 },
    offset: { type: 'integer', minimum: 0, default: 0 },
  },
};

interface ListQuery {
  status?: string;
  task?: string;
  queue?: string;
  category?: string;
  label?: string;
  owner?: string;
  createdAfter?: string;
  createdBefore?: string;
  sort: SortField;
  order: 'asc' | 'desc';
  limit: number;
  offset: number;
}

/** How long the count of a listing's matches is reused by the pages that follow. */
const COUNT_TTL_MS = 1000;

/**
 * Counts of listings, kept for a second. A page costs an index read of its own rows, but its
 * count reads up to 10,000 index entries; a list polled by several pages at once, or paged
 * through, would count the same matches again and again. A count is at most a second old.
 */
class CountCache {
  private readonly entries = new Map<string, { at: number; value: Promise<Counted> }>();

  get(filter: TaskFilter, count: () => Promise<Counted>): Promise<Counted> {
    const key = JSON.stringify({ ...filter, limit: undefined, offset: undefined });
    const now = Date.now();
    const cached = this.entries.get(key);
    if (cached && now - cached.at < COUNT_TTL_MS) return cached.value;
    if (this.entries.size > 1000) this.entries.clear();
    const value = count();
    this.entries.set(key, { at: now, value });
    value.catch(() => this.entries.delete(key));
    return value;
  }
}

type Counted = Omit<TaskPage, 'tasks'>;

const split = (value: string | undefined) => value?.split(',').map((item) => item.trim());

const ENQUEUE_BODY: Schema = {
  type: 'object',
  additionalProperties: false,
  required: ['name'],
  properties: {
    name: { type: 'string', minLength: 1, maxLength: 200 },
    parameters: { description: 'Any JSON value; {} when left out.' },
    label: { type: 'string', maxLength: 1000 },
    queue: { type: 'string', minLength: 1, maxLength: 80 },
    owner: { type: 'string', minLength: 1, maxLength: 200, description: 'Admins only.' },
    delaySeconds: { type: 'number', minimum: 0 },
  },
};

const ARCHIVE_MANY_BODY: Schema = {
  type: 'object',
  additionalProperties: false,
  description: 'Either ids, or allFinished for every completed, failed and cancelled task.',
  properties: {
    ids: { type: 'array', minItems: 1, maxItems: 1000, items: { type: 'string' } },
    allFinished: { type: 'boolean' },
    olderThanSeconds: {
      type: 'number',
      minimum: 0,
      description: 'With allFinished: only tasks finished at least this long ago.',
    },
    force: { type: 'boolean', default: false, description: 'With ids: also tasks in progress.' },
  },
};

/** A task as the API shows it: the result file without its place on the server's disk. */
export function publicTask(task: TaskRecord) {
  const file = task.resultFile;
  return { ...task, resultFile: file ? { name: file.name, bytes: file.bytes } : null };
}

const page = (result: TaskPage, limit: number, offset: number) => ({
  tasks: result.tasks.map(publicTask),
  total: result.total,
  totalExact: result.totalExact,
  limit,
  offset,
});

function statusesOf(query: string | undefined): TaskStatus[] | undefined {
  if (!query) return undefined;
  const statuses = new Set<TaskStatus>();
  for (const word of query.split(',')) {
    if (word === 'created') statuses.add('enqueued');
    else if (word === 'in_progress')
      for (const s of ['dequeued', 'running', 'child_running'] as const) statuses.add(s);
    else statuses.add(word as TaskStatus);
  }
  return [...statuses];
}

export async function taskRoutes(app: FastifyInstance, context: RouteContext): Promise<void> {
  const { queries } = context.runtime;
  const counts = new CountCache();

  /** The task, if the caller may see it: a user token sees only its owner's tasks. */
  const visibleTask = (request: FastifyRequest, id: string): Promise<TaskRecord> =>
    queries.get(id, { owner: ownerScope(request.principal) });

  app.get<{ Querystring: ListQuery }>(
    '/api/v1/tasks',
    {
      config: { access: 'read' },
      schema: {
        summary: 'List tasks: filters, sorting and pages as taskq log --available has them',
        tags: ['tasks'],
        operationId: 'listTasks',
        querystring: LIST_QUERY,
        response: { 200: ref('TaskPage'), ...errorResponses(400, 401) },
      },
    },
    async (request) => {
      const { query } = request;
      const options: ListOptions = {
        limit: query.limit,
        offset: query.offset,
        sort: query.sort,
        order: query.order,
        owner: ownerScope(request.principal) ?? query.owner,
        status: statusesOf(query.status),
        name: split(query.task),
        queue: split(query.queue),
        category: split(query.category),
        labelContains: query.label,
        createdAfter: query.createdAfter ? new Date(query.createdAfter) : undefined,
        createdBefore: query.createdBefore ? new Date(query.createdBefore) : undefined,
      };
      const [tasks, counted] = await Promise.all([
        queries.page(options),
        counts.get(options, () => queries.count(options)),
      ]);
      return page({ tasks, ...counted }, query.limit, query.offset);
    },
  );

  app.get<{ Querystring: { owner?: string } }>(
    '/api/v1/stats',
    {
      config: { access: 'read' },
      schema: {
        summary: 'Counts of tasks by status',
        tags: ['tasks'],
        operationId: 'taskStats',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: { owner: { type: 'string', minLength: 1 } },
        },
        response: { 200: ref('TaskStats'), ...errorResponses(401) },
      },
    },
    async (request) => queries.stats(ownerScope(request.principal) ?? request.query.owner),
  );

  app.get<{ Params: { id: string } }>(
    '/api/v1/tasks/:id',
    {
      config: { access: 'read' },
      schema: {
        summary: 'One task with its report and events',
        tags: ['tasks'],
        operationId: 'getTask',
        params: TASK_ID_PARAMS,
        response: {
          200: {
            type: 'object',
            required: ['task', 'events'],
            properties: { task: ref('Task'), events: { type: 'array', items: ref('TaskEvent') } },
          },
          ...errorResponses(401, 404),
        },
      },
    },
    async (request) => {
      const task = await visibleTask(request, request.params.id);
      return { task: publicTask(task), events: await queries.events(task.id) };
    },
  );

  app.get<{ Params: { id: string } }>(
    '/api/v1/tasks/:id/status',
    {
      config: { access: 'read' },
      schema: {
        summary: "A task's public status, as TAO names it",
        tags: ['tasks'],
        operationId: 'getTaskStatus',
        params: TASK_ID_PARAMS,
        response: {
          200: {
            type: 'object',
            required: ['id', 'status', 'statusLabel', 'progress'],
            properties: {
              id: { type: 'string' },
              status: { type: 'string', enum: [...PUBLIC_STATUSES] },
              statusLabel: { type: 'string' },
              progress: { type: ['number', 'null'] },
            },
          },
          ...errorResponses(401, 404),
        },
      },
    },
    async (request) => {
      const task = await visibleTask(request, request.params.id);
      return {
        id: task.id,
        status: task.publicStatus,
        statusLabel: task.statusLabel,
        progress: task.progress,
      };
    },
  );

  app.get<{ Params: { id: string }; Querystring: { limit: number; offset: number } }>(
    '/api/v1/tasks/:id/children',
    {
      config: { access: 'read' },
      schema: {
        summary: 'The children a task enqueued',
        tags: ['tasks'],
        operationId: 'listChildren',
        params: TASK_ID_PARAMS,
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
            offset: { type: 'integer', minimum: 0, default: 0 },
          },
        },
        response: { 200: ref('TaskPage'), ...errorResponses(400, 401, 404) },
      },
    },
    async (request) => {
      const parent = await visibleTask(request, request.params.id);
      const { limit, offset } = request.query;
      return page(await queries.list({ limit, offset, parentId: parent.id }), limit, offset);
    },
  );

  registerEnqueue(app, context);
  registerRerun(app, context);

  for (const action of ['cancel', 'archive'] as const) {
    app.post<{ Params: { id: string }; Body: { force: boolean } }>(
      `/api/v1/tasks/:id/${action}`,
      {
        config: { access: 'write' },
        schema: {
          summary:
            action === 'cancel'
              ? 'Cancel a task; one past enqueued only with force (a running one is aborted)'
              : 'Archive a finished task; one in progress only with force',
          tags: ['tasks'],
          operationId: `${action}Task`,
          params: TASK_ID_PARAMS,
          body: FORCE_BODY,
          response: { 200: ref('Task'), ...errorResponses(400, 401, 403, 404, 409) },
        },
      },
      async (request) => {
        const options = {
          force: request.body.force,
          actor: actorOf(request),
          owner: ownerScope(request.principal),
        };
        return publicTask(await queries[action](request.params.id, options));
      },
    );
  }

  app.post<{
    Body: { ids?: string[]; allFinished?: boolean; olderThanSeconds?: number; force: boolean };
  }>(
    '/api/v1/tasks/archive',
    {
      config: { access: 'write' },
      schema: {
        summary: 'Archive a list of tasks, each on its own, or all finished tasks in batches',
        tags: ['tasks'],
        operationId: 'archiveTasks',
        body: ARCHIVE_MANY_BODY,
        response: {
          200: {
            type: 'object',
            required: ['archived', 'refused', 'count'],
            properties: {
              count: { type: 'integer', description: 'Tasks archived.' },
              archived: { type: 'array', items: { type: 'string' } },
              refused: {
                type: 'array',
                items: {
                  type: 'object',
                  required: ['id', 'reason'],
                  properties: { id: { type: 'string' }, reason: { type: 'string' } },
                },
              },
            },
          },
          ...errorResponses(400, 401, 403),
        },
      },
    },
    async (request) => {
      const { body } = request;
      const owner = ownerScope(request.principal);
      const actor = actorOf(request);
      if ((body.ids === undefined) === (body.allFinished !== true))
        throw badRequest('ids', 'Give either ids (a list of task ids) or "allFinished": true');
      if (body.ids) {
        const ids = [...new Set(body.ids)];
        const result = await queries.archiveMany(ids, { force: body.force, actor, owner });
        return { ...result, count: result.archived.length };
      }
      const count = await queries.archiveAllFinished({
        owner,
        actor,
        olderThanSeconds: body.olderThanSeconds,
        batchSize: context.runtime.config.retention.batchSize,
      });
      return { count, archived: [], refused: [] };
    },
  );

  app.get<{ Params: { id: string } }>(
    '/api/v1/tasks/:id/result',
    {
      config: {
        access: 'read',
        rawResponses: {
          200: {
            description: 'The result file, as an attachment',
            content: {
              'application/octet-stream': {
                schema: { type: 'string', contentMediaType: 'application/octet-stream' },
              },
            },
          },
        },
      },
      schema: {
        summary: 'Download the result file a task wrote',
        tags: ['tasks'],
        operationId: 'downloadResult',
        params: TASK_ID_PARAMS,
        response: errorResponses(401, 404),
      },
    },
    async (request, reply) => {
      const task = await visibleTask(request, request.params.id);
      const file = task.resultFile;
      const stat = file ? await fs.stat(file.path).catch(() => null) : null;
      if (!file || !stat?.isFile())
        throw new ApiError(404, 'RESULT_FILE_NOT_FOUND', `Task ${task.id} has no result file`);
      const name = path.basename(file.name).replace(/[^\w.-]/g, '_') || 'result';
      return reply
        .type('application/octet-stream')
        .header('content-length', stat.size)
        .header('content-disposition', `attachment; filename="${name}"`)
        .header('x-content-type-options', 'nosniff')
        .send(createReadStream(file.path));
    },
  );
}

/** POST /api/v1/tasks: the caller's own task, or (admins) any owner's. */
function registerEnqueue(app: FastifyInstance, context: RouteContext): void {
  const { runtime } = context;
  app.post<{
    Body: {
      name: string;
      parameters?: unknown;
      label?: string;
      queue?: string;
      owner?: string;
      delaySeconds?: number;
    };
  }>(
    '/api/v1/tasks',
    {
      config: { access: 'write' },
      schema: {
        summary: 'Enqueue a task',
        tags: ['tasks'],
        operationId: 'enqueueTask',
        body: ENQUEUE_BODY,
        response: {
          201: {
            type: 'object',
            required: ['id', 'queue'],
            properties: {
              id: { type: 'string' },
              queue: { type: 'string' },
              status: { type: 'string' },
            },
          },
          ...errorResponses(400, 401, 403),
        },
      },
    },
    async (request, reply) => {
      const { principal } = request;
      const { body } = request;
      if (body.owner !== undefined && principal.role !== 'admin' && body.owner !== principal.owner)
        throw new ApiError(403, 'FORBIDDEN', 'Only an admin token may enqueue for another owner', {
          field: 'owner',
        });
      if (
        body.queue !== undefined &&
        !runtime.config.queues.some((queue) => queue.name === body.queue)
      )
        throw badRequest(
          'queue',
          `No queue "${body.queue}"; configured: ${runtime.config.queues.map((q) => q.name).join(', ')}`,
        );
      const client = new TaskqClient(await context.withHandlers(), actorOf(request));
      const enqueued = await client.enqueue(body.name, body.parameters ?? {}, {
        label: body.label,
        queue: body.queue,
        owner: body.owner ?? principal.owner ?? undefined,
        delaySeconds: body.delaySeconds,
      });
      return reply
        .code(201)
        .send({ id: enqueued.id, queue: enqueued.queue, status: enqueued.status });
    },
  );
}

/** POST /api/v1/tasks/:id/rerun: a new task with the same name, parameters, label and owner. */
function registerRerun(app: FastifyInstance, context: RouteContext): void {
  app.post<{ Params: { id: string } }>(
    '/api/v1/tasks/:id/rerun',
    {
      config: { access: 'write' },
      schema: {
        summary: 'Run a task again: a new task linked to this one',
        tags: ['tasks'],
        operationId: 'rerunTask',
        params: TASK_ID_PARAMS,
        response: {
          201: {
            type: 'object',
            required: ['id', 'queue', 'rerunOf'],
            properties: {
              id: { type: 'string' },
              queue: { type: 'string' },
              rerunOf: { type: 'string' },
            },
          },
          ...errorResponses(401, 403, 404),
        },
      },
    },
    async (request, reply) => {
      const operations = new TaskOperations(await context.withHandlers(), actorOf(request));
      const owner = ownerScope(request.principal);
      const created = await operations.rerun(request.params.id, { owner });
      return reply.code(201).send({ ...created, rerunOf: request.params.id });
    },
  );
}
