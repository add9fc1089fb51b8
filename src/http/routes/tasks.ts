import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';

import type { FastifyInstance, FastifyRequest } from 'fastify';

import { TaskqClient } from '../../client.js';
import { TaskNotFoundError } from '../../errors.js';
import type { Runtime } from '../../runtime.js';
import { loadHandlers, type HandlerRegistry } from '../../tasks/handlers.js';
import type { TaskRecord } from '../../tasklog/queries.js';
import { PUBLIC_STATUSES, TASK_STATUSES, type TaskStatus } from '../../tasklog/statuses.js';
import { actorOf, type ApiOptions } from '../api.js';
import { ownerScope } from '../auth.js';
import { ApiError, badRequest } from '../errors.js';
import { errorResponses, FORCE_BODY, ref, TASK_ID_PARAMS, type Schema } from '../schemas.js';

/** Pages count at most this far; past it the page shows "10000+". */
const COUNT_UP_TO = 10_000;

const STATUS_WORDS = [...new Set<string>([...TASK_STATUSES, ...PUBLIC_STATUSES])];

const LIST_QUERY: Schema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    status: {
      type: 'string',
      pattern: `^(${STATUS_WORDS.join('|')})(,(${STATUS_WORDS.join('|')}))*$`,
      description: `Statuses separated by commas; TAO's public statuses stand for theirs (${STATUS_WORDS.join(', ')}).`,
    },
    owner: { type: 'string', minLength: 1, description: 'Only the tasks of this owner (admins).' },
    limit: { type: 'integer', minimum: 1, maximum: 1000, default: 20 },
    offset: { type: 'integer', minimum: 0, default: 0 },
  },
};

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
  required: ['ids'],
  properties: {
    ids: { type: 'array', minItems: 1, maxItems: 1000, items: { type: 'string' } },
    force: FORCE_BODY.properties && (FORCE_BODY.properties as Schema).force,
  },
};

/** A task as the API shows it: the result file without its place on the server's disk. */
export function publicTask(task: TaskRecord): Omit<TaskRecord, 'resultFile'> & {
  resultFile: { name: string; bytes: number } | null;
} {
  const file = task.resultFile;
  return { ...task, resultFile: file ? { name: file.name, bytes: file.bytes } : null };
}

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

export async function taskRoutes(app: FastifyInstance, { runtime }: ApiOptions): Promise<void> {
  const { queries } = runtime;

  /** The task, if the caller may see it: a user token sees only its owner's tasks. */
  const visibleTask = async (request: FastifyRequest, id: string): Promise<TaskRecord> => {
    const task = await queries.get(id);
    const owner = ownerScope(request.principal);
    if (owner !== undefined && task.owner !== owner) throw new TaskNotFoundError(id);
    return task;
  };

  app.get<{ Querystring: { status?: string; owner?: string; limit: number; offset: number } }>(
    '/api/v1/tasks',
    {
      config: { access: 'read' },
      schema: {
        summary: 'List tasks, newest first',
        tags: ['tasks'],
        operationId: 'listTasks',
        querystring: LIST_QUERY,
        response: { 200: ref('TaskPage'), ...errorResponses(400, 401) },
      },
    },
    async (request) => {
      const { limit, offset } = request.query;
      const owner = ownerScope(request.principal) ?? request.query.owner;
      const page = await queries.list({
        limit,
        offset,
        owner,
        status: statusesOf(request.query.status),
        countUpTo: COUNT_UP_TO,
      });
      return {
        tasks: page.tasks.map(publicTask),
        total: page.total,
        totalCapped: page.total >= COUNT_UP_TO,
        limit,
        offset,
      };
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
      const page = await queries.list({
        limit,
        offset,
        parentId: parent.id,
        countUpTo: COUNT_UP_TO,
      });
      return {
        tasks: page.tasks.map(publicTask),
        total: page.total,
        totalCapped: page.total >= COUNT_UP_TO,
        limit,
        offset,
      };
    },
  );

  registerEnqueue(app, runtime);

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
        const task = await visibleTask(request, request.params.id);
        const options = { force: request.body.force, actor: actorOf(request) };
        return publicTask(await queries[action](task.id, options));
      },
    );
  }

  app.post<{ Body: { ids: string[]; force: boolean } }>(
    '/api/v1/tasks/archive',
    {
      config: { access: 'write' },
      schema: {
        summary: 'Archive a list of tasks; each is archived or refused on its own',
        tags: ['tasks'],
        operationId: 'archiveTasks',
        body: ARCHIVE_MANY_BODY,
        response: {
          200: {
            type: 'object',
            required: ['archived', 'refused'],
            properties: {
              archived: { type: 'array', items: { type: 'string' } },
              refused: {
                type: 'array',
                items: {
                  type: 'object',
                  required: ['id', 'code', 'message'],
                  properties: {
                    id: { type: 'string' },
                    code: { type: 'string' },
                    message: { type: 'string' },
                  },
                },
              },
            },
          },
          ...errorResponses(400, 401, 403),
        },
      },
    },
    async (request) => {
      const archived: string[] = [];
      const refused: { id: string; code: string; message: string }[] = [];
      for (const id of new Set(request.body.ids)) {
        try {
          await visibleTask(request, id);
          await queries.archive(id, {
            force: request.body.force ?? false,
            actor: actorOf(request),
          });
          archived.push(id);
        } catch (error) {
          const { code, message } = error as { code?: string; message: string };
          refused.push({ id, code: code ?? 'INTERNAL', message });
        }
      }
      return { archived, refused };
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

/**
 * POST /api/v1/tasks. The supervisor does not run handlers itself, so the handlers module is
 * loaded on the first enqueue: the dispatcher needs a handler's queue choice, category, retry
 * limit and parameter check, as `taskq enqueue` does.
 */
function registerEnqueue(app: FastifyInstance, runtime: Runtime): void {
  let handlers: Promise<HandlerRegistry> | null = null;
  const registry = () => {
    if (runtime.handlers.names().length > 0) return Promise.resolve(runtime.handlers);
    handlers ??= loadHandlers(runtime.config.handlers);
    return handlers;
  };

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
      const client = new TaskqClient({ ...runtime, handlers: await registry() }, actorOf(request));
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
