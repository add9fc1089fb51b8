import type { SqsBrokerOptions } from '../config/types.js';
import { TaskqError } from '../errors.js';
import type { Logger } from '../log/logger.js';

/** Placeholder until the SQS broker lands: refuses to construct, naming the queue. */
export class SqsBroker {
  constructor(queue: string, _options: SqsBrokerOptions, _logger: Logger) {
    throw new TaskqError(
      'BROKER_UNAVAILABLE',
      `Queue "${queue}" is on SQS, which this build does not support yet`,
    );
  }
}
