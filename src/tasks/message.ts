import { isPlainObject } from '../config/checker.js';

/**
 * The wire form of a task, as brokers carry it. `v` is the version of this form: a worker reads
 * every version it knows and records a message of an unknown version as failed, so that old
 * messages still run after an upgrade and new ones fail loudly on an old worker.
 */
export interface TaskMessage {
  v: 1;
  id: string;
  name: string;
  queue: string;
  parameters: unknown;
  label: string;
  owner: string;
  parentId: string | null;
  createdAt: string;
}

export const MESSAGE_VERSION = 1;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function isUuid(value: unknown): value is string {
  return typeof value === 'string' && UUID.test(value);
}

export type DecodeResult =
  { ok: true; message: TaskMessage } | { ok: false; taskId: string | null; reason: string };

/** Reads a message from a broker without trusting it: every field is checked. */
export function decodeMessage(body: unknown): DecodeResult {
  let value = body;
  if (typeof body === 'string') {
    try {
      value = JSON.parse(body);
    } catch {
      return { ok: false, taskId: null, reason: 'the message is not valid JSON' };
    }
  }
  if (!isPlainObject(value))
    return { ok: false, taskId: null, reason: 'the message is not a JSON object' };

  const taskId = isUuid(value.id) ? value.id : null;
  if (value.v !== MESSAGE_VERSION) {
    const reason = `the message has version ${JSON.stringify(value.v)}; this taskq reads version ${MESSAGE_VERSION}`;
    return { ok: false, taskId, reason };
  }
  if (!taskId) return { ok: false, taskId, reason: 'the message has no valid task id' };
  for (const field of ['name', 'queue', 'owner', 'createdAt'] as const) {
    if (typeof value[field] !== 'string' || value[field] === '') {
      return {
        ok: false,
        taskId,
        reason: `the message field "${field}" is missing or not a string`,
      };
    }
  }
  if (typeof value.label !== 'string')
    return { ok: false, taskId, reason: 'the message field "label" is not a string' };
  if (value.parentId !== null && !isUuid(value.parentId)) {
    return { ok: false, taskId, reason: 'the message field "parentId" is not a task id' };
  }
  return { ok: true, message: value as unknown as TaskMessage };
}
