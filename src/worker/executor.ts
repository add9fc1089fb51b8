import type { HandlerDefinition, TaskContext } from '../tasks/handlers.js';

/**
 * Runs a handler. The inline executor calls it on the worker's own event loop; the thread
 * executor (supervisor/thread-executor) runs it in a piscina pool so that CPU-bound work never
 * blocks the loop that keeps heartbeats and signals going.
 */
export interface Executor {
  run(
    name: string,
    handler: HandlerDefinition,
    parameters: unknown,
    context: TaskContext,
  ): Promise<unknown>;
  close(): Promise<void>;
}

export const inlineExecutor: Executor = {
  run: async (_name, handler, parameters, context) => handler.run(parameters, context),
  close: async () => {},
};
