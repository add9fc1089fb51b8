import type { TaskqConfig } from '../config/types.js';
import { TaskqError } from '../errors.js';
import type { HandlerDefinition } from '../tasks/handlers.js';

/**
 * Chooses the queue of a new task: the caller's explicit choice, then the handler's own choice
 * from the parameters, then the association map, then the default queue, then the first queue.
 */
export class Dispatcher {
  private queueNames: Set<string>;

  constructor(private config: Pick<TaskqConfig, 'queues' | 'associations' | 'defaultQueue'>) {
    this.queueNames = new Set(config.queues.map((queue) => queue.name));
  }

  /** Applies a reloaded configuration. */
  update(config: Pick<TaskqConfig, 'queues' | 'associations' | 'defaultQueue'>): void {
    this.config = config;
    this.queueNames = new Set(config.queues.map((queue) => queue.name));
  }

  queueFor(
    taskName: string,
    parameters: unknown,
    handler: HandlerDefinition | undefined,
    explicit?: string,
  ): string {
    if (explicit !== undefined) return this.known(explicit, 'the queue option');
    const chosen = handler?.queue?.(parameters);
    if (chosen !== undefined)
      return this.known(chosen, `the queue function of handler "${taskName}"`);
    // Own entries only: a task named "constructor" has no association from Object.prototype.
    const { associations } = this.config;
    if (Object.hasOwn(associations, taskName)) return associations[taskName]!;
    if (this.queueNames.has(this.config.defaultQueue)) return this.config.defaultQueue;
    return this.config.queues[0]!.name;
  }

  private known(queue: string, source: string): string {
    if (this.queueNames.has(queue)) return queue;
    throw new TaskqError(
      'UNKNOWN_QUEUE',
      `Queue "${queue}" named by ${source} is not configured; configured queues: ${[...this.queueNames].join(', ')}`,
    );
  }
}
