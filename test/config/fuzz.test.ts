import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';

import fc from 'fast-check';

import { loadConfig } from '../../src/config/load.js';
import { validateConfig } from '../../src/config/validate.js';
import { ConfigError } from '../../src/errors.js';
import { sandbox } from '../cli/sandbox.js';
import { compileSchema, readSchema, walkSchema } from './schema-walk.js';
import { CONTEXT, MINIMAL, pathText, setAt, type RawConfig, type Segment } from './settings.js';

// Seeded, so that a failure found once is found again; the runs are few enough to stay quick.
const RUNS = { seed: 20240611, numRuns: 150 };

const schema = readSchema();
// `$schema` is for editors; taskq ignores it, whatever it holds.
const settings = walkSchema(schema, MINIMAL).settings.filter(
  (setting) => setting.label !== '$schema',
);
const schemaAccepts = compileSchema(schema);

const dir = mkdtempSync(path.join(os.tmpdir(), 'taskq-config-fuzz-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/**
 * Nests `inner` in `depth` lists: far deeper than any recursion could go. fast-check shows it
 * by its depth, as it cannot print it either.
 */
function nested(depth: number, inner: unknown = 1): unknown {
  let value = inner;
  for (let level = 0; level < depth; level += 1) value = [value];
  return Object.assign(value as unknown[], {
    [fc.toStringMethod]: () => `${depth} nested lists`,
  });
}

/** An object holding `key` as an own property, as JSON.parse makes it, even for "__proto__". */
function withOwnKey(key: string, value: unknown): Record<string, unknown> {
  const object: Record<string, unknown> = {};
  Object.defineProperty(object, key, {
    value,
    enumerable: true,
    writable: true,
    configurable: true,
  });
  return object;
}

const PROTOTYPE_KEYS = ['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty'];

/** Values that have no place in a configuration, or not the place they are put in. */
const hostileValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom('NaN', 'Infinity', '-Infinity', '1e999', '0x10', '', ' ', '\u0000', "'; --"),
  fc.constantFrom(...PROTOTYPE_KEYS),
  fc.string({ maxLength: 12 }),
  fc.constant('x'.repeat(200_000)),
  fc.double(),
  fc.constantFrom(1e308, -1e308, 2 ** 53 + 2, -1, 0.5, Number.NaN, Number.POSITIVE_INFINITY),
  fc.boolean(),
  fc.constant(null),
  fc.array(fc.jsonValue({ maxDepth: 2 }), { maxLength: 4 }),
  fc.constantFrom(...PROTOTYPE_KEYS).map((key) => withOwnKey(key, { polluted: true })),
  fc.integer({ min: 1_000, max: 50_000 }).map((depth) => nested(depth)),
  fc.integer({ min: 1_000, max: 50_000 }).map((depth) => ({ a: nested(depth, {}) })),
);

/** The problem is reported at `at`, inside it (`at.key`, `at[0]`) or at a section holding it. */
function isNear(problemPath: string, at: string): boolean {
  const inside = (outer: string, inner: string) =>
    inner === outer || (inner.startsWith(outer) && /^[.[]/.test(inner.slice(outer.length)));
  return inside(at, problemPath) || inside(problemPath, at);
}

/** The ConfigError `run` throws; any other outcome fails with what happened instead. */
function configError(run: () => unknown): ConfigError {
  try {
    run();
  } catch (error) {
    if (error instanceof ConfigError) return error;
    assert.fail(`a ConfigError, not ${error instanceof Error ? error.stack : String(error)}`);
  }
  assert.fail('the configuration was accepted');
}

describe('a hostile value in any setting', () => {
  test('is refused with a ConfigError naming the setting, never a crash', () => {
    fc.assert(
      fc.property(fc.constantFrom(...settings), hostileValue, (setting, value) => {
        const raw = setAt(setting.base, setting.path, null);
        placeAt(raw, setting.path, value);
        fc.pre(!schemaAccepts(raw));

        const error = configError(() => validateConfig(raw, CONTEXT));

        const at = pathText(setting.path);
        const near = error.problems.filter((problem) => isNear(problem.path, at));
        assert.ok(near.length > 0, `${at}: ${error.message.slice(0, 500)}`);
        for (const problem of near) assert.ok(error.message.includes(`  - ${problem.path} `));
        assert.ok(error.message.length < 20_000, 'a huge value is shortened in the message');
      }),
      RUNS,
    );
  });
});

/** Puts `value` at `path` without cloning it, so that deep and prototype-keyed values stay. */
function placeAt(raw: RawConfig, at: readonly Segment[], value: unknown): void {
  let parent = raw as Record<Segment, unknown>;
  for (const segment of at.slice(0, -1)) parent = parent[segment] as Record<Segment, unknown>;
  parent[at[at.length - 1]!] = value;
}

describe('an unknown key in any section', () => {
  const sections = [
    [] as Segment[],
    ...settings
      .filter((setting) => typeof setting.schema.properties === 'object')
      .map((setting) => setting.path),
  ];
  const unknownKey = fc.oneof(
    fc.constantFrom(...PROTOTYPE_KEYS),
    fc.string({ minLength: 1, maxLength: 30 }).filter((key) => !/^[a-z]/i.test(key)),
  );

  test('is refused naming the key, and pollutes no prototype', () => {
    fc.assert(
      fc.property(fc.constantFrom(...sections), unknownKey, (section, key) => {
        const raw = structuredClone(MINIMAL);
        let target = raw as Record<Segment, unknown>;
        for (const segment of section) {
          target[segment] ??= typeof segment === 'number' ? [] : {};
          target = target[segment] as Record<Segment, unknown>;
        }
        Object.defineProperty(target, key, {
          value: { polluted: true },
          enumerable: true,
          configurable: true,
        });

        const error = configError(() => validateConfig(raw, CONTEXT));

        const where = section.length > 0 ? `${pathText(section)}.${key}` : key;
        assert.ok(
          error.problems.some((problem) => problem.path === where),
          `${where}: ${error.message}`,
        );
        assert.equal(({} as Record<string, unknown>).polluted, undefined);
      }),
      RUNS,
    );
  });

  test('an association of a task named after a prototype key stays a plain entry', () => {
    for (const key of PROTOTYPE_KEYS) {
      const raw = { ...MINIMAL, associations: withOwnKey(key, 'spare') };

      const config = validateConfig(raw, CONTEXT);

      assert.ok(Object.hasOwn(config.associations, key), key);
      assert.equal(config.associations[key], 'spare');
      assert.equal(Object.getPrototypeOf(config.associations), Object.prototype);
    }
  });
});

describe('a configuration file that is not a configuration', () => {
  let count = 0;
  const fileWith = (text: string): string => {
    count += 1;
    const file = path.join(dir, `config-${count}.json`);
    writeFileSync(file, text);
    return file;
  };
  const load = (file: string) => loadConfig({ configPath: file, env: {}, cwd: dir });

  test('text that is not a JSON object is refused as the file, never a crash', () => {
    const text = fc.oneof(
      fc.string({ maxLength: 200 }),
      fc.jsonValue({ maxDepth: 3 }).map((value) => JSON.stringify(value).slice(0, -1)),
      fc
        .jsonValue({ maxDepth: 3 })
        .filter((value) => !isObject(value))
        .map(String),
      fc.integer({ min: 1, max: 200_000 }).map((depth) => '['.repeat(depth)),
      fc.integer({ min: 1, max: 200_000 }).map((depth) => '{"a":'.repeat(depth)),
      fc.constantFrom('', '\uFEFF{}x', 'null', '{"queues": NaN}', "{'queues': []}", '{"a": 1e}'),
    );
    fc.assert(
      fc.property(text, (content) => {
        fc.pre(!isObject(parsed(content)));

        const error = configError(() => load(fileWith(content)));

        assert.deepEqual(
          error.problems.map((problem) => problem.path),
          ['(file)'],
        );
        assert.match(error.message, /\(file\) (is not valid JSON|must hold a JSON object)/);
      }),
      { ...RUNS, numRuns: 100 },
    );
  });

  test('a JSON object of random content is refused or accepted, and nothing else', () => {
    const content = fc.oneof(
      fc.dictionary(
        fc.constantFrom(...Object.keys(MINIMAL), 'worker', 'http', 'x'),
        fc.jsonValue(),
      ),
      fc.jsonValue({ maxDepth: 4 }).map((value) => ({ ...MINIMAL, worker: value })),
    );
    const deep = fc
      .integer({ min: 1_000, max: 100_000 })
      .map((depth) => `{"retry": ${'['.repeat(depth)}${']'.repeat(depth)}}`);
    fc.assert(
      fc.property(
        fc.oneof(
          content.map((value) => JSON.stringify(value)),
          deep,
        ),
        (text) => {
          const file = fileWith(text);
          try {
            load(file);
          } catch (error) {
            assert.ok(error instanceof ConfigError, String(error));
            for (const problem of error.problems) assert.ok(problem.path && problem.message);
          }
        },
      ),
      { ...RUNS, numRuns: 100 },
    );
  });
});

function parsed(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function isObject(value: unknown): boolean {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

describe('taskq with a hostile configuration file', () => {
  const FILES: [what: string, text: string, named: string][] = [
    ['a string of digits for a number', '{"worker": {"concurrency": "NaN"}}', 'worker.concurrency'],
    ['a number past a double', '{"retry": {"limit": 1e400}}', 'retry.limit'],
    [
      'a list deep past any recursion',
      `{"http": ${'['.repeat(100_000)}${']'.repeat(100_000)}}`,
      'http',
    ],
    ['a prototype key', '{"worker": {"__proto__": {"concurrency": 1}}}', 'worker.__proto__'],
    ['a list for the queues section', '{"queues": {"name": "default"}}', 'queues'],
    ['text that is not JSON', '{"queues": [', '(file)'],
  ];
  for (const [what, text, named] of FILES) {
    test(`${what}: exit 2 naming ${named}, no stack trace`, async (t) => {
      const box = await sandbox(t, 'none');
      const file = path.join(box.dir, 'taskq.json');
      writeFileSync(file, text);

      const result = await box.run(['enqueue', 'example.echo', '--config', file]);

      assert.equal(result.code, 2, result.stderr);
      assert.ok(result.stderr.includes(`  - ${named} `), result.stderr);
      assert.doesNotMatch(result.stderr, /\n\s+at |Error:/);
      assert.equal(result.stdout, '');
    });
  }
});
