/**
 * The entry of a worker thread (piscina): runs one handler by name, with a context whose
 * progress, result file and child enqueues travel to the worker over a MessagePort, and whose
 * AbortSignal follows the worker's.
 */
import { threadId, type MessagePort } from 'node:worker_threads';

import { createLogger } from '../src/log/logger.js';
import { loadHandlers, type HandlerRegistry, type TaskContext } from '../src/tasks/handlers.js';
import type { ThreadReply, ThreadRequest, ThreadTask } from '../supervisor/thread-protocol.js';

const registries = new Map<string, Promise<HandlerRegistry>>();
const logger = createLogger({ bindings: { thread: true } });

function registry(modulePath: string): Promise<HandlerRegistry> {
  let loading = registries.get(modulePath);
  if (!loading) {
    loading = loadHandlers(modulePath);
    registries.set(modulePath, loading);
  }
  return loading;
}

/** Sends a request to the worker and waits for its answer. */
function call(port: MessagePort, request: ThreadRequest): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const onReply = (reply: ThreadReply) => {
      if (reply.seq !== request.seq) return;
      port.off('message', onReply);
      if (reply.ok) resolve(reply.value);
      else reject(new Error(reply.error));
    };
    port.on('message', onReply);
    port.postMessage(request);
  });
}

export default async function runInThread(task: ThreadTask): Promise<unknown> {
  const handler = (await registry(task.handlers)).get(task.name);
  const { port } = task;
  const abort = new AbortController();
  let seq = 0;
  port.on('message', (message: ThreadReply | { kind: 'abort' }) => {
    if ('kind' in message && message.kind === 'abort')
      abort.abort(new Error('aborted by the worker'));
  });
  port.unref();
  port.postMessage({ kind: 'thread', seq: 0, threadId } satisfies ThreadRequest);

  const context: TaskContext = {
    taskId: task.taskId,
    attempt: task.attempt,
    queue: task.queue,
    signal: abort.signal,
    logger: logger.child({ taskId: task.taskId, task: task.name, attempt: task.attempt }),
    progress: (fraction, message) =>
      port.postMessage({ kind: 'progress', seq: 0, fraction, message } satisfies ThreadRequest),
    enqueueChild: async (name, parameters, options) =>
      (await call(port, {
        kind: 'enqueueChild',
        seq: ++seq,
        name,
        parameters,
        options: options ?? {},
      })) as string,
    writeResultFile: async (fileName, content) =>
      (await call(port, { kind: 'writeResultFile', seq: ++seq, fileName, content })) as {
        path: string;
        bytes: number;
      },
  };
  try {
    return await handler.run(task.parameters, context);
  } finally {
    port.close();
  }
}
