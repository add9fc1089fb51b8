import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';

import {
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';

import { TaskqClient } from '../../src/client.js';
import type { Runtime } from '../../src/runtime.js';
import { MESSAGE_VERSION, type TaskMessage } from '../../src/tasks/message.js';
import { Worker } from '../../src/worker/worker.js';
import { createTestDatabase } from '../support/database.js';
import { EMULATOR_REGION, startEmulator, type Emulator } from '../support/fauxqs.js';
import { testConfig, testRuntime } from '../support/runtime.js';
import type { BenchResult } from './types.js';

/**
 * The two sides take turns in rounds of this many messages, after a first round each that warms
 * them up and is not counted. On a shared machine, load from elsewhere then falls on both sides
 * alike instead of spoiling one of them.
 */
const ROUND_MESSAGES = 1000;
const ROUNDS = 5;
/** No round runs longer than this; a round cut short is counted with what it finished. */
const ROUND_LIMIT_MS = 30_000;
const BATCH = 10;
/** taskq must reach this fraction of the raw loop's rate. */
const TARGET_RATIO = 0.7;
/**
 * Slots of the worker. It receives up to its free slots, one receive per queue at a time, and
 * a slot stays taken until its message is deleted; with slots to spare, its receives come back
 * full, as the raw loop's do. No-op tasks cost nothing to hold.
 */
const CONCURRENCY = 10 * BATCH;

/** One side of the comparison: loads a round's messages, then works through them. */
interface Side {
  load(count: number): Promise<void>;
  /** Returns how many messages it finished. */
  run(count: number): Promise<number>;
}

/**
 * No-op tasks per second through one taskq worker on an SQS queue (receive=10), next to the
 * plain SDK loop of ReceiveMessage and DeleteMessageBatch on the same emulator in the same run:
 * the price of the task log and the worker around the same SQS traffic.
 */
export async function benchSqs(): Promise<BenchResult[]> {
  const emulator = await startEmulator();
  const cleanups: (() => Promise<void>)[] = [() => emulator.close()];
  try {
    const database = await createTestDatabase();
    cleanups.push(() => database.drop());
    const sqs = new SQSClient({ region: EMULATOR_REGION, endpoint: emulator.endpoint });
    cleanups.push(async () => sqs.destroy());
    const runtime = await workerRuntime(emulator, database.url);
    cleanups.push(() => runtime.close());

    const raw = await rawLoop(sqs);
    const taskq = workerLoop(runtime);
    const totals = { raw: { done: 0, seconds: 0 }, taskq: { done: 0, seconds: 0 } };
    for (let round = 0; round <= ROUNDS; round += 1) {
      for (const [name, side] of [
        ['raw', raw],
        ['taskq', taskq],
      ] as const) {
        await side.load(ROUND_MESSAGES);
        const startedAt = performance.now();
        const done = await side.run(ROUND_MESSAGES);
        if (round === 0) continue;
        totals[name].done += done;
        totals[name].seconds += (performance.now() - startedAt) / 1000;
      }
    }
    const rate = (side: { done: number; seconds: number }) => side.done / side.seconds;
    return [
      {
        name: `sqs: no-op tasks through one worker (receive=${BATCH}, concurrency=${CONCURRENCY}, task log)`,
        value: round(rate(totals.taskq)),
        unit: 'tasks/s',
        baseline: {
          name: 'raw SDK ReceiveMessage + DeleteMessageBatch loop',
          value: round(rate(totals.raw)),
        },
        target: `>= ${TARGET_RATIO * 100}% of the raw loop`,
        pass: rate(totals.taskq) >= TARGET_RATIO * rate(totals.raw),
      },
    ];
  } finally {
    for (const cleanup of cleanups.reverse()) await cleanup();
  }
}

/** The SDK alone: one loop that receives 10 and deletes them in one call. */
async function rawLoop(sqs: SQSClient): Promise<Side> {
  const { QueueUrl } = await sqs.send(
    new CreateQueueCommand({
      QueueName: `bench_raw_${randomUUID().slice(0, 8)}`,
      Attributes: { VisibilityTimeout: '300' },
    }),
  );
  return {
    load: (count) => preload(sqs, QueueUrl!, count),
    run: async (count) => {
      let done = 0;
      const deadline = performance.now() + ROUND_LIMIT_MS;
      while (done < count && performance.now() < deadline) {
        const { Messages = [] } = await sqs.send(
          new ReceiveMessageCommand({
            QueueUrl,
            MaxNumberOfMessages: BATCH,
            WaitTimeSeconds: 1,
            MessageSystemAttributeNames: ['ApproximateReceiveCount', 'SentTimestamp'],
          }),
        );
        if (Messages.length === 0) continue;
        const Entries = Messages.map((m, i) => ({ Id: `e${i}`, ReceiptHandle: m.ReceiptHandle }));
        await sqs.send(new DeleteMessageBatchCommand({ QueueUrl, Entries }));
        done += Messages.length;
      }
      return done;
    },
  };
}

/** Sends `count` messages shaped like taskq's, so that both sides move the same bytes. */
async function preload(sqs: SQSClient, url: string, count: number): Promise<void> {
  const bodies = Array.from({ length: count }, () => JSON.stringify(noopMessage()));
  const batches: string[][] = [];
  for (let start = 0; start < count; start += BATCH)
    batches.push(bodies.slice(start, start + BATCH));
  const send = (batch: string[]) =>
    sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: url,
        Entries: batch.map((body, i) => ({ Id: `m${i}`, MessageBody: body })),
      }),
    );
  // Ten calls at a time, as an application's enqueues would come.
  for (let start = 0; start < batches.length; start += 10)
    await Promise.all(batches.slice(start, start + 10).map(send));
}

function noopMessage(): TaskMessage {
  return {
    v: MESSAGE_VERSION,
    id: randomUUID(),
    name: 'example.noop',
    queue: 'bench',
    parameters: {},
    label: 'example.noop',
    owner: 'system',
    parentId: null,
    createdAt: new Date().toISOString(),
  };
}

async function workerRuntime(emulator: Emulator, databaseUrl: string): Promise<Runtime> {
  const config = await testConfig(databaseUrl, {
    queues: [
      {
        name: 'bench',
        broker: emulator.brokerConfig({
          prefix: `bench_${randomUUID().slice(0, 8)}_`,
          receive: BATCH,
          waitTimeSeconds: 1,
          visibilityTimeoutSeconds: 300,
        }),
      },
    ],
  });
  return testRuntime(config);
}

/** taskq: tasks enqueued through the client, then run by one worker until all have ended. */
function workerLoop(runtime: Runtime): Side {
  const client = new TaskqClient(runtime);
  return {
    load: (count) =>
      client.enqueueMany(Array.from({ length: count }, () => ({ name: 'example.noop' }))).then(),
    run: async (count) => {
      const worker = new Worker(runtime, { id: 'bench', concurrency: CONCURRENCY, limit: count });
      let ended = 0;
      worker.on('task-ended', () => (ended += 1));
      const timer = setTimeout(() => void worker.stop(0), ROUND_LIMIT_MS);
      await worker.run();
      clearTimeout(timer);
      return ended;
    },
  };
}

function round(value: number): number {
  return Math.round(value * 10) / 10;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  for (const row of await benchSqs()) console.log(JSON.stringify(row));
}
