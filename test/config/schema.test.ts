import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { test } from 'node:test';

import { loadConfig } from '../../src/config/load.js';
import { EXAMPLE_HANDLERS, ROOT } from '../support/paths.js';
import {
  compileSchema,
  invalidSamples,
  readSchema,
  schemaChoices,
  SHIPPED_CONFIG_FILE,
  validSamples,
  walkSchema,
} from './schema-walk.js';
import { MINIMAL, pathText, problemsOf, resolve, setAt } from './settings.js';
import { walkValidator } from './validator-walk.js';

const schema = readSchema();
const { settings, sections } = walkSchema(schema, MINIMAL);

// Compiled on first use, so that a schema Ajv refuses fails its own test first.
let compiled: ReturnType<typeof compileSchema> | undefined;

function schemaAccepts(raw: unknown): boolean {
  compiled ??= compileSchema(schema);
  return compiled(raw);
}

/** The problem is reported at `at` itself or inside it (`at.key`, `at[0]`). */
function isAtOrBelow(problemPath: string, at: string): boolean {
  return (
    problemPath === at || (problemPath.startsWith(at) && /^[.[]/.test(problemPath.slice(at.length)))
  );
}

test('the schema compiles as JSON Schema 2020-12 in Ajv strict mode', () => {
  assert.equal(schema.$schema, 'https://json-schema.org/draft/2020-12/schema');
  assert.doesNotThrow(() => compileSchema(schema));
  assert.ok(settings.length > 30, `the walk found ${settings.length} settings`);
});

test('the shipped config/taskq.json names the schema and validates against it', () => {
  const shipped = JSON.parse(readFileSync(SHIPPED_CONFIG_FILE, 'utf8')) as Record<string, unknown>;
  assert.equal(shipped.$schema, './taskq.schema.json');
  assert.ok(schemaAccepts(shipped), JSON.stringify(compiled?.errors, null, 2));
});

test('the shipped config/taskq.json passes the validator, its handlers resolved beside it', () => {
  const config = loadConfig({ configPath: SHIPPED_CONFIG_FILE, env: {}, cwd: ROOT });

  assert.deepEqual(
    config.queues.map((queue) => [queue.name, queue.broker.type, queue.weight]),
    [
      ['priority', 'postgres', 90],
      ['default', 'postgres', 30],
      ['background', 'postgres', 10],
    ],
  );
  assert.equal(config.handlers, EXAMPLE_HANDLERS);
  assert.ok(existsSync(EXAMPLE_HANDLERS), `${EXAMPLE_HANDLERS} is built`);
});

test('the schema declares exactly the sections and keys the validator checks, each closed', () => {
  const fromValidator = walkValidator(MINIMAL).sections.map(({ label, keys }) => ({
    label,
    keys: [...keys].sort(),
  }));
  const fromSchema = sections.map(({ label, keys }) => ({ label, keys: [...keys].sort() }));

  const byLabel = (a: { label: string }, b: { label: string }) => a.label.localeCompare(b.label);
  assert.deepEqual(fromSchema.sort(byLabel), fromValidator.sort(byLabel));
  assert.deepEqual(
    sections.filter((section) => !section.closed).map((section) => section.label),
    [],
    'sections whose unknown keys the validator reports are closed with additionalProperties false',
  );
});

test('the choices the validator offers are the ones the schema lists', () => {
  const fromSchema = schemaChoices(settings);
  const fromValidator = walkValidator(MINIMAL).choices;

  assert.deepEqual([...fromValidator.keys()].sort(), [
    'http.tokens[0].role',
    'queues[0].broker.type',
    'strategy',
  ]);
  for (const [at, choices] of fromValidator)
    assert.deepEqual(fromSchema.get(at), [...choices].sort(), `choices of ${at}`);
});

test('every value the schema allows for a setting, the validator accepts', () => {
  const refused: string[] = [];
  for (const setting of settings) {
    for (const value of validSamples(setting.schema)) {
      const raw = setAt(setting.base, setting.path, value);
      assert.ok(
        schemaAccepts(raw),
        `the schema allows ${setting.label} = ${JSON.stringify(value)}`,
      );
      const problems = problemsOf(raw);
      if (problems.length > 0)
        refused.push(`${setting.label} = ${JSON.stringify(value)}: ${JSON.stringify(problems)}`);
    }
  }
  assert.deepEqual(refused, []);
});

test('every value the schema refuses for a setting, the validator refuses at that setting', () => {
  const accepted: string[] = [];
  for (const setting of settings) {
    // An editor hint the validator deliberately ignores, whatever its value.
    if (setting.label === '$schema') continue;
    const at = pathText(setting.path);
    for (const value of invalidSamples(setting.schema)) {
      const raw = setAt(setting.base, setting.path, value);
      assert.ok(
        !schemaAccepts(raw),
        `the schema refuses ${setting.label} = ${JSON.stringify(value)}`,
      );
      const problems = problemsOf(raw);
      const elsewhere = problems.filter((problem) => !isAtOrBelow(problem.path, at));
      if (problems.length === 0 || elsewhere.length > 0)
        accepted.push(`${setting.label} = ${JSON.stringify(value)}: ${JSON.stringify(problems)}`);
    }
  }
  assert.deepEqual(accepted, []);
});

test("the schema's defaults are the ones the validator fills in (src/config/defaults.ts)", () => {
  const withDefaults = settings.filter((setting) => 'default' in setting.schema);
  assert.ok(withDefaults.length > 25, `${withDefaults.length} settings state a default`);

  for (const setting of withDefaults) {
    const written = setAt(setting.base, setting.path, setting.schema.default);
    const omitted = setAt(setting.base, setting.path, undefined);
    assert.deepEqual(resolve(omitted), resolve(written), `default of ${setting.label}`);
  }
});

test('every optional setting states a default, unless it depends on others', () => {
  // A token entry takes exactly one of token and tokenEnv.
  const dependsOnOthers = [
    '$schema',
    'defaultQueue',
    'http.tokens[0].token',
    'http.tokens[0].tokenEnv',
  ];
  const missing = settings
    .filter((setting) => !setting.required && !('default' in setting.schema))
    .filter((setting) => setting.schema.type !== 'object' || !setting.schema.properties)
    .map((setting) => setting.label)
    .filter((label) => !dependsOnOthers.includes(label));
  assert.deepEqual(missing, []);
});
