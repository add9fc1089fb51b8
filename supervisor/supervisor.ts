import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import type { FastifyInstance } from 'fastify';

import { configFilePath, loadConfig, type LoadOptions } from '../src/config/load.js';
import type { TaskqConfig } from '../src/config/types.js';
import { ConfigError } from '../src/errors.js';
import type { Logger } from '../src/log/logger.js';
import { openRuntime, type Runtime } from '../src/runtime.js';
import { HandlerRegistry } from '../src/tasks/handlers.js';
import { ControlWatch } from './control-watch.js';
import type { Fleet } from './fleet.js';
import { createHttpServer, listen } from './http-server.js';
import { SupervisorMetrics } from './metrics.js';
import { releaseOrphans } from './orphans.js';
import { RetentionSweeper } from './retention.js';
import { PidFile } from './pid-file.js';
import { ProcessFleet } from './process-fleet.js';
import { ThreadFleet } from './thread-fleet.js';
import type { RestartReason } from './worker-slot.js';
import { WeightController } from './weight-controller.js';

export interface SupervisorOptions {
  load: LoadOptions;
  workers: number;
  isolation: 'process' | 'thread';
  /** Dedicate the fleet to this queue. */
  queue?: string;
  shutdownTimeoutSeconds: number;
  logger: Logger;
}

const PROCESS_ENTRY = fileURLToPath(new URL('../workers/process-entry.js', import.meta.url));

/**
 * The supervisor: owns the fleet, the weight controller and the HTTP server, handles the
 * signals of the process, releases the tasks of workers that die, and reloads its
 * configuration on SIGHUP. It talks to its workers only by signals and messages.
 */
export class Supervisor {
  private config: TaskqConfig;
  private runtime: Runtime | null = null;
  private fleet: Fleet | null = null;
  private controller: WeightController | null = null;
  private control: ControlWatch | null = null;
  private http: FastifyInstance | null = null;
  private retention: RetentionSweeper | null = null;
  private pidFile: PidFile;
  private stopping: Promise<void> | null = null;
  private readonly logger: Logger;
  private readonly restarts: Record<RestartReason, number> = {
    crash: 0,
    recycle: 0,
    unresponsive: 0,
  };
  private readonly orphansReleased = new Map<string, number>();
  private resolveDone: () => void = () => {};
  /** Resolves when the supervisor has stopped. */
  readonly done = new Promise<void>((resolve) => (this.resolveDone = resolve));
  address: string | null = null;

  constructor(private readonly options: SupervisorOptions) {
    this.logger = options.logger.child({ worker: 'supervisor' });
    this.config = loadConfig(options.load);
    this.pidFile = PidFile.in(this.config.stateDir);
  }

  get configuration(): TaskqConfig {
    return this.config;
  }

  async start(): Promise<void> {
    this.pidFile.acquire();
    try {
      await this.startParts();
    } catch (error) {
      await this.closeParts();
      this.pidFile.release();
      throw error;
    }
    this.logger.info(
      {
        workers: this.options.workers,
        isolation: this.options.isolation,
        queue: this.options.queue ?? 'all',
        pid: process.pid,
      },
      'supervisor started',
    );
  }

  private async startParts(): Promise<void> {
    const config = this.config;
    if (this.options.queue && !config.queues.some((queue) => queue.name === this.options.queue)) {
      throw new ConfigError(config.source, [
        {
          path: '--queue',
          message: `names no configured queue (got "${this.options.queue}"; configured: ${config.queues.map((q) => q.name).join(', ')})`,
        },
      ]);
    }
    // Worker processes load the handlers; in thread isolation the supervisor's own worker does.
    const threads = this.options.isolation === 'thread';
    this.runtime = await openRuntime(config, this.options.logger, {
      handlers: threads ? undefined : new HandlerRegistry(),
      initQueues: true,
      supervise: threads,
    });
    this.fleet = this.createFleet(this.runtime);
    this.fleet.on(
      'orphans',
      ({ workerId, holdings, reason }) => void this.release(workerId, holdings, reason),
    );
    this.fleet.on('restart', (reason) => (this.restarts[reason] += 1));
    this.control = new ControlWatch({
      runtime: this.runtime,
      fleet: this.fleet,
      cancelGraceSeconds: () => this.config.supervisor.cancelGraceSeconds,
      logger: this.logger,
    });

    const queues = config.queues.filter(
      (queue) => !this.options.queue || queue.name === this.options.queue,
    );
    this.controller = new WeightController(
      queues,
      this.runtime.brokers,
      () => this.fleet!.runningByQueue(),
      (weights) =>
        this.fleet?.configure({
          type: 'configure',
          strategy: this.config.strategy,
          weights: [...weights],
        }),
      this.logger,
    );

    const metrics = config.metrics.enabled
      ? new SupervisorMetrics({
          fleet: this.fleet,
          controller: this.controller,
          runtime: this.runtime,
          config: () => this.config,
          restarts: () => this.restarts,
          queuePaused: (queue) => this.control?.isPaused(queue) ?? false,
          orphansReleased: () => this.orphansReleased,
          logger: this.logger,
        })
      : null;
    const httpOptions = {
      host: config.http.host,
      port: config.http.port,
      logger: this.logger,
      health: () => this.health(),
      plugins: metrics ? [metrics.route] : [],
    };
    this.http = await createHttpServer(httpOptions);
    this.address = await listen(this.http, httpOptions);

    await this.control.start();
    await this.fleet.start();
    this.controller.start();
    this.retention = new RetentionSweeper(this.runtime, this.logger);
    this.retention.start();
  }

  private createFleet(runtime: Runtime): Fleet {
    if (this.options.isolation === 'thread') {
      return new ThreadFleet({ threads: this.options.workers, queue: this.options.queue, runtime });
    }
    return new ProcessFleet({
      workers: this.options.workers,
      entry: PROCESS_ENTRY,
      args: this.options.queue ? [`--queue=${this.options.queue}`] : [],
      env: {
        ...process.env,
        TASKQ_DATABASE_URL: runtime.db.url,
        ...configEnvironment(this.options.load),
        TASKQ_HOME: this.config.stateDir,
        TASKQ_WORKER_SHUTDOWN_TIMEOUT_SECONDS: String(this.options.shutdownTimeoutSeconds),
      },
      config: this.config,
      logger: this.logger,
      maxMemoryMb: this.config.supervisor.maxMemoryMb,
      maxTasks: this.config.supervisor.maxTasks,
      shutdownTimeoutSeconds: this.options.shutdownTimeoutSeconds,
    });
  }

  pause(): void {
    if (this.fleet?.isPaused) return;
    this.fleet?.pause();
    this.logger.info('fleet paused: no task starts until SIGCONT');
  }

  resume(): void {
    if (!this.fleet?.isPaused) return;
    this.fleet.resume();
    this.logger.info('fleet resumed');
  }

  /** SIGHUP: applies a changed configuration file, or keeps the old one if the new one is broken. */
  reload(): void {
    let next: TaskqConfig;
    try {
      next = loadConfig(this.options.load);
    } catch (error) {
      const problems =
        error instanceof ConfigError
          ? error.problems
          : [{ path: '(file)', message: String(error) }];
      this.logger.error(
        { problems },
        'configuration reload refused; the running configuration stays',
      );
      return;
    }
    const known = new Set(this.config.queues.map((queue) => queue.name));
    const added = next.queues.filter((queue) => !known.has(queue.name)).map((queue) => queue.name);
    if (added.length > 0)
      this.logger.warn({ added }, 'new queues are served after a restart of the supervisor');
    const queues = next.queues.filter(
      (queue) =>
        known.has(queue.name) && (!this.options.queue || queue.name === this.options.queue),
    );
    this.config = {
      ...next,
      queues: this.config.queues.map(
        (queue) => next.queues.find((q) => q.name === queue.name) ?? queue,
      ),
    };
    this.runtime?.dispatcher.update(this.config);
    this.controller?.update(queues);
    this.logger.info(
      {
        strategy: next.strategy,
        weights: Object.fromEntries(queues.map((queue) => [queue.name, queue.weight])),
      },
      'configuration reloaded',
    );
  }

  /** Drains the fleet and stops; a second call returns the same promise. */
  stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    this.stopping ??= this.drain(signal);
    return this.stopping;
  }

  /** A second stop signal: running tasks are aborted and released at once. */
  async forceStop(): Promise<void> {
    this.logger.warn('stopping at once: running tasks are aborted and released');
    await this.fleet?.forceStop();
    await this.stop();
  }

  private async drain(signal: NodeJS.Signals): Promise<void> {
    const timeout = this.options.shutdownTimeoutSeconds;
    this.logger.info(
      { signal, timeoutSeconds: timeout },
      'draining: no new tasks; running ones get the timeout to finish',
    );
    this.controller?.stop();
    const before = this.totalReleased();
    const summary = await this.fleet?.stop(signal, timeout);
    await this.pendingReleases;
    this.logger.info(
      {
        runningAtSignal: summary?.runningAtSignal ?? 0,
        releasedBySupervisor: this.totalReleased() - before,
        killed: summary?.killed ?? [],
      },
      'fleet stopped',
    );
    await this.closeParts();
    this.pidFile.release();
    this.logger.info('supervisor stopped');
    this.resolveDone();
  }

  private async closeParts(): Promise<void> {
    await this.retention?.stop();
    await this.http?.close().catch(() => undefined);
    await this.control?.close();
    await this.runtime?.close();
  }

  private pendingReleases: Promise<void> = Promise.resolve();

  private release(
    workerId: string,
    holdings: { id: string; queue: string; receipt: string }[],
    reason: string,
  ): void {
    const runtime = this.runtime;
    if (!runtime) return;
    this.pendingReleases = this.pendingReleases.then(async () => {
      try {
        const counts = await releaseOrphans(runtime, workerId, holdings, reason);
        for (const [queue, count] of counts)
          this.orphansReleased.set(queue, (this.orphansReleased.get(queue) ?? 0) + count);
        this.logger.warn(
          { workerId, tasks: holdings.map((h) => h.id), reason },
          'released the tasks of a dead worker',
        );
      } catch (error) {
        this.logger.error(
          { err: error, workerId },
          'could not release the tasks of a dead worker; their leases will',
        );
      }
    });
  }

  private totalReleased(): number {
    return [...this.orphansReleased.values()].reduce((sum, count) => sum + count, 0);
  }

  health(): unknown {
    const workers = this.fleet?.status() ?? [];
    const queues = this.controller?.snapshot() ?? [];
    const isPaused = (queue: string) => this.control?.isPaused(queue) ?? false;
    return {
      status: this.stopping ? 'stopping' : 'ok',
      pid: process.pid,
      isolation: this.options.isolation,
      // The fleet's pause (SIGUSR2), apart from the queue pauses kept in the database.
      paused: this.fleet?.isPaused ?? false,
      pausedQueues: queues.filter((queue) => isPaused(queue.name)).map((queue) => queue.name),
      queuePauses: this.control?.pausedQueues ?? { all: null, queues: [] },
      strategy: this.config.strategy,
      workers,
      queues: queues.map((queue) => ({
        name: queue.name,
        paused: isPaused(queue.name),
        broker: queue.broker,
        weight: { configured: queue.configuredWeight, effective: queue.effectiveWeight },
        waiting: queue.waiting,
        inFlight: queue.inFlight,
        running: queue.running,
      })),
      restarts: this.restarts,
      orphansReleased: Object.fromEntries(this.orphansReleased),
    };
  }
}

/** Workers read the same file as their supervisor, wherever they start. */
function configEnvironment(load: LoadOptions): NodeJS.ProcessEnv {
  const { file } = configFilePath(load);
  return existsSync(file) ? { TASKQ_CONFIG: file } : {};
}
