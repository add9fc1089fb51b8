import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { RESULTS_FILE, type FaultResult } from './workload.js';

/**
 * `npm run test:faults`: runs every fault scenario (the `*.fault.js` files beside this one) one
 * after another under node:test, then prints the table of what each found. Exits with the tests'
 * code, so a lost task fails the run.
 */

const here = path.dirname(fileURLToPath(import.meta.url));
const only = process.argv.slice(2);
const files = (await fs.readdir(here))
  .filter((name) => name.endsWith('.fault.js'))
  .filter((name) => only.length === 0 || only.some((word) => name.includes(word)))
  .sort()
  .map((name) => path.join(here, name));

await fs.rm(RESULTS_FILE, { force: true });
const code = await new Promise<number>((resolve) => {
  const child = spawn(
    process.execPath,
    ['--test', '--test-concurrency=1', '--test-timeout=900000', ...files],
    { stdio: 'inherit' },
  );
  child.on('exit', (exitCode, signal) => resolve(exitCode ?? (signal ? 1 : 0)));
});

const text = await fs.readFile(RESULTS_FILE, 'utf8').catch(() => '');
const rows = text
  .split('\n')
  .filter(Boolean)
  .map((line) => JSON.parse(line) as FaultResult);
console.log(`\n${table(rows)}`);
process.exit(code);

function table(results: FaultResult[]): string {
  const header = ['scenario', 'tasks', 'completed', 'duplicates', 'lost', 'time to recover'];
  const body = results.map((row) => [
    row.scenario,
    String(row.tasks),
    String(row.completed),
    String(row.duplicates),
    String(row.lost),
    row.recoverMs === null ? '-' : `${(row.recoverMs / 1000).toFixed(2)} s`,
  ]);
  const widths = header.map((title, column) =>
    Math.max(title.length, ...body.map((cells) => cells[column]!.length)),
  );
  const line = (cells: string[]) =>
    cells
      .map((cell, column) =>
        column === 0 ? cell.padEnd(widths[0]!) : cell.padStart(widths[column]!),
      )
      .join('  ');
  return [
    line(header),
    widths.map((width) => '-'.repeat(width)).join('  '),
    ...body.map(line),
  ].join('\n');
}
