import type { MessagePort } from 'node:worker_threads';

/** What a worker thread is given to run one task. */
export interface ThreadTask {
  handlers: string;
  name: string;
  parameters: unknown;
  taskId: string;
  attempt: number;
  queue: string;
  port: MessagePort;
}

/** From the thread to the worker: the parts of the task context that need the worker. */
export type ThreadRequest =
  | { kind: 'progress'; seq: number; fraction: number; message?: string }
  | {
      kind: 'enqueueChild';
      seq: number;
      name: string;
      parameters: unknown;
      options: { label?: string; queue?: string };
    }
  | { kind: 'writeResultFile'; seq: number; fileName: string; content: string | Uint8Array }
  /** Sent first: the thread that runs the task, so that the worker can end it if it must. */
  | { kind: 'thread'; seq: 0; threadId: number };

export type ThreadReply =
  { seq: number; ok: true; value: unknown } | { seq: number; ok: false; error: string };
