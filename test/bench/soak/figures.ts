import type { Sample, WorkerRestart } from './sampler.js';

/** The p99 wait over the first window after the warm-up and over the last window of the soak. */
export interface WaitWindows {
  minutes: number;
  firstP99Ms: number | null;
  lastP99Ms: number | null;
}

export interface SoakRun {
  samples: Sample[];
  restarts: WorkerRestart[];
  warmupSeconds: number;
  targetPerSecond: number;
  waitWindows: WaitWindows;
}

/**
 * One line of the summary: the 1-minute median at the end of the warm-up (the baseline), its
 * largest and last values after it, and the verdict of its rule. `pass` is null for a figure
 * shown without a target.
 */
export interface Figure {
  name: string;
  unit: string;
  baseline: number | null;
  max: number | null;
  last: number | null;
  /** (max - baseline) / baseline, in percent. */
  growthPercent: number | null;
  /** What the rule compared, in words and numbers. */
  measured: string;
  target: string;
  pass: boolean | null;
}

const SMOOTHING_SECONDS = 60;
const MAX_MEMORY_GROWTH_PERCENT = 10;
const THROUGHPUT_WINDOW_SECONDS = 300;
const MAX_THROUGHPUT_DEVIATION_PERCENT = 10;
const MAX_P99_RATIO = 1.5;

/** The figures of a soak with their verdicts, in the order the summary shows them. */
export function soakFigures(run: SoakRun): Figure[] {
  const slots = run.samples[0]?.workers.length ?? 0;
  return [
    throughputFigure(run),
    backlogFigure(run),
    memoryFigure(run, 'RSS supervisor', (sample) => sample.supervisor.rssMb),
    ...Array.from({ length: slots }, (_, slot) =>
      memoryFigure(run, `RSS worker ${slot}`, (sample) => sample.workers[slot]?.rssMb ?? null),
    ),
    waitFigure(run, 'wait p50', (sample) => sample.waitP50Ms, null),
    waitFigure(run, 'wait p99', (sample) => sample.waitP99Ms, run.waitWindows),
    restartsFigure(run),
  ];
}

/** The median of the values of the minute up to each sample, ignoring missing ones. */
function smoothed(samples: Sample[], value: (sample: Sample) => number | null) {
  return samples.map((sample) =>
    median(
      samples
        .filter(
          (other) =>
            other.elapsedSeconds > sample.elapsedSeconds - SMOOTHING_SECONDS &&
            other.elapsedSeconds <= sample.elapsedSeconds,
        )
        .map(value)
        .filter((entry): entry is number => entry !== null),
    ),
  );
}

/** Baseline, max and last of the smoothed series, the max and last taken after the warm-up. */
function summarise(run: SoakRun, value: (sample: Sample) => number | null) {
  const series = smoothed(run.samples, value);
  const afterWarmup = run.samples.map((sample) => sample.elapsedSeconds > run.warmupSeconds);
  const baselineIndex = afterWarmup.indexOf(true) - 1;
  const after = series.filter((entry, index) => afterWarmup[index] && entry !== null) as number[];
  const baseline = baselineIndex >= 0 ? series[baselineIndex]! : null;
  const max = after.length ? Math.max(...after) : null;
  const growthPercent = baseline && max !== null ? ((max - baseline) / baseline) * 100 : null;
  return { baseline, max, last: after.at(-1) ?? null, growthPercent };
}

function memoryFigure(
  run: SoakRun,
  name: string,
  value: (sample: Sample) => number | null,
): Figure {
  const summary = summarise(run, value);
  return {
    name,
    unit: 'MB',
    ...summary,
    measured: `growth ${formatPercent(summary.growthPercent)}`,
    target: `max after warm-up <= baseline + ${MAX_MEMORY_GROWTH_PERCENT}%`,
    pass: summary.growthPercent !== null && summary.growthPercent <= MAX_MEMORY_GROWTH_PERCENT,
  };
}

function throughputFigure(run: SoakRun): Figure {
  const target = run.targetPerSecond;
  const means = windowMeans(run, THROUGHPUT_WINDOW_SECONDS, (sample) => sample.completedPerSecond);
  const deviations = means.map((mean) => ((mean - target) / target) * 100);
  const worst = deviations.reduce((a, b) => (Math.abs(b) > Math.abs(a) ? b : a), 0);
  return {
    name: 'completed/s',
    unit: 'tasks/s',
    ...summarise(run, (sample) => sample.completedPerSecond),
    measured:
      `${means.length} windows: ${means.map((mean) => mean.toFixed(0)).join(', ')}; ` +
      `worst ${formatPercent(worst)}`,
    target:
      `each 5-minute window's mean within ±${MAX_THROUGHPUT_DEVIATION_PERCENT}% ` +
      `of ${target.toFixed(0)}/s`,
    pass: means.length > 0 && Math.abs(worst) <= MAX_THROUGHPUT_DEVIATION_PERCENT,
  };
}

function backlogFigure(run: SoakRun): Figure {
  const after = run.samples.filter((sample) => sample.elapsedSeconds > run.warmupSeconds);
  const end = after.at(-1)?.elapsedSeconds ?? 0;
  const minuteMedian = (from: number) =>
    median(
      after
        .filter((s) => s.elapsedSeconds > from && s.elapsedSeconds <= from + 60)
        .map((s) => s.backlog),
    );
  const first = minuteMedian(run.warmupSeconds);
  const last = minuteMedian(end - 60);
  const allowance = Math.round(run.targetPerSecond);
  return {
    name: 'backlog',
    unit: 'tasks',
    ...summarise(run, (sample) => sample.backlog),
    growthPercent: null,
    measured:
      `median of the first minute after warm-up ${formatNumber(first)}, ` +
      `of the last minute ${formatNumber(last)}`,
    target: `last minute <= first minute + 1 s of production (${allowance})`,
    pass: first !== null && last !== null && last <= first + allowance,
  };
}

function waitFigure(
  run: SoakRun,
  name: string,
  value: (sample: Sample) => number | null,
  windows: WaitWindows | null,
): Figure {
  const summary = { name, unit: 'ms', ...summarise(run, value) };
  if (!windows) return { ...summary, measured: '-', target: 'shown, no target', pass: null };
  const { minutes, firstP99Ms: first, lastP99Ms: last } = windows;
  const ratio = first && last !== null ? last / first : null;
  return {
    ...summary,
    measured:
      `p99 of the first ${minutes}-minute window after warm-up ${formatNumber(first)} ms, ` +
      `of the last ${formatNumber(last)} ms (×${ratio?.toFixed(2) ?? '-'})`,
    target: `last window <= ${MAX_P99_RATIO} × first window`,
    pass: ratio !== null && ratio <= MAX_P99_RATIO,
  };
}

function restartsFigure(run: SoakRun): Figure {
  const count = run.restarts.length;
  const detail = run.restarts
    .map(
      (r) => `slot ${r.slot} at ${Math.round(r.elapsedSeconds)} s, pid ${r.oldPid} -> ${r.newPid}`,
    )
    .join('; ');
  return {
    name: 'worker restarts',
    unit: '',
    baseline: null,
    max: null,
    last: null,
    growthPercent: null,
    measured: count ? `${count}: ${detail}` : '0',
    target: 'none (a restarted worker breaks its memory curve)',
    pass: count === 0,
  };
}

/**
 * The mean of `value` over consecutive windows from the end of the warm-up. A last window
 * shorter than a minute joins the one before, so that a few samples do not make a verdict.
 */
function windowMeans(run: SoakRun, windowSeconds: number, value: (sample: Sample) => number) {
  const windows: { values: number[]; spanSeconds: number }[] = [];
  for (const sample of run.samples) {
    const offset = sample.elapsedSeconds - run.warmupSeconds;
    if (offset <= 0) continue;
    const index = Math.ceil(offset / windowSeconds) - 1;
    const window = (windows[index] ??= { values: [], spanSeconds: 0 });
    window.values.push(value(sample));
    window.spanSeconds = offset - index * windowSeconds;
  }
  const filled = windows.filter((window) => window !== undefined);
  if (filled.length > 1 && filled.at(-1)!.spanSeconds < 60) {
    filled.at(-2)!.values.push(...filled.pop()!.values);
  }
  return filled.map(({ values }) => values.reduce((sum, entry) => sum + entry, 0) / values.length);
}

function median(values: number[]): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** A figure for the summary: one decimal below 10, whole numbers above. */
export function formatNumber(value: number | null): string {
  return value === null ? '-' : value.toFixed(value < 10 ? 1 : 0);
}

export function formatPercent(value: number | null): string {
  return value === null ? '-' : `${value >= 0 ? '+' : ''}${value.toFixed(1)}%`;
}
