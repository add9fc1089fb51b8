import { randomUUID } from 'node:crypto';

import type { MemoryBrokerOptions } from '../config/types.js';
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

interface Entry {
  body: unknown;
  receipt: string | null;
  visibleAt: number;
  deliveries: number;
  sentAt: Date;
}

/**
 * A queue in the memory of one process: for tests, for applications that run their workers in
 * the same process, and (with `sync`) for tasks that run inside `enqueue` itself. Nothing
 * survives the process; messages are leased like on the other brokers.
 */
export class MemoryBroker implements Broker {
  readonly type = 'memory' as const;
  readonly transactional = false;
  readonly longPoll = false;
  readonly maxMessageBytes = 16 * 1024 * 1024;
  readonly receiveLimit: number;
  readonly sync: boolean;

  private readonly entries: Entry[] = [];
  private readonly deadLetters: { body: unknown; reason: string }[] = [];
  private readonly announcer = new WorkAnnouncer();

  constructor(
    readonly queue: string,
    options: MemoryBrokerOptions,
    readonly leaseSeconds = 300,
  ) {
    this.receiveLimit = options.receive;
    this.sync = options.sync;
  }

  async init(): Promise<void> {}

  async push(messages: OutgoingMessage[]): Promise<void> {
    const now = Date.now();
    for (const { message, delaySeconds } of messages) {
      this.entries.push({
        body: structuredClone(message),
        receipt: null,
        visibleAt: now + delaySeconds * 1000,
        deliveries: 0,
        sentAt: new Date(now),
      });
    }
    this.announce();
  }

  async receive(max: number): Promise<ReceivedMessage[]> {
    const now = Date.now();
    const taken: ReceivedMessage[] = [];
    for (const entry of this.entries) {
      if (taken.length >= max) break;
      if (entry.visibleAt > now) continue;
      entry.receipt = randomUUID();
      entry.deliveries += 1;
      entry.visibleAt = now + this.leaseSeconds * 1000;
      taken.push({
        queue: this.queue,
        body: structuredClone(entry.body),
        receipt: entry.receipt,
        deliveries: entry.deliveries,
        sentAt: entry.sentAt,
      });
    }
    return taken;
  }

  async ack(messages: ReceivedMessage[]): Promise<void> {
    this.remove(messages);
  }

  async release(messages: ReceivedMessage[], delaySeconds: number): Promise<void> {
    const visibleAt = Date.now() + delaySeconds * 1000;
    for (const entry of this.find(messages)) {
      entry.receipt = null;
      entry.visibleAt = visibleAt;
    }
    this.announce(delaySeconds);
  }

  async deadLetter(messages: ReceivedMessage[], reason: string): Promise<void> {
    for (const entry of this.remove(messages)) this.deadLetters.push({ body: entry.body, reason });
  }

  async extendLease(messages: ReceivedMessage[], seconds: number): Promise<void> {
    const visibleAt = Date.now() + seconds * 1000;
    for (const entry of this.find(messages)) entry.visibleAt = Math.max(entry.visibleAt, visibleAt);
  }

  async counts(): Promise<QueueCounts> {
    let inFlight = 0;
    for (const entry of this.entries)
      if (entry.receipt !== null && entry.visibleAt > Date.now()) inFlight += 1;
    return { waiting: this.entries.length - inFlight, inFlight };
  }

  async probe(refs: MessageRef[]): Promise<Map<string, MessagePresence>> {
    const held = new Set(this.entries.map((entry) => taskIdOf(entry.body)));
    return new Map(refs.map((ref) => [ref.taskId, held.has(ref.taskId) ? 'present' : 'missing']));
  }

  async redeliver(refs: MessageRef[]): Promise<Set<string>> {
    const wanted = new Set(refs.map((ref) => ref.taskId));
    const moved = new Set<string>();
    const now = Date.now();
    for (const entry of this.entries) {
      const id = taskIdOf(entry.body);
      if (id === null || !wanted.has(id)) continue;
      entry.receipt = null;
      entry.visibleAt = now;
      moved.add(id);
    }
    if (moved.size > 0) this.announce();
    return moved;
  }

  async requeue(messages: TaskMessage[]): Promise<void> {
    await this.push(messages.map((message) => ({ message, delaySeconds: 0 })));
  }

  /** The messages dead-lettered so far, for inspection. */
  failed(): readonly { body: unknown; reason: string }[] {
    return this.deadLetters;
  }

  onWork(listener: () => void): () => void {
    return this.announcer.subscribe(listener);
  }

  async close(): Promise<void> {
    this.announcer.close();
  }

  private announce(delaySeconds = 0): void {
    this.announcer.announce(delaySeconds);
  }

  private find(messages: ReceivedMessage[]): Entry[] {
    const receipts = new Set(messages.map((message) => message.receipt));
    return this.entries.filter((entry) => entry.receipt !== null && receipts.has(entry.receipt));
  }

  private remove(messages: ReceivedMessage[]): Entry[] {
    const receipts = new Set(messages.map((message) => message.receipt));
    const removed: Entry[] = [];
    for (let index = this.entries.length - 1; index >= 0; index -= 1) {
      const entry = this.entries[index]!;
      if (entry.receipt !== null && receipts.has(entry.receipt)) {
        removed.push(entry);
        this.entries.splice(index, 1);
      }
    }
    return removed;
  }
}

/** The task id of a message body as this broker keeps it: the task message object itself. */
function taskIdOf(body: unknown): string | null {
  const id = (body as { id?: unknown } | null)?.id;
  return typeof id === 'string' ? id : null;
}
