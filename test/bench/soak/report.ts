import { formatNumber, formatPercent, type Figure } from './figures.js';
import type { Sample } from './sampler.js';

/** What a soak ran, for the heading of its reports. */
export interface SoakSettings {
  minutes: number;
  warmupMinutes: number;
  workers: number;
  task: string;
  peakPerSecond: number;
  targetPerSecond: number;
  /** Minutes actually soaked, when a Ctrl-C ended the run early. */
  interruptedAfterMinutes: number | null;
  machine: string;
  date: string;
}

/** One row per sample; a worker's pid column shows when its slot restarted. */
export function samplesCsv(samples: Sample[]): string {
  const slots = samples[0]?.workers.length ?? 0;
  const header = [
    'elapsed_s',
    'at',
    'completed_per_s',
    'enqueued_per_s',
    'backlog',
    'wait_p50_ms',
    'wait_p99_ms',
    'supervisor_pid',
    'supervisor_rss_mb',
    ...Array.from({ length: slots }, (_, slot) => [
      `worker_${slot}_pid`,
      `worker_${slot}_rss_mb`,
    ]).flat(),
  ];
  const rows = samples.map((sample) => [
    sample.elapsedSeconds.toFixed(1),
    sample.at.toISOString(),
    sample.completedPerSecond.toFixed(1),
    sample.enqueuedPerSecond.toFixed(1),
    String(sample.backlog),
    cell(sample.waitP50Ms),
    cell(sample.waitP99Ms),
    String(sample.supervisor.pid ?? ''),
    cell(sample.supervisor.rssMb),
    ...sample.workers.flatMap((worker) => [String(worker.pid ?? ''), cell(worker.rssMb)]),
  ]);
  return [header, ...rows].map((row) => row.join(',')).join('\n') + '\n';
}

/** The summary as aligned text for the terminal. */
export function summaryText(settings: SoakSettings, figures: Figure[]): string {
  const rows = figures.map((figure) => [
    verdict(figure),
    `${figure.name}${figure.unit ? ` (${figure.unit})` : ''}`,
    formatNumber(figure.baseline),
    formatNumber(figure.max),
    formatNumber(figure.last),
    formatPercent(figure.growthPercent),
    figure.measured,
    figure.target,
  ]);
  const header = ['', 'figure', 'baseline', 'max', 'last', 'growth', 'measured', 'target'];
  const widths = header.map((_, column) =>
    Math.max(...[header, ...rows].map((row) => row[column]!.length)),
  );
  const format = (row: string[]) =>
    row
      .map((entry, column) => entry.padEnd(widths[column]!))
      .join('  ')
      .trimEnd();
  const missed = figures.filter((figure) => figure.pass === false).length;
  const checked = figures.filter((figure) => figure.pass !== null).length;
  return [
    heading(settings),
    'baseline: the 1-minute median at the end of the warm-up; max and last: after it.',
    '',
    format(header),
    ...rows.map(format),
    '',
    `${checked - missed} passed, ${missed} missed`,
  ].join('\n');
}

/** The summary as a markdown fragment for BENCHMARKS.md, with the plot beside the table. */
export function summaryMarkdown(settings: SoakSettings, figures: Figure[], plotPath: string) {
  const escape = (value: string) => value.replace(/\|/g, '\\|');
  const rows = figures.map((figure) =>
    [
      `${figure.name}${figure.unit ? ` (${figure.unit})` : ''}`,
      formatNumber(figure.baseline),
      formatNumber(figure.max),
      formatNumber(figure.last),
      formatPercent(figure.growthPercent),
      figure.measured,
      figure.target,
      verdict(figure) || '-',
    ]
      .map(escape)
      .join(' | '),
  );
  return [
    `### Soak: ${settings.minutes} minutes at 70% of the peak`,
    '',
    heading(settings),
    '',
    'Baseline: the 1-minute median at the end of the warm-up; ' +
      'max and last: 1-minute medians after it.',
    '',
    '| figure | baseline | max | last | growth | measured | target | verdict |',
    '|---|---:|---:|---:|---:|---|---|---|',
    ...rows.map((row) => `| ${row} |`),
    '',
    `![Throughput, resident memory and wait time through the soak](${plotPath})`,
    '',
  ].join('\n');
}

function heading(settings: SoakSettings): string {
  const interrupted =
    settings.interruptedAfterMinutes === null
      ? ''
      : ` Interrupted after ${settings.interruptedAfterMinutes.toFixed(1)} minutes.`;
  return (
    `${settings.date}, ${settings.machine}. ${settings.workers} worker processes, ` +
    `${settings.task} tasks on the postgres broker. Peak ${settings.peakPerSecond.toFixed(0)} ` +
    `tasks/s (completed while a producer enqueued flat out beside the fleet); soak at ${settings.targetPerSecond.toFixed(0)} tasks/s for ${settings.minutes} ` +
    `minutes, the first ${settings.warmupMinutes} of them warm-up.${interrupted}`
  );
}

function verdict(figure: Figure): string {
  return figure.pass === null ? '' : figure.pass ? 'PASS' : 'MISS';
}

function cell(value: number | null): string {
  return value === null ? '' : value.toFixed(1);
}
