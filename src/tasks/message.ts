import { describeValue, isPlainObject } from '../config/checker.js';
import { parametersProblem } from './parameters.js';

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
    const reason = `the message has version ${describeValue(value.v)}; this taskq reads version ${MESSAGE_VERSION}`;
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
  // A message with no task-log row is written into the task log as it stands, so whatever
  // PostgreSQL would refuse there is refused here, once, rather than on every delivery.
  if (!isIsoTime(value.createdAt as string))
    return { ok: false, taskId, reason: 'the message field "createdAt" is not an ISO 8601 time' };
  for (const field of ['name', 'queue', 'owner', 'label'] as const) {
    if ((value[field] as string).includes('\u0000'))
      return { ok: false, taskId, reason: `the message field "${field}" holds a NUL character` };
  }
  const problem = parametersProblem(value.parameters ?? null);
  if (problem) return { ok: false, taskId, reason: `the message's ${problem}` };
  return { ok: true, message: value as unknown as TaskMessage };
}

const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

function isIsoTime(text: string): boolean {
  return ISO_TIME.test(text) && Number.isFinite(Date.parse(text));
}
