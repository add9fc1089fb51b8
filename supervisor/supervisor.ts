import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

import type { FastifyInstance } from 'fastify';

import { setQueueWeightInText } from '../src/config/edit.js';
import { configFilePath, loadConfig, type LoadOptions } from '../src/config/load.js';
import type { TaskqConfig } from '../src/config/types.js';
import { ConfigError } from '../src/errors.js';
import { registerApi, type FleetView, type SupervisorControl } from '../src/http/api.js';
import { TokenSet } from '../src/http/auth.js';
import { ApiError } from '../src/http/errors.js';
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
import { QueueHistory } from './queue-history.js';
import type { RestartReason } from './worker-slot.js';
import { WeightController } from './weight-controller.js';
import { webPageRoutes } from './web-page.js';

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
  private history: QueueHistory | null = null;
  /** Weight changes through the API, one at a time, as each rewrites the file. */
  private configWrites: Promise<unknown> = Promise.resolve();
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
      // The supervisor outlives its workers: a lease of a worker it never heard of (one killed
      // between receiving and reporting) still runs out and its task comes back.
      supervise: true,
    });
    this.fleet = await this.createFleet(this.runtime);
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
          routing: {
            associations: this.config.associations,
            defaultQueue: this.config.defaultQueue,
          },
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
    // Checked before anything listens: a bad token setting must not leave the API open.
    const tokens = TokenSet.fromConfig(config);
    this.history = new QueueHistory(this.fleet, () => this.controller?.snapshot() ?? []);
    const runtime = this.runtime;
    const control = this.apiControl();
    const httpOptions = {
      host: config.http.host,
      port: config.http.port,
      logger: this.logger,
      health: () => this.health(),
      plugins: [
        ...(metrics ? [metrics.route] : []),
        (app: FastifyInstance) =>
          registerApi(app, { runtime, control, tokens, logger: this.logger }),
        webPageRoutes,
      ],
    };
    this.http = await createHttpServer(httpOptions);
    this.address = await listen(this.http, httpOptions);

    await this.control.start();
    await this.fleet.start();
    this.controller.start();
    this.history.start();
    this.retention = new RetentionSweeper(this.runtime, this.logger);
    this.retention.start();
  }

  private async createFleet(runtime: Runtime): Promise<Fleet> {
    if (this.options.isolation === 'thread') {
      // Loaded only here: a fleet of processes has no use for the thread pool's code.
      const { ThreadFleet } = await import('./thread-fleet.js');
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

  /**
   * SIGHUP: applies a changed configuration file, or keeps the old one if the new one is broken.
   * Returns whether the file was applied.
   */
  reload(): boolean {
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
      return false;
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
    return true;
  }

  /** The supervisor as the REST API sees it. */
  private apiControl(): SupervisorControl {
    return {
      fleet: (): FleetView => ({
        pid: process.pid,
        isolation: this.options.isolation,
        paused: this.fleet?.isPaused ?? false,
        stopping: this.stopping !== null,
        workers: this.fleet?.status() ?? [],
      }),
      pauseFleet: (actor) => {
        this.logger.info({ actor }, 'pause asked through the API');
        this.pause();
      },
      resumeFleet: (actor) => {
        this.logger.info({ actor }, 'resume asked through the API');
        this.resume();
      },
      queues: () =>
        (this.controller?.snapshot() ?? []).map((queue) => ({
          name: queue.name,
          broker: queue.broker,
          weight: { configured: queue.configuredWeight, effective: queue.effectiveWeight },
          waiting: queue.waiting,
          inFlight: queue.inFlight,
          running: queue.running,
          paused: false,
          history: this.history?.of(queue.name) ?? [],
        })),
      setQueueWeight: (name, weight, actor) => {
        const write = this.configWrites.then(() => this.writeQueueWeight(name, weight, actor));
        this.configWrites = write.catch(() => undefined);
        return write;
      },
    };
  }

  /**
   * Writes a queue's weight into the configuration file, changing only that number, checks the
   * new file as a whole, and applies it as SIGHUP does.
   */
  private async writeQueueWeight(name: string, weight: number, actor: string): Promise<void> {
    const { file } = configFilePath(this.options.load);
    const text = await fs.readFile(file, 'utf8').catch(() => null);
    if (text === null) {
      throw new ApiError(
        409,
        'NO_CONFIG_FILE',
        `The supervisor runs on the built-in configuration: there is no file (${file}) to write the weight to. Create one with taskq init`,
      );
    }
    let changed: string;
    try {
      changed = setQueueWeightInText(text, name, weight);
    } catch (error) {
      throw new ApiError(409, 'CONFIG_NOT_WRITABLE', `${file}: ${(error as Error).message}`);
    }
    const temporary = `${file}.${process.pid}.tmp`;
    await fs.writeFile(temporary, changed);
    try {
      loadConfig({ ...this.options.load, configPath: temporary });
    } catch (error) {
      await fs.rm(temporary, { force: true });
      const problems = error instanceof ConfigError ? error.problems : [];
      throw new ApiError(
        409,
        'CONFIG_INVALID',
        `The configuration with this weight is refused: ${(error as Error).message}`,
        { problems },
      );
    }
    await fs.rename(temporary, file);
    this.logger.info({ actor, queue: name, weight, file }, 'queue weight changed through the API');
    if (!this.reload())
      throw new ApiError(
        409,
        'CONFIG_INVALID',
        `${file} was written but could not be applied; see the supervisor's log`,
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
    this.history?.stop();
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
