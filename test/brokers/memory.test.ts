import { MemoryBroker } from '../../src/brokers/memory.js';
import { brokerContract } from './contract.js';

brokerContract(
  'memory',
  async (queue, leaseSeconds) =>
    new MemoryBroker(queue, { type: 'memory', receive: 10, sync: false }, leaseSeconds),
  {
    leaseSeconds: 1,
  },
);
