import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { promisify } from 'node:util';

import { startSupervisor, type RunningSupervisor } from '../support/supervisor.js';
import { waitFor } from '../support/wait.js';
import { openWorkload, type Workload } from './workload.js';

const run = promisify(execFile);
const TASKS = 1_000;
const DISK_BYTES = 1024 * 1024;

let workload: Workload | undefined;
let supervisor: RunningSupervisor | undefined;
let mounted: string | undefined;

after(async () => {
  await supervisor?.stop('SIGKILL');
  await workload?.close();
  if (mounted) {
    await run('umount', [mounted]).catch(() => undefined);
    await fs.rmdir(mounted).catch(() => undefined);
  }
});

test('a full disk for result files: the tasks that write past it fail with a clear report, nothing else does', async (t) => {
  const disk = await fs.mkdtemp(path.join(os.tmpdir(), 'taskq-full-disk-'));
  try {
    await run('mount', ['-t', 'tmpfs', '-o', `size=${DISK_BYTES}`, 'tmpfs', disk]);
    mounted = disk;
  } catch (error) {
    await fs.rmdir(disk);
    t.skip(`a 1 MB tmpfs could not be mounted here (${(error as Error).message.trim()})`);
    return;
  }
  workload = await openWorkload({
    queues: [{ name: 'default', broker: { type: 'postgres', leaseSeconds: 10 } }],
    results: { directory: disk },
  });

  const ids = await workload.enqueue(TASKS, { ms: 2 });
  const write = (bytes: number) => ({ name: 'fault.result-file', parameters: { bytes } });
  const small = await workload.client.enqueueMany(Array.from({ length: 20 }, () => write(1024)));
  const large = await workload.client.enqueueMany(
    Array.from({ length: 3 }, () => write(4 * DISK_BYTES)),
  );
  supervisor = await startSupervisor(['--workers=2'], workload.env);

  await workload.waitForCompleted(ids, 180_000);
  const rows = await waitFor(
    'the result-file tasks to end',
    async () => {
      const { rows } = await workload!.pool.query<{ id: string; status: string; report: unknown }>(
        'SELECT id, status, report FROM taskq.tasks WHERE id = ANY($1::uuid[])',
        [[...small, ...large].map((task) => task.id)],
      );
      return rows.every((row) => ['completed', 'failed'].includes(row.status)) ? rows : undefined;
    },
    { timeoutMs: 60_000, intervalMs: 250 },
  );
  const status = new Map(rows.map((row) => [row.id, row]));
  for (const task of small) assert.equal(status.get(task.id)!.status, 'completed');
  for (const task of large) {
    const row = status.get(task.id)!;
    assert.equal(row.status, 'failed');
    assert.match(
      (row.report as { message: string }).message,
      /^Could not write result file "result\.bin" \(4194304 bytes\) in .*: the disk of results\.directory is full/,
    );
  }
  // No half-written file is left behind to be offered for download.
  const left = await fs.readdir(disk, { recursive: true });
  const files = left.filter((name) => name.endsWith('result.bin'));
  assert.equal(files.length, small.length, 'only the small tasks left a result file');

  const result = await workload.verify('result files on a full disk', ids, null);
  assert.equal(result.completed, TASKS);
  assert.deepEqual(await supervisor.stop('SIGTERM'), { code: 0, signal: null });
});
