/** The delay before the retry that follows attempt `attempt`: doubling from delaySeconds, capped. */
export function retryDelaySeconds(
  attempt: number,
  policy: { delaySeconds: number; backoff: boolean; maxDelaySeconds: number },
): number {
  if (!policy.backoff) return Math.min(policy.delaySeconds, policy.maxDelaySeconds);
  const base = policy.delaySeconds * 2 ** Math.max(0, attempt - 1);
  return Math.min(policy.maxDelaySeconds, base);
}

/** Sleeps for `ms`, or less when `signal` aborts first; never rejects. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
  });
}
