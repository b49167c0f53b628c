/** Options of {@link visibilityBackoffSeconds}. */
export interface BackoffOptions {
  /** Delay after the first failed receive. @defaultValue 2 */
  baseSeconds?: number;
  /** Longest delay. @defaultValue 300 (SQS allows up to 43200) */
  maxSeconds?: number;
}

/** SQS ChangeMessageVisibility maximum: 12 hours (SQS API reference). */
const SQS_MAX_VISIBILITY_SECONDS = 43_200;

/**
 * Exponential backoff with "equal jitter" (half fixed, half random): attempt `n` waits about
 * `base · 2^(n-1)`, capped at `max`, so retries that failed together spread out while never
 * coming sooner than half the step. Units are the caller's.
 */
export function jitteredBackoff(attempt: number, base: number, max: number, random: () => number = Math.random): number {
  const exponent = Math.max(0, Math.min(attempt - 1, 30));
  const step = Math.min(max, base * 2 ** exponent);
  return Math.min(max, Math.round(step / 2 + random() * (step / 2)));
}

/** The visibility timeout after a transient failure on receive number `receiveCount` ({@link jitteredBackoff}). */
export function visibilityBackoffSeconds(receiveCount: number, options: BackoffOptions = {}, random: () => number = Math.random): number {
  return jitteredBackoff(receiveCount, options.baseSeconds ?? 2, Math.min(options.maxSeconds ?? 300, SQS_MAX_VISIBILITY_SECONDS), random);
}
