import { readFileSync } from 'node:fs';
import path from 'node:path';

import { Ajv2020 } from 'ajv/dist/2020.js';

import { ROOT } from '../support/paths.js';
import { getAt, pathText, setAt, type RawConfig, type Segment } from './settings.js';

export type JsonSchema = Record<string, unknown>;

export const SCHEMA_FILE = path.join(ROOT, 'config/taskq.schema.json');
export const SHIPPED_CONFIG_FILE = path.join(ROOT, 'config/taskq.json');

export function readSchema(): JsonSchema {
  return JSON.parse(readFileSync(SCHEMA_FILE, 'utf8')) as JsonSchema;
}

/** Compiles the schema in Ajv's strict mode, which also refuses unknown keywords. */
export function compileSchema(schema: JsonSchema = readSchema()) {
  const ajv = new Ajv2020({ strict: true, allErrors: true, allowUnionTypes: true });
  return ajv.compile(schema);
}

/** A property the schema declares, with a configuration to try its values in. */
export interface SchemaSetting {
  /** The validator's path, with the broker variant in braces: `queues[0].broker{type=sqs}.fifo`. */
  label: string;
  path: Segment[];
  /** A valid configuration around the setting, which does not set the setting itself. */
  base: RawConfig;
  schema: JsonSchema;
  required: boolean;
}

/** An object the schema describes property by property. */
export interface SchemaSection {
  label: string;
  keys: string[];
  closed: boolean;
}

/**
 * Visits every property of the schema, following `$ref`s, list items and each object variant
 * of a `oneOf` (a variant is entered with its `const` properties set, as `{"type": "sqs"}`).
 */
export function walkSchema(root: JsonSchema, base: RawConfig) {
  const settings: SchemaSetting[] = [];
  const sections: SchemaSection[] = [];
  const deref = (node: unknown) => dereference(root, node);

  const visit = (node: JsonSchema, at: Segment[], label: string, around: RawConfig): void => {
    for (const branch of alternatives(node).map(deref)) {
      const properties = propertiesOf(branch);
      if (!properties) continue;
      const fixed = Object.fromEntries(
        Object.entries(properties)
          .map(([key, child]) => [key, deref(child).const] as const)
          .filter(([, value]) => value !== undefined),
      );
      const tag = Object.entries(fixed).map(([key, value]) => `${key}=${String(value)}`);
      visit(branch, at, `${label}{${tag.join(',')}}`, setAt(around, at, fixed));
    }

    const properties = propertiesOf(node);
    if (properties) {
      const required = Array.isArray(node.required) ? (node.required as string[]) : [];
      sections.push({
        label: label || '(top level)',
        keys: Object.keys(properties),
        closed: node.additionalProperties === false,
      });
      for (const [key, child] of Object.entries(properties)) {
        const childLabel = label ? `${label}.${key}` : key;
        const schema = deref(child);
        settings.push({
          label: childLabel,
          path: [...at, key],
          base: around,
          schema,
          required: required.includes(key),
        });
        visit(schema, [...at, key], childLabel, around);
      }
    }

    if (typeof node.items === 'object' && node.items !== null) {
      const first = [...at, 0];
      const withItem = getAt(around, first) === undefined ? setAt(around, first, {}) : around;
      visit(deref(node.items), first, `${label}[0]`, withItem);
    }
  };

  visit(deref(root), [], '', base);
  return { settings, sections };
}

/** Values the schema allows for a setting: its default, examples, constants and bounds. */
export function validSamples(schema: JsonSchema): unknown[] {
  const values: unknown[] = [];
  if ('default' in schema) values.push(schema.default);
  if ('const' in schema) values.push(schema.const);
  for (const list of [schema.examples, schema.enum]) if (Array.isArray(list)) values.push(...list);
  for (const branch of alternatives(schema))
    if (Array.isArray(branch.enum)) values.push(...(branch.enum as unknown[]));

  const types = typesOf(schema);
  if (types.includes('null')) values.push(null);
  if (types.includes('number') || types.includes('integer')) {
    const { minimum, maximum } = bounds(schema);
    if (minimum !== undefined) values.push(minimum);
    // No maximum in the schema: the validator must take a large value too.
    values.push(maximum ?? 1_000_000_000);
    if (!types.includes('integer') && minimum !== undefined && maximum !== undefined)
      values.push((minimum + maximum) / 2 + 0.125);
  }
  return [...new Map(values.map((value) => [JSON.stringify(value), value])).values()];
}

/** Values the schema refuses for a setting, each breaking one of its keywords. */
export function invalidSamples(schema: JsonSchema): unknown[] {
  const values: unknown[] = [];
  const hasChoices =
    'const' in schema ||
    Array.isArray(schema.enum) ||
    alternatives(schema).some((branch) => Array.isArray(branch.enum));
  if (hasChoices) values.push('no-such-choice');

  const types = typesOf(schema);
  if (types.includes('number') || types.includes('integer')) {
    const step = types.includes('integer') ? 1 : 0.001;
    const { minimum, maximum } = bounds(schema);
    if (minimum !== undefined) values.push(minimum - step);
    if (maximum !== undefined) values.push(maximum + step);
    if (types.includes('integer')) values.push((minimum ?? 0) + 1.5);
    values.push('7');
  }
  if (types.includes('string')) {
    if (typeof schema.minLength === 'number' && schema.minLength > 0) values.push('');
    if (typeof schema.pattern === 'string') {
      const pattern = new RegExp(schema.pattern);
      values.push(['-', '9', 'A b', 'Ω'].find((candidate) => !pattern.test(candidate)));
    }
    values.push(5);
  }
  if (types.includes('boolean')) values.push('yes');
  if (types.includes('object') || types.includes('array')) values.push(5);
  if (typeof schema.minItems === 'number' && schema.minItems > 0) values.push([]);
  return values.filter((value) => value !== undefined);
}

/** The constants and enums the schema allows at each path, variants merged. */
export function schemaChoices(settings: readonly SchemaSetting[]): Map<string, string[]> {
  const choices = new Map<string, Set<string>>();
  for (const setting of settings) {
    const listed = [
      setting.schema.const,
      ...(Array.isArray(setting.schema.enum) ? setting.schema.enum : []),
    ];
    const strings = listed.filter((value): value is string => typeof value === 'string');
    if (strings.length === 0) continue;
    const key = pathText(setting.path);
    const set = choices.get(key) ?? new Set<string>();
    for (const value of strings) set.add(value);
    choices.set(key, set);
  }
  return new Map([...choices].map(([key, set]) => [key, [...set].sort()]));
}

function dereference(root: JsonSchema, node: unknown): JsonSchema {
  const schema = node as JsonSchema;
  if (typeof schema.$ref !== 'string') return schema;
  const target = schema.$ref
    .replace(/^#\//, '')
    .split('/')
    .reduce<unknown>((value, key) => (value as JsonSchema)[key], root);
  const siblings: JsonSchema = { ...schema };
  delete siblings.$ref;
  return { ...dereference(root, target), ...siblings };
}

function alternatives(schema: JsonSchema): JsonSchema[] {
  const list = schema.oneOf ?? schema.anyOf;
  return Array.isArray(list) ? (list as JsonSchema[]) : [];
}

function propertiesOf(schema: JsonSchema): Record<string, unknown> | undefined {
  const properties = schema.properties;
  return typeof properties === 'object' && properties !== null
    ? (properties as Record<string, unknown>)
    : undefined;
}

function typesOf(schema: JsonSchema): string[] {
  if (Array.isArray(schema.type)) return schema.type as string[];
  return typeof schema.type === 'string' ? [schema.type] : [];
}

function bounds(schema: JsonSchema): { minimum?: number; maximum?: number } {
  const number = (value: unknown) => (typeof value === 'number' ? value : undefined);
  return { minimum: number(schema.minimum), maximum: number(schema.maximum) };
}
