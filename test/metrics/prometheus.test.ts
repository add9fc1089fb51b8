import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { TaskqClient } from '../../src/client.js';
import type { Runtime } from '../../src/runtime.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { ROOT, TEST_HANDLERS } from '../support/paths.js';
import { testConfig, testRuntime } from '../support/runtime.js';
import { waitFor } from '../support/wait.js';
import { startPrometheus, type PrometheusServer } from './prometheus-server.js';
import {
  createHome,
  startFleet,
  type SupervisorHome,
  type SupervisorProcess,
} from './supervisor-process.js';

const CONFIG = {
  handlers: TEST_HANDLERS,
  queues: [
    { name: 'default', broker: 'postgres', weight: 3 },
    { name: 'other', broker: 'postgres', weight: 1 },
  ],
  associations: { 'example.fail': 'other' },
};
/** What Grafana's $__rate_interval becomes: several scrape intervals of 1 s. */
const RATE_INTERVAL = '10s';

interface DashboardQuery {
  panel: string;
  expr: string;
}

/** Every query of the dashboard, its variables replaced as Grafana would with "All" queues. */
function dashboardQueries(): DashboardQuery[] {
  const file = path.join(ROOT, 'grafana', 'dashboards', 'taskq.json');
  const dashboard = JSON.parse(readFileSync(file, 'utf8')) as { panels: Panel[] };
  const queries: DashboardQuery[] = [];
  const visit = (panels: Panel[]) => {
    for (const panel of panels) {
      for (const target of panel.targets ?? [])
        if (target.expr)
          queries.push({ panel: panel.title ?? '(untitled)', expr: substitute(target.expr) });
      visit(panel.panels ?? []);
    }
  };
  visit(dashboard.panels);
  return queries;
}

interface Panel {
  title?: string;
  targets?: { expr?: string }[];
  panels?: Panel[];
}

function substitute(expr: string): string {
  const done = expr.replaceAll('$__rate_interval', RATE_INTERVAL).replace(/\$\{?queue\}?/g, '.+');
  if (done.includes('$')) throw new Error(`a dashboard variable this test does not know: ${expr}`);
  return done;
}

let database: TestDatabase;
let home: SupervisorHome;
let runtime: Runtime;
let supervisor: SupervisorProcess;
let prometheus: PrometheusServer;
let load: { stop(): Promise<void> };

/** Tasks of every kind the dashboard charts, a few every 100 ms, until stopped. */
function startLoad(client: TaskqClient): { stop(): Promise<void> } {
  let running = true;
  const loop = (async () => {
    while (running) {
      await client.enqueueMany([
        { name: 'example.echo', parameters: { text: 'load' } },
        // Long enough that the worker killed below is almost sure to hold one.
        { name: 'example.sleep', parameters: { ms: 1000 } },
        { name: 'example.fail' },
        { name: 'test.flaky', parameters: { failures: 1 } },
        // Its children are enqueued by a worker, which counts them in taskq_tasks_enqueued_total.
        { name: 'example.parent', parameters: { count: 2 } },
      ]);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
    },
  };
}

before(async () => {
  database = await createTestDatabase();
  home = await createHome(database.url, CONFIG);
  runtime = await testRuntime(await testConfig(database.url, CONFIG));
  supervisor = await startFleet({ home, workers: 3, args: ['--shutdown-timeout-seconds=1'] });
  prometheus = await startPrometheus(`127.0.0.1:${supervisor.port}`);
  load = startLoad(new TaskqClient(runtime, 'load'));

  // Restarts and released tasks have series from the start; a crash gives them something to show.
  const holder = await waitFor('a worker running a task', async () =>
    (await supervisor.health()).workers.find((worker) => worker.running > 0 && worker.pid),
  );
  process.kill(holder.pid!, 'SIGKILL');
  await waitFor('the crash to be scraped', async () => {
    const [crashes] = await prometheus.query('taskq_worker_restarts_total{reason="crash"}');
    return crashes !== undefined && crashes.value >= 1;
  });
});

after(async () => {
  await load?.stop();
  await prometheus?.stop();
  await supervisor?.stop();
  await runtime?.close();
  await database?.drop();
  await home?.remove();
});

describe('a real Prometheus scraping a real supervisor under load, every second', () => {
  for (const { panel, expr } of dashboardQueries()) {
    test(`dashboard panel "${panel}" gets numbers from: ${expr}`, async () => {
      const result = await waitFor(
        'the query to return numbers',
        async () => {
          const samples = await prometheus.query(expr);
          return samples.length > 0 && samples.every((s) => Number.isFinite(s.value))
            ? samples
            : null;
        },
        { timeoutMs: 30_000, intervalMs: 250 },
      );
      assert.ok(result.length > 0);
    });
  }

  test('the released task of the killed worker is in taskq_orphaned_tasks_released_total', async () => {
    const released = await prometheus.query('sum(taskq_orphaned_tasks_released_total)');
    assert.ok(released[0]!.value >= 1, `released: ${released[0]?.value}`);
  });

  test('every scrape answered, those during the killed worker’s restart included', async () => {
    const [up] = await prometheus.query('min_over_time(up{job="taskq"}[10m])');
    assert.equal(up?.value, 1);
  });

  test('SIGUSR2 to the supervisor shows in Prometheus as a paused fleet with paused workers', async () => {
    const [before] = await prometheus.query('taskq_fleet_paused');
    assert.equal(before?.value, 0);
    supervisor.signal('SIGUSR2');
    await waitFor(
      'taskq_fleet_paused to read 1 and every worker paused',
      async () => {
        const [paused] = await prometheus.query('max by (instance) (taskq_fleet_paused)');
        const [workers] = await prometheus.query('sum(taskq_workers{state="paused"})');
        return paused?.value === 1 && workers?.value === 3;
      },
      { timeoutMs: 30_000, intervalMs: 250 },
    );
  });
});
