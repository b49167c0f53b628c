/** Bounds of an exponential backoff, milliseconds. */
export interface BackoffBounds {
  /** Delay after the first failure. */
  baseMs: number;
  /** Longest delay. */
  maxMs: number;
}

/**
 * The delay before retry number `failures` (from 1): exponential (`base · 2^(failures-1)`, capped)
 * with "equal jitter" (half fixed, half random), so streams that failed together do not come back
 * together, and never sooner than half the step. A server's `Retry-After` is a floor, still capped.
 */
export function backoffDelayMs(failures: number, bounds: BackoffBounds, random: () => number = Math.random, retryAfterMs?: number): number {
  const exponent = Math.max(0, Math.min(failures - 1, 30));
  const step = Math.min(bounds.maxMs, bounds.baseMs * 2 ** exponent);
  const jittered = step / 2 + random() * (step / 2);
  return Math.round(Math.min(bounds.maxMs, Math.max(jittered, retryAfterMs ?? 0)));
}

/** Resolves after `ms`, or at once when `signal` aborts (never rejects). */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (ms <= 0 || signal?.aborted === true) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done);
  });
}
