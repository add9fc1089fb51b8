import type { Sample } from './sampler.js';

/** A line of a panel: one value per sample, null where there is none. */
interface Series {
  label: string;
  values: (number | null)[];
  dashed?: boolean;
}

interface Panel {
  title: string;
  series: Series[];
}

const WIDTH = 960;
const PANEL_HEIGHT = 190;
const PANEL_GAP = 56;
const LEFT = 72;
const RIGHT = 190;
const TOP = 54;
const BOTTOM = 56;
const PLOT_WIDTH = WIDTH - LEFT - RIGHT;
const COLOURS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2'];

/**
 * The soak's curves as a standalone SVG document: throughput, resident memory per process and
 * wait time, stacked on one time axis in minutes, with the end of the warm-up marked.
 */
export function soakPlot(
  samples: Sample[],
  options: { title: string; warmupSeconds: number; targetPerSecond: number },
): string {
  const minutes = samples.map((sample) => sample.elapsedSeconds / 60);
  const panels: Panel[] = [
    {
      title: 'Throughput (tasks/s)',
      series: [
        { label: 'completed/s', values: samples.map((s) => s.completedPerSecond) },
        { label: 'enqueued/s', values: samples.map((s) => s.enqueuedPerSecond) },
        { label: 'target', values: samples.map(() => options.targetPerSecond), dashed: true },
      ],
    },
    {
      title: 'Resident memory (MB)',
      series: [
        { label: 'supervisor', values: samples.map((s) => s.supervisor.rssMb) },
        ...(samples[0]?.workers ?? []).map((_, slot) => ({
          label: `worker ${slot}`,
          values: samples.map((s) => s.workers[slot]?.rssMb ?? null),
        })),
      ],
    },
    {
      title: 'Wait from enqueue to start (ms)',
      series: [
        { label: 'p50', values: samples.map((s) => s.waitP50Ms) },
        { label: 'p99', values: samples.map((s) => s.waitP99Ms) },
      ],
    },
  ];

  const xMax = niceTicks(Math.max(1, ...minutes)).at(-1)!;
  const x = (minute: number) => LEFT + (minute / xMax) * PLOT_WIDTH;
  const height = TOP + panels.length * PANEL_HEIGHT + (panels.length - 1) * PANEL_GAP + BOTTOM;
  const body = panels.flatMap((panel, index) => {
    const top = TOP + index * (PANEL_HEIGHT + PANEL_GAP);
    const isLast = index === panels.length - 1;
    return drawPanel(panel, { top, minutes, x, xMax, isLast, warmup: options.warmupSeconds / 60 });
  });

  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" ` +
      `viewBox="0 0 ${WIDTH} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${WIDTH}" height="${height}" fill="white"/>`,
    text(LEFT, 24, options.title, { size: 15, weight: 'bold' }),
    ...body,
    text(LEFT + PLOT_WIDTH / 2, height - 14, 'Time since the soak began (minutes)', {
      anchor: 'middle',
    }),
    '</svg>',
    '',
  ].join('\n');
}

interface Frame {
  top: number;
  minutes: number[];
  x: (minute: number) => number;
  xMax: number;
  isLast: boolean;
  warmup: number;
}

function drawPanel(panel: Panel, frame: Frame): string[] {
  const { top, minutes, x, xMax } = frame;
  const bottom = top + PANEL_HEIGHT;
  const values = panel.series.flatMap((series) => series.values).filter(isNumber);
  const yTicks = niceTicks(Math.max(1, ...values));
  const yMax = yTicks.at(-1)!;
  const y = (value: number) => bottom - (value / yMax) * PANEL_HEIGHT;
  const parts: string[] = [text(LEFT, top - 10, panel.title, { weight: 'bold' })];

  for (const tick of yTicks) {
    parts.push(line(LEFT, y(tick), LEFT + PLOT_WIDTH, y(tick), { stroke: '#e5e5e5' }));
    parts.push(text(LEFT - 8, y(tick) + 4, formatTick(tick), { anchor: 'end' }));
  }
  for (const tick of niceTicks(xMax)) {
    parts.push(line(x(tick), bottom, x(tick), bottom + 5, { stroke: '#333' }));
    if (frame.isLast)
      parts.push(text(x(tick), bottom + 19, formatTick(tick), { anchor: 'middle' }));
  }
  parts.push(line(LEFT, top, LEFT, bottom, { stroke: '#333' }));
  parts.push(line(LEFT, bottom, LEFT + PLOT_WIDTH, bottom, { stroke: '#333' }));
  parts.push(line(x(frame.warmup), top, x(frame.warmup), bottom, { stroke: '#888', dashed: true }));
  parts.push(text(x(frame.warmup) + 4, top + 12, 'end of warm-up', { size: 10, fill: '#666' }));

  panel.series.forEach((series, index) => {
    const colour = COLOURS[index % COLOURS.length]!;
    const d = pathData(
      series.values.map((value, i) => (isNumber(value) ? [x(minutes[i]!), y(value)] : null)),
    );
    if (d) {
      const dash = series.dashed ? ' stroke-dasharray="6 4"' : '';
      parts.push(`<path d="${d}" fill="none" stroke="${colour}" stroke-width="1.5"${dash}/>`);
    }
    const legendY = top + 8 + index * 18;
    const legendX = LEFT + PLOT_WIDTH + 16;
    parts.push(
      line(legendX, legendY, legendX + 22, legendY, {
        stroke: colour,
        dashed: series.dashed,
        width: 2,
      }),
    );
    parts.push(text(legendX + 28, legendY + 4, series.label));
  });
  return parts;
}

/** Path data through the points, broken where a point is missing. */
function pathData(points: ([number, number] | null)[]): string {
  let d = '';
  let drawing = false;
  for (const point of points) {
    if (!point) {
      drawing = false;
      continue;
    }
    d += `${drawing ? 'L' : 'M'}${point[0].toFixed(1)},${point[1].toFixed(1)}`;
    drawing = true;
  }
  return d;
}

/**
 * Ticks from 0 to a round value at or above `max`, about six of them, on steps of 1, 2 or 5. A
 * max a hair above a round value (a last sample at 60.0007 minutes) rounds down to it, rather
 * than stretching the axis by a whole step.
 */
export function niceTicks(max: number): number[] {
  const slack = 1e-3;
  const rough = max / 6;
  const magnitude = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 5, 10].map((m) => m * magnitude).find((s) => s * (1 + slack) >= rough)!;
  const count = Math.ceil(max / step - slack);
  return Array.from({ length: count + 1 }, (_, index) => index * step);
}

function formatTick(value: number): string {
  return Number.isInteger(value) ? String(value) : value.toFixed(1);
}

function isNumber(value: number | null): value is number {
  return value !== null && Number.isFinite(value);
}

function line(
  x1: number,
  y1: number,
  x2: number,
  y2: number,
  style: { stroke: string; dashed?: boolean; width?: number },
): string {
  const dash = style.dashed ? ' stroke-dasharray="4 3"' : '';
  const at = (value: number) => value.toFixed(1);
  return (
    `<line x1="${at(x1)}" y1="${at(y1)}" x2="${at(x2)}" y2="${at(y2)}" ` +
    `stroke="${style.stroke}" stroke-width="${style.width ?? 1}"${dash}/>`
  );
}

function text(
  x: number,
  y: number,
  content: string,
  style: { anchor?: string; size?: number; weight?: string; fill?: string } = {},
): string {
  const attributes = [
    `x="${x.toFixed(1)}"`,
    `y="${y.toFixed(1)}"`,
    style.anchor ? `text-anchor="${style.anchor}"` : '',
    style.size ? `font-size="${style.size}"` : '',
    style.weight ? `font-weight="${style.weight}"` : '',
    style.fill ? `fill="${style.fill}"` : '',
  ].filter(Boolean);
  return `<text ${attributes.join(' ')}>${escapeXml(content)}</text>`;
}

function escapeXml(value: string): string {
  return value.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
