import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';

import { describeRun, findRepositoryRoot, runPromtool } from './promtool.js';

type JsonObject = Record<string, unknown>;

// The metrics taskq exports: their names are a public interface.
const perQueueMetrics = [
  'taskq_tasks_enqueued_total',
  'taskq_tasks_processed_total',
  'taskq_tasks_retried_total',
  'taskq_task_duration_seconds',
  'taskq_task_wait_seconds',
  'taskq_queue_depth',
  'taskq_queue_in_flight',
  'taskq_oldest_task_age_seconds',
  'taskq_stuck_tasks',
  'taskq_queue_weight',
  'taskq_orphaned_tasks_released_total',
];
const fleetMetrics = ['taskq_workers', 'taskq_fleet_paused', 'taskq_worker_restarts_total'];
const histograms = new Set(['taskq_task_duration_seconds', 'taskq_task_wait_seconds']);

// prom-client's default metrics that the dashboard may chart, per worker and for the supervisor.
const processMetrics = [
  'process_cpu_seconds_total',
  'process_cpu_user_seconds_total',
  'process_cpu_system_seconds_total',
  'process_resident_memory_bytes',
  'process_heap_bytes',
  'process_open_fds',
  'process_start_time_seconds',
  'nodejs_eventloop_lag_seconds',
  'nodejs_eventloop_lag_p99_seconds',
  'nodejs_heap_size_used_bytes',
  'nodejs_heap_size_total_bytes',
  'nodejs_external_memory_bytes',
];

// Maps every series name a query may select (a histogram's _bucket, _sum and _count included)
// to the metric it belongs to.
const metricOfSeries = new Map<string, string>();
for (const metric of [...perQueueMetrics, ...fleetMetrics, ...processMetrics]) {
  const suffixes = histograms.has(metric) ? ['_bucket', '_sum', '_count'] : [''];
  for (const suffix of suffixes) metricOfSeries.set(metric + suffix, metric);
}

const promqlKeywords = new Set(['and', 'or', 'unless', 'offset', 'bool', 'inf', 'nan']);
const datasourceReference = { type: 'prometheus', uid: '${datasource}' };

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isNumber(value: unknown): value is number {
  return typeof value === 'number';
}

function objectsAt(container: JsonObject, key: string): JsonObject[] {
  const value = container[key] ?? [];
  assert.ok(Array.isArray(value) && value.every(isObject), `"${key}" must be a list of objects`);
  return value;
}

function loadDashboard(): JsonObject {
  const file = path.join(findRepositoryRoot(), 'grafana', 'dashboards', 'taskq.json');
  const dashboard: unknown = JSON.parse(readFileSync(file, 'utf8'));
  assert.ok(isObject(dashboard), `${file} must hold a JSON object`);
  return dashboard;
}

const dashboard = loadDashboard();

// Panels nested in collapsed rows count too; rows themselves query nothing.
function queryPanels(container: JsonObject = dashboard): JsonObject[] {
  return objectsAt(container, 'panels').flatMap((panel) =>
    panel['type'] === 'row' ? queryPanels(panel) : [panel],
  );
}

interface Expression {
  panel: string;
  refId: string;
  expr: string;
}

function expressions(): Expression[] {
  return queryPanels().flatMap((panel) => {
    const title = String(panel['title']);
    return objectsAt(panel, 'targets').map((target) => {
      const refId = String(target['refId']);
      const expr = target['expr'];
      assert.ok(typeof expr === 'string', `panel ${title}, target ${refId} has no expr`);
      return { panel: title, refId, expr };
    });
  });
}

// Series names in a PromQL expression: the identifiers that remain once strings, label matchers,
// ranges, label lists and dashboard variables are removed, less those followed by '(' (functions
// and aggregations) and the operator keywords.
function seriesNamesIn(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, '')
    .replace(/\[[^\]]*\]/g, '')
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, '')
    .replace(/\$\{\w+\}|\$\w+/g, '');
  const identifiers = bare.match(/\b[a-zA-Z_][\w]*\b(?!\s*\()/g) ?? [];
  return identifiers.filter((name) => !promqlKeywords.has(name.toLowerCase()));
}

function variable(name: string): JsonObject {
  const templating = dashboard['templating'];
  assert.ok(isObject(templating), 'the dashboard has no templating section');
  const found = objectsAt(templating, 'list').find((candidate) => candidate['name'] === name);
  assert.ok(found, `the dashboard has no variable named ${name}`);
  return found;
}

test('the dashboard has a Prometheus datasource variable and a multi-value queue variable', () => {
  const datasource = variable('datasource');
  assert.equal(datasource['type'], 'datasource');
  assert.equal(datasource['query'], 'prometheus');

  const queue = variable('queue');
  assert.equal(queue['type'], 'query');
  assert.deepEqual(queue['datasource'], datasourceReference);
  assert.equal(queue['definition'], 'label_values(taskq_queue_depth, queue)');
  assert.equal(queue['multi'], true);
  assert.equal(queue['includeAll'], true);
});

test('every panel and every target queries through the ${datasource} variable', () => {
  for (const panel of queryPanels()) {
    const title = String(panel['title']);
    assert.deepEqual(panel['datasource'], datasourceReference, `panel ${title}`);

    const targets = objectsAt(panel, 'targets');
    assert.ok(targets.length > 0, `panel ${title} has no query`);
    for (const target of targets) {
      assert.deepEqual(target['datasource'], datasourceReference, `panel ${title}`);
    }
  }
});

test('no datasource uid is hard-coded anywhere in the dashboard', () => {
  const visit = (value: unknown, where: string): void => {
    if (Array.isArray(value)) {
      value.forEach((item, index) => visit(item, `${where}[${index}]`));
    } else if (isObject(value)) {
      for (const [key, inner] of Object.entries(value)) {
        if (key === 'datasource') assert.deepEqual(inner, datasourceReference, `${where}.${key}`);
        visit(inner, `${where}.${key}`);
      }
    }
  };

  visit(dashboard, 'dashboard');
});

test('no two panels share an id or overlap on the 24-column grid', () => {
  const panels = queryPanels();
  const ids = panels.map((panel) => panel['id']);
  assert.equal(new Set(ids).size, ids.length, `panel ids repeat: ${ids.join(', ')}`);

  const boxes = panels.map((panel) => {
    const title = String(panel['title']);
    const gridPos = panel['gridPos'];
    assert.ok(isObject(gridPos), `panel ${title} has no gridPos`);
    const values = ['x', 'y', 'w', 'h'].map((key) => gridPos[key]);
    assert.ok(values.every(isNumber), `panel ${title} needs numbers for gridPos x, y, w and h`);
    const [x = 0, y = 0, w = 0, h = 0] = values;
    assert.ok(x >= 0 && w > 0 && h > 0 && x + w <= 24, `panel ${title} is off the 24-column grid`);
    return { title, x, y, w, h };
  });
  for (const [index, a] of boxes.entries()) {
    for (const b of boxes.slice(index + 1)) {
      const apart = a.x + a.w <= b.x || b.x + b.w <= a.x || a.y + a.h <= b.y || b.y + b.h <= a.y;
      assert.ok(apart, `panels ${a.title} and ${b.title} overlap`);
    }
  }
});

test('every expression selects only taskq metrics and prom-client default metrics', () => {
  for (const { panel, refId, expr } of expressions()) {
    const unlisted = seriesNamesIn(expr).filter((name) => !metricOfSeries.has(name));
    assert.deepEqual(unlisted, [], `panel ${panel}, target ${refId}: ${expr}`);
  }
});

test('every taskq metric is charted by at least one panel', () => {
  const charted = new Set(
    expressions().flatMap(({ expr }) =>
      seriesNamesIn(expr).map((name) => metricOfSeries.get(name)),
    ),
  );

  const missing = [...perQueueMetrics, ...fleetMetrics].filter((metric) => !charted.has(metric));
  assert.deepEqual(missing, []);
});

test('every selector of a per-queue metric is filtered by the queue variable', () => {
  const perQueue = new Set(perQueueMetrics);

  for (const { panel, refId, expr } of expressions()) {
    for (const [, series, matchers] of expr.matchAll(/\b(taskq_\w+)\s*(\{[^}]*\})?/g)) {
      if (!perQueue.has(metricOfSeries.get(series ?? '') ?? '')) continue;
      assert.match(matchers ?? '', /queue=~"\$queue"/, `panel ${panel}, target ${refId}: ${expr}`);
    }
  }
});

test('promtool parses every panel expression as PromQL', async (t) => {
  const folder = mkdtempSync(path.join(tmpdir(), 'taskq-dashboard-'));
  t.after(() => rmSync(folder, { recursive: true, force: true }));

  // Each expression becomes a recording rule, with the dashboard variables given sample values;
  // JSON is valid YAML, so no YAML writer is needed.
  const rules = expressions().map(({ expr }, index) => ({
    record: `taskq_dashboard:expression_${index}`,
    expr: expr.replace(/\$__\w+/g, '5m').replace(/\$\{?queue\}?/g, '.+'),
  }));
  const file = path.join(folder, 'dashboard-rules.yml');
  writeFileSync(file, JSON.stringify({ groups: [{ name: 'dashboard', rules }] }));

  const result = await runPromtool(['check', 'rules', file], folder);

  assert.equal(result.exitCode, 0, describeRun(result));
  assert.match(result.stdout, new RegExp(`SUCCESS: ${rules.length} rules found`));
});
