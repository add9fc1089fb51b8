import type { FastifyInstance, FastifyRequest } from 'fastify';

import type { Logger } from '../log/logger.js';
import type { Runtime } from '../runtime.js';
import { loadHandlers } from '../tasks/handlers.js';
import { authorize, type Access, type Principal, type TokenSet } from './auth.js';
import { installErrorHandling } from './errors.js';
import { openApiDocument, RouteCatalog } from './openapi.js';
import { fleetRoutes } from './routes/fleet.js';
import { queueRoutes } from './routes/queues.js';
import { taoRoutes } from './routes/tao.js';
import { stuckRoutes } from './routes/stuck.js';
import { taskRoutes } from './routes/tasks.js';
import { errorResponses, SHARED_SCHEMAS } from './schemas.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Who may call the route; routes without it need no token (health, metrics, the page). */
    access?: Access;
    /** Responses that are not JSON, for the OpenAPI document. */
    rawResponses?: Record<string, unknown>;
  }
  interface FastifyRequest {
    principal: Principal;
  }
  /** What the OpenAPI document shows of a route. */
  interface FastifySchema {
    summary?: string;
    description?: string;
    tags?: string[];
    operationId?: string;
  }
}

/** A worker of the fleet, as the API shows it. */
export interface WorkerView {
  id: string;
  slot: number;
  pid: number | null;
  state: string;
  rssBytes: number;
  tasksDone: number;
  running: number;
  restarts: number;
}

export interface FleetView {
  pid: number;
  isolation: 'process' | 'thread';
  paused: boolean;
  stopping: boolean;
  workers: WorkerView[];
}

export interface QueueSample {
  at: string;
  waiting: number | null;
  inFlight: number | null;
  ended: number;
}

export interface QueueView {
  name: string;
  broker: string;
  weight: { configured: number; effective: number };
  waiting: number | null;
  inFlight: number | null;
  running: number;
  paused: boolean;
  history: QueueSample[];
}

/** What the API asks of the supervisor; everything else it reads from the task log. */
export interface SupervisorControl {
  fleet(): FleetView;
  /** As SIGUSR2 and SIGCONT. */
  pauseFleet(actor: string): void;
  resumeFleet(actor: string): void;
  queues(): QueueView[];
  /** Writes the weight into the configuration file and applies it as SIGHUP would. */
  setQueueWeight(name: string, weight: number, actor: string): Promise<void>;
}

export interface ApiOptions {
  runtime: Runtime;
  control: SupervisorControl;
  tokens: TokenSet;
  logger: Logger;
}

/** What the route modules get: the options, and the runtime with the handlers loaded. */
export interface RouteContext extends ApiOptions {
  /**
   * The runtime with the handlers module loaded, for enqueues and reruns: the dispatcher needs
   * a handler's queue choice, category, retry limit and parameter check, as `taskq enqueue`
   * does. A supervisor of worker processes runs no handler itself, so the module is loaded on
   * the first enqueue through the API.
   */
  withHandlers(): Promise<Runtime>;
}

function handlersLoader(runtime: Runtime): () => Promise<Runtime> {
  let loaded: Promise<Runtime> | null = null;
  return () => {
    if (runtime.handlers.names().length > 0) return Promise.resolve(runtime);
    loaded ??= loadHandlers(runtime.config.handlers).then((handlers) => ({ ...runtime, handlers }));
    loaded.catch(() => (loaded = null));
    return loaded;
  };
}

/** Who did it, in the task log's events. */
export function actorOf(request: FastifyRequest): string {
  return request.principal.owner ?? 'api';
}

/**
 * The REST API under /api/v1 and TAO's two endpoints, on the supervisor's server. Each route
 * states its access in its config; the hook here authenticates the caller before validation,
 * so that a request without a token learns nothing about the shapes the API expects.
 */
export async function registerApi(app: FastifyInstance, options: ApiOptions): Promise<void> {
  const catalog = new RouteCatalog();
  app.addHook('onRoute', (route) => catalog.add(route));
  for (const schema of SHARED_SCHEMAS) app.addSchema(schema);
  installErrorHandling(app, options.logger);

  app.decorateRequest('principal', null as unknown as Principal);
  app.addHook('onRequest', async (request) => {
    const access = request.routeOptions.config.access;
    if (!access) return;
    request.principal = options.tokens.principal(request);
    authorize(request.principal, access);
  });
  // A POST without a body means the same as one with an empty object.
  app.addHook('preValidation', async (request) => {
    if (request.method === 'POST' && request.body === undefined) request.body = {};
  });

  const context: RouteContext = { ...options, withHandlers: handlersLoader(options.runtime) };
  await taskRoutes(app, context);
  await fleetRoutes(app, context);
  await queueRoutes(app, context);
  await stuckRoutes(app, context);
  await taoRoutes(app, context);

  app.get(
    '/api/v1/me',
    {
      config: { access: 'read' },
      schema: {
        summary: 'The caller: its role and owner (reader: a server without tokens, read-only)',
        tags: ['auth'],
        operationId: 'whoAmI',
        response: {
          200: {
            type: 'object',
            required: ['role', 'owner'],
            properties: {
              role: { type: 'string', enum: ['admin', 'user', 'reader'] },
              owner: { type: ['string', 'null'] },
            },
          },
          ...errorResponses(401),
        },
      },
    },
    async (request) => request.principal,
  );

  let document: Record<string, unknown> | null = null;
  app.get('/api/v1/openapi.json', async (_request, reply) => {
    document ??= openApiDocument(catalog, SHARED_SCHEMAS);
    return reply.type('application/json; charset=utf-8').send(document);
  });
}
