import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { describe, test } from 'node:test';

import ts from 'typescript';

import { ROOT } from '../support/paths.js';

/**
 * No SQL is built from values. In the product's source (src, supervisor, workers), a template
 * literal that holds SQL (it starts with a statement keyword, or is the text of a `query` call)
 * may interpolate only:
 *
 * - a schema name, which the configuration checks against SCHEMA_PATTERN: an expression ending
 *   in `schema`, or a constant of the same file set to one;
 * - a constant of the code (an UPPER_CASE name);
 * - the number of a placeholder, right after a `$`;
 * - a fragment named in FRAGMENTS, which taskq builds from the above alone.
 *
 * Neither may SQL text be joined to anything with `+`. Every value reaches PostgreSQL as a
 * parameter; an interpolation of anything else fails here until it is made one.
 */

/** Per file, the names whose values are SQL fragments that taskq builds, and what they are. */
const FRAGMENTS: Record<string, Record<string, string>> = {
  'src/brokers/postgres.ts': {
    p: 'a placeholder, numbered after the companion statement',
    companion: "the task log's insert, a statement checked here in its own file",
    insertJobs: 'a statement of this file, checked here',
  },
  'src/database/migrations.ts': { s: "the schema, each migration's one parameter" },
  'src/queues/pauses.ts': { condition: 'one of two conditions written in the function' },
  'src/tasklog/filters.ts': {
    where: 'conditions on fixed columns, each against a placeholder',
    column: 'a column of SORT_COLUMNS',
    order: 'ASC or DESC',
    ties: 'made of column and order',
  },
  'src/tasklog/queries.ts': {
    clause: 'the WHERE of filterSql',
    orderSql: 'the ORDER BY of filterSql',
  },
  'src/tasklog/sweeps.ts': { sweep: 'columns, an order and statuses written in the function' },
};

const SQL_START =
  /^\s*(SELECT|INSERT|UPDATE|DELETE|WITH|CREATE|ALTER|DROP|LISTEN|WHERE|ORDER BY)\b/;
const CONSTANT = /^[A-Z][A-Z0-9_]*$/;

interface Finding {
  where: string;
  expression: string;
}

/** The interpolations and joins of `text` (the source of `file`) that break the rule above. */
function unsafeSql(file: string, text: string): Finding[] {
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const schemaAliases = schemaConstants(source);
  const fragments = FRAGMENTS[file] ?? {};
  const findings: Finding[] = [];
  const report = (node: ts.Node, expression: string) => {
    const { line } = source.getLineAndCharacterOfPosition(node.getStart());
    findings.push({ where: `${file}:${line + 1}`, expression });
  };

  const isAllowed = (expression: ts.Expression, before: string): boolean => {
    if (before.endsWith('$')) return true;
    const shown = expression.getText(source);
    if (/(^|\.)schema$/.test(shown)) return true;
    const root = rootName(expression);
    if (root === null) return false;
    if (CONSTANT.test(root) || root in fragments) return true;
    return shown === root && schemaAliases.has(root);
  };

  const visit = (node: ts.Node): void => {
    if (ts.isTemplateExpression(node) && holdsSql(node, source)) {
      let before = node.head.text;
      for (const span of node.templateSpans) {
        if (!isAllowed(span.expression, before)) report(span, span.expression.getText(source));
        before = span.literal.text;
      }
    }
    if (
      ts.isBinaryExpression(node) &&
      node.operatorToken.kind === ts.SyntaxKind.PlusToken &&
      [node.left, node.right].some((side) => SQL_START.test(literalText(side) ?? ''))
    )
      report(node, node.getText(source));
    ts.forEachChild(node, visit);
  };
  visit(source);
  return findings;
}

function holdsSql(template: ts.TemplateExpression, source: ts.SourceFile): boolean {
  if (SQL_START.test(template.head.text)) return true;
  const call = template.parent;
  return (
    ts.isCallExpression(call) &&
    call.arguments[0] === template &&
    /(^|\.)query$/.test(call.expression.getText(source))
  );
}

/** The name an expression starts from: `sweep` of `sweep.column`, `p` of `p(1)`. */
function rootName(expression: ts.Expression): string | null {
  let node: ts.Expression = expression;
  for (;;) {
    if (ts.isIdentifier(node)) return node.text;
    if (ts.isPropertyAccessExpression(node) || ts.isElementAccessExpression(node))
      node = node.expression;
    else if (ts.isCallExpression(node)) node = node.expression;
    else if (ts.isParenthesizedExpression(node)) node = node.expression;
    else return null;
  }
}

/**
 * The names that stand for a schema in a file: every variable of that name is a constant set
 * to an expression ending in `schema`, such as `const s = this.schema`.
 */
function schemaConstants(source: ts.SourceFile): Set<string> {
  const verdicts = new Map<string, boolean>();
  const visit = (node: ts.Node): void => {
    if (ts.isVariableDeclaration(node) && ts.isIdentifier(node.name)) {
      const constant =
        ts.isVariableDeclarationList(node.parent) && (node.parent.flags & ts.NodeFlags.Const) !== 0;
      const schema = /(^|\.)schema$/.test(node.initializer?.getText(source) ?? '');
      const name = node.name.text;
      verdicts.set(name, (verdicts.get(name) ?? true) && constant && schema);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return new Set([...verdicts].filter(([, schema]) => schema).map(([name]) => name));
}

function literalText(node: ts.Expression): string | null {
  if (ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node)) return node.text;
  if (ts.isTemplateExpression(node)) return node.head.text;
  return null;
}

async function productSources(): Promise<string[]> {
  const files: string[] = [];
  for (const dir of ['src', 'supervisor', 'workers']) {
    for (const name of await fs.readdir(path.join(ROOT, dir), { recursive: true })) {
      if (name.endsWith('.ts') && !name.endsWith('.d.ts')) files.push(`${dir}/${name}`);
    }
  }
  return files.sort();
}

describe('SQL text', () => {
  test('interpolates only schema names, constants, placeholders and known fragments', async () => {
    const files = await productSources();
    assert.ok(files.length > 50, `${files.length} source files`);
    const findings: Finding[] = [];
    for (const file of files)
      findings.push(...unsafeSql(file, await fs.readFile(path.join(ROOT, file), 'utf8')));
    assert.deepEqual(findings, []);
  });

  test('every fragment named as safe is still in its file', async () => {
    for (const [file, names] of Object.entries(FRAGMENTS)) {
      const text = await fs.readFile(path.join(ROOT, file), 'utf8');
      for (const name of Object.keys(names))
        assert.match(text, new RegExp(`\\$\\{${name}\\b`), `${file} no longer uses ${name}`);
    }
  });

  test('the check finds a value in a query, in a statement, and SQL joined with +', () => {
    const code = [
      'const s = this.schema;',
      "await pool.query(`SELECT * FROM ${s}.tasks WHERE owner = '${owner}'`);",
      'const text = `UPDATE ${this.schema}.tasks SET label = ${label} WHERE id = $${n + 1}`;',
      "await client.query('DELETE FROM tasks WHERE id = ' + id);",
      'await client.query(`LISTEN ${channel}`);',
    ].join('\n');
    const found = unsafeSql('src/example.ts', code).map((finding) => finding.expression);
    assert.deepEqual(found, ['owner', 'label', "'DELETE FROM tasks WHERE id = ' + id", 'channel']);
  });
});
