import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface PromtoolResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

const missingPromtool =
  'promtool is not on PATH; the grafana tests need it to check the alert rules and the ' +
  "dashboard's queries. Install Debian's prometheus package, which provides it: " +
  'apt-get install prometheus';

// The tests run compiled from dist/test/grafana/, so the repository is found by walking up to
// the nearest package.json rather than by a fixed number of '..'.
export function findRepositoryRoot(): string {
  const start = path.dirname(fileURLToPath(import.meta.url));
  let directory = start;
  while (!existsSync(path.join(directory, 'package.json'))) {
    const parent = path.dirname(directory);
    if (parent === directory) {
      throw new Error(`no package.json found in ${start} or any folder above it`);
    }
    directory = parent;
  }
  return directory;
}

// Resolves with the exit code instead of rejecting on a failed check, so that a test can show
// promtool's own report; rejects only when promtool cannot run at all.
export function runPromtool(args: readonly string[], cwd: string): Promise<PromtoolResult> {
  return new Promise((resolve, reject) => {
    execFile('promtool', args, { cwd, timeout: 60_000 }, (error, stdout, stderr) => {
      if (error === null) {
        resolve({ exitCode: 0, stdout, stderr });
      } else if (error.code === 'ENOENT') {
        reject(new Error(missingPromtool, { cause: error }));
      } else if (typeof error.code === 'number') {
        resolve({ exitCode: error.code, stdout, stderr });
      } else {
        reject(error);
      }
    });
  });
}

export function describeRun(result: PromtoolResult): string {
  return `promtool exited with ${result.exitCode}:\n${result.stdout}${result.stderr}`;
}
