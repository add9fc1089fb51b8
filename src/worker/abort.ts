/**
 * A task's abort, whose AbortController is made only when something asks for the signal.
 * Most handlers never look at theirs, and a controller per task is among the dearest things a
 * worker allocates for a short task. Aborting before the signal exists is kept and shows on the
 * signal the moment it is made.
 */
export class TaskAbort {
  private controller: AbortController | null = null;
  private done = false;
  private why: unknown = undefined;

  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.done) this.controller.abort(this.why);
    }
    return this.controller.signal;
  }

  get aborted(): boolean {
    return this.done;
  }

  get reason(): unknown {
    return this.why;
  }

  abort(reason: unknown): void {
    if (this.done) return;
    this.done = true;
    this.why = reason;
    this.controller?.abort(reason);
  }
}
