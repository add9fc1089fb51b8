import type { FastifyInstance } from 'fastify';

import { actorOf, type ApiOptions } from '../api.js';
import { ApiError } from '../errors.js';
import { errorResponses, ref, type Schema } from '../schemas.js';

const QUEUE_PARAMS: Schema = {
  type: 'object',
  required: ['name'],
  properties: { name: { type: 'string', description: 'A configured queue.' } },
};

export async function queueRoutes(app: FastifyInstance, { control }: ApiOptions): Promise<void> {
  const findQueue = (name: string) => {
    const queue = control.queues().find((candidate) => candidate.name === name);
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
        response: {
          200: {
            type: 'object',
            required: ['queues'],
            properties: { queues: { type: 'array', items: ref('Queue') } },
          },
          ...errorResponses(401),
        },
      },
    },
    async () => ({ queues: control.queues() }),
  );

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
      findQueue(request.params.name);
      await control.setQueueWeight(request.params.name, request.body.weight, actorOf(request));
      return findQueue(request.params.name);
    },
  );
}
