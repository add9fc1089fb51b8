import Fastify, { type FastifyInstance } from 'fastify';

import { BODY_LIMIT_BYTES, sendError, toApiError } from '../src/http/errors.js';
import type { Logger } from '../src/log/logger.js';

export interface HttpServerOptions {
  host: string;
  port: number;
  logger: Logger;
  /** The body of GET /healthz. */
  health: () => unknown;
  /** Further routes: metrics, the API, the web page. */
  plugins?: ((app: FastifyInstance) => void | Promise<void>)[];
}

/** The supervisor's HTTP server: /healthz here; metrics, the API and the web page join it. */
export async function createHttpServer(options: HttpServerOptions): Promise<FastifyInstance> {
  const app = Fastify({
    logger: false,
    bodyLimit: BODY_LIMIT_BYTES,
    // A URL the router refuses (a path parameter past its length, a bad %-escape) is answered
    // before any error handler runs; this gives it the API's error shape too.
    frameworkErrors: (error, _request, reply) => sendError(reply, toApiError(error)),
  });
  app.get('/healthz', async () => options.health());
  for (const plugin of options.plugins ?? []) await plugin(app);
  return app;
}

export async function listen(app: FastifyInstance, options: HttpServerOptions): Promise<string> {
  const address = await app.listen({ host: options.host, port: options.port });
  options.logger.info({ address }, 'HTTP server listening');
  return address;
}
