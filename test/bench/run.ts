import { benchApi } from './api.bench.js';
import { benchControl } from './control.bench.js';
import { benchFoundation } from './foundation.bench.js';
import { benchMetrics } from './metrics.bench.js';
import { benchOperations } from './operations.bench.js';
import { benchSqs } from './sqs.bench.js';
import { benchSupervisor } from './supervisor.bench.js';
import { round, type BenchResult } from './types.js';

/**
 * `npm run bench`: every figure that an issue names, each next to its baseline measured in the
 * same run on the same machine. `--only=NAME` runs the suites whose name contains NAME.
 * Exits 1 when a target is missed.
 */
const SUITES: { name: string; run: (figures: Map<string, number>) => Promise<BenchResult[]> }[] = [
  { name: 'foundation', run: benchFoundation },
  { name: 'supervisor', run: benchSupervisor },
  { name: 'sqs', run: benchSqs },
  { name: 'metrics', run: () => benchMetrics() },
  { name: 'operations', run: () => benchOperations() },
  { name: 'api', run: () => benchApi() },
  { name: 'control', run: () => benchControl() },
];

async function main(): Promise<number> {
  const only = process.argv.find((arg) => arg.startsWith('--only='))?.slice('--only='.length);
  const results: BenchResult[] = [];
  // Figures one suite measures and a later one compares with, such as the single-worker rate.
  const figures = new Map<string, number>();
  for (const suite of SUITES) {
    if (only && !suite.name.includes(only)) continue;
    console.error(`running ${suite.name} ...`);
    for (const result of await suite.run(figures)) {
      results.push(result);
      printRow(result);
    }
  }
  const missed = results.filter((result) => !result.pass);
  console.log(`\n${results.length - missed.length} passed, ${missed.length} missed`);
  return missed.length === 0 ? 0 : 1;
}

function printRow(result: BenchResult): void {
  const ratio = result.baseline.value
    ? `${round((result.value / result.baseline.value) * 100, 0)}%`
    : '-';
  console.log(
    [
      result.pass ? 'PASS' : 'MISS',
      result.name.padEnd(58),
      `${round(result.value)} ${result.unit}`.padEnd(16),
      `baseline ${result.baseline.name}: ${round(result.baseline.value)} ${result.unit}`.padEnd(52),
      `ratio ${ratio}`.padEnd(11),
      `target ${result.target}`,
    ].join('  '),
  );
}

process.exitCode = await main();
