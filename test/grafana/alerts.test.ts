import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';

import { describeRun, findRepositoryRoot, runPromtool } from './promtool.js';

const root = findRepositoryRoot();

function readGrafanaFile(name: string): string {
  return readFileSync(path.join(root, 'grafana', name), 'utf8');
}

function alertNames(): string[] {
  return [...readGrafanaFile('alerts.yml').matchAll(/^\s*- alert: (\S+)\s*$/gm)].map(
    (match) => match[1] ?? '',
  );
}

// Reads the layout grafana/alerts.test.yml is written in: each `- alertname:` item is followed
// by its eval_time and by `exp_alerts: []` (stays quiet) or a list of expected alerts (fires).
function unitTestedOutcomes(): Map<string, Set<'fires' | 'quiet'>> {
  const outcomes = new Map<string, Set<'fires' | 'quiet'>>();
  const items = readGrafanaFile('alerts.test.yml')
    .split(/^\s*- alertname: /m)
    .slice(1);
  for (const item of items) {
    const name = item.split(/\s/, 1)[0] ?? '';
    const seen = outcomes.get(name) ?? new Set();
    if (/exp_alerts: \[\]/.test(item)) {
      seen.add('quiet');
    } else if (/exp_alerts:\s*\n\s*- exp_labels:/.test(item)) {
      seen.add('fires');
    }
    outcomes.set(name, seen);
  }
  return outcomes;
}

test('promtool accepts every rule in grafana/alerts.yml', async () => {
  const expected = alertNames().length;
  assert.ok(expected > 0, 'grafana/alerts.yml declares no alert');

  const result = await runPromtool(['check', 'rules', 'grafana/alerts.yml'], root);

  assert.equal(result.exitCode, 0, describeRun(result));
  assert.match(result.stdout, new RegExp(`SUCCESS: ${expected} rules found`), describeRun(result));
});

test('the alerts fire and stay quiet as grafana/alerts.test.yml expects', async () => {
  const result = await runPromtool(['test', 'rules', 'grafana/alerts.test.yml'], root);

  assert.equal(result.exitCode, 0, describeRun(result));
  assert.match(result.stdout, /SUCCESS/, describeRun(result));
  assert.doesNotMatch(result.stdout, /FAILED/, describeRun(result));
});

test('every alert has a unit test where it fires and one where it stays quiet', () => {
  const outcomes = unitTestedOutcomes();

  for (const name of alertNames()) {
    const seen = [...(outcomes.get(name) ?? [])].sort();
    assert.deepEqual(seen, ['fires', 'quiet'], `unit tests of ${name} in grafana/alerts.test.yml`);
  }
});
