import assert from 'node:assert/strict';

import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';

type Json = Record<string, unknown>;

interface Operation {
  method: string;
  template: string;
  pattern: RegExp;
  operation: Json;
}

/**
 * Checks answers of the API against its own OpenAPI document: each response's body against the
 * schema the document gives for that route and status. Keeps a list of the operations seen, so
 * that a test can tell which documented operations it never called.
 */
export class OpenApiCheck {
  private readonly ajv = new Ajv2020({ strict: false, allErrors: true });
  private readonly operations: Operation[] = [];
  private readonly compiled = new Map<unknown, ValidateFunction>();
  readonly seen = new Set<string>();

  constructor(readonly document: Json) {
    this.ajv.addFormat('uuid', /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i);
    this.ajv.addFormat('date-time', (value: string) => !Number.isNaN(Date.parse(value)));
    for (const [template, methods] of Object.entries(document.paths as Json)) {
      const pattern = new RegExp(`^${template.replace(/\{[^}]+\}/g, '[^/]+')}$`);
      for (const [method, operation] of Object.entries(methods as Json))
        this.operations.push({ method, template, pattern, operation: operation as Json });
    }
  }

  /** Every documented operation, as "get /api/v1/tasks/{id}". */
  get all(): string[] {
    return this.operations.map((op) => `${op.method} ${op.template}`);
  }

  find(method: string, path: string): Operation | undefined {
    const matches = this.operations.filter(
      (op) => op.method === method.toLowerCase() && op.pattern.test(path),
    );
    // A literal segment wins over a parameter: /tasks/archive over /tasks/{id}.
    return matches.sort((a, b) => count(a.template) - count(b.template))[0];
  }

  /** Asserts that `body`, answered with `status` to `method path`, is what the document says. */
  check(method: string, path: string, status: number, body: unknown, type: string | null): void {
    const op = this.find(method, path.split('?')[0]!);
    // A path no route serves is a 404 in the error shape, and in no operation of the document.
    if (!op && status === 404) return;
    assert.ok(op, `${method} ${path} is in the OpenAPI document`);
    this.seen.add(`${op.method} ${op.template}`);
    const responses = op.operation.responses as Json;
    const response = responses[String(status)] as Json | undefined;
    assert.ok(response, `the document lists status ${status} for ${op.method} ${op.template}`);
    const content = response.content as Record<string, { schema: unknown }>;
    if (!content['application/json']) return;
    assert.match(type ?? '', /^application\/json/, `${method} ${path} answers JSON`);
    const schema = content['application/json'].schema;
    let validate = this.compiled.get(schema);
    if (!validate) {
      validate = this.ajv.compile({
        ...(schema as Json),
        components: this.document.components,
      });
      this.compiled.set(schema, validate);
    }
    assert.ok(
      validate(body),
      `${method} ${path} ${status}: ${JSON.stringify(validate.errors)} in ${JSON.stringify(body).slice(0, 400)}`,
    );
  }
}

function count(template: string): number {
  return (template.match(/\{/g) ?? []).length;
}
