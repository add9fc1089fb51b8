/**
 * The metrics of one registry as plain data, the shape of prom-client's `getMetricsAsJSON()`:
 * what a worker process sends its supervisor, and what the supervisor adds up.
 */
export interface MetricSample {
  value: number;
  labels: Record<string, string | number>;
  /** A histogram's `_bucket`, `_sum` or `_count` series; absent for other types. */
  metricName?: string;
}

export type Aggregator = 'omit' | 'sum' | 'first' | 'min' | 'max' | 'average';

export interface MetricSnapshot {
  name: string;
  help: string;
  type: string;
  aggregator: Aggregator;
  values: MetricSample[];
}

/** A worker's reply to the supervisor's `metrics-request`: who it is, and its metrics. */
export interface WorkerSnapshot {
  worker: string;
  metrics: MetricSnapshot[];
}

/** Every metric taskq defines starts with this; the rest are prom-client's process metrics. */
export const TASKQ_PREFIX = 'taskq_';

const AGGREGATORS = new Set<Aggregator>(['omit', 'sum', 'first', 'min', 'max', 'average']);

/**
 * Reads a worker's reply, or null when it is none. JSON has no NaN (prom-client reports one
 * for an event-loop mean with no sample yet), so a null value is read as NaN; a metric that is
 * malformed otherwise is left out rather than spoiling the rest.
 */
export function readWorkerSnapshot(value: unknown): WorkerSnapshot | null {
  if (!isObject(value) || typeof value.worker !== 'string' || !Array.isArray(value.metrics))
    return null;
  const metrics: MetricSnapshot[] = [];
  for (const metric of value.metrics as unknown[]) {
    if (
      !isObject(metric) ||
      typeof metric.name !== 'string' ||
      typeof metric.help !== 'string' ||
      typeof metric.type !== 'string' ||
      !AGGREGATORS.has(metric.aggregator as Aggregator) ||
      !Array.isArray(metric.values)
    )
      continue;
    const values = (metric.values as unknown[]).map(readSample);
    if (values.every((sample) => sample !== null))
      metrics.push({ ...(metric as unknown as MetricSnapshot), values });
  }
  return { worker: value.worker, metrics };
}

function readSample(value: unknown): MetricSample | null {
  if (!isObject(value) || !isObject(value.labels)) return null;
  if (value.metricName !== undefined && typeof value.metricName !== 'string') return null;
  if (typeof value.value !== 'number' && value.value !== null) return null;
  return { ...(value as unknown as MetricSample), value: (value.value as number | null) ?? NaN };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}

/** The metrics whose totals must survive the process that counted them: taskq's counters. */
export function cumulativeMetrics(metrics: MetricSnapshot[]): MetricSnapshot[] {
  return metrics.filter(
    (metric) =>
      metric.name.startsWith(TASKQ_PREFIX) &&
      (metric.type === 'counter' || metric.type === 'histogram'),
  );
}

/**
 * Adds up snapshots series by series (same metric, same series name, same labels) into new
 * objects; the snapshots given are left as they are.
 */
export function sumSnapshots(lists: MetricSnapshot[][]): MetricSnapshot[] {
  const metrics = new Map<string, { metric: MetricSnapshot; series: Map<string, MetricSample> }>();
  for (const list of lists) {
    for (const metric of list) {
      let entry = metrics.get(metric.name);
      if (!entry) {
        entry = { metric: { ...metric, values: [] }, series: new Map() };
        metrics.set(metric.name, entry);
      }
      for (const sample of metric.values) {
        const key = seriesKey(sample);
        const total = entry.series.get(key);
        if (total) total.value += sample.value;
        else entry.series.set(key, { ...sample, labels: { ...sample.labels } });
      }
    }
  }
  return [...metrics.values()].map(({ metric, series }) => ({
    ...metric,
    values: [...series.values()],
  }));
}

function seriesKey(sample: MetricSample): string {
  const labels = Object.keys(sample.labels)
    .sort()
    .map((name) => `${name}=${sample.labels[name]}`)
    .join(',');
  return `${sample.metricName ?? ''}{${labels}}`;
}

/**
 * Prepares one process's snapshot for the fleet's sum: taskq's metrics are added up across
 * processes, while the process metrics (CPU, memory, event loop) stay one series per process,
 * told apart by a `worker` label. Those are taken as they are, whatever prom-client's own
 * cluster aggregator for them would be (it omits process_start_time_seconds, for one).
 */
export function labelProcessMetrics(metrics: MetricSnapshot[], worker: string): MetricSnapshot[] {
  return metrics.map((metric) =>
    metric.name.startsWith(TASKQ_PREFIX)
      ? { ...metric, aggregator: 'sum' }
      : {
          ...metric,
          aggregator: 'first',
          values: metric.values.map((sample) => ({
            ...sample,
            labels: { ...sample.labels, worker },
          })),
        },
  );
}
