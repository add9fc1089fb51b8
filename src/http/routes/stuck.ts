import type { FastifyInstance } from 'fastify';

import { TaskOperations } from '../../tasklog/operations.js';
import {
  DEFAULT_STUCK_AGE_SECONDS,
  MAX_STUCK_TASKS,
  MIN_STUCK_AGE_SECONDS,
  STUCK_STATUSES,
  type StuckStatus,
} from '../../tasklog/stuck.js';
import { actorOf, type RouteContext } from '../api.js';
import { ownerScope } from '../auth.js';
import { errorResponses, type Schema } from '../schemas.js';

/** The options of `taskq stuck summary|restart`. */
const FILTER: Record<string, Schema> = {
  queue: { type: 'string', minLength: 1, description: 'The queue to look at.' },
  ageSeconds: {
    type: 'number',
    minimum: MIN_STUCK_AGE_SECONDS,
    default: DEFAULT_STUCK_AGE_SECONDS,
    description: 'Tasks unchanged for at least this long.',
  },
  names: {
    type: 'string',
    minLength: 1,
    description: 'Only these task names (a whitelist), separated by commas.',
  },
  status: {
    type: 'string',
    pattern: `^(${STUCK_STATUSES.join('|')})(,(${STUCK_STATUSES.join('|')}))*$`,
    description: `Only these statuses, separated by commas (default ${STUCK_STATUSES.join(',')}).`,
  },
  limit: { type: 'integer', minimum: 1, maximum: MAX_STUCK_TASKS, default: MAX_STUCK_TASKS },
};

interface FilterInput {
  queue: string;
  ageSeconds: number;
  names?: string;
  status?: string;
  limit: number;
}

const STUCK_ENTRY: Schema = {
  type: 'object',
  required: ['id', 'name', 'label', 'queue', 'owner', 'status', 'ageSeconds', 'message', 'orphan'],
  properties: {
    id: { type: 'string' },
    name: { type: 'string' },
    label: { type: 'string' },
    queue: { type: 'string' },
    owner: { type: 'string' },
    status: { type: 'string', enum: [...STUCK_STATUSES] },
    ageSeconds: { type: 'integer' },
    attempts: { type: 'integer' },
    maxAttempts: { type: 'integer' },
    worker: { type: ['string', 'null'] },
    leaseLive: { type: 'boolean' },
    message: { type: 'string', enum: ['present', 'missing', 'unknown'] },
    orphan: { type: 'boolean' },
  },
};

function filterOf(input: FilterInput) {
  return {
    queue: input.queue,
    ageSeconds: input.ageSeconds,
    limit: input.limit,
    names: input.names?.split(',').map((name) => name.trim()),
    status: input.status?.split(',') as StuckStatus[] | undefined,
  };
}

export async function stuckRoutes(app: FastifyInstance, context: RouteContext): Promise<void> {
  app.get<{ Querystring: FilterInput }>(
    '/api/v1/stuck',
    {
      config: { access: 'read' },
      schema: {
        summary: "A queue's stuck tasks, each with whether the broker still holds its message",
        tags: ['stuck'],
        operationId: 'stuckSummary',
        querystring: {
          type: 'object',
          additionalProperties: false,
          required: ['queue'],
          properties: FILTER,
        },
        response: {
          200: {
            type: 'object',
            required: ['queue', 'ageSeconds', 'tasks', 'totals'],
            properties: {
              queue: { type: 'string' },
              ageSeconds: { type: 'number' },
              tasks: { type: 'array', items: STUCK_ENTRY },
              totals: {
                type: 'object',
                required: ['tasks', 'orphans', 'live', 'byStatus'],
                properties: {
                  tasks: { type: 'integer' },
                  orphans: { type: 'integer' },
                  live: { type: 'integer' },
                  byStatus: { type: 'object', additionalProperties: { type: 'integer' } },
                },
              },
            },
          },
          ...errorResponses(400, 401),
        },
      },
    },
    async (request) => {
      const operations = new TaskOperations(context.runtime, actorOf(request));
      const owner = ownerScope(request.principal);
      return operations.stuckSummary({ ...filterOf(request.query), owner });
    },
  );

  app.post<{ Body: FilterInput & { dryRun: boolean; force: boolean } }>(
    '/api/v1/stuck/restart',
    {
      config: { access: 'admin' },
      schema: {
        summary: "Restart a queue's stuck tasks under the same ids",
        tags: ['stuck'],
        operationId: 'restartStuck',
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['queue'],
          properties: {
            ...FILTER,
            dryRun: { type: 'boolean', default: false, description: 'Say what would happen.' },
            force: {
              type: 'boolean',
              default: false,
              description: 'Also tasks running on a live worker, aborted there first.',
            },
          },
        },
        response: {
          200: {
            type: 'object',
            required: ['outcomes'],
            properties: {
              outcomes: {
                type: 'array',
                items: {
                  type: 'object',
                  required: ['id', 'name', 'action', 'aborted'],
                  properties: {
                    id: { type: 'string' },
                    name: { type: 'string' },
                    action: { type: 'string' },
                    aborted: { type: 'boolean' },
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
      const operations = new TaskOperations(context.runtime, actorOf(request));
      const { dryRun, force } = request.body;
      return {
        outcomes: await operations.restartStuck({ ...filterOf(request.body), dryRun, force }),
      };
    },
  );
}
