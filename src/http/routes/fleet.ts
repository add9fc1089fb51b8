import type { FastifyInstance } from 'fastify';

import { actorOf, type ApiOptions } from '../api.js';
import { errorResponses, ref } from '../schemas.js';

export async function fleetRoutes(app: FastifyInstance, { control }: ApiOptions): Promise<void> {
  app.get(
    '/api/v1/fleet',
    {
      config: { access: 'read' },
      schema: {
        summary: "The supervisor's workers and whether the fleet is paused",
        tags: ['fleet'],
        operationId: 'getFleet',
        response: { 200: ref('Fleet'), ...errorResponses(401) },
      },
    },
    async () => control.fleet(),
  );

  for (const action of ['pause', 'resume'] as const) {
    app.post(
      `/api/v1/fleet/${action}`,
      {
        config: { access: 'admin' },
        schema: {
          summary:
            action === 'pause'
              ? 'Pause the fleet, as SIGUSR2: no task starts, running ones finish'
              : 'Resume the fleet, as SIGCONT',
          tags: ['fleet'],
          operationId: `${action}Fleet`,
          response: { 200: ref('Fleet'), ...errorResponses(401, 403) },
        },
      },
      async (request) => {
        if (action === 'pause') control.pauseFleet(actorOf(request));
        else control.resumeFleet(actorOf(request));
        return control.fleet();
      },
    );
  }
}
