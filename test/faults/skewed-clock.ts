/**
 * Loaded with `--import` into a process (and, through NODE_OPTIONS, into the processes it
 * forks): shifts the process's wall clock by TASKQ_FAULT_CLOCK_SKEW_MS, as a host whose clock is
 * off would see it. Monotonic clocks (performance.now, timers) are left alone, as they are then.
 */
const skewMs = Number(process.env.TASKQ_FAULT_CLOCK_SKEW_MS ?? 0);

if (skewMs !== 0) {
  const RealDate = Date;
  class SkewedDate extends RealDate {
    constructor(...args: unknown[]) {
      if (args.length === 0) super(RealDate.now() + skewMs);
      else super(...(args as [string | number | Date]));
    }

    static override now(): number {
      return RealDate.now() + skewMs;
    }
  }
  globalThis.Date = SkewedDate as DateConstructor;
}
