import { fork, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';

/**
 * The SQS emulator (the fauxqs package) in a child process of its own, listening on a free
 * loopback port: the tests and benchmarks talk to it over HTTP as they would to SQS, and its
 * work does not share their event loop.
 *
 * fauxqs keeps its queues in memory, so killing its process would lose messages that the real,
 * durable service keeps through an outage. `stop` and `restart` therefore close and reopen its
 * HTTP server on the same port while the process and its queues live on: to a client, the
 * endpoint goes away and comes back, which is what an outage looks like from a worker.
 */
export interface Emulator {
  /** Where to point an SQS client: http://127.0.0.1:<port>. */
  readonly endpoint: string;
  /** The `broker` of a configured queue on this emulator, with `overrides` applied. */
  brokerConfig(overrides?: Record<string, unknown>): Record<string, unknown>;
  /** Closes the port and every open connection; queues and messages are kept. */
  stop(): Promise<void>;
  /** Listens again on the same port. */
  restart(): Promise<void>;
  /** How many requests of each SQS action (ReceiveMessage, DeleteMessageBatch...) it served. */
  requests(): Promise<Record<string, number>>;
  /** Ends the emulator's process; safe to repeat. */
  close(): Promise<void>;
}

type Command = 'stop' | 'restart' | 'requests';

interface Reply {
  id: string;
  error?: string;
  result?: unknown;
}

const CHILD_FLAG = 'TASKQ_FAUXQS_CHILD';
const STARTUP_TIMEOUT_MS = 15_000;
const COMMAND_TIMEOUT_MS = 10_000;

/** The region the tests' queues live in; the emulator accepts any. */
export const EMULATOR_REGION = 'eu-west-1';

/**
 * Starts the emulator and resolves once it accepts requests. It also gives the AWS SDK of this
 * process (and of the processes it starts) test credentials through the environment, which the
 * emulator accepts, so that no test depends on ~/.aws.
 */
export async function startEmulator(): Promise<Emulator> {
  process.env.AWS_ACCESS_KEY_ID = 'test';
  process.env.AWS_SECRET_ACCESS_KEY = 'test';
  const child = fork(fileURLToPath(import.meta.url), [], {
    env: { ...process.env, [CHILD_FLAG]: '1' },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  let port: number;
  try {
    port = await readyPort(child);
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
  // A test run that ends without close() is not held open by the emulator, which then exits
  // when its channel to this process goes.
  child.unref();
  child.channel?.unref();
  const endpoint = `http://127.0.0.1:${port}`;
  let closing: Promise<void> | undefined;
  return {
    endpoint,
    brokerConfig: (overrides = {}) => ({
      type: 'sqs',
      region: EMULATOR_REGION,
      endpoint,
      ...overrides,
    }),
    stop: () => command(child, 'stop').then(() => undefined),
    restart: () => command(child, 'restart').then(() => undefined),
    requests: () => command(child, 'requests') as Promise<Record<string, number>>,
    close: () => (closing ??= endChild(child)),
  };
}

function readyPort(child: ChildProcess): Promise<number> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => fail(new Error('the SQS emulator did not start in time')),
      STARTUP_TIMEOUT_MS,
    );
    const onMessage = (message: { ready?: number; error?: string }) => {
      if (message.error) fail(new Error(`the SQS emulator failed to start: ${message.error}`));
      else if (typeof message.ready === 'number') done(message.ready);
    };
    const onExit = (code: number | null) =>
      fail(new Error(`the SQS emulator exited with code ${code} while starting`));
    const cleanup = () => {
      clearTimeout(timer);
      child.off('message', onMessage);
      child.off('exit', onExit);
    };
    const done = (port: number) => (cleanup(), resolve(port));
    const fail = (error: Error) => (cleanup(), reject(error));
    child.on('message', onMessage);
    child.on('exit', onExit);
  });
}

function command(child: ChildProcess, name: Command): Promise<unknown> {
  const id = randomUUID();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => finish(new Error(`the SQS emulator did not answer "${name}"`)),
      COMMAND_TIMEOUT_MS,
    );
    const onMessage = (reply: Reply) => {
      if (reply.id !== id) return;
      finish(reply.error === undefined ? null : new Error(reply.error), reply.result);
    };
    const finish = (error: Error | null, result?: unknown) => {
      clearTimeout(timer);
      child.off('message', onMessage);
      if (error) reject(error);
      else resolve(result);
    };
    child.on('message', onMessage);
    child.send({ id, command: name });
  });
}

async function endChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

// ---- The child process side -------------------------------------------------------------------

interface Listener {
  listen(options: { port: number; host: string }): Promise<string>;
  close(): Promise<void>;
  addHook(
    name: 'onRequest',
    hook: (request: { headers: Record<string, unknown> }) => Promise<void>,
  ): void;
}

interface Stores {
  sqsStore: unknown;
  snsStore: unknown;
  s3Store: unknown;
}

/**
 * Serves SQS on 127.0.0.1. The stores that hold the queues are made here and handed to each HTTP
 * server in turn, which is what lets `restart` keep them; fauxqs exports `buildApp` but not the
 * store classes, so those are loaded from their files in the installed package (fauxqs 1.9.2).
 */
async function serve(): Promise<void> {
  const fauxqs = (await import('fauxqs')) as unknown as { buildApp(options: object): Listener };
  const base = import.meta.resolve('fauxqs');
  const fromPackage = async (file: string, name: string) => {
    const module = (await import(new URL(file, base).href)) as Record<string, new () => unknown>;
    return new module[name]!();
  };
  const stores: Stores = {
    sqsStore: await fromPackage('./sqs/sqsStore.js', 'SqsStore'),
    snsStore: await fromPackage('./sns/snsStore.js', 'SnsStore'),
    s3Store: await fromPackage('./s3/s3Store.js', 'S3Store'),
  };
  const requests: Record<string, number> = {};
  let port = 0;
  let app: Listener | null = null;

  const open = async () => {
    const next = fauxqs.buildApp({ logger: false, stores });
    next.addHook('onRequest', async (request) => {
      const target = String(request.headers['x-amz-target'] ?? 'other');
      const action = target.slice(target.indexOf('.') + 1);
      requests[action] = (requests[action] ?? 0) + 1;
    });
    const address = await next.listen({ port, host: '127.0.0.1' });
    port = Number(new URL(address).port);
    app = next;
  };

  const handlers: Record<Command, () => Promise<unknown>> = {
    stop: async () => {
      await app?.close();
      app = null;
    },
    restart: async () => {
      if (!app) await open();
    },
    requests: async () => ({ ...requests }),
  };

  process.on('message', (message: { id: string; command: Command }) => {
    handlers[message.command]().then(
      (result) => process.send?.({ id: message.id, result }),
      (error: unknown) => process.send?.({ id: message.id, error: String(error) }),
    );
  });
  // The parent is gone (a crashed test run): nothing is left to serve.
  process.on('disconnect', () => process.exit(0));
  process.on(
    'SIGTERM',
    () => void (app?.close() ?? Promise.resolve()).finally(() => process.exit(0)),
  );

  try {
    await open();
    process.send?.({ ready: port });
  } catch (error) {
    process.send?.({ error: String(error) });
    process.exit(1);
  }
}

if (process.env[CHILD_FLAG] === '1' && process.argv[1] === fileURLToPath(import.meta.url)) {
  await serve();
}
