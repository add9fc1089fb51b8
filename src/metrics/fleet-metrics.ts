import { Counter, Gauge, type Registry } from 'prom-client';

import type { QueueAges } from './task-ages.js';

/** What the supervisor knows of a queue from its brokers, as its weight controller last read it. */
export interface QueueReading {
  name: string;
  configuredWeight: number;
  effectiveWeight: number;
  /** Null when the broker could not count. */
  waiting: number | null;
  inFlight: number | null;
}

/** Where the fleet's gauges read their values, each at scrape time. */
export interface FleetReadings {
  queues(): readonly QueueReading[];
  ages(queues: readonly string[]): Promise<Map<string, QueueAges>>;
  workerStates(): readonly string[];
  paused(): boolean;
  /** Whether a queue is paused in the database (taskq pause). */
  queuePaused(queue: string): boolean;
  restarts(): Readonly<Record<string, number>>;
  orphansReleased(): ReadonlyMap<string, number>;
  /** A reading that failed; its metrics are left out of this scrape. */
  onError(what: string, error: unknown): void;
}

/** The worker states taskq_workers reports; the slot's other states (backoff, given-up) are not workers. */
export const WORKER_STATES = ['running', 'paused', 'stopping'] as const;

/**
 * Registers the supervisor's view of the fleet and its queues on `registry`: gauges and
 * counters whose values are read from `readings` at each scrape, never sampled in between.
 */
export function registerFleetMetrics(registry: Registry, readings: FleetReadings): void {
  const registers = [registry];
  const queueNames = () => readings.queues().map((queue) => queue.name);

  new Gauge({
    name: 'taskq_queue_depth',
    help: 'Tasks waiting in the queue, as its broker counts them.',
    labelNames: ['queue'],
    registers,
    collect() {
      this.reset();
      for (const queue of readings.queues())
        if (queue.waiting !== null) this.set({ queue: queue.name }, queue.waiting);
    },
  });
  new Gauge({
    name: 'taskq_queue_in_flight',
    help: 'Tasks received from the queue and not finished yet, as its broker counts them.',
    labelNames: ['queue'],
    registers,
    collect() {
      this.reset();
      for (const queue of readings.queues())
        if (queue.inFlight !== null) this.set({ queue: queue.name }, queue.inFlight);
    },
  });
  new Gauge({
    name: 'taskq_queue_weight',
    help: 'Weight of the queue: as configured, and as the weight controller sets it.',
    labelNames: ['queue', 'kind'],
    registers,
    collect() {
      this.reset();
      for (const queue of readings.queues()) {
        this.set({ queue: queue.name, kind: 'configured' }, queue.configuredWeight);
        this.set({ queue: queue.name, kind: 'effective' }, queue.effectiveWeight);
      }
    },
  });
  registerAgeMetrics(registers, readings, queueNames);
  registerWorkerMetrics(registers, readings, queueNames);
}

function registerAgeMetrics(
  registers: Registry[],
  readings: FleetReadings,
  queueNames: () => string[],
): void {
  // Both gauges are collected in the same scrape; the task log's reading is shared and cached.
  const read = () =>
    readings.ages(queueNames()).catch((error: unknown) => {
      readings.onError('task ages from the task log', error);
      return new Map<string, QueueAges>();
    });
  new Gauge({
    name: 'taskq_oldest_task_age_seconds',
    help: 'Age of the oldest task per state: waiting since it became visible, running since its attempt started.',
    labelNames: ['queue', 'state'],
    registers,
    async collect() {
      const ages = await read();
      this.reset();
      for (const [queue, age] of ages) {
        this.set({ queue, state: 'waiting' }, age.oldestWaitingSeconds);
        this.set({ queue, state: 'running' }, age.oldestRunningSeconds);
      }
    },
  });
  new Gauge({
    name: 'taskq_stuck_tasks',
    help: 'Running tasks whose attempt has run longer than metrics.stuckAfterSeconds.',
    labelNames: ['queue'],
    registers,
    async collect() {
      const ages = await read();
      this.reset();
      for (const [queue, age] of ages) this.set({ queue }, age.stuck);
    },
  });
}

function registerWorkerMetrics(
  registers: Registry[],
  readings: FleetReadings,
  queueNames: () => string[],
): void {
  new Gauge({
    name: 'taskq_workers',
    help: 'Workers of the fleet by state.',
    labelNames: ['state'],
    registers,
    collect() {
      const states = readings.workerStates();
      for (const state of WORKER_STATES)
        this.set({ state }, states.filter((each) => each === state).length);
    },
  });
  new Gauge({
    name: 'taskq_fleet_paused',
    help: '1 while the fleet is paused (SIGUSR2 to the supervisor), else 0.',
    registers,
    collect() {
      this.set(readings.paused() ? 1 : 0);
    },
  });
  new Gauge({
    name: 'taskq_queue_paused',
    help: '1 while the queue is paused in the database (taskq pause), else 0.',
    labelNames: ['queue'],
    registers,
    collect() {
      this.reset();
      for (const queue of queueNames()) this.set({ queue }, readings.queuePaused(queue) ? 1 : 0);
    },
  });
  // The supervisor keeps these totals; a scrape copies them, so both start at 0 for every label.
  new Counter({
    name: 'taskq_worker_restarts_total',
    help: 'Worker processes restarted by the supervisor, by reason.',
    labelNames: ['reason'],
    registers,
    collect() {
      this.reset();
      for (const [reason, count] of Object.entries(readings.restarts()))
        this.inc({ reason }, count);
    },
  });
  new Counter({
    name: 'taskq_orphaned_tasks_released_total',
    help: 'Tasks of dead workers that the supervisor gave back to their queue.',
    labelNames: ['queue'],
    registers,
    collect() {
      this.reset();
      const released = readings.orphansReleased();
      for (const queue of new Set([...queueNames(), ...released.keys()]))
        this.inc({ queue }, released.get(queue) ?? 0);
    },
  });
}
