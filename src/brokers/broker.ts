import type pg from 'pg';

import type { SqlStatement } from '../database/connection.js';

import type { BrokerType } from '../config/types.js';
import type { TaskMessage } from '../tasks/message.js';

/** A message on its way into a queue. */
export interface OutgoingMessage {
  message: TaskMessage;
  /** The message becomes visible to workers after this many seconds. */
  delaySeconds: number;
}

/** A message handed out by a broker, leased to the receiver until it is acked or released. */
export interface ReceivedMessage {
  queue: string;
  /** The task, as the broker holds it: an object, or text still to be parsed. */
  body: unknown;
  /** The broker's handle for ack, release and lease extension. */
  receipt: string;
  /** How many times the broker has handed this message out, this time included. */
  deliveries: number;
  /** When the message was sent, where the broker knows it. */
  sentAt: Date | null;
}

/** A task's message as the task log knows it, for the operations on stuck tasks. */
export interface MessageRef {
  taskId: string;
  /** The broker's receipt of the task's last start, as the task log recorded it; null before any. */
  receipt: string | null;
}

/** Whether a broker still holds a task's message: waiting, delayed or leased. */
export type MessagePresence = 'present' | 'missing' | 'unknown';

export interface QueueCounts {
  /** Messages ready or delayed, not handed out. */
  waiting: number;
  /** Messages handed out and neither acked nor released. */
  inFlight: number;
}

/**
 * One queue on one broker. Every broker passes the same contract suite (test/brokers), and the
 * rest of taskq reaches a queue only through this interface.
 */
export interface Broker {
  readonly type: BrokerType;
  readonly queue: string;
  /** The most messages one `receive` returns. */
  readonly receiveLimit: number;
  /** The largest message the broker accepts, in bytes of JSON. */
  readonly maxMessageBytes: number;
  /** How long a received message stays leased; workers extend it for tasks that run longer. */
  readonly leaseSeconds: number;
  /** True when `receive` may wait for messages (long polling), so callers must not block on it. */
  readonly longPoll: boolean;
  /** True when `push` can join the task log's transaction, so both commit together. */
  readonly transactional: boolean;

  /** Creates the queue where the broker keeps it; safe to repeat. */
  init(): Promise<void>;
  /** Sends messages; with `db`, inside that transaction when the broker is transactional. */
  push(messages: OutgoingMessage[], db?: pg.PoolClient): Promise<void>;
  /**
   * Transactional brokers only: sends messages in one statement with `companion` (the task
   * log's insert), so that both are written or neither, in a single round trip.
   */
  pushAlong?(messages: OutgoingMessage[], companion: SqlStatement): Promise<void>;
  /** Takes up to `max` visible messages, each leased for the broker's lease time. */
  receive(max: number): Promise<ReceivedMessage[]>;
  /** Removes messages whose outcome is recorded; with `db`, inside that transaction when the broker is transactional. */
  ack(messages: ReceivedMessage[], db?: pg.PoolClient): Promise<void>;
  /** Makes messages visible again after `delaySeconds`, to be received anew. */
  release(messages: ReceivedMessage[], delaySeconds: number): Promise<void>;
  /** Removes messages that will never succeed, keeping them where the broker keeps failures. */
  deadLetter(messages: ReceivedMessage[], reason: string): Promise<void>;
  /** Keeps messages leased for `seconds` more, for tasks that run long. */
  extendLease(messages: ReceivedMessage[], seconds: number): Promise<void>;
  counts(): Promise<QueueCounts>;
  /**
   * Tells, per task id, whether the broker still holds the task's message; 'unknown' where it
   * cannot tell without disturbing the message (SQS shows no message without receiving it).
   */
  probe(refs: MessageRef[]): Promise<Map<string, MessagePresence>>;
  /**
   * Makes the messages of these tasks available to workers at once, whether they wait, are
   * delayed or are leased to a worker that is gone; returns the task ids whose messages it moved.
   */
  redeliver(refs: MessageRef[]): Promise<Set<string>>;
  /**
   * Sends anew the messages of tasks whose message is gone (orphans), under the same task ids.
   * A copy that turns out to be a duplicate is harmless: the task log starts a task once.
   */
  requeue(messages: TaskMessage[]): Promise<void>;
  /** Calls `listener` when new work may be waiting; returns the unsubscribe function. */
  onWork(listener: () => void): () => void;
  close(): Promise<void>;
}
