import { fileURLToPath } from 'node:url';
import { MessageChannel } from 'node:worker_threads';

import { Piscina } from 'piscina';

import type { HandlerDefinition, TaskContext } from '../src/tasks/handlers.js';
import type { Executor } from '../src/worker/executor.js';
import type { ThreadReply, ThreadRequest, ThreadTask } from './thread-protocol.js';

const THREAD_ENTRY = fileURLToPath(new URL('../workers/thread-entry.js', import.meta.url));

/**
 * Runs handlers in a piscina pool, so that a handler that computes for seconds never blocks the
 * event loop that keeps leases, heartbeats and signals going. The context's calls come back over
 * a MessagePort and are served by the worker's own context.
 */
export class ThreadExecutor implements Executor {
  private readonly pool: Piscina<ThreadTask, unknown>;
  /**
   * Per running task, the thread that runs it. A task is not given to piscina with an abort
   * signal: piscina runs an abortable task alone in its thread, which would take away the
   * sharing of threads; a thread that must end is ended by its id instead.
   */
  private readonly threadOf = new Map<string, number>();

  /**
   * `tasksPerThread` handlers run at once in each thread, as a worker process runs
   * `worker.concurrency` at once: a thread is busy only while a handler computes, and handlers
   * that wait (on I/O, on timers) share it.
   */
  constructor(
    private readonly handlersModule: string,
    threads: number,
    tasksPerThread: number,
  ) {
    this.pool = new Piscina({
      filename: THREAD_ENTRY,
      minThreads: threads,
      maxThreads: threads,
      concurrentTasksPerWorker: tasksPerThread,
      idleTimeout: 60_000,
    });
  }

  async run(
    name: string,
    _handler: HandlerDefinition,
    parameters: unknown,
    context: TaskContext,
  ): Promise<unknown> {
    const { port1, port2 } = new MessageChannel();
    port1.on('message', (request: ThreadRequest) => {
      if (request.kind === 'thread') this.threadOf.set(context.taskId, request.threadId);
      else void this.serve(port1, request, context);
    });
    const onAbort = () => port1.postMessage({ kind: 'abort' });
    context.signal.addEventListener('abort', onAbort, { once: true });
    try {
      const task: ThreadTask = {
        handlers: this.handlersModule,
        name,
        parameters,
        taskId: context.taskId,
        attempt: context.attempt,
        queue: context.queue,
        port: port2,
      };
      return await this.pool.run(task, { transferList: [port2] });
    } finally {
      this.threadOf.delete(context.taskId);
      context.signal.removeEventListener('abort', onAbort);
      port1.close();
    }
  }

  /**
   * Ends the thread that runs a task whose handler ignores its AbortSignal; piscina starts a
   * new thread in its place. Other tasks that shared the thread end with an error and are
   * retried as their retry settings say. Returns false when no thread is known to run the task.
   */
  terminate(taskId: string): boolean {
    const threadId = this.threadOf.get(taskId);
    const thread = this.pool.threads.find((candidate) => candidate.threadId === threadId);
    if (threadId === undefined || !thread) return false;
    void thread.terminate();
    return true;
  }

  private async serve(
    port: MessageChannel['port1'],
    request: Exclude<ThreadRequest, { kind: 'thread' }>,
    context: TaskContext,
  ): Promise<void> {
    if (request.kind === 'progress') {
      context.progress(request.fraction, request.message);
      return;
    }
    let reply: ThreadReply;
    try {
      const value =
        request.kind === 'enqueueChild'
          ? await context.enqueueChild(request.name, request.parameters, request.options)
          : await context.writeResultFile(request.fileName, request.content);
      reply = { seq: request.seq, ok: true, value };
    } catch (error) {
      reply = { seq: request.seq, ok: false, error: (error as Error).message };
    }
    port.postMessage(reply);
  }

  /** Lets running handlers finish for `timeoutMs`, then ends the threads. */
  async close(timeoutMs = 1000): Promise<void> {
    await Promise.race([
      this.pool.close(),
      new Promise((resolve) => setTimeout(resolve, timeoutMs)),
    ]);
    await this.pool.destroy();
  }
}
