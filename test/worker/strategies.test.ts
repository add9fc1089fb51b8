import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { TaskqClient } from '../../src/client.js';
import { StrictPrioritySelector, WeightSelector } from '../../src/queues/strategies.js';
import type { Runtime } from '../../src/runtime.js';
import { Worker } from '../../src/worker/worker.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { testConfig, testRuntime } from '../support/runtime.js';

describe('queue selection', () => {
  test('the weight selector shares tasks by weight, whatever the size of each receive', () => {
    const weights = new Map([
      ['high', 90],
      ['mid', 30],
      ['low', 10],
    ]);
    const selector = new WeightSelector(weights);
    const taken = new Map<string, number>();
    for (let n = 0; n < 3000; n += 1) {
      const queue = selector.next(['high', 'mid', 'low'])!;
      const batch = 1 + (n % 7);
      selector.charge(queue, batch);
      taken.set(queue, (taken.get(queue) ?? 0) + batch);
    }
    const total = [...taken.values()].reduce((a, b) => a + b, 0);
    for (const [queue, weight] of weights) {
      const share = (taken.get(queue)! / total) * 100;
      assert.ok(Math.abs(share - (weight / 130) * 100) < 1, `${queue} took ${share.toFixed(2)}%`);
    }
  });

  test('the weight selector shares running time by weight, whatever the length of each task', () => {
    const weights = new Map([
      ['high', 90],
      ['mid', 30],
      ['low', 10],
    ]);
    // Longer tasks on the lighter queues: counting tasks would give low about four times its share.
    const lengths: Record<string, number[]> = {
      high: [0.02, 0.05, 0.1],
      mid: [0.05, 0.2, 0.4],
      low: [0.1, 0.4, 0.8],
    };
    const selector = new WeightSelector(weights);
    const slots = 16;
    const running: { queue: string; length: number; until: number }[] = [];
    const used = new Map<string, number>();
    let now = 0;
    let n = 0;
    while (now < 600) {
      while (running.length < slots) {
        const queue = selector.next(['high', 'mid', 'low'])!;
        selector.charge(queue, 1);
        const length = lengths[queue]![n++ % 3]!;
        running.push({ queue, length, until: now + length });
      }
      running.sort((a, b) => a.until - b.until);
      const done = running.shift()!;
      now = done.until;
      selector.ran(done.queue, done.length);
      used.set(done.queue, (used.get(done.queue) ?? 0) + done.length);
    }
    const total = [...used.values()].reduce((a, b) => a + b, 0);
    for (const [queue, weight] of weights) {
      const share = (used.get(queue)! / total) * 100;
      assert.ok(Math.abs(share - (weight / 130) * 100) < 1, `${queue} ran ${share.toFixed(2)}%`);
    }
  });

  test('a queue back from idle starts level with the others instead of catching up', () => {
    const selector = new WeightSelector(
      new Map([
        ['a', 1],
        ['b', 1],
      ]),
    );
    const take = (candidates: string[]) => {
      const queue = selector.next(candidates)!;
      selector.charge(queue, 1);
      selector.ran(queue, 0.01);
      return queue;
    };
    for (let n = 0; n < 100; n += 1) take(['a']);
    const next = Array.from({ length: 10 }, () => take(['a', 'b']));
    assert.ok(next.filter((queue) => queue === 'b').length <= 6, `b took ${next.join(',')}`);
  });

  test('queues of weight 0 are taken only when no weighted queue has work', () => {
    const selector = new WeightSelector(
      new Map([
        ['a', 1],
        ['zero', 0],
      ]),
    );
    assert.equal(selector.next(['a', 'zero']), 'a');
    assert.equal(selector.next(['zero']), 'zero');
  });

  test('strict priority always takes the highest weight that has work', () => {
    const selector = new StrictPrioritySelector(
      new Map([
        ['a', 10],
        ['b', 90],
        ['c', 30],
      ]),
    );
    assert.equal(selector.next(['a', 'b', 'c']), 'b');
    assert.equal(selector.next(['a', 'c']), 'c');
    assert.equal(selector.next([]), undefined);
  });
});

describe('shares on real queues', () => {
  let database: TestDatabase;
  let runtime: Runtime;
  let client: TaskqClient;

  before(async () => {
    database = await createTestDatabase();
    const config = await testConfig(database.url, {
      queues: [
        { name: 'high', broker: { type: 'postgres', receive: 50 }, weight: 90 },
        { name: 'mid', broker: { type: 'postgres', receive: 50 }, weight: 30 },
        { name: 'low', broker: { type: 'postgres', receive: 50 }, weight: 10 },
      ],
      worker: { concurrency: 100 },
    });
    runtime = await testRuntime(config);
    client = new TaskqClient(runtime, 'test');
  });

  after(async () => {
    await runtime.close();
    await database.drop();
  });

  async function fill(perQueue: number): Promise<void> {
    for (const queue of ['high', 'mid', 'low']) {
      for (let done = 0; done < perQueue; done += 1000) {
        await client.enqueueMany(
          Array.from({ length: 1000 }, () => ({ name: 'example.noop', queue })),
        );
      }
    }
    await runtime.db.pool.query('ANALYZE');
  }

  async function processedByQueue(): Promise<Map<string, number>> {
    const { rows } = await runtime.db.pool.query<{ queue: string; n: number }>(
      `SELECT queue, count(*)::int AS n FROM taskq.tasks WHERE status = 'completed' GROUP BY queue`,
    );
    return new Map(rows.map((row) => [row.queue, row.n]));
  }

  test('weights 90/30/10 with every queue backlogged: each share of 10,000 tasks within 2 points', async () => {
    await fill(10_000);
    const worker = new Worker(runtime, { id: 'shares', limit: 10_000 });
    await worker.run();
    const processed = await processedByQueue();
    const total = [...processed.values()].reduce((a, b) => a + b, 0);
    assert.ok(total >= 10_000 && total <= 10_100, `processed ${total}`);
    for (const [queue, weight] of [
      ['high', 90],
      ['mid', 30],
      ['low', 10],
    ] as const) {
      const share = ((processed.get(queue) ?? 0) / total) * 100;
      const target = (weight / 130) * 100;
      assert.ok(
        Math.abs(share - target) <= 2,
        `${queue}: ${share.toFixed(2)}% for a target of ${target.toFixed(2)}%`,
      );
    }
  });

  test('strict priority keeps the worker on the highest queue that has work', async () => {
    await runtime.db.pool.query(`TRUNCATE taskq.tasks, taskq.events`);
    await runtime.db.pool.query(`DELETE FROM pgboss.job`);
    await fill(300);
    const strict = {
      ...runtime,
      config: { ...runtime.config, strategy: 'strict-priority' as const },
    };
    const worker = new Worker(strict, { id: 'strict', limit: 300 });
    await worker.run();
    const processed = await processedByQueue();
    assert.equal(processed.get('high'), 300);
    assert.equal(processed.get('mid') ?? 0, 0);
    assert.equal(processed.get('low') ?? 0, 0);
  });
});
