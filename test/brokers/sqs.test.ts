import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import {
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  ReceiveMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';

import type { ReceivedMessage } from '../../src/brokers/broker.js';
import { SQS_MAX_MESSAGE_BYTES, SqsBroker } from '../../src/brokers/sqs.js';
import type { SqsBrokerOptions } from '../../src/config/types.js';
import { createLogger } from '../../src/log/logger.js';
import { decodeMessage } from '../../src/tasks/message.js';
import { EMULATOR_REGION, startEmulator, type Emulator } from '../support/fauxqs.js';
import { ROOT } from '../support/paths.js';
import { waitFor } from '../support/wait.js';
import { brokerContract, taskMessage } from './contract.js';

let emulator: Emulator;

function options(overrides: Partial<SqsBrokerOptions> = {}): SqsBrokerOptions {
  return {
    type: 'sqs',
    receive: 10,
    region: EMULATOR_REGION,
    profile: null,
    endpoint: emulator.endpoint,
    prefix: 'TQ_',
    visibilityTimeoutSeconds: 2,
    waitTimeSeconds: 1,
    fifo: false,
    deadLetterMaxReceiveCount: null,
    ...overrides,
  };
}

const silent = createLogger({ level: 'silent' });

before(async () => {
  emulator = await startEmulator();
});
after(async () => {
  await emulator?.close();
});

brokerContract(
  'sqs',
  async (queue, leaseSeconds) =>
    new SqsBroker(queue, options({ visibilityTimeoutSeconds: leaseSeconds }), silent),
  { leaseSeconds: 2, probes: false },
);

describe('sqs broker', () => {
  const brokers: SqsBroker[] = [];
  let sqs: SQSClient;

  const open = async (overrides: Partial<SqsBrokerOptions> = {}, queue = fresh()) => {
    const broker = new SqsBroker(queue, options(overrides), silent);
    brokers.push(broker);
    await broker.init();
    return broker;
  };
  const urlOf = async (name: string) =>
    (await sqs.send(new GetQueueUrlCommand({ QueueName: name }))).QueueUrl!;
  const attributes = async (name: string) => {
    const command = new GetQueueAttributesCommand({
      QueueUrl: await urlOf(name),
      AttributeNames: ['All'],
    });
    return (await sqs.send(command)).Attributes ?? {};
  };
  const receiveAll = async (broker: SqsBroker, count: number) => {
    const received: ReceivedMessage[] = [];
    await waitFor(`${count} messages`, async () => {
      received.push(...(await broker.receive(10)));
      return received.length >= count;
    });
    return received;
  };

  before(() => {
    sqs = new SQSClient({ region: EMULATOR_REGION, endpoint: emulator.endpoint });
  });
  after(async () => {
    for (const broker of brokers) await broker.close();
    sqs.destroy();
  });

  test('init creates the queue with the configured visibility timeout and long-poll wait', async () => {
    const broker = await open({ visibilityTimeoutSeconds: 45, waitTimeSeconds: 7 });
    assert.match(broker.sqsName, /^TQ_sqs_/);
    const found = await attributes(broker.sqsName);
    assert.equal(found.VisibilityTimeout, '45');
    assert.equal(found.ReceiveMessageWaitTimeSeconds, '7');
    assert.equal(found.MaximumMessageSize, String(SQS_MAX_MESSAGE_BYTES));
  });

  test('init applies a changed configuration to an existing queue', async () => {
    const first = await open({ visibilityTimeoutSeconds: 30 });
    await open({ visibilityTimeoutSeconds: 90 }, first.queue);
    assert.equal((await attributes(first.sqsName)).VisibilityTimeout, '90');
  });

  test('init creates a dead-letter queue and a redrive policy pointing at it', async () => {
    const broker = await open({ deadLetterMaxReceiveCount: 4 });
    assert.equal(broker.deadLetterName, `${broker.sqsName}-dlq`);
    const dlq = await attributes(broker.deadLetterName!);
    const policy = JSON.parse((await attributes(broker.sqsName)).RedrivePolicy!);
    assert.equal(policy.deadLetterTargetArn, dlq.QueueArn);
    assert.equal(Number(policy.maxReceiveCount), 4);
  });

  test('a FIFO queue gets the .fifo name and one message group per task name', async () => {
    const broker = await open({ fifo: true, deadLetterMaxReceiveCount: 3 });
    assert.match(broker.sqsName, /\.fifo$/);
    assert.match(broker.deadLetterName!, /-dlq\.fifo$/);
    await broker.push([{ message: taskMessage(broker.queue), delaySeconds: 0 }]);
    const result = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: await urlOf(broker.sqsName),
        MessageSystemAttributeNames: ['MessageGroupId'],
      }),
    );
    assert.equal(result.Messages?.[0]?.Attributes?.MessageGroupId, 'example.echo');
  });

  test('a delayed push to a FIFO queue is refused, naming the queue', async () => {
    const broker = await open({ fifo: true });
    await assert.rejects(
      broker.push([{ message: taskMessage(broker.queue), delaySeconds: 5 }]),
      (error: Error) => /FIFO queue/.test(error.message) && error.message.includes(broker.queue),
    );
  });

  test('a push delay beyond the 900 s SQS allows is refused and sends nothing', async () => {
    const broker = await open();
    await assert.rejects(
      broker.push([
        { message: taskMessage(broker.queue), delaySeconds: 0 },
        { message: taskMessage(broker.queue), delaySeconds: 901 },
      ]),
      { code: 'DELAY_TOO_LONG', message: /delay of 901 s.*at most 900 s/ },
    );
    assert.deepEqual(await broker.counts(), { waiting: 0, inFlight: 0 });
  });

  test('an oversized message is refused with its size and the limit, and nothing is sent', async () => {
    const broker = await open();
    const big = taskMessage(broker.queue, { blob: 'x'.repeat(SQS_MAX_MESSAGE_BYTES) });
    await assert.rejects(
      broker.push([
        { message: taskMessage(broker.queue), delaySeconds: 0 },
        { message: big, delaySeconds: 0 },
      ]),
      (error: Error & { code?: string }) =>
        error.code === 'MESSAGE_TOO_LARGE' &&
        error.message.includes(String(Buffer.byteLength(JSON.stringify(big)))) &&
        error.message.includes(String(SQS_MAX_MESSAGE_BYTES)),
    );
    assert.deepEqual(await broker.counts(), { waiting: 0, inFlight: 0 });
  });

  test('large messages are split into batches that SQS accepts', async () => {
    const broker = await open();
    const half = 'y'.repeat(400_000);
    await broker.push(
      Array.from({ length: 5 }, () => ({
        message: taskMessage(broker.queue, { half }),
        delaySeconds: 0,
      })),
    );
    assert.equal((await broker.counts()).waiting, 5);
  });

  test('a message with characters SQS refuses arrives intact', async () => {
    const broker = await open();
    const sent = taskMessage(broker.queue, { text: 'end\uFFFF\uFFFE' });
    await broker.push([{ message: sent, delaySeconds: 0 }]);
    const [received] = await receiveAll(broker, 1);
    const decoded = decodeMessage(received!.body);
    assert.ok(decoded.ok);
    assert.deepEqual(decoded.message, sent);
  });

  test('acks of one turn leave together in DeleteMessageBatch calls of up to 10', async () => {
    const broker = await open();
    await broker.push(
      Array.from({ length: 25 }, () => ({ message: taskMessage(broker.queue), delaySeconds: 0 })),
    );
    const received = await receiveAll(broker, 25);
    const before = await emulator.requests();
    // One ack call per message, as the worker makes them.
    await Promise.all(received.map((message) => broker.ack([message])));
    const after = await emulator.requests();
    assert.equal((after.DeleteMessageBatch ?? 0) - (before.DeleteMessageBatch ?? 0), 3);
    assert.equal(after.DeleteMessage ?? 0, before.DeleteMessage ?? 0);
    assert.deepEqual(await broker.counts(), { waiting: 0, inFlight: 0 });
  });

  test('a receipt that holds no message any more is passed over while the others still change', async () => {
    const broker = await open({ visibilityTimeoutSeconds: 60 });
    await broker.push([{ message: taskMessage(broker.queue), delaySeconds: 0 }]);
    const [good] = await receiveAll(broker, 1);
    // As a receipt of a delivery whose lease ran out looks to SQS: ReceiptHandleIsInvalid.
    const stale: ReceivedMessage = { ...good!, receipt: randomUUID() };
    await broker.release([stale, good!], 0);
    const again = await receiveAll(broker, 1);
    assert.equal(again[0]!.deliveries, 2);
  });

  test('deadLetter moves the message to the dead-letter queue with the reason', async () => {
    const broker = await open({ deadLetterMaxReceiveCount: 5 });
    const sent = taskMessage(broker.queue);
    await broker.push([{ message: sent, delaySeconds: 0 }]);
    const received = await receiveAll(broker, 1);
    await broker.deadLetter(received, 'gave up after 4 attempts');
    const result = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: await urlOf(broker.deadLetterName!),
        MessageAttributeNames: ['All'],
        WaitTimeSeconds: 1,
      }),
    );
    const moved = result.Messages?.[0];
    assert.equal(JSON.parse(moved!.Body!).id, sent.id);
    assert.equal(
      moved!.MessageAttributes?.['taskq-reason']?.StringValue,
      'gave up after 4 attempts',
    );
    assert.deepEqual(await broker.counts(), { waiting: 0, inFlight: 0 });
  });

  test('release(messages, 0) from another process makes the message visible at once', async () => {
    const broker = await open({ visibilityTimeoutSeconds: 600 });
    await broker.push([{ message: taskMessage(broker.queue), delaySeconds: 0 }]);
    const [held] = await receiveAll(broker, 1);
    const code = await releaseInChildProcess(broker.queue, held!.receipt);
    assert.equal(code, 0);
    const again = await receiveAll(broker, 1);
    assert.equal(again[0]!.deliveries, 2);
  });

  test('queue URLs are resolved once per process, not once per broker or per call', async () => {
    const first = await open();
    const lookups = async () => (await emulator.requests()).GetQueueUrl ?? 0;
    const before = await lookups();
    const second = new SqsBroker(first.queue, options(), silent);
    brokers.push(second);
    await second.push([{ message: taskMessage(second.queue), delaySeconds: 0 }]);
    await second.counts();
    await receiveAll(second, 1);
    assert.equal(await lookups(), before);
  });

  test('an operation on a queue that was never created says to run taskq init', async () => {
    const broker = new SqsBroker(fresh(), options(), silent);
    brokers.push(broker);
    await assert.rejects(broker.receive(10), {
      code: 'SQS_QUEUE_MISSING',
      message: /does not exist.*run `taskq init`/,
    });
  });

  test('a queue name that SQS refuses is reported when the broker is made', () => {
    assert.throws(() => new SqsBroker('reports.daily', options(), silent), {
      code: 'SQS_NAME_INVALID',
      message: /"TQ_reports\.daily".*Rename the queue/,
    });
  });

  test('close ends a long poll in progress at once', async () => {
    const broker = new SqsBroker(fresh(), options({ waitTimeSeconds: 20 }), silent);
    brokers.push(broker);
    await broker.init();
    const polls = async () => (await emulator.requests()).ReceiveMessage ?? 0;
    const before = await polls();
    const polling = broker.receive(10);
    await waitFor('the long poll to reach the emulator', async () => (await polls()) > before);
    const startedAt = Date.now();
    await broker.close();
    assert.deepEqual(await polling, []);
    assert.ok(Date.now() - startedAt < 5000, 'close did not wait for the 20 s poll');
  });

  function releaseInChildProcess(queue: string, receipt: string): Promise<number | null> {
    const module = path.join(ROOT, 'dist/src/brokers/sqs.js');
    const script = `
      const { SqsBroker } = await import(${JSON.stringify(module)});
      const [queue, receipt, options] = process.argv.slice(1);
      const broker = new SqsBroker(queue, JSON.parse(options), { debug() {}, warn() {} });
      await broker.release([{ queue, body: '', receipt, deliveries: 1, sentAt: null }], 0);
      await broker.close();`;
    const child = spawn(
      process.execPath,
      ['--input-type=module', '-e', script, queue, receipt, JSON.stringify(options())],
      { stdio: 'inherit' },
    );
    return new Promise((resolve) => child.on('exit', (code) => resolve(code)));
  }
});

function fresh(): string {
  return `sqs_${randomUUID().slice(0, 8)}`;
}
