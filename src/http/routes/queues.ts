import type { FastifyInstance } from 'fastify';

import {
  isQueuePaused,
  pausedQueues,
  pauseQueues,
  resumeQueues,
  type PauseStore,
} from '../../queues/pauses.js';
import { actorOf, type ApiOptions } from '../api.js';
import { ApiError } from '../errors.js';
import { errorResponses, ref, type Schema } from '../schemas.js';

const QUEUE_LIST: Schema = {
  type: 'object',
  required: ['queues', 'allPaused'],
  properties: {
    queues: { type: 'array', items: ref('Queue') },
    allPaused: { type: 'boolean', description: 'Whether every queue is paused at once.' },
  },
};

const QUEUE_PARAMS: Schema = {
  type: 'object',
  required: ['name'],
  properties: { name: { type: 'string', description: 'A configured queue.' } },
};

export async function queueRoutes(app: FastifyInstance, context: ApiOptions): Promise<void> {
  const { control } = context;
  const store: PauseStore = context.runtime.queries;
  const configured = () => control.queues().map((queue) => queue.name);

  /** The queues with their pauses, which live in the database for every supervisor. */
  const withPauses = async () => {
    const state = await pausedQueues(store);
    const queues = control
      .queues()
      .map((queue) => ({ ...queue, paused: isQueuePaused(state, queue.name) }));
    return { queues, allPaused: state.all !== null };
  };

  const findQueue = async (name: string) => {
    const queue = (await withPauses()).queues.find((candidate) => candidate.name === name);
    if (!queue) {
      const names = control.queues().map((q) => q.name);
      throw new ApiError(
        404,
        'QUEUE_NOT_FOUND',
        `No queue "${name}"; served queues: ${names.join(', ')}`,
      );
    }
    return queue;
  };

  app.get(
    '/api/v1/queues',
    {
      config: { access: 'read' },
      schema: {
        summary: 'The queues: depth, in flight, weights, and samples of the last minutes',
        tags: ['queues'],
        operationId: 'listQueues',
        response: { 200: QUEUE_LIST, ...errorResponses(401) },
      },
    },
    withPauses,
  );

  for (const action of ['pause', 'resume'] as const) {
    const apply = action === 'pause' ? pauseQueues : resumeQueues;
    app.post(
      `/api/v1/queues/${action}`,
      {
        config: { access: 'admin' },
        schema: {
          summary:
            action === 'pause'
              ? 'Pause every queue for every worker on the database, until resumed'
              : 'Resume every queue, including those paused one by one',
          tags: ['queues'],
          operationId: `${action}AllQueues`,
          response: { 200: QUEUE_LIST, ...errorResponses(401, 403) },
        },
      },
      async (request) => {
        await apply(store, 'all', actorOf(request));
        return withPauses();
      },
    );
    app.post<{ Params: { name: string } }>(
      `/api/v1/queues/:name/${action}`,
      {
        config: { access: 'admin' },
        schema: {
          summary:
            action === 'pause'
              ? 'Pause one queue: no task starts on it, running ones finish; kept in the database'
              : 'Resume one queue (refused with 409 while all queues are paused)',
          tags: ['queues'],
          operationId: `${action}Queue`,
          params: QUEUE_PARAMS,
          response: { 200: ref('Queue'), ...errorResponses(401, 403, 404, 409) },
        },
      },
      async (request) => {
        await findQueue(request.params.name);
        await apply(store, [request.params.name], actorOf(request), { configured: configured() });
        return findQueue(request.params.name);
      },
    );
  }

  app.patch<{ Params: { name: string }; Body: { weight: number } }>(
    '/api/v1/queues/:name',
    {
      config: { access: 'admin' },
      schema: {
        summary: "Change a queue's weight: written to the configuration file and applied at once",
        tags: ['queues'],
        operationId: 'updateQueue',
        params: QUEUE_PARAMS,
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['weight'],
          properties: { weight: { type: 'number', minimum: 0, maximum: 1_000_000 } },
        },
        response: { 200: ref('Queue'), ...errorResponses(400, 401, 403, 404, 409) },
      },
    },
    async (request) => {
      await findQueue(request.params.name);
      await control.setQueueWeight(request.params.name, request.body.weight, actorOf(request));
      return findQueue(request.params.name);
    },
  );
}
