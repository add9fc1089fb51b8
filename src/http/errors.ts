import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import pg from 'pg';

import {
  TaskNotFoundError,
  TaskqError,
  TransitionRefusedError,
  UnknownTaskError,
  UsageError,
} from '../errors.js';
import type { Logger } from '../log/logger.js';

/** An answer of the API other than success: an HTTP status, a stable code, a message, details. */
export class ApiError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export function badRequest(field: string, message: string): ApiError {
  return new ApiError(400, 'BAD_REQUEST', message, { field });
}

/** The errors of the task log and the client, as the API answers them. */
const TASKQ_ERRORS: Record<string, { status: number; field?: string }> = {
  UNKNOWN_TASK: { status: 400, field: 'name' },
  UNKNOWN_QUEUE: { status: 400, field: 'queue' },
  PARAMETERS_INVALID: { status: 400, field: 'parameters' },
  LABEL_INVALID: { status: 400, field: 'label' },
  MESSAGE_TOO_LARGE: { status: 400, field: 'parameters' },
  DELAY_INVALID: { status: 400, field: 'delaySeconds' },
  CONFIG_INVALID: { status: 400 },
};

/** Turns anything thrown in a route into `{error: {code, message, details}}` and a status. */
export function toApiError(error: unknown): ApiError {
  if (error instanceof ApiError) return error;
  if (error instanceof TaskNotFoundError) return new ApiError(404, error.code, error.message);
  if (error instanceof TransitionRefusedError) {
    const forcible = error.message.includes('--force');
    return new ApiError(
      409,
      error.code,
      error.message.replace('with --force', 'with "force": true'),
      forcible ? { hint: 'repeat the request with {"force": true}', force: true } : {},
    );
  }
  // The task log's checks of a filter name the field first: "limit must be ...".
  if (error instanceof UsageError) {
    const field = /^([A-Za-z]+) /.exec(error.message)?.[1] ?? 'request';
    return new ApiError(400, 'BAD_REQUEST', error.message, { field });
  }
  if (error instanceof UnknownTaskError)
    return new ApiError(400, error.code, error.message, { field: 'name' });
  if (error instanceof TaskqError) {
    const known = TASKQ_ERRORS[error.code];
    if (known)
      return new ApiError(
        known.status,
        error.code,
        error.message,
        known.field ? { field: known.field } : {},
      );
  }
  // PostgreSQL refusing a value of the request (a NUL character, a duration out of range) is the
  // request's fault, whichever field the route's schema let through.
  if (error instanceof pg.DatabaseError && error.code?.startsWith('22')) {
    return new ApiError(
      400,
      'BAD_REQUEST',
      `A value of the request is out of what the task log can store or compare: ${error.message}`,
    );
  }
  const fastify = error as Partial<FastifyError>;
  if (fastify.validation) {
    const first = fastify.validation[0];
    const missing = (first?.params as { missingProperty?: string } | undefined)?.missingProperty;
    const where = fastify.validationContext ?? 'body';
    const path = (first?.instancePath ?? '').replace(/^\//, '').replace(/\//g, '.');
    const field = [path, missing].filter(Boolean).join('.');
    const subject = field ? `${where}.${field}` : where;
    const message = missing
      ? `${subject} is required`
      : `${subject} ${first?.message ?? 'is invalid'}`;
    return new ApiError(400, 'BAD_REQUEST', message, { field: field || where, in: where });
  }
  if (fastify.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
    return new ApiError(
      413,
      'BODY_TOO_LARGE',
      `The request body is too large: this server reads at most ${BODY_LIMIT_BYTES} bytes ` +
        '(1 MiB). Send large data as a reference (a URL, a file path) in the parameters.',
    );
  }
  if (
    typeof fastify.statusCode === 'number' &&
    fastify.statusCode >= 400 &&
    fastify.statusCode < 500
  ) {
    return new ApiError(
      fastify.statusCode,
      fastify.code ?? 'BAD_REQUEST',
      fastify.message ?? 'bad request',
    );
  }
  return new ApiError(500, 'INTERNAL', 'The server failed to answer; its log has the cause');
}

/** The largest request body the HTTP server reads. */
export const BODY_LIMIT_BYTES = 1024 * 1024;

export function sendError(reply: FastifyReply, error: ApiError): FastifyReply {
  return reply
    .code(error.statusCode)
    .type('application/json; charset=utf-8')
    .send({ error: { code: error.code, message: error.message, details: error.details } });
}

/** TAO's endpoints answer errors in TAO's envelope, whatever raised them. */
export const TAO_PREFIX = '/taoTaskQueue/';

/** Every error of the server in the API's one shape; only unexpected ones are logged. */
export function installErrorHandling(app: FastifyInstance, logger: Logger): void {
  app.setErrorHandler((error: unknown, request: FastifyRequest, reply: FastifyReply) => {
    const answer = toApiError(error);
    if (request.url.startsWith(TAO_PREFIX)) {
      return reply.code(answer.statusCode).send({
        success: false,
        errorCode: answer.statusCode,
        errorMsg: answer.message,
        version: '1',
      });
    }
    if (answer.statusCode >= 500)
      logger.error(
        { err: error, method: request.method, route: request.routeOptions.url },
        'API request failed',
      );
    return sendError(reply, answer);
  });
  app.setNotFoundHandler((request, reply) =>
    sendError(
      reply,
      new ApiError(404, 'NOT_FOUND', `No route ${request.method} ${request.url.split('?')[0]}`),
    ),
  );
}
