import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

import type { TaskRecord } from '../../tasklog/queries.js';
import type { ApiOptions } from '../api.js';
import { ownerScope } from '../auth.js';
import { toApiError } from '../errors.js';
import { taoEnvelope, ref, type Schema } from '../schemas.js';
import { PUBLIC_STATUSES } from '../../tasklog/statuses.js';

const BASE = '/taoTaskQueue/TaskQueueRestApi';

const ID_QUERY: Schema = {
  type: 'object',
  properties: { id: { type: 'string', description: 'The task id.' } },
};

const unix = (iso: string) => Math.floor(Date.parse(iso) / 1000);

/** A task in the shape of TAO's TaskLogEntity JSON. */
export function taoTask(task: TaskRecord, now = Date.now()): Record<string, unknown> {
  const created = unix(task.createdAt);
  const updated = unix(task.updatedAt);
  const nowSeconds = Math.floor(now / 1000);
  return {
    id: task.id,
    taskName: task.name,
    taskLabel: task.label,
    status: task.publicStatus,
    statusLabel: task.statusLabel,
    masterStatus: task.parentId === null,
    createdAt: created,
    createdAtElapsed: Math.max(0, nowSeconds - created),
    updatedAt: updated,
    updatedAtElapsed: Math.max(0, nowSeconds - updated),
    report: task.report,
    category: task.category,
    hasFile: task.resultFile !== null,
  };
}

const taoResponses = (data: Schema): Record<number, Schema> => {
  const envelope = taoEnvelope(data);
  return { 200: envelope, 400: envelope, 401: envelope, 403: envelope, 404: envelope };
};

/**
 * TAO's TaskQueueRestApi: `get` and `getStatus`, answering `{success, data}` or
 * `{success: false, errorCode, errorMsg}` with the HTTP status as the error code, as TAO does.
 */
export async function taoRoutes(app: FastifyInstance, { runtime }: ApiOptions): Promise<void> {
  const answer = async (
    request: FastifyRequest<{ Querystring: { id?: string } }>,
    reply: FastifyReply,
    data: (task: TaskRecord) => unknown,
  ) => {
    try {
      const id = request.query.id;
      if (!id) return taoError(reply, 400, 'Missing parameter: id');
      const task = await runtime.queries.get(id);
      const owner = ownerScope(request.principal);
      if (owner !== undefined && task.owner !== owner)
        return taoError(reply, 404, `No task with id "${id}" in the task log`);
      return { success: true, data: data(task) };
    } catch (error) {
      const apiError = toApiError(error);
      return taoError(reply, apiError.statusCode, apiError.message);
    }
  };

  app.get<{ Querystring: { id?: string } }>(
    `${BASE}/get`,
    {
      config: { access: 'read' },
      schema: {
        summary: "TAO's get: one task as a TaskLogEntity",
        tags: ['tao'],
        operationId: 'taoGet',
        querystring: ID_QUERY,
        response: taoResponses(ref('TaoTask')),
      },
    },
    (request, reply) => answer(request, reply, (task) => taoTask(task)),
  );

  app.get<{ Querystring: { id?: string } }>(
    `${BASE}/getStatus`,
    {
      config: { access: 'read' },
      schema: {
        summary: "TAO's getStatus: a task's public status",
        tags: ['tao'],
        operationId: 'taoGetStatus',
        querystring: ID_QUERY,
        response: taoResponses({ type: 'string', enum: [...PUBLIC_STATUSES] }),
      },
    },
    (request, reply) => answer(request, reply, (task) => task.publicStatus),
  );
}

function taoError(reply: FastifyReply, code: number, message: string) {
  return reply
    .code(code)
    .send({ success: false, errorCode: code, errorMsg: message, version: '1' });
}
