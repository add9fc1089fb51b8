import type { RouteOptions } from 'fastify';

import type { Schema } from './schemas.js';

/** What the OpenAPI document needs of one route, gathered as routes are added. */
export interface DocumentedRoute {
  method: string;
  url: string;
  schema: Schema;
  public: boolean;
  /** Responses whose body is not JSON, such as a downloaded file. */
  rawResponses?: Record<string, unknown>;
}

/** Collects the routes that carry a schema, through fastify's onRoute hook. */
export class RouteCatalog {
  readonly routes: DocumentedRoute[] = [];

  add(route: RouteOptions): void {
    if (!route.schema || route.method === 'HEAD') return;
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    const config = (route.config ?? {}) as {
      access?: string;
      rawResponses?: Record<string, unknown>;
    };
    for (const method of methods) {
      if (method === 'HEAD') continue;
      this.routes.push({
        method: method.toLowerCase(),
        url: route.url,
        schema: route.schema as Schema,
        public: config.access === undefined,
        rawResponses: config.rawResponses,
      });
    }
  }
}

/** JSON Schema of a route, with `Name#` references pointed at the document's components. */
function toDocument(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(toDocument);
  if (typeof schema !== 'object' || schema === null) return schema;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(schema)) {
    if (key === '$id') continue;
    if (key === '$ref' && typeof value === 'string' && value.endsWith('#'))
      out[key] = `#/components/schemas/${value.slice(0, -1)}`;
    else out[key] = toDocument(value);
  }
  return out;
}

function parameters(schema: Schema | undefined, where: 'path' | 'query'): unknown[] {
  const properties = (schema?.properties ?? {}) as Record<string, Schema>;
  const required = (schema?.required ?? []) as string[];
  return Object.entries(properties).map(([name, property]) => ({
    name,
    in: where,
    required: where === 'path' || required.includes(name),
    description: property.description,
    schema: toDocument({ ...property, description: undefined }),
  }));
}

function operation(route: DocumentedRoute): Record<string, unknown> {
  const { schema } = route;
  const responses: Record<string, unknown> = {};
  for (const [code, body] of Object.entries((schema.response ?? {}) as Record<string, Schema>)) {
    responses[code] = {
      description:
        (body.description as string | undefined) ?? (code.startsWith('2') ? 'Success' : 'Error'),
      content: { 'application/json': { schema: toDocument(body) } },
    };
  }
  Object.assign(responses, route.rawResponses ?? {});
  const op: Record<string, unknown> = {
    summary: schema.summary,
    description: schema.description,
    tags: schema.tags,
    operationId: schema.operationId,
    parameters: [
      ...parameters(schema.params as Schema | undefined, 'path'),
      ...parameters(schema.querystring as Schema | undefined, 'query'),
    ],
    responses,
  };
  if (schema.body) {
    op.requestBody = {
      required: true,
      content: { 'application/json': { schema: toDocument(schema.body) } },
    };
  }
  if (route.public) op.security = [];
  return op;
}

/** The OpenAPI 3.1 document of the routes, shared shapes under components. */
export function openApiDocument(catalog: RouteCatalog, shared: Schema[]): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of catalog.routes) {
    const path = route.url.replace(/:([A-Za-z]+)/g, '{$1}');
    (paths[path] ??= {})[route.method] = operation(route);
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'taskq',
      version: '1',
      description:
        "The REST API of taskq's supervisor: tasks, queues, the worker fleet, and TAO's TaskQueueRestApi.",
    },
    servers: [{ url: '/' }],
    security: [{ bearer: [] }],
    paths,
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
      schemas: Object.fromEntries(
        shared.map((schema) => [schema.$id as string, toDocument(schema)]),
      ),
    },
  };
}
