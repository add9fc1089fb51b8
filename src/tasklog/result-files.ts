import fs from 'node:fs/promises';
import path from 'node:path';

/** A result file as the task log records it. */
export interface ResultFile {
  name: string;
  /** Absolute path: `<results.directory>/<task id>/<name>`. */
  path: string;
  bytes: number;
}

/**
 * Removes result files and their per-task directories. A file already gone is no error; a
 * directory is removed only when it is the task's own (named for its task id, as the worker
 * makes them), so that a path recorded elsewhere never takes more than its file with it.
 */
export async function removeResultFiles(files: ResultFile[]): Promise<void> {
  await Promise.all(
    files.map(async (file) => {
      const directory = path.dirname(file.path);
      if (TASK_DIRECTORY.test(path.basename(directory)))
        await fs.rm(directory, { recursive: true, force: true });
      else await fs.rm(file.path, { force: true });
    }),
  );
}

const TASK_DIRECTORY = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
