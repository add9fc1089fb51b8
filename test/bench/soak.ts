import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';

import { TaskqClient, type EnqueueRequest } from '../../src/client.js';
import { pauseQueues, resumeQueues } from '../../src/queues/pauses.js';
import type { Runtime } from '../../src/runtime.js';
import { createTestDatabase } from '../support/database.js';
import { EXAMPLE_HANDLERS, ROOT } from '../support/paths.js';
import { testConfig, testRuntime } from '../support/runtime.js';
import { startSupervisor, supervisorHome, type RunningSupervisor } from '../support/supervisor.js';
import { waitFor } from '../support/wait.js';
import { soakFigures, type WaitWindows } from './soak/figures.js';
import { parseSoakOptions, type SoakOptions } from './soak/options.js';
import { soakPlot } from './soak/plot.js';
import { produceSteadily } from './soak/producer.js';
import { samplesCsv, summaryMarkdown, summaryText, type SoakSettings } from './soak/report.js';
import { SoakSampler, waitPercentilesByWindow, type Sample } from './soak/sampler.js';

/**
 * `npm run bench:soak`: the fleet's peak throughput, then a soak at 70% of it, sampled every
 * 10 seconds: throughput, backlog, resident memory of the supervisor and of each worker, and
 * wait time. Writes test-artifacts/soak.csv, test-artifacts/soak.md and the plot
 * test/bench/results/soak.svg; exits 1 when a figure misses its target. A benchmark, not a
 * test: it takes an hour by default.
 *
 *   --minutes=N          length of the soak, warm-up included (default 60)
 *   --warmup-minutes=N   minutes before the baseline is taken (default 10)
 *   --workers=N          worker processes (default 2)
 */

/** Short tasks that still wait on something, as most real handlers do. */
const TASK: EnqueueRequest = { name: 'example.sleep', parameters: { ms: 2 } };
const TASK_LABEL = 'example.sleep {ms: 2}';
const PEAK_TASKS = 20_000;
/** The peak's producer: batches this large, as fast as they go, for the ramp and the window. */
const PEAK_BATCH = 500;
const PEAK_RAMP_MS = 5_000;
const PEAK_WINDOW_MS = 30_000;
const LOAD_FRACTION = 0.7;
const SAMPLE_INTERVAL_MS = 10_000;
const BATCH_INTERVAL_MS = 200;
const CONFIG = {
  handlers: EXAMPLE_HANDLERS,
  queues: [{ name: 'default', broker: { type: 'postgres' } }],
};
const CSV_FILE = path.join(ROOT, 'test-artifacts', 'soak.csv');
const MARKDOWN_FILE = path.join(ROOT, 'test-artifacts', 'soak.md');
const PLOT_FILE = path.join(ROOT, 'test', 'bench', 'results', 'soak.svg');

async function main(): Promise<number> {
  const options = parseSoakOptions(process.argv.slice(2));
  const interrupt = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => {
    if (interrupt.signal.aborted) {
      console.error(`${signal} again: leaving without cleaning up`);
      process.exit(130);
    }
    console.error(`${signal}: stopping the soak, then the supervisor, then dropping the database`);
    interrupt.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const cleanups: (() => Promise<unknown>)[] = [];
  try {
    const { runtime, client, supervisor } = await prepare(options, cleanups);
    const peakPerSecond = await measurePeak(runtime, client, interrupt.signal);
    const targetPerSecond = peakPerSecond * LOAD_FRACTION;
    console.error(
      `peak ${peakPerSecond.toFixed(0)} tasks/s; soaking at ${targetPerSecond.toFixed(0)}/s`,
    );

    const run = await soak(runtime, client, supervisor, options, targetPerSecond, interrupt.signal);
    const exit = await stopSupervisor(supervisor);
    console.log(`supervisor stopped by SIGTERM: exit code ${exit.code}, signal ${exit.signal}`);
    if (!run.samples.some((sample) => sample.elapsedSeconds > options.warmupMinutes * 60)) {
      console.log('interrupted before the end of the warm-up: nothing to report');
      return 130;
    }

    const settings: SoakSettings = {
      ...options,
      task: TASK_LABEL,
      peakPerSecond,
      targetPerSecond,
      interruptedAfterMinutes: interrupt.signal.aborted ? run.minutes : null,
      machine: await describeMachine(runtime),
      date: new Date().toISOString().slice(0, 10),
    };
    const passed = await report(runtime, settings, run);
    return passed && exit.code === 0 ? 0 : 1;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    for (const cleanup of cleanups.reverse()) {
      await cleanup().catch((error: Error) => console.error(`cleanup failed: ${error.message}`));
    }
  }
}

/**
 * A database of its own with the peak's backlog enqueued on a paused queue, and a supervisor
 * whose workers all run: the backlog waits for the whole fleet, so that the peak is the fleet's
 * pace and not the time its processes take to start. What it opens joins `cleanups`.
 */
async function prepare(options: SoakOptions, cleanups: (() => Promise<unknown>)[]) {
  const database = await createTestDatabase();
  cleanups.push(() => database.drop());
  const { home, configFile } = await supervisorHome(CONFIG);
  cleanups.push(() => fs.rm(home, { recursive: true, force: true }));
  const runtime = await testRuntime(await testConfig(database.url, CONFIG));
  cleanups.push(() => runtime.close());
  const client = new TaskqClient(runtime, 'soak');

  console.error(`peak: ${PEAK_TASKS} tasks of ${TASK_LABEL} through ${options.workers} workers`);
  await pauseQueues(runtime.taskLog, ['default'], 'soak');
  for (let done = 0; done < PEAK_TASKS; done += 1000) {
    await client.enqueueMany(Array.from({ length: 1000 }, () => TASK));
  }
  await runtime.db.pool.query('ANALYZE');
  const supervisor = await startFleet(options.workers, {
    TASKQ_DATABASE_URL: database.url,
    TASKQ_CONFIG: configFile,
    TASKQ_HOME: home,
  });
  cleanups.push(() => stopSupervisor(supervisor));
  return { runtime, client, supervisor };
}

async function startFleet(workers: number, env: NodeJS.ProcessEnv): Promise<RunningSupervisor> {
  const supervisor = await startSupervisor([`--workers=${workers}`], env);
  await waitFor(
    'every worker to run',
    async () => (await supervisor.health()).workers.every((worker) => worker.state === 'running'),
    { timeoutMs: 60_000 },
  );
  return supervisor;
}

/**
 * The fleet's peak, end to end: once it has drained the backlog (its warm-up), a producer
 * enqueues as fast as it can beside it for half a minute, and the peak is the completions per
 * second meanwhile. Enqueueing takes its share of the same machine, so a peak measured on a
 * backlog alone would be a rate that no steady producer could sustain here.
 */
async function measurePeak(
  runtime: Runtime,
  client: TaskqClient,
  signal: AbortSignal,
): Promise<number> {
  const pool = runtime.db.pool;
  const drained = () =>
    waitFor(
      'the backlog to drain',
      async () => {
        if (signal.aborted) return true;
        const { rows } = await pool.query<{ open: number }>(
          `SELECT count(*)::int AS open FROM taskq.tasks WHERE status <> 'completed'`,
        );
        return rows[0]!.open === 0;
      },
      { timeoutMs: 15 * 60_000, intervalMs: 500 },
    );
  const completed = async () => {
    const { rows } = await pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM taskq.tasks WHERE status = 'completed'`,
    );
    return { tasks: rows[0]!.n, at: performance.now() };
  };

  await resumeQueues(runtime.taskLog, ['default'], 'soak');
  await drained();
  signal.throwIfAborted();

  const flatOut = new AbortController();
  const stopProducing = () => flatOut.abort();
  signal.addEventListener('abort', stopProducing);
  const producing = (async () => {
    while (!flatOut.signal.aborted)
      await client.enqueueMany(Array.from({ length: PEAK_BATCH }, () => TASK));
  })();
  try {
    await delay(PEAK_RAMP_MS, undefined, { signal });
    const first = await completed();
    await delay(PEAK_WINDOW_MS, undefined, { signal });
    const last = await completed();
    return (last.tasks - first.tasks) / ((last.at - first.at) / 1000);
  } finally {
    flatOut.abort();
    signal.removeEventListener('abort', stopProducing);
    await producing;
    await drained();
  }
}

interface SoakRecord {
  samples: Sample[];
  restarts: SoakSampler['restarts'];
  startedAt: Date;
  minutes: number;
}

/** Produces at the target rate and samples every 10 seconds until the end or an interrupt. */
async function soak(
  runtime: Runtime,
  client: TaskqClient,
  supervisor: RunningSupervisor,
  options: SoakOptions,
  targetPerSecond: number,
  interrupt: AbortSignal,
): Promise<SoakRecord> {
  const { rows } = await runtime.db.pool.query<{ now: Date }>('SELECT now()');
  const startedAt = rows[0]!.now;
  const sampler = new SoakSampler(runtime.db.pool, 'taskq', supervisor.health, startedAt);
  const stop = new AbortController();
  const stopOnInterrupt = () => stop.abort();
  interrupt.addEventListener('abort', stopOnInterrupt);
  let producerError: unknown = null;
  const producing = produceSteadily({
    client,
    request: TASK,
    tasksPerSecond: targetPerSecond,
    batchIntervalMs: BATCH_INTERVAL_MS,
    signal: stop.signal,
  }).catch((error: unknown) => {
    producerError = error;
    stop.abort();
  });

  const samples: Sample[] = [];
  const began = performance.now();
  const count = (options.minutes * 60_000) / SAMPLE_INTERVAL_MS;
  try {
    for (let n = 1; n <= count && !stop.signal.aborted; n += 1) {
      const wait = began + n * SAMPLE_INTERVAL_MS - performance.now();
      await delay(Math.max(0, wait), undefined, { signal: stop.signal }).catch(() => undefined);
      if (stop.signal.aborted) break;
      const sample = await sampler.sample();
      samples.push(sample);
      console.error(progressLine(sample, options.warmupMinutes));
    }
  } finally {
    stop.abort();
    interrupt.removeEventListener('abort', stopOnInterrupt);
    const totals = await producing;
    if (totals)
      console.error(`producer: ${totals.enqueued} enqueued, shortfall ${totals.shortfall}`);
  }
  if (producerError) throw producerError;
  const minutes = (samples.at(-1)?.elapsedSeconds ?? 0) / 60;
  return { samples, restarts: sampler.restarts, startedAt, minutes };
}

/** Computes the verdicts, prints the summary and writes the CSV, the markdown and the plot. */
async function report(
  runtime: Runtime,
  settings: SoakSettings,
  { samples, startedAt, restarts }: SoakRecord,
): Promise<boolean> {
  const warmupSeconds = settings.warmupMinutes * 60;
  const figures = soakFigures({
    samples,
    restarts,
    warmupSeconds,
    targetPerSecond: settings.targetPerSecond,
    waitWindows: await waitWindows(runtime, startedAt, warmupSeconds, samples),
  });
  const plotPath = path.relative(ROOT, PLOT_FILE);
  await fs.mkdir(path.dirname(CSV_FILE), { recursive: true });
  await fs.mkdir(path.dirname(PLOT_FILE), { recursive: true });
  await fs.writeFile(CSV_FILE, samplesCsv(samples));
  await fs.writeFile(MARKDOWN_FILE, summaryMarkdown(settings, figures, plotPath));
  await fs.writeFile(
    PLOT_FILE,
    soakPlot(samples, {
      title:
        `taskq soak: ${settings.workers} workers at ${settings.targetPerSecond.toFixed(0)} ` +
        'tasks/s (70% of the peak)',
      warmupSeconds,
      targetPerSecond: settings.targetPerSecond,
    }),
  );
  console.log(summaryText(settings, figures));
  console.log(
    `\nwrote ${path.relative(ROOT, CSV_FILE)}, ${path.relative(ROOT, MARKDOWN_FILE)}, ${plotPath}`,
  );
  return figures.every((figure) => figure.pass !== false);
}

/**
 * The first window after the warm-up and the last window of the soak: 10 minutes each, or a
 * third of the time after the warm-up when that is shorter, so that they never overlap.
 */
async function waitWindows(
  runtime: Runtime,
  startedAt: Date,
  warmupSeconds: number,
  samples: Sample[],
): Promise<WaitWindows> {
  const end = samples.at(-1)?.elapsedSeconds ?? 0;
  const length = Math.min(600, Math.max(0, end - warmupSeconds) / 3);
  const [first, last] = await waitPercentilesByWindow(runtime.db.pool, 'taskq', startedAt, [
    { fromSeconds: warmupSeconds, toSeconds: warmupSeconds + length },
    { fromSeconds: end - length, toSeconds: end },
  ]);
  return {
    minutes: Number((length / 60).toFixed(1)),
    firstP99Ms: first!.p99,
    lastP99Ms: last!.p99,
  };
}

/** SIGTERM, and SIGKILL if the supervisor has not exited a minute later. */
async function stopSupervisor(supervisor: RunningSupervisor) {
  const forced = setTimeout(() => supervisor.process.kill('SIGKILL'), 60_000);
  try {
    return await supervisor.stop('SIGTERM');
  } finally {
    clearTimeout(forced);
  }
}

async function describeMachine(runtime: Runtime): Promise<string> {
  const { rows } = await runtime.db.pool.query<{ version: string }>(
    `SELECT current_setting('server_version') AS version`,
  );
  const memoryGb = Math.round(os.totalmem() / 2 ** 30);
  return (
    `${os.availableParallelism()} CPUs, ${memoryGb} GB, Node.js ${process.version}, ` +
    `PostgreSQL ${rows[0]!.version.split(' ')[0]}`
  );
}

function progressLine(sample: Sample, warmupMinutes: number): string {
  const minutes = Math.floor(sample.elapsedSeconds / 60);
  const seconds = String(Math.floor(sample.elapsedSeconds % 60)).padStart(2, '0');
  const phase = sample.elapsedSeconds <= warmupMinutes * 60 ? 'warm-up' : 'soak';
  const whole = (value: number | null) => (value === null ? '-' : value.toFixed(0));
  return (
    `  ${minutes}:${seconds} ${phase}  completed ${whole(sample.completedPerSecond)}/s  ` +
    `backlog ${sample.backlog}  wait p50 ${whole(sample.waitP50Ms)} ms ` +
    `p99 ${whole(sample.waitP99Ms)} ms  RSS supervisor ${whole(sample.supervisor.rssMb)} MB, ` +
    `workers ${sample.workers.map((worker) => whole(worker.rssMb)).join('/')} MB`
  );
}

process.exitCode = await main().catch((error: unknown) => {
  if (error instanceof Error && error.name === 'AbortError') {
    console.error('interrupted before the soak began');
    return 130;
  }
  console.error(error instanceof Error ? (error.stack ?? error.message) : String(error));
  return 1;
});
