import fs from 'node:fs';
import path from 'node:path';

import { isAlive } from '../src/database/embedded.js';
import { TaskqError } from '../src/errors.js';

/**
 * `.taskq/supervisor.pid`: one live supervisor per state directory. A file left by a dead
 * supervisor is taken over; one held by a live process refuses the start, naming its pid.
 */
export class PidFile {
  constructor(readonly file: string) {}

  static in(stateDir: string): PidFile {
    return new PidFile(path.join(stateDir, 'supervisor.pid'));
  }

  acquire(): void {
    fs.mkdirSync(path.dirname(this.file), { recursive: true });
    for (let attempt = 0; attempt < 2; attempt += 1) {
      try {
        fs.writeFileSync(this.file, `${process.pid}\n`, { flag: 'wx' });
        return;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
        const owner = Number(fs.readFileSync(this.file, 'utf8').trim());
        if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && isAlive(owner)) {
          throw new TaskqError(
            'SUPERVISOR_RUNNING',
            `A supervisor is already running with pid ${owner} (${this.file}). Stop it with ` +
              `kill -TERM ${owner}, or give this one another state directory (TASKQ_HOME).`,
          );
        }
        fs.rmSync(this.file, { force: true });
      }
    }
    throw new TaskqError(
      'PID_FILE',
      `Could not take ${this.file}; remove it if no supervisor runs`,
    );
  }

  release(): void {
    try {
      if (Number(fs.readFileSync(this.file, 'utf8').trim()) === process.pid)
        fs.rmSync(this.file, { force: true });
    } catch {
      // Already gone.
    }
  }
}
