import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';

import {
  ChangeMessageVisibilityBatchCommand,
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  QueueDoesNotExist,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SetQueueAttributesCommand,
  SQSClient,
  type BatchResultErrorEntry,
  type DeleteMessageBatchRequestEntry,
  type Message,
  type SendMessageBatchRequestEntry,
} from '@aws-sdk/client-sqs';

import type { SqsBrokerOptions } from '../config/types.js';
import { TaskqError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import { WorkAnnouncer } from './announcer.js';
import type { TaskMessage } from '../tasks/message.js';
import type {
  Broker,
  MessagePresence,
  MessageRef,
  OutgoingMessage,
  QueueCounts,
  ReceivedMessage,
} from './broker.js';

/** SQS takes at most 10 entries in one batch call, and returns at most 10 messages a receive. */
const SQS_BATCH_LIMIT = 10;

/**
 * The largest message SQS takes: 1 MiB since August 2025, when the service limit rose from
 * 256 KiB (the emulator enforces the same). A queue's own MaximumMessageSize may still be lower,
 * as on queues made earlier, so `init` sets it to this value on every queue. The same limit
 * holds for all the entries of one batch send together.
 */
export const SQS_MAX_MESSAGE_BYTES = 1_048_576;

/** SQS delays a new message by at most 15 minutes. */
export const SQS_MAX_DELAY_SECONDS = 900;

/** A visibility timeout is at most 12 hours, counted by SQS from the receive. */
const SQS_MAX_VISIBILITY_SECONDS = 43_200;

/** A dead-letter queue keeps its messages as long as SQS allows: 14 days. */
const DEAD_LETTER_RETENTION_SECONDS = 1_209_600;

/** Entries that SQS failed on its side are sent again this many times in all. */
const ENTRY_ATTEMPTS = 3;

const SQS_NAME = /^[A-Za-z0-9_-]{1,80}$/;

/** U+FFFE and U+FFFF are valid in JSON but refused by SQS; in JSON text they sit in strings. */
const REFUSED_CHARACTERS = /[\uFFFE\uFFFF]/g;

/** Queue URLs, resolved once per process; a queue found missing is looked up afresh. */
const queueUrls = new Map<string, Promise<string>>();

/** An entry of a batch call that failed for good, and why. */
/** SQS's answers to a receipt handle whose delivery is over. */
const STALE_RECEIPT = /^(ReceiptHandleIsInvalid|MessageNotInflight|InvalidParameterValue)\b/;

interface Failure {
  id: string | undefined;
  why: string;
}

/**
 * A queue on Amazon SQS (or anything that speaks its protocol). The task log stays in
 * PostgreSQL; SQS carries the messages. A message is leased by its visibility timeout: a worker
 * extends it while a task runs, releases it for a retry by changing it, and deletes the message
 * once the outcome is written.
 *
 * Limits SQS sets, and what taskq does about them:
 * - A push delay is at most 900 s; a longer one is refused with an error, and FIFO queues take
 *   no delay per message at all.
 * - A visibility timeout is at most 12 hours from the receive, so a release for longer is cut to
 *   12 hours, and a task that runs longer than 12 hours is delivered again. The task log, whose
 *   lease the worker keeps renewing, still keeps that delivery from running it a second time.
 * - With `deadLetterMaxReceiveCount`, SQS moves a message to the dead-letter queue after that
 *   many receives, retries included: set it above the retry limit + 1, as a backstop for
 *   messages that kill their worker before any outcome is written.
 * - A released message waiting out its delay counts as in flight: SQS cannot tell it apart.
 */
export class SqsBroker implements Broker {
  readonly type = 'sqs' as const;
  readonly transactional = false;
  readonly maxMessageBytes = SQS_MAX_MESSAGE_BYTES;
  readonly receiveLimit: number;
  readonly leaseSeconds: number;
  readonly longPoll: boolean;
  /** The queue's name on SQS: prefix, queue name, and `.fifo` for a FIFO queue. */
  readonly sqsName: string;
  readonly deadLetterName: string | null;

  private readonly client: SQSClient;
  private readonly announcer = new WorkAnnouncer();
  private readonly deletes: DeleteBatcher;
  private readonly stopPolling = new AbortController();
  private closing: Promise<void> | undefined;

  constructor(
    readonly queue: string,
    private readonly options: SqsBrokerOptions,
    private readonly logger: Logger,
  ) {
    this.receiveLimit = Math.min(options.receive, SQS_BATCH_LIMIT);
    this.leaseSeconds = options.visibilityTimeoutSeconds;
    this.longPoll = options.waitTimeSeconds > 0;
    this.sqsName = sqsQueueName(queue, options.prefix + queue, options.fifo);
    this.deadLetterName =
      options.deadLetterMaxReceiveCount === null
        ? null
        : sqsQueueName(queue, `${options.prefix}${queue}-dlq`, options.fifo);
    this.client = new SQSClient({
      // Unset values fall through to the SDK's own chain: environment, profile files, roles.
      region: options.region ?? undefined,
      profile: options.profile ?? undefined,
      endpoint: options.endpoint ?? undefined,
      requestHandler: {
        connectionTimeout: 5000,
        requestTimeout: (options.waitTimeSeconds + 10) * 1000,
        throwOnRequestTimeout: true,
      },
    });
    this.deletes = new DeleteBatcher((entries) => this.deleteBatch(entries));
  }

  /** Creates the queue (and its dead-letter queue) or brings an existing one to the configuration. */
  async init(): Promise<void> {
    const attributes: Record<string, string> = {
      VisibilityTimeout: String(this.leaseSeconds),
      ReceiveMessageWaitTimeSeconds: String(this.options.waitTimeSeconds),
      MaximumMessageSize: String(SQS_MAX_MESSAGE_BYTES),
    };
    try {
      if (this.deadLetterName) {
        const dlqUrl = await this.createQueue(this.deadLetterName, {
          MessageRetentionPeriod: String(DEAD_LETTER_RETENTION_SECONDS),
          MaximumMessageSize: String(SQS_MAX_MESSAGE_BYTES),
        });
        attributes.RedrivePolicy = JSON.stringify({
          deadLetterTargetArn: await this.queueArn(dlqUrl),
          maxReceiveCount: this.options.deadLetterMaxReceiveCount,
        });
      }
      await this.createQueue(this.sqsName, attributes);
    } catch (error) {
      throw new TaskqError(
        'SQS_INIT_FAILED',
        `Could not create SQS queue "${this.sqsName}" for queue "${this.queue}" (${this.where()}): ${describe(error)}`,
        { cause: error },
      );
    }
    this.logger.debug({ sqsName: this.sqsName }, 'SQS queue ready');
  }

  async push(messages: OutgoingMessage[]): Promise<void> {
    if (messages.length === 0) return;
    const entries = messages.map((outgoing, index) => this.sendEntry(outgoing, `m${index}`));
    const url = await this.url();
    await Promise.all(sizedBatches(entries).map((batch) => this.sendBatch(url, batch)));
    this.announce(Math.min(...messages.map((message) => message.delaySeconds)));
  }

  async receive(max: number): Promise<ReceivedMessage[]> {
    const count = Math.min(max, this.receiveLimit);
    if (count < 1 || this.stopPolling.signal.aborted) return [];
    const url = await this.url();
    const command = new ReceiveMessageCommand({
      QueueUrl: url,
      MaxNumberOfMessages: count,
      WaitTimeSeconds: this.options.waitTimeSeconds,
      VisibilityTimeout: this.leaseSeconds,
      MessageSystemAttributeNames: ['ApproximateReceiveCount', 'SentTimestamp'],
    });
    try {
      const result = await this.client.send(command, { abortSignal: this.stopPolling.signal });
      return (result.Messages ?? []).map((message) => this.received(message));
    } catch (error) {
      // A long poll cut short by close(): its messages, if any, come back after their lease.
      if (this.stopPolling.signal.aborted) return [];
      throw this.explain(error);
    }
  }

  /** Deletes the messages; deletes of one turn of the event loop share DeleteMessageBatch calls. */
  async ack(messages: ReceivedMessage[]): Promise<void> {
    const results = await Promise.allSettled(
      messages.map((message) => this.deletes.add(message.receipt)),
    );
    const failed = results.flatMap((result) => (result.status === 'rejected' ? [result] : []));
    if (failed.length > 0) {
      throw new TaskqError(
        'SQS_DELETE_FAILED',
        `${failed.length} of ${messages.length} message(s) could not be deleted from SQS queue ` +
          `"${this.sqsName}"; they will be delivered again: ${describe(failed[0]!.reason)}`,
        { cause: failed[0]!.reason },
      );
    }
  }

  async release(messages: ReceivedMessage[], delaySeconds: number): Promise<void> {
    await this.changeVisibility(messages, delaySeconds);
    this.announce(delaySeconds);
  }

  async extendLease(messages: ReceivedMessage[], seconds: number): Promise<void> {
    await this.changeVisibility(messages, seconds);
  }

  /** Moves the messages to the dead-letter queue when there is one; else deletes them. */
  async deadLetter(messages: ReceivedMessage[], reason: string): Promise<void> {
    if (messages.length === 0) return;
    if (this.deadLetterName) {
      const entries = messages.map((message, i) => this.deadLetterEntry(message, reason, `d${i}`));
      const url = await this.url(this.deadLetterName);
      for (const batch of sizedBatches(entries)) await this.sendBatch(url, batch);
    } else {
      this.logger.warn(
        { count: messages.length, reason },
        'dropped messages that will never succeed; configure deadLetterMaxReceiveCount to keep them',
      );
    }
    await this.ack(messages);
  }

  async counts(): Promise<QueueCounts> {
    const url = await this.url();
    const names = [
      'ApproximateNumberOfMessages',
      'ApproximateNumberOfMessagesDelayed',
      'ApproximateNumberOfMessagesNotVisible',
    ] as const;
    const result = await this.client
      .send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: [...names] }))
      .catch((error: unknown) => Promise.reject(this.explain(error)));
    const value = (name: (typeof names)[number]) => Number(result.Attributes?.[name] ?? 0);
    return {
      waiting: value('ApproximateNumberOfMessages') + value('ApproximateNumberOfMessagesDelayed'),
      inFlight: value('ApproximateNumberOfMessagesNotVisible'),
    };
  }

  /**
   * SQS shows a message only to a receive, which would count a delivery and hide the message:
   * whether a task's message still exists cannot be told from outside, so every answer is
   * 'unknown'.
   */
  async probe(refs: MessageRef[]): Promise<Map<string, MessagePresence>> {
    return new Map(refs.map((ref) => [ref.taskId, 'unknown']));
  }

  /**
   * Sets the visibility timeout of leased messages to 0 through the receipt of their last
   * receive. A message that is no longer leased under that receipt (deleted, waiting already,
   * or received again since) is not found.
   */
  async redeliver(refs: MessageRef[]): Promise<Set<string>> {
    const known = refs.filter((ref) => ref.receipt !== null);
    if (known.length === 0) return new Set();
    const url = await this.url();
    const entries = known.map((ref, index) => ({
      Id: `r${index}`,
      ReceiptHandle: ref.receipt!,
      VisibilityTimeout: 0,
    }));
    const failed = new Set<string | undefined>();
    for (const batch of chunks(entries, SQS_BATCH_LIMIT)) {
      const command = new ChangeMessageVisibilityBatchCommand({ QueueUrl: url, Entries: batch });
      const result = await this.client
        .send(command)
        .catch((error: unknown) => Promise.reject(this.explain(error)));
      for (const entry of result.Failed ?? []) failed.add(entry.Id);
    }
    const moved = known.filter((_, index) => !failed.has(`r${index}`)).map((ref) => ref.taskId);
    if (moved.length > 0) this.announce();
    return new Set(moved);
  }

  async requeue(messages: TaskMessage[]): Promise<void> {
    await this.push(messages.map((message) => ({ message, delaySeconds: 0 })));
  }

  /**
   * SQS sends no news of new work: listeners hear of this process's own pushes and releases,
   * and long polling finds the rest as soon as it arrives.
   */
  onWork(listener: () => void): () => void {
    return this.announcer.subscribe(listener);
  }

  /** Ends long polls in progress, lets pending deletes finish, and destroys the SQS client. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.stopPolling.abort();
      this.announcer.close();
      await this.deletes.idle();
      this.client.destroy();
    })();
    return this.closing;
  }

  private sendEntry(outgoing: OutgoingMessage, id: string): SendMessageBatchRequestEntry {
    const { message, delaySeconds } = outgoing;
    const body = sqsBody(message);
    const bytes = Buffer.byteLength(body);
    if (bytes > SQS_MAX_MESSAGE_BYTES) {
      throw new TaskqError(
        'MESSAGE_TOO_LARGE',
        `Task "${message.name}" is ${bytes} bytes as a message; SQS queue "${this.sqsName}" takes ` +
          `at most ${SQS_MAX_MESSAGE_BYTES}. Pass a reference to the data instead of the data itself.`,
      );
    }
    if (delaySeconds > 0 && this.options.fifo) {
      throw new TaskqError(
        'DELAY_UNSUPPORTED',
        `Task "${message.name}" asks for a delay of ${delaySeconds} s, but queue "${this.queue}" ` +
          'is a FIFO queue on SQS, which takes no delay per message. Enqueue it without a delay, or on another queue.',
      );
    }
    if (delaySeconds > SQS_MAX_DELAY_SECONDS) {
      throw new TaskqError(
        'DELAY_TOO_LONG',
        `Task "${message.name}" asks for a delay of ${delaySeconds} s; queue "${this.queue}" is on ` +
          `SQS, which delays a message by at most ${SQS_MAX_DELAY_SECONDS} s. Enqueue it later, or on a postgres queue.`,
      );
    }
    return {
      Id: id,
      MessageBody: body,
      DelaySeconds: this.options.fifo ? undefined : Math.ceil(delaySeconds),
      // One message group per task name: tasks of one name run in order, names side by side.
      MessageGroupId: this.options.fifo ? message.name : undefined,
      // Unique per push, so that a task pushed again is not taken for a duplicate; the SDK's
      // retries of this very call still are.
      MessageDeduplicationId: this.options.fifo ? randomUUID() : undefined,
    };
  }

  private deadLetterEntry(
    message: ReceivedMessage,
    reason: string,
    id: string,
  ): SendMessageBatchRequestEntry {
    const entry: SendMessageBatchRequestEntry = {
      Id: id,
      MessageBody: String(message.body),
      MessageAttributes: {
        'taskq-reason': { DataType: 'String', StringValue: reason.slice(0, 1000) },
      },
      MessageGroupId: this.options.fifo ? taskNameOf(String(message.body)) : undefined,
      MessageDeduplicationId: this.options.fifo ? randomUUID() : undefined,
    };
    // The reason goes along when it fits: the message itself must reach the dead-letter queue.
    if (entrySize(entry) > SQS_MAX_MESSAGE_BYTES) entry.MessageAttributes = undefined;
    return entry;
  }

  private received(message: Message): ReceivedMessage {
    const sentAt = Number(message.Attributes?.SentTimestamp);
    return {
      queue: this.queue,
      body: message.Body ?? '',
      receipt: message.ReceiptHandle ?? '',
      deliveries: Number(message.Attributes?.ApproximateReceiveCount ?? 1),
      sentAt: Number.isFinite(sentAt) ? new Date(sentAt) : null,
    };
  }

  private async sendBatch(url: string, entries: SendMessageBatchRequestEntry[]): Promise<void> {
    const failures = await this.runBatch(entries, (batch) =>
      this.client.send(new SendMessageBatchCommand({ QueueUrl: url, Entries: batch })),
    );
    if (failures.length > 0) throw batchError('send messages to', url, failures);
  }

  private async deleteBatch(entries: DeleteMessageBatchRequestEntry[]): Promise<Failure[]> {
    const url = await this.url();
    return this.runBatch(entries, (batch) =>
      this.client.send(new DeleteMessageBatchCommand({ QueueUrl: url, Entries: batch })),
    );
  }

  private async changeVisibility(messages: ReceivedMessage[], seconds: number): Promise<void> {
    if (messages.length === 0) return;
    const timeout = Math.min(Math.max(0, Math.ceil(seconds)), SQS_MAX_VISIBILITY_SECONDS);
    const url = await this.url();
    const entries = messages.map((message, index) => ({
      Id: `v${index}`,
      ReceiptHandle: message.receipt,
      VisibilityTimeout: timeout,
    }));
    const failures: Failure[] = [];
    for (const batch of chunks(entries, SQS_BATCH_LIMIT)) {
      const command = (part: typeof batch) =>
        new ChangeMessageVisibilityBatchCommand({ QueueUrl: url, Entries: part });
      failures.push(...(await this.runBatch(batch, (part) => this.client.send(command(part)))));
    }
    // A receipt of an earlier delivery no longer holds its message: the lease ran out and the
    // message went to another worker, whose copy this worker has no business changing.
    const stale = failures.filter((failure) => STALE_RECEIPT.test(failure.why));
    if (stale.length > 0)
      this.logger.debug({ messages: stale.length }, 'leases already lost; visibility left alone');
    const failed = failures.filter((failure) => !STALE_RECEIPT.test(failure.why));
    if (failed.length > 0) throw batchError('change the visibility of messages in', url, failed);
  }

  /**
   * Makes one batch call, and makes it again for the entries that failed on SQS's side; returns
   * the entries that failed for good. A failure of the call itself (after the SDK's own retries
   * of throttling and network errors) throws.
   */
  private async runBatch<E extends { Id: string | undefined }>(
    entries: E[],
    call: (batch: E[]) => Promise<{ Failed?: BatchResultErrorEntry[] }>,
  ): Promise<Failure[]> {
    const failures: Failure[] = [];
    let pending = entries;
    for (let attempt = 1; pending.length > 0; attempt += 1) {
      const result = await call(pending).catch((error: unknown) =>
        Promise.reject(this.explain(error)),
      );
      const retry = new Set<string | undefined>();
      for (const failed of result.Failed ?? []) {
        if (!failed.SenderFault && attempt < ENTRY_ATTEMPTS) retry.add(failed.Id);
        else failures.push({ id: failed.Id, why: `${failed.Code}: ${failed.Message ?? ''}` });
      }
      pending = pending.filter((entry) => retry.has(entry.Id));
      if (pending.length > 0) await sleep(100 * 2 ** attempt);
    }
    return failures;
  }

  private url(name = this.sqsName): Promise<string> {
    const key = this.cacheKey(name);
    let url = queueUrls.get(key);
    if (!url) {
      url = this.client
        .send(new GetQueueUrlCommand({ QueueName: name }))
        .then((result) => result.QueueUrl ?? Promise.reject(new Error('SQS returned no queue URL')))
        .catch((error: unknown) => Promise.reject(this.explain(error, name)));
      queueUrls.set(key, url);
      const resolving = url;
      resolving.catch(() => queueUrls.get(key) === resolving && queueUrls.delete(key));
    }
    return url;
  }

  private async createQueue(name: string, attributes: Record<string, string>): Promise<string> {
    // Only FIFO-ness is fixed at creation; setting the rest afterwards makes init apply a changed
    // configuration to a queue that exists (CreateQueue refuses different attributes).
    const created = await this.client.send(
      new CreateQueueCommand({
        QueueName: name,
        Attributes: this.options.fifo ? { FifoQueue: 'true' } : undefined,
      }),
    );
    const url = created.QueueUrl ?? '';
    await this.client.send(
      new SetQueueAttributesCommand({ QueueUrl: url, Attributes: attributes }),
    );
    queueUrls.set(this.cacheKey(name), Promise.resolve(url));
    return url;
  }

  private async queueArn(url: string): Promise<string> {
    const result = await this.client.send(
      new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['QueueArn'] }),
    );
    const arn = result.Attributes?.QueueArn;
    if (!arn) throw new Error(`SQS returned no ARN for ${url}`);
    return arn;
  }

  private cacheKey(name: string): string {
    const { endpoint, region, profile } = this.options;
    return JSON.stringify([endpoint, region, profile, name]);
  }

  /** Turns "the queue does not exist" into what to do about it; other errors pass unchanged. */
  private explain(error: unknown, name = this.sqsName): unknown {
    if (!(error instanceof QueueDoesNotExist)) return error;
    queueUrls.delete(this.cacheKey(name));
    return new TaskqError(
      'SQS_QUEUE_MISSING',
      `SQS queue "${name}" of queue "${this.queue}" does not exist (${this.where()}); ` +
        'run `taskq init` to create it',
      { cause: error },
    );
  }

  private where(): string {
    const { endpoint, region } = this.options;
    return endpoint ? `endpoint ${endpoint}` : `region ${region ?? 'from the AWS configuration'}`;
  }

  private announce(delaySeconds = 0): void {
    this.announcer.announce(delaySeconds);
  }
}

/**
 * Gathers the deletes of one turn of the event loop into DeleteMessageBatch calls of up to 10.
 * Whoever acknowledges messages one call at a time (the worker does, as outcomes are written)
 * still shares calls with the others of that turn.
 */
class DeleteBatcher {
  private pending: { receipt: string; resolve: () => void; reject: (error: unknown) => void }[] =
    [];
  private readonly flushing = new Set<Promise<void>>();
  private scheduled = false;

  constructor(
    private readonly flush: (entries: DeleteMessageBatchRequestEntry[]) => Promise<Failure[]>,
  ) {}

  add(receipt: string): Promise<void> {
    return new Promise((resolve, reject) => {
      this.pending.push({ receipt, resolve, reject });
      if (this.scheduled) return;
      this.scheduled = true;
      setImmediate(() => this.send());
    });
  }

  /** Resolves once every delete added so far has been answered. */
  async idle(): Promise<void> {
    this.send();
    while (this.flushing.size > 0) await Promise.all(this.flushing);
  }

  private send(): void {
    this.scheduled = false;
    while (this.pending.length > 0) this.dispatch(this.pending.splice(0, SQS_BATCH_LIMIT));
  }

  private dispatch(batch: DeleteBatcher['pending']): void {
    const entries = batch.map((request, index) => ({
      Id: `d${index}`,
      ReceiptHandle: request.receipt,
    }));
    const done = this.flush(entries).then(
      (failures) => {
        const failed = new Map(failures.map((failure) => [failure.id, failure.why]));
        batch.forEach((request, index) => {
          const why = failed.get(`d${index}`);
          if (why === undefined) request.resolve();
          else request.reject(new Error(why));
        });
      },
      (error: unknown) => batch.forEach((request) => request.reject(error)),
    );
    this.flushing.add(done);
    void done.finally(() => this.flushing.delete(done));
  }
}

/** The SQS name of a queue, or an error saying why the queue cannot live on SQS. */
function sqsQueueName(queue: string, base: string, fifo: boolean): string {
  const name = fifo ? `${base}.fifo` : base;
  if (SQS_NAME.test(base) && name.length <= 80) return name;
  throw new TaskqError(
    'SQS_NAME_INVALID',
    `Queue "${queue}" cannot live on SQS: its SQS name "${name}" must be at most 80 characters of ` +
      'letters, digits, "-" and "_"' +
      `${fifo ? ' (".fifo" included)' : ''}. Rename the queue or change its broker's prefix.`,
  );
}

function sqsBody(message: OutgoingMessage['message']): string {
  return JSON.stringify(message).replace(
    REFUSED_CHARACTERS,
    (character) => `\\u${character.charCodeAt(0).toString(16)}`,
  );
}

function taskNameOf(body: string): string {
  try {
    const name: unknown = (JSON.parse(body) as { name?: unknown }).name;
    return typeof name === 'string' && name !== '' ? name.slice(0, 128) : 'unreadable';
  } catch {
    return 'unreadable';
  }
}

function chunks<T>(items: T[], size: number): T[][] {
  const result: T[][] = [];
  for (let start = 0; start < items.length; start += size)
    result.push(items.slice(start, start + size));
  return result;
}

/** Batches of at most 10 entries whose messages together stay within the SQS size limit. */
function sizedBatches(entries: SendMessageBatchRequestEntry[]): SendMessageBatchRequestEntry[][] {
  const batches: SendMessageBatchRequestEntry[][] = [];
  let current: SendMessageBatchRequestEntry[] = [];
  let bytes = 0;
  for (const entry of entries) {
    const size = entrySize(entry);
    const full = current.length === SQS_BATCH_LIMIT || bytes + size > SQS_MAX_MESSAGE_BYTES;
    if (current.length > 0 && full) {
      batches.push(current);
      current = [];
      bytes = 0;
    }
    current.push(entry);
    bytes += size;
  }
  if (current.length > 0) batches.push(current);
  return batches;
}

/** A message's size as SQS counts it: the body and every attribute's name, type and value. */
function entrySize(entry: SendMessageBatchRequestEntry): number {
  let bytes = Buffer.byteLength(entry.MessageBody ?? '');
  for (const [name, value] of Object.entries(entry.MessageAttributes ?? {}))
    bytes += Buffer.byteLength(name + (value.DataType ?? '') + (value.StringValue ?? ''));
  return bytes;
}

function batchError(action: string, url: string, failures: Failure[]): TaskqError {
  const name = url.slice(url.lastIndexOf('/') + 1);
  return new TaskqError(
    'SQS_BATCH_FAILED',
    `Could not ${action} SQS queue "${name}" for ${failures.length} message(s); ` +
      `the first failed with ${failures[0]!.why}`,
  );
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
