import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root, found from the compiled test's location (dist/test/...). */
export const ROOT = (() => {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, 'package.json'))) {
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error('package.json not found above the tests');
    dir = parent;
  }
  return dir;
})();

export const CLI = path.join(ROOT, 'dist/src/cli/bin.js');
export const SUPERVISOR = path.join(ROOT, 'dist/supervisor/bin.js');
export const EXAMPLE_HANDLERS = path.join(ROOT, 'dist/workers/examples/index.js');
export const TEST_HANDLERS = path.join(ROOT, 'dist/test/support/handlers.js');
