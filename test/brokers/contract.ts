import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';

import type { Broker, ReceivedMessage } from '../../src/brokers/broker.js';
import { decodeMessage, MESSAGE_VERSION, type TaskMessage } from '../../src/tasks/message.js';
import { waitFor } from '../support/wait.js';

/** Makes a broker on a fresh queue whose lease is `leaseSeconds` long. */
export type BrokerFactory = (queue: string, leaseSeconds: number) => Promise<Broker>;

export interface ContractOptions {
  /** The lease the suite's queues get; the lease tests wait about twice as long. */
  leaseSeconds: number;
  /** False for a broker that cannot tell whether a message exists (SQS): it answers 'unknown'. */
  probes?: boolean;
  setup?: () => Promise<void>;
  teardown?: () => Promise<void>;
}

export function taskMessage(queue: string, parameters: unknown = { n: 1 }): TaskMessage {
  return {
    v: MESSAGE_VERSION,
    id: randomUUID(),
    name: 'example.echo',
    queue,
    parameters,
    label: 'contract',
    owner: 'test',
    parentId: null,
    createdAt: new Date().toISOString(),
  };
}

function idOf(message: ReceivedMessage): string {
  const decoded = decodeMessage(message.body);
  assert.ok(decoded.ok, `a received message decodes (${decoded.ok ? '' : decoded.reason})`);
  return decoded.message.id;
}

/**
 * What every broker must do, run against each of them (memory, postgres, sqs). A broker that
 * passes this suite can carry taskq's queues.
 */
export function brokerContract(name: string, make: BrokerFactory, options: ContractOptions): void {
  describe(`broker contract: ${name}`, () => {
    const opened: Broker[] = [];
    const fresh = async (leaseSeconds = options.leaseSeconds) => {
      const broker = await make(`contract_${randomUUID().slice(0, 8)}`, leaseSeconds);
      await broker.init();
      opened.push(broker);
      return broker;
    };

    before(async () => options.setup?.());
    after(async () => {
      for (const broker of opened) await broker.close();
      await options.teardown?.();
    });

    test('init can be repeated without error or loss', async () => {
      const broker = await fresh();
      await broker.push([{ message: taskMessage(broker.queue), delaySeconds: 0 }]);
      await broker.init();
      assert.equal((await broker.counts()).waiting, 1);
    });

    test('a pushed message is received whole, with its first delivery counted', async () => {
      const broker = await fresh();
      const sent = taskMessage(broker.queue, { text: 'héllo ✓', nested: { list: [1, 2, 3] } });
      await broker.push([{ message: sent, delaySeconds: 0 }]);
      const [received] = await waitFor('the message', () =>
        broker.receive(10).then((m) => (m.length ? m : null)),
      );
      const decoded = decodeMessage(received!.body);
      assert.ok(decoded.ok);
      assert.deepEqual(decoded.message, sent);
      assert.equal(received!.deliveries, 1);
      assert.equal(received!.queue, broker.queue);
    });

    test('receive returns at most the number asked for', async () => {
      const broker = await fresh();
      await broker.push(
        Array.from({ length: 5 }, () => ({ message: taskMessage(broker.queue), delaySeconds: 0 })),
      );
      const first = await waitFor('messages', () =>
        broker.receive(3).then((m) => (m.length ? m : null)),
      );
      assert.ok(first.length <= 3 && first.length >= 1, `got ${first.length}`);
    });

    test('a received message is not handed out again while leased', async () => {
      const broker = await fresh();
      await broker.push([{ message: taskMessage(broker.queue), delaySeconds: 0 }]);
      await waitFor('the message', () => broker.receive(10).then((m) => m.length === 1));
      assert.deepEqual(await broker.receive(10), []);
      assert.deepEqual(await broker.counts(), { waiting: 0, inFlight: 1 });
    });

    test('ack removes the message for good', async () => {
      const broker = await fresh();
      await broker.push([{ message: taskMessage(broker.queue), delaySeconds: 0 }]);
      const received = await waitFor('the message', () =>
        broker.receive(10).then((m) => (m.length ? m : null)),
      );
      await broker.ack(received);
      await waitFor('empty counts', async () => {
        const counts = await broker.counts();
        return counts.waiting === 0 && counts.inFlight === 0;
      });
      assert.deepEqual(await broker.receive(10), []);
    });

    test('release makes the message visible again, counting the delivery', async () => {
      const broker = await fresh();
      const sent = taskMessage(broker.queue);
      await broker.push([{ message: sent, delaySeconds: 0 }]);
      const first = await waitFor('the message', () =>
        broker.receive(10).then((m) => (m.length ? m : null)),
      );
      await broker.release(first, 0);
      const again = await waitFor('the released message', () =>
        broker.receive(10).then((m) => (m.length ? m : null)),
      );
      assert.equal(idOf(again[0]!), sent.id);
      assert.equal(again[0]!.deliveries, 2);
    });

    test('release with a delay keeps the message hidden until the delay has passed', async () => {
      const broker = await fresh();
      await broker.push([{ message: taskMessage(broker.queue), delaySeconds: 0 }]);
      const first = await waitFor('the message', () =>
        broker.receive(10).then((m) => (m.length ? m : null)),
      );
      const releasedAt = Date.now();
      await broker.release(first, 2);
      assert.deepEqual(await broker.receive(10), []);
      await waitFor('the delayed message', () => broker.receive(10).then((m) => m.length === 1), {
        timeoutMs: 10_000,
      });
      assert.ok(Date.now() - releasedAt >= 1500, 'the message stayed hidden for the delay');
    });

    test('a delayed push is not received before its delay', async () => {
      const broker = await fresh();
      const pushedAt = Date.now();
      await broker.push([{ message: taskMessage(broker.queue), delaySeconds: 2 }]);
      assert.deepEqual(await broker.receive(10), []);
      await waitFor('the delayed message', () => broker.receive(10).then((m) => m.length === 1), {
        timeoutMs: 10_000,
      });
      assert.ok(Date.now() - pushedAt >= 1500);
    });

    test('deadLetter takes the message out of the queue', async () => {
      const broker = await fresh();
      await broker.push([{ message: taskMessage(broker.queue), delaySeconds: 0 }]);
      const received = await waitFor('the message', () =>
        broker.receive(10).then((m) => (m.length ? m : null)),
      );
      await broker.deadLetter(received, 'contract test');
      await waitFor('empty counts', async () => {
        const counts = await broker.counts();
        return counts.waiting === 0 && counts.inFlight === 0;
      });
      assert.deepEqual(await broker.receive(10), []);
    });

    test('an expired lease hands the message out again', async () => {
      const broker = await fresh();
      const sent = taskMessage(broker.queue);
      await broker.push([{ message: sent, delaySeconds: 0 }]);
      await waitFor('the message', () => broker.receive(10).then((m) => m.length === 1));
      const again = await waitFor(
        'redelivery after the lease',
        () => broker.receive(10).then((m) => (m.length ? m : null)),
        {
          timeoutMs: (options.leaseSeconds * 4 + 5) * 1000,
          intervalMs: 200,
        },
      );
      assert.equal(idOf(again[0]!), sent.id);
      assert.equal(again[0]!.deliveries, 2);
    });

    test('a late ack or release of an earlier delivery leaves the later one alone', async () => {
      const broker = await fresh();
      const sent = taskMessage(broker.queue);
      await broker.push([{ message: sent, delaySeconds: 0 }]);
      const [first] = await waitFor('the message', () =>
        broker.receive(10).then((m) => (m.length ? m : null)),
      );
      const [second] = await waitFor(
        'redelivery after the lease',
        () => broker.receive(10).then((m) => (m.length ? m : null)),
        { timeoutMs: (options.leaseSeconds * 4 + 5) * 1000, intervalMs: 200 },
      );
      // The first holder comes back after its lease was lost (a host cut off, then back).
      await broker.release([first!], 0);
      await broker.ack([first!]);
      assert.deepEqual(await broker.receive(10), [], 'the second delivery still holds it');
      assert.equal((await broker.counts()).inFlight, 1);
      await broker.ack([second!]);
      assert.deepEqual(await broker.counts(), { waiting: 0, inFlight: 0 });
      assert.equal(idOf(second!), sent.id);
    });

    test('extendLease keeps a message leased past its first lease', async () => {
      const broker = await fresh();
      await broker.push([{ message: taskMessage(broker.queue), delaySeconds: 0 }]);
      const received = await waitFor('the message', () =>
        broker.receive(10).then((m) => (m.length ? m : null)),
      );
      const until = Date.now() + options.leaseSeconds * 2500;
      while (Date.now() < until) {
        await broker.extendLease(received, options.leaseSeconds * 2);
        assert.deepEqual(await broker.receive(10), [], 'no redelivery while the lease is extended');
        await new Promise((resolve) => setTimeout(resolve, (options.leaseSeconds * 1000) / 3));
      }
    });

    test('onWork announces a push', async () => {
      const broker = await fresh();
      let announced = 0;
      const off = broker.onWork(() => (announced += 1));
      // The announcement channel may need a moment to connect.
      await waitFor(
        'an announcement',
        async () => {
          await broker.push([{ message: taskMessage(broker.queue), delaySeconds: 0 }]);
          return announced > 0;
        },
        { intervalMs: 300 },
      );
      off();
    });

    test('probe tells a waiting or leased message from one that is gone', async () => {
      const broker = await fresh();
      const kept = taskMessage(broker.queue);
      const acked = taskMessage(broker.queue);
      const never = taskMessage(broker.queue);
      await broker.push([{ message: kept, delaySeconds: 0 }]);
      await broker.push([{ message: acked, delaySeconds: 0 }]);
      const received = await waitFor('both messages', async () => {
        const got = await broker.receive(10);
        return got.length === 2 ? got : null;
      });
      await broker.ack(received.filter((message) => idOf(message) === acked.id));
      const refs = [kept, acked, never].map((m) => ({ taskId: m.id, receipt: null }));
      const presence = await broker.probe(refs);
      if (options.probes === false) {
        assert.deepEqual([...presence.values()], ['unknown', 'unknown', 'unknown']);
        return;
      }
      assert.equal(presence.get(kept.id), 'present', 'a leased message is present');
      assert.equal(presence.get(acked.id), 'missing', 'an acked message is missing');
      assert.equal(presence.get(never.id), 'missing', 'a message never sent is missing');
    });

    test('redeliver hands a leased message out again at once, under the same task id', async () => {
      const broker = await fresh(Math.max(30, options.leaseSeconds));
      const sent = taskMessage(broker.queue);
      await broker.push([{ message: sent, delaySeconds: 0 }]);
      const [first] = await waitFor('the message', () =>
        broker.receive(10).then((m) => (m.length ? m : null)),
      );
      assert.deepEqual(await broker.receive(10), [], 'leased for 30 s');
      const moved = await broker.redeliver([{ taskId: sent.id, receipt: first!.receipt }]);
      assert.deepEqual([...moved], [sent.id]);
      const again = await waitFor('the redelivered message', () =>
        broker.receive(10).then((m) => (m.length ? m : null)),
      );
      assert.equal(idOf(again[0]!), sent.id);
    });

    test('redeliver finds nothing for a message that was acked', async () => {
      const broker = await fresh();
      const sent = taskMessage(broker.queue);
      await broker.push([{ message: sent, delaySeconds: 0 }]);
      const received = await waitFor('the message', () =>
        broker.receive(10).then((m) => (m.length ? m : null)),
      );
      await broker.ack(received);
      await waitFor('the ack', async () => (await broker.counts()).inFlight === 0);
      const moved = await broker.redeliver([{ taskId: sent.id, receipt: received[0]!.receipt }]);
      assert.equal(moved.size, 0);
    });

    test('requeue sends the message of an acked task again, under the same id', async () => {
      const broker = await fresh();
      const sent = taskMessage(broker.queue, { again: true });
      await broker.push([{ message: sent, delaySeconds: 0 }]);
      const received = await waitFor('the message', () =>
        broker.receive(10).then((m) => (m.length ? m : null)),
      );
      await broker.ack(received);
      await broker.requeue([sent]);
      const again = await waitFor('the requeued message', () =>
        broker.receive(10).then((m) => (m.length ? m : null)),
      );
      const decoded = decodeMessage(again[0]!.body);
      assert.ok(decoded.ok);
      assert.deepEqual(decoded.message, sent);
    });

    test('counts tell waiting from in-flight messages', async () => {
      const broker = await fresh();
      await broker.push(
        Array.from({ length: 4 }, () => ({ message: taskMessage(broker.queue), delaySeconds: 0 })),
      );
      await waitFor('four waiting', async () => (await broker.counts()).waiting === 4);
      await waitFor('one taken', () => broker.receive(1).then((m) => m.length === 1));
      await waitFor('three waiting and one in flight', async () => {
        const counts = await broker.counts();
        return counts.waiting === 3 && counts.inFlight === 1;
      });
    });
  });
}
