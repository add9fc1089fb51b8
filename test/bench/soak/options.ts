/** What `npm run bench:soak` takes on its command line. */
export interface SoakOptions {
  /** Length of the soak, warm-up included. */
  minutes: number;
  /** Minutes before the baseline is taken. */
  warmupMinutes: number;
  workers: number;
}

const USAGE = 'use --minutes=N, --warmup-minutes=N and --workers=N';

/** Reads `--name=value` arguments; a message names the argument at fault and the fix. */
export function parseSoakOptions(argv: string[]): SoakOptions {
  const given = new Map<string, string>();
  for (const arg of argv) {
    const match = /^--([a-z-]+)=(.*)$/.exec(arg);
    if (!match) throw new Error(`Unknown argument ${arg}: ${USAGE}`);
    given.set(match[1]!, match[2]!);
  }
  const positiveInteger = (name: string, fallback: number) => {
    const raw = given.get(name);
    given.delete(name);
    const value = raw === undefined ? fallback : Number(raw);
    if (!Number.isInteger(value) || value < 1) {
      throw new Error(`--${name} must be a positive integer (got ${raw})`);
    }
    return value;
  };

  const options = {
    minutes: positiveInteger('minutes', 60),
    warmupMinutes: positiveInteger('warmup-minutes', 10),
    workers: positiveInteger('workers', 2),
  };
  const [unknown] = given.keys();
  if (unknown !== undefined) throw new Error(`Unknown option --${unknown}: ${USAGE}`);
  if (options.warmupMinutes >= options.minutes) {
    throw new Error(
      `--warmup-minutes (${options.warmupMinutes}) must be less than --minutes ` +
        `(${options.minutes}), so that something is measured after the warm-up`,
    );
  }
  return options;
}
